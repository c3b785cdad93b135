use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hotfix_lane::cli::Cli::parse();
    hotfix_lane::cli::run(cli)
}
