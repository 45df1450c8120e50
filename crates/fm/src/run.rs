//! `fm run`: load and validate, prepare input and secrets, run with live progress, print the
//! output (or the record), say on stderr how the run ended, exit 0/1/2.

use std::io::IsTerminal;
use std::path::PathBuf;

use fm_core::{CancelRequest, CancelSignal, RunOptions, RunRecord, RunStatus, SecretSource};

use crate::cli::{RunArgs, When};
use crate::input::{apply_set, read_input};
use crate::progress::{Mode, Progress};
use crate::validate::{load_pipeline_with, render_problems, LoadFailure};

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut secrets = match &args.secrets {
        Some(p) => SecretSource::from_file(p)?,
        None => SecretSource::from_env(),
    };
    let mut input = read_input(args.input.as_deref())?;
    for s in &args.set {
        apply_set(&mut input, s)?;
    }

    // The simulated world, when asked for: it must be up before secrets are checked.
    let sandbox = match &args.sandbox {
        Some(name) => Some(crate::sandbox::start_for_run(name, &mut input, &mut secrets).await?),
        None => None,
    };

    // The model's settings come from where the secrets do: the --secrets file, then the
    // environment (the sandbox's simulated model when --sandbox).
    let mut llm_env = fm_components::LlmEnv::from_secrets(&secrets);
    if sandbox.is_some() {
        llm_env.provider = Some("openai".into());
    }
    // Secrets are checked by `prepare` below, which says where they come from.
    let (pipeline, _source) = match load_pipeline_with(&args.pipeline, None, llm_env) {
        Ok(x) => x,
        Err(LoadFailure::Unreadable(msg)) => {
            errln!("error: {msg}");
            return Ok(2);
        }
        Err(LoadFailure::Invalid(problems)) => {
            errp!(
                "{}",
                render_problems(&args.pipeline.display().to_string(), &problems)
            );
            errln!(
                "error: the pipeline is not valid; nothing was run (check it with `fm validate`)"
            );
            return Ok(2);
        }
    };
    let prepared = match fm_core::prepare(&pipeline, input, &secrets) {
        Ok(p) => p,
        Err(fm_core::StartError::Secrets(problems)) => {
            let shown = args.pipeline.display();
            if !problems.missing.is_empty() {
                errln!(
                    "error: the pipeline reads {} secret{} that {} not provided: {}",
                    problems.missing.len(),
                    if problems.missing.len() == 1 { "" } else { "s" },
                    if problems.missing.len() == 1 {
                        "is"
                    } else {
                        "are"
                    },
                    problems.missing.join(", ")
                );
                errln!(
                    "  put them in a --secrets file (JSON or KEY=value lines) or the environment: they are the credentials of the real systems the pipeline acts on (see \"Pointing it at real systems\" in docs/incident-response.md)"
                );
                errln!(
                    "  to try the pipeline without them, against the simulated world: fm run {shown} --sandbox oom (scenarios: {})",
                    fm_sandbox::Scenario::all()
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for (name, why) in &problems.unmaskable {
                errln!("error: secret {name} is refused: {why}");
            }
            errln!("error: nothing was run");
            return Ok(2);
        }
        Err(e) => {
            errln!("error: {e}");
            return Ok(2);
        }
    };

    let run_id = uuid::Uuid::new_v4().to_string();
    let artifacts = args
        .artifacts
        .clone()
        .unwrap_or_else(|| PathBuf::from(".fm").join("runs").join(&run_id));
    let cancel = CancelSignal::new();
    let signals = tokio::spawn(stop_on_signals(cancel.clone()));
    let mode = match args.progress {
        When::Never => Mode::Off,
        When::Always if std::io::stderr().is_terminal() => Mode::Live,
        When::Always => Mode::Lines,
        When::Auto if std::io::stderr().is_terminal() => Mode::Live,
        When::Auto => Mode::Off,
    };
    let width = pipeline
        .stages
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(8);
    let progress = Progress::new(mode, args.events, width);
    let mut opts = RunOptions {
        run_id: Some(run_id.clone()),
        concurrency: args.concurrency,
        timeout: args.timeout,
        cleanup_timeout: args.cleanup_timeout,
        dry_run: args.dry_run,
        artifacts_dir: Some(artifacts.clone()),
        cancel: cancel.clone(),
        ..RunOptions::default()
    };
    let recording = if args.no_store {
        None
    } else {
        crate::record::begin(
            &args.store,
            &run_id,
            &pipeline.name,
            &prepared.input,
            args.dry_run,
            cancel.clone(),
        )
        .await
    };
    if let Some(rec) = &recording {
        opts.budgets = Some(rec.store.clone());
        opts.journal = Some(fm_store::leased_journal(
            rec.store.clone(),
            rec.worker_id.clone(),
        ));
    }
    let record = fm_core::run(&pipeline, prepared, opts, &progress).await;
    signals.abort();
    if let Some(rec) = recording {
        rec.finish(&record).await;
    }

    if args.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
    } else if !args.events {
        if let Some(out) = &record.output {
            outln!("{}", serde_json::to_string_pretty(out)?);
        }
    }
    errp!("{}", final_lines(&record, mode != Mode::Off));
    for file in artifact_files(&artifacts) {
        errln!("artifact written: {}", file.display());
    }
    if let Some(sb) = sandbox {
        sb.shutdown().await;
    }
    Ok(if record.status == RunStatus::Succeeded {
        0
    } else {
        1
    })
}

/// How the run ended, on stderr, printed once whatever the display: a failed, cancelled or
/// timed-out run says why; a run whose pipeline declares an outcome says it
/// (`outcome: escalated — <reason>`), with or without a terminal (cron, CI, a pipe).
fn final_lines(record: &RunRecord, progress_shown: bool) -> String {
    let mut s = String::new();
    let secs = record.duration_ms as f64 / 1000.0;
    match &record.error {
        Some(e) if record.status != RunStatus::Succeeded => {
            let at = e
                .stage
                .as_deref()
                .map(|s| format!("stage '{s}': "))
                .unwrap_or_default();
            s.push_str(&format!(
                "error: run {} {} after {secs:.2} s: {at}{}\n",
                record.run_id,
                record.status.as_str(),
                e.message
            ));
        }
        _ if progress_shown => {
            s.push_str(&format!(
                "✓ run {} {} in {secs:.2} s\n",
                record.run_id,
                record.status.as_str()
            ));
        }
        _ => {}
    }
    if let Some(outcome) = &record.outcome {
        match &record.outcome_reason {
            Some(reason) => s.push_str(&format!("outcome: {outcome} — {reason}\n")),
            None => s.push_str(&format!("outcome: {outcome}\n")),
        }
    }
    s
}

/// Ctrl-C or SIGTERM once: the run stops starting work; if a remediation may have acted, its
/// catch and finally stages still get their cleanup time to tell people. Twice: that cleanup is
/// abandoned. Three times: fm exits at once.
async fn stop_on_signals(cancel: CancelSignal) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut count = 0;
    loop {
        #[cfg(unix)]
        let which = match term.as_mut() {
            Some(t) => tokio::select! {
                r = tokio::signal::ctrl_c() => r.ok().map(|()| "Ctrl-C"),
                _ = t.recv() => Some("SIGTERM"),
            },
            None => tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C"),
        };
        #[cfg(not(unix))]
        let which = tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C");
        let Some(which) = which else {
            return;
        };
        count += 1;
        match count {
            1 => {
                errln!(
                    "\ninterrupted ({which}): stopping the run; if a remediation may have acted, its catch and finally stages still run to tell people (press Ctrl-C again to abandon them)"
                );
                cancel.cancel_with(CancelRequest::because(which));
            }
            2 => {
                errln!(
                    "\ninterrupted again: abandoning the cleanup (press Ctrl-C once more to exit at once)"
                );
                cancel.abandon_cleanup();
            }
            _ => std::process::exit(130),
        }
    }
}

/// The files the run wrote among its artifacts (e.g. the postmortem draft), sorted; none if the
/// directory was never created.
fn artifact_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue; // temporary files of a write in progress
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}
