//! `aggregate` (FlowMason): statistics over a list of records, optionally grouped.
//!
//! Config: `data` (a list of records), `aggregations` (a list of `{func, field, alias,
//! percentile}`; `func` one of sum, avg/mean, count, min, max, distinct/nunique, median,
//! percentile, std/stddev, var/variance, first, last; `alias` defaults to `<field>_<func>`),
//! `group_by` (fields), `having` (an expression over the result's columns, e.g.
//! `total > 100 and n > 5`). Output: `{success, data, row_count, metadata}` where `data` holds one
//! record per group (sorted by the group values, as pandas does) or one record. As in pandas,
//! nulls are skipped; std and var are sample statistics; percentile interpolates linearly.
//! Where FlowMason returns `success: false` with an error, fm fails the stage with it.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, ErrorKind, StageContext, StageError, StageRuntime};
use fm_expr::{RefRoot, Root, Scope, Template, Value};
use futures::future::BoxFuture;
use serde_json::{json, Map};

const FUNCS: &[&str] = &[
    "sum",
    "avg",
    "mean",
    "count",
    "min",
    "max",
    "distinct",
    "nunique",
    "median",
    "percentile",
    "std",
    "stddev",
    "var",
    "variance",
    "first",
    "last",
];

pub struct Aggregate;

#[derive(Debug, Clone)]
struct Agg {
    func: String,
    field: String,
    alias: String,
    percentile: f64,
}

#[derive(Debug)]
pub struct AggregateRuntime {
    data: ValueTemplate,
    aggs: Vec<Agg>,
    group_by: Vec<String>,
    having: Option<Template>,
}

impl Component for Aggregate {
    fn name(&self) -> &'static str {
        "aggregate"
    }

    fn summary(&self) -> &'static str {
        "FlowMason: sum, avg, count, min, max, median, percentiles... over records, grouped or not"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        if !r.has("data", &[]) {
            r.missing("data");
        }
        let data = r.value_template("data", &[]);
        let aggs = read_aggs(r);
        let group_by = match r.raw("group_by", &[]) {
            None => Vec::new(),
            Some((path, v)) => match crate::rows::field_list(v) {
                Some(f) => f,
                None => {
                    r.problem(
                        "wrong_type",
                        path,
                        "'group_by' must be a field name or a list of them",
                    );
                    return None;
                }
            },
        };
        let aggs = aggs?;
        let having = match r.raw("having", &[]) {
            None => None,
            Some((path, Value::String(src))) => {
                match Template::compile_expression(src, &fm_expr::CompileOptions::default()) {
                    Ok(t) => {
                        let columns: Vec<&str> = aggs
                            .iter()
                            .map(|a| a.alias.as_str())
                            .chain(group_by.iter().map(String::as_str))
                            .collect();
                        for reference in t.references() {
                            match &reference.root {
                                RefRoot::Var(n) if columns.contains(&n.as_str()) => {}
                                other => {
                                    r.problem_with_hint(
                                        "undefined_variable",
                                        path.clone(),
                                        format!("'having' reads {}, which is not a column of the result", other.display()),
                                        format!("the columns are: {}", columns.join(", ")),
                                    );
                                    return None;
                                }
                            }
                        }
                        Some(t)
                    }
                    Err(e) => {
                        r.problem("template_syntax", path, e.render());
                        return None;
                    }
                }
            }
            Some((path, _)) => {
                r.problem("wrong_type", path, "'having' must be an expression string");
                return None;
            }
        };
        Some(Arc::new(AggregateRuntime {
            data: data?,
            aggs,
            group_by,
            having,
        }))
    }
}

fn read_aggs(r: &mut ConfigReader<'_, '_>) -> Option<Vec<Agg>> {
    let Some((path, v)) = r.raw("aggregations", &[]) else {
        r.missing("aggregations");
        return None;
    };
    let Some(items) = v.as_array().filter(|a| !a.is_empty()) else {
        r.problem(
            "wrong_type",
            path,
            "'aggregations' must be a non-empty list of {func, field, alias}",
        );
        return None;
    };
    let mut aggs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = item.as_object() else {
            r.problem(
                "wrong_type",
                p,
                "an aggregation is an object {func, field, alias}",
            );
            return None;
        };
        let mut sub = r.nested(m, p.clone());
        let func = sub.required_string("func", &["function"]);
        let field = sub.required_string("field", &["column"]);
        let alias = sub.string("alias", &["as"]);
        let percentile = sub.f64("percentile", &[]).unwrap_or(50.0);
        sub.finish();
        let (func, field) = (func?, field?);
        if !FUNCS.contains(&func.as_str()) {
            let hint = fm_core::problem::did_you_mean(&func, FUNCS.iter().copied())
                .map_or(format!("one of: {}", FUNCS.join(", ")), |s| {
                    format!("did you mean '{s}'?")
                });
            r.problem_with_hint(
                "invalid_value",
                format!("{p}.func"),
                format!("unknown aggregation '{func}'"),
                hint,
            );
            return None;
        }
        if !(0.0..=100.0).contains(&percentile) {
            r.problem(
                "invalid_value",
                format!("{p}.percentile"),
                "percentile is 0 to 100",
            );
            return None;
        }
        aggs.push(Agg {
            alias: alias.unwrap_or_else(|| format!("{field}_{func}")),
            func,
            field,
            percentile,
        });
    }
    Some(aggs)
}

impl StageRuntime for AggregateRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move { self.apply(cx) })
    }
}

/// A group's key values and its records.
type Group<'r> = (Vec<Value>, Vec<&'r Map<String, Value>>);

/// The result's columns as bare names, for `having`.
struct RowScope<'a>(&'a Map<String, Value>);

impl Scope for RowScope<'_> {
    fn resolve(&self, root: &Root<'_>) -> Option<Cow<'_, Value>> {
        match root {
            Root::Var(n) => self.0.get(*n).map(Cow::Borrowed),
            _ => None,
        }
    }
}

impl AggregateRuntime {
    fn apply(&self, cx: &StageContext<'_>) -> Result<Value, StageError> {
        let data = self
            .data
            .render(cx.scope)
            .map_err(|e| StageError::template(&e, "config.data"))?;
        let rows = crate::rows::rows(data, "data")?;
        let input_rows = rows.len();
        // Groups, keyed by their values, sorted as pandas sorts group keys.
        let mut groups: Vec<Group<'_>> = Vec::new();
        for row in &rows {
            let key: Vec<Value> = self
                .group_by
                .iter()
                .map(|f| row.get(f).cloned().unwrap_or(Value::Null))
                .collect();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(row),
                None => groups.push((key, vec![row])),
            }
        }
        if self.group_by.is_empty() && groups.is_empty() {
            groups.push((Vec::new(), Vec::new()));
        }
        groups.sort_by(|a, b| cmp_keys(&a.0, &b.0));
        let mut out = Vec::with_capacity(groups.len());
        for (key, members) in &groups {
            let mut rec = Map::new();
            for (f, v) in self.group_by.iter().zip(key) {
                rec.insert(f.clone(), v.clone());
            }
            for a in &self.aggs {
                rec.insert(a.alias.clone(), compute(a, members)?);
            }
            if let Some(h) = &self.having {
                let keep = h.render_truthy(&RowScope(&rec)).map_err(|e| {
                    StageError::new(ErrorKind::Data, format!("having: {}", e.render()))
                        .retryable(false)
                })?;
                if !keep {
                    continue;
                }
            }
            out.push(Value::Object(rec));
        }
        Ok(json!({
            "success": true,
            "row_count": out.len(),
            "metadata": {"input_rows": input_rows, "output_rows": out.len(),
                         "aggregations": self.aggs.len(), "grouped": !self.group_by.is_empty()},
            "data": out,
        }))
    }
}

fn cmp_keys(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
            _ => fm_expr::to_text(x).cmp(&fm_expr::to_text(y)),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn compute(a: &Agg, rows: &[&Map<String, Value>]) -> Result<Value, StageError> {
    let values: Vec<&Value> = rows
        .iter()
        .filter_map(|r| r.get(&a.field))
        .filter(|v| !v.is_null())
        .collect();
    let numbers = || -> Result<Vec<f64>, StageError> {
        values
            .iter()
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    StageError::new(
                        ErrorKind::Data,
                        format!(
                            "{} of '{}': {} is not a number",
                            a.func,
                            a.field,
                            fm_expr::to_text(v)
                        ),
                    )
                    .retryable(false)
                })
            })
            .collect()
    };
    let num = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 9.0e15 {
            Value::from(x as i64)
        } else {
            Value::from(x)
        }
    };
    Ok(match a.func.as_str() {
        "count" => Value::from(values.len()),
        "distinct" | "nunique" => {
            let mut seen: Vec<&Value> = Vec::new();
            for v in &values {
                if !seen.contains(v) {
                    seen.push(v);
                }
            }
            Value::from(seen.len())
        }
        "first" => values.first().map_or(Value::Null, |v| (*v).clone()),
        "last" => values.last().map_or(Value::Null, |v| (*v).clone()),
        "min" | "max" if values.iter().all(|v| v.is_string()) && !values.is_empty() => {
            let it = values.iter().filter_map(|v| v.as_str());
            let pick = if a.func == "min" { it.min() } else { it.max() };
            pick.map_or(Value::Null, |s| Value::String(s.to_owned()))
        }
        func => {
            let xs = numbers()?;
            if xs.is_empty() {
                return Ok(if func == "sum" {
                    Value::from(0)
                } else {
                    Value::Null
                });
            }
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            match func {
                "sum" => num(xs.iter().sum()),
                "avg" | "mean" => Value::from(mean),
                "min" => num(xs.iter().copied().fold(f64::INFINITY, f64::min)),
                "max" => num(xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                "median" => Value::from(quantile(&xs, 0.5)),
                "percentile" => Value::from(quantile(&xs, a.percentile / 100.0)),
                "std" | "stddev" | "var" | "variance" => {
                    if xs.len() < 2 {
                        return Ok(Value::Null);
                    }
                    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
                    Value::from(if func.starts_with("var") {
                        var
                    } else {
                        var.sqrt()
                    })
                }
                _ => Value::Null,
            }
        }
    })
}

/// pandas' default quantile: linear interpolation between the closest ranks.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_pandas() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[10.0, 20.0, 30.0], 0.9), 28.0);
        assert_eq!(quantile(&[5.0], 0.3), 5.0);
    }
}
