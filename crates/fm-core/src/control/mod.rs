//! Control-flow components: the executor knows their meaning.

pub mod router;
pub mod trycatch;
