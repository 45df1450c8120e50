//! The `fm` binary.

mod cli;
mod graph;
mod input;
mod progress;
mod run;
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
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            cli::Command::Run(args) => run::run(args).await,
            cli::Command::Validate(args) => validate::run(&args),
            cli::Command::Graph(args) => graph::run(&args),
            cli::Command::Sandbox(args) => sandbox::serve(&args).await,
            cli::Command::Components => {
                let r = fm_components::builtin_registry();
                for name in r.names() {
                    if let Some(c) = r.get(name) {
                        println!("{name:<16} {}", c.summary());
                    }
                }
                Ok(0)
            }
        }
    });
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    // Don't wait for background tasks (the Ctrl-C listener, a sandbox) to wind down.
    runtime.shutdown_background();
    std::process::exit(code);
}
