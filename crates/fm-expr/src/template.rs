//! `Template`: a string of text and `{{ expr }}` parts, compiled once and
//! rendered many times.

use std::borrow::Cow;

use serde_json::Value;

use crate::analysis::{self, Reference};
use crate::ast::Expr;
use crate::error::{Error, ErrorKind, Span};
use crate::eval::Eval;
use crate::lexer::{Lexer, Mode};
use crate::limits::{MAX_OUTPUT, MAX_SOURCE_LEN};
use crate::parser::Parser;
use crate::render::to_text;
use crate::scope::{CompileOptions, Scope};
use crate::value::is_truthy;

/// A compiled template. Cheap to share across threads; never re-parsed.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    references: Vec<Reference>,
    /// Exactly one expression and no text: renders to the expression's typed value.
    lone: bool,
}

#[derive(Debug, Clone)]
enum Part {
    /// Byte range of literal text in `source`.
    Text(usize, usize),
    Expr(Expr),
}

/// One part of a rendered template: literal text (borrowed from the
/// template source) or an interpolated value, not yet stringified.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderedPart<'t> {
    Text(&'t str),
    Value(Value),
}

fn too_long(source: &str) -> Option<Error> {
    (source.len() > MAX_SOURCE_LEN).then(|| {
        Error::new(
            ErrorKind::Limit,
            format!(
                "template is {} bytes; the limit is {} bytes",
                source.len(),
                MAX_SOURCE_LEN
            ),
            "",
            None,
        )
    })
}

impl Template {
    /// Compile a string that may contain `{{ expr }}` parts (and plain text). A string without `{{` is a literal.
    pub fn compile(source: &str, opts: &CompileOptions) -> Result<Template, Error> {
        if let Some(e) = too_long(source) {
            return Err(e);
        }
        let mut parts = Vec::new();
        let mut pos = 0;
        while let Some(found) = source[pos..].find("{{") {
            let open = pos + found;
            if open > pos {
                parts.push(Part::Text(pos, open));
            }
            let (tokens, end) =
                Lexer::tokenize(source, open + 2, open, Mode::Braces, opts.stage_ids)?;
            let expr = Parser::new(source, tokens).parse_all()?;
            parts.push(Part::Expr(expr));
            pos = end;
        }
        if pos < source.len() {
            parts.push(Part::Text(pos, source.len()));
        }
        Ok(Template::new(source, parts))
    }

    /// Compile a bare expression with no braces, e.g. `output.status_code != 200` (used for FlowMason-style conditions).
    ///
    /// For convenience a condition written with braces (`{{ x != 200 }}`,
    /// optionally surrounded by whitespace) is accepted too and behaves the same.
    pub fn compile_expression(source: &str, opts: &CompileOptions) -> Result<Template, Error> {
        if let Some(e) = too_long(source) {
            return Err(e);
        }
        let trimmed = source.trim();
        if trimmed.starts_with("{{") && trimmed.ends_with("}}") {
            let mut t = Template::compile(source, opts)?;
            t.parts.retain(|p| match p {
                Part::Text(a, b) => !source[*a..*b].trim().is_empty(),
                Part::Expr(_) => true,
            });
            t.lone = t.parts.len() == 1 && matches!(t.parts.first(), Some(Part::Expr(_)));
            if t.lone {
                return Ok(t);
            }
            return Err(Error::new(
                ErrorKind::Syntax,
                "expected a single expression (`x == 1` or `{{ x == 1 }}`), not text with several `{{ }}` parts",
                source,
                Some(Span::new(0, source.len())),
            ));
        }
        let (tokens, _) = Lexer::tokenize(source, 0, 0, Mode::Bare, opts.stage_ids)?;
        let expr = Parser::new(source, tokens).parse_all()?;
        Ok(Template::new(source, vec![Part::Expr(expr)]))
    }

    fn new(source: &str, parts: Vec<Part>) -> Template {
        let mut references = Vec::new();
        for p in &parts {
            if let Part::Expr(e) = p {
                analysis::collect(e, &mut references);
            }
        }
        let lone = parts.len() == 1 && matches!(parts.first(), Some(Part::Expr(_)));
        Template {
            source: source.to_owned(),
            parts,
            references,
            lone,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// No expression parts at all.
    pub fn is_literal(&self) -> bool {
        !self.parts.iter().any(|p| matches!(p, Part::Expr(_)))
    }

    /// Exactly one `{{ expr }}` and nothing else: `render` returns its typed value.
    pub fn is_lone_expression(&self) -> bool {
        self.lone
    }

    /// Typed rule: a template that is exactly one `{{ expr }}` (surrounding whitespace inside the braces allowed,
    /// nothing outside) evaluates to the expression's JSON value. Otherwise the result is Value::String of the
    /// text rendering. A literal evaluates to Value::String(source).
    pub fn render(&self, scope: &dyn Scope) -> Result<Value, Error> {
        if self.lone {
            if let Some(Part::Expr(e)) = self.parts.first() {
                let mut ev = Eval::new(scope, &self.source);
                return Ok(ev.eval(e)?.into_owned());
            }
        }
        if self.is_literal() {
            return Ok(Value::String(self.source.clone()));
        }
        self.render_string(scope).map(Value::String)
    }

    /// Always text (the mixed rendering rule, even for a lone expression: strings as-is, numbers/bools as JSON, null as `null`, arrays/objects as compact JSON).
    pub fn render_string(&self, scope: &dyn Scope) -> Result<String, Error> {
        let mut ev = Eval::new(scope, &self.source);
        let mut out = String::new();
        for part in &self.parts {
            let span = match part {
                Part::Text(a, b) => {
                    out.push_str(&self.source[*a..*b]);
                    Span::new(*a, *b)
                }
                Part::Expr(e) => {
                    let v = ev.eval(e)?;
                    out.push_str(&to_text(&v));
                    e.span
                }
            };
            if out.len() > MAX_OUTPUT {
                return Err(Error::new(
                    ErrorKind::Limit,
                    format!("rendered text is larger than {} MiB", MAX_OUTPUT >> 20),
                    &self.source,
                    Some(span),
                ));
            }
        }
        Ok(out)
    }

    /// The parts in order, evaluated but not stringified: for callers that encode each interpolation themselves
    /// (http_request percent-encodes values interpolated into a URL path/query).
    pub fn render_parts(&self, scope: &dyn Scope) -> Result<Vec<RenderedPart<'_>>, Error> {
        let mut ev = Eval::new(scope, &self.source);
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(a, b) => Ok(RenderedPart::Text(&self.source[*a..*b])),
                Part::Expr(e) => ev.eval(e).map(|v| RenderedPart::Value(v.into_owned())),
            })
            .collect()
    }

    /// Render and apply truthiness (for conditions).
    pub fn render_truthy(&self, scope: &dyn Scope) -> Result<bool, Error> {
        if self.lone {
            if let Some(Part::Expr(e)) = self.parts.first() {
                let mut ev = Eval::new(scope, &self.source);
                let v = ev.eval(e)?;
                return Ok(is_truthy(&v));
            }
        }
        Ok(is_truthy(&self.render(scope)?))
    }

    /// Every reference path the template reads, found statically.
    pub fn references(&self) -> &[Reference] {
        &self.references
    }
}

impl RenderedPart<'_> {
    /// The part as text, per the mixed rule.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            RenderedPart::Text(t) => Cow::Borrowed(t),
            RenderedPart::Value(v) => to_text(v),
        }
    }
}
