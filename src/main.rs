//! The `orderflow` binary: parse the command line, hand over to [`orderflow::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap exits with status 2 on bad usage, as the contract asks.
    let cli = orderflow::config::Cli::parse();
    match orderflow::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
