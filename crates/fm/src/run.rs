//! `fm run`: load and validate, prepare input and secrets, run with live progress, print the
//! output (or the record), exit 0/1/2.

use std::io::IsTerminal;
use std::path::PathBuf;

use fm_core::{CancelSignal, RunOptions, RunStatus, SecretSource};

use crate::cli::{RunArgs, When};
use crate::input::{apply_set, read_input};
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

    let mut llm_env = fm_components::LlmEnv::from_process_env();
    if sandbox.is_some() {
        // The model is the sandbox's simulated one, whatever the environment says.
        llm_env.provider = Some("openai".into());
        llm_env.openai_api_key = secrets.get("OPENAI_API_KEY");
        llm_env.openai_base_url = secrets.get("OPENAI_BASE_URL");
    }
    let (pipeline, _source) = match load_pipeline_with(&args.pipeline, Some(&secrets), llm_env) {
        Ok(x) => x,
        Err(LoadFailure::Unreadable(msg)) => {
            eprintln!("error: {msg}");
            return Ok(2);
        }
        Err(LoadFailure::Invalid(problems)) => {
            eprint!(
                "{}",
                render_problems(&args.pipeline.display().to_string(), &problems)
            );
            eprintln!(
                "error: the pipeline is not valid; nothing was run (check it with `fm validate`)"
            );
            return Ok(2);
        }
    };
    let prepared = match fm_core::prepare(&pipeline, input, &secrets) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };

    let run_id = uuid::Uuid::new_v4().to_string();
    let run_id_for_store = run_id.clone();
    let input_for_store = prepared.input.clone();
    let artifacts = args
        .artifacts
        .clone()
        .unwrap_or_else(|| PathBuf::from(".fm").join("runs").join(&run_id));
    let cancel = CancelSignal::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: cancelling the run (press Ctrl-C again to abort immediately)"
            );
            ctrl_c.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let show_stages = match args.progress {
        When::Always => true,
        When::Never => false,
        When::Auto => std::io::stderr().is_terminal(),
    };
    let width = pipeline
        .stages
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(8);
    let progress = crate::progress::Progress::new(show_stages, args.events, width);
    let opts = RunOptions {
        run_id: Some(run_id),
        concurrency: args.concurrency,
        timeout: args.timeout,
        dry_run: args.dry_run,
        artifacts_dir: Some(artifacts.clone()),
        cancel,
        ..RunOptions::default()
    };
    let recording = if args.no_store {
        None
    } else {
        crate::record::begin(
            &args.store,
            &run_id_for_store,
            &pipeline.name,
            &input_for_store,
            args.dry_run,
        )
        .await
    };
    let mut opts = opts;
    let record = match &recording {
        Some(rec) => {
            opts.budgets = Some(rec.store.clone());
            opts.journal = Some(fm_store::leased_journal(
                rec.store.clone(),
                rec.worker_id.clone(),
            ));
            fm_core::run(&pipeline, prepared, opts, &progress).await
        }
        None => fm_core::run(&pipeline, prepared, opts, &progress).await,
    };
    if let Some(rec) = recording {
        rec.finish(&record).await;
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else if !args.events {
        match &record.output {
            Some(out) => println!("{}", serde_json::to_string_pretty(out)?),
            None => {
                if let Some(e) = &record.error {
                    let at = e
                        .stage
                        .as_deref()
                        .map(|s| format!("stage '{s}': "))
                        .unwrap_or_default();
                    eprintln!(
                        "error: run {} {}: {at}{}",
                        record.run_id,
                        record.status.as_str(),
                        e.message
                    );
                }
            }
        }
    }
    for file in artifact_files(&artifacts) {
        eprintln!("artifact written: {}", file.display());
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
