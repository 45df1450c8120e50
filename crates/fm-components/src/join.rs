//! `join` (FlowMason): join two lists of records on key fields, as pandas' merge does.
//!
//! Config: `left_data`, `right_data` (lists of records), `left_on`, `right_on` (a field or a list
//! of fields, the same number on each side; not for `cross`), `join_type` (`inner` default,
//! `left`, `right`, `outer` (also `full_outer`), `cross`), `suffixes` (two strings for a column
//! both sides have, default `["_left", "_right"]`). Output: `{success, data, row_count, columns,
//! metadata}`. Records missing on one side of an outer join get null for that side's columns;
//! rows keep left order, then unmatched right rows. Where FlowMason returns `success: false`
//! with an error, fm fails the stage with it.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, StageContext, StageError, StageRuntime};
use fm_expr::Value;
use futures::future::BoxFuture;
use serde_json::{json, Map};

pub struct Join;

#[derive(Debug, Clone, Copy, PartialEq)]
enum How {
    Inner,
    Left,
    Right,
    Outer,
    Cross,
}

#[derive(Debug)]
pub struct JoinRuntime {
    left: ValueTemplate,
    right: ValueTemplate,
    left_on: Vec<String>,
    right_on: Vec<String>,
    how: How,
    suffixes: (String, String),
}

impl Component for Join {
    fn name(&self) -> &'static str {
        "join"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: join two lists of records on key fields (inner, left, right, outer, cross)"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        for key in ["left_data", "right_data"] {
            if !r.has(key, &[]) {
                r.missing(key);
            }
        }
        let left = r.value_template("left_data", &[]);
        let right = r.value_template("right_data", &[]);
        let how = match r.string("join_type", &["how"]).as_deref() {
            None | Some("inner") => How::Inner,
            Some("left") => How::Left,
            Some("right") => How::Right,
            Some("outer") | Some("full_outer") => How::Outer,
            Some("cross") => How::Cross,
            Some(other) => {
                let p = r.key_path("join_type");
                r.problem_with_hint(
                    "invalid_value",
                    p,
                    format!("unknown join_type '{other}'"),
                    "use inner, left, right, outer or cross",
                );
                return None;
            }
        };
        let keys = |r: &mut ConfigReader<'_, '_>, key: &'static str| -> Option<Vec<String>> {
            match r.raw(key, &[]) {
                None if how == How::Cross => Some(Vec::new()),
                None => {
                    r.missing(key);
                    None
                }
                Some((path, v)) => crate::rows::field_list(v).or_else(|| {
                    r.problem(
                        "wrong_type",
                        path,
                        format!("'{key}' must be a field name or a list of them"),
                    );
                    None
                }),
            }
        };
        let left_on = keys(r, "left_on");
        let right_on = keys(r, "right_on");
        let suffixes = match r.raw("suffixes", &[]) {
            None => ("_left".to_owned(), "_right".to_owned()),
            Some((path, v)) => match crate::rows::field_list(v).filter(|s| s.len() == 2) {
                Some(s) => (s[0].clone(), s[1].clone()),
                None => {
                    r.problem(
                        "wrong_type",
                        path,
                        "'suffixes' must be two strings, e.g. [\"_left\", \"_right\"]",
                    );
                    return None;
                }
            },
        };
        let (left_on, right_on) = (left_on?, right_on?);
        if left_on.len() != right_on.len() {
            let p = r.key_path("right_on");
            r.problem(
                "invalid_value",
                p,
                format!(
                    "left_on has {} fields and right_on {}; they pair up one to one",
                    left_on.len(),
                    right_on.len()
                ),
            );
            return None;
        }
        Some(Arc::new(JoinRuntime {
            left: left?,
            right: right?,
            left_on,
            right_on,
            how,
            suffixes,
        }))
    }
}

impl StageRuntime for JoinRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move { self.apply(cx) })
    }
}

impl JoinRuntime {
    fn apply(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let render = |t: &ValueTemplate, what: &str| {
            t.render(cx.scope)
                .map_err(|e| StageError::template(&e, &format!("config.{what}")))
                .and_then(|v| crate::rows::rows(v, what))
        };
        let left = render(&self.left, "left_data")?;
        let right = render(&self.right, "right_data")?;
        let columns = |rows: &[Map<String, Value>]| {
            let mut cols: Vec<String> = Vec::new();
            for r in rows {
                for k in r.keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            cols
        };
        let (lcols, rcols) = (columns(&left), columns(&right));
        let key = |r: &Map<String, Value>, on: &[String]| -> Vec<Value> {
            on.iter()
                .map(|f| r.get(f).cloned().unwrap_or(Value::Null))
                .collect()
        };
        // A key column of the same name on both sides appears once, as pandas does.
        let shared_keys: Vec<&String> = self
            .left_on
            .iter()
            .zip(&self.right_on)
            .filter(|(l, r)| l == r)
            .map(|(l, _)| l)
            .collect();
        let merge = |l: Option<&Map<String, Value>>, r: Option<&Map<String, Value>>| {
            let mut out = Map::new();
            for c in &lcols {
                let clash = rcols.contains(c) && !shared_keys.contains(&c);
                let name = if clash {
                    format!("{c}{}", self.suffixes.0)
                } else {
                    c.clone()
                };
                let mut v = l.and_then(|m| m.get(c)).cloned().unwrap_or(Value::Null);
                if v.is_null() && shared_keys.contains(&c) {
                    v = r.and_then(|m| m.get(c)).cloned().unwrap_or(Value::Null);
                }
                out.insert(name, v);
            }
            for c in &rcols {
                if shared_keys.contains(&c) {
                    continue;
                }
                let name = if lcols.contains(c) {
                    format!("{c}{}", self.suffixes.1)
                } else {
                    c.clone()
                };
                out.insert(
                    name,
                    r.and_then(|m| m.get(c)).cloned().unwrap_or(Value::Null),
                );
            }
            Value::Object(out)
        };
        let mut data = Vec::new();
        let mut right_used = vec![false; right.len()];
        for l in &left {
            let lk = key(l, &self.left_on);
            let mut matched = false;
            for (j, r) in right.iter().enumerate() {
                let hit = self.how == How::Cross
                    || (!lk.iter().any(Value::is_null) && key(r, &self.right_on) == lk);
                if hit {
                    matched = true;
                    right_used[j] = true;
                    if self.how != How::Right {
                        data.push(merge(Some(l), Some(r)));
                    }
                }
            }
            if !matched && matches!(self.how, How::Left | How::Outer) {
                data.push(merge(Some(l), None));
            }
        }
        if self.how == How::Right {
            // Right order, each right row with its matches (or alone).
            for r in &right {
                let rk = key(r, &self.right_on);
                let matches: Vec<&Map<String, Value>> = left
                    .iter()
                    .filter(|l| !rk.iter().any(Value::is_null) && key(l, &self.left_on) == rk)
                    .collect();
                if matches.is_empty() {
                    data.push(merge(None, Some(r)));
                }
                for l in matches {
                    data.push(merge(Some(l), Some(r)));
                }
            }
        }
        if self.how == How::Outer {
            for (j, r) in right.iter().enumerate() {
                if !right_used[j] {
                    data.push(merge(None, Some(r)));
                }
            }
        }
        let cols: Vec<String> = data
            .first()
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let how = format!("{:?}", self.how).to_lowercase();
        Ok(json!({
            "success": true,
            "row_count": data.len(),
            "columns": cols,
            "metadata": {"join_type": how, "left_rows": left.len(), "right_rows": right.len()},
            "data": data,
        }))
    }
}
