//! `stack`: parse the command line, dispatch, print an error once.
use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our output
    // goes away (`stack images | head`) instead of panicking on EPIPE.
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = stack::cli::parse(std::env::args_os());
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
