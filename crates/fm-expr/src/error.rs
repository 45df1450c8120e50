//! Errors: one type for compile and evaluation failures, always carrying the
//! template text and the byte span of the offending token or expression so a
//! caller can point at it (`Error::render`).

use std::fmt;

/// A byte range `start..end` in the template source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// What went wrong, coarsely, so callers can react (a validator treats
/// `Undefined` differently from `Syntax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The template or expression does not parse, or names an invalid root/field.
    Syntax,
    /// A path does not resolve: missing key, index out of range, missing stage/secret/var.
    Undefined,
    /// An operator or filter got a value of the wrong type.
    Type,
    /// `x | nosuchfilter`
    UnknownFilter,
    /// `nosuchfunction()`
    UnknownFunction,
    /// A size, depth or step limit was hit.
    Limit,
    /// Division by zero, a non-finite result, an out-of-range conversion.
    Arithmetic,
    /// Anything else (bad filter argument values, unparsable timestamps, ...).
    Other,
}

/// A compile or evaluation error.
///
/// `Display` prints the one-line message plus a `line:column` position;
/// [`Error::render`] prints the message with the template line and a caret
/// line under the span.
///
/// (Not derived with `thiserror`: its convention treats a field named `source`
/// as the underlying error, and here `source` is the template text.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// The template text the span points into.
    pub source: String,
    pub span: Option<Span>,
}

impl Error {
    pub fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        source: &str,
        span: Option<Span>,
    ) -> Error {
        Error {
            kind,
            message: message.into(),
            source: source.to_owned(),
            span,
        }
    }

    /// 1-based line and column (in characters) of the span start.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let span = self.span?;
        let start = floor_char_boundary(&self.source, span.start);
        let before = &self.source[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.source[line_start..start].chars().count() + 1;
        Some((line, col))
    }

    /// The message, then the template line containing the span and a caret
    /// line (`^^^`) under it. Multi-line templates show only the line with the
    /// span start, prefixed by its line number. Very long lines are windowed
    /// around the span.
    pub fn render(&self) -> String {
        let mut out = self.message.clone();
        let Some(span) = self.span else {
            if !self.source.is_empty() && !self.source.contains('\n') {
                out.push_str("\n  ");
                out.push_str(&window(&self.source, 0, 0).0);
            }
            return out;
        };
        let start = floor_char_boundary(&self.source, span.start);
        let end = floor_char_boundary(&self.source, span.end.max(span.start));
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let line = &self.source[line_start..line_end];
        // Column and width in characters, so carets line up under non-ASCII text.
        let col = self.source[line_start..start].chars().count();
        let width = self.source[start..end.min(line_end)].chars().count().max(1);
        let (shown, col, width) = window(line, col, width);
        let multi_line = self.source.contains('\n');
        let prefix = if multi_line {
            let line_no = self.source[..start].matches('\n').count() + 1;
            format!("{line_no} | ")
        } else {
            "  ".to_owned()
        };
        let pad: String = if multi_line {
            format!("{} | ", " ".repeat(prefix.len() - 3))
        } else {
            "  ".to_owned()
        };
        out.push('\n');
        out.push_str(&prefix);
        out.push_str(&shown);
        out.push('\n');
        out.push_str(&pad);
        // Keep tabs in the caret line's indentation so it aligns with the text above.
        for ch in shown.chars().take(col) {
            out.push(if ch == '\t' { '\t' } else { ' ' });
        }
        out.push_str(&"^".repeat(width));
        out
    }
}

/// Shorten a very long line to a window around `col..col+width` (in chars),
/// marking cut ends with `…`. Returns the shown text and the adjusted column and width.
fn window(line: &str, col: usize, width: usize) -> (String, usize, usize) {
    const MAX: usize = 160;
    const CONTEXT: usize = 40;
    let len = line.chars().count();
    if len <= MAX {
        return (line.to_owned(), col, width);
    }
    let width = width.min(MAX - 2 * CONTEXT);
    let from = col.saturating_sub(CONTEXT);
    let to = (col + width + CONTEXT).min(len);
    let mut shown = String::new();
    let mut col = col - from;
    if from > 0 {
        shown.push('…');
        col += 1;
    }
    shown.extend(line.chars().skip(from).take(to - from));
    if to < len {
        shown.push('…');
    }
    (shown, col, width)
}

/// The largest char boundary `<= i` (spans are always on boundaries, but an
/// error must never be the thing that panics).
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some((line, col)) = self.line_col() {
            write!(f, " at {line}:{col}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_single_line() {
        let e = Error::new(
            ErrorKind::Undefined,
            "nope",
            "ab {{ x.y }} cd",
            Some(Span::new(6, 9)),
        );
        assert_eq!(e.render(), "nope\n  ab {{ x.y }} cd\n        ^^^");
        assert_eq!(e.to_string(), "nope at 1:7");
    }

    #[test]
    fn caret_multi_line() {
        let e = Error::new(
            ErrorKind::Undefined,
            "nope",
            "a\nbb {{ x }}\nc",
            Some(Span::new(8, 9)),
        );
        assert_eq!(e.render(), "nope\n2 | bb {{ x }}\n  |       ^");
    }

    #[test]
    fn out_of_range_span_does_not_panic() {
        let e = Error::new(ErrorKind::Other, "m", "é", Some(Span::new(1, 99)));
        let _ = e.render();
        let _ = e.to_string();
    }
}
