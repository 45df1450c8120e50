//! The real `fm` binary, as a new user meets it after the demo: the outcome line on stderr, the
//! outcome in `fm runs`, secrets and input checks in `fm validate`, the missing-secret error of
//! `fm run`, masking that refuses unsafe secrets, `fm sandbox`'s credentials, `fm serve`'s
//! config problems in one pass, a closed stdout, the live progress display on a terminal.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fm_testkit::{clean_command, ChildGuard};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `fm` with a clean environment, run from the checkout (for the pipelines and runbooks), with
/// a store in `dir`.
fn fm(dir: &Path) -> Command {
    let mut c = clean_command(env!("CARGO_BIN_EXE_fm"), dir);
    c.current_dir(repo())
        .env("FM_STORE", format!("sqlite://{}/fm.db", dir.display()));
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A pipeline that declares its outcome from its input: `page` escalates, otherwise fixed.
const OUTCOME_PIPELINE: &str = r#"{
  "name": "outcomes",
  "input": {"type": "object", "properties": {"page": {"type": "boolean", "default": false}, "service": {"type": "string", "default": "checkout"}}},
  "outcome": {
    "values": ["fixed", "escalated"],
    "value": "{{ 'escalated' if input.page else 'fixed' }}",
    "reason": "{{ input.service ~ (' needs a human' if input.page else ' is healthy again') }}"
  },
  "stages": [{"id": "work", "component": "json_transform", "config": {"template": {"ok": true}}}],
  "output": {"outcome": "{{ execution.outcome }}", "why": "{{ execution.outcome_reason }}"}
}"#;

#[test]
fn the_outcome_is_on_stderr_without_a_terminal_and_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "o.pipeline.json", OUTCOME_PIPELINE);
    let out = fm(dir.path())
        .arg("run")
        .arg(&p)
        .args(["--set", "page=true"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("outcome: escalated — checkout needs a human"),
        "{stderr}"
    );
    let output: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        output["outcome"], "escalated",
        "the output reads the outcome"
    );
    let out = fm(dir.path()).arg("run").arg(&p).output().unwrap();
    assert!(text(&out)
        .1
        .contains("outcome: fixed — checkout is healthy again"));

    // `fm runs list` shows the outcome and filters by it; an unknown status still says so.
    let out = fm(dir.path()).args(["runs", "list"]).output().unwrap();
    let (list, _) = text(&out);
    assert!(list.lines().next().unwrap().contains("outcome"), "{list}");
    assert!(
        list.contains("escalated") && list.contains("fixed"),
        "{list}"
    );
    let out = fm(dir.path())
        .args(["runs", "list", "--outcome", "escalated", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["outcome"], "escalated");
    assert_eq!(runs[0]["outcome_reason"], "checkout needs a human");
    let out = fm(dir.path())
        .args(["runs", "list", "--status", "escalated"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("unknown status"), "{stderr}");
    assert!(stderr.contains("--outcome escalated"), "{stderr}");
}

#[test]
fn a_closed_stdout_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "o.pipeline.json", OUTCOME_PIPELINE);
    let run = fm(dir.path()).arg("run").arg(&p).output().unwrap();
    assert_eq!(run.status.code(), Some(0));
    let out = fm(dir.path())
        .args(["runs", "list", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_owned();
    let pipeline = repo().join("pipelines/devops-incident-response.pipeline.json");
    let commands: Vec<Vec<String>> = vec![
        vec!["runs".into(), "show".into(), id.clone()],
        vec!["runs".into(), "show".into(), id, "--json".into()],
        vec!["runs".into(), "list".into()],
        vec!["components".into()],
        vec!["validate".into(), pipeline.display().to_string()],
        vec!["graph".into(), pipeline.display().to_string()],
        vec!["run".into(), p.display().to_string(), "--json".into()],
        vec!["run".into(), p.display().to_string(), "--events".into()],
        vec!["--help".into()],
    ];
    for args in commands {
        // `| head -1`: the reader takes one line, then goes away.
        let mut child = fm(dir.path())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        let _ = stdout.read(&mut first);
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let (_, stderr) = text(&out);
        assert!(
            !stderr.contains("panicked") && out.status.code() != Some(101),
            "{args:?} panicked on a closed stdout:\n{stderr}"
        );
    }
}

#[test]
fn validate_lists_the_secrets_and_agrees_with_run() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = "pipelines/devops-incident-response.pipeline.json";
    let out = fm(dir.path())
        .args(["validate", pipeline])
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("secrets it reads: DEPLOY_TOKEN, K8S_TOKEN, LOGGING_TOKEN, PAGERDUTY_EVENTS_URL, PAGERDUTY_KEY, SLACK_WEBHOOK, STATUSPAGE_TOKEN"),
        "{stdout}"
    );
    // With a secrets file that lacks them: one problem per secret, naming every stage that reads it.
    let secrets = write(
        dir.path(),
        "partial.env",
        "LOGGING_TOKEN=a-long-enough-token\n",
    );
    let out = fm(dir.path())
        .args(["validate", pipeline, "--secrets"])
        .arg(&secrets)
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(": 6 problems"), "{stdout}");
    assert_eq!(
        stdout.matches("error[missing_secret]").count(),
        6,
        "{stdout}"
    );
    assert!(
        stdout.contains("secret 'K8S_TOKEN' is not provided (read by stages auto-restart-service, read-replicas, auto-scale-connections)"),
        "{stdout}"
    );
    assert!(stdout.contains("--sandbox"), "{stdout}");
    // `fm run` refuses for the same six, once each, and says how to get going.
    let out = fm(dir.path())
        .args([
            "run",
            pipeline,
            "--input",
            "inputs/sample-alert.json",
            "--secrets",
        ])
        .arg(&secrets)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("reads 6 secrets that are not provided: DEPLOY_TOKEN, K8S_TOKEN, PAGERDUTY_EVENTS_URL, PAGERDUTY_KEY, SLACK_WEBHOOK, STATUSPAGE_TOKEN"),
        "{stderr}"
    );
    assert!(stderr.contains("--sandbox oom"), "{stderr}");
    assert!(
        stderr.contains("\"Pointing it at real systems\" in docs/incident-response.md"),
        "{stderr}"
    );
    assert!(
        repo()
            .join("docs/incident-response.md")
            .exists()
            .then(|| std::fs::read_to_string(repo().join("docs/incident-response.md")).unwrap())
            .unwrap()
            .contains("## Pointing it at real systems"),
        "the section the error names exists"
    );
}

#[test]
fn validate_checks_input_paths_against_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "typo.pipeline.json",
        r#"{"name": "typo",
            "input": {"type": "object", "properties": {"service": {"type": "string"}, "payload": {"type": "object", "properties": {"source": {"type": "string"}}}}},
            "stages": [{"id": "log", "component": "logger", "config": {"message": "{{input.servce}} / {{input.payload.sorce}} / {{input.extra | default('-')}}"}}]}"#,
    );
    let out = fm(dir.path()).arg("validate").arg(&p).output().unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("'input.servce' is not declared"),
        "{stdout}"
    );
    assert!(stdout.contains("did you mean 'input.service'?"), "{stdout}");
    assert!(
        stdout.contains("did you mean 'input.payload.source'?"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("input.extra"),
        "a read guarded by default() handles absence itself: {stdout}"
    );
}

#[test]
fn secrets_too_short_to_mask_are_refused_and_masking_keeps_words() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "m.pipeline.json",
        r#"{"name": "m", "stages": [{"id": "echo", "component": "json_transform",
            "config": {"template": {"message": "deploy to https://deploy01.internal with {{secrets.TOKEN}}", "deploy01": "{{secrets.TOKEN}}"}}}]}"#,
    );
    let short = write(dir.path(), "short.env", "TOKEN=e\n");
    let out = fm(dir.path())
        .arg("run")
        .arg(&p)
        .arg("--secrets")
        .arg(&short)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("secret TOKEN is refused"), "{stderr}");
    assert!(stderr.contains("1 character long"), "{stderr}");

    // A secret that is also a word elsewhere: masked where it stands alone, nowhere else.
    let ok = write(dir.path(), "ok.env", "TOKEN=deploy01\n");
    let out = fm(dir.path())
        .arg("run")
        .arg(&p)
        .arg("--secrets")
        .arg(&ok)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["echo"],
        serde_json::json!({"message": "deploy to https://***.internal with ***", "***": "***"}),
        "{stdout}"
    );
}

#[test]
fn fm_sandbox_prints_its_credentials_and_env_lines_that_fm_run_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = fm(dir.path());
    c.args(["sandbox", "--port", "0", "--no-latency", "--env"]);
    let mut sb = ChildGuard::spawn("fm-sandbox", c);
    sb.wait_for_line("the export lines", Duration::from_secs(20), |l| {
        l.starts_with("export STATUSPAGE_TOKEN=").then_some(())
    });
    let env = sb.stdout();
    for name in [
        "K8S_TOKEN",
        "PAGERDUTY_KEY",
        "SLACK_WEBHOOK",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ] {
        assert!(env.contains(&format!("export {name}='")), "{env}");
    }
    // The lines are a --secrets file: validate (with the model's settings from it) agrees.
    let file = write(dir.path(), "sandbox.env", &env);
    let out = fm(dir.path())
        .args([
            "validate",
            "pipelines/devops-incident-response.pipeline.json",
            "--secrets",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);
    assert!(text(&out).0.contains("all provided"));
    drop(sb);

    // Without --env: the credentials are listed too.
    let mut c = fm(dir.path());
    c.args(["sandbox", "--port", "0", "--no-latency"]);
    let mut sb = ChildGuard::spawn("fm-sandbox", c);
    sb.wait_for_line("the credentials", Duration::from_secs(20), |l| {
        l.contains("STATUSPAGE_TOKEN = ").then_some(())
    });
    assert!(
        sb.stdout().contains("K8S_TOKEN = sbx-k8s-token"),
        "{}",
        sb.stdout()
    );
}

#[test]
fn serve_reports_every_config_problem_in_one_pass_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let toml = write(
        dir.path(),
        "fm.toml",
        "listen = \"127.0.0.1:0\"\nconcurency = 4\nlease = \"soon\"\nsecrets_file = \"missing.env\"\n\n[[pipelines]]\nname = \"p\"\nfile = \"nope.json\"\n\n[[triggers]]\nsource = \"pagerduty\"\npipeline = \"p\"\nsigning_secrets = [\"NOT_SET_ANYWHERE\"]\n",
    );
    let out = fm(dir.path())
        .arg("serve")
        .arg("--config")
        .arg(&toml)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let shown = toml.display().to_string();
    // The file's own problems and those of what it names, together, each located.
    assert!(
        stderr.contains(&format!("concurency at {shown}:2:1")),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean 'concurrency'?"), "{stderr}");
    assert!(
        stderr.contains(&format!("lease at {shown}:3:1")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("secrets_file at {shown}:4:1")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pipelines[0].file at {shown}:8:1")),
        "{stderr}"
    );
    assert!(stderr.contains("NOT_SET_ANYWHERE"), "{stderr}");
    assert_eq!(
        stderr.matches(" problems\n").count(),
        1,
        "one listing: {stderr}"
    );

    // A TOML syntax error has its line and column.
    let bad = write(
        dir.path(),
        "bad.toml",
        "listen = \"127.0.0.1:0\"\nconcurrency = = 4\n",
    );
    let out = fm(dir.path())
        .arg("serve")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!("{}:2:", bad.display())),
        "{stderr}"
    );
}

/// A server config for the incident pipeline whose secrets are all present but no model is.
fn incident_server(dir: &Path, trigger_extra: &str) -> PathBuf {
    let secrets: String = [
        "LOGGING_TOKEN",
        "K8S_TOKEN",
        "DEPLOY_TOKEN",
        "STATUSPAGE_TOKEN",
        "PAGERDUTY_KEY",
        "PAGERDUTY_EVENTS_URL",
        "SLACK_WEBHOOK",
    ]
    .iter()
    .map(|n| format!("{n}=placeholder-value-{n}\n"))
    .collect();
    write(dir, "s.env", &secrets);
    write(
        dir,
        "fm.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\nstore = \"sqlite://{}/serve.db\"\nsecrets_file = \"s.env\"\n\n[[pipelines]]\nname = \"incident\"\nfile = \"{}\"\n\n[[triggers]]\nsource = \"alertmanager\"\npipeline = \"incident\"\n{trigger_extra}",
            dir.display(),
            repo().join("pipelines/devops-incident-response.pipeline.json").display()
        ),
    )
}

#[test]
fn serve_needs_no_model_when_its_triggers_are_rules_only() {
    let dir = tempfile::tempdir().unwrap();
    let toml = incident_server(dir.path(), "");
    let out = fm(dir.path())
        .arg("serve")
        .arg("--config")
        .arg(&toml)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("analyze-incident"), "{stderr}");
    assert!(
        stderr.contains("rules_only"),
        "the hint names the way out: {stderr}"
    );

    let toml = incident_server(
        dir.path(),
        "[triggers.input_defaults]\nanalysis_mode = \"rules_only\"\n",
    );
    let mut c = fm(dir.path());
    c.arg("serve").arg("--config").arg(&toml);
    let mut server = ChildGuard::spawn("fm-serve", c);
    server.wait_for_line(
        "the server to listen",
        Duration::from_secs(30),
        fm_testkit::fm_serve_addr,
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

#[test]
fn the_progress_display_redraws_in_place_on_a_terminal() {
    let Some(script) = fm_testkit::services::program("script") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "retry.pipeline.json",
        r#"{"name": "retry", "outcome": "{{ 'done' }}", "stages": [
            {"id": "wait", "component": "delay", "config": {"ms": 300}},
            {"id": "flaky", "component": "json_transform", "depends_on": ["wait"],
             "retry": {"max_attempts": 2, "delay_ms": 50, "condition": "{{ output.attempt_marker == 'this condition is long on purpose, far longer than any line should show, so that the display has to shorten it to a few words instead of printing it whole' }}"},
             "config": {"template": {"attempt_marker": "this condition is long on purpose, far longer than any line should show, so that the display has to shorten it to a few words instead of printing it whole"}}}]}"#,
    );
    let cmd = format!(
        "{} run {} --no-store",
        env!("CARGO_BIN_EXE_fm"),
        p.display()
    );
    // `script` gives the command a terminal and copies what it draws to the file.
    let typescript = dir.path().join("typescript");
    let out = clean_command(script, dir.path())
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160")
        .args(["-qec", &cmd])
        .arg(&typescript)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success() || out.status.code().is_some(),
        "script ran"
    );
    let drawn = std::fs::read_to_string(&typescript).unwrap_or_default();
    assert!(
        drawn.contains("\u{1b}["),
        "lines are redrawn in place: {drawn:?}"
    );
    assert!(
        drawn.contains("retrying: attempt 1 met the retry condition; next in 50 ms"),
        "the retry's short reason: {drawn:?}"
    );
    assert!(
        !drawn.contains("attempt 1 failed: retry condition {{"),
        "the retry line does not print the condition: {drawn:?}"
    );
    assert_eq!(drawn.matches("outcome: done").count(), 1, "{drawn:?}");
    // The retries ran out: the run failed, and says so once.
    assert_eq!(
        drawn.matches("error: run ").count(),
        1,
        "the final message once: {drawn:?}"
    );
}
