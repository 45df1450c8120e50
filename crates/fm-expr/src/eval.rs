//! Evaluation: walks the compiled tree over borrowed values (`Cow`), cloning
//! only what an operation must build. Enforces the step and size budgets.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::ast::{Expr, ExprKind, Path, PathBase, RefRoot, StepKind, UnaryOp};
use crate::error::{Error, ErrorKind, Span};
use crate::limits::{MAX_ALLOC, MAX_OUTPUT, MAX_STEPS};
use crate::scope::Scope;
use crate::value::{a_type_name, is_truthy, Num};
use crate::{filters, ops};

pub(crate) type V<'a> = Cow<'a, Value>;

/// Evaluated arguments of a filter or function call, in signature slots.
pub(crate) struct CallArgs<'a> {
    pub slots: Vec<Option<V<'a>>>,
    pub rest: Vec<V<'a>>,
    /// The call (`name(args)`), for error positions.
    pub span: Span,
}

impl<'a> CallArgs<'a> {
    pub(crate) fn get(&self, i: usize) -> Option<&Value> {
        self.slots.get(i).and_then(|s| s.as_deref())
    }
}

pub(crate) struct Eval<'a> {
    scope: &'a dyn Scope,
    pub(crate) source: &'a str,
    steps: u64,
    allocated: usize,
}

impl<'a> Eval<'a> {
    pub(crate) fn new(scope: &'a dyn Scope, source: &'a str) -> Eval<'a> {
        Eval {
            scope,
            source,
            steps: 0,
            allocated: 0,
        }
    }

    pub(crate) fn err(&self, kind: ErrorKind, msg: impl Into<String>, span: Span) -> Error {
        Error::new(kind, msg, self.source, Some(span))
    }

    /// Count `n` units of work against the step budget.
    pub(crate) fn tick(&mut self, n: u64, span: Span) -> Result<(), Error> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            return Err(self.err(
                ErrorKind::Limit,
                format!("evaluation took more than {MAX_STEPS} steps"),
                span,
            ));
        }
        Ok(())
    }

    /// Account for `bytes` of newly built data; refuses single values over
    /// `MAX_OUTPUT` and totals over `MAX_ALLOC`.
    pub(crate) fn charge(&mut self, bytes: usize, span: Span) -> Result<(), Error> {
        if bytes > MAX_OUTPUT {
            return Err(self.err(
                ErrorKind::Limit,
                format!("result would be larger than {} MiB", MAX_OUTPUT >> 20),
                span,
            ));
        }
        self.allocated = self.allocated.saturating_add(bytes);
        if self.allocated > MAX_ALLOC {
            return Err(self.err(
                ErrorKind::Limit,
                format!("evaluation built more than {} MiB of data", MAX_ALLOC >> 20),
                span,
            ));
        }
        Ok(())
    }

    /// Evaluate one node. Each kind is handled in its own function: in
    /// unoptimized builds a function's frame holds all of its locals, and
    /// this one is on the stack once per tree level.
    pub(crate) fn eval(&mut self, e: &'a Expr) -> Result<V<'a>, Error> {
        self.tick(1, e.span)?;
        match &e.kind {
            ExprKind::Literal(v) => Ok(Cow::Borrowed(v)),
            ExprKind::Path(p) => self.path(p, e.span),
            ExprKind::List(items) => self.list(items),
            ExprKind::Object(pairs) => self.object(pairs),
            ExprKind::Unary(op, inner) => self.unary(*op, inner, e.span),
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e.span),
            ExprKind::And(a, b) => self.and_or(a, b, true),
            ExprKind::Or(a, b) => self.and_or(a, b, false),
            ExprKind::Cond {
                cond,
                then,
                otherwise,
            } => self.cond(cond, then, otherwise.as_deref()),
            ExprKind::Test {
                operand,
                test,
                negated,
                args,
            } => self.test(operand, test, *negated, args, e.span),
            ExprKind::Filter {
                operand,
                filter,
                args,
                name_span,
            } => self.filter(operand, filter, args, name_span.to(e.span)),
            ExprKind::Call { func, args } => {
                let call = self.call_args(args, e.span)?;
                (func.func)(self, &call)
            }
        }
    }

    fn list(&mut self, items: &'a [Expr]) -> Result<V<'a>, Error> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.eval(item)?.into_owned());
        }
        Ok(Cow::Owned(Value::Array(out)))
    }

    fn object(&mut self, pairs: &'a [(Expr, Expr)]) -> Result<V<'a>, Error> {
        let mut out = Map::with_capacity(pairs.len());
        for (k, v) in pairs {
            let key = match self.eval(k)? {
                Cow::Owned(Value::String(s)) => s,
                Cow::Borrowed(Value::String(s)) => s.clone(),
                other => {
                    return Err(self.err(
                        ErrorKind::Type,
                        format!("object keys must be strings, got {}", a_type_name(&other)),
                        k.span,
                    ))
                }
            };
            let value = self.eval(v)?.into_owned();
            out.insert(key, value);
        }
        Ok(Cow::Owned(Value::Object(out)))
    }

    fn unary(&mut self, op: UnaryOp, inner: &'a Expr, span: Span) -> Result<V<'a>, Error> {
        let v = self.eval(inner)?;
        self.apply_unary(op, v, span)
    }

    fn apply_unary(&mut self, op: UnaryOp, v: V<'a>, span: Span) -> Result<V<'a>, Error> {
        if op == UnaryOp::Not {
            return Ok(Cow::Owned(Value::Bool(!is_truthy(&v))));
        }
        let Some(n) = Num::of(&v) else {
            return Err(self.err(
                ErrorKind::Type,
                format!(
                    "unary '{}' needs a number, got {}",
                    if op == UnaryOp::Neg { "-" } else { "+" },
                    a_type_name(&v)
                ),
                span,
            ));
        };
        if op == UnaryOp::Pos {
            return Ok(v);
        }
        let neg = match n {
            Num::Int(i) => i.checked_neg().map_or(Num::Float(-(i as f64)), Num::Int),
            Num::Float(f) => Num::Float(-f),
        };
        self.number(neg, span)
    }

    fn binary(
        &mut self,
        op: crate::ast::BinOp,
        a: &'a Expr,
        b: &'a Expr,
        span: Span,
    ) -> Result<V<'a>, Error> {
        let av = self.eval(a)?;
        let bv = self.eval(b)?;
        ops::binary(self, op, av, bv, span)
    }

    /// `and` / `or` return an operand, like Python and Jinja.
    fn and_or(&mut self, a: &'a Expr, b: &'a Expr, is_and: bool) -> Result<V<'a>, Error> {
        let av = self.eval(a)?;
        if is_truthy(&av) == is_and {
            self.eval(b)
        } else {
            Ok(av)
        }
    }

    fn cond(
        &mut self,
        cond: &'a Expr,
        then: &'a Expr,
        otherwise: Option<&'a Expr>,
    ) -> Result<V<'a>, Error> {
        let c = self.eval(cond)?;
        if is_truthy(&c) {
            self.eval(then)
        } else {
            match otherwise {
                Some(o) => self.eval(o),
                None => Ok(Cow::Owned(Value::Null)),
            }
        }
    }

    fn test(
        &mut self,
        operand: &'a Expr,
        test: &'static crate::predicates::TestSpec,
        negated: bool,
        args: &'a [Expr],
        span: Span,
    ) -> Result<V<'a>, Error> {
        let result = if test.guards {
            // `is defined` / `is undefined`: absence is the answer, not an error.
            let defined = match self.eval(operand) {
                Ok(_) => true,
                Err(err) if err.kind == ErrorKind::Undefined => false,
                Err(err) => return Err(err),
            };
            defined == (test.name == "defined")
        } else {
            let v = self.eval(operand)?;
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(self.eval(a)?);
            }
            (test.func)(self, &v, &vals, span)?
        };
        Ok(Cow::Owned(Value::Bool(result != negated)))
    }

    fn filter(
        &mut self,
        operand: &'a Expr,
        filter: &'static filters::FilterSpec,
        args: &'a crate::ast::Args,
        span: Span,
    ) -> Result<V<'a>, Error> {
        if filter.sig.name == "default" {
            return filters::default(self, operand, args);
        }
        let input = self.eval(operand)?;
        let call = self.call_args(args, span)?;
        (filter.func)(self, input, &call)
    }

    fn call_args(&mut self, args: &'a crate::ast::Args, span: Span) -> Result<CallArgs<'a>, Error> {
        let mut slots = Vec::with_capacity(args.slots.len());
        for s in &args.slots {
            slots.push(match s {
                Some(e) => Some(self.eval(e)?),
                None => None,
            });
        }
        let mut rest = Vec::with_capacity(args.rest.len());
        for e in &args.rest {
            rest.push(self.eval(e)?);
        }
        Ok(CallArgs { slots, rest, span })
    }

    /// A number result; NaN and infinities are arithmetic errors (JSON can't hold them).
    pub(crate) fn number(&self, n: Num, span: Span) -> Result<V<'a>, Error> {
        n.to_value()
            .map(Cow::Owned)
            .ok_or_else(|| self.err(ErrorKind::Arithmetic, "result is not a finite number", span))
    }

    fn path(&mut self, p: &'a Path, span: Span) -> Result<V<'a>, Error> {
        let base: V<'a> = match &p.base {
            PathBase::Root {
                root,
                upstream,
                span,
            } => match self.scope.resolve(&root.as_root()) {
                Some(v) => v,
                None => return Err(self.undefined_root(root, *upstream, *span)),
            },
            PathBase::Expr(e) => self.eval(e)?,
        };
        if p.steps.is_empty() {
            return Ok(base);
        }
        match base {
            Cow::Borrowed(v) => self.walk(v, p, span).map(Cow::Borrowed),
            Cow::Owned(v) => self
                .walk(&v, p, span)
                .map(|found| Cow::Owned(found.clone())),
        }
    }

    fn undefined_root(&self, root: &RefRoot, upstream: bool, span: Span) -> Error {
        let msg = match root {
            RefRoot::Var(name) => format!("'{name}' is not defined"),
            RefRoot::Stage { id, field } => {
                let written = if upstream {
                    format!("upstream.{id}")
                } else {
                    format!("stages.{id}")
                };
                format!(
                    "{written} has no {} (the stage has not run or was skipped)",
                    field.as_str()
                )
            }
            RefRoot::Secret(name) => format!("secret '{name}' is not available"),
            RefRoot::Env(name) => format!("environment variable '{name}' is not set"),
            RefRoot::Execution(field) => format!("execution.{field} is not available"),
        };
        self.err(ErrorKind::Undefined, msg, span)
    }

    /// Follow the steps of `p` from `v`.
    fn walk<'v>(&mut self, mut v: &'v Value, p: &'a Path, span: Span) -> Result<&'v Value, Error> {
        for (i, step) in p.steps.iter().enumerate() {
            // The span up to and including this step, for the caret.
            let at = Span::new(span.start, step.span.end);
            let dynamic;
            let key: KeyRef<'_> = match &step.kind {
                StepKind::Key(k) => KeyRef::Key(k),
                StepKind::Index(n) => KeyRef::Index(*n),
                StepKind::Dynamic(e) => {
                    dynamic = self.eval(e)?;
                    match &*dynamic {
                        Value::String(s) => KeyRef::Key(s),
                        Value::Number(n) => match Num::from_number(n) {
                            Num::Int(i) => KeyRef::Index(i),
                            Num::Float(f) => match Num::float_to_int(f) {
                                Some(i) => KeyRef::Index(i),
                                None => {
                                    return Err(self.err(
                                        ErrorKind::Type,
                                        format!("index must be a whole number, got {f}"),
                                        e.span,
                                    ))
                                }
                            },
                        },
                        other => {
                            return Err(self.err(
                                ErrorKind::Type,
                                format!(
                                    "index must be a string or a number, got {}",
                                    a_type_name(other)
                                ),
                                e.span,
                            ))
                        }
                    }
                }
            };
            v = match (v, key) {
                (Value::Object(map), KeyRef::Key(k)) => match map.get(k) {
                    Some(found) => found,
                    None => {
                        let mut msg = format!("{} has no key '{k}'; ", self.display(p, i));
                        list_keys(&mut msg, map);
                        return Err(self.err(ErrorKind::Undefined, msg, at));
                    }
                },
                (Value::Array(items), KeyRef::Index(n)) => {
                    match index(items.len(), n).and_then(|j| items.get(j)) {
                        Some(found) => found,
                        None => {
                            let msg = format!(
                                "{} has {} item{}; index {n} is out of range",
                                self.display(p, i),
                                items.len(),
                                if items.len() == 1 { "" } else { "s" }
                            );
                            return Err(self.err(ErrorKind::Undefined, msg, at));
                        }
                    }
                }
                (other, KeyRef::Key(k)) => {
                    let msg = format!(
                        "{} is {}, not an object; it has no key '{k}'",
                        self.display(p, i),
                        a_type_name(other)
                    );
                    return Err(self.err(ErrorKind::Undefined, msg, at));
                }
                (other, KeyRef::Index(n)) => {
                    let what = if other.is_object() {
                        format!("; use ['{n}'] for a key named '{n}'")
                    } else {
                        String::new()
                    };
                    let msg = format!(
                        "{} is {}, not a list; it has no item {n}{what}",
                        self.display(p, i),
                        a_type_name(other)
                    );
                    return Err(self.err(ErrorKind::Undefined, msg, at));
                }
            };
        }
        Ok(v)
    }

    /// The path text up to (not including) step `upto`, for messages.
    fn display(&self, p: &Path, upto: usize) -> String {
        let mut out = match &p.base {
            PathBase::Root { root, upstream, .. } => match (root, upstream) {
                (RefRoot::Stage { id, .. }, true) => format!("upstream.{id}"),
                _ => root.display(),
            },
            PathBase::Expr(e) => self
                .source
                .get(e.span.start..e.span.end)
                .unwrap_or("value")
                .to_owned(),
        };
        for step in p.steps.iter().take(upto) {
            match &step.kind {
                StepKind::Key(k) if is_identifier(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                StepKind::Key(k) => {
                    out.push_str("['");
                    out.push_str(k);
                    out.push_str("']");
                }
                StepKind::Index(n) => out.push_str(&format!("[{n}]")),
                StepKind::Dynamic(e) => {
                    out.push('[');
                    out.push_str(self.source.get(e.span.start..e.span.end).unwrap_or("?"));
                    out.push(']');
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy)]
enum KeyRef<'k> {
    Key(&'k str),
    Index(i64),
}

/// Python-style index (negative counts from the end) into a length.
pub(crate) fn index(len: usize, n: i64) -> Option<usize> {
    if n < 0 {
        len.checked_sub(usize::try_from(n.unsigned_abs()).ok()?)
    } else {
        usize::try_from(n).ok().filter(|&i| i < len)
    }
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// "it has: a, b, c" (in object order, at most 20 names) or "it is empty".
fn list_keys(msg: &mut String, map: &Map<String, Value>) {
    const MAX_KEYS: usize = 20;
    if map.is_empty() {
        msg.push_str("it is an empty object");
        return;
    }
    msg.push_str("it has: ");
    for (i, k) in map.keys().take(MAX_KEYS).enumerate() {
        if i > 0 {
            msg.push_str(", ");
        }
        msg.push_str(k);
    }
    if map.len() > MAX_KEYS {
        msg.push_str(&format!(", ... ({} more)", map.len() - MAX_KEYS));
    }
}

/// A type error naming the expected and actual types.
pub(crate) fn type_error(
    ev: &Eval<'_>,
    what: &str,
    expected: &str,
    got: &Value,
    span: Span,
) -> Error {
    ev.err(
        ErrorKind::Type,
        format!(
            "{what} expects {expected}, got {} ({})",
            a_type_name(got),
            preview(got)
        ),
        span,
    )
}

/// A short rendering of a value for messages.
pub(crate) fn preview(v: &Value) -> String {
    let text = crate::render::to_json(v, None);
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("{cut}...")
    } else {
        text
    }
}
