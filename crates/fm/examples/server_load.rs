//! Load benchmark for `fm serve`: the sandbox at zero latency, the shipped incident pipeline,
//! signed PagerDuty webhooks. Reports idle RSS, accept latency (p50/p99) at a steady rate,
//! sustained runs per second and peak RSS over a burst, and checks that no alert is lost.
//!
//!     cargo build --release -p fm && cargo run --release -p fm --example server_load -- \
//!         [--store sqlite|postgres://...] [--burst 10000] [--rate 50] [--seconds 10] [--concurrency 16]
//!         [--flapping-max 5] [--store-connections N]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fm_sandbox::{Latencies, Sandbox, SandboxOptions, Scenario};
use serde_json::json;

const SIGNING: &str = "load-signing-secret";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn alert(i: u64) -> String {
    json!({"event": {"id": format!("ev{i}"), "event_type": "incident.triggered", "resource_type": "incident",
        "data": {"id": format!("PLOAD{i}"), "title": "payment-service: High memory usage (>90%)", "urgency": "high",
                 "created_at": "2026-11-26T03:42:00Z", "service": {"id": "P1", "summary": "payment-service"}}}})
    .to_string()
}

async fn send(client: &reqwest::Client, base: &str, i: u64) -> Result<Duration, String> {
    let body = alert(i);
    let sig = fm_server::webhooks::pagerduty::sign(body.as_bytes(), SIGNING);
    let t = Instant::now();
    let resp = client
        .post(format!("{base}/v1/webhooks/pagerduty"))
        .header("x-pagerduty-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if resp.status().as_u16() != 202 {
        return Err(format!("status {}", resp.status()));
    }
    Ok(took)
}

async fn finished_runs(client: &reqwest::Client, base: &str) -> u64 {
    let text = match client.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => return 0,
    };
    text.lines()
        .filter(|l| l.starts_with("fm_runs_total{"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

async fn wait_runs(
    client: &reqwest::Client,
    base: &str,
    target: u64,
    pid: u32,
    peak: &AtomicU64,
) -> Instant {
    loop {
        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        if finished_runs(client, base).await >= target {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let store = arg("--store", "sqlite");
    let burst: u64 = arg("--burst", "10000").parse().unwrap_or(10000);
    let rate: u64 = arg("--rate", "50").parse().unwrap_or(50);
    let seconds: u64 = arg("--seconds", "10").parse().unwrap_or(10);
    let concurrency = arg("--concurrency", "16");
    // Every alert here is for payment-service, so with a realistic threshold nearly every run
    // is flapping (and escalates). A huge one keeps flapping out of the way, at the price of
    // a flapping count that reads every alert of the window.
    let flapping_max = arg("--flapping-max", "5");
    let store_connections = match arg("--store-connections", "") {
        n if n.is_empty() => String::new(),
        n => format!("store_connections = {n}\n"),
    };
    let fm_bin = std::fs::canonicalize(arg("--fm", "target/release/fm"))
        .expect("the fm binary (build it first: cargo build --release -p fm)");
    let pipeline = std::fs::canonicalize(arg(
        "--pipeline",
        "pipelines/devops-incident-response.pipeline.json",
    ))
    .expect("run from the repository root");

    let sandbox = Sandbox::start(SandboxOptions {
        scenario: Scenario::Oom,
        port: 0,
        latencies: Latencies::zero(),
        recovery_delay: Duration::ZERO,
    })
    .await
    .expect("sandbox");
    let dir = std::env::temp_dir().join(format!("fm-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut secrets: String = sandbox
        .secrets()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    secrets.push_str(&format!("PD_SIGNING={SIGNING}\n"));
    std::fs::write(dir.join("secrets.env"), secrets).expect("secrets");
    let store_url = if store == "sqlite" {
        format!("sqlite://{}/fm.db", dir.display())
    } else {
        store.clone()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let defaults: String = sandbox
        .input_overrides()
        .iter()
        .map(|(k, v)| format!("{k} = {}\n", v))
        .collect();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nstore = \"{store_url}\"\nconcurrency = {concurrency}\n{store_connections}secrets_file = \"secrets.env\"\nallowed_hosts = [\"127.0.0.1\"]\nmax_body_bytes = 65536\n[flapping]\nmax_alerts = {flapping_max}\nwindow = \"10m\"\n[[pipelines]]\nname = \"incident\"\nfile = \"{}\"\n[[triggers]]\nsource = \"pagerduty\"\npipeline = \"incident\"\nsigning_secrets = [\"PD_SIGNING\"]\n[triggers.input_defaults]\n{defaults}",
        pipeline.display()
    );
    std::fs::write(dir.join("fm.toml"), config).expect("config");
    let sb = sandbox.secrets();
    let mut child: Child = Command::new(&fm_bin)
        .args(["serve", "--config"])
        .arg(dir.join("fm.toml"))
        // The pipeline's runbook library path is relative to the working directory.
        .current_dir(std::env::current_dir().expect("cwd"))
        .env(
            "RUST_LOG",
            std::env::var("FM_LOAD_LOG").unwrap_or_else(|_| "warn,sqlx=error".into()),
        )
        .env("FM_LLM_PROVIDER", "openai")
        .env("OPENAI_API_KEY", &sb["OPENAI_API_KEY"])
        .env("OPENAI_BASE_URL", &sb["OPENAI_BASE_URL"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fm serve (build it first: cargo build --release -p fm)");
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .expect("client");
    let ready = Instant::now();
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "server not ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kib(pid);

    // Steady rate: accept latency.
    let n = rate * seconds;
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let (c, b) = (client.clone(), base.clone());
        handles.push(tokio::spawn(async move { send(&c, &b, i).await }));
    }
    let mut failed = 0;
    for h in handles {
        match h.await {
            Ok(Ok(d)) => lat.push(d.as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let peak = Arc::new(AtomicU64::new(0));
    wait_runs(&client, &base, n, pid, &peak).await;
    println!(
        "store: {}",
        if store_url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    );
    println!("idle RSS: {:.1} MiB", idle as f64 / 1024.0);
    println!(
        "accept latency at {rate} alerts/s over {seconds} s ({n} alerts, {failed} refused): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );

    // Burst: everything at once (64 senders), then until every run has finished.
    let next = Arc::new(AtomicU64::new(n));
    let end = n + burst;
    let accepted = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..64 {
        let (c, b, next, accepted) = (client.clone(), base.clone(), next.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            let mut errors: HashMap<String, u64> = HashMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= end {
                    return errors;
                }
                match send(&c, &b, i).await {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => *errors.entry(e).or_default() += 1,
                }
            }
        }));
    }
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut errors: HashMap<String, u64> = HashMap::new();
    for s in senders {
        if let Ok(e) = s.await {
            for (k, v) in e {
                *errors.entry(k).or_default() += v;
            }
        }
    }
    let accept_time = t0.elapsed();
    let done_at = wait_runs(
        &client,
        &base,
        n + accepted.load(Ordering::SeqCst),
        pid,
        &peak,
    )
    .await;
    sampler.abort();
    let total = done_at - t0;
    let acc = accepted.load(Ordering::SeqCst);
    println!(
        "burst of {burst}: {acc} accepted in {:.2} s ({:.0} alerts/s), errors {errors:?}",
        accept_time.as_secs_f64(),
        acc as f64 / accept_time.as_secs_f64()
    );
    println!(
        "all {acc} runs finished {:.2} s after the first alert: {:.0} incident-pipeline runs/s sustained; peak RSS {:.1} MiB",
        total.as_secs_f64(),
        acc as f64 / total.as_secs_f64(),
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    let finished = finished_runs(&client, &base).await;
    println!(
        "lost: {} (runs finished {finished}, alerts accepted {})",
        (n + acc).saturating_sub(finished),
        n + acc
    );
    // What the runs did (flapping runs escalate; past the restart budget, the catch escalates).
    if let Ok(r) = client.get(format!("{base}/metrics")).send().await {
        let text = r.text().await.unwrap_or_default();
        for l in text
            .lines()
            .filter(|l| l.starts_with("fm_runs_total{") || l.starts_with("fm_remediations_total{"))
        {
            println!("  {l}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
