//! The `orderflow` binary: parse the command line, hand over to [`orderflow::cli`].

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: glibc keeps freed memory of large, short-lived
/// allocations (argon2's 19 MiB per hash) resident, so RSS climbed by hundreds of MiB
/// after a few logins; mimalloc returns it to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
