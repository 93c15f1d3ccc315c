//! The per-container monitor: a small process, detached from whoever started it,
//! that is the parent of the container's init. It holds the output pipes and
//! writes the log, waits for the exit and records it, and restarts by policy with
//! backoff. It outlives `stack up` and the daemon, so no output line or exit code
//! depends on them.
//!
//! Flow: launch → supervise (poll output pipes and a signal pipe) → reap (OOM,
//! runtime cleanup) → record → restart after a backoff delay or exit.
//! SIGTERM/SIGINT to the monitor means "stop": the container gets its stop
//! signal, then SIGKILL after the grace period, and is never restarted.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe};

use super::backoff::Backoff;
use super::logs::{LogLimits, LogWriter, Stream};
use super::record::{
    ContainerPaths, ContainerSpec, ContainerStatus, Health, State, now_secs, should_restart,
};

/// The kernel side of a container, as the monitor needs it. The real one drives
/// `runtime`; tests use plain processes.
pub trait Launcher {
    /// Create and start the container with the given stdout and stderr; its init
    /// must be a child of this process. Returns the init's pid.
    fn launch(&mut self, stdout: OwnedFd, stderr: OwnedFd) -> Result<i32, String>;
    /// After the init exited: whether the memory limit killed it, then release
    /// the runtime's resources (cgroup, state).
    fn reap(&mut self) -> bool;
    /// SIGKILL every process of the container.
    fn kill_all(&mut self);
    /// Start `argv` inside the running container (a healthcheck probe) with the
    /// given stdout and stderr; it must be a child of this process.
    fn exec(&mut self, argv: &[String], stdout: OwnedFd, stderr: OwnedFd) -> Result<i32, String>;
    /// Whether this process is the subreaper of the container's processes, so
    /// it must reap every child, not just the init.
    fn reaps_orphans(&self) -> bool {
        false
    }
}

/// How one run of the container ended.
struct Outcome {
    exit_code: i32,
    stop_requested: bool,
}

/// Signals delivered as bytes on socket pairs, so one `poll` waits for
/// everything: one pair for stop requests (TERM, INT), one for SIGCHLD wake-ups.
struct SignalPipe {
    read: std::os::unix::net::UnixStream,
    child: std::os::unix::net::UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl SignalPipe {
    fn new() -> io::Result<Self> {
        let (read, write) = nonblocking_pair()?;
        let (child, child_write) = nonblocking_pair()?;
        let ids = vec![
            signal_hook::low_level::pipe::register_raw(
                Signal::SIGTERM as i32,
                OwnedFd::from(write.try_clone()?),
            )?,
            signal_hook::low_level::pipe::register_raw(
                Signal::SIGINT as i32,
                OwnedFd::from(write),
            )?,
            signal_hook::low_level::pipe::register_raw(
                Signal::SIGCHLD as i32,
                OwnedFd::from(child_write),
            )?,
        ];
        Ok(SignalPipe { read, child, ids })
    }

    /// Drain pending bytes; true when a stop (TERM/INT) arrived. SIGCHLD bytes are
    /// only wake-ups: the caller polls `waitpid`.
    fn drain(&mut self) -> bool {
        drain(&mut self.child);
        drain(&mut self.read)
    }
}

fn nonblocking_pair() -> io::Result<(
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixStream,
)> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((a, b))
}

/// Read everything pending; true when there was anything.
fn drain(sock: &mut std::os::unix::net::UnixStream) -> bool {
    let mut any = false;
    let mut buf = [0u8; 64];
    while let Ok(n) = sock.read(&mut buf) {
        if n == 0 {
            break;
        }
        any = true;
    }
    any
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Run the container until it stops for good. `ready` receives one line: `ok` once
/// the first start succeeded, or `error: ...`.
pub fn run(
    paths: &ContainerPaths,
    spec: &ContainerSpec,
    launcher: &mut dyn Launcher,
    mut ready: Option<File>,
) -> io::Result<()> {
    let mut signals = SignalPipe::new()?;
    let limits = LogLimits {
        max_size: spec.log_max_size,
        max_files: spec.log_max_files,
    };
    let mut log = LogWriter::open(&paths.log(), limits)?;
    let previous = ContainerStatus::read(paths).unwrap_or_default();
    let mut status = ContainerStatus {
        monitor_pid: Some(std::process::id() as i32),
        monitor_start_time: super::proc_start_time(std::process::id() as i32),
        restarts: previous.restarts,
        ..Default::default()
    };
    let mut backoff = Backoff::new(spec.backoff);
    loop {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let pid = match launcher.launch(out_w, err_w) {
            Ok(pid) => pid,
            Err(e) => {
                status.state = State::Exited;
                status.error = Some(e.clone());
                status.write(paths)?;
                report(&mut ready, &format!("error: {e}"));
                return Ok(());
            }
        };
        status = ContainerStatus {
            state: State::Running,
            pid: Some(pid),
            started_at: Some(now_secs()),
            ..status
        };
        status.write(paths)?;
        report(&mut ready, "ok");
        let started = Instant::now();
        let outcome = supervise(
            (paths, spec),
            pid,
            [out_r, err_r],
            &mut status,
            &mut signals,
            &mut log,
            launcher,
        )?;
        status.oom_killed = launcher.reap();
        status.pid = None;
        status.exit_code = Some(outcome.exit_code);
        status.finished_at = Some(now_secs());
        let restart = !outcome.stop_requested
            && should_restart(spec.restart, outcome.exit_code, status.restarts);
        if !restart {
            status.state = if outcome.stop_requested {
                State::Stopped
            } else {
                State::Exited
            };
            return status.write(paths);
        }
        status.state = State::Restarting;
        status.restarts += 1;
        status.write(paths)?;
        if sleep_unless_stopped(backoff.after_run(started.elapsed()), &mut signals) {
            status.state = State::Stopped;
            return status.write(paths);
        }
    }
}

fn report(ready: &mut Option<File>, line: &str) {
    if let Some(mut f) = ready.take() {
        // The starter may be gone (Ctrl-C); the container runs on regardless.
        let _ = writeln!(f, "{line}");
    }
}

/// See `resend_at` in [`supervise`].
const RESEND_EVERY: Duration = Duration::from_millis(100);
const RESEND_WINDOW: Duration = Duration::from_secs(1);

/// A healthcheck probe in flight.
struct Check {
    pid: i32,
    output: Option<OwnedFd>,
    buf: Vec<u8>,
    start: u64,
    deadline: Instant,
    timed_out: bool,
}

/// Wait for the container's init to exit, storing its output and running its
/// healthcheck meanwhile.
fn supervise(
    (paths, spec): (&ContainerPaths, &ContainerSpec),
    pid: i32,
    pipes: [OwnedFd; 2],
    status: &mut ContainerStatus,
    signals: &mut SignalPipe,
    log: &mut LogWriter,
    launcher: &mut dyn Launcher,
) -> io::Result<Outcome> {
    let mut open: [Option<OwnedFd>; 2] = pipes.map(Some);
    let mut exit_code = None;
    let mut stop_requested = false;
    let mut kill_at: Option<Instant> = None;
    // A PID 1 drops signals it has no handler for yet (the kernel protects a
    // namespace's init), so a stop that arrives while the container is still
    // starting is repeated until it has run for a second.
    let begun = Instant::now();
    let mut resend_at: Option<Instant> = None;
    // After the init exits, the kernel kills the rest of its pid namespace; we
    // reap them (as their subreaper) so none outlives the record of the exit. A
    // process outside could still hold a pipe: drain for a bounded time only.
    let mut drain_until: Option<Instant> = None;
    let reap_all = launcher.reaps_orphans();
    let mut children_left = true;
    let mut health = spec
        .healthcheck
        .clone()
        .map(|c| super::health::Tracker::new(c, Instant::now()));
    let mut next_check = health
        .as_ref()
        .map(|h| Instant::now() + h.delay(Instant::now()));
    let mut check: Option<Check> = None;
    if health.is_some() {
        status.health = Some(Health::Starting);
        status.write(paths)?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if exit_code.is_some()
            && ((open.iter().all(Option::is_none) && !children_left)
                || drain_until.is_some_and(|t| Instant::now() >= t))
        {
            log.flush_partial()?;
            return Ok(Outcome {
                exit_code: exit_code.unwrap_or(0),
                stop_requested,
            });
        }
        let probing = exit_code.is_none() && !stop_requested;
        let deadline = [
            kill_at,
            resend_at,
            drain_until,
            next_check.filter(|_| probing && check.is_none()),
            check.as_ref().map(|c| c.deadline),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match deadline {
            Some(t) => PollTimeout::try_from(t.saturating_duration_since(Instant::now()))
                .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds = vec![
            PollFd::new(signals.read.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.child.as_fd(), PollFlags::POLLIN),
        ];
        let live: Vec<usize> = (0..2).filter(|&i| open[i].is_some()).collect();
        for &i in &live {
            if let Some(fd) = open[i].as_ref() {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        if let Some(fd) = check.as_ref().and_then(|c| c.output.as_ref()) {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        for (k, &i) in live.iter().enumerate() {
            if ready[k + 2] {
                let stream = if i == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                };
                let fd = open[i].as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1);
                match nix::unistd::read(borrowed(fd), &mut buf) {
                    Ok(0) => open[i] = None,
                    Ok(n) => log.feed(stream, &buf[..n])?,
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => open[i] = None,
                }
            }
        }
        if let Some(c) = check.as_mut()
            && ready.get(live.len() + 2).copied().unwrap_or(false)
        {
            read_probe_output(c, &mut buf);
        }
        if (ready[0] || ready[1]) && signals.drain() && !stop_requested && exit_code.is_none() {
            stop_requested = true;
            let sig = Signal::try_from(spec.stop_signal).unwrap_or(Signal::SIGTERM);
            let _ = kill(Pid::from_raw(pid), sig);
            kill_at = Some(Instant::now() + stop_grace(paths, spec));
            resend_at = Some(Instant::now() + RESEND_EVERY).filter(|t| *t < begun + RESEND_WINDOW);
        }
        if let Some(t) = resend_at
            && Instant::now() >= t
            && exit_code.is_none()
        {
            let sig = Signal::try_from(spec.stop_signal).unwrap_or(Signal::SIGTERM);
            let _ = kill(Pid::from_raw(pid), sig);
            resend_at = Some(t + RESEND_EVERY).filter(|t| *t < begun + RESEND_WINDOW);
        }
        if kill_at.is_some_and(|t| Instant::now() >= t) && exit_code.is_none() {
            launcher.kill_all();
            kill_at = None;
        }
        if let Some(c) = check.as_mut()
            && Instant::now() >= c.deadline
            && !c.timed_out
        {
            c.timed_out = true;
            let _ = kill(Pid::from_raw(c.pid), Signal::SIGKILL);
        }
        if probing
            && check.is_none()
            && next_check.is_some_and(|t| Instant::now() >= t)
            && let Some(h) = &health
        {
            check = start_probe(launcher, &h.config);
            if check.is_none() {
                next_check = Some(Instant::now() + h.delay(Instant::now()));
            }
        }
        let watched: Vec<i32> = std::iter::once(pid)
            .chain(check.as_ref().map(|c| c.pid))
            .collect();
        let (reaped, left) = reap(&watched, reap_all)?;
        children_left = left;
        for (p, code) in reaped {
            if p == pid && exit_code.is_none() {
                exit_code = Some(code);
                kill_at = None;
                drain_until = Some(Instant::now() + Duration::from_secs(1));
            } else if let Some(mut c) = check.take_if(|c| c.pid == p)
                && let Some(h) = health.as_mut()
            {
                read_probe_output(&mut c, &mut buf);
                let output = if c.timed_out {
                    format!("health check timed out after {:?}", h.config.timeout)
                } else {
                    String::from_utf8_lossy(&c.buf).into_owned()
                };
                let probe = super::health::Probe {
                    start: c.start,
                    end: now_secs(),
                    exit_code: if c.timed_out { -1 } else { code },
                    output,
                };
                let changed = h.record(probe, Instant::now());
                next_check = Some(Instant::now() + h.delay(Instant::now()));
                let _ = crate::state::write_json(&paths.health_log(), &h.log);
                if let Some(state) = changed {
                    status.health = Some(state);
                    status.write(paths)?;
                }
            }
        }
    }
}

/// Run the healthcheck command in the container; `None` when it cannot start
/// (that counts as a failed probe at the next interval).
fn start_probe(launcher: &mut dyn Launcher, config: &crate::model::Healthcheck) -> Option<Check> {
    let (r, w) = pipe().ok()?;
    let w2 = w.try_clone().ok()?;
    let pid = launcher.exec(&config.test, w, w2).ok()?;
    let _ = nix::fcntl::fcntl(
        &r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    Some(Check {
        pid,
        output: Some(r),
        buf: Vec::new(),
        start: now_secs(),
        deadline: Instant::now() + config.timeout,
        timed_out: false,
    })
}

/// Keep the first [`super::health::MAX_OUTPUT`] bytes of a probe's output.
fn read_probe_output(c: &mut Check, buf: &mut [u8]) {
    while let Some(fd) = c.output.as_ref() {
        match nix::unistd::read(fd, buf) {
            Ok(0) | Err(Errno::EBADF) => c.output = None,
            Ok(n) => {
                let room = super::health::MAX_OUTPUT.saturating_sub(c.buf.len());
                c.buf.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(_) => return,
        }
    }
}

fn borrowed(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: `fd` belongs to an `OwnedFd` in `open` that outlives this read.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// The grace period of a stop: the stopper's (`-t`), else the file's.
fn stop_grace(paths: &ContainerPaths, spec: &ContainerSpec) -> Duration {
    let asked = std::fs::read_to_string(paths.stop_request())
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let _ = std::fs::remove_file(paths.stop_request());
    asked.map_or(spec.stop_grace, Duration::from_millis)
}

/// Reap exited children: `(pid, code)` of each (128+N for a signal, as shells
/// do) and whether children remain. With `all` (we are the subreaper) every
/// child is reaped; otherwise only the `watched` pids (other children belong to
/// someone else).
fn reap(watched: &[i32], all: bool) -> io::Result<(Vec<(i32, i32)>, bool)> {
    let mut out = Vec::new();
    let code = |s: WaitStatus| match s {
        WaitStatus::Exited(p, c) => Some((p.as_raw(), c)),
        WaitStatus::Signaled(p, sig, _) => Some((p.as_raw(), 128 + sig as i32)),
        _ => None,
    };
    if !all {
        let mut left = false;
        for &p in watched {
            match waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => left = true,
                Ok(s) => out.extend(code(s)),
                Err(Errno::ECHILD) => out.push((p, 255)),
                Err(e) => return Err(e.into()),
            }
        }
        return Ok((out, left));
    }
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok((out, true)),
            Ok(s) => out.extend(code(s)),
            Err(Errno::ECHILD) => return Ok((out, false)),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sleep `delay`; true when a stop arrived meanwhile.
fn sleep_unless_stopped(delay: Duration, signals: &mut SignalPipe) -> bool {
    let until = Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [PollFd::new(signals.read.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        if poll(&mut fds, timeout).unwrap_or(0) > 0 && signals.drain() {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::sync::Mutex;

    use super::*;
    use crate::supervisor::backoff::BackoffConfig;
    use crate::supervisor::logs::read_all;
    use crate::supervisor::record::Restart;

    /// Signal handlers are process-wide: one monitor test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    struct Shell {
        script: String,
        launches: u32,
        reaps: u32,
    }

    impl Launcher for Shell {
        fn launch(&mut self, stdout: OwnedFd, stderr: OwnedFd) -> Result<i32, String> {
            self.launches += 1;
            let child = Command::new("/bin/sh")
                .args(["-c", &self.script])
                .stdin(Stdio::null())
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr))
                .spawn()
                .map_err(|e| e.to_string())?;
            Ok(child.id() as i32)
        }
        fn reap(&mut self) -> bool {
            self.reaps += 1;
            false
        }
        fn kill_all(&mut self) {}
        fn exec(
            &mut self,
            argv: &[String],
            stdout: OwnedFd,
            stderr: OwnedFd,
        ) -> Result<i32, String> {
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr))
                .spawn()
                .map_err(|e| e.to_string())?;
            Ok(child.id() as i32)
        }
    }

    fn spec(restart: Restart) -> ContainerSpec {
        ContainerSpec {
            name: "t-web-1".into(),
            stack: "t".into(),
            service: "web".into(),
            index: 1,
            config_hash: "h".into(),
            config: serde_json::json!({}),
            created: std::time::SystemTime::now(),
            restart,
            backoff: BackoffConfig {
                initial: Duration::from_millis(1),
                ..Default::default()
            },
            stop_signal: Signal::SIGTERM as i32,
            stop_grace: Duration::from_secs(5),
            log_max_size: 1 << 20,
            log_max_files: 2,
            healthcheck: None,
        }
    }

    /// One monitor test at a time, a state dir, a shell launcher running `script`.
    fn fixture(
        script: impl Into<String>,
    ) -> (
        std::sync::MutexGuard<'static, ()>,
        tempfile::TempDir,
        ContainerPaths,
        Shell,
    ) {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let paths = ContainerPaths {
            dir: dir.path().to_path_buf(),
        };
        (
            guard,
            dir,
            paths,
            Shell {
                script: script.into(),
                launches: 0,
                reaps: 0,
            },
        )
    }

    #[test]
    fn on_failure_restarts_up_to_max_and_records_the_exit() {
        let (_g, _dir, paths, mut shell) = fixture("echo out; echo err >&2; exit 3");
        run(
            &paths,
            &spec(Restart::OnFailure {
                max_retries: Some(2),
            }),
            &mut shell,
            None,
        )
        .unwrap();
        assert_eq!((shell.launches, shell.reaps), (3, 3));
        let status = ContainerStatus::read(&paths).unwrap();
        assert_eq!(status.state, State::Exited);
        assert_eq!((status.exit_code, status.restarts), (Some(3), 2));
        let logs = read_all(&paths.log()).unwrap();
        assert_eq!(
            logs.iter()
                .filter(|r| r.log == "out\n" && r.stream == Stream::Stdout)
                .count(),
            3
        );
        assert_eq!(
            logs.iter()
                .filter(|r| r.log == "err\n" && r.stream == Stream::Stderr)
                .count(),
            3
        );
    }

    #[test]
    fn a_burst_of_output_arrives_whole_and_in_order() {
        let (_g, _dir, paths, mut shell) = fixture("seq 1 20000");
        run(&paths, &spec(Restart::No), &mut shell, None).unwrap();
        let logs = read_all(&paths.log()).unwrap();
        let got: Vec<String> = logs.iter().map(|r| r.log.trim_end().to_string()).collect();
        let want: Vec<String> = (1..=20000).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        assert_eq!(ContainerStatus::read(&paths).unwrap().exit_code, Some(0));
    }

    #[test]
    fn stop_sends_the_stop_signal_and_never_restarts() {
        let (_g, _dir, paths, mut shell) =
            fixture("trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done");
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        let stopper = std::thread::spawn(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(r), &mut line).unwrap();
            assert_eq!(line, "ok\n");
            std::thread::sleep(Duration::from_millis(200));
            kill(nix::unistd::getpid(), Signal::SIGTERM).unwrap();
        });
        let ready = File::from(OwnedFd::from(w));
        run(&paths, &spec(Restart::Always), &mut shell, Some(ready)).unwrap();
        stopper.join().unwrap();
        let status = ContainerStatus::read(&paths).unwrap();
        assert_eq!(
            (status.state, status.exit_code, shell.launches),
            (State::Stopped, Some(0), 1)
        );
        let logs: Vec<String> = read_all(&paths.log())
            .unwrap()
            .into_iter()
            .map(|r| r.log)
            .collect();
        assert_eq!(logs, ["up\n", "bye\n"]);
    }

    #[test]
    fn healthchecks_run_in_the_container_and_set_the_health() {
        let (_g, dir, paths, mut shell) = fixture("");
        let flag = dir.path().join("up");
        let mut spec = spec(Restart::No);
        spec.healthcheck = Some(crate::model::Healthcheck {
            test: vec![
                "sh".into(),
                "-c".into(),
                format!("echo probing; test -e {}", flag.display()),
            ],
            interval: Duration::from_millis(30),
            timeout: Duration::from_secs(1),
            retries: 2,
            start_period: Duration::ZERO,
            start_interval: Duration::ZERO,
        });
        shell.script = format!("sleep 0.3; touch {}; sleep 0.3", flag.display());
        let watcher = {
            let paths = paths.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..100 {
                    let h = ContainerStatus::read(&paths).unwrap_or_default().health;
                    if seen.last() != Some(&h) {
                        seen.push(h);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                seen
            })
        };
        run(&paths, &spec, &mut shell, None).unwrap();
        let seen = watcher.join().unwrap();
        let unhealthy = seen.iter().position(|h| *h == Some(Health::Unhealthy));
        let healthy = seen.iter().position(|h| *h == Some(Health::Healthy));
        assert!(
            unhealthy.is_some() && healthy > unhealthy,
            "starting -> unhealthy -> healthy: {seen:?}"
        );
        let log: Vec<super::super::health::Probe> = crate::state::read_json(&paths.health_log())
            .unwrap()
            .unwrap();
        assert!(log.iter().all(|p| p.output == "probing\n"), "{log:?}");
    }
}
