//! One run of a container: `stack __monitor NAME` creates and starts it from
//! the bundle the reconciler wrote, records the run, tells the starter, and
//! execs `stack-monitor`, which stays the init's parent for the run.
//!
//! Flow: read spec -> `revive` what the host lost since the last run (after
//! a reboot: mounts, network namespace) -> fresh pipes -> runtime
//! create+start (the init is our child) -> status.json `running` -> "ok" to
//! the starter -> exec stack-monitor with the pipes as fd 3 and 4. A failure
//! before the exec is recorded in status.json (`exited`, with the error) and
//! reported to the starter.
//!
//! Where the output goes ([`Io`]): the pipes by default; with `tty: true` a
//! pty, whose master becomes fd 3 (logged as stdout); for `stack run` in the
//! foreground, the caller's own stdio (or, with a tty, the pty master goes to
//! the caller's console socket), and the monitor logs nothing.
//!
//! Why exec: this process is the big `stack` binary, needed to set the
//! container up; what stays for the container's lifetime is a few pages.
//!
//! `logging.driver: journald`: the monitor sends the output to the journal
//! socket ([`journal_socket`]) when there is one at the start of the run;
//! without one the run logs to its json-file log and a `warning` event says
//! so.
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::pipe2;

use super::events::{self, Action, Event};
use super::helpers;
use super::record::{ContainerPaths, ContainerSpec, ContainerStatus, State, now_secs};
use crate::model::LogDriver;
use crate::runtime::{CreateOptions, Runtime};
use crate::state::Roots;

/// What rebuilds the host's side of a container before a start (the
/// reconciler's `container::revive`, given by the caller: it sits above us).
pub type Revive<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// Where a run's stdio goes besides the default (pipes, or a pty with `tty`).
#[derive(Debug, Default)]
pub struct Io {
    /// The starter's stdin, stdout and stderr (`stack run` without a tty).
    pub attached: Option<[OwnedFd; 3]>,
    /// With `tty`: send the pty master here (runc's console socket protocol)
    /// instead of keeping it.
    pub console_socket: Option<PathBuf>,
}

/// Where journald listens for native-protocol entries.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Test hook: the journal socket to use instead of [`JOURNAL_SOCKET`], taken
/// from the environment `stack __monitor` inherits (from the daemon, from the
/// CLI that started it). Tests bind a datagram socket of their own there.
pub const JOURNAL_SOCKET_ENV: &str = "STACK_TEST_JOURNAL_SOCKET";

/// The journal socket a run logs to.
pub fn journal_socket() -> std::path::PathBuf {
    std::env::var_os(JOURNAL_SOCKET_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| JOURNAL_SOCKET.into(), Into::into)
}

/// Start container `name` and become its monitor. Returns only on failure,
/// after recording it (and telling the starter through `ready`).
pub fn run(roots: &Roots, name: &str, mut ready: File, io: Io, revive: Revive) -> io::Error {
    let paths = ContainerPaths::new(&roots.lib, name);
    match start(roots, &paths, name, io, revive) {
        Ok(run) => {
            let _ = writeln!(ready, "ok");
            drop(ready);
            let err = become_monitor(&paths, run);
            record_failure(&paths, &err);
            err
        }
        Err(err) => {
            record_failure(&paths, &err);
            let _ = writeln!(ready, "error: {err}");
            err
        }
    }
}

fn record_failure(paths: &ContainerPaths, err: &io::Error) {
    let mut status = ContainerStatus::read(paths).unwrap_or_default();
    status.state = State::Exited;
    status.pid = None;
    status.error = Some(err.to_string());
    let _ = status.write(paths);
}

/// What the exec of stack-monitor needs from a started run.
struct Started {
    init: i32,
    /// What stack-monitor reads as the stdout and stderr streams (none when
    /// the output goes to the starter).
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    spec: ContainerSpec,
    oom_file: Option<std::path::PathBuf>,
    oom_before: u64,
    monitor: std::path::PathBuf,
    /// The journal socket the output goes to, if it does.
    journal: Option<std::path::PathBuf>,
}

fn start(
    roots: &Roots,
    paths: &ContainerPaths,
    name: &str,
    io: Io,
    revive: Revive,
) -> io::Result<Started> {
    let spec = ContainerSpec::read(paths)?
        .ok_or_else(|| io::Error::other(format!("no container {name}")))?;
    let monitor = helpers::install_monitor(&roots.lib)?;
    let previous = ContainerStatus::read(paths).unwrap_or_default();
    match std::fs::remove_file(paths.exit()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let runtime = Runtime::new(crate::reconcile::runtime_dir(&roots.run));
    // A runtime record left by a monitor that died mid-run is stale now.
    let _ = runtime.delete(name, true);
    revive(name).map_err(io::Error::other)?;
    // Processes of the container's pid namespace outlive its init by a moment;
    // as their subreaper the monitor reaps them before recording the exit.
    // Only from now on: a `[::1]` proxy that `revive` started detaches from
    // us and must not become our child (the monitor would wait for it).
    nix::sys::prctl::set_child_subreaper(true)?;
    let (opts, (mut stdout, stderr)) = stdio(&spec, io)?;
    let bundle = paths.bundle();
    let failed = |e: crate::runtime::Error| io::Error::other(super::error_chain(&e));
    let mut container = runtime.run(name, &bundle, opts).map_err(failed)?;
    if let Some(master) = container.pty_master.take() {
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        stdout = Some(master);
    }
    let oom_file = container.cgroup.oom_counter_file();
    let oom_before = container.oom_kills_before;
    if spec.log_max_size > 0 {
        // stack-monitor appends to it; created now so that `logs` right after
        // `up -d` finds it and the container dir is settled once we report ok.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(paths.log())?;
    }
    let journal = journal_for(roots, &spec);
    let me = std::process::id() as i32;
    ContainerStatus {
        state: State::Running,
        pid: Some(container.pid),
        monitor_pid: Some(me),
        monitor_start_time: super::proc_start_time(me),
        started_at: Some(now_secs()),
        restarts: previous.restarts,
        health: spec
            .healthcheck
            .as_ref()
            .map(|_| super::record::Health::Starting),
        journal: journal.is_some(),
        ..Default::default()
    }
    .write(paths)?;
    Ok(Started {
        init: container.pid,
        stdout,
        stderr,
        spec,
        oom_file,
        oom_before,
        monitor,
        journal,
    })
}

/// The runtime's stdio options for this run, and the read ends stack-monitor
/// gets (a pty master, when there is one, comes from the create).
fn stdio(spec: &ContainerSpec, io: Io) -> io::Result<(CreateOptions, Streams)> {
    if spec.tty {
        // The pty replaces stdio; the runtime hands its master back (or to
        // the console socket).
        let opts = CreateOptions {
            console_socket: io.console_socket,
            ..Default::default()
        };
        return Ok((opts, (None, None)));
    }
    if let Some(fds) = io.attached {
        let opts = CreateOptions {
            stdio: Some(fds),
            ..Default::default()
        };
        return Ok((opts, (None, None)));
    }
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    for fd in [&out_r, &err_r] {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    }
    let stdin: OwnedFd = File::open("/dev/null")?.into();
    let opts = CreateOptions {
        stdio: Some([stdin, out_w, err_w]),
        ..Default::default()
    };
    Ok((opts, (Some(out_r), Some(err_r))))
}

type Streams = (Option<OwnedFd>, Option<OwnedFd>);

/// The journal socket for a run of `spec`, when it logs to the journal and
/// there is one; a `warning` event when it should but there is none.
fn journal_for(roots: &Roots, spec: &ContainerSpec) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    if spec.log_driver != LogDriver::Journald {
        return None;
    }
    let socket = journal_socket();
    if std::fs::metadata(&socket).is_ok_and(|m| m.file_type().is_socket()) {
        return Some(socket);
    }
    let mut e = Event::new(Action::Warning, &spec.stack, &spec.service, &spec.name);
    e.detail = Some(format!(
        "logging.driver journald: no journal socket at {}; this run logs to {} (`stack logs` shows it)",
        socket.display(),
        ContainerPaths::new(&roots.lib, &spec.name).log().display()
    ));
    events::emit(&roots.lib, &e);
    None
}

/// Exec stack-monitor in this process (the init stays our child). Returns
/// only when the exec failed; the container is killed then, as nothing would
/// hold its output.
fn become_monitor(paths: &ContainerPaths, run: Started) -> io::Error {
    let err = match exec_monitor(paths, &run) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.init),
        nix::sys::signal::Signal::SIGKILL,
    );
    err
}

fn exec_monitor(paths: &ContainerPaths, run: &Started) -> io::Result<std::convert::Infallible> {
    let c = |s: String| CString::new(s).map_err(io::Error::other);
    let oom_file = match &run.oom_file {
        Some(p) => CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)?,
        None => c("-".into())?,
    };
    let mut args = vec![
        c("stack-monitor".into())?,
        c(run.init.to_string())?,
        c(run.spec.stop_signal.to_string())?,
        c(run.spec.stop_grace.as_millis().to_string())?,
        c(run.spec.log_max_size.to_string())?,
        c(run.spec.log_max_files.to_string())?,
        oom_file,
        c(run.oom_before.to_string())?,
        c(run.spec.log_tag.clone().unwrap_or_default())?,
    ];
    if let Some(socket) = &run.journal {
        let config = run.spec.config.value();
        let image = config["image"].as_str().unwrap_or_default();
        args.extend([
            CString::new(socket.as_os_str().as_bytes()).map_err(io::Error::other)?,
            c(run.spec.name.clone())?,
            c(run.spec.id())?,
            c(image.to_string())?,
        ]);
    }
    let program = CString::new(run.monitor.as_os_str().as_bytes()).map_err(io::Error::other)?;
    std::env::set_current_dir(&paths.dir)?;
    // The pipes become fd 3 and 4, the only descriptors without CLOEXEC
    // (/dev/null for a stream it does not get: it reads EOF at once).
    // Through copies above 10 first, so neither dup2 clobbers the other pipe.
    let null: OwnedFd = File::open("/dev/null")?.into();
    let high =
        |fd: &Option<OwnedFd>| fcntl(fd.as_ref().unwrap_or(&null), FcntlArg::F_DUPFD_CLOEXEC(10));
    let (out, err) = (high(&run.stdout)?, high(&run.stderr)?);
    for (from, to) in [(out, 3), (err, 4)] {
        // SAFETY: dup2 onto 3 and 4, which nothing in this process uses after
        // this point (the exec follows); a dup2 to a different fd clears CLOEXEC.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    nix::unistd::execv(&program, &args)?;
    unreachable!("execv returns only on error")
}
