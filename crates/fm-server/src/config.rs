//! `fm.toml`: what the server loads, listens on, stores into, and may reach. Read with the same
//! reader as pipeline files, so an unknown key gets a did-you-mean and every problem is listed
//! at once; a bad config is refused at start.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fm_core::model::reader::CompileCx;
use fm_core::model::stage_fields::parse_duration;
use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::Problem;
use fm_expr::{Template, Value};

#[derive(Debug)]
pub struct ServerConfig {
    pub listen: String,
    pub store: String,
    /// Runs executing at once in this server.
    pub concurrency: usize,
    /// PostgreSQL: the store's connection pool (default: two per worker, plus 8 for the API).
    pub store_connections: u32,
    /// How long a claimed run stays ours without a heartbeat.
    pub lease: Duration,
    pub secrets_file: Option<PathBuf>,
    /// Names (in the secrets file or environment) of the bearer tokens the API accepts.
    pub api_token_secrets: Vec<String>,
    /// Hosts outbound http_request stages may reach (`*.example.com` patterns allowed).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub shutdown_deadline: Duration,
    /// After a run is stopped once a remediation may have acted: how long its catch and finally
    /// stages get to tell people.
    pub cleanup_timeout: Duration,
    pub flapping: Flapping,
    pub pipelines: Vec<PipelineEntry>,
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone, Copy)]
pub struct Flapping {
    /// More than this many alerts for one service within `window` is flapping.
    pub max_alerts: u32,
    pub window: Duration,
}

#[derive(Debug)]
pub struct PipelineEntry {
    pub name: String,
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    PagerDuty,
    Alertmanager,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::PagerDuty => "pagerduty",
            Source::Alertmanager => "alertmanager",
        }
    }
}

#[derive(Debug)]
pub struct Trigger {
    pub source: Source,
    pub pipeline: String,
    /// Names of the signing secrets (PagerDuty), from the secrets file or environment.
    pub signing_secrets: Vec<String>,
    /// Template over `alert`; default: the sender's id (incident id, fingerprint).
    pub dedup_key: Option<Template>,
    /// Template object over `alert` producing the pipeline's input; default: the PagerDuty-like
    /// shape of the reference's sample input.
    pub input: Option<ValueTemplate>,
    /// Merged into the input under the mapping's keys (URLs of the systems to act on).
    pub input_defaults: serde_json::Map<String, Value>,
}

pub fn load(path: &Path) -> Result<ServerConfig, Vec<Problem>> {
    match read(path) {
        (Some(c), problems) if problems.is_empty() => Ok(c),
        (_, problems) => Err(problems),
    }
}

/// The config file's text (kept to locate problems in it).
pub fn read_text(path: &Path) -> Result<String, Vec<Problem>> {
    std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::new(
            "unreadable",
            "$",
            format!("cannot read {}: {e}", path.display()),
        )]
    })
}

/// Reads the file: the config (with defaults where a value is wrong) and every problem found,
/// located. No config at all when the file cannot be read or is not TOML.
pub fn read(path: &Path) -> (Option<ServerConfig>, Vec<Problem>) {
    let text = match read_text(path) {
        Ok(t) => t,
        Err(problems) => return (None, problems),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let (config, mut problems) = parse_all(&text, base);
    crate::config_locate::locate_all(&text, &mut problems);
    (config, problems)
}

pub fn parse(text: &str, base: &Path) -> Result<ServerConfig, Vec<Problem>> {
    match parse_all(text, base) {
        (Some(c), problems) if problems.is_empty() => Ok(c),
        (_, problems) => Err(problems),
    }
}

/// Every problem of the text, and the config read with defaults in place of wrong values (so
/// that the server's own checks can report theirs in the same pass).
pub fn parse_all(text: &str, base: &Path) -> (Option<ServerConfig>, Vec<Problem>) {
    let doc: Value = match toml::from_str::<Value>(text) {
        Ok(d) => d,
        Err(e) => {
            let mut p = Problem::new("syntax", "$", format!("TOML syntax error: {}", e.message()))
                .with_hint("see https://toml.io for the syntax");
            if let Some(span) = e.span() {
                let (line, column) = crate::config_locate::position(text, span.start);
                p.line = Some(line);
                p.column = Some(column);
            }
            return (None, vec![p]);
        }
    };
    let Value::Object(top) = &doc else {
        return (
            None,
            vec![Problem::new(
                "wrong_type",
                "$",
                "the config must be a TOML table",
            )],
        );
    };
    let no_ids = HashSet::new();
    let mut cx = CompileCx::new(&no_ids);
    let mut r = ConfigReader::new(top, "", None, &mut cx);
    let listen = r
        .string("listen", &[])
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let store = r
        .string("store", &[])
        .unwrap_or_else(|| "sqlite://.fm/fm.db".into());
    let concurrency = r.u64("concurrency", &[]).unwrap_or(8).clamp(1, 1024) as usize;
    // Each worker makes its own store calls while its run's events are written beside them;
    // the API and the webhooks need a few more. Too small a pool queues workers behind the
    // intake during a burst.
    let store_connections =
        r.u64("store_connections", &[])
            .map_or(2 * concurrency as u64 + 8, |n| n.clamp(2, 10_000)) as u32;
    let lease = duration(&mut r, "lease", Duration::from_secs(30));
    let secrets_file = r.string("secrets_file", &[]).map(|f| base.join(f));
    let api_token_secrets = strings(&mut r, "api_token_secrets");
    let allowed_hosts = strings(&mut r, "allowed_hosts");
    let max_body_bytes = r.u64("max_body_bytes", &[]).unwrap_or(1 << 20) as usize;
    let shutdown_deadline = duration(&mut r, "shutdown_deadline", Duration::from_secs(30));
    let cleanup_timeout = duration(
        &mut r,
        "cleanup_timeout",
        fm_core::exec::DEFAULT_CLEANUP_TIMEOUT,
    );
    let flapping = match r.object("flapping", &[]) {
        Some(mut f) => {
            let max_alerts = f.u64("max_alerts", &[]).unwrap_or(3) as u32;
            let window = duration(&mut f, "window", Duration::from_secs(30 * 60));
            f.finish();
            Flapping { max_alerts, window }
        }
        None => Flapping {
            max_alerts: 3,
            window: Duration::from_secs(30 * 60),
        },
    };
    let mut pipelines = Vec::new();
    if let Some((path, v)) = r.raw("pipelines", &[]) {
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            let Value::Object(m) = item else { continue };
            let mut p = r.nested(m, format!("{path}[{i}]"));
            let name = p.required_string("name", &[]);
            let file = p.required_string("file", &[]);
            p.finish();
            if let (Some(name), Some(file)) = (name, file) {
                pipelines.push(PipelineEntry {
                    name,
                    file: base.join(file),
                });
            }
        }
    }
    let mut triggers = Vec::new();
    if let Some((path, v)) = r.raw("triggers", &[]) {
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            let Value::Object(m) = item else { continue };
            let mut t = r.nested(m, format!("{path}[{i}]"));
            t.set_extra_vars(&["alert"]);
            let source = match t.required_string("source", &[]).as_deref() {
                Some("pagerduty") => Some(Source::PagerDuty),
                Some("alertmanager") => Some(Source::Alertmanager),
                Some(other) => {
                    let p = t.key_path("source");
                    t.problem_with_hint(
                        "invalid_value",
                        p,
                        format!("unknown source '{other}'"),
                        "use pagerduty or alertmanager",
                    );
                    None
                }
                None => None,
            };
            let pipeline = t.required_string("pipeline", &[]);
            let signing_secrets = strings(&mut t, "signing_secrets");
            let dedup_key = t.template("dedup_key", &[]);
            let input = t.value_template("input", &[]);
            let input_defaults = match t.raw("input_defaults", &[]) {
                Some((_, Value::Object(m))) => m.clone(),
                Some((p, _)) => {
                    t.problem("wrong_type", p, "input_defaults must be a table");
                    serde_json::Map::new()
                }
                None => serde_json::Map::new(),
            };
            if source == Some(Source::PagerDuty) && signing_secrets.is_empty() {
                let p = t.key_path("signing_secrets");
                t.problem_with_hint(
                    "missing_key",
                    p,
                    "a pagerduty trigger needs signing_secrets: unsigned webhooks are refused",
                    "name the secret(s) holding the webhook subscription's signing secret, e.g. [\"PAGERDUTY_WEBHOOK_SECRET\"]",
                );
            }
            t.finish();
            if let (Some(source), Some(pipeline)) = (source, pipeline) {
                triggers.push(Trigger {
                    source,
                    pipeline,
                    signing_secrets,
                    dedup_key,
                    input,
                    input_defaults,
                });
            }
        }
    }
    r.finish();
    let mut problems = std::mem::take(&mut cx.problems);
    for (i, t) in triggers.iter().enumerate() {
        if !pipelines.iter().any(|p| p.name == t.pipeline) {
            problems.push(
                Problem::new(
                    "undefined_pipeline",
                    format!("triggers[{i}].pipeline"),
                    format!("no pipeline named '{}'", t.pipeline),
                )
                .with_hint("add it under [[pipelines]] with a name and a file"),
            );
        }
    }
    if pipelines.is_empty() {
        problems.push(Problem::new("missing_key", "pipelines", "the server has no pipeline to run").with_hint(
            "add [[pipelines]] name = \"devops-incident-response\" file = \"pipelines/devops-incident-response.pipeline.json\"",
        ));
    }
    let config = ServerConfig {
        listen,
        store,
        concurrency,
        store_connections,
        lease,
        secrets_file,
        api_token_secrets,
        allowed_hosts,
        max_body_bytes,
        shutdown_deadline,
        cleanup_timeout,
        flapping,
        pipelines,
        triggers,
    };
    (Some(config), problems)
}

fn strings(r: &mut ConfigReader<'_, '_>, key: &'static str) -> Vec<String> {
    match r.raw(key, &[]) {
        None => Vec::new(),
        Some((path, Value::Array(items))) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v.as_str() {
                Some(s) => Some(s.to_owned()),
                None => {
                    r.problem("wrong_type", format!("{path}[{i}]"), "expected a string");
                    None
                }
            })
            .collect(),
        Some((path, _)) => {
            r.problem("wrong_type", path, "expected a list of strings");
            Vec::new()
        }
    }
}

fn duration(r: &mut ConfigReader<'_, '_>, key: &'static str, default: Duration) -> Duration {
    match r.raw(key, &[]) {
        None => default,
        Some((path, v)) => parse_duration(v).unwrap_or_else(|| {
            r.problem_with_hint(
                "invalid_value",
                path,
                format!("'{key}' must be a duration"),
                "e.g. \"30s\" or \"5m\"",
            );
            default
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_with_suggestions() {
        let text = r#"
listen = "127.0.0.1:0"
concurency = 4
lease = "soon"

[[pipelines]]
name = "incident"
file = "p.json"

[[triggers]]
source = "pagerduty"
pipeline = "incidnt"
"#;
        let problems = parse(text, Path::new(".")).err().unwrap_or_default();
        let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
        assert!(codes.contains(&"unknown_key"), "{problems:#?}");
        assert!(problems
            .iter()
            .any(|p| p.hint.as_deref() == Some("did you mean 'concurrency'?")));
        assert!(codes.contains(&"invalid_value"));
        assert!(
            codes.contains(&"missing_key"),
            "pagerduty without signing secrets"
        );
        assert!(codes.contains(&"undefined_pipeline"));
    }

    #[test]
    fn the_store_pool_follows_the_workers_unless_set() {
        let base = "[[pipelines]]\nname = \"p\"\nfile = \"p.json\"\n";
        let parsed = |head: &str| {
            parse(&format!("{head}\n{base}"), Path::new("."))
                .map_err(|p| format!("{p:#?}"))
                .map(|c| (c.concurrency, c.store_connections))
        };
        assert_eq!(parsed("concurrency = 16"), Ok((16, 40)));
        assert_eq!(parsed(""), Ok((8, 24)));
        assert_eq!(
            parsed("concurrency = 16\nstore_connections = 20"),
            Ok((16, 20))
        );
    }
}
