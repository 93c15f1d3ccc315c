//! `stack`: parse the command line, dispatch, print an error once.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stack::cli::Cli::parse();
    stack::cli::init_logging(&cli.global);
    match stack::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
