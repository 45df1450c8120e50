//! Recursive-descent parser from tokens to [`Expr`].
//!
//! Precedence, loosest first:
//!
//! | level | syntax |
//! |---|---|
//! | conditional | `a if c else b` |
//! | or | `a or b` |
//! | and | `a and b` |
//! | not | `not a` |
//! | comparison / tests | `== != < <= > >= in not in`, `is [not] test` (not chainable) |
//! | **pipe** | `a \| f(args)` |
//! | concat | `a ~ b` |
//! | additive | `+ -` |
//! | multiplicative | `* / // %` |
//! | unary | `-a +a` |
//! | power | `a ** b` (right-assoc; `-2**2` is `-(2**2)`) |
//! | postfix | `a.b  a[i]  f(x)` |
//!
//! The pipe sits between arithmetic and comparison on purpose (Jinja binds it
//! tighter than everything): `x / 1000 | round(1)` rounds the quotient, and
//! `x | length > 5` compares the length.

use serde_json::{Map, Value};

use crate::ast::{BinOp, Expr, ExprKind, Path, PathBase, RefRoot, Step, StepKind, UnaryOp};
use crate::error::{Error, ErrorKind, Span};
use crate::lexer::{Tok, Token};
use crate::limits::MAX_DEPTH;
use crate::scope::{StageField, EXECUTION_FIELDS};
use crate::suggest::hint;
use crate::{filters, functions, predicates};

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "if", "else", "true", "false", "null", "none", "True", "False",
    "None",
];

/// Binding strength of each level (higher binds tighter).
mod prec {
    use crate::ast::BinOp;

    pub const OR: u8 = 1;
    pub const AND: u8 = 2;
    pub const NOT: u8 = 3;
    pub const CMP: u8 = 4;
    pub const PIPE: u8 = 5;
    pub const CONCAT: u8 = 6;
    pub const ADD: u8 = 7;
    pub const MUL: u8 = 8;
    pub const UNARY: u8 = 9;
    pub const POW: u8 = 10;

    pub fn of(op: BinOp) -> u8 {
        match op {
            BinOp::Eq
            | BinOp::Ne
            | BinOp::Lt
            | BinOp::Le
            | BinOp::Gt
            | BinOp::Ge
            | BinOp::In
            | BinOp::NotIn => CMP,
            BinOp::Concat => CONCAT,
            BinOp::Add | BinOp::Sub => ADD,
            BinOp::Mul | BinOp::Div | BinOp::FloorDiv | BinOp::Mod => MUL,
            BinOp::Pow => POW,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Infix {
    Or,
    And,
    Is,
    Pipe,
    Bin(BinOp),
}

pub(crate) struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    /// Current recursion depth of the descent itself (the tree height is
    /// checked separately on every node).
    nesting: u32,
}

type PResult = Result<Expr, Error>;

impl<'s> Parser<'s> {
    pub(crate) fn new(src: &'s str, tokens: Vec<Token>) -> Parser<'s> {
        Parser {
            src,
            tokens,
            pos: 0,
            nesting: 0,
        }
    }

    /// Parse one whole expression; the next token must be `End`.
    pub(crate) fn parse_all(mut self) -> PResult {
        if self.peek() == &Tok::End {
            return Err(self.err_here("empty expression: expected a value between '{{' and '}}'"));
        }
        let e = self.expr()?;
        if self.peek() != &Tok::End {
            return Err(self.unexpected("an operator or the end of the expression"));
        }
        Ok(e)
    }

    // ---- token helpers -------------------------------------------------

    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, off: usize) -> &Tok {
        self.tokens
            .get(self.pos + off)
            .or(self.tokens.last())
            .map_or(&Tok::End, |t| &t.tok)
    }

    fn span(&self) -> Span {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(Span::default(), |t| t.span)
    }

    fn prev_span(&self) -> Span {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or(self.span(), |t| t.span)
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens.get(self.pos).cloned().unwrap_or(Token {
            tok: Tok::End,
            span: self.span(),
        });
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == tok {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err(&self, msg: impl Into<String>, span: Span) -> Error {
        Error::new(ErrorKind::Syntax, msg, self.src, Some(span))
    }

    fn err_here(&self, msg: impl Into<String>) -> Error {
        self.err(msg, self.span())
    }

    fn unexpected(&self, expected: &str) -> Error {
        self.err_here(format!(
            "unexpected {}: expected {expected}",
            self.peek().describe()
        ))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Span, Error> {
        if self.peek() == &tok {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Build a node, enforcing the tree-height limit.
    fn node(&self, kind: ExprKind, span: Span) -> PResult {
        let e = Expr::new(kind, span);
        if e.depth > MAX_DEPTH {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("expression is nested too deeply (limit {MAX_DEPTH})"),
                self.src,
                Some(span),
            ));
        }
        Ok(e)
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("expression is nested too deeply (limit {MAX_DEPTH})"),
                self.src,
                Some(self.span()),
            ));
        }
        Ok(())
    }

    // ---- grammar -------------------------------------------------------

    /// conditional: `binary [if binary [else expr]]`
    fn expr(&mut self) -> PResult {
        self.enter()?;
        let then = self.binary(prec::OR)?;
        let result = if self.eat_kw("if") {
            let cond = self.binary(prec::OR)?;
            let otherwise = if self.eat_kw("else") {
                Some(self.expr()?)
            } else {
                None
            };
            self.cond_node(then, cond, otherwise)?
        } else {
            then
        };
        self.nesting -= 1;
        Ok(result)
    }

    fn cond_node(&self, then: Expr, cond: Expr, otherwise: Option<Expr>) -> PResult {
        let end = otherwise.as_ref().map_or(cond.span, |e| e.span);
        let span = then.span.to(end);
        self.node(
            ExprKind::Cond {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: otherwise.map(Box::new),
            },
            span,
        )
    }

    /// The infix operator at the cursor: (kind, precedence, tokens it spans).
    fn infix(&self) -> Option<(Infix, u8, usize)> {
        use Infix::*;
        let bin = |op| Some((Bin(op), prec::of(op), 1));
        match self.peek() {
            Tok::Ident(s) => match s.as_str() {
                "or" => Some((Or, prec::OR, 1)),
                "and" => Some((And, prec::AND, 1)),
                "in" => bin(BinOp::In),
                "is" => Some((Is, prec::CMP, 1)),
                "not" if matches!(self.peek_at(1), Tok::Ident(t) if t == "in") => {
                    Some((Bin(BinOp::NotIn), prec::CMP, 2))
                }
                _ => None,
            },
            Tok::EqEq => bin(BinOp::Eq),
            Tok::Ne => bin(BinOp::Ne),
            Tok::Lt => bin(BinOp::Lt),
            Tok::Le => bin(BinOp::Le),
            Tok::Gt => bin(BinOp::Gt),
            Tok::Ge => bin(BinOp::Ge),
            Tok::Pipe => Some((Pipe, prec::PIPE, 1)),
            Tok::Tilde => bin(BinOp::Concat),
            Tok::Plus => bin(BinOp::Add),
            Tok::Minus => bin(BinOp::Sub),
            Tok::Star => bin(BinOp::Mul),
            Tok::Slash => bin(BinOp::Div),
            Tok::SlashSlash => bin(BinOp::FloorDiv),
            Tok::Percent => bin(BinOp::Mod),
            Tok::StarStar => bin(BinOp::Pow),
            _ => None,
        }
    }

    /// Precedence climbing over every binary level (one recursion per
    /// operand rather than one per level keeps the stack shallow).
    fn binary(&mut self, min: u8) -> PResult {
        let mut lhs = self.prefix()?;
        while let Some((op, p, ntok)) = self.infix() {
            if p < min {
                break;
            }
            self.pos += ntok;
            lhs = match op {
                Infix::Pipe => self.filter(lhs)?,
                Infix::Is => self.test_unchained(lhs)?,
                Infix::Or | Infix::And | Infix::Bin(_) => {
                    // `**` is right-associative and its exponent may be negated: `2 ** -1`.
                    let rhs_min = if matches!(op, Infix::Bin(BinOp::Pow)) {
                        prec::UNARY
                    } else {
                        p + 1
                    };
                    let rhs = self.binary(rhs_min)?;
                    self.combine(op, p, lhs, rhs)?
                }
            };
        }
        Ok(lhs)
    }

    fn test_unchained(&mut self, lhs: Expr) -> PResult {
        let t = self.test(lhs)?;
        self.no_chain()?;
        Ok(t)
    }

    fn combine(&self, op: Infix, p: u8, lhs: Expr, rhs: Expr) -> PResult {
        let span = lhs.span.to(rhs.span);
        let (a, b) = (Box::new(lhs), Box::new(rhs));
        let kind = match op {
            Infix::Or => ExprKind::Or(a, b),
            Infix::And => ExprKind::And(a, b),
            Infix::Bin(op) => ExprKind::Binary(op, a, b),
            Infix::Pipe | Infix::Is => {
                return Err(self.err("internal: not a binary operator", span))
            }
        };
        let e = self.node(kind, span)?;
        if p == prec::CMP {
            self.no_chain()?;
        }
        Ok(e)
    }

    fn no_chain(&self) -> Result<(), Error> {
        if matches!(self.infix(), Some((_, prec::CMP, _))) {
            return Err(self.err_here(
                "comparisons and tests cannot be chained: combine them with 'and' or add parentheses",
            ));
        }
        Ok(())
    }

    /// Prefix operators: `not x` (operand: comparison level and tighter),
    /// `-x`/`+x` (operand: power level, so `-2**2` is `-(2**2)`).
    fn prefix(&mut self) -> PResult {
        let (op, level) = match self.peek() {
            Tok::Ident(s) if s == "not" => (UnaryOp::Not, prec::NOT),
            Tok::Minus => (UnaryOp::Neg, prec::UNARY),
            Tok::Plus => (UnaryOp::Pos, prec::UNARY),
            _ => return self.postfix(),
        };
        let start = self.bump().span;
        self.enter()?;
        let inner = self.binary(level)?;
        self.nesting -= 1;
        self.unary_node(op, start, inner)
    }

    fn unary_node(&self, op: UnaryOp, start: Span, inner: Expr) -> PResult {
        let span = start.to(inner.span);
        // Fold `-3` into a literal so `a[-1]` is a static index.
        if let (UnaryOp::Neg, ExprKind::Literal(Value::Number(n))) = (op, &inner.kind) {
            let folded = match crate::value::Num::from_number(n) {
                crate::value::Num::Int(i) => i.checked_neg().map(Value::from),
                crate::value::Num::Float(f) => serde_json::Number::from_f64(-f).map(Value::Number),
            };
            if let Some(v) = folded {
                return self.node(ExprKind::Literal(v), span);
            }
        }
        self.node(ExprKind::Unary(op, Box::new(inner)), span)
    }

    /// After `is`: `[not] name [(args) | literal]`.
    fn test(&mut self, operand: Expr) -> PResult {
        let negated = self.eat_kw("not");
        let (name, name_span) = match self.bump() {
            Token {
                tok: Tok::Ident(n),
                span,
            } => (n, span),
            t => {
                return Err(self.err(
                    format!(
                        "unexpected {}: expected a test name after 'is' (e.g. 'is defined')",
                        t.tok.describe()
                    ),
                    t.span,
                ))
            }
        };
        let Some(spec) = predicates::lookup(&name) else {
            return Err(Error::new(
                ErrorKind::UnknownFilter,
                format!(
                    "unknown test '{name}'{}; tests: {}",
                    hint(&name, predicates::names()),
                    predicates::names().collect::<Vec<_>>().join(", ")
                ),
                self.src,
                Some(name_span),
            ));
        };
        let mut args = Vec::new();
        if self.eat(&Tok::LParen) {
            let (pos, kw) = self.call_args()?;
            if let Some((_, span, _)) = kw.first() {
                return Err(self.err("tests take positional arguments only", *span));
            }
            args = pos;
        } else if self.starts_literal() {
            args.push(self.postfix()?);
        }
        let end = args
            .last()
            .map_or(name_span, |a| a.span)
            .to(self.prev_span());
        if args.len() < spec.args.0 || args.len() > spec.args.1 {
            return Err(self.err(
                format!(
                    "test '{}' takes {} argument{}, got {}",
                    spec.name,
                    if spec.args.0 == spec.args.1 {
                        spec.args.0.to_string()
                    } else {
                        format!("{} to {}", spec.args.0, spec.args.1)
                    },
                    if spec.args.1 == 1 { "" } else { "s" },
                    args.len()
                ),
                name_span.to(end),
            ));
        }
        let span = operand.span.to(end);
        self.node(
            ExprKind::Test {
                operand: Box::new(operand),
                test: spec,
                negated,
                args,
            },
            span,
        )
    }

    /// A literal that may follow a test name without parentheses (`is divisibleby 3`).
    fn starts_literal(&self) -> bool {
        match self.peek() {
            Tok::Int(_) | Tok::Float(_) | Tok::Str(_) => true,
            Tok::Ident(s) => matches!(
                s.as_str(),
                "true" | "false" | "null" | "none" | "True" | "False" | "None"
            ),
            _ => false,
        }
    }

    /// After `|`: `name [(args)]`, applied to `lhs`.
    fn filter(&mut self, lhs: Expr) -> PResult {
        let (name, name_span) = match self.bump() {
            Token {
                tok: Tok::Ident(n),
                span,
            } => (n, span),
            t => {
                return Err(self.err(
                    format!(
                        "unexpected {}: expected a filter name after '|'",
                        t.tok.describe()
                    ),
                    t.span,
                ))
            }
        };
        let Some(spec) = filters::lookup(&name) else {
            return Err(Error::new(
                ErrorKind::UnknownFilter,
                format!("unknown filter '{name}'{}", hint(&name, filters::names())),
                self.src,
                Some(name_span),
            ));
        };
        let (pos, kw) = if self.eat(&Tok::LParen) {
            self.call_args()?
        } else {
            (Vec::new(), Vec::new())
        };
        let call_span = name_span.to(self.prev_span());
        filters::check_static_args(spec, &pos, self.src)?;
        let args = spec.sig.bind("filter", pos, kw, self.src, call_span)?;
        let span = lhs.span.to(call_span);
        self.node(
            ExprKind::Filter {
                operand: Box::new(lhs),
                filter: spec,
                args,
                name_span,
            },
            span,
        )
    }

    /// After `(`: arguments up to and including `)`. Positional first, then `name=value`.
    #[allow(clippy::type_complexity)]
    fn call_args(&mut self) -> Result<(Vec<Expr>, Vec<(String, Span, Expr)>), Error> {
        let mut pos = Vec::new();
        let mut kw = Vec::new();
        loop {
            if self.eat(&Tok::RParen) {
                return Ok((pos, kw));
            }
            if matches!((self.peek(), self.peek_at(1)), (Tok::Ident(_), Tok::Assign)) {
                kw.push(self.kwarg()?);
            } else {
                let value = self.expr()?;
                if !kw.is_empty() {
                    return Err(
                        self.err("positional argument after a keyword argument", value.span)
                    );
                }
                pos.push(value);
            }
            if !self.eat(&Tok::Comma) {
                self.expect(Tok::RParen, "',' or ')'")?;
                return Ok((pos, kw));
            }
        }
    }

    /// `name=value`
    fn kwarg(&mut self) -> Result<(String, Span, Expr), Error> {
        let t = self.bump();
        self.pos += 1;
        let value = self.expr()?;
        let name = match t.tok {
            Tok::Ident(n) => n,
            _ => String::new(),
        };
        Ok((name, t.span, value))
    }

    /// A primary followed by `.key`, `[index]` steps; a bare name becomes a
    /// classified path root, a bare name followed by `(` a function call.
    fn postfix(&mut self) -> PResult {
        let is_name = matches!(self.peek(), Tok::Ident(n) if !KEYWORDS.contains(&n.as_str()));
        if is_name {
            return self.named();
        }
        let primary = self.primary()?;
        self.steps_after(primary)
    }

    /// A bare name: a function call, or the root of a path.
    fn named(&mut self) -> PResult {
        let t = self.bump();
        let Tok::Ident(name) = t.tok else {
            return Err(self.err("expected a name", t.span));
        };
        if self.peek() == &Tok::LParen {
            let call = self.call(&name, t.span)?;
            return self.steps_after(call);
        }
        let steps = self.steps()?;
        let path = self.root_path(name, t.span, steps)?;
        self.get_method_after(path)
    }

    fn steps_after(&mut self, base: Expr) -> PResult {
        let steps = self.steps()?;
        if steps.is_empty() {
            return self.get_method_after(base);
        }
        let span = base.span.to(steps.last().map_or(base.span, |s| s.span));
        let path = self.node(
            ExprKind::Path(Path {
                base: PathBase::Expr(Box::new(base)),
                steps,
            }),
            span,
        )?;
        self.get_method_after(path)
    }

    /// Whether `.get(` follows: the one method call accepted.
    fn at_get_method(&self) -> bool {
        self.peek() == &Tok::Dot
            && matches!(self.peek_at(1), Tok::Ident(n) if n == "get")
            && self.peek_at(2) == &Tok::LParen
    }

    /// `x.get(key)` / `x.get(key, fallback)` (Python's dict method, which FlowMason's conditions
    /// use) is read as `x[key] | default(fallback)` (`none` without a fallback).
    fn get_method_after(&mut self, base: Expr) -> PResult {
        if !self.at_get_method() {
            return Ok(base);
        }
        let start = self.bump().span;
        let name_span = self.bump().span;
        self.bump();
        let (mut pos, kw) = self.call_args()?;
        let call_span = start.to(self.prev_span());
        if !kw.is_empty() || pos.is_empty() || pos.len() > 2 {
            return Err(self.err(
                "`.get` takes a key and an optional fallback: `x.get('key', 0)`",
                call_span,
            ));
        }
        let fallback = if pos.len() == 2 { pos.pop() } else { None };
        let key = pos
            .pop()
            .ok_or_else(|| self.err("`.get` needs a key", call_span))?;
        let indexed_span = base.span.to(key.span);
        let indexed = self.node(
            ExprKind::Path(Path {
                base: PathBase::Expr(Box::new(base)),
                steps: vec![Step {
                    kind: static_step(key),
                    span: call_span,
                }],
            }),
            indexed_span,
        )?;
        let fallback = match fallback {
            Some(f) => f,
            None => self.node(ExprKind::Literal(Value::Null), name_span)?,
        };
        let spec = filters::lookup("default")
            .ok_or_else(|| self.err("the default filter is missing", name_span))?;
        let args = spec
            .sig
            .bind("filter", vec![fallback], Vec::new(), self.src, call_span)?;
        let span = indexed.span.to(call_span);
        let node = self.node(
            ExprKind::Filter {
                operand: Box::new(indexed),
                filter: spec,
                args,
                name_span,
            },
            span,
        )?;
        self.steps_after(node)
    }

    fn steps(&mut self) -> Result<Vec<Step>, Error> {
        let mut steps = Vec::new();
        loop {
            if self.at_get_method() {
                return Ok(steps);
            }
            let step = match self.peek() {
                Tok::Dot => self.dot_step()?,
                Tok::LBracket => self.bracket_step()?,
                _ => return Ok(steps),
            };
            steps.push(step);
        }
    }

    /// `.key` or `.0`
    fn dot_step(&mut self) -> Result<Step, Error> {
        let dot = self.bump().span;
        let t = self.bump();
        let kind = match t.tok {
            Tok::Ident(k) | Tok::StageId(k) => StepKind::Key(k),
            Tok::Int(i) => StepKind::Index(i),
            other => {
                return Err(self.err(
                    format!(
                        "unexpected {}: expected a key name after '.'",
                        other.describe()
                    ),
                    t.span,
                ))
            }
        };
        if self.peek() == &Tok::LParen {
            let key = match &kind {
                StepKind::Key(k) => k.clone(),
                _ => String::new(),
            };
            return Err(self.err(
                format!("method calls are not supported (except `.get(key, fallback)`): use a filter instead, e.g. `x | {key}`"),
                dot.to(t.span),
            ));
        }
        Ok(Step {
            kind,
            span: dot.to(t.span),
        })
    }

    /// `[expr]`; literal strings and integers become static steps.
    fn bracket_step(&mut self) -> Result<Step, Error> {
        let open = self.bump().span;
        if self.peek() == &Tok::RBracket {
            return Err(self.err_here("expected an index or key inside '[]'"));
        }
        let index = self.expr()?;
        let close = self.expect(Tok::RBracket, "']'")?;
        Ok(Step {
            kind: static_step(index),
            span: open.to(close),
        })
    }

    fn call(&mut self, name: &str, name_span: Span) -> PResult {
        let spec = self.function(name, name_span)?;
        self.expect(Tok::LParen, "'('")?;
        let (pos, kw) = self.call_args()?;
        let span = name_span.to(self.prev_span());
        let args = spec.sig.bind("function", pos, kw, self.src, span)?;
        self.node(ExprKind::Call { func: spec, args }, span)
    }

    fn function(&self, name: &str, name_span: Span) -> Result<&'static functions::FuncSpec, Error> {
        functions::lookup(name).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownFunction,
                format!(
                    "unknown function '{name}'{}; functions: {}",
                    hint(name, functions::names().chain(filters::names())),
                    functions::names().collect::<Vec<_>>().join(", ")
                ),
                self.src,
                Some(name_span),
            )
        })
    }

    /// Classify a bare name and its steps into a path root.
    fn root_path(&self, name: String, name_span: Span, steps: Vec<Step>) -> PResult {
        let mut steps = steps.into_iter().peekable();
        let mut end = name_span;
        // A static key step (`.x` or `['x']`), consumed.
        let take_key = |steps: &mut std::iter::Peekable<std::vec::IntoIter<Step>>,
                        end: &mut Span| {
            match steps.peek() {
                Some(Step {
                    kind: StepKind::Key(k),
                    span,
                }) => {
                    let k = k.clone();
                    *end = *span;
                    steps.next();
                    Some(k)
                }
                _ => None,
            }
        };
        let fields = || StageField::ALL.map(|f| f.as_str()).join(", ");
        let (root, upstream) = match name.as_str() {
            "stages" | "upstream" => {
                let upstream = name == "upstream";
                let Some(id) = take_key(&mut steps, &mut end) else {
                    return Err(self.err(
                        format!(
                            "expected a stage id after '{name}': `{name}.<id>{}` (ids with other characters: `{name}['<id>']`)",
                            if upstream { "" } else { ".<field>" }
                        ),
                        name_span.to(end),
                    ));
                };
                let field = if upstream {
                    StageField::Output
                } else {
                    let id_end = end;
                    match take_key(&mut steps, &mut end) {
                        Some(f) => match StageField::parse(&f) {
                            Some(field) => field,
                            None => {
                                return Err(self.err(
                                    format!(
                                        "`stages.{id}` has no field '{f}'{}; valid fields: {}",
                                        hint(&f, StageField::ALL.map(|f| f.as_str())),
                                        fields()
                                    ),
                                    end,
                                ))
                            }
                        },
                        None => {
                            return Err(self.err(
                                format!("`stages.{id}` must be followed by a field: {}", fields()),
                                name_span.to(id_end),
                            ))
                        }
                    }
                };
                (RefRoot::Stage { id, field }, upstream)
            }
            "secrets" | "env" => {
                let Some(key) = take_key(&mut steps, &mut end) else {
                    return Err(self.err(
                        format!("expected a name after '{name}': `{name}.NAME`"),
                        name_span.to(end),
                    ));
                };
                let root = if name == "env" {
                    RefRoot::Env(key)
                } else {
                    RefRoot::Secret(key)
                };
                (root, false)
            }
            "execution" => {
                let Some(field) = take_key(&mut steps, &mut end)
                    .filter(|f| EXECUTION_FIELDS.contains(&f.as_str()))
                else {
                    return Err(self.err(
                        format!(
                            "`execution` must be followed by a field: {}",
                            EXECUTION_FIELDS.join(", ")
                        ),
                        name_span.to(end),
                    ));
                };
                (RefRoot::Execution(field), false)
            }
            _ => (RefRoot::Var(name), false),
        };
        let steps: Vec<Step> = steps.collect();
        let span = name_span.to(steps.last().map_or(end, |s| s.span));
        self.node(
            ExprKind::Path(Path {
                base: PathBase::Root {
                    root,
                    upstream,
                    span: name_span.to(end),
                },
                steps,
            }),
            span,
        )
    }

    // Recursive paths (paren, list, object) live in their own small
    // functions: in unoptimized builds every local of a function occupies its
    // frame, and these frames stack once per nesting level.
    fn primary(&mut self) -> PResult {
        match self.peek() {
            Tok::LParen => self.paren(),
            Tok::LBracket => self.list_literal(),
            Tok::LBrace => self.object_literal(),
            _ => self.atom(),
        }
    }

    fn paren(&mut self) -> PResult {
        let open = self.bump().span;
        let mut inner = self.expr()?;
        let close = self.expect(Tok::RParen, "')'")?;
        inner.span = open.to(close);
        Ok(inner)
    }

    fn list_literal(&mut self) -> PResult {
        let open = self.bump().span;
        let mut items = Vec::new();
        loop {
            if self.eat(&Tok::RBracket) {
                break;
            }
            items.push(self.expr()?);
            if !self.eat(&Tok::Comma) {
                self.expect(Tok::RBracket, "',' or ']'")?;
                break;
            }
        }
        self.fold_list(items, open.to(self.prev_span()))
    }

    /// All-literal lists are folded so evaluation just borrows them.
    fn fold_list(&self, items: Vec<Expr>, span: Span) -> PResult {
        if items.iter().all(|e| matches!(e.kind, ExprKind::Literal(_))) {
            let vals = items
                .into_iter()
                .filter_map(|e| match e.kind {
                    ExprKind::Literal(v) => Some(v),
                    _ => None,
                })
                .collect();
            return self.node(ExprKind::Literal(Value::Array(vals)), span);
        }
        self.node(ExprKind::List(items), span)
    }

    fn object_literal(&mut self) -> PResult {
        let open = self.bump().span;
        let mut pairs = Vec::new();
        loop {
            if self.eat(&Tok::RBrace) {
                break;
            }
            let k = self.expr()?;
            self.expect(Tok::Colon, "':' after an object key")?;
            let v = self.expr()?;
            pairs.push((k, v));
            if !self.eat(&Tok::Comma) {
                self.expect(Tok::RBrace, "',' or '}'")?;
                break;
            }
        }
        self.fold_object(pairs, open.to(self.prev_span()))
    }

    fn fold_object(&self, pairs: Vec<(Expr, Expr)>, span: Span) -> PResult {
        let all_lit = pairs.iter().all(|(k, v)| {
            matches!(k.kind, ExprKind::Literal(Value::String(_)))
                && matches!(v.kind, ExprKind::Literal(_))
        });
        if all_lit {
            let mut map = Map::new();
            for (k, v) in pairs {
                if let (ExprKind::Literal(Value::String(k)), ExprKind::Literal(v)) =
                    (k.kind, v.kind)
                {
                    map.insert(k, v);
                }
            }
            return self.node(ExprKind::Literal(Value::Object(map)), span);
        }
        self.node(ExprKind::Object(pairs), span)
    }

    /// A literal or keyword; anything else is an error here.
    fn atom(&mut self) -> PResult {
        let t = self.bump();
        let lit = |v: Value| Ok(Expr::new(ExprKind::Literal(v), t.span));
        match t.tok {
            Tok::Int(i) => lit(Value::from(i)),
            Tok::Float(f) => {
                lit(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
            }
            Tok::Str(ref s) => lit(Value::String(s.clone())),
            Tok::Ident(ref k) => match k.as_str() {
                "true" | "True" => lit(Value::Bool(true)),
                "false" | "False" => lit(Value::Bool(false)),
                "null" | "none" | "None" => lit(Value::Null),
                other => Err(self.err(
                    format!("unexpected keyword '{other}': expected a value"),
                    t.span,
                )),
            },
            Tok::End => Err(self.err("unexpected end of expression: expected a value", t.span)),
            other => Err(self.err(
                format!("unexpected {}: expected a value", other.describe()),
                t.span,
            )),
        }
    }
}

/// The step for `[index]`: literal strings and integers are static.
fn static_step(index: Expr) -> StepKind {
    match index.kind {
        ExprKind::Literal(Value::String(s)) => StepKind::Key(s),
        ExprKind::Literal(Value::Number(ref n)) if n.as_i64().is_some() => {
            StepKind::Index(n.as_i64().unwrap_or(0))
        }
        _ => StepKind::Dynamic(Box::new(index)),
    }
}
