//! `stack __monitor NAME` (hidden): start one run of a container and become its
//! monitor (see `supervisor::launch`).
use std::fs::File;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use crate::state::Roots;
use crate::supervisor::{launch, spawner};

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// The container's stdin, stdout and stderr are fds 3, 4 and 5 (the
    /// starter's own, for `stack run` in the foreground).
    #[arg(long)]
    pub attach: bool,
    /// With a tty: send the pty master to this Unix socket.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// The container to run.
    pub name: String,
}

pub fn run(global: &GlobalOpts, args: MonitorArgs) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    // Taken before anything opens a file, which could land on 3, 4 or 5.
    let attached = args.attach.then(|| [3, 4, 5].map(adopt_fd)).map(|fds| {
        fds.into_iter()
            .collect::<std::io::Result<Vec<OwnedFd>>>()
            .and_then(|v| {
                <[OwnedFd; 3]>::try_from(v).map_err(|_| std::io::Error::other("three fds"))
            })
    });
    let io = launch::Io {
        attached: attached.transpose()?,
        console_socket: args.console_socket,
    };
    // Detach: the starter waits for this first half to exit, the second half
    // lives on, reparented to init (or the nearest subreaper).
    // SAFETY: this process is single-threaded here (no thread was spawned yet),
    // so the child may run arbitrary code after fork.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => return Ok(ExitCode::SUCCESS),
        nix::unistd::ForkResult::Child => {}
    }
    // Our own session (the starter only put the first half in a process group
    // of its own): no terminal's hangup or Ctrl-C reaches the monitor.
    nix::unistd::setsid()?;
    // The readiness line goes to the starter's pipe (our stdout); afterwards
    // stdout points to /dev/null so the starter sees EOF once we report.
    let ready = File::from(nix::unistd::dup(std::io::stdout())?);
    // Not inherited by what we spawn (a `[::1]` proxy that `revive` starts
    // lives on): the starter waits for its end of the pipe to close.
    nix::fcntl::fcntl(
        &ready,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    let null = File::options().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(&null)?;
    Err(monitor(&roots, &args.name, ready, io))
}

/// Run container `name` and become its monitor: returns only on failure.
fn monitor(roots: &Roots, name: &str, ready: File, io: launch::Io) -> anyhow::Error {
    // A starter that went away must not kill us when we report to it.
    super::ignore_sigpipe();
    let revive = |name: &str| {
        crate::reconcile::container::revive(roots, name)
            .map_err(|e| crate::supervisor::error_chain(&e))
    };
    let err = launch::run(roots, name, ready, io, &revive);
    anyhow::anyhow!("{name}: {err}")
}

/// `stack __spawner` (hidden): the daemon's fork server for monitors (see
/// `supervisor::spawner`), its requests on stdin.
pub fn spawner(global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    // The socket moves off fd 0, which becomes /dev/null for the monitors.
    let sock: OwnedFd =
        nix::fcntl::fcntl(std::io::stdin(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)).map(
            |fd| {
                // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
                unsafe { OwnedFd::from_raw_fd(fd) }
            },
        )?;
    let null = File::options().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    // Found once here, inherited by every fork: each monitor would otherwise
    // parse /proc/self/mountinfo (which grows with every running container)
    // and hash its helper binary.
    let _ = crate::cgroup::Hierarchy::detect();
    let _ = crate::supervisor::helpers::install_monitor(&roots.lib);
    let forked = |start: spawner::Start| {
        // The monitor's stderr is its monitor.log, as for `__monitor`.
        let setup = nix::unistd::dup2_stderr(&start.diag)
            .and_then(|()| nix::unistd::dup2_stdout(&null))
            .and_then(|()| nix::unistd::setsid().map(drop));
        drop(start.diag);
        let err = match setup {
            Ok(()) => monitor(&roots, &start.name, start.ready, launch::Io::default()),
            Err(e) => anyhow::anyhow!("{}: setting up the monitor: {e}", start.name),
        };
        eprintln!("error: {err:#}");
    };
    spawner::serve(sock, &forked)?;
    Ok(ExitCode::SUCCESS)
}

/// Own inherited descriptor `fd`, close-on-exec from now on (only the
/// container's init gets it, through the runtime's dup2).
fn adopt_fd(fd: RawFd) -> std::io::Result<OwnedFd> {
    nix::fcntl::fcntl(
        // SAFETY: fd is valid for the call (F_SETFD fails with EBADF otherwise).
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    // SAFETY: the starter passed fd to us for this purpose and nothing else
    // in this process refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
