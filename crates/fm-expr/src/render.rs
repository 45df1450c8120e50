//! Turning values into text: the mixed-template rule and `tojson`.
//!
//! Text is JSON-flavoured on purpose (`true`, `null`, compact JSON for
//! containers) rather than Python's repr (`True`, `None`, `{'a': 1}`), and
//! nothing is HTML-escaped: the output goes into JSON bodies, URLs, prompts.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

/// Text rendering of one value per the mixed rule: strings as-is, numbers and
/// booleans as JSON, null as `null`, lists and objects as compact JSON.
pub fn to_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Number(n) => Cow::Owned(n.to_string()),
        other => Cow::Owned(to_json(other, None)),
    }
}

/// JSON text, compact or indented by `indent` spaces. serde_json escapes only
/// what JSON requires (no `<`/`>`/`&` escaping, non-ASCII kept as is).
pub(crate) fn to_json(v: &Value, indent: Option<usize>) -> String {
    let mut out = Vec::new();
    let ok = match indent {
        None => serde_json::to_writer(&mut out, v).is_ok(),
        Some(n) => {
            let pad = vec![b' '; n];
            let fmt = serde_json::ser::PrettyFormatter::with_indent(&pad);
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            v.serialize(&mut ser).is_ok()
        }
    };
    // Serializing a `Value` into a Vec cannot fail and yields UTF-8; stay total anyway.
    if !ok {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}
