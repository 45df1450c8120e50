//! Runs a sandbox on the default port until ctrl-c, for poking at it by hand
//! before `fm sandbox` exists: `cargo run -p fm-sandbox --example serve -- oom`.

use fm_sandbox::{serve_forever, SandboxOptions, Scenario, DEFAULT_PORT};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let scenario = match std::env::args().nth(1) {
        Some(name) => name.parse::<Scenario>().map_err(std::io::Error::other)?,
        None => Scenario::Oom,
    };
    let sb = serve_forever(SandboxOptions {
        scenario,
        port: DEFAULT_PORT,
        ..SandboxOptions::default()
    })
    .await?;
    println!("fm sandbox ({scenario}) at {}", sb.base_url());
    println!(
        "inputs: {}",
        serde_json::Value::Object(sb.input_overrides())
    );
    for (k, v) in sb.secrets() {
        println!("secret {k}={v}");
    }
    sb.run_until(tokio::signal::ctrl_c()).await
}
