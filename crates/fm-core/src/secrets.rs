//! Secrets: read only the names a pipeline references, from a `--secrets` file (JSON object or
//! dotenv lines) and then the environment; and a redactor that replaces every secret value with
//! `***` in everything the engine emits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fm_expr::Value;

/// Where secret values come from, before a pipeline picks the names it needs.
#[derive(Debug, Default, Clone)]
pub struct SecretSource {
    file: BTreeMap<String, String>,
    /// Values set programmatically (the sandbox); they win over the file and the environment.
    overrides: BTreeMap<String, String>,
    use_env: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read secrets file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("secrets file {path}: {message}")]
    Parse { path: String, message: String },
}

impl SecretSource {
    /// Environment only.
    pub fn from_env() -> Self {
        SecretSource {
            use_env: true,
            ..Default::default()
        }
    }

    /// Nothing at all (tests).
    pub fn empty() -> Self {
        SecretSource::default()
    }

    /// A JSON object file (`{"NAME": "value"}`) or dotenv lines (`NAME=value`), then the environment.
    pub fn from_file(path: &Path) -> Result<Self, SecretsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SecretsError::Read {
            path: shown.clone(),
            source,
        })?;
        let file = parse_secrets(&text).map_err(|message| SecretsError::Parse {
            path: shown,
            message,
        })?;
        Ok(SecretSource {
            file,
            overrides: BTreeMap::new(),
            use_env: true,
        })
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.overrides.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.overrides
            .get(name)
            .or_else(|| self.file.get(name))
            .cloned()
            .or_else(|| {
                if self.use_env {
                    std::env::var(name).ok()
                } else {
                    None
                }
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Reads exactly `names`. Missing ones are returned as the error (all of them).
    pub fn resolve(&self, names: &BTreeSet<String>) -> Result<Secrets, Vec<String>> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for n in names {
            match self.get(n) {
                Some(v) => {
                    values.insert(n.clone(), v);
                }
                None => missing.push(n.clone()),
            }
        }
        if missing.is_empty() {
            Ok(Secrets::new(values))
        } else {
            Err(missing)
        }
    }
}

fn parse_secrets(text: &str) -> Result<BTreeMap<String, String>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(map) = v else {
            return Err("expected a JSON object of NAME: value".into());
        };
        return map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                // The value itself is never echoed: it may be a secret.
                _ => Err(format!("the value of '{k}' must be a string")),
            })
            .collect();
    }
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected NAME=value", n + 1));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.insert(k.trim().to_owned(), v.to_owned());
    }
    Ok(out)
}

/// The secret values of one run and the redactor built from them.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    redactor: Redactor,
}

impl Secrets {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        let redactor = Redactor::new(values.values().cloned());
        Secrets { values, redactor }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// Replaces secret values with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    needles: Vec<String>,
}

pub const MASK: &str = "***";

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut needles: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    pub fn redact_str(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        out
    }

    /// Redacts in place every string (and object key) inside a value.
    pub fn redact_value(&self, v: &mut Value) {
        if self.needles.is_empty() {
            return;
        }
        match v {
            Value::String(s) if self.needles.iter().any(|n| s.contains(n.as_str())) => {
                *s = self.redact_str(s);
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_value(i)),
            Value::Object(map) => {
                if map
                    .keys()
                    .any(|k| self.needles.iter().any(|n| k.contains(n.as_str())))
                {
                    let old = std::mem::take(map);
                    for (k, mut val) in old {
                        self.redact_value(&mut val);
                        map.insert(self.redact_str(&k), val);
                    }
                } else {
                    map.values_mut().for_each(|i| self.redact_value(i));
                }
            }
            _ => {}
        }
    }

    pub fn redacted(&self, v: &Value) -> Value {
        let mut c = v.clone();
        self.redact_value(&mut c);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_and_json_files_parse() {
        let d = parse_secrets("# c\nexport A=1\nB=\"two words\"\n").unwrap_or_default();
        assert_eq!(d.get("A").map(String::as_str), Some("1"));
        assert_eq!(d.get("B").map(String::as_str), Some("two words"));
        let j = parse_secrets("{\"K\": \"v\"}").unwrap_or_default();
        assert_eq!(j.get("K").map(String::as_str), Some("v"));
        let bad = parse_secrets("{\"K\": {\"nested\": \"s3cr3t\"}}")
            .err()
            .unwrap_or_default();
        assert!(!bad.contains("s3cr3t"), "an error must never echo a value");
    }

    #[test]
    fn redacts_nested_values_and_keys() {
        let r = Redactor::new(["tok-123".to_owned(), "tok".to_owned()]);
        let mut v = serde_json::json!({"h": "Bearer tok-123", "l": ["x tok y"], "tok-123": 1});
        r.redact_value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"h": "Bearer ***", "l": ["x *** y"], "***": 1})
        );
    }
}
