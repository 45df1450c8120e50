//! What fm's tests share when they deal with the world outside the test process:
//!
//! - [`ChildGuard`]: a spawned program whose stdout and stderr go to files that outlive the
//!   test (their folder is printed when a test fails), killed when the guard drops — also when
//!   the test panics — with a check that no secret reached its logs.
//! - [`wait`]: waiting on state with a deadline, never on a fixed sleep.
//! - [`services`]: the policy for a service or program a test needs: under `CI=true` its absence
//!   fails the test; locally the test prints `skipped: <why>` and returns.
//! - [`clean_command`]: a command with a clean environment, so no test reads the developer's
//!   `FM_STORE`, `OPENAI_*` or proxy settings.

mod child;
mod env;
pub mod services;
pub mod wait;

pub use child::{fm_serve_addr, sandbox_base_url, ChildGuard};
pub use env::clean_command;
