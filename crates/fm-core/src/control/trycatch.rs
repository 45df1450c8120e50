//! `trycatch`: a scope with try, catch and finally stage lists. The executor runs the scope (see
//! `exec::scope`); this file only reads the config.

use std::sync::Arc;

use fm_expr::Value;
use futures::future::BoxFuture;

use crate::component::{Component, ErrorKind, StageContext, StageError, StageRuntime};
use crate::model::reader::{ConfigReader, StageRefRole};

pub struct TryCatch;

#[derive(Debug)]
pub struct TryCatchRuntime;

impl Component for TryCatch {
    fn name(&self) -> &'static str {
        "trycatch"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["try_catch"]
    }

    fn summary(&self) -> &'static str {
        "Run try stages; if one fails, run catch stages with the error; always run finally stages"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let try_stages = r.stage_list("try", &["try_stages"], StageRefRole::Try);
        let _ = r.stage_list("catch", &["catch_stages"], StageRefRole::Catch);
        let _ = r.stage_list("finally", &["finally_stages"], StageRefRole::Finally);
        match try_stages {
            Some(t) if !t.is_empty() => Some(Arc::new(TryCatchRuntime)),
            Some(_) => {
                let p = r.key_path("try");
                r.problem("invalid_value", p, "'try' lists no stages");
                None
            }
            None => {
                r.missing("try");
                None
            }
        }
    }
}

impl StageRuntime for TryCatchRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(
        &'a self,
        _cx: &'a StageContext<'a>,
    ) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async {
            Err(StageError::new(
                ErrorKind::Internal,
                "a trycatch is run by the executor, not executed as a stage",
            ))
        })
    }
}
