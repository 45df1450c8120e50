//! Tests: `x is defined`, `x is number`, `x is divisibleby(3)`, ... also used
//! by the `select`/`reject` filters.

use std::cmp::Ordering;

use serde_json::Value;

use crate::error::{Error, ErrorKind, Span};
use crate::eval::{type_error, Eval, V};
use crate::value::{compare, is_truthy, values_equal, Num};

pub(crate) type TestFn = for<'a> fn(&mut Eval<'a>, &Value, &[V<'a>], Span) -> Result<bool, Error>;

#[derive(Debug)]
pub(crate) struct TestSpec {
    pub name: &'static str,
    /// Minimum and maximum argument count.
    pub args: (usize, usize),
    /// `defined`/`undefined`: evaluated specially (absence is the answer).
    pub guards: bool,
    pub func: TestFn,
}

macro_rules! test {
    ($name:literal, $min:literal..$max:literal, $f:expr) => {
        TestSpec {
            name: $name,
            args: ($min, $max),
            guards: false,
            func: $f,
        }
    };
}

fn arg<'v>(args: &'v [V<'_>]) -> &'v Value {
    args.first().map_or(&Value::Null, |v| &**v)
}

fn ordering(ev: &mut Eval<'_>, v: &Value, args: &[V<'_>], span: Span) -> Result<Ordering, Error> {
    let other = arg(args);
    compare(v, other).ok_or_else(|| {
        ev.err(
            ErrorKind::Type,
            format!(
                "cannot compare {} with {}",
                crate::value::type_name(v),
                crate::value::type_name(other)
            ),
            span,
        )
    })
}

fn int_of(ev: &Eval<'_>, what: &str, v: &Value, span: Span) -> Result<i64, Error> {
    match Num::of(v) {
        Some(Num::Int(i)) => Ok(i),
        Some(Num::Float(f)) => {
            Num::float_to_int(f).ok_or_else(|| type_error(ev, what, "a whole number", v, span))
        }
        None => Err(type_error(ev, what, "a number", v, span)),
    }
}

fn in_container(ev: &mut Eval<'_>, v: &Value, args: &[V<'_>], span: Span) -> Result<bool, Error> {
    match arg(args) {
        Value::Array(items) => Ok(items.iter().any(|x| values_equal(x, v))),
        Value::Object(map) => Ok(v.as_str().is_some_and(|k| map.contains_key(k))),
        Value::String(s) => Ok(v.as_str().is_some_and(|n| s.contains(n))),
        other => Err(type_error(
            ev,
            "test 'in'",
            "a list, object or string",
            other,
            span,
        )),
    }
}

pub(crate) static TESTS: &[TestSpec] = &[
    TestSpec {
        name: "defined",
        args: (0, 0),
        guards: true,
        func: |_, _, _, _| Ok(true),
    },
    TestSpec {
        name: "undefined",
        args: (0, 0),
        guards: true,
        func: |_, _, _, _| Ok(false),
    },
    test!("none", 0..0, |_, v, _, _| Ok(v.is_null())),
    test!("null", 0..0, |_, v, _, _| Ok(v.is_null())),
    test!("boolean", 0..0, |_, v, _, _| Ok(v.is_boolean())),
    test!("true", 0..0, |_, v, _, _| Ok(v == &Value::Bool(true))),
    test!("false", 0..0, |_, v, _, _| Ok(v == &Value::Bool(false))),
    test!("number", 0..0, |_, v, _, _| Ok(v.is_number())),
    test!("integer", 0..0, |_, v, _, _| Ok(matches!(
        Num::of(v),
        Some(Num::Int(_))
    ))),
    test!("float", 0..0, |_, v, _, _| Ok(matches!(
        Num::of(v),
        Some(Num::Float(_))
    ))),
    test!("string", 0..0, |_, v, _, _| Ok(v.is_string())),
    test!("mapping", 0..0, |_, v, _, _| Ok(v.is_object())),
    test!("sequence", 0..0, |_, v, _, _| Ok(v.is_array())),
    test!("iterable", 0..0, |_, v, _, _| Ok(v.is_array()
        || v.is_object()
        || v.is_string())),
    test!("truthy", 0..0, |_, v, _, _| Ok(is_truthy(v))),
    test!("falsy", 0..0, |_, v, _, _| Ok(!is_truthy(v))),
    test!("empty", 0..0, |_, v, _, _| Ok(!is_truthy(v)
        && !v.is_number()
        && !v.is_boolean())),
    test!("even", 0..0, |ev, v, _, s| Ok(int_of(
        ev,
        "test 'even'",
        v,
        s
    )? % 2
        == 0)),
    test!("odd", 0..0, |ev, v, _, s| Ok(int_of(
        ev,
        "test 'odd'",
        v,
        s
    )? % 2
        != 0)),
    test!("divisibleby", 1..1, |ev, v, a, s| {
        let n = int_of(ev, "test 'divisibleby'", v, s)?;
        let d = int_of(ev, "test 'divisibleby'", arg(a), s)?;
        Ok(d != 0 && n.checked_rem(d).unwrap_or(0) == 0)
    }),
    test!("equalto", 1..1, |_, v, a, _| Ok(values_equal(v, arg(a)))),
    test!("eq", 1..1, |_, v, a, _| Ok(values_equal(v, arg(a)))),
    test!("sameas", 1..1, |_, v, a, _| Ok(values_equal(v, arg(a)))),
    test!("ne", 1..1, |_, v, a, _| Ok(!values_equal(v, arg(a)))),
    test!("lt", 1..1, |ev, v, a, s| Ok(
        ordering(ev, v, a, s)? == Ordering::Less
    )),
    test!("le", 1..1, |ev, v, a, s| Ok(
        ordering(ev, v, a, s)? != Ordering::Greater
    )),
    test!("gt", 1..1, |ev, v, a, s| Ok(
        ordering(ev, v, a, s)? == Ordering::Greater
    )),
    test!("ge", 1..1, |ev, v, a, s| Ok(
        ordering(ev, v, a, s)? != Ordering::Less
    )),
    test!("in", 1..1, in_container),
    test!("startingwith", 1..1, |_, v, a, _| {
        Ok(matches!((v, arg(a)), (Value::String(s), Value::String(p)) if s.starts_with(p.as_str())))
    }),
    test!("endingwith", 1..1, |_, v, a, _| {
        Ok(matches!((v, arg(a)), (Value::String(s), Value::String(p)) if s.ends_with(p.as_str())))
    }),
];

/// Operator spellings Jinja accepts as test names (`select('>', 3)`).
fn alias(name: &str) -> &str {
    match name {
        "==" => "eq",
        "!=" => "ne",
        "<" => "lt",
        "<=" => "le",
        ">" => "gt",
        ">=" => "ge",
        "greaterthan" => "gt",
        "lessthan" => "lt",
        "mapping" | "dict" | "object" => "mapping",
        "list" => "sequence",
        other => other,
    }
}

pub(crate) fn lookup(name: &str) -> Option<&'static TestSpec> {
    let name = alias(name);
    TESTS.iter().find(|t| t.name == name)
}

pub(crate) fn names() -> impl Iterator<Item = &'static str> + Clone {
    TESTS.iter().map(|t| t.name)
}
