//! Lists of records, as FlowMason's data transformers (aggregate, join, filter_transformer) take
//! them: rendering a `data` template into rows, with a clear error when it is not a list of
//! objects.

use fm_core::{ErrorKind, StageError};
use fm_expr::Value;
use serde_json::Map;

/// `value` as a list of objects; `what` names it in the error.
pub fn rows(value: Value, what: &str) -> Result<Vec<Map<String, Value>>, StageError> {
    let Value::Array(items) = value else {
        return Err(StageError::new(
            ErrorKind::Data,
            format!(
                "{what} must be a list of records (objects), got {}",
                fm_core::model::reader::json_type_name(&value)
            ),
        )
        .retryable(false));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Ok(m),
            other => Err(StageError::new(
                ErrorKind::Data,
                format!(
                    "{what}[{i}] must be a record (an object), got {}",
                    fm_core::model::reader::json_type_name(&other)
                ),
            )
            .retryable(false)),
        })
        .collect()
}

/// Reads a key that may be one field name or a list of them.
pub fn field_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}
