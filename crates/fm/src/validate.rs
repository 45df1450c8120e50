//! `fm validate`: every problem of every file, as text or JSON.

use std::io::Write;
use std::path::Path;

use fm_core::{CompileOptions, Problem, SecretSource, Source};
use serde_json::json;

use crate::cli::{Format, ValidateArgs};

/// Loads a pipeline with the same checks `fm run` does.
pub fn load_pipeline(
    path: &Path,
    secrets: Option<&SecretSource>,
) -> Result<(fm_core::Pipeline, Source), LoadFailure> {
    load_pipeline_with(path, secrets, fm_components::LlmEnv::from_process_env())
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
        Err(problems) => Err(LoadFailure::Invalid(problems)),
    }
}

pub enum LoadFailure {
    Unreadable(String),
    Invalid(Vec<Problem>),
}

pub fn run(args: &ValidateArgs) -> anyhow::Result<i32> {
    let secrets = match &args.secrets {
        Some(p) => Some(SecretSource::from_file(p)?),
        None => None,
    };
    let mut any_invalid = false;
    let mut any_unreadable = false;
    let mut reports = Vec::new();
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        match load_pipeline(file, secrets.as_ref()) {
            Ok((p, _)) => {
                if args.format == Format::Text {
                    writeln!(out, "{}: ok ({} stages)", file.display(), p.stages.len())?;
                }
                reports.push(
                    json!({"file": file.display().to_string(), "valid": true, "problems": []}),
                );
            }
            Err(LoadFailure::Unreadable(msg)) => {
                any_unreadable = true;
                eprintln!("error: {msg}");
                reports.push(
                    json!({"file": file.display().to_string(), "valid": false, "error": msg}),
                );
            }
            Err(LoadFailure::Invalid(problems)) => {
                any_invalid = true;
                if args.format == Format::Text {
                    write!(
                        out,
                        "{}",
                        render_problems(&file.display().to_string(), &problems)
                    )?;
                }
                reports.push(json!({"file": file.display().to_string(), "valid": false, "problems": problems}));
            }
        }
    }
    if args.format == Format::Json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({ "files": reports }))?
        )?;
    }
    Ok(if any_unreadable {
        2
    } else if any_invalid {
        1
    } else {
        0
    })
}

/// The text form: a header line, then each problem with its path, location, stage and hint.
pub fn render_problems(file: &str, problems: &[Problem]) -> String {
    let mut s = format!(
        "{file}: {} problem{}\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        let loc = match (p.line, p.column) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
            _ => file.to_owned(),
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
    s
}
