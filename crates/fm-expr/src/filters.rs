//! Filters: `value | name(args)`. Each filter is a plain function over an
//! evaluated input and evaluated arguments bound to its signature at compile
//! time. `default` is special (it must see an undefined operand) and is
//! dispatched from here by the evaluator.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::ast::{Args, Expr, ExprKind};
use crate::error::{Error, ErrorKind, Span};
use crate::eval::{preview, type_error, CallArgs, Eval, V};
use crate::limits::MAX_OUTPUT;
use crate::render::{to_json, to_text};
use crate::signature::Signature;
use crate::value::{a_type_name, compare, is_truthy, type_name, Num};
use crate::{predicates, suggest};

pub(crate) type FilterFn = for<'a> fn(&mut Eval<'a>, V<'a>, &CallArgs<'a>) -> Result<V<'a>, Error>;

#[derive(Debug)]
pub(crate) struct FilterSpec {
    pub sig: Signature,
    pub func: FilterFn,
}

const fn sig(
    name: &'static str,
    positional: &'static [&'static str],
    required: usize,
) -> Signature {
    Signature {
        name,
        positional,
        kw_only: &[],
        required,
        variadic: false,
    }
}

const fn variadic(
    name: &'static str,
    positional: &'static [&'static str],
    kw_only: &'static [&'static str],
    required: usize,
) -> Signature {
    Signature {
        name,
        positional,
        kw_only,
        required,
        variadic: true,
    }
}

macro_rules! filter {
    ($sig:expr, $f:expr) => {
        FilterSpec {
            sig: $sig,
            func: $f,
        }
    };
}

fn owned<'a>(v: Value) -> Result<V<'a>, Error> {
    Ok(Cow::Owned(v))
}

pub(crate) static FILTERS: &[FilterSpec] = &[
    filter!(sig("tojson", &["indent"], 0), tojson),
    filter!(sig("fromjson", &[], 0), fromjson),
    filter!(sig("length", &[], 0), |ev, v, c| owned(Value::from(
        length_of(ev, &v, c.span)?
    ))),
    filter!(
        sig("default", &["default_value", "boolean"], 0),
        default_defined
    ),
    filter!(sig("round", &["precision", "method"], 0), round),
    filter!(sig("upper", &[], 0), |ev, v, c| map_str(
        ev,
        &v,
        c,
        "upper",
        |s| s.to_uppercase()
    )),
    filter!(sig("lower", &[], 0), |ev, v, c| map_str(
        ev,
        &v,
        c,
        "lower",
        |s| s.to_lowercase()
    )),
    filter!(sig("capitalize", &[], 0), |ev, v, c| map_str(
        ev,
        &v,
        c,
        "capitalize",
        capitalize
    )),
    filter!(sig("title", &[], 0), |ev, v, c| map_str(
        ev, &v, c, "title", title
    )),
    filter!(sig("trim", &["chars"], 0), trim),
    filter!(sig("string", &[], 0), |_, v, _| owned(Value::String(
        to_text(&v).into_owned()
    ))),
    filter!(sig("int", &["default", "base"], 0), int),
    filter!(sig("float", &["default"], 0), float),
    filter!(sig("join", &["sep", "attribute"], 0), join),
    filter!(sig("first", &[], 0), |ev, v, c| first_last(ev, v, c, true)),
    filter!(sig("last", &[], 0), |ev, v, c| first_last(ev, v, c, false)),
    filter!(sig("keys", &[], 0), |ev, v, c| {
        let m = object(ev, &v, c, "keys")?;
        owned(Value::Array(
            m.keys().map(|k| Value::String(k.clone())).collect(),
        ))
    }),
    filter!(sig("values", &[], 0), |ev, v, c| {
        let m = object(ev, &v, c, "values")?;
        owned(Value::Array(m.values().cloned().collect()))
    }),
    filter!(sig("items", &[], 0), |ev, v, c| {
        let m = object(ev, &v, c, "items")?;
        owned(Value::Array(
            m.iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()]))
                .collect(),
        ))
    }),
    filter!(sig("list", &[], 0), to_list),
    filter!(sig("reverse", &[], 0), reverse),
    filter!(sig("replace", &["old", "new", "count"], 2), replace),
    filter!(sig("split", &["sep", "maxsplit"], 0), split),
    filter!(
        sig("truncate", &["length", "killwords", "end", "leeway"], 0),
        truncate
    ),
    filter!(sig("abs", &[], 0), |ev, v, c| match Num::of(&v) {
        Some(Num::Int(i)) => ev.number(
            i.checked_abs()
                .map_or(Num::Float((i as f64).abs()), Num::Int),
            c.span
        ),
        Some(Num::Float(f)) => ev.number(Num::Float(f.abs()), c.span),
        None => Err(type_error(ev, "filter 'abs'", "a number", &v, c.span)),
    }),
    filter!(sig("sum", &["attribute", "start"], 0), sum),
    filter!(
        sig("min", &["case_sensitive", "attribute"], 0),
        |ev, v, c| {
            let items = list(ev, &v, c, "min")?.iter().collect();
            extreme_of(ev, items, attribute(c, 1), "min", Ordering::Less, c.span)
        }
    ),
    filter!(
        sig("max", &["case_sensitive", "attribute"], 0),
        |ev, v, c| {
            let items = list(ev, &v, c, "max")?.iter().collect();
            extreme_of(ev, items, attribute(c, 1), "max", Ordering::Greater, c.span)
        }
    ),
    filter!(
        sig("sort", &["reverse", "case_sensitive", "attribute"], 0),
        sort
    ),
    filter!(sig("unique", &["case_sensitive", "attribute"], 0), unique),
    filter!(
        variadic("map", &["name"], &["attribute", "default"], 0),
        map
    ),
    filter!(variadic("select", &["test"], &[], 0), |ev, v, c| select(
        ev, v, c, true, false
    )),
    filter!(variadic("reject", &["test"], &[], 0), |ev, v, c| select(
        ev, v, c, false, false
    )),
    filter!(
        variadic("selectattr", &["attribute", "test"], &[], 1),
        |ev, v, c| select(ev, v, c, true, true)
    ),
    filter!(
        variadic("rejectattr", &["attribute", "test"], &[], 1),
        |ev, v, c| select(ev, v, c, false, true)
    ),
    filter!(sig("rfc3339", &[], 0), rfc3339),
    filter!(sig("timestamp", &[], 0), timestamp),
];

/// Alternative spellings, resolved at compile time.
fn alias(name: &str) -> &str {
    match name {
        "d" => "default",
        "count" => "length",
        other => other,
    }
}

pub(crate) fn lookup(name: &str) -> Option<&'static FilterSpec> {
    let name = alias(name);
    FILTERS.iter().find(|f| f.sig.name == name)
}

pub(crate) fn names() -> impl Iterator<Item = &'static str> + Clone {
    FILTERS.iter().map(|f| f.sig.name)
}

/// Compile-time check of filter/test names given as string literals to
/// `map('upper')`, `select('odd')`, `selectattr('x', 'defined')`.
pub(crate) fn check_static_args(spec: &FilterSpec, pos: &[Expr], src: &str) -> Result<(), Error> {
    let (index, is_test) = match spec.sig.name {
        "map" => (0, false),
        "select" | "reject" => (0, true),
        "selectattr" | "rejectattr" => (1, true),
        _ => return Ok(()),
    };
    let Some(Expr {
        kind: ExprKind::Literal(Value::String(name)),
        span,
        ..
    }) = pos.get(index)
    else {
        return Ok(());
    };
    let known = if is_test {
        predicates::lookup(name).is_some()
    } else {
        lookup(name).is_some()
    };
    if known {
        return Ok(());
    }
    let (what, hint) = if is_test {
        ("test", suggest::hint(name, predicates::names()))
    } else {
        ("filter", suggest::hint(name, names()))
    };
    Err(Error::new(
        ErrorKind::UnknownFilter,
        format!("unknown {what} '{name}'{hint}"),
        src,
        Some(*span),
    ))
}

// ---- helpers -------------------------------------------------------------

fn list<'v>(
    ev: &Eval<'_>,
    v: &'v Value,
    c: &CallArgs<'_>,
    name: &str,
) -> Result<&'v Vec<Value>, Error> {
    v.as_array()
        .ok_or_else(|| type_error(ev, &format!("filter '{name}'"), "a list", v, c.span))
}

fn object<'v>(
    ev: &Eval<'_>,
    v: &'v Value,
    c: &CallArgs<'_>,
    name: &str,
) -> Result<&'v Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| type_error(ev, &format!("filter '{name}'"), "an object", v, c.span))
}

fn string<'v>(ev: &Eval<'_>, v: &'v Value, c: &CallArgs<'_>, name: &str) -> Result<&'v str, Error> {
    v.as_str()
        .ok_or_else(|| type_error(ev, &format!("filter '{name}'"), "a string", v, c.span))
}

fn arg_str<'c>(
    ev: &Eval<'_>,
    c: &'c CallArgs<'_>,
    i: usize,
    name: &str,
) -> Result<Option<&'c str>, Error> {
    match c.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(type_error(
            ev,
            &format!("argument of '{name}'"),
            "a string",
            other,
            c.span,
        )),
    }
}

fn arg_int(ev: &Eval<'_>, c: &CallArgs<'_>, i: usize, name: &str) -> Result<Option<i64>, Error> {
    match c.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match Num::of(v) {
            Some(Num::Int(n)) => Ok(Some(n)),
            Some(Num::Float(f)) if Num::float_to_int(f).is_some() => Ok(Num::float_to_int(f)),
            _ => Err(type_error(
                ev,
                &format!("argument of '{name}'"),
                "a whole number",
                v,
                c.span,
            )),
        },
    }
}

fn arg_bool(c: &CallArgs<'_>, i: usize) -> bool {
    c.get(i).is_some_and(is_truthy)
}

fn attribute<'c>(c: &'c CallArgs<'_>, i: usize) -> Option<&'c str> {
    c.get(i).and_then(Value::as_str)
}

/// Look up `a.b.0` (dots separate keys; numbers index lists) inside `v`.
pub(crate) fn get_attr<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |cur, part| match cur {
        Value::Object(m) => m.get(part),
        Value::Array(a) => part
            .parse::<i64>()
            .ok()
            .and_then(|i| crate::eval::index(a.len(), i))
            .and_then(|i| a.get(i)),
        _ => None,
    })
}

fn attr_of<'v>(
    ev: &Eval<'_>,
    item: &'v Value,
    attr: Option<&str>,
    name: &str,
    span: Span,
) -> Result<&'v Value, Error> {
    match attr {
        None => Ok(item),
        Some(a) => get_attr(item, a).ok_or_else(|| {
            ev.err(
                ErrorKind::Undefined,
                format!("{name}: item {} has no attribute '{a}'", preview(item)),
                span,
            )
        }),
    }
}

fn string_result<'a>(ev: &mut Eval<'a>, s: String, span: Span) -> Result<V<'a>, Error> {
    ev.charge(s.len(), span)?;
    Ok(Cow::Owned(Value::String(s)))
}

fn map_str<'a>(
    ev: &mut Eval<'a>,
    v: &Value,
    c: &CallArgs<'a>,
    name: &str,
    f: fn(&str) -> String,
) -> Result<V<'a>, Error> {
    let s = string(ev, v, c, name)?;
    string_result(ev, f(s), c.span)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for ch in s.chars() {
        if ch.is_alphanumeric() {
            if start {
                out.extend(ch.to_uppercase());
            } else {
                out.extend(ch.to_lowercase());
            }
            start = false;
        } else {
            out.push(ch);
            start = true;
        }
    }
    out
}

/// Number of characters, items or keys.
pub(crate) fn length_of(ev: &Eval<'_>, v: &Value, span: Span) -> Result<usize, Error> {
    match v {
        Value::String(s) => Ok(s.chars().count()),
        Value::Array(a) => Ok(a.len()),
        Value::Object(o) => Ok(o.len()),
        other => Err(type_error(
            ev,
            "filter 'length'",
            "a string, list or object",
            other,
            span,
        )),
    }
}

/// Ordering with optional case folding of strings.
fn cmp_values(a: &Value, b: &Value, case_sensitive: bool) -> Option<Ordering> {
    match (a, b, case_sensitive) {
        (Value::String(x), Value::String(y), false) => {
            Some(x.to_lowercase().cmp(&y.to_lowercase()))
        }
        _ => compare(a, b),
    }
}

fn incomparable(ev: &Eval<'_>, name: &str, a: &Value, b: &Value, span: Span) -> Error {
    ev.err(
        ErrorKind::Type,
        format!(
            "{name}: cannot compare {} with {}",
            type_name(a),
            type_name(b)
        ),
        span,
    )
}

// ---- filters -------------------------------------------------------------

/// `operand | default(value, boolean=false)`: the evaluator routes here so an
/// undefined operand (missing key/stage/var anywhere along its chain) yields
/// the default instead of an error.
pub(crate) fn default<'a>(
    ev: &mut Eval<'a>,
    operand: &'a Expr,
    args: &'a Args,
) -> Result<V<'a>, Error> {
    let value = match ev.eval(operand) {
        Ok(v) => Some(v),
        Err(e) if e.kind == ErrorKind::Undefined => None,
        Err(e) => return Err(e),
    };
    let fallback = |ev: &mut Eval<'a>| match args.slots.first().and_then(Option::as_ref) {
        Some(e) => ev.eval(e),
        None => Ok(Cow::Owned(Value::String(String::new()))),
    };
    let boolean = match args.slots.get(1).and_then(Option::as_ref) {
        Some(e) => {
            let b = ev.eval(e)?;
            is_truthy(&b)
        }
        None => false,
    };
    match value {
        Some(v) if !boolean || is_truthy(&v) => Ok(v),
        _ => fallback(ev),
    }
}

/// `default` applied to an already-defined value (via `map('default', x)`).
fn default_defined<'a>(_: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    if arg_bool(c, 1) && !is_truthy(&v) {
        return Ok(Cow::Owned(
            c.get(0).cloned().unwrap_or(Value::String(String::new())),
        ));
    }
    Ok(v)
}

fn tojson<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let indent = arg_int(ev, c, 0, "tojson")?.map(|n| n.clamp(0, 16) as usize);
    ev.charge(crate::value::approx_size(&v, MAX_OUTPUT), c.span)?;
    let text = to_json(&v, indent);
    string_result(ev, text, c.span)
}

fn fromjson<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let s = string(ev, &v, c, "fromjson")?;
    ev.charge(s.len(), c.span)?;
    serde_json::from_str(s).map(Cow::Owned).map_err(|e| {
        ev.err(
            ErrorKind::Other,
            format!("fromjson: invalid JSON: {e}"),
            c.span,
        )
    })
}

fn round<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let precision = arg_int(ev, c, 0, "round")?.unwrap_or(0);
    if !(-15..=15).contains(&precision) {
        return Err(ev.err(
            ErrorKind::Other,
            "round: precision must be between -15 and 15",
            c.span,
        ));
    }
    let method = arg_str(ev, c, 1, "round")?.unwrap_or("common");
    let op: fn(f64) -> f64 = match method {
        "common" => f64::round,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        other => {
            return Err(ev.err(
                ErrorKind::Other,
                format!("round: method must be 'common', 'ceil' or 'floor', got '{other}'"),
                c.span,
            ))
        }
    };
    let x = match Num::of(&v) {
        Some(Num::Int(i)) if precision >= 0 => return Ok(Cow::Owned(Value::from(i))),
        Some(n) => n.as_f64(),
        None => return Err(type_error(ev, "filter 'round'", "a number", &v, c.span)),
    };
    let factor = 10f64.powi(precision as i32);
    let r = op(x * factor) / factor;
    // Precision 0 (the default) yields an integer: `79.6 | round` is 80, not 80.0.
    if precision <= 0 {
        if let Some(i) = Num::float_to_int(r) {
            return Ok(Cow::Owned(Value::from(i)));
        }
    }
    ev.number(Num::Float(r), c.span)
}

fn trim<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let s = string(ev, &v, c, "trim")?;
    let out = match arg_str(ev, c, 0, "trim")? {
        Some(chars) => s.trim_matches(|ch| chars.contains(ch)),
        None => s.trim(),
    };
    string_result(ev, out.to_owned(), c.span)
}

fn int<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let base = arg_int(ev, c, 1, "int")?.unwrap_or(10);
    if !(2..=36).contains(&base) {
        return Err(ev.err(
            ErrorKind::Other,
            "int: base must be between 2 and 36",
            c.span,
        ));
    }
    let parsed = match &*v {
        Value::Number(n) => match Num::from_number(n) {
            Num::Int(i) => Some(i),
            Num::Float(f) => Num::float_to_int(f.trunc()),
        },
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => {
            let t = s.trim();
            i64::from_str_radix(t, base as u32).ok().or_else(|| {
                (base == 10)
                    .then(|| {
                        t.parse::<f64>()
                            .ok()
                            .and_then(|f| Num::float_to_int(f.trunc()))
                    })
                    .flatten()
            })
        }
        _ => None,
    };
    match (parsed, c.slots.first().and_then(Option::as_ref)) {
        (Some(i), _) => Ok(Cow::Owned(Value::from(i))),
        (None, Some(d)) => Ok(Cow::Owned(d.clone().into_owned())),
        (None, None) => Err(ev.err(
            ErrorKind::Type,
            format!(
                "int: cannot convert {} ({}) to an integer; give a fallback with int(default)",
                a_type_name(&v),
                preview(&v)
            ),
            c.span,
        )),
    }
}

fn float<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let parsed = match &*v {
        Value::Number(n) => Some(Num::from_number(n).as_f64()),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    };
    match (parsed, c.slots.first().and_then(Option::as_ref)) {
        (Some(f), _) => ev.number(Num::Float(f), c.span),
        (None, Some(d)) => Ok(Cow::Owned(d.clone().into_owned())),
        (None, None) => Err(ev.err(
            ErrorKind::Type,
            format!(
                "float: cannot convert {} ({}) to a number; give a fallback with float(default)",
                a_type_name(&v),
                preview(&v)
            ),
            c.span,
        )),
    }
}

fn join<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let items = list(ev, &v, c, "join")?;
    let sep = arg_str(ev, c, 0, "join")?.unwrap_or("");
    let attr = attribute(c, 1);
    ev.tick(items.len() as u64, c.span)?;
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&to_text(attr_of(ev, item, attr, "join", c.span)?));
        if out.len() > MAX_OUTPUT {
            break;
        }
    }
    string_result(ev, out, c.span)
}

fn first_last<'a>(
    ev: &mut Eval<'a>,
    v: V<'a>,
    c: &CallArgs<'a>,
    first: bool,
) -> Result<V<'a>, Error> {
    let name = if first { "first" } else { "last" };
    let empty = |ev: &Eval<'_>, what: &str| {
        ev.err(
            ErrorKind::Undefined,
            format!("{name}: the {what} is empty"),
            c.span,
        )
    };
    match v {
        Cow::Borrowed(Value::Array(a)) => {
            let item = if first { a.first() } else { a.last() };
            item.map(Cow::Borrowed).ok_or_else(|| empty(ev, "list"))
        }
        Cow::Owned(Value::Array(mut a)) => {
            let item = if first { a.drain(..).next() } else { a.pop() };
            item.map(Cow::Owned).ok_or_else(|| empty(ev, "list"))
        }
        ref other => match &**other {
            Value::String(s) => {
                let ch = if first {
                    s.chars().next()
                } else {
                    s.chars().next_back()
                };
                ch.map(|ch| Cow::Owned(Value::String(ch.to_string())))
                    .ok_or_else(|| empty(ev, "string"))
            }
            other => Err(type_error(
                ev,
                &format!("filter '{name}'"),
                "a list or string",
                other,
                c.span,
            )),
        },
    }
}

fn to_list<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    match &*v {
        Value::Array(_) => Ok(v),
        Value::String(s) => {
            ev.tick(s.len() as u64, c.span)?;
            ev.charge(s.len() * 4, c.span)?;
            owned(Value::Array(
                s.chars().map(|ch| Value::String(ch.to_string())).collect(),
            ))
        }
        Value::Object(m) => owned(Value::Array(
            m.keys().map(|k| Value::String(k.clone())).collect(),
        )),
        other => Err(type_error(
            ev,
            "filter 'list'",
            "a list, string or object",
            other,
            c.span,
        )),
    }
}

fn reverse<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    match &*v {
        Value::Array(a) => owned(Value::Array(a.iter().rev().cloned().collect())),
        Value::String(s) => string_result(ev, s.chars().rev().collect(), c.span),
        other => Err(type_error(
            ev,
            "filter 'reverse'",
            "a list or string",
            other,
            c.span,
        )),
    }
}

fn replace<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let s = string(ev, &v, c, "replace")?;
    let old = arg_str(ev, c, 0, "replace")?.unwrap_or("");
    let new = match c.get(1) {
        Some(x) => to_text(x),
        None => Cow::Borrowed(""),
    };
    let count = arg_int(ev, c, 2, "replace")?
        .filter(|&n| n >= 0)
        .map(|n| n as usize);
    // Bound the output before building it: `'aaa' | replace('', big)` grows fast.
    let matches = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    let matches = count.map_or(matches, |n| n.min(matches));
    let size = s.len().saturating_add(matches.saturating_mul(new.len()));
    ev.charge(size, c.span)?;
    let out = match count {
        Some(n) => s.replacen(old, &new, n),
        None => s.replace(old, &new),
    };
    owned(Value::String(out))
}

fn split<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let s = string(ev, &v, c, "split")?;
    let max = arg_int(ev, c, 1, "split")?
        .filter(|&n| n >= 0)
        .map(|n| n as usize);
    ev.charge(s.len() * 2, c.span)?;
    let parts: Vec<Value> = match arg_str(ev, c, 0, "split")? {
        None => match max {
            // Whitespace split with a limit: split by whitespace runs, keep the tail.
            Some(n) => {
                let mut out = Vec::new();
                let mut rest = s.trim_start();
                while !rest.is_empty() && out.len() < n {
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    out.push(Value::String(rest[..end].to_owned()));
                    rest = rest[end..].trim_start();
                }
                if !rest.is_empty() {
                    out.push(Value::String(rest.to_owned()));
                }
                out
            }
            None => s
                .split_whitespace()
                .map(|p| Value::String(p.to_owned()))
                .collect(),
        },
        Some("") => {
            return Err(ev.err(
                ErrorKind::Other,
                "split: separator must not be empty",
                c.span,
            ))
        }
        Some(sep) => match max {
            Some(n) => s
                .splitn(n.saturating_add(1), sep)
                .map(|p| Value::String(p.to_owned()))
                .collect(),
            None => s.split(sep).map(|p| Value::String(p.to_owned())).collect(),
        },
    };
    ev.tick(parts.len() as u64, c.span)?;
    owned(Value::Array(parts))
}

/// `truncate(length=255, killwords=false, end='...', leeway=0)`, counted in characters.
fn truncate<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let s = string(ev, &v, c, "truncate")?;
    let length = arg_int(ev, c, 0, "truncate")?.unwrap_or(255).max(0) as usize;
    let killwords = arg_bool(c, 1);
    let end = arg_str(ev, c, 2, "truncate")?.unwrap_or("...");
    let leeway = arg_int(ev, c, 3, "truncate")?.unwrap_or(0).max(0) as usize;
    let n = s.chars().count();
    if n <= length.saturating_add(leeway) {
        return Ok(v);
    }
    let keep = length.saturating_sub(end.chars().count());
    let cut: String = s.chars().take(keep).collect();
    let cut = if killwords {
        cut.as_str()
    } else {
        cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head)
    };
    let out = format!("{cut}{end}");
    string_result(ev, out, c.span)
}

fn sum<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let items = list(ev, &v, c, "sum")?;
    let attr = attribute(c, 0);
    ev.tick(items.len() as u64, c.span)?;
    let mut total = match c.get(1) {
        None => Num::Int(0),
        Some(s) => Num::of(s).ok_or_else(|| type_error(ev, "sum start", "a number", s, c.span))?,
    };
    for item in items {
        let x = attr_of(ev, item, attr, "sum", c.span)?;
        let n = Num::of(x)
            .ok_or_else(|| type_error(ev, "filter 'sum'", "a list of numbers", x, c.span))?;
        total = match (total, n) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_add(b)
                .map_or(Num::Float(a as f64 + b as f64), Num::Int),
            (a, b) => Num::Float(a.as_f64() + b.as_f64()),
        };
    }
    ev.number(total, c.span)
}

/// The least (`want = Less`) or greatest item, by `attribute` if given.
pub(crate) fn extreme_of<'a>(
    ev: &mut Eval<'a>,
    items: Vec<&Value>,
    attr: Option<&str>,
    name: &str,
    want: Ordering,
    span: Span,
) -> Result<V<'a>, Error> {
    ev.tick(items.len() as u64, span)?;
    let mut best: Option<(&Value, &Value)> = None;
    for item in items {
        let key = attr_of(ev, item, attr, name, span)?;
        best = match best {
            None => Some((item, key)),
            Some((b, bk)) => {
                let ord = cmp_values(key, bk, false)
                    .ok_or_else(|| incomparable(ev, name, key, bk, span))?;
                if ord == want {
                    Some((item, key))
                } else {
                    Some((b, bk))
                }
            }
        };
    }
    match best {
        Some((item, _)) => Ok(Cow::Owned(item.clone())),
        None => Err(ev.err(
            ErrorKind::Undefined,
            format!("{name}: the list is empty"),
            span,
        )),
    }
}

fn sort<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let items = list(ev, &v, c, "sort")?;
    let reverse = arg_bool(c, 0);
    let case_sensitive = arg_bool(c, 1);
    let attr = attribute(c, 2);
    ev.tick(items.len() as u64 * 4, c.span)?;
    let mut keyed = Vec::with_capacity(items.len());
    for item in items {
        keyed.push((attr_of(ev, item, attr, "sort", c.span)?, item));
    }
    // Check comparability first so the sort itself cannot fail half-way.
    if let Some((k0, _)) = keyed.first() {
        for (k, _) in &keyed {
            if cmp_values(k0, k, true).is_none() {
                return Err(incomparable(ev, "sort", k0, k, c.span));
            }
        }
    }
    keyed.sort_by(|(a, _), (b, _)| cmp_values(a, b, case_sensitive).unwrap_or(Ordering::Equal));
    if reverse {
        keyed.reverse();
    }
    owned(Value::Array(
        keyed.into_iter().map(|(_, item)| item.clone()).collect(),
    ))
}

fn unique<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let items = list(ev, &v, c, "unique")?;
    let case_sensitive = arg_bool(c, 0);
    let attr = attribute(c, 1);
    ev.tick(items.len() as u64, c.span)?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let key = attr_of(ev, item, attr, "unique", c.span)?;
        // A canonical text key: case-folded strings, integral floats as ints (1 == 1.0).
        let canon = match key {
            Value::String(s) if !case_sensitive => format!("s{}", s.to_lowercase()),
            Value::String(s) => format!("s{s}"),
            Value::Number(n) => match Num::from_number(n) {
                Num::Float(f) if Num::float_to_int(f).is_some() => format!("n{}", f as i64),
                _ => format!("n{n}"),
            },
            other => format!("j{}", to_json(other, None)),
        };
        if seen.insert(canon) {
            out.push(item.clone());
        }
    }
    owned(Value::Array(out))
}

/// Call filter `name` on each item, with `extra` as its positional arguments.
fn apply_named<'a>(
    ev: &mut Eval<'a>,
    name: &str,
    item: V<'a>,
    extra: &[V<'a>],
    span: Span,
) -> Result<V<'a>, Error> {
    let Some(spec) = lookup(name) else {
        return Err(ev.err(
            ErrorKind::UnknownFilter,
            format!("unknown filter '{name}'{}", suggest::hint(name, names())),
            span,
        ));
    };
    if extra.len() > spec.sig.positional.len() || extra.len() < spec.sig.required {
        return Err(ev.err(
            ErrorKind::Other,
            format!(
                "filter '{}' cannot take {} argument(s) here",
                spec.sig.name,
                extra.len()
            ),
            span,
        ));
    }
    let mut slots: Vec<Option<V<'a>>> = Vec::new();
    slots.resize_with(spec.sig.positional.len() + spec.sig.kw_only.len(), || None);
    for (slot, v) in slots.iter_mut().zip(extra) {
        *slot = Some(v.clone());
    }
    let call = CallArgs {
        slots,
        rest: Vec::new(),
        span,
    };
    (spec.func)(ev, item, &call)
}

fn map<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let items = list(ev, &v, c, "map")?;
    ev.tick(items.len() as u64, c.span)?;
    let mut out = Vec::with_capacity(items.len());
    if let Some(attr) = attribute(c, 1) {
        for item in items {
            let value = match (get_attr(item, attr), c.get(2)) {
                (Some(x), _) => x.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    return Err(attr_of(ev, item, Some(attr), "map", c.span)
                        .err()
                        .unwrap_or_else(|| {
                            ev.err(ErrorKind::Undefined, "map: missing attribute", c.span)
                        }))
                }
            };
            out.push(value);
        }
    } else {
        let Some(name) = arg_str(ev, c, 0, "map")? else {
            return Err(ev.err(
                ErrorKind::Other,
                "map needs a filter name (`map('upper')`) or an attribute (`map(attribute='name')`)",
                c.span,
            ));
        };
        for item in items {
            out.push(
                apply_named(ev, name, Cow::Owned(item.clone()), &c.rest, c.span)?.into_owned(),
            );
        }
    }
    owned(Value::Array(out))
}

/// select / reject / selectattr / rejectattr.
fn select<'a>(
    ev: &mut Eval<'a>,
    v: V<'a>,
    c: &CallArgs<'a>,
    keep: bool,
    by_attr: bool,
) -> Result<V<'a>, Error> {
    let name = match (keep, by_attr) {
        (true, false) => "select",
        (false, false) => "reject",
        (true, true) => "selectattr",
        (false, true) => "rejectattr",
    };
    let items = list(ev, &v, c, name)?;
    let (attr, test_slot) = if by_attr {
        (attribute(c, 0), 1)
    } else {
        (None, 0)
    };
    let test = match arg_str(ev, c, test_slot, name)? {
        None => None,
        Some(t) => Some(predicates::lookup(t).ok_or_else(|| {
            ev.err(
                ErrorKind::UnknownFilter,
                format!(
                    "unknown test '{t}'{}",
                    suggest::hint(t, predicates::names())
                ),
                c.span,
            )
        })?),
    };
    ev.tick(items.len() as u64, c.span)?;
    let mut out = Vec::new();
    for item in items {
        let subject = match attr {
            Some(a) => get_attr(item, a),
            None => Some(item),
        };
        let passed = match (subject, test) {
            // A missing attribute is undefined: only `undefined` accepts it.
            (None, t) => t.is_some_and(|t| t.name == "undefined"),
            (Some(x), None) => is_truthy(x),
            (Some(x), Some(t)) => (t.func)(ev, x, &c.rest, c.span)?,
        };
        if passed == keep {
            out.push(item.clone());
        }
    }
    owned(Value::Array(out))
}

fn rfc3339<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    let secs = match &*v {
        Value::Number(n) => Num::from_number(n).as_f64(),
        Value::String(s) => crate::time::parse_rfc3339(s).ok_or_else(|| {
            ev.err(
                ErrorKind::Other,
                format!("rfc3339: cannot parse {s:?} as an RFC 3339 timestamp"),
                c.span,
            )
        })?,
        other => {
            return Err(type_error(
                ev,
                "filter 'rfc3339'",
                "Unix seconds or an RFC 3339 string",
                other,
                c.span,
            ))
        }
    };
    crate::time::format_rfc3339(secs)
        .map(|s| Cow::Owned(Value::String(s)))
        .ok_or_else(|| {
            ev.err(
                ErrorKind::Arithmetic,
                format!("rfc3339: {secs} is outside the supported range (1970 to 9999)"),
                c.span,
            )
        })
}

fn timestamp<'a>(ev: &mut Eval<'a>, v: V<'a>, c: &CallArgs<'a>) -> Result<V<'a>, Error> {
    match &*v {
        Value::Number(_) => Ok(v),
        Value::String(s) => {
            let secs = crate::time::parse_rfc3339(s).ok_or_else(|| {
                ev.err(
                    ErrorKind::Other,
                    format!("timestamp: cannot parse {s:?} as an RFC 3339 timestamp"),
                    c.span,
                )
            })?;
            match Num::float_to_int(secs) {
                Some(i) => Ok(Cow::Owned(Value::from(i))),
                None => ev.number(Num::Float(secs), c.span),
            }
        }
        other => Err(type_error(
            ev,
            "filter 'timestamp'",
            "an RFC 3339 string",
            other,
            c.span,
        )),
    }
}
