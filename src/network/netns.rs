//! Running work inside a network namespace without disturbing anyone else.
//!
//! Flow: a fresh `std::thread` is spawned, `setns(CLONE_NEWNET)`s into the
//! target (when one is given; otherwise it stays in the caller's namespace),
//! runs the closure — which may build a current-thread tokio runtime for
//! rtnetlink, spawn `nft`, or write `/proc/sys/net/...` — and exits.
//!
//! Guarantees: the namespace switch never happens on a tokio worker or on the
//! caller's thread (netavark's `exec_netns!` switches the caller's thread and
//! must switch back; a panic there leaves the thread in the wrong namespace).
//! Sockets keep the namespace they were created in, so a thread may open a
//! netlink socket in one namespace, `setns` to another and open a second one.
//! Children spawned from the thread (`nft`) inherit its namespace, and
//! `/proc/sys/net` is resolved against the opening thread's namespace.
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

use super::{Error, Result};

/// Run `f` on a dedicated thread inside the namespace at `ns` (or the caller's
/// namespace when `None`) and return its result.
pub fn run<T, F>(ns: Option<&Path>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let ns: Option<PathBuf> = ns.map(Path::to_path_buf);
    let handle = std::thread::Builder::new()
        .name("stack-netns".into())
        .spawn(move || {
            if let Some(ns) = &ns {
                enter(ns)?;
            }
            f()
        })
        .map_err(Error::io("spawn netns thread"))?;
    handle
        .join()
        .unwrap_or_else(|_| Err(Error::io("netns thread")(std::io::Error::other("panicked"))))
}

/// `setns(2)` the calling thread into the network namespace at `path`. Only
/// call on a thread this module spawned.
pub fn enter(path: &Path) -> Result<()> {
    let err = |source: std::io::Error| Error::Netns {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(err)?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| err(e.into()))
}

/// Build a current-thread runtime and drive `fut` to completion on this thread.
pub fn block_on<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(Error::io("tokio runtime for netlink"))?;
    rt.block_on(fut)
}

/// Write a sysctl of the current thread's network namespace.
pub fn sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
}
