//! Reading a pipeline file: JSON or YAML into a JSON value, and mapping a JSON path back to a
//! line and column so problems point at the text the user wrote.

use std::path::Path;

use fm_expr::Value;

use crate::problem::Problem;

/// The text of a pipeline file and its parsed value.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    pub is_yaml: bool,
}

impl Source {
    pub fn from_text(name: impl Into<String>, text: impl Into<String>) -> Self {
        let name = name.into();
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        Source {
            name,
            text: text.into(),
            is_yaml,
        }
    }

    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::from_text(path.display().to_string(), text))
    }

    /// Parses the text. A syntax error is one problem with its line and column.
    pub fn parse(&self) -> Result<Value, Box<Problem>> {
        if self.is_yaml {
            serde_yaml_ng::from_str::<Value>(&self.text).map_err(|e| {
                let mut p = Problem::new("syntax", "$", format!("YAML syntax error: {e}"));
                if let Some(loc) = e.location() {
                    p.line = Some(loc.line());
                    p.column = Some(loc.column());
                }
                Box::new(p)
            })
        } else {
            serde_json::from_str::<Value>(&self.text).map_err(|e| {
                let mut p = Problem::new("syntax", "$", format!("JSON syntax error: {e}"))
                    .with_hint("check for a missing comma, quote or bracket near that position");
                p.line = Some(e.line());
                p.column = Some(e.column());
                Box::new(p)
            })
        }
    }

    /// Fills in line and column for every problem whose path can be found in the text.
    pub fn locate_all(&self, problems: &mut [Problem]) {
        if self.is_yaml {
            return; // YAML positions are only known for syntax errors.
        }
        for p in problems.iter_mut().filter(|p| p.line.is_none()) {
            if let Some(offset) = locate_json_path(&self.text, &p.path) {
                let (line, column) = line_col(&self.text, offset);
                p.line = Some(line);
                p.column = Some(column);
            }
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// One step of a user-facing JSON path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]")?;
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            steps.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Key(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    Some(steps)
}

/// The byte offset of the value (or, for a missing key, the enclosing object) at `path`.
/// A small scanner rather than a span-keeping parser: it only runs when there are problems.
fn locate_json_path(text: &str, path: &str) -> Option<usize> {
    let steps = parse_path(path)?;
    let bytes = text.as_bytes();
    let mut pos = skip_ws(bytes, 0);
    let mut key_pos = None;
    for step in &steps {
        match (step, bytes.get(pos)?) {
            (Step::Key(k), b'{') => {
                let mut p = skip_ws(bytes, pos + 1);
                let mut found = false;
                while bytes.get(p) == Some(&b'"') {
                    let key_start = p;
                    let (key, after) = read_string(text, p)?;
                    p = skip_ws(bytes, after);
                    if bytes.get(p) != Some(&b':') {
                        return None;
                    }
                    p = skip_ws(bytes, p + 1);
                    if key == *k {
                        key_pos = Some(key_start);
                        pos = p;
                        found = true;
                        break;
                    }
                    p = skip_ws(bytes, skip_value(text, p)?);
                    if bytes.get(p) == Some(&b',') {
                        p = skip_ws(bytes, p + 1);
                    }
                }
                if !found {
                    return Some(pos); // the object that lacks the key
                }
            }
            (Step::Index(i), b'[') => {
                let mut p = skip_ws(bytes, pos + 1);
                for _ in 0..*i {
                    p = skip_ws(bytes, skip_value(text, p)?);
                    if bytes.get(p) != Some(&b',') {
                        return Some(pos);
                    }
                    p = skip_ws(bytes, p + 1);
                }
                key_pos = None;
                pos = p;
            }
            _ => return Some(pos),
        }
    }
    // For a key, point at the key itself: that is what an unknown-key problem is about.
    Some(key_pos.unwrap_or(pos))
}

fn skip_ws(bytes: &[u8], mut p: usize) -> usize {
    while matches!(bytes.get(p), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        p += 1;
    }
    p
}

fn read_string(text: &str, start: usize) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut p = start + 1;
    while p < bytes.len() {
        match bytes[p] {
            b'\\' => p += 2,
            b'"' => {
                let raw = &text[start..=p];
                let s: String = serde_json::from_str(raw).ok()?;
                return Some((s, p + 1));
            }
            _ => p += 1,
        }
    }
    None
}

fn skip_value(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.get(start)? {
        b'"' => read_string(text, start).map(|(_, end)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut p = start;
            while p < bytes.len() {
                match bytes[p] {
                    b'"' => {
                        p = read_string(text, p)?.1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(p + 1);
                        }
                    }
                    _ => {}
                }
                p += 1;
            }
            None
        }
        _ => {
            let mut p = start;
            while p < bytes.len()
                && !matches!(bytes[p], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            {
                p += 1;
            }
            Some(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_indexes() {
        let text =
            "{\n  \"stages\": [\n    {\"id\": \"a\"},\n    {\"id\": \"b\", \"confg\": {}}\n  ]\n}";
        let off = locate_json_path(text, "stages[1].confg").unwrap_or(0);
        assert_eq!(line_col(text, off), (4, 17));
        let off = locate_json_path(text, "stages[0].id").unwrap_or(0);
        assert_eq!(line_col(text, off), (3, 6));
    }
}
