//! fm-core: the pipeline model (definition -> compiled pipeline), validation, the concurrent DAG
//! executor, run and stage state machines, events, secrets and redaction, and the Component
//! trait. It knows nothing of terminals, HTTP servers or databases.

pub mod component;
pub mod control;
pub mod durability;
pub mod events;
pub mod exec;
pub mod model;
pub mod problem;
pub mod record;
pub mod secrets;
pub mod state;

use std::sync::Arc;

pub use component::{Component, ErrorKind, Registry, StageContext, StageError, StageRuntime};
pub use events::{Cleanup, Event, EventKind, EventSink, LogLevel, StopReport};
pub use exec::{prepare, run, CancelRequest, CancelSignal, RunOptions, StartError};
pub use model::{compile, CompileOptions, Pipeline, Source};
pub use problem::Problem;
pub use record::RunRecord;
pub use secrets::{SecretSource, Secrets};
pub use state::{RunStatus, StageStatus};

/// The dry-run rule, in the one wording every place that states it uses: `fm run --help`, the
/// run's banner, an unsent request's note, docs/cli.md (a test keeps them the same).
pub const DRY_RUN_RULE: &str = "only requests that change nothing are sent (GET, HEAD, OPTIONS, and http_request stages marked read_only); every other request is described, not sent";

/// Registers the control-flow components (router, trycatch), which the executor understands.
pub fn register_control(registry: &mut Registry) {
    registry.register(Arc::new(control::router::Router));
    registry.register(Arc::new(control::trycatch::TryCatch));
}

/// Loads, validates and compiles a pipeline from source text. All problems at once, located.
pub fn load(source: &Source, opts: &CompileOptions<'_>) -> Result<Pipeline, Vec<Problem>> {
    let doc = source.parse().map_err(|p| vec![*p])?;
    compile(&doc, opts).map_err(|mut problems| {
        source.locate_all(&mut problems);
        problems
    })
}
