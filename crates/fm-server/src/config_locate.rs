//! Where a problem of `fm.toml` is: its path (`triggers[0].pipeline`) turned into a line and a
//! column of the text, so every problem of the config points at what to edit.

use fm_core::Problem;
use toml::de::{DeTable, DeValue};

/// Fills in line and column for every problem (without them) whose path, or the deepest part
/// of it that exists, is found in `text`.
pub fn locate_all(text: &str, problems: &mut [Problem]) {
    let Ok(doc) = DeTable::parse(text) else {
        return;
    };
    for p in problems
        .iter_mut()
        .filter(|p| p.line.is_none() && p.file.is_none())
    {
        if let Some(offset) = locate(doc.get_ref(), &p.path) {
            let (line, column) = line_col(text, offset);
            p.line = Some(line);
            p.column = Some(column);
        }
    }
}

/// A syntax error's position.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    line_col(text, offset)
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty() && *p != "$") {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(i) = rest[1..close].parse() {
                out.push(Seg::Index(i));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// The offset of the key (or element) at `path`, or of the deepest part of it that exists.
fn locate(doc: &DeTable<'_>, path: &str) -> Option<usize> {
    let mut table: Option<&DeTable<'_>> = Some(doc);
    let mut value: Option<&DeValue<'_>> = None;
    let mut found: Option<usize> = None;
    for seg in segments(path) {
        match seg {
            Seg::Key(k) => {
                let t = match (table, value) {
                    (Some(t), _) => t,
                    (None, Some(DeValue::Table(t))) => t,
                    _ => break,
                };
                let Some((key, v)) = t.get_key_value(k) else {
                    break;
                };
                found = Some(key.span().start);
                table = None;
                value = Some(v.get_ref());
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(items)) = value else {
                    break;
                };
                let Some(item) = items.get(i) else {
                    break;
                };
                found = Some(item.span().start);
                table = None;
                value = Some(item.get_ref());
            }
        }
    }
    found
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_point_at_keys_and_array_elements() {
        let text = "listen = \"x\"\n\n[[triggers]]\nsource = \"pagerduty\"\npipeline = \"p\"\n\n[[triggers]]\nsource = \"alertmanager\"\n";
        let mut ps = vec![
            Problem::new("a", "listen", "m"),
            Problem::new("b", "triggers[0].pipeline", "m"),
            Problem::new("c", "triggers[1].signing_secrets", "m"),
            Problem::new("d", "nowhere", "m"),
        ];
        locate_all(text, &mut ps);
        let at: Vec<_> = ps.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(at[0], (Some(1), Some(1)));
        assert_eq!(at[1], (Some(5), Some(1)));
        // Missing key: the element it belongs in.
        assert_eq!(at[2].0.map(|l| l >= 7), Some(true), "{at:?}");
        assert_eq!(at[3], (None, None));
    }
}
