//! The daemon's process plumbing: its lock, its socket, systemd notification,
//! signals and the idle exit.
use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use sd_notify::NotifyState;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

use super::auth::{GROUP, Peer, group_id};
use super::engine::Engine;
use super::{Error, IDLE_CHECK, IDLE_CHECKS, Options, socket_path};
use crate::state::Roots;

/// How long a stopping daemon lets open requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The root's daemon lock, held for the daemon's whole life; it records the
/// daemon's pid for the error a second daemon prints.
pub fn lock(roots: &Roots) -> Result<Flock<File>, Error> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| Error::Io { what, source }
    };
    std::fs::create_dir_all(&roots.run).map_err(io("creating the run directory"))?;
    let path = roots.run.join("daemon.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io("opening the daemon lock"))?;
    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, _)| {
        Error::AlreadyRunning {
            root: roots.custom.clone().unwrap_or_else(|| roots.run.clone()),
            pid: std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into()),
        }
    })?;
    use std::io::{Seek, Write};
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = writeln!(lock, "{}", std::process::id());
    Ok(lock)
}

pub async fn serve(opts: Options) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let (engine, changes) = Engine::open(opts.roots.clone(), tokio::runtime::Handle::current())?;
    let adopted = engine.supervisor.adopt()?;
    if let Err(e) = super::guard::spawn(engine.ctx.net.clone()) {
        tracing::warn!(error = %e, "cannot watch nftables: a removed table stays removed");
    }
    tokio::spawn(engine.clone().follow(changes));
    let (listener, bound) = listener(&opts.roots)?;
    tracing::info!(
        adopted,
        socket = %socket_path(&opts.roots).display(),
        ready_in_ms = started.elapsed().as_millis() as u64,
        "ready"
    );
    let status = format!("supervising {adopted} containers");
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    if let Some(period) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(period));
    }
    // After READY: bringing up the stacks directory may take long (pulls).
    let resumed = engine.clone();
    let stacks_dir = opts.stacks_dir.clone();
    tokio::spawn(async move { resumed.resume_watching(stacks_dir).await });
    let app = super::api::router(engine.clone()).into_make_service_with_connect_info::<Peer>();
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let told = stopping.clone();
    let shutdown = async move {
        shutdown(engine.clone(), opts.exit_when_idle).await;
        told.notify_one();
    };
    let serving = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    // Graceful shutdown waits for every open connection, and a `logs -f` or
    // `events` client never closes its own: give answers in flight a moment,
    // then stop (those clients see the stream end).
    let served = tokio::select! {
        r = serving => r,
        _ = async { stopping.notified().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::info!("clients still connected after {SHUTDOWN_GRACE:?}: closing them");
            Ok(())
        }
    };
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    if bound {
        let _ = std::fs::remove_file(socket_path(&opts.roots));
    }
    served.map_err(|source| Error::Io {
        what: "serving the API".into(),
        source,
    })
}

/// The socket systemd passed (socket activation), else our own at
/// `<run>/stack.sock`: mode 0660, group `stack` when it exists. True when we
/// bound it (and remove it on exit).
fn listener(roots: &Roots) -> Result<(UnixListener, bool), Error> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| Error::Io { what, source }
    };
    if let Some(fd) = sd_notify::listen_fds()
        .map_err(io("reading LISTEN_FDS"))?
        .next()
    {
        // SAFETY: systemd passed this descriptor to us (LISTEN_PID is ours),
        // a listening Unix socket per the socket unit; nothing else owns it.
        let std = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        std.set_nonblocking(true)
            .map_err(io("using the passed socket"))?;
        let l = UnixListener::from_std(std).map_err(io("using the passed socket"))?;
        return Ok((l, false));
    }
    let path = socket_path(roots);
    // We hold the daemon lock: a socket file left here is a dead daemon's.
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).map_err(io(&format!("binding {}", path.display())))?;
    restrict(&path).map_err(io(&format!("setting the mode of {}", path.display())))?;
    Ok((l, true))
}

fn restrict(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = group_id(GROUP) {
        std::os::unix::fs::chown(path, Some(0), Some(gid))?;
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (containers keep running), or once the
/// daemon has been idle for a while when it should exit then.
async fn shutdown(engine: std::sync::Arc<Engine>, exit_when_idle: bool) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let mut idle_checks = 0;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: adopting what is on disk again");
                if let Err(e) = engine.supervisor.adopt() {
                    tracing::warn!(error = %e, "adoption failed");
                }
            }
            _ = tokio::time::sleep(IDLE_CHECK), if exit_when_idle => {
                idle_checks = if engine.is_idle() { idle_checks + 1 } else { 0 };
                if idle_checks >= IDLE_CHECKS {
                    tracing::info!("nothing left to supervise: exiting");
                    break;
                }
            }
        }
    }
}

async fn watchdog(period: Duration) {
    loop {
        let _ = sd_notify::notify(&[NotifyState::Watchdog]);
        tokio::time::sleep(period / 2).await;
    }
}
