//! Starting, finding and stopping monitors from the outside (CLI, reconciler).
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::proc_start_time;
use super::record::Health;
use super::record::{
    ContainerPaths, ContainerSpec, ContainerStatus, ExitRecord, State, should_restart,
};
use crate::model::OnUnhealthy;
use crate::state::Roots;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the monitor of {name}: {source}")]
    Spawn { name: String, source: io::Error },
    #[error("{name} failed to start: {reason}")]
    Start { name: String, reason: String },
    #[error("cannot read the state of {name}: {source}")]
    Read { name: String, source: io::Error },
}

/// A container as found on disk, with whether its monitor still runs.
#[derive(Debug, Clone)]
pub struct Observed {
    pub spec: ContainerSpec,
    /// As recorded, with an unnoticed exit folded in.
    pub status: ContainerStatus,
    pub monitor_alive: bool,
    /// How the last run ended, when it did.
    pub exit: Option<ExitRecord>,
    /// The run ended and no supervisor has taken note of it yet (status.json
    /// still said running): the restart policy has not been applied.
    pub exit_unnoticed: bool,
    /// The run ended unhealthy with `on_unhealthy = "restart"`: it restarts
    /// whatever its policy says.
    pub unhealthy_restart: bool,
}

impl Observed {
    /// Running from the user's point of view: its monitor runs, or the
    /// supervisor restarts it after a backoff.
    pub fn is_up(&self) -> bool {
        (self.monitor_alive && self.status.state == State::Running)
            || self.status.state == State::Restarting
    }
}

/// Whether the process recorded as the monitor is that very process.
pub fn monitor_alive(status: &ContainerStatus) -> bool {
    match (status.monitor_pid, status.monitor_start_time) {
        (Some(pid), Some(start)) => proc_start_time(pid) == Some(start),
        _ => false,
    }
}

/// Every container recorded under this root for `stack` (all stacks when None),
/// sorted by name.
pub fn observe(lib: &Path, stack: Option<&str>) -> Result<Vec<Observed>, Error> {
    let dir = lib.join("containers");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                name: dir.display().to_string(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let paths = ContainerPaths { dir: entry.path() };
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(o) = read(&paths, &name)?
            && stack.is_none_or(|s| s == o.spec.stack)
        {
            out.push(o);
        }
    }
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(out)
}

/// Container `name` as found on disk; None when it does not exist.
pub fn observe_one(lib: &Path, name: &str) -> Result<Option<Observed>, Error> {
    read(&ContainerPaths::new(lib, name), name)
}

fn read(paths: &ContainerPaths, name: &str) -> Result<Option<Observed>, Error> {
    let read_err = |source| Error::Read {
        name: name.to_string(),
        source,
    };
    // A directory without spec.json is a create that crashed half-way: the
    // reconciler cleans it; it is not a container yet.
    let Some(spec) = ContainerSpec::read(paths).map_err(read_err)? else {
        return Ok(None);
    };
    let mut status = ContainerStatus::read(paths).map_err(read_err)?;
    let monitor_alive = monitor_alive(&status);
    let exit = ExitRecord::read(paths).map_err(read_err)?;
    let exit_unnoticed = exit.is_some() && status.state == State::Running && !monitor_alive;
    // Read before `ended` clears the health of the run.
    let unhealthy_restart = exit_unnoticed
        && spec.on_unhealthy == OnUnhealthy::Restart
        && status.health == Some(Health::Unhealthy);
    if let (true, Some(e)) = (exit_unnoticed, &exit) {
        status.ended(e);
        // What the supervisor is about to decide, so that no one sees an
        // "exited" container that comes back a moment later.
        if !e.stop_requested
            && (unhealthy_restart || should_restart(spec.restart, e.exit_code, status.restarts))
        {
            status.state = State::Restarting;
        }
    }
    Ok(Some(Observed {
        spec,
        status,
        monitor_alive,
        exit,
        exit_unnoticed,
        unhealthy_restart,
    }))
}

/// Start the monitor of container `name` (its spec and bundle must exist) and
/// wait until the container's process runs or failed to start.
pub fn spawn_monitor(roots: &Roots, name: &str) -> Result<(), Error> {
    spawn_attached(roots, name, &Attach::default())
}

/// How `stack run` in the foreground connects a container to its caller.
#[derive(Debug, Default)]
pub struct Attach {
    /// These become the container's stdin, stdout and stderr (no tty).
    pub stdio: Option<[OwnedFd; 3]>,
    /// With a tty: the Unix socket (listening) that receives the pty master.
    pub console_socket: Option<PathBuf>,
}

/// [`spawn_monitor`] with the container's stdio connected as `attach` says.
pub fn spawn_attached(roots: &Roots, name: &str, attach: &Attach) -> Result<(), Error> {
    let spawn_err = |source| Error::Spawn {
        name: name.to_string(),
        source,
    };
    let paths = ContainerPaths::new(&roots.lib, name);
    let diag = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.dir.join("monitor.log"))
        .map_err(spawn_err)?;
    let plain = attach.stdio.is_none() && attach.console_socket.is_none();
    let line = match plain.then(|| spawned(roots, name, &diag)).flatten() {
        Some(line) => line,
        None => exec_monitor(roots, name, attach, diag),
    }
    .map_err(spawn_err)?;
    match line.trim_end() {
        "ok" => Ok(()),
        "" => Err(Error::Start {
            name: name.into(),
            reason: format!(
                "the monitor exited; see {}",
                paths.dir.join("monitor.log").display()
            ),
        }),
        other => Err(Error::Start {
            name: name.into(),
            reason: other.trim_start_matches("error: ").to_string(),
        }),
    }
}

/// The monitor's readiness line, when the spawner (see spawner.rs) took the
/// start.
fn spawned(roots: &Roots, name: &str, diag: &std::fs::File) -> Option<io::Result<String>> {
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Some(Err(e.into())),
    };
    if !super::spawner::request(roots, name, diag, &w) {
        return None;
    }
    // Only the monitor holds the write end now: EOF once it reported or died.
    drop(w);
    let mut line = String::new();
    Some(
        BufReader::new(std::fs::File::from(r))
            .read_line(&mut line)
            .map(|_| line),
    )
}

/// Exec `stack __monitor` for `name`; its readiness line.
fn exec_monitor(
    roots: &Roots,
    name: &str,
    attach: &Attach,
    diag: std::fs::File,
) -> io::Result<String> {
    let mut cmd = crate::self_exe::command();
    cmd.env_remove("STACK_ROOT");
    if let Some(root) = &roots.custom {
        cmd.arg("--root").arg(root);
    }
    cmd.arg("__monitor");
    if let Some(sock) = &attach.console_socket {
        cmd.arg("--console-socket").arg(sock);
    }
    // Copies above 10, so that no dup2 below clobbers a source not yet
    // copied; open until the spawn returned.
    let high: Vec<OwnedFd> = match &attach.stdio {
        Some(fds) => fds.iter().map(dup_above_10).collect::<io::Result<_>>()?,
        None => Vec::new(),
    };
    if !high.is_empty() {
        cmd.arg("--attach");
        let raw: Vec<i32> = high.iter().map(|fd| fd.as_raw_fd()).collect();
        // SAFETY: dup2 is async-signal-safe; the sources are open until the
        // spawn returns (`high` lives past it); a dup2 target has no CLOEXEC.
        unsafe {
            cmd.pre_exec(move || {
                for (i, fd) in raw.iter().enumerate() {
                    if libc::dup2(*fd, 3 + i as i32) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    cmd.arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(diag)
        // Out of our process group at once, so a Ctrl-C in the terminal does
        // not reach it; the monitor then leaves our session itself (setsid in
        // `stack __monitor`). Without a pre_exec closure (every start but an
        // attached `stack run`) std starts the child with posix_spawn
        // (vfork-like) instead of forking this process, whose page tables (a
        // daemon's threads and heap) would be copied per start.
        .process_group(0);
    let mut child = cmd.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no pipe"))?;
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    // The monitor forks once more and its first half exits: reap it here.
    let _ = child.wait();
    read.map(|_| line)
}

fn dup_above_10(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let n = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
    // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Ask the monitor of `name` to stop its container and wait until it has
/// (stop signal, grace period, SIGKILL are the monitor's job). True when it was
/// running.
pub fn stop(roots: &Roots, name: &str, grace: Duration) -> Result<bool, Error> {
    stop_with(roots, name, grace, &|| false)
}

/// [`stop`], killing the container at once when `force()` turns true (a second
/// Ctrl-C).
pub fn stop_with(
    roots: &Roots,
    name: &str,
    grace: Duration,
    force: &dyn Fn() -> bool,
) -> Result<bool, Error> {
    let paths = ContainerPaths::new(&roots.lib, name);
    let status = ContainerStatus::read(&paths).map_err(|source| Error::Read {
        name: name.into(),
        source,
    })?;
    let Some(pid) = status.monitor_pid else {
        return Ok(false);
    };
    // Opened before the identity check: then it is the recorded monitor.
    let exited = super::watch::pidfd(pid);
    if !monitor_alive(&status) {
        return Ok(false);
    }
    // The grace period of this stop (`-t`) overrides the file's for the monitor.
    let grace_ms = grace.as_millis().to_string();
    crate::state::write_volatile(&paths.stop_request(), grace_ms.as_bytes()).map_err(|source| {
        Error::Read {
            name: name.into(),
            source,
        }
    })?;
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    // A paused (frozen) container cannot act on its stop signal, nor die of
    // SIGKILL on a v1 freezer: thaw it once the signal is on its way, as
    // Docker does.
    let runtime = crate::runtime::Runtime::new(crate::reconcile::runtime_dir(&roots.run));
    let _ = runtime.resume(name);
    let until = Instant::now() + grace + Duration::from_secs(5);
    let mut forced = false;
    while monitor_alive(&status) && Instant::now() < until {
        if !forced && force() {
            forced = true;
            // Killing the init of a pid namespace kills every process in it.
            if let Some(init) = ContainerStatus::read(&paths).ok().and_then(|s| s.pid) {
                let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
            }
        }
        wait_exit(exited.as_ref(), Duration::from_millis(20));
    }
    if monitor_alive(&status) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    Ok(true)
}

/// Wait up to `most` for the process of `pidfd` to exit (it polls
/// readable then); without a pidfd, just sleep a little.
fn wait_exit(pidfd: Option<&std::os::fd::OwnedFd>, most: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    match pidfd {
        Some(fd) => {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(most.as_millis()).unwrap_or(u16::MAX);
            let _ = poll(&mut fds, PollTimeout::from(ms));
        }
        None => std::thread::sleep(Duration::from_millis(5)),
    }
}

/// Send `sig` to a running container's init. SIGKILL and the container's
/// stop signal count as a stop by the user (its restart policy does not
/// apply), as in Docker: the marker is written before the signal.
pub fn signal(roots: &Roots, o: &Observed, sig: Signal) -> Result<(), Error> {
    let name = &o.spec.name;
    let Some(pid) = o.status.pid.filter(|_| o.monitor_alive) else {
        return Ok(());
    };
    let io_err = |source| Error::Read {
        name: name.clone(),
        source,
    };
    if sig == Signal::SIGKILL || sig as i32 == o.spec.stop_signal {
        let paths = ContainerPaths::new(&roots.lib, name);
        crate::state::write_volatile(&paths.stop_request(), b"0").map_err(io_err)?;
    }
    kill(Pid::from_raw(pid), sig).map_err(|e| io_err(e.into()))
}
