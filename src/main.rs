//! The `orderflow` binary: parse the command line, hand over to [`orderflow::cli`].

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than glibc's malloc: glibc kept the freed memory of argon2's
/// 19 MiB per hash resident (RSS measured at 286 MB after 128 logins, against 16 MB
/// with jemalloc), and mimalloc, tried too, idled at 44 MB.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
