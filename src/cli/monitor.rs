//! `stack __monitor NAME` (hidden): the per-container monitor process.
use std::fs::File;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::GlobalOpts;
use crate::runtime::Runtime;
use crate::state::Roots;
use crate::supervisor::launcher::RuntimeLauncher;
use crate::supervisor::monitor;
use crate::supervisor::record::{ContainerPaths, ContainerSpec};

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// The container to run.
    pub name: String,
}

pub fn run(global: &GlobalOpts, args: MonitorArgs) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    let paths = ContainerPaths::new(&roots.lib, &args.name);
    let spec =
        ContainerSpec::read(&paths)?.with_context(|| format!("no container {}", args.name))?;
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
    let ready_fd = nix::unistd::dup(std::io::stdout())?;
    let null = File::options().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(&null)?;
    let ready = File::from(ready_fd);
    // A starter that went away must not kill us when we report to it.
    // SAFETY: setting a signal disposition; this process is single-threaded.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Processes of the container's pid namespace outlive its init by a moment;
    // as their subreaper we reap them before recording the exit.
    nix::sys::prctl::set_child_subreaper(true)?;
    // Do not pin the directory `stack up` ran in.
    std::env::set_current_dir("/")?;
    let runtime = Runtime::new(roots.run.join("runtime"));
    let mut launcher = RuntimeLauncher::new(runtime, spec.name.clone(), paths.bundle());
    monitor::run(&paths, &spec, &mut launcher, Some(ready))?;
    Ok(ExitCode::SUCCESS)
}
