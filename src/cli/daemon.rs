//! `stack daemon`: run the supervisor of this state root in the foreground.
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use crate::state::Roots;

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Exit once no stack and no container is left (how `up` starts it).
    #[arg(long)]
    pub exit_when_idle: bool,
}

pub fn run(global: &GlobalOpts, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    crate::daemon::run(crate::daemon::Options {
        roots: Roots::new(global.root.as_deref()),
        exit_when_idle: args.exit_when_idle,
    })?;
    Ok(ExitCode::SUCCESS)
}
