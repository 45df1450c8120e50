//! Binary operators: arithmetic (Python semantics: `/` is true division,
//! `//` and `%` floor toward negative infinity, ints stay exact and fall back
//! to float on overflow), `~`, comparisons and membership.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::ast::BinOp;
use crate::error::{ErrorKind, Span};
use crate::eval::{Eval, V};
use crate::limits::{MAX_LIST_LEN, MAX_OUTPUT};
use crate::render::to_text;
use crate::value::{approx_size, compare, type_name, values_equal, Num};
use crate::Error;

pub(crate) fn binary<'a>(
    ev: &mut Eval<'a>,
    op: BinOp,
    a: V<'a>,
    b: V<'a>,
    span: Span,
) -> Result<V<'a>, Error> {
    let bool_ = |b: bool| Ok(Cow::Owned(Value::Bool(b)));
    match op {
        BinOp::Eq => bool_(values_equal(&a, &b)),
        BinOp::Ne => bool_(!values_equal(&a, &b)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let Some(ord) = compare(&a, &b) else {
                return Err(ev.err(
                    ErrorKind::Type,
                    format!(
                        "cannot compare {} with {} using '{}'",
                        type_name(&a),
                        type_name(&b),
                        op.symbol()
                    ),
                    span,
                ));
            };
            bool_(match op {
                BinOp::Lt => ord == Ordering::Less,
                BinOp::Le => ord != Ordering::Greater,
                BinOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            })
        }
        BinOp::In => contains(ev, &b, &a, span).and_then(bool_),
        BinOp::NotIn => contains(ev, &b, &a, span).map(|c| !c).and_then(bool_),
        BinOp::Concat => {
            let (x, y) = (to_text(&a), to_text(&b));
            concat_str(ev, &x, &y, span)
        }
        BinOp::Add => match (&*a, &*b) {
            (Value::String(x), Value::String(y)) => concat_str(ev, x, y, span),
            (Value::Array(x), Value::Array(y)) => {
                let len = x.len() + y.len();
                check_list(ev, len, span)?;
                ev.charge(
                    approx_size(&a, MAX_OUTPUT).saturating_add(approx_size(&b, MAX_OUTPUT)),
                    span,
                )?;
                ev.tick(len as u64, span)?;
                let mut out = Vec::with_capacity(len);
                out.extend(x.iter().cloned());
                out.extend(y.iter().cloned());
                Ok(Cow::Owned(Value::Array(out)))
            }
            _ => arith(ev, op, &a, &b, span),
        },
        BinOp::Mul => match (&*a, &*b) {
            (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
                let times = repeat_count(ev, n, span)?;
                let len = s.len().saturating_mul(times);
                ev.charge(len, span)?;
                Ok(Cow::Owned(Value::String(s.repeat(times))))
            }
            (Value::Array(items), Value::Number(n)) | (Value::Number(n), Value::Array(items)) => {
                let times = repeat_count(ev, n, span)?;
                check_list(ev, items.len().saturating_mul(times), span)?;
                let list = if a.is_array() { &*a } else { &*b };
                ev.charge(approx_size(list, MAX_OUTPUT).saturating_mul(times), span)?;
                ev.tick((items.len().saturating_mul(times)) as u64, span)?;
                let mut out = Vec::with_capacity(items.len() * times);
                for _ in 0..times {
                    out.extend(items.iter().cloned());
                }
                Ok(Cow::Owned(Value::Array(out)))
            }
            _ => arith(ev, op, &a, &b, span),
        },
        _ => arith(ev, op, &a, &b, span),
    }
}

fn check_list(ev: &Eval<'_>, len: usize, span: Span) -> Result<(), Error> {
    if len > MAX_LIST_LEN {
        return Err(ev.err(
            ErrorKind::Limit,
            format!("list would have more than {MAX_LIST_LEN} items"),
            span,
        ));
    }
    Ok(())
}

fn repeat_count(ev: &Eval<'_>, n: &serde_json::Number, span: Span) -> Result<usize, Error> {
    match n.as_i64() {
        Some(i) if i <= 0 => Ok(0),
        Some(i) => usize::try_from(i)
            .map_err(|_| ev.err(ErrorKind::Limit, "repetition count too large", span)),
        None => Err(ev.err(
            ErrorKind::Type,
            "can only repeat a string or list a whole number of times",
            span,
        )),
    }
}

pub(crate) fn concat_str<'a>(
    ev: &mut Eval<'a>,
    x: &str,
    y: &str,
    span: Span,
) -> Result<V<'a>, Error> {
    ev.charge(x.len().saturating_add(y.len()), span)?;
    let mut s = String::with_capacity(x.len() + y.len());
    s.push_str(x);
    s.push_str(y);
    Ok(Cow::Owned(Value::String(s)))
}

/// `needle in haystack`
fn contains(
    ev: &mut Eval<'_>,
    haystack: &Value,
    needle: &Value,
    span: Span,
) -> Result<bool, Error> {
    match (haystack, needle) {
        (Value::String(h), Value::String(n)) => Ok(h.contains(n.as_str())),
        (Value::Array(items), n) => {
            ev.tick(items.len() as u64, span)?;
            Ok(items.iter().any(|x| values_equal(x, n)))
        }
        (Value::Object(map), Value::String(k)) => Ok(map.contains_key(k)),
        (h, n) => Err(ev.err(
            ErrorKind::Type,
            format!(
                "'in' needs a list, an object (with a string key) or a string (with a string), got {} in {}",
                type_name(n),
                type_name(h)
            ),
            span,
        )),
    }
}

fn arith<'a>(
    ev: &mut Eval<'a>,
    op: BinOp,
    a: &Value,
    b: &Value,
    span: Span,
) -> Result<V<'a>, Error> {
    let (Some(x), Some(y)) = (Num::of(a), Num::of(b)) else {
        let hint = if op == BinOp::Add && (a.is_string() || b.is_string()) {
            " (use '~' to join values as text)"
        } else {
            ""
        };
        return Err(ev.err(
            ErrorKind::Type,
            format!(
                "cannot apply '{}' to {} and {}{hint}",
                op.symbol(),
                type_name(a),
                type_name(b)
            ),
            span,
        ));
    };
    let div_zero = || ev.err(ErrorKind::Arithmetic, "division by zero", span);
    let result = match (op, x, y) {
        (BinOp::Add, Num::Int(i), Num::Int(j)) => i
            .checked_add(j)
            .map_or(Num::Float(i as f64 + j as f64), Num::Int),
        (BinOp::Sub, Num::Int(i), Num::Int(j)) => i
            .checked_sub(j)
            .map_or(Num::Float(i as f64 - j as f64), Num::Int),
        (BinOp::Mul, Num::Int(i), Num::Int(j)) => i
            .checked_mul(j)
            .map_or(Num::Float(i as f64 * j as f64), Num::Int),
        (BinOp::Add, x, y) => Num::Float(x.as_f64() + y.as_f64()),
        (BinOp::Sub, x, y) => Num::Float(x.as_f64() - y.as_f64()),
        (BinOp::Mul, x, y) => Num::Float(x.as_f64() * y.as_f64()),
        (BinOp::Div, x, y) => {
            if y.as_f64() == 0.0 {
                return Err(div_zero());
            }
            Num::Float(x.as_f64() / y.as_f64())
        }
        (BinOp::FloorDiv, Num::Int(i), Num::Int(j)) => {
            if j == 0 {
                return Err(div_zero());
            }
            match (i.checked_div(j), i.checked_rem(j)) {
                (Some(q), Some(r)) => Num::Int(if r != 0 && ((r < 0) != (j < 0)) {
                    q - 1
                } else {
                    q
                }),
                _ => Num::Float((i as f64 / j as f64).floor()),
            }
        }
        (BinOp::FloorDiv, x, y) => {
            if y.as_f64() == 0.0 {
                return Err(div_zero());
            }
            Num::Float((x.as_f64() / y.as_f64()).floor())
        }
        (BinOp::Mod, Num::Int(i), Num::Int(j)) => {
            if j == 0 {
                return Err(div_zero());
            }
            // i64::MIN % -1 overflows in Rust; mathematically it is 0.
            let r = i.checked_rem(j).unwrap_or(0);
            Num::Int(if r != 0 && ((r < 0) != (j < 0)) {
                r + j
            } else {
                r
            })
        }
        (BinOp::Mod, x, y) => {
            let (x, y) = (x.as_f64(), y.as_f64());
            if y == 0.0 {
                return Err(div_zero());
            }
            let r = x % y;
            Num::Float(if r != 0.0 && ((r < 0.0) != (y < 0.0)) {
                r + y
            } else {
                r
            })
        }
        (BinOp::Pow, Num::Int(i), Num::Int(j)) if j >= 0 => {
            match u32::try_from(j).ok().and_then(|e| i.checked_pow(e)) {
                Some(p) => Num::Int(p),
                None => Num::Float((i as f64).powf(j as f64)),
            }
        }
        (BinOp::Pow, x, y) => Num::Float(x.as_f64().powf(y.as_f64())),
        _ => {
            return Err(ev.err(
                ErrorKind::Other,
                format!("unsupported operator '{}'", op.symbol()),
                span,
            ))
        }
    };
    ev.number(result, span)
}
