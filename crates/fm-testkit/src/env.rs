use std::path::Path;
use std::process::Command;

/// `program` with an empty environment but for what a program needs to run here: `PATH`, a
/// `HOME` of the test's own (so nothing reads the developer's dotfiles), `LANG`, and `NO_PROXY`
/// for loopback (so a developer's `http_proxy` never sees test traffic). Add what the test
/// means to pass with `.env(…)`.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("NO_PROXY", "127.0.0.1,localhost,::1")
        .env("no_proxy", "127.0.0.1,localhost,::1");
    c
}
