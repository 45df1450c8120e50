//! Writing to stdout and stderr without ever panicking: `println!` panics when the reader has
//! gone (`fm runs show ID | head -1`). A closed stdout ends the output quietly; any other
//! write error is reported once on stderr. The run itself is never affected.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout (nothing once stdout has failed).
pub fn out(text: &str) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            err(&format!(
                "warning: cannot write to stdout ({e}); the rest of the output is dropped\n"
            ));
        }
    }
}

/// Writes `text` to stderr; an error there has nowhere to be reported and is ignored.
pub fn err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `println!` that cannot panic.
macro_rules! outln {
    () => { $crate::out::out("\n") };
    ($($t:tt)*) => { $crate::out::out(&format!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` that cannot panic.
macro_rules! errln {
    () => { $crate::out::err("\n") };
    ($($t:tt)*) => { $crate::out::err(&format!("{}\n", format_args!($($t)*))) };
}

/// `eprint!` that cannot panic.
macro_rules! errp {
    ($($t:tt)*) => { $crate::out::err(&format!($($t)*)) };
}
