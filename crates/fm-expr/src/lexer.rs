//! Tokenizer for one expression: either the inside of a `{{ ... }}` (ends at
//! the `}}` that closes it) or a bare expression (ends at end of input).
//!
//! The one context-sensitive rule lives here: the stage id after `stages.` /
//! `upstream.` may contain `-` (see [`stage_id_len`]); everywhere else `-` is
//! the minus operator.

use std::collections::HashSet;

use crate::error::{Error, ErrorKind, Span};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    /// The id right after `stages.` / `upstream.`, cut by the hyphen rule.
    StageId(String),
    Dot,
    Comma,
    Colon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Pipe,
    Plus,
    Minus,
    Star,
    StarStar,
    Slash,
    SlashSlash,
    Percent,
    Tilde,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Assign,
    /// `}}` (template mode) or end of input (bare mode).
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Ident(s) | Tok::StageId(s) => format!("'{s}'"),
            Tok::End => "end of expression".to_owned(),
            other => format!("'{}'", other.punct()),
        }
    }

    fn punct(&self) -> &'static str {
        match self {
            Tok::Dot => ".",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Pipe => "|",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::StarStar => "**",
            Tok::Slash => "/",
            Tok::SlashSlash => "//",
            Tok::Percent => "%",
            Tok::Tilde => "~",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Assign => "=",
            _ => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Whether the expression is closed by `}}` or runs to the end of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Braces,
    Bare,
}

/// The hyphen rule. `run` is the maximal `[A-Za-z0-9_-]` run after `stages.`
/// or `upstream.`; returns how many bytes of it are the stage id.
///
/// * no known ids, or `run` itself is known: the whole run;
/// * else the longest known id `K` with `run == K + "-" + rest`: `K` (the `-`
///   is then the minus operator: with id `count`, `stages.count-1` is
///   `stages.count - 1`);
/// * else the whole run (the validator reports it as unknown).
pub fn stage_id_len(run: &str, stage_ids: Option<&HashSet<String>>) -> usize {
    let Some(ids) = stage_ids else {
        return run.len();
    };
    if ids.contains(run) {
        return run.len();
    }
    // Longest first: try the cut before each '-' from the right.
    run.char_indices()
        .rev()
        .filter(|&(i, c)| c == '-' && i > 0)
        .map(|(i, _)| i)
        .find(|&i| ids.contains(&run[..i]))
        .unwrap_or(run.len())
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

pub(crate) struct Lexer<'s> {
    src: &'s str,
    bytes: &'s [u8],
    pos: usize,
    mode: Mode,
    /// Where the expression (or its `{{`) starts, for "unclosed" errors.
    open: usize,
    stage_ids: Option<&'s HashSet<String>>,
    depth: usize,
    tokens: Vec<Token>,
}

impl<'s> Lexer<'s> {
    /// Tokenize starting at byte `start` of `src`. Returns the tokens (the
    /// last is `End`) and the byte offset just after the expression (after
    /// `}}` in template mode).
    pub(crate) fn tokenize(
        src: &'s str,
        start: usize,
        open: usize,
        mode: Mode,
        stage_ids: Option<&'s HashSet<String>>,
    ) -> Result<(Vec<Token>, usize), Error> {
        let mut lx = Lexer {
            src,
            bytes: src.as_bytes(),
            pos: start,
            mode,
            open,
            stage_ids,
            depth: 0,
            tokens: Vec::new(),
        };
        loop {
            if lx.next_token()? {
                return Ok((lx.tokens, lx.pos));
            }
        }
    }

    fn err(&self, msg: impl Into<String>, start: usize, end: usize) -> Error {
        Error::new(
            ErrorKind::Syntax,
            msg,
            self.src,
            Some(Span::new(start, end)),
        )
    }

    fn peek(&self, off: usize) -> Option<u8> {
        self.bytes.get(self.pos + off).copied()
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.tokens.push(Token {
            tok,
            span: Span::new(start, self.pos),
        });
    }

    /// Lex one token; true when the End token was pushed.
    fn next_token(&mut self) -> Result<bool, Error> {
        while self.peek(0).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(b) = self.peek(0) else {
            if self.mode == Mode::Braces {
                return Err(self.err(
                    "unclosed '{{': expected '}}' before the end of the template",
                    self.open,
                    self.open + 2,
                ));
            }
            self.push(Tok::End, start);
            return Ok(true);
        };
        let two = (b, self.peek(1).unwrap_or(0));
        let simple = match two {
            (b'}', b'}') if self.depth == 0 && self.mode == Mode::Braces => {
                self.pos += 2;
                self.tokens.push(Token {
                    tok: Tok::End,
                    span: Span::new(start, self.pos),
                });
                return Ok(true);
            }
            (b'*', b'*') => Some((Tok::StarStar, 2)),
            (b'/', b'/') => Some((Tok::SlashSlash, 2)),
            (b'=', b'=') => Some((Tok::EqEq, 2)),
            (b'!', b'=') => Some((Tok::Ne, 2)),
            (b'<', b'=') => Some((Tok::Le, 2)),
            (b'>', b'=') => Some((Tok::Ge, 2)),
            (b'.', _) => Some((Tok::Dot, 1)),
            (b',', _) => Some((Tok::Comma, 1)),
            (b':', _) => Some((Tok::Colon, 1)),
            (b'(', _) => Some((Tok::LParen, 1)),
            (b')', _) => Some((Tok::RParen, 1)),
            (b'[', _) => Some((Tok::LBracket, 1)),
            (b']', _) => Some((Tok::RBracket, 1)),
            (b'{', _) => {
                self.depth += 1;
                Some((Tok::LBrace, 1))
            }
            (b'}', _) => {
                if self.depth == 0 {
                    return Err(self.err("unexpected '}'", start, start + 1));
                }
                self.depth -= 1;
                Some((Tok::RBrace, 1))
            }
            (b'|', _) => Some((Tok::Pipe, 1)),
            (b'+', _) => Some((Tok::Plus, 1)),
            (b'-', _) => Some((Tok::Minus, 1)),
            (b'*', _) => Some((Tok::Star, 1)),
            (b'/', _) => Some((Tok::Slash, 1)),
            (b'%', _) => Some((Tok::Percent, 1)),
            (b'~', _) => Some((Tok::Tilde, 1)),
            (b'<', _) => Some((Tok::Lt, 1)),
            (b'>', _) => Some((Tok::Gt, 1)),
            (b'=', _) => Some((Tok::Assign, 1)),
            _ => None,
        };
        if let Some((tok, len)) = simple {
            self.pos += len;
            self.push(tok, start);
            return Ok(false);
        }
        match b {
            b'\'' | b'"' => self.string(b)?,
            b'0'..=b'9' => self.number()?,
            b if b.is_ascii_alphabetic() || b == b'_' => self.ident(),
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                let msg = if ch == '!' {
                    "unexpected '!': use 'not' for negation and '!=' for inequality".to_owned()
                } else if ch == '&' {
                    "unexpected '&': use 'and'".to_owned()
                } else {
                    format!("unexpected character {ch:?}")
                };
                return Err(self.err(msg, start, start + ch.len_utf8()));
            }
        }
        Ok(false)
    }

    fn ident(&mut self) {
        let start = self.pos;
        while self
            .peek(0)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        let name = &self.src[start..self.pos];
        // `stages`/`upstream` as a path root (not `x.stages`) followed directly by `.`:
        // apply the hyphen rule to the id.
        let after_dot = matches!(self.tokens.last(), Some(Token { tok: Tok::Dot, .. }));
        let is_root = (name == "stages" || name == "upstream") && !after_dot;
        self.push(Tok::Ident(name.to_owned()), start);
        if is_root && self.peek(0) == Some(b'.') {
            let dot = self.pos;
            self.pos += 1;
            self.push(Tok::Dot, dot);
            let id_start = self.pos;
            let mut end = id_start;
            while self.bytes.get(end).is_some_and(|&b| is_id_char(b)) {
                end += 1;
            }
            if end > id_start {
                let run = &self.src[id_start..end];
                self.pos = id_start + stage_id_len(run, self.stage_ids);
                self.push(
                    Tok::StageId(self.src[id_start..self.pos].to_owned()),
                    id_start,
                );
            }
        }
    }

    fn number(&mut self) -> Result<(), Error> {
        let start = self.pos;
        while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        // After a '.', digits are an index step (`items.0.name`), never a float.
        let after_dot = matches!(self.tokens.last(), Some(Token { tok: Tok::Dot, .. }));
        let mut is_float = false;
        if !after_dot {
            if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
                is_float = true;
                self.pos += 1;
                while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            if matches!(self.peek(0), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
                if self.peek(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                    is_float = true;
                    self.pos += 1 + sign;
                    while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                        self.pos += 1;
                    }
                }
            }
        }
        let text = &self.src[start..self.pos];
        let tok = match (is_float, text.parse::<i64>()) {
            (false, Ok(i)) => Tok::Int(i),
            // Too big for i64: keep it as a float rather than failing.
            _ => match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Tok::Float(f),
                _ => {
                    return Err(self.err(format!("number {text} is out of range"), start, self.pos))
                }
            },
        };
        self.push(tok, start);
        Ok(())
    }

    fn string(&mut self, quote: u8) -> Result<(), Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(ch) = self.src[self.pos..].chars().next() else {
                return Err(self.err("unterminated string", start, self.pos));
            };
            self.pos += ch.len_utf8();
            match ch {
                c if c as u32 == u32::from(quote) => break,
                '\\' => {
                    let esc_start = self.pos - 1;
                    let Some(e) = self.src[self.pos..].chars().next() else {
                        return Err(self.err("unterminated string", start, self.pos));
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' => out.push('\\'),
                        '\'' => out.push('\''),
                        '"' => out.push('"'),
                        '/' => out.push('/'),
                        'u' => out.push(self.unicode_escape(esc_start)?),
                        // Python keeps unknown escapes verbatim (`'\d'` is backslash-d);
                        // do the same so regex-ish strings survive.
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
        self.push(Tok::Str(out), start);
        Ok(())
    }

    fn hex4(&mut self, esc_start: usize) -> Result<u32, Error> {
        let digits = self.src.get(self.pos..self.pos + 4);
        match digits.and_then(|d| {
            d.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u32::from_str_radix(d, 16).ok())
                .flatten()
        }) {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => Err(self.err(
                "invalid \\u escape: expected 4 hex digits",
                esc_start,
                (self.pos + 4).min(self.src.len()).max(self.pos),
            )),
        }
    }

    /// `\uXXXX`, including a surrogate pair `\uD83D\uDE00`.
    fn unicode_escape(&mut self, esc_start: usize) -> Result<char, Error> {
        let hi = self.hex4(esc_start)?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.src.get(self.pos..self.pos + 2) != Some("\\u") {
                return Err(self.err("unpaired surrogate in \\u escape", esc_start, self.pos));
            }
            self.pos += 2;
            let lo = self.hex4(esc_start)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.err("unpaired surrogate in \\u escape", esc_start, self.pos));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code)
            .ok_or_else(|| self.err("invalid \\u escape (lone surrogate)", esc_start, self.pos))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn toks(src: &str, ids: &[&str]) -> Vec<Tok> {
        let set: HashSet<String> = ids.iter().map(|s| s.to_string()).collect();
        let (t, _) = Lexer::tokenize(src, 0, 0, Mode::Bare, Some(&set)).unwrap();
        t.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn hyphen_rule() {
        assert_eq!(
            stage_id_len("count-1", Some(&["count".to_string()].into())),
            5
        );
        assert_eq!(stage_id_len("fetch-logs", None), 10);
        assert_eq!(
            stage_id_len("a-b-c", Some(&["a".into(), "a-b".into()].into())),
            3
        );
        assert_eq!(stage_id_len("zz-1", Some(&["a".into()].into())), 4);
        assert_eq!(
            toks("stages.count-1", &["count"]),
            vec![
                Tok::Ident("stages".into()),
                Tok::Dot,
                Tok::StageId("count".into()),
                Tok::Minus,
                Tok::Int(1),
                Tok::End
            ]
        );
    }

    #[test]
    fn minus_elsewhere() {
        assert_eq!(
            toks("a-b", &[]),
            vec![
                Tok::Ident("a".into()),
                Tok::Minus,
                Tok::Ident("b".into()),
                Tok::End
            ]
        );
    }

    #[test]
    fn strings_and_numbers() {
        assert_eq!(
            toks(r#"'a\n\u00e9\d'"#, &[]),
            vec![Tok::Str("a\né\\d".into()), Tok::End]
        );
        assert_eq!(
            toks("1e3 1.5 2", &[]),
            vec![Tok::Float(1000.0), Tok::Float(1.5), Tok::Int(2), Tok::End]
        );
        assert_eq!(
            toks("a.0", &[]),
            vec![Tok::Ident("a".into()), Tok::Dot, Tok::Int(0), Tok::End]
        );
        assert_eq!(
            toks(r#""\ud83d\ude00""#, &[]),
            vec![Tok::Str("😀".into()), Tok::End]
        );
    }

    #[test]
    fn braces_end() {
        let (t, end) = Lexer::tokenize("{{ {'a': {}} }} x", 2, 0, Mode::Braces, None).unwrap();
        assert_eq!(end, 15);
        assert_eq!(t.last().unwrap().tok, Tok::End);
    }
}
