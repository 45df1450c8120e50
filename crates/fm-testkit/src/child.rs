//! A spawned program under a test's control. Its stdout and stderr go to files in a folder of
//! their own under `$TMPDIR/fm-test-logs/`, kept after the test so a failure can be read
//! afterwards (the folder is printed when the test panics). Dropping the guard kills the
//! program and reaps it, so a failing test leaves nothing running.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    logs: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd` with its output going to `<logs>/stdout.log` and `<logs>/stderr.log`.
    /// Panics (the test fails) if it cannot be started.
    pub fn spawn(name: &str, mut cmd: Command) -> ChildGuard {
        let base = std::env::temp_dir().join("fm-test-logs");
        std::fs::create_dir_all(&base).expect("creating the test log folder");
        let logs = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&base)
            .expect("creating a log folder")
            .keep();
        let out = std::fs::File::create(logs.join("stdout.log")).expect("creating stdout.log");
        let err = std::fs::File::create(logs.join("stderr.log")).expect("creating stderr.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        ChildGuard {
            name: name.to_owned(),
            child: Some(child),
            logs,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The folder holding `stdout.log` and `stderr.log`.
    pub fn log_dir(&self) -> &Path {
        &self.logs
    }

    pub fn stdout(&self) -> String {
        read_lossy(&self.logs.join("stdout.log"))
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.logs.join("stderr.log"))
    }

    /// Waits until a line of stdout or stderr gives `Some` through `find`, or panics after
    /// `deadline` (or when the program exits first) with the end of its stderr.
    pub fn wait_for_line<T>(
        &mut self,
        what: &str,
        deadline: Duration,
        find: impl Fn(&str) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            for text in [self.stderr(), self.stdout()] {
                if let Some(v) = text.lines().find_map(&find) {
                    return v;
                }
            }
            if let Some(status) = self.try_status() {
                panic!(
                    "{} exited ({status}) before {what}; its stderr ends:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            if start.elapsed() > deadline {
                panic!(
                    "timed out after {deadline:?} waiting for {what} from {}; its stderr ends:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status if the program has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the program to exit by itself, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.try_status() {
                return s;
            }
            if start.elapsed() > deadline {
                panic!(
                    "{} did not exit within {deadline:?}; its stderr ends:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) through kill(1): the workspace forbids
    /// `unsafe`, and this is what an operator does too.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{sig} {} failed", self.id());
    }

    /// SIGKILL now and reap.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Panics if any of `secrets` appears in the program's stdout or stderr.
    pub fn assert_logs_free_of(&self, secrets: &[&str]) {
        let (out, err) = (self.stdout(), self.stderr());
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(
                !out.contains(s) && !err.contains(s),
                "a secret appeared in the logs of {} (see {})",
                self.name,
                self.logs.display()
            );
        }
    }

    /// The last `n` lines of stderr.
    pub fn tail(&self, n: usize) -> String {
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "{}'s logs are kept in {}; its stderr ends:\n{}",
                self.name,
                self.logs.display(),
                self.tail(30)
            );
        }
    }
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The address `fm serve` listens on, from its "fm server listening" log line (JSON or text).
/// Start the server with `listen = "127.0.0.1:0"` and read the port from here.
pub fn fm_serve_addr(line: &str) -> Option<String> {
    if !line.contains("fm server listening") {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        let addr = v
            .pointer("/fields/addr")
            .or_else(|| v.get("addr"))
            .and_then(serde_json::Value::as_str);
        if let Some(a) = addr {
            return Some(a.to_owned());
        }
    }
    let rest = &line[line.find("addr=")? + 5..];
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

/// The base URL `fm sandbox` serves on, from its first line ("fm sandbox: scenario 'x' on URL").
pub fn sandbox_base_url(line: &str) -> Option<String> {
    let rest = line.strip_prefix("fm sandbox: scenario ")?;
    Some(rest.rsplit_once(" on ")?.1.trim().to_owned())
}
