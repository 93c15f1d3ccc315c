//! `stack daemon`: the long-running supervisor of one state root.
//!
//! Flow: take the root's daemon lock -> take the sockets (ours or systemd's;
//! early clients wait in the backlog) -> open the engine -> adopt every
//! container that needs supervision (running ones, ended runs, pending
//! restarts) and serve the ones left on standby once ready (`standby.rs`)
//! -> guard the nftables table (`guard.rs`) -> READY=1 -> serve until
//! SIGTERM/SIGINT (containers keep running; streaming clients get 2 s).
//!
//! Guarantees: containers never depend on this process: their monitors hold
//! their output and record their exits, so a killed daemon loses nothing and
//! the next one adopts them. Only one daemon runs per state root (an exclusive
//! lock on `<run>/daemon.lock`). Started on demand by the CLI
//! (`exit_when_idle`), it exits once no stack and no container is left.
pub mod api;
pub mod auth;
pub mod autostart;
pub mod client;
pub mod engine;
mod follow;
mod guard;
mod oneoff;
#[cfg(test)]
mod openapi;
pub mod proto;
mod server;
mod standby;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use crate::state::Roots;

#[derive(Debug, Clone)]
pub struct Options {
    pub roots: Roots,
    /// Exit once nothing is left to supervise (a daemon started by the CLI).
    pub exit_when_idle: bool,
    /// Every stack file in this directory is a stack the daemon keeps up.
    pub stacks_dir: Option<PathBuf>,
}

/// Where a daemon finds its stack files by default: /etc/stack/stacks.d, or
/// `DIR/stacks.d` under `--root DIR`.
pub fn default_stacks_dir(roots: &Roots) -> PathBuf {
    match &roots.custom {
        Some(dir) => dir.join("stacks.d"),
        None => PathBuf::from("/etc/stack/stacks.d"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a daemon already runs for {root} (pid {pid}); stop it first or use it")]
    AlreadyRunning { root: PathBuf, pid: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] crate::reconcile::Error),
    #[error(transparent)]
    Adopt(#[from] crate::supervisor::control::Error),
}

/// The socket of a state root.
pub fn socket_path(roots: &Roots) -> PathBuf {
    roots.run.join("stack.sock")
}

/// How often an idle daemon checks whether it may exit, and how many checks
/// in a row must find it idle.
const IDLE_CHECK: Duration = Duration::from_millis(500);
const IDLE_CHECKS: u32 = 4;

/// Run the daemon until it is told to stop (or, with `exit_when_idle`, until
/// it has nothing left to do).
pub fn run(opts: Options) -> Result<(), Error> {
    // The daemon starts monitors by the dozen: through a fork server.
    crate::supervisor::spawner::enable();
    let lock = server::lock(&opts.roots)?;
    let listeners = server::listeners(&opts.roots)?;
    // Not the directory the daemon was started from (it may be removed).
    let _ = std::env::set_current_dir("/");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("stack-daemon")
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "starting the async runtime".into(),
            source,
        })?;
    let result = rt.block_on(server::serve(opts, listeners));
    drop(lock);
    result
}
