//! `stack`: parse the command line, dispatch, print an error once.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stack::cli::Cli::parse_from(stack::cli::normalize_args(std::env::args_os()));
    stack::cli::init_logging(&cli.global);
    match stack::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            match err.downcast_ref::<stack::cli::Rendered>() {
                Some(rendered) => eprint!("{rendered}"),
                None => eprintln!("error: {err:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
