//! What a test does when something it needs is not here. Under `CI=true` (set by `.ci/run`) a
//! missing service or program fails the test: CI must never count a test that did not run as
//! passed. Locally the test prints `skipped: <why>` (cargo shows it with the test's output on
//! `--nocapture`, and in the summary of a failing run) and returns.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// True when running under CI (`CI=true` or `CI=1`).
pub fn ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Fails the test under CI, else prints the skip. Returns `None` so callers can `let … else`.
pub fn missing<T>(why: &str) -> Option<T> {
    if ci() {
        panic!("{why} (CI=true: a test that cannot run fails)");
    }
    eprintln!("skipped: {why}");
    None
}

/// The PostgreSQL URL from `FM_TEST_DATABASE_URL`, once its server answers TCP within 3 s.
pub fn postgres_url() -> Option<String> {
    let Ok(url) = std::env::var("FM_TEST_DATABASE_URL") else {
        return missing("FM_TEST_DATABASE_URL is not set (PostgreSQL test)");
    };
    let host_port = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.rsplit_once('@').map_or(Some(rest), |(_, h)| Some(h)))
        .map(|h| h.split(['/', '?']).next().unwrap_or(h))
        .map(|h| {
            if h.contains(':') {
                h.to_owned()
            } else {
                format!("{h}:5432")
            }
        });
    let reachable = host_port
        .as_deref()
        .and_then(|hp| hp.to_socket_addrs().ok())
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    if !reachable {
        return missing(&format!(
            "PostgreSQL at FM_TEST_DATABASE_URL ({}) does not answer",
            host_port.as_deref().unwrap_or("unparsable URL")
        ));
    }
    Some(url)
}

/// `name` found on `PATH` (or an absolute path that exists).
pub fn program(name: &str) -> Option<PathBuf> {
    let found = if name.contains('/') {
        Some(PathBuf::from(name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    match found {
        Some(p) => Some(p),
        None => missing(&format!(
            "the program '{name}' is not installed (.ci/run installs it)"
        )),
    }
}

/// The Python of the test venv that `.ci/run` prepares (`FM_TEST_PYTHON`), for tests that drive
/// a stand-in with an official Python client; `module` must import in it.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let Some(python) = std::env::var_os("FM_TEST_PYTHON").map(PathBuf::from) else {
        return missing(&format!(
            "FM_TEST_PYTHON is not set (a venv with the Python module '{module}'; .ci/run makes one)"
        ));
    };
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return missing(&format!("{} cannot import '{module}'", python.display()));
    }
    Some(python)
}
