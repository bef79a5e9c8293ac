//! `wsfs`, the command line: talks to `mountd` over its control socket.
//!
//! Exit codes: 0 ok, 1 error, 2 usage (clap), 3 commit refused.

mod cli;
mod commands;
mod containers;
mod interactive;
mod interrupted;
mod output;
mod render;
mod render_undo;
mod resolve;

use std::process::ExitCode;

use clap::Parser;

/// Exit status of a usage error (as clap's): here, a command line that does not say which
/// workspace it means.
const EXIT_USAGE: u8 = 2;

/// Exit status of a refused commit.
const EXIT_REFUSED: u8 = 3;

fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wsfs: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(output::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(output::Outcome::Refused) => ExitCode::from(EXIT_REFUSED),
        Ok(output::Outcome::Failed) => ExitCode::FAILURE,
        Ok(output::Outcome::Exit(code)) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("wsfs: {e:#}");
            if e.downcast_ref::<resolve::UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
