//! Small cgroupfs file helpers: every error names the file.
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Error, Result};

/// Write a control file in one write(2), never creating it: a missing file
/// means the controller is not there (ENOENT), on cgroupfs and in test dirs alike.
pub(super) fn write(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    let err = |source| Error::Write {
        path: path.into(),
        value: value.into(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// Like [`write`] but creating the file (cpuset copies into a fresh directory,
/// where cgroupfs already has the file and a test dir does not).
pub(super) fn write_new(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| Error::Write {
        path: path.into(),
        value: value.into(),
        source,
    })
}

pub(super) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

/// Read a file that may be absent (a controller not enabled, an old kernel).
pub(super) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.into(),
            source,
        }),
    }
}

pub(super) fn read_u64(path: &Path) -> Result<Option<u64>> {
    let Some(s) = read_opt(path)? else {
        return Ok(None);
    };
    let t = s.trim();
    if t == "max" {
        return Ok(Some(u64::MAX));
    }
    t.parse().map(Some).map_err(|_| Error::Parse {
        path: path.into(),
        content: s,
    })
}

/// `key value` lines (memory.stat, memory.events, cpu.stat) -> value of `key`.
pub(super) fn flat_key(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

/// Make `path`, one level: its parent must exist (a vanished parent is an
/// error, not made again silently); an existing `path` is fine.
pub(super) fn mkdir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Err(source) if source.kind() != ErrorKind::AlreadyExists => Err(Error::Create {
            path: path.into(),
            source,
        }),
        _ => Ok(()),
    }
}

pub(super) fn mkdir_p(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::Create {
        path: path.into(),
        source,
    })
}

pub(super) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let Some(procs) = read_opt(&dir.join("cgroup.procs"))? else {
        return Ok(());
    };
    out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for child in subdirs(dir)? {
        collect_pids(&child, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.into(),
                source,
            });
        }
    };
    Ok(rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

/// Remove a cgroup directory tree, deepest first. Only directories can be removed
/// in cgroupfs (the control files vanish with them). rmdir is tried first (the
/// common case, a leaf: no directory listing); EBUSY means children or tasks
/// still exiting: children are removed, then rmdir is retried for up to a second.
pub(super) fn remove_tree(dir: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                let children = subdirs(dir)?;
                if children.is_empty() {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(50));
                }
                for child in children {
                    remove_tree(&child)?;
                }
            }
            Err(source) => {
                return Err(Error::Remove {
                    path: dir.into(),
                    source,
                });
            }
        }
    }
}

/// cgroupfs answers EBUSY for a directory with children or tasks; a plain
/// directory (tests) answers ENOTEMPTY.
fn is_busy(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY))
}

/// Poll `check` until it is true or `timeout` passes.
pub(super) fn wait_until(
    path: &Path,
    state: &'static str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                path: path.into(),
                state,
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
