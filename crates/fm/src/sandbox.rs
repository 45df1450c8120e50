//! `fm sandbox` and `fm run --sandbox`: the simulated outside world, in-process.

use anyhow::{anyhow, Context};
use fm_core::SecretSource;
use fm_sandbox::{Latencies, Sandbox, SandboxOptions, Scenario};
use serde_json::Value;

use crate::cli::SandboxArgs;

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    Scenario::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Scenario::all().iter().map(|s| s.name()).collect();
        anyhow!(
            "unknown sandbox scenario '{name}'; scenarios: {}",
            names.join(", ")
        )
    })
}

/// Starts the sandbox for a run: the input's API URLs and the secrets point at it, so the run
/// touches nothing real. Returns the handle; dropping it stops the server.
pub async fn start_for_run(
    name: &str,
    input: &mut Value,
    secrets: &mut SecretSource,
) -> anyhow::Result<Sandbox> {
    let sb = Sandbox::start(SandboxOptions {
        scenario: scenario(name)?,
        port: 0,
        ..Default::default()
    })
    .await
    .context("starting the sandbox")?;
    if !input.is_object() {
        *input = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = input {
        for (k, v) in sb.input_overrides() {
            map.insert(k, v);
        }
    }
    for (k, v) in sb.secrets() {
        secrets.set(k, v);
    }
    errln!(
        "sandbox: scenario '{}' simulated on {} (nothing real is contacted; the model is a rule-based simulation)",
        sb.scenario().name(),
        sb.base_url()
    );
    Ok(sb)
}

pub async fn serve(args: &SandboxArgs) -> anyhow::Result<i32> {
    let sb = fm_sandbox::serve_forever(SandboxOptions {
        scenario: scenario(&args.scenario)?,
        port: args.port,
        latencies: if args.no_latency {
            Latencies::zero()
        } else {
            Latencies::default()
        },
        ..Default::default()
    })
    .await
    .with_context(|| format!("starting the sandbox on 127.0.0.1:{}", args.port))?;
    let base = sb.base_url();
    let secrets = sb.secrets();
    if args.env {
        // A shell can source these lines, and `fm run --secrets FILE` reads them as they are.
        outln!(
            "# fm sandbox: scenario '{}' on {base} (nothing real; press Ctrl-C to stop it)",
            sb.scenario().name()
        );
        for (k, v) in sb.input_overrides() {
            outln!("# input: {k} = {}", fm_expr::to_text(&v));
        }
        for (k, v) in &secrets {
            outln!("export {k}={}", shell_quote(v));
        }
        errln!("fm sandbox: serving on {base}; press Ctrl-C to stop");
    } else {
        outln!("fm sandbox: scenario '{}' on {base}", sb.scenario().name());
        outln!("  input keys for a pipeline:");
        for (k, v) in sb.input_overrides() {
            outln!("    {k} = {}", fm_expr::to_text(&v));
        }
        outln!("  credentials and URLs (the secrets pipelines read; stand-ins, not real):");
        for (k, v) in &secrets {
            outln!("    {k} = {v}");
        }
        outln!("  as a --secrets file or shell exports: fm sandbox --env > sandbox.env");
        outln!("  requests received: GET {base}/_sandbox/requests");
        outln!("press Ctrl-C to stop");
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sb.shutdown().await;
    Ok(0)
}

/// `'value'` for a POSIX shell (a `'` inside becomes `'\''`).
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}
