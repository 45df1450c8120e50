//! `fm validate`: every problem of every file, as text or JSON; the secrets each pipeline reads.
//! With `--secrets`, the same checks `fm run` makes before it starts (every secret provided and
//! maskable, the model configured for the stages that always run), so the two never disagree.

use std::path::Path;

use fm_core::model::compile::missing_secret_name;
use fm_core::{CompileOptions, Problem, SecretSource, Source};
use serde_json::json;

use crate::cli::{Format, ValidateArgs};

/// Where a pipeline's secrets come from, said once after the problems that name them.
pub const SECRETS_HELP: &str = "the secrets are the credentials of the real systems the pipeline acts on: see \"Pointing it at real systems\" in docs/incident-response.md. To try it without them, run it against the simulated world: fm run FILE --sandbox oom";

/// Loads a pipeline with the same checks `fm run` does.
pub fn load_pipeline(
    path: &Path,
    secrets: Option<&SecretSource>,
) -> Result<(fm_core::Pipeline, Source), LoadFailure> {
    let llm_env = match secrets {
        Some(s) => fm_components::LlmEnv::from_secrets(s),
        None => fm_components::LlmEnv::from_process_env(),
    };
    load_pipeline_with(path, secrets, llm_env)
}

/// [`load_pipeline`] with the generator's provider settings given (`--sandbox` points them at
/// the simulated model).
pub fn load_pipeline_with(
    path: &Path,
    secrets: Option<&SecretSource>,
    llm_env: fm_components::LlmEnv,
) -> Result<(fm_core::Pipeline, Source), LoadFailure> {
    let source = Source::read(path)
        .map_err(|e| LoadFailure::Unreadable(format!("cannot read {}: {e}", path.display())))?;
    let registry = fm_components::registry_with(llm_env);
    let check = |name: &str| secrets.is_some_and(|s| s.has(name));
    let opts = CompileOptions {
        registry: &registry,
        secret_available: secrets.map(|_| &check as &dyn Fn(&str) -> bool),
    };
    match fm_core::load(&source, &opts) {
        Ok(p) => Ok((p, source)),
        Err(mut problems) => {
            for p in &mut problems {
                if let Some(name) = missing_secret_name(p) {
                    p.hint = Some(format!(
                        "put {name} in the --secrets file (JSON or KEY=value lines) or set the environment variable {name}"
                    ));
                }
            }
            Err(LoadFailure::Invalid(problems))
        }
    }
}

pub enum LoadFailure {
    Unreadable(String),
    Invalid(Vec<Problem>),
}

/// What `fm run` checks before it starts besides the pipeline itself, as problems: secret
/// values too short to mask, and the components' pre-flight (the model) for the stages every
/// run executes.
fn run_checks(p: &fm_core::Pipeline, secrets: &SecretSource) -> Vec<Problem> {
    let mut problems = Vec::new();
    for name in &p.secrets {
        if let Some(why) = secrets
            .get(name)
            .and_then(|v| fm_core::secrets::unsafe_to_mask(&v))
        {
            problems.push(
                Problem::new(
                    "unsafe_secret",
                    "$",
                    format!("secret {name} is refused: {why}"),
                )
                .with_hint(
                    "use the real credential; fm refuses values it cannot mask in its output",
                ),
            );
        }
    }
    for (stage, message) in fm_core::exec::preflight_failures(p, false) {
        problems.push(
            Problem::new(
                "preflight",
                "$",
                format!("stage '{stage}' cannot run: {message}"),
            )
            .with_stage(Some(&stage)),
        );
    }
    problems
}

pub fn run(args: &ValidateArgs) -> anyhow::Result<i32> {
    let secrets = match &args.secrets {
        Some(p) => Some(SecretSource::from_file(p)?),
        None => None,
    };
    let mut any_invalid = false;
    let mut any_unreadable = false;
    let mut reports = Vec::new();
    for file in &args.files {
        let shown = file.display().to_string();
        let loaded = load_pipeline(file, secrets.as_ref()).and_then(|(p, s)| {
            let more = secrets
                .as_ref()
                .map(|s| run_checks(&p, s))
                .unwrap_or_default();
            if more.is_empty() {
                Ok((p, s))
            } else {
                Err(LoadFailure::Invalid(more))
            }
        });
        match loaded {
            Ok((p, _)) => {
                let names: Vec<&String> = p.secrets.iter().collect();
                if args.format == Format::Text {
                    outln!("{shown}: ok ({} stages)", p.stages.len());
                    if !names.is_empty() {
                        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
                        match &secrets {
                            Some(_) => {
                                outln!("  secrets it reads (all provided): {}", names.join(", "))
                            }
                            None => {
                                outln!("  secrets it reads: {}", names.join(", "));
                                outln!(
                                    "  (not checked: `fm validate --secrets FILE` checks they are provided, as `fm run` will; `fm run --sandbox SCENARIO` provides stand-ins)"
                                );
                            }
                        }
                    }
                }
                reports
                    .push(json!({"file": shown, "valid": true, "problems": [], "secrets": names}));
            }
            Err(LoadFailure::Unreadable(msg)) => {
                any_unreadable = true;
                errln!("error: {msg}");
                reports.push(json!({"file": shown, "valid": false, "error": msg}));
            }
            Err(LoadFailure::Invalid(problems)) => {
                any_invalid = true;
                if args.format == Format::Text {
                    crate::out::out(&render_problems(&shown, &problems));
                }
                reports.push(json!({"file": shown, "valid": false, "problems": problems}));
            }
        }
    }
    if args.format == Format::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "files": reports }))?
        );
    }
    Ok(if any_unreadable {
        2
    } else if any_invalid {
        1
    } else {
        0
    })
}

/// The text form: a header line, then each problem with its path, location, stage and hint;
/// after missing secrets, once, where secrets come from.
pub fn render_problems(file: &str, problems: &[Problem]) -> String {
    let mut s = format!(
        "{file}: {} problem{}\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        let in_file = p.file.as_deref().unwrap_or(file);
        let loc = match (p.line, p.column) {
            (Some(l), Some(c)) => format!("{in_file}:{l}:{c}"),
            _ => in_file.to_owned(),
        };
        s.push_str(&format!("  error[{}] {} at {}\n", p.code, p.path, loc));
        for line in p.message.lines() {
            s.push_str(&format!("      {line}\n"));
        }
        if let Some(stage) = &p.stage {
            s.push_str(&format!("      stage: {stage}\n"));
        }
        if let Some(h) = &p.hint {
            s.push_str(&format!("      hint: {h}\n"));
        }
    }
    if problems.iter().any(|p| missing_secret_name(p).is_some()) && !file.ends_with(".toml") {
        s.push_str(&format!("  note: {}\n", SECRETS_HELP.replace("FILE", file)));
    }
    s
}
