//! The `fm` binary.

#[macro_use]
mod out;
mod cli;
mod graph;
mod input;
mod progress;
mod record;
mod run;
mod runs;
mod sandbox;
mod validate;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            cli::Command::Run(args) => run::run(args).await,
            cli::Command::Validate(args) => validate::run(&args),
            cli::Command::Graph(args) => graph::run(&args),
            cli::Command::Sandbox(args) => sandbox::serve(&args).await,
            cli::Command::Serve(args) => serve(&args).await,
            cli::Command::Runs(cmd) => runs::run(cmd).await,
            cli::Command::Components => {
                let r = fm_components::builtin_registry();
                for name in r.names() {
                    if let Some(c) = r.get(name) {
                        outln!("{name:<16} {}", c.summary());
                    }
                }
                Ok(0)
            }
        }
    });
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            errln!("error: {e:#}");
            2
        }
    };
    // Don't wait for background tasks (the Ctrl-C listener, a sandbox) to wind down.
    runtime.shutdown_background();
    std::process::exit(code);
}

async fn serve(args: &cli::ServeArgs) -> anyhow::Result<i32> {
    // Structured JSON logs on stderr; RUST_LOG adjusts the level (default info).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // Every problem of the config and of what it names, in one pass, one format, located.
    let checked = match fm_server::check_file(&args.config) {
        Ok(c) => c,
        Err(problems) => {
            errp!(
                "{}",
                validate::render_problems(&args.config.display().to_string(), &problems)
            );
            errln!("error: the server was not started");
            return Ok(2);
        }
    };
    match fm_server::run_until_signal(checked).await {
        Ok(()) => Ok(0),
        Err(e) => {
            errln!("error: {e}");
            Ok(2)
        }
    }
}
