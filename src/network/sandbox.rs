//! Persistent network namespaces, one per container, bind-mounted at
//! `<run>/netns/<container>` (as `ip netns add` does). The container joins it by
//! path, so a restart keeps its interfaces, addresses and published ports, and
//! networking never waits on the container's process.
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// Where the namespace of `container` is kept.
pub fn path(run: &Path, container: &str) -> PathBuf {
    run.join("netns").join(container)
}

/// Create a new, empty network namespace (only `lo`) at `path`. An existing one
/// is kept: creation is idempotent.
pub fn create(path: &Path) -> io::Result<()> {
    if is_namespace(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(path)?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) moves only the calling thread: do it on a thread of
    // our own that exits right after, so no other thread changes namespace.
    let result = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")));
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Whether `path` holds a mounted network namespace.
pub fn is_namespace(path: &Path) -> bool {
    // nsfs files report the NSFS_MAGIC file system type.
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == 0x6e73_6673)
}

/// Unmount and delete; a missing namespace is success.
pub fn remove(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
