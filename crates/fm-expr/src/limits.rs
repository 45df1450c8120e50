//! Hard bounds that keep compiling and evaluating an untrusted template
//! cheap: no input can recurse deeply, loop long or allocate much.

/// Longest template source accepted by `compile` (bytes).
pub const MAX_SOURCE_LEN: usize = 1024 * 1024;
/// Maximum expression tree height.
pub const MAX_DEPTH: u32 = 64;
/// Expression nodes (and per-element filter work) one render may evaluate.
pub const MAX_STEPS: u64 = 1_000_000;
/// Largest string or rendered text one render may produce (bytes).
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Total bytes one render may build across all intermediate values.
pub const MAX_ALLOC: usize = 64 * 1024 * 1024;
/// Largest list `range()`, repetition or concatenation may build (items).
pub const MAX_LIST_LEN: usize = 100_000;
