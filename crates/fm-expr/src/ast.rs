//! The compiled form of an expression. Paths keep their segments pre-split
//! and roots pre-classified so evaluation is a walk over borrowed values.

use serde_json::Value;

use crate::error::Span;
use crate::filters::FilterSpec;
use crate::functions::FuncSpec;
use crate::predicates::TestSpec;
use crate::scope::{Root, StageField};

#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of this node's tree; bounded at parse time so evaluation and
    /// drop recursion stay shallow.
    pub depth: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Neg,
    Pos,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::Concat => "~",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ExprKind {
    Literal(Value),
    Path(Path),
    List(Vec<Expr>),
    Object(Vec<(Expr, Expr)>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `then if cond else otherwise`; no `else` yields null.
    Cond {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Option<Box<Expr>>,
    },
    Test {
        operand: Box<Expr>,
        test: &'static TestSpec,
        negated: bool,
        args: Vec<Expr>,
    },
    Filter {
        operand: Box<Expr>,
        filter: &'static FilterSpec,
        args: Args,
        name_span: Span,
    },
    Call {
        func: &'static FuncSpec,
        args: Args,
    },
}

/// Arguments bound to a callee's parameters at compile time: `slots[i]` is
/// parameter `i` (positional parameters first, then keyword-only ones),
/// `rest` the extra positional arguments of variadic callees.
#[derive(Debug, Clone, Default)]
pub(crate) struct Args {
    pub slots: Vec<Option<Expr>>,
    pub rest: Vec<Expr>,
}

/// The owned, compiled form of a path root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefRoot {
    Var(String),
    Stage { id: String, field: StageField },
    Secret(String),
    Env(String),
    Execution(String),
}

impl RefRoot {
    /// The borrowed form the scope is asked for.
    pub fn as_root(&self) -> Root<'_> {
        match self {
            RefRoot::Var(n) => Root::Var(n),
            RefRoot::Stage { id, field } => Root::Stage { id, field: *field },
            RefRoot::Secret(n) => Root::Secret(n),
            RefRoot::Env(n) => Root::Env(n),
            RefRoot::Execution(n) => Root::Execution(n),
        }
    }

    /// Canonical text: `input`, `stages.x.output`, `secrets.X`, ...
    pub fn display(&self) -> String {
        match self {
            RefRoot::Var(n) => n.clone(),
            RefRoot::Stage { id, field } => format!("stages.{id}.{}", field.as_str()),
            RefRoot::Secret(n) => format!("secrets.{n}"),
            RefRoot::Env(n) => format!("env.{n}"),
            RefRoot::Execution(n) => format!("execution.{n}"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum PathBase {
    Root {
        root: RefRoot,
        /// Written as `upstream.<id>` (affects messages only).
        upstream: bool,
        span: Span,
    },
    Expr(Box<Expr>),
}

#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub base: PathBase,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub kind: StepKind,
    /// `.key` or `[...]`, including the punctuation.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum StepKind {
    Key(String),
    Index(i64),
    Dynamic(Box<Expr>),
}

impl Expr {
    pub(crate) fn new(kind: ExprKind, span: Span) -> Expr {
        let depth = 1 + kind.child_depth();
        Expr { kind, span, depth }
    }
}

impl ExprKind {
    fn child_depth(&self) -> u32 {
        fn max<'a>(it: impl IntoIterator<Item = &'a Expr>) -> u32 {
            it.into_iter().map(|e| e.depth).max().unwrap_or(0)
        }
        fn args(a: &Args) -> u32 {
            max(a.slots.iter().flatten().chain(a.rest.iter()))
        }
        match self {
            ExprKind::Literal(_) => 0,
            ExprKind::Path(p) => {
                let base = match &p.base {
                    PathBase::Root { .. } => 0,
                    PathBase::Expr(e) => e.depth,
                };
                let steps = max(p.steps.iter().filter_map(|s| match &s.kind {
                    StepKind::Dynamic(e) => Some(&**e),
                    _ => None,
                }));
                base.max(steps)
            }
            ExprKind::List(items) => max(items),
            ExprKind::Object(pairs) => max(pairs.iter().flat_map(|(k, v)| [k, v])),
            ExprKind::Unary(_, e) => e.depth,
            ExprKind::Binary(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                a.depth.max(b.depth)
            }
            ExprKind::Cond {
                cond,
                then,
                otherwise,
            } => max([&**cond, &**then].into_iter().chain(otherwise.as_deref())),
            ExprKind::Test { operand, args, .. } => operand.depth.max(max(args)),
            ExprKind::Filter {
                operand, args: a, ..
            } => operand.depth.max(args(a)),
            ExprKind::Call { args: a, .. } => args(a),
        }
    }
}
