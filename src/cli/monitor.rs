//! `stack __monitor NAME` (hidden): start one run of a container and become its
//! monitor (see `supervisor::launch`).
use std::fs::File;
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use crate::state::Roots;
use crate::supervisor::launch;

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// The container to run.
    pub name: String,
}

pub fn run(global: &GlobalOpts, args: MonitorArgs) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    // Detach: the starter waits for this first half to exit, the second half
    // lives on, reparented to init (or the nearest subreaper).
    // SAFETY: this process is single-threaded here (no thread was spawned yet),
    // so the child may run arbitrary code after fork.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => return Ok(ExitCode::SUCCESS),
        nix::unistd::ForkResult::Child => {}
    }
    // The readiness line goes to the starter's pipe (our stdout); afterwards
    // stdout points to /dev/null so the starter sees EOF once we report.
    let ready = File::from(nix::unistd::dup(std::io::stdout())?);
    let null = File::options().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(&null)?;
    // A starter that went away must not kill us when we report to it.
    // SAFETY: setting a signal disposition; this process is single-threaded.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Processes of the container's pid namespace outlive its init by a moment;
    // as their subreaper the monitor reaps them before recording the exit.
    nix::sys::prctl::set_child_subreaper(true)?;
    let revive = |name: &str| {
        crate::reconcile::container::revive(&roots, name)
            .map_err(|e| crate::supervisor::error_chain(&e))
    };
    let err = launch::run(&roots, &args.name, ready, &revive);
    Err(anyhow::anyhow!("{}: {err}", args.name))
}
