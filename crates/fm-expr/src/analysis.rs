//! Static reference analysis: every path a template reads, found without
//! evaluating it, so a validator can check stage ids, fields and secrets
//! before a run.

use crate::ast::{Expr, ExprKind, Path, PathBase, RefRoot, StepKind};
use crate::error::Span;

/// One path a template reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub root: RefRoot,
    /// Static key segments after the root (`stages.x.output.body.logs` -> ["body","logs"]), stopping at the first dynamic/index step.
    pub path: Vec<String>,
    /// Byte span in the template source: the root through the last segment in `path`.
    pub span: Span,
    /// true when the read is guarded by `default(...)`, `is defined`/`is not defined`, so absence is not an error.
    ///
    /// Besides the operand of `default` and of `is [not] defined`, a read is
    /// guarded when an enclosing `P is defined and ...`, `... if P is defined
    /// else ...` or `P is not defined or ...` established that `P` (a prefix
    /// of the read's path) exists.
    pub guarded: bool,
}

/// A path known to exist on some branch: root plus static keys.
type Known<'e> = (&'e RefRoot, Vec<String>);

pub(crate) fn collect(e: &Expr, out: &mut Vec<Reference>) {
    walk(e, false, &mut Vec::new(), out);
}

fn walk<'e>(e: &'e Expr, guarded: bool, known: &mut Vec<Known<'e>>, out: &mut Vec<Reference>) {
    match &e.kind {
        ExprKind::Literal(_) => {}
        ExprKind::Path(p) => path(p, guarded, known, out),
        ExprKind::List(items) => items.iter().for_each(|i| walk(i, guarded, known, out)),
        ExprKind::Object(pairs) => {
            for (k, v) in pairs {
                walk(k, guarded, known, out);
                walk(v, guarded, known, out);
            }
        }
        ExprKind::Unary(_, x) => walk(x, guarded, known, out),
        ExprKind::Binary(_, a, b) => {
            walk(a, guarded, known, out);
            walk(b, guarded, known, out);
        }
        ExprKind::And(a, b) => {
            walk(a, guarded, known, out);
            with_known(known, defined_when(a, true), |k| walk(b, guarded, k, out));
        }
        ExprKind::Or(a, b) => {
            walk(a, guarded, known, out);
            with_known(known, defined_when(a, false), |k| walk(b, guarded, k, out));
        }
        ExprKind::Cond {
            cond,
            then,
            otherwise,
        } => {
            walk(cond, guarded, known, out);
            with_known(known, defined_when(cond, true), |k| {
                walk(then, guarded, k, out)
            });
            if let Some(o) = otherwise {
                with_known(known, defined_when(cond, false), |k| {
                    walk(o, guarded, k, out)
                });
            }
        }
        ExprKind::Test {
            operand,
            test,
            args,
            ..
        } => {
            walk(operand, guarded || test.guards, known, out);
            args.iter().for_each(|a| walk(a, guarded, known, out));
        }
        ExprKind::Filter {
            operand,
            filter,
            args,
            ..
        } => {
            walk(operand, guarded || filter.sig.name == "default", known, out);
            args.slots
                .iter()
                .flatten()
                .chain(&args.rest)
                .for_each(|a| walk(a, guarded, known, out));
        }
        ExprKind::Call { args, .. } => args
            .slots
            .iter()
            .flatten()
            .chain(&args.rest)
            .for_each(|a| walk(a, guarded, known, out)),
    }
}

fn with_known<'e>(
    known: &mut Vec<Known<'e>>,
    extra: Vec<Known<'e>>,
    f: impl FnOnce(&mut Vec<Known<'e>>),
) {
    let before = known.len();
    known.extend(extra);
    f(known);
    known.truncate(before);
}

/// Paths that must exist when `e` evaluates truthy (`want = true`) or falsy.
fn defined_when(e: &Expr, want: bool) -> Vec<Known<'_>> {
    match &e.kind {
        ExprKind::Test {
            operand,
            test,
            negated,
            ..
        } if test.guards => {
            // `P is defined` truthy, or `P is undefined` falsy, means P exists.
            let proves_defined = (test.name == "defined") != *negated;
            match &operand.kind {
                ExprKind::Path(p) if proves_defined == want => root_keys(p).into_iter().collect(),
                _ => Vec::new(),
            }
        }
        ExprKind::And(a, b) if want => [defined_when(a, true), defined_when(b, true)].concat(),
        ExprKind::Or(a, b) if !want => [defined_when(a, false), defined_when(b, false)].concat(),
        ExprKind::Unary(crate::ast::UnaryOp::Not, x) => defined_when(x, !want),
        _ => Vec::new(),
    }
}

/// Root and leading static keys of a path, if it starts at a root.
fn root_keys(p: &Path) -> Option<Known<'_>> {
    let PathBase::Root { root, .. } = &p.base else {
        return None;
    };
    let keys = p
        .steps
        .iter()
        .map_while(|s| match &s.kind {
            StepKind::Key(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    Some((root, keys))
}

fn path<'e>(p: &'e Path, guarded: bool, known: &mut Vec<Known<'e>>, out: &mut Vec<Reference>) {
    match &p.base {
        PathBase::Root { root, span, .. } => {
            let mut keys = Vec::new();
            let mut end = span.end;
            for step in &p.steps {
                match &step.kind {
                    StepKind::Key(k) => {
                        keys.push(k.clone());
                        end = step.span.end;
                    }
                    _ => break,
                }
            }
            let covered = known
                .iter()
                .any(|(r, prefix)| *r == root && keys.starts_with(prefix));
            out.push(Reference {
                root: root.clone(),
                path: keys,
                span: Span::new(span.start, end),
                guarded: guarded || covered,
            });
        }
        PathBase::Expr(e) => walk(e, guarded, known, out),
    }
    for step in &p.steps {
        if let StepKind::Dynamic(e) = &step.kind {
            walk(e, guarded, known, out);
        }
    }
}
