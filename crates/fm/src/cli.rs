//! Command-line interface: the flags, as clap reads them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "fm",
    version,
    about = "Run FlowMason-format pipelines: fast, strict, safe."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a pipeline and print its output (or its whole record with --json).
    Run(RunArgs),
    /// Check pipeline files without running them; report every problem at once.
    Validate(ValidateArgs),
    /// Print a pipeline's DAG (router branches and trycatch scopes visible).
    Graph(GraphArgs),
    /// Serve the simulated outside world (logs, Prometheus, Kubernetes, PagerDuty, ...) on 127.0.0.1.
    Sandbox(SandboxArgs),
    /// List the built-in components.
    Components,
    /// Serve alert webhooks and the runs API (see docs/server.md).
    Serve(ServeArgs),
    /// Runs recorded in the store (by `fm run` and `fm serve`), with or without a server.
    #[command(subcommand)]
    Runs(RunsCommand),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The server's configuration file.
    #[arg(long, default_value = "fm.toml")]
    pub config: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Newest first.
    List {
        #[arg(long, default_value = fm_store::DEFAULT_URL, env = "FM_STORE")]
        store: String,
        /// queued, running, succeeded, failed, timed_out or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// The run's outcome as its pipeline declares it (escalated, auto_remediated, ...); `none` for runs without one.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One run: its stages with timings, its output or error.
    Show {
        id: String,
        #[arg(long, default_value = fm_store::DEFAULT_URL, env = "FM_STORE")]
        store: String,
        /// Print the whole stored run as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pipeline file (*.pipeline.json, or .yaml/.yml).
    pub pipeline: PathBuf,
    /// The run's input: a file (JSON or YAML), `-` for stdin, or inline JSON ('{"id": 1}').
    #[arg(long, short)]
    pub input: Option<String>,
    /// Set an input value: `--set payload.severity=critical` (the value is JSON if it parses, else a string).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
    /// Secrets file: a JSON object or KEY=value lines. Names not in it are read from the environment.
    #[arg(long)]
    pub secrets: Option<PathBuf>,
    /// Time limit for the whole run, e.g. 90s, 5m, 1500ms.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// When the run is stopped (Ctrl-C, SIGTERM, --timeout) after a remediation may have acted: how long its catch and finally stages get to tell people.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub cleanup_timeout: std::time::Duration,
    /// Most stages executing at once.
    #[arg(long, default_value_t = fm_core::exec::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Print the whole run record (stages, timings, errors) as JSON instead of the output.
    #[arg(long, conflicts_with = "events")]
    pub json: bool,
    /// Stream every event as a JSON line on stdout.
    #[arg(long)]
    pub events: bool,
    #[arg(long, help = fm_core::DRY_RUN_RULE)]
    pub dry_run: bool,
    /// Run against the built-in simulated world (scenario: oom, connection-pool, bad-deploy, unknown, remediation-fails, flaky-context).
    #[arg(long, value_name = "SCENARIO")]
    pub sandbox: Option<String>,
    /// Where the run's artifacts (e.g. the postmortem draft) are written. Default: .fm/runs/<run id>/
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// The store the run is recorded in (`fm runs` reads it).
    #[arg(long, default_value = fm_store::DEFAULT_URL, env = "FM_STORE")]
    pub store: String,
    /// Do not record the run in the store (budgets then hold only within this run).
    #[arg(long)]
    pub no_store: bool,
    /// Progress display on stderr: auto (when stderr is a terminal), always, never.
    #[arg(long, value_enum, default_value_t = When::Auto)]
    pub progress: When,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Pipeline files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also check that every secret the pipeline reads is in this file or the environment.
    #[arg(long)]
    pub secrets: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    pub pipeline: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Scenario to simulate.
    #[arg(long, default_value = "oom")]
    pub scenario: String,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Answer without simulated latency.
    #[arg(long)]
    pub no_latency: bool,
    /// Print the credentials and URLs as `export NAME=value` lines, then keep serving: redirect them to a file to use it as a --secrets file (or `source` it in a shell).
    #[arg(long)]
    pub env: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Auto,
    Always,
    Never,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 90s, 5m, 1500ms)"))
}
