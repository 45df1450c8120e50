//! Reading `--input` and applying `--set`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

/// `-` (stdin), inline JSON, or a JSON/YAML file.
pub fn read_input(arg: Option<&str>) -> anyhow::Result<Value> {
    let Some(arg) = arg else {
        return Ok(Value::Object(Map::new()));
    };
    let trimmed = arg.trim_start();
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the input from stdin")?;
        return serde_json::from_str(&text).context("the input on stdin is not valid JSON");
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return serde_json::from_str(arg)
            .context("--input looks like inline JSON but does not parse");
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("cannot read the input file {arg} (give a file, '-' for stdin, or inline JSON)")
    })?;
    if arg.ends_with(".yaml") || arg.ends_with(".yml") {
        serde_yaml_ng::from_str(&text)
            .with_context(|| format!("input file {arg} is not valid YAML"))
    } else {
        serde_json::from_str(&text).with_context(|| format!("input file {arg} is not valid JSON"))
    }
}

/// Applies `key.path=value`: the value is JSON when it parses as JSON, else a string.
pub fn apply_set(input: &mut Value, assignment: &str) -> anyhow::Result<()> {
    let Some((path, raw)) = assignment.split_once('=') else {
        bail!("--set {assignment}: expected KEY.PATH=VALUE");
    };
    if path.is_empty() || path.split('.').any(str::is_empty) {
        bail!("--set {assignment}: the key path has an empty part");
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let mut cur = input;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else {
            bail!(
                "--set {assignment}: '{}' is not an object",
                parts[..i].join(".")
            );
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return Ok(());
        }
        cur = map.entry((*part).to_owned()).or_insert(Value::Null);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_creates_nested_objects_and_parses_json() {
        let mut v = serde_json::json!({"payload": {"source": "a"}});
        apply_set(&mut v, "payload.severity=critical").unwrap_or_default();
        apply_set(&mut v, "payload.custom_details.replicas=3").unwrap_or_default();
        assert_eq!(v["payload"]["severity"], "critical");
        assert_eq!(v["payload"]["custom_details"]["replicas"], 3);
        assert!(apply_set(&mut v, "payload.source.x=1").is_err());
    }
}
