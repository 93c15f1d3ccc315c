//! On-disk state: where things live and how they are written.
//!
//! Layout (both roots move under `--root DIR` as `DIR/lib` and `DIR/run`):
//!
//! ```text
//! /var/lib/stack/          persistent: images, volumes, stacks, containers
//! /run/stack/              volatile: sockets, runtime state, pids
//! ```
//!
//! Every write is atomic: write a temp file in the same directory, fsync it,
//! rename it over the target. A crash, even a power loss, leaves either the
//! old or the new file, never a torn or empty one ([`write_atomic`]).
//! Records that must outlive a power loss as soon as they are written (what
//! exists: stacks, networks, volumes, images and their holds, a container's
//! spec) also fsync the directory ([`write_durable`]); the files a record
//! refers to are made durable before it ([`sync_dir`]). The rest (status,
//! derived files) skip that flush: each fsync is a device flush, milliseconds
//! in a VM, and a container's files are a dozen of them. What means nothing
//! after a reboot is not flushed at all ([`write_volatile`]: atomic against
//! a crash of a process, not of the machine).
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The two state roots of one `stack` installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Persistent state (`/var/lib/stack`).
    pub lib: PathBuf,
    /// Volatile state (`/run/stack`).
    pub run: PathBuf,
    /// The `--root DIR` these came from, to pass on to helper processes.
    pub custom: Option<PathBuf>,
}

impl Roots {
    /// `--root DIR` puts both under DIR; otherwise the system defaults.
    pub fn new(root: Option<&Path>) -> Self {
        match root {
            Some(dir) => {
                let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
                Roots {
                    lib: dir.join("lib"),
                    run: dir.join("run"),
                    custom: Some(dir),
                }
            }
            None => Roots {
                lib: PathBuf::from("/var/lib/stack"),
                run: PathBuf::from("/run/stack"),
                custom: None,
            },
        }
    }
}

/// Atomically replace `path` with `data` (temp file, fsync, rename): old or
/// new after any crash; the new name is durable at the directory's next
/// [`sync_dir`] (or writeback).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    replace(path, data, true)
}

/// [`write_atomic`], durable on return (the directory is fsynced too).
pub fn write_durable(path: &Path, data: &[u8]) -> io::Result<()> {
    replace(path, data, true)?;
    sync_dir(parent(path))
}

/// Atomically replace `path` with `data`, without any fsync: for what means
/// nothing after a reboot (a request to a running process).
pub fn write_volatile(path: &Path, data: &[u8]) -> io::Result<()> {
    replace(path, data, false)
}

/// `<pid>-<n>`, unique to this process and call: the end of a temp name
/// (threads and processes may make the same one at once; the pid tells a
/// cleaner whether its maker still runs).
pub fn unique_suffix() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{seq}", std::process::id())
}

/// Make the renames and creations inside `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Create `dir` (with its parents) as the top of a directory hierarchy
/// (`FS_TOPDIR_FL`, `chattr +T`): for the directories that hold one
/// subdirectory per container. ext4's Orlov allocator then spreads those
/// subdirectories, and the files in them, over its block groups instead of
/// packing all into the parent's group. That matters most without a journal:
/// there, every inode allocation skips the group's inodes freed in the last
/// minutes one by one (`recently_deleted`), so the files a `down` removed
/// slow each file of the next `up` when they all share one group. Best
/// effort: other filesystems do not have the flag.
pub fn make_top_dir(dir: &Path) -> io::Result<()> {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    fs::create_dir_all(dir)?;
    let f = fs::File::open(dir)?;
    if let Ok(flags) = ioctl_getflags(&f)
        && !flags.contains(IFlags::TOPDIR)
    {
        let _ = ioctl_setflags(&f, flags | IFlags::TOPDIR);
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn replace(path: &Path, data: &[u8], sync: bool) -> io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        unique_suffix()
    ));
    let result = (|| {
        // The directory is made only when missing: nearly every write goes
        // to one that exists, and a mkdir first costs a lookup and an error.
        let mut f = match fs::File::create(&tmp) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir)?;
                fs::File::create(&tmp)?
            }
            other => other?,
        };
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serialize `value` as JSON and write it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic(path, &json(value)?)
}

/// [`write_json`], durable on return.
pub fn write_json_durable<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_durable(path, &json(value)?)
}

/// Compact: the records are for programs (`inspect` prints them for people),
/// and a container's config.json is 20 KB pretty, most of it indentation.
fn json<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(io::Error::other)
}

/// Read a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Serde for `SystemTime` as RFC 3339 with nanoseconds, UTC.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_nanos(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        humantime::parse_rfc3339(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_moves_both_trees() {
        let r = Roots::new(Some(Path::new("/tmp/x")));
        assert_eq!(r.lib, PathBuf::from("/tmp/x/lib"));
        assert_eq!(r.run, PathBuf::from("/tmp/x/run"));
        assert_eq!(Roots::new(None).lib, PathBuf::from("/var/lib/stack"));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        write_json(&p, &vec![1, 2]).unwrap();
        write_json(&p, &vec![3]).unwrap();
        assert_eq!(read_json::<Vec<i32>>(&p).unwrap(), Some(vec![3]));
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        assert_eq!(
            read_json::<Vec<i32>>(&dir.path().join("none")).unwrap(),
            None
        );
    }

    #[test]
    fn every_kind_of_write_replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        for (i, write) in [write_atomic, write_durable, write_volatile]
            .into_iter()
            .enumerate()
        {
            write(&p, format!("old {i}").as_bytes()).unwrap();
            write(&p, format!("new {i}").as_bytes()).unwrap();
            assert_eq!(fs::read_to_string(&p).unwrap(), format!("new {i}"));
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        write_json_durable(&p, &vec![4]).unwrap();
        assert_eq!(read_json::<Vec<i32>>(&p).unwrap(), Some(vec![4]));
    }
}
