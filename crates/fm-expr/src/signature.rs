//! Parameter lists of filters, tests and functions, and binding call
//! arguments to them at compile time (so a wrong argument count or an unknown
//! keyword is a compile error, not a runtime surprise).

use crate::ast::{Args, Expr};
use crate::error::{Error, ErrorKind, Span};

#[derive(Debug)]
pub(crate) struct Signature {
    pub name: &'static str,
    /// Parameters that may be given by position (in order) or by keyword.
    pub positional: &'static [&'static str],
    /// Parameters that may only be given by keyword.
    pub kw_only: &'static [&'static str],
    /// How many leading positional parameters are required.
    pub required: usize,
    /// Extra positional arguments are collected into `Args::rest`.
    pub variadic: bool,
}

impl Signature {
    /// Index of a parameter in `Args::slots`.
    pub(crate) fn slot(&self, name: &str) -> Option<usize> {
        self.positional
            .iter()
            .chain(self.kw_only)
            .position(|p| *p == name)
    }

    fn params(&self) -> String {
        let all: Vec<&str> = self
            .positional
            .iter()
            .chain(self.kw_only)
            .copied()
            .collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    }

    pub(crate) fn bind(
        &self,
        kind: &str,
        positional: Vec<Expr>,
        keywords: Vec<(String, Span, Expr)>,
        src: &str,
        span: Span,
    ) -> Result<Args, Error> {
        let err = |msg: String, span: Span| Error::new(ErrorKind::Syntax, msg, src, Some(span));
        let n_slots = self.positional.len() + self.kw_only.len();
        let mut args = Args {
            slots: Vec::with_capacity(n_slots),
            rest: Vec::new(),
        };
        args.slots.resize_with(n_slots, || None);
        for (i, e) in positional.into_iter().enumerate() {
            if i < self.positional.len() {
                args.slots[i] = Some(e);
            } else if self.variadic {
                args.rest.push(e);
            } else {
                return Err(err(
                    format!(
                        "{kind} '{}' takes at most {} positional argument{} ({})",
                        self.name,
                        self.positional.len(),
                        if self.positional.len() == 1 { "" } else { "s" },
                        self.params()
                    ),
                    e.span,
                ));
            }
        }
        for (name, kspan, e) in keywords {
            let Some(i) = self.slot(&name) else {
                return Err(err(
                    format!(
                        "{kind} '{}' has no parameter '{name}'{}; parameters: {}",
                        self.name,
                        crate::suggest::hint(
                            &name,
                            self.positional.iter().chain(self.kw_only).copied()
                        ),
                        self.params()
                    ),
                    kspan,
                ));
            };
            if args.slots[i].is_some() {
                return Err(err(
                    format!("{kind} '{}': parameter '{name}' given twice", self.name),
                    kspan,
                ));
            }
            args.slots[i] = Some(e);
        }
        // `required` counts leading positional parameters; for variadic
        // callees beyond their named parameters it counts `rest` arguments.
        let named_required = self.required.min(self.positional.len());
        if let Some(missing) =
            (0..named_required).find(|&i| args.slots.get(i).is_none_or(Option::is_none))
        {
            return Err(err(
                format!(
                    "{kind} '{}' needs argument '{}'",
                    self.name,
                    self.positional.get(missing).copied().unwrap_or("?")
                ),
                span,
            ));
        }
        if self.required > self.positional.len()
            && args.rest.len() < self.required - self.positional.len()
        {
            return Err(err(
                format!(
                    "{kind} '{}' needs at least {} argument(s)",
                    self.name, self.required
                ),
                span,
            ));
        }
        Ok(args)
    }
}
