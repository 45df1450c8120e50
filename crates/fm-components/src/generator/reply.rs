//! Reading a model's reply: finding the JSON in it, checking it against `response_format`, and
//! the instruction that asks for JSON when a provider has no JSON mode.

use fm_expr::Value;

use super::ResponseFormat;

/// What the system prompt says when the stage wants JSON back.
pub(crate) fn json_instruction(format: &ResponseFormat) -> String {
    let base =
        "Answer with only a JSON object: no prose before or after it, no Markdown code fence.";
    match format {
        ResponseFormat::Schema { schema, .. } => {
            format!("{base} The object must conform to this JSON Schema:\n{schema}")
        }
        _ => base.to_owned(),
    }
}

/// The JSON in a reply: the whole reply; else the first fenced block (```json or ```); else,
/// as a fallback, the first balanced `{...}` that parses. Only objects and arrays count.
pub(crate) fn extract_json(text: &str) -> Option<Value> {
    let container = |v: Value| (v.is_object() || v.is_array()).then_some(v);
    let trimmed = text.trim();
    if let Some(v) = serde_json::from_str(trimmed).ok().and_then(container) {
        return Some(v);
    }
    if let Some(v) = fenced(trimmed)
        .and_then(|f| serde_json::from_str(f.trim()).ok())
        .and_then(container)
    {
        return Some(v);
    }
    first_object(trimmed)
}

/// The inside of the first Markdown code fence.
fn fenced(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    // The info string (`json`, `JSON`, nothing) runs to the end of the line.
    let body_start = after.find('\n')? + 1;
    let body = &after[body_start..];
    let end = body.find("```").unwrap_or(body.len());
    Some(&body[..end])
}

/// The first `{...}` block with balanced braces (strings respected) that parses as an object.
fn first_object(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let mut search_from = 0;
    // Bounded: a reply full of unparsable braces is not worth a quadratic scan.
    for _ in 0..64 {
        let off = text[search_from..].find('{')?;
        let start = search_from + off;
        let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate().skip(start) {
            if in_str {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end?;
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&text[start..=end]) {
            return Some(v);
        }
        search_from = start + 1;
    }
    None
}

/// Up to five schema violations, each as "at <path>: <message>".
pub(crate) fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            format!("at {at}: {e}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_reply() {
        assert_eq!(extract_json(" {\"a\": 1} "), Some(json!({"a": 1})));
        assert_eq!(extract_json("[1, 2]"), Some(json!([1, 2])));
        assert_eq!(extract_json("42"), None);
        assert_eq!(extract_json("\"text\""), None);
    }

    #[test]
    fn fenced_reply() {
        let t = "Here is my analysis:\n```json\n{\"issue_type\": \"OOM\", \"confidence\": \"high\"}\n```\nHope it helps.";
        assert_eq!(
            extract_json(t),
            Some(json!({"issue_type": "OOM", "confidence": "high"}))
        );
        let t = "```\n{\"a\": \"}\"}\n```";
        assert_eq!(extract_json(t), Some(json!({"a": "}"})));
    }

    #[test]
    fn first_object_fallback() {
        let t = "Analysis {not json} then {\"root_cause\": \"leak {in} loop\", \"n\": {\"x\": 1}} and more";
        assert_eq!(
            extract_json(t),
            Some(json!({"root_cause": "leak {in} loop", "n": {"x": 1}}))
        );
        assert_eq!(extract_json("no json here {"), None);
        assert_eq!(extract_json("plain prose"), None);
    }

    #[test]
    fn schema_messages() {
        let schema = json!({"type": "object", "required": ["issue_type"], "properties": {"confidence": {"enum": ["high", "low"]}}});
        let v = jsonschema::validator_for(&schema).unwrap();
        let errs = schema_errors(&v, &json!({"confidence": "maybe"}));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("issue_type")));
        assert!(errs.iter().any(|e| e.starts_with("at /confidence")));
    }
}
