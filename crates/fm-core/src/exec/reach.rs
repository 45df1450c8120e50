//! Which stages a run can reach, told from its input alone: a router whose conditions read only
//! the input decides before anything runs, and the stages of its other routes never run.

use std::borrow::Cow;

use fm_expr::{Root, Scope, Value};

use crate::control::router::RouterRuntime;
use crate::model::Pipeline;

/// Only the run's input: any other read makes a condition undecidable here.
struct InputOnly<'a>(&'a Value);

impl Scope for InputOnly<'_> {
    fn resolve(&self, root: &Root<'_>) -> Option<Cow<'_, Value>> {
        match root {
            Root::Var("input") => Some(Cow::Borrowed(self.0)),
            _ => None,
        }
    }
}

/// Per stage: whether some run with this input may execute it. A stage named by a router is
/// unreachable when that router's choice is known from the input and leaves it out.
pub(crate) fn reachable_given(p: &Pipeline, input: &Value) -> Vec<bool> {
    let scope = InputOnly(input);
    let choices: Vec<Option<Vec<String>>> = p
        .stages
        .iter()
        .map(|s| {
            s.runtime
                .control()
                .and_then(|c| c.downcast_ref::<RouterRuntime>())
                .and_then(|r| r.static_choice(&scope))
        })
        .collect();
    p.stages
        .iter()
        .map(|s| {
            s.routed_by.iter().all(|&r| match &choices[r] {
                Some(chosen) => chosen.contains(&s.id),
                None => true,
            })
        })
        .collect()
}
