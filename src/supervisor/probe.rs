//! One healthcheck probe: the test command exec'd inside the running container
//! (its namespaces, cgroup, user and environment), its output kept up to
//! [`MAX_OUTPUT`], killed at the timeout.
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use super::health::{MAX_OUTPUT, Probe};
use super::record::now_secs;
use crate::model::Healthcheck;
use crate::runtime::{ExecOptions, Runtime};

/// Run the probe and wait for its result; a probe that cannot start or times
/// out is a failure (exit code -1) with the reason as its output.
///
/// The probe runs to its end in a task of its own: when the caller is
/// cancelled (the container is stopped or replaced), the probe process is
/// still killed at its timeout and reaped, never left a zombie.
pub async fn run(runtime: &Runtime, name: &str, config: &Healthcheck) -> Probe {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (runtime, name, config) = (runtime.clone(), name.to_string(), config.clone());
    tokio::spawn(async move {
        let _ = tx.send(run_to_end(&runtime, &name, &config).await);
    });
    rx.await.unwrap_or_else(|_| Probe {
        start: now_secs(),
        end: now_secs(),
        exit_code: -1,
        output: "the healthcheck was cancelled".into(),
    })
}

async fn run_to_end(runtime: &Runtime, name: &str, config: &Healthcheck) -> Probe {
    let start = now_secs();
    let failed = |output: String| Probe {
        start,
        end: now_secs(),
        exit_code: -1,
        output,
    };
    let (runtime, owned, argv) = (runtime.clone(), name.to_string(), config.test.clone());
    let started = tokio::task::spawn_blocking(move || spawn(&runtime, &owned, &argv)).await;
    let (pidfd, output) = match started {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return failed(format!("cannot run the healthcheck: {e}")),
        Err(e) => return failed(format!("cannot run the healthcheck: {e}")),
    };
    let Ok(fd) = super::watch::readable(pidfd) else {
        return failed("cannot wait for the healthcheck".into());
    };
    let deadline = tokio::time::Instant::now() + config.timeout;
    let mut reader = tokio::spawn(read_capped(output, deadline + DRAIN));
    let timed_out = tokio::time::timeout_at(deadline, fd.readable())
        .await
        .is_err();
    if timed_out {
        let _ = rustix::process::pidfd_send_signal(fd.get_ref(), rustix::process::Signal::KILL);
    }
    let code = reap(fd.get_ref());
    let text = match tokio::time::timeout(DRAIN, &mut reader).await {
        Ok(Ok(text)) => text,
        _ => {
            reader.abort();
            String::new()
        }
    };
    if timed_out {
        return failed(format!(
            "health check timed out after {}",
            humantime::format_duration(config.timeout)
        ));
    }
    Probe {
        start,
        end: now_secs(),
        exit_code: code,
        output: text,
    }
}

/// Exec `argv` in the container with stdout and stderr on one pipe; returns
/// the probe's pidfd and the pipe's read end.
fn spawn(runtime: &Runtime, name: &str, argv: &[String]) -> Result<(OwnedFd, OwnedFd), String> {
    let chain = |e: crate::runtime::Error| super::error_chain(&e);
    let spec = runtime.spec(name).map_err(chain)?;
    let mut process = spec
        .process()
        .clone()
        .ok_or("the container has no process")?;
    process.set_args(Some(argv.to_vec()));
    process.set_terminal(Some(false));
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let w2 = w.try_clone().map_err(|e| e.to_string())?;
    let stdin: OwnedFd = File::open("/dev/null").map_err(|e| e.to_string())?.into();
    let opts = ExecOptions {
        stdio: Some([stdin, w, w2]),
        ..Default::default()
    };
    let p = runtime.exec(name, &process, opts).map_err(chain)?;
    Ok((p.pidfd, r))
}

/// The first MAX_OUTPUT bytes until EOF or `until`; the rest is read and
/// dropped so the probe never blocks on a full pipe. The bound keeps a process
/// the probe left behind (holding the pipe) from stalling the check.
async fn read_capped(output: OwnedFd, until: tokio::time::Instant) -> String {
    use tokio::io::AsyncReadExt;
    let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(output) else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, rx.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        let room = MAX_OUTPUT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Reap the exited probe (our child) by its pidfd: shell-style exit code.
fn reap(pidfd: &OwnedFd) -> i32 {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    loop {
        match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return -1,
        }
    }
}

/// How long output is still read after the probe's timeout.
const DRAIN: Duration = Duration::from_secs(1);
