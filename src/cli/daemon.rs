//! `stack daemon`: run the supervisor of this state root in the foreground.
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use crate::state::Roots;

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Exit once no stack and no container is left (how `up` starts it; such
    /// a daemon does not read a stacks directory).
    #[arg(long)]
    pub exit_when_idle: bool,
    /// Keep every stack file (*.toml, *.yaml) in DIR up. Default:
    /// /etc/stack/stacks.d, or DIR/stacks.d with --root DIR.
    #[arg(long, value_name = "DIR")]
    pub stacks_dir: Option<std::path::PathBuf>,
}

pub fn run(global: &GlobalOpts, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    let stacks_dir = match (args.stacks_dir, args.exit_when_idle) {
        (Some(dir), _) => Some(std::path::absolute(dir)?),
        (None, false) => Some(crate::daemon::default_stacks_dir(&roots)),
        (None, true) => None,
    };
    crate::daemon::run(crate::daemon::Options {
        roots,
        exit_when_idle: args.exit_when_idle,
        stacks_dir,
    })?;
    Ok(ExitCode::SUCCESS)
}
