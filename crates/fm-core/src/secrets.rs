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

    /// Reads exactly `names`. Every missing name, and every value too short to mask safely
    /// (see [`unsafe_to_mask`]), is returned in the error.
    pub fn resolve(&self, names: &BTreeSet<String>) -> Result<Secrets, SecretProblems> {
        let mut values = BTreeMap::new();
        let mut problems = SecretProblems::default();
        for n in names {
            match self.get(n) {
                Some(v) => match unsafe_to_mask(&v) {
                    Some(why) => problems.unmaskable.push((n.clone(), why)),
                    None => {
                        values.insert(n.clone(), v);
                    }
                },
                None => problems.missing.push(n.clone()),
            }
        }
        if problems.is_empty() {
            Ok(Secrets::new(values))
        } else {
            Err(problems)
        }
    }
}

/// Why the secrets of a run could not be resolved: names not provided anywhere, and values that
/// cannot be masked safely (name and reason; never the value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretProblems {
    pub missing: Vec<String>,
    pub unmaskable: Vec<(String, String)>,
}

impl SecretProblems {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unmaskable.is_empty()
    }
}

impl std::fmt::Display for SecretProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        if !self.missing.is_empty() {
            write!(f, "missing secrets: {}", self.missing.join(", "))?;
            first = false;
        }
        for (name, why) in &self.unmaskable {
            if !first {
                f.write_str("; ")?;
            }
            write!(f, "secret {name} is refused: {why}")?;
            first = false;
        }
        Ok(())
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

/// The shortest secret value fm accepts. Masking replaces a secret wherever it stands as a whole
/// value or a whole token; a shorter value occurs by chance in ordinary text too often for either
/// masking it there (corrupting the text) or leaving it (leaking it) to be acceptable.
pub const MIN_SECRET_CHARS: usize = 8;

/// Why a secret value cannot be masked safely, if it cannot. The value itself is never part of
/// the message.
pub fn unsafe_to_mask(value: &str) -> Option<String> {
    let n = value.chars().count();
    if value.trim().is_empty() {
        Some("its value is empty".to_owned())
    } else if n < MIN_SECRET_CHARS {
        Some(format!(
            "its value is {n} character{} long: fm masks secrets in everything it prints and records, and a value shorter than {MIN_SECRET_CHARS} characters cannot be told apart from ordinary text",
            if n == 1 { "" } else { "s" }
        ))
    } else {
        None
    }
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

/// Replaces secret values with `***`: a string that is a secret, and every occurrence of a
/// secret that stands as a whole token (not inside a longer word: a secret `dep` leaves
/// `deploy` alone). Adjacent secrets (`{{secrets.A}}{{secrets.B}}`) are masked together.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    needles: Vec<String>,
}

pub const MASK: &str = "***";

/// Characters that continue a word: a secret bordered by one of these on a side where the
/// secret itself starts (or ends) with one is part of a longer token, not a token of its own.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

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

    /// The byte ranges of `s` to mask, sorted and disjoint.
    fn spans(&self, s: &str) -> Vec<(usize, usize)> {
        // Every occurrence of every secret, longest secrets first so that an overlap keeps the
        // longer one.
        let mut found: Vec<(usize, usize)> = Vec::new();
        for n in &self.needles {
            for (at, m) in s.match_indices(n.as_str()) {
                let span = (at, at + m.len());
                if !found.iter().any(|&(a, b)| span.0 < b && a < span.1) {
                    found.push(span);
                }
            }
        }
        if found.is_empty() {
            return found;
        }
        found.sort_unstable();
        // An occurrence is masked when both its ends are token boundaries: the string's edge or
        // a non-word character on either side of the edge. Occurrences that touch end to end
        // within a word (`{{secrets.A}}{{secrets.B}}`) form one token: masked together when
        // the outer ends of the whole group are boundaries.
        let boundary = |at: usize| -> bool {
            match (s[..at].chars().next_back(), s[at..].chars().next()) {
                (Some(b), Some(a)) => !is_word_char(b) || !is_word_char(a),
                _ => true,
            }
        };
        let mut masked: Vec<(usize, usize)> = Vec::new();
        let mut group: Vec<(usize, usize)> = Vec::new();
        let flush = |group: &mut Vec<(usize, usize)>, masked: &mut Vec<(usize, usize)>| {
            if let (Some(first), Some(last)) = (group.first(), group.last()) {
                if boundary(first.0) && boundary(last.1) {
                    masked.append(group);
                }
            }
            group.clear();
        };
        for span in found {
            let joined = group
                .last()
                .is_some_and(|last| last.1 == span.0 && !boundary(span.0));
            if !joined {
                flush(&mut group, &mut masked);
            }
            group.push(span);
        }
        flush(&mut group, &mut masked);
        masked
    }

    pub fn redact_str(&self, s: &str) -> String {
        if self.needles.is_empty() {
            return s.to_owned();
        }
        let spans = self.spans(s);
        if spans.is_empty() {
            return s.to_owned();
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for (a, b) in spans {
            out.push_str(&s[last..a]);
            out.push_str(MASK);
            last = b;
        }
        out.push_str(&s[last..]);
        out
    }

    fn needs_redaction(&self, s: &str) -> bool {
        self.needles.iter().any(|n| s.contains(n.as_str())) && !self.spans(s).is_empty()
    }

    /// Redacts in place every string (and object key) inside a value.
    pub fn redact_value(&self, v: &mut Value) {
        if self.needles.is_empty() {
            return;
        }
        match v {
            Value::String(s) if self.needs_redaction(s) => {
                *s = self.redact_str(s);
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_value(i)),
            Value::Object(map) => {
                if map.keys().any(|k| self.needs_redaction(k)) {
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
        let r = Redactor::new(["tok-1234567".to_owned(), "tok-1234".to_owned()]);
        let mut v =
            serde_json::json!({"h": "Bearer tok-1234567", "l": ["x tok-1234 y"], "tok-1234567": 1});
        r.redact_value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"h": "Bearer ***", "l": ["x *** y"], "***": 1})
        );
    }

    #[test]
    fn masking_never_corrupts_keys_or_words() {
        let r = Redactor::new(["deploy01".to_owned(), "message1".to_owned()]);
        let mut v = serde_json::json!({
            "message1x": "https://deploy01x.internal/deploy01/v1",
            "url": "https://deploy01.internal",
            "list": ["deploy01", "redeploy01", "deploy012", "a_deploy01"],
        });
        r.redact_value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "message1x": "https://deploy01x.internal/***/v1",
                "url": "https://***.internal",
                "list": ["***", "redeploy01", "deploy012", "a_deploy01"],
            })
        );
    }

    #[test]
    fn adjacent_secrets_are_masked_together() {
        let r = Redactor::new(["userABCD".to_owned(), "passWXYZ".to_owned()]);
        assert_eq!(r.redact_str("userABCDpassWXYZ"), "******");
        assert_eq!(r.redact_str("auth=userABCDpassWXYZ;"), "auth=******;");
        // A secret whose own edge is not a word character is a token of its own there.
        let r = Redactor::new(["/hooks/T0/B0".to_owned()]);
        assert_eq!(r.redact_str("https://x/hooks/T0/B0"), "https://x***");
    }

    #[test]
    fn short_and_empty_secrets_are_refused_with_the_reason() {
        let mut src = SecretSource::empty();
        src.set("E", "e");
        src.set("EMPTY", "");
        src.set("OK", "long-enough-value");
        let names: BTreeSet<String> = ["E", "EMPTY", "OK", "GONE"].map(String::from).into();
        let err = src.resolve(&names).err().unwrap_or_default();
        assert_eq!(err.missing, vec!["GONE".to_owned()]);
        let refused: Vec<&str> = err.unmaskable.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(refused, ["E", "EMPTY"]);
        let text = err.to_string();
        assert!(text.contains("1 character long"), "{text}");
        assert!(text.contains("empty"), "{text}");
        let names: BTreeSet<String> = ["OK".to_owned()].into();
        assert!(src.resolve(&names).is_ok());
    }
}
