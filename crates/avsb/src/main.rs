//! The `avsb` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = avsb::cli::Cli::parse();
    avsb::cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}
