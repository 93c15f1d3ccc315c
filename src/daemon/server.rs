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

/// The sockets the daemon serves: `api` (everything) and, under systemd,
/// `api-ro` (GET only). Taken before the async runtime starts (see
/// [`listeners`]).
pub struct Listeners {
    sockets: Vec<(std::os::unix::net::UnixListener, bool)>,
    /// True when we bound `<run>/stack.sock` ourselves (and remove it on exit).
    bound: bool,
}

pub async fn serve(opts: Options, listeners: Listeners) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let (engine, changes) = Engine::open(opts.roots.clone(), tokio::runtime::Handle::current())?;
    let adopted = engine.supervisor.adopt()?;
    if let Err(e) = super::guard::spawn(engine.ctx.net.clone()) {
        tracing::warn!(error = %e, "cannot watch nftables: a removed table stays removed");
    }
    tokio::spawn(engine.clone().follow(changes));
    let io = |source| Error::Io {
        what: "using the API socket".into(),
        source,
    };
    let mut sockets = Vec::new();
    for (l, read_only) in listeners.sockets {
        l.set_nonblocking(true).map_err(io)?;
        sockets.push((UnixListener::from_std(l).map_err(io)?, read_only));
    }
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for (listener, read_only) in sockets {
        let app = super::api::router(engine.clone(), read_only)
            .into_make_service_with_connect_info::<Peer>();
        let mut stop = stop_rx.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        });
    }
    shutdown(engine.clone(), opts.exit_when_idle, opts.stacks_dir.clone()).await;
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    // Graceful shutdown waits for every open connection, and a `logs -f` or
    // `events` client never closes its own: give answers in flight a moment,
    // then stop (those clients see the stream end).
    let mut served = Ok(());
    let all = async {
        while let Some(r) = servers.join_next().await {
            if let Ok(Err(e)) = r {
                served = Err(e);
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::info!("clients still connected after {SHUTDOWN_GRACE:?}: closing them");
    }
    if listeners.bound {
        let _ = std::fs::remove_file(socket_path(&opts.roots));
    }
    served.map_err(|source| Error::Io {
        what: "serving the API".into(),
        source,
    })
}

/// The sockets systemd passed (socket activation, matched by their names
/// `api` and `api-ro`; one unnamed socket is `api`), else our own at
/// `<run>/stack.sock`: mode 0660, group `stack` when it exists. Call before
/// any other thread starts: it removes the LISTEN_* variables so that
/// monitors and containers do not inherit them.
pub fn listeners(roots: &Roots) -> Result<Listeners, Error> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| Error::Io { what, source }
    };
    let passed: Vec<(i32, String)> = sd_notify::listen_fds_with_names()
        .map_err(io("reading LISTEN_FDS"))?
        .collect();
    for var in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        // SAFETY: called from `daemon::run` before the async runtime (or any
        // other thread of ours) exists, so nothing reads the environment
        // concurrently.
        unsafe { std::env::remove_var(var) };
    }
    let mut sockets = Vec::new();
    for (fd, name) in passed {
        // SAFETY: systemd passed this descriptor to us (LISTEN_PID is ours,
        // checked by sd_notify), a listening Unix socket per the socket
        // units; nothing else owns it.
        let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        match name.as_str() {
            "api" | "unknown" => sockets.push((l, false)),
            "api-ro" => sockets.push((l, true)),
            other => tracing::warn!(name = other, "ignoring a passed socket of unknown name"),
        }
    }
    if !sockets.is_empty() {
        return Ok(Listeners {
            sockets,
            bound: false,
        });
    }
    let path = socket_path(roots);
    // We hold the daemon lock: a socket file left here is a dead daemon's.
    let _ = std::fs::remove_file(&path);
    let l = std::os::unix::net::UnixListener::bind(&path)
        .map_err(io(&format!("binding {}", path.display())))?;
    restrict(&path).map_err(io(&format!("setting the mode of {}", path.display())))?;
    Ok(Listeners {
        sockets: vec![(l, false)],
        bound: true,
    })
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
async fn shutdown(
    engine: std::sync::Arc<Engine>,
    exit_when_idle: bool,
    stacks_dir: Option<std::path::PathBuf>,
) {
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
                tracing::info!("SIGHUP: adopting what is on disk again, re-reading the stacks directory");
                // RELOADING=1 with the time, then READY=1 when done: what
                // systemd expects of a reload (sd_notify(3), Type=notify-reload).
                let mut reloading = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
                reloading.extend(NotifyState::monotonic_usec_now().ok());
                let _ = sd_notify::notify(&reloading);
                let adopted = engine.supervisor.adopt().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "adoption failed");
                    0
                });
                let again = engine.clone();
                let dir = stacks_dir.clone();
                tokio::spawn(async move {
                    again.resume_watching(dir).await;
                    let status = format!("supervising {adopted} containers");
                    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
                });
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
