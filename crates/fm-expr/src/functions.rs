//! Functions callable as `name(args)`: `now()`, `now_iso()`, `range()`,
//! `min()`, `max()`, `len()`, `str()`.

use std::borrow::Cow;

use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::eval::{type_error, CallArgs, Eval, V};
use crate::limits::MAX_LIST_LEN;
use crate::signature::Signature;
use crate::value::Num;

pub(crate) type FuncFn = for<'a> fn(&mut Eval<'a>, &CallArgs<'a>) -> Result<V<'a>, Error>;

#[derive(Debug)]
pub(crate) struct FuncSpec {
    pub sig: Signature,
    pub func: FuncFn,
}

const fn sig(
    name: &'static str,
    positional: &'static [&'static str],
    required: usize,
    variadic: bool,
) -> Signature {
    Signature {
        name,
        positional,
        kw_only: &[],
        required,
        variadic,
    }
}

pub(crate) static FUNCTIONS: &[FuncSpec] = &[
    FuncSpec {
        sig: sig("now", &[], 0, false),
        func: |ev, c| ev.number(Num::Float(crate::time::now_secs()), c.span),
    },
    FuncSpec {
        sig: sig("now_iso", &[], 0, false),
        func: |ev, c| {
            let secs = crate::time::now_secs().floor();
            crate::time::format_rfc3339(secs)
                .map(|s| Cow::Owned(Value::String(s)))
                .ok_or_else(|| {
                    ev.err(
                        ErrorKind::Other,
                        "the clock is outside the RFC 3339 range",
                        c.span,
                    )
                })
        },
    },
    FuncSpec {
        sig: sig("range", &["start", "stop", "step"], 1, false),
        func: range,
    },
    FuncSpec {
        sig: sig("min", &[], 1, true),
        func: |ev, c| extreme(ev, c, "min", std::cmp::Ordering::Less),
    },
    FuncSpec {
        sig: sig("max", &[], 1, true),
        func: |ev, c| extreme(ev, c, "max", std::cmp::Ordering::Greater),
    },
    FuncSpec {
        sig: sig("len", &["value"], 1, false),
        func: |ev, c| {
            let v = c.get(0).unwrap_or(&Value::Null);
            crate::filters::length_of(ev, v, c.span).map(|n| Cow::Owned(Value::from(n)))
        },
    },
    FuncSpec {
        // Python's str(), which FlowMason's conditions use: the value as text (mixed rule).
        sig: sig("str", &["value"], 1, false),
        func: |_, c| {
            let v = c.get(0).unwrap_or(&Value::Null);
            Ok(Cow::Owned(Value::String(
                crate::render::to_text(v).into_owned(),
            )))
        },
    },
];

pub(crate) fn lookup(name: &str) -> Option<&'static FuncSpec> {
    FUNCTIONS.iter().find(|f| f.sig.name == name)
}

pub(crate) fn names() -> impl Iterator<Item = &'static str> + Clone {
    FUNCTIONS.iter().map(|f| f.sig.name)
}

fn int_arg(ev: &Eval<'_>, c: &CallArgs<'_>, i: usize) -> Result<Option<i64>, Error> {
    match c.get(i) {
        None => Ok(None),
        Some(v) => match Num::of(v) {
            Some(Num::Int(n)) => Ok(Some(n)),
            _ => Err(type_error(ev, "range()", "whole numbers", v, c.span)),
        },
    }
}

/// Python's `range(stop)` / `range(start, stop[, step])`, capped at `MAX_LIST_LEN` items.
fn range<'a>(ev: &mut Eval<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let a = int_arg(ev, c, 0)?.unwrap_or(0);
    let (start, stop) = match int_arg(ev, c, 1)? {
        Some(stop) => (a, stop),
        None => (0, a),
    };
    let step = int_arg(ev, c, 2)?.unwrap_or(1);
    if step == 0 {
        return Err(ev.err(ErrorKind::Other, "range() step must not be zero", c.span));
    }
    let (start, stop, step) = (i128::from(start), i128::from(stop), i128::from(step));
    let count = if step > 0 {
        (stop - start + step - 1).div_euclid(step).max(0)
    } else {
        (start - stop - step - 1).div_euclid(-step).max(0)
    };
    if count > MAX_LIST_LEN as i128 {
        return Err(ev.err(
            ErrorKind::Limit,
            format!("range() would have {count} items; the limit is {MAX_LIST_LEN}"),
            c.span,
        ));
    }
    ev.tick(count as u64, c.span)?;
    ev.charge(count as usize * 8, c.span)?;
    let items = (0..count)
        .map(|i| Value::from((start + i * step) as i64))
        .collect();
    Ok(Cow::Owned(Value::Array(items)))
}

/// `min(a, b, ...)` or `min(list)`.
fn extreme<'a>(
    ev: &mut Eval<'a>,
    c: &CallArgs<'a>,
    name: &str,
    want: std::cmp::Ordering,
) -> Result<V<'a>, Error> {
    let items: Vec<&Value> = match (c.rest.as_slice(), c.rest.first().map(|v| &**v)) {
        ([_], Some(Value::Array(list))) => list.iter().collect(),
        (all, _) => all.iter().map(|v| &**v).collect(),
    };
    crate::filters::extreme_of(ev, items, None, name, want, c.span)
}
