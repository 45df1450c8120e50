//! Value semantics shared by operators, filters and tests: type names,
//! truthiness, numeric coercion, equality and ordering.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// The name of a value's type as messages use it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Same, with an article: "a list", "an object", "null".
pub(crate) fn a_type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        other => format!("a {}", type_name(other)),
    }
}

/// Truthiness: null, false, 0, 0.0, "", [], {} are false; everything else true.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A number as arithmetic sees it: integers stay exact while they fit i64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(crate) fn of(v: &Value) -> Option<Num> {
        let Value::Number(n) = v else { return None };
        Some(Num::from_number(n))
    }

    pub(crate) fn from_number(n: &Number) -> Num {
        match n.as_i64() {
            Some(i) => Num::Int(i),
            // u64 beyond i64::MAX, or a float.
            None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Into a JSON value; `None` for NaN/infinity, which JSON cannot hold.
    pub(crate) fn to_value(self) -> Option<Value> {
        match self {
            Num::Int(i) => Some(Value::from(i)),
            Num::Float(f) => Number::from_f64(f).map(Value::Number),
        }
    }

    /// An integral float that fits i64 becomes an int (for `round`, `int`).
    pub(crate) fn float_to_int(f: f64) -> Option<i64> {
        // i64::MAX as f64 rounds up to 2^63, so compare with the exclusive bound.
        (f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f))
            .then_some(f as i64)
    }
}

/// Equality as `==` sees it: numbers compare by value across int/float,
/// containers element-wise; different types are simply unequal.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (Num::from_number(x), Num::from_number(y)) {
            (Num::Int(i), Num::Int(j)) => i == j,
            (x, y) => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Ordering for `<` and friends, `sort`, `min`, `max`: numbers numerically,
/// strings lexically (by code point), lists lexicographically. `None` when
/// the types cannot be ordered against each other.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (Num::from_number(x), Num::from_number(y)) {
            (Num::Int(i), Num::Int(j)) => Some(i.cmp(&j)),
            (x, y) => x.as_f64().partial_cmp(&y.as_f64()),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (a, b) in x.iter().zip(y) {
                match compare(a, b)? {
                    Ordering::Equal => continue,
                    other => return Some(other),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

/// A cheap upper-ish estimate of a value's serialized size, stopping early
/// once it passes `cap` (used to refuse building huge values).
pub(crate) fn approx_size(v: &Value, cap: usize) -> usize {
    fn go(v: &Value, acc: &mut usize, cap: usize) {
        if *acc > cap {
            return;
        }
        match v {
            Value::Null | Value::Bool(_) => *acc += 5,
            Value::Number(_) => *acc += 8,
            Value::String(s) => *acc += s.len() + 2,
            Value::Array(a) => {
                *acc += 2;
                for x in a {
                    *acc += 1;
                    go(x, acc, cap);
                    if *acc > cap {
                        return;
                    }
                }
            }
            Value::Object(o) => {
                *acc += 2;
                for (k, x) in o {
                    *acc += k.len() + 4;
                    go(x, acc, cap);
                    if *acc > cap {
                        return;
                    }
                }
            }
        }
    }
    let mut acc = 0;
    go(v, &mut acc, cap);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness() {
        for v in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!is_truthy(&v), "{v}");
        }
        for v in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("a"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(is_truthy(&v), "{v}");
        }
    }

    #[test]
    fn equality_across_numbers() {
        assert!(values_equal(&json!(1), &json!(1.0)));
        assert!(values_equal(
            &json!([1, {"a": 2}]),
            &json!([1.0, {"a": 2.0}])
        ));
        assert!(!values_equal(&json!(1), &json!("1")));
        assert_eq!(compare(&json!(1), &json!(1.5)), Some(Ordering::Less));
        assert_eq!(compare(&json!(1), &json!("1")), None);
    }
}
