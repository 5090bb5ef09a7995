//! `larder`: a PyPI mirror, caching proxy and private package index in one
//! binary. This crate is only the command line; the work is done by the
//! library crates below it.

mod add;
mod bundle_key;
mod cache;
mod cli;
mod client;
mod config;
mod export;
mod fd_limit;
mod listen;
mod logging;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod malloc;
mod migrate;
mod mirror;
mod notify;
mod pip_config;
mod private;
mod reload;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    malloc::limit_arenas();
    let cli = cli::Cli::parse();
    let _queued_log = logging::init(cli.log_format, cli.log_writer());
    fd_limit::raise_to_hard_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("larder: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            eprintln!("larder: {error:#}");
            ExitCode::FAILURE
        }
    }
}
