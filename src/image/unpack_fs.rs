//! File-system side of layer unpacking: every write goes through a directory fd
//! resolved inside the layer root, never through a joined path string.
//!
//! Parents are opened with `openat2(RESOLVE_IN_ROOT)` (openat2(2)): a symlink met on
//! the way, even one the layer itself just planted (`a -> /etc`, `a -> ../../..`),
//! resolves inside the layer directory, so nothing can be written outside it
//! (the class of CVE-2018-15664 / CVE-2019-14271 and tar-slip). The final component
//! is always created with `O_EXCL`/`*at` calls that do not follow symlinks.
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, chmodat, chownat,
    mkdirat, mknodat, openat, openat2, statat, unlinkat, utimensat,
};
use rustix::process::{Gid, Uid};

/// Owner, mode and time to give an entry.
#[derive(Debug, Clone)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: self.mtime,
            tv_nsec: i64::from(self.mtime_nsec),
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }
}

/// The layer directory being filled, plus a one-entry cache of the last parent
/// (tar streams list a directory's files together).
pub struct LayerRoot {
    fd: OwnedFd,
    cached: Option<(PathBuf, OwnedFd)>,
    /// Directory mtimes are set last: creating children changes them.
    dir_times: Vec<(PathBuf, Meta)>,
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

fn join(comps: &[&OsStr]) -> PathBuf {
    comps.iter().collect()
}

impl LayerRoot {
    pub fn open(dir: &Path) -> io::Result<LayerRoot> {
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(LayerRoot {
            fd,
            cached: None,
            dir_times: Vec::new(),
        })
    }

    /// Forget the cached parent: called whenever something was removed or a symlink
    /// created, since either can change what a path resolves to.
    pub fn invalidate(&mut self) {
        self.cached = None;
    }

    fn open_dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return self.fd.try_clone();
        }
        Ok(openat2(
            &self.fd,
            rel,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            in_root(),
        )?)
    }

    /// The directory `comps` inside the root, created (0755, root-owned, as Docker
    /// does for implied parents) where missing.
    pub fn dir(&mut self, comps: &[&OsStr]) -> io::Result<BorrowedFd<'_>> {
        let rel = join(comps);
        let hit = matches!(&self.cached, Some((p, _)) if *p == rel);
        if !hit {
            let fd = match self.open_dir(&rel) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.create_dirs(comps)?,
                Err(e) => return Err(e),
            };
            self.cached = Some((rel, fd));
        }
        match &self.cached {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(io::Error::other("parent cache empty")),
        }
    }

    /// Open an existing directory (no creation), e.g. a hard link target's parent.
    pub fn existing_dir(&self, comps: &[&OsStr]) -> io::Result<OwnedFd> {
        self.open_dir(&join(comps))
    }

    fn create_dirs(&self, comps: &[&OsStr]) -> io::Result<OwnedFd> {
        let mut cur = self.fd.try_clone()?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            cur = match self.open_dir(&prefix) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match mkdirat(&cur, comps[i], Mode::from_raw_mode(0o755)) {
                        Err(rustix::io::Errno::EXIST) => {
                            return Err(io::Error::other(format!(
                                "{} is a symlink to a path that is not in this layer",
                                prefix.display()
                            )));
                        }
                        r => r?,
                    }
                    self.open_dir(&prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }

    pub fn defer_dir_time(&mut self, comps: &[&OsStr], meta: Meta) {
        self.dir_times.push((join(comps), meta));
    }

    /// Apply the deferred directory mtimes (after every entry is written).
    pub fn finish(mut self) -> io::Result<()> {
        self.cached = None;
        for (rel, meta) in std::mem::take(&mut self.dir_times) {
            let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
                continue;
            };
            // A later entry may have replaced the directory: then its time is moot.
            let fd = match self.open_dir(parent) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if kind_at(fd.as_fd(), name)? == Some(FileType::Directory) {
                utimensat(&fd, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)?;
            }
        }
        Ok(())
    }
}

/// What is at `name` in `dir`, without following a symlink.
pub fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<FileType>> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(e) if e == rustix::io::Errno::NOENT => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Remove whatever is at `name` (a whole tree for a directory). Returns whether
/// something was there.
pub fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<bool> {
    match kind_at(dir, name)? {
        None => Ok(false),
        Some(FileType::Directory) => {
            remove_tree(dir, name)?;
            Ok(true)
        }
        Some(_) => {
            unlinkat(dir, name, AtFlags::empty())?;
            Ok(true)
        }
    }
}

/// Recursive removal through fds (no path joins, no symlink following).
pub fn remove_tree(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let fd = openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut children = Vec::new();
    for entry in Dir::read_from(&fd)? {
        let entry = entry?;
        let child = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
        if child != "." && child != ".." {
            children.push((child, entry.file_type()));
        }
    }
    for (child, ty) in children {
        if ty == FileType::Directory {
            remove_tree(fd.as_fd(), &child)?;
        } else {
            match unlinkat(&fd, &child, AtFlags::empty()) {
                Err(e) if e.raw_os_error() == libc::EISDIR => remove_tree(fd.as_fd(), &child)?,
                r => r?,
            }
        }
    }
    unlinkat(parent, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

/// `mkdir` unless a directory is already there (then only its metadata changes).
pub fn ensure_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<bool> {
    let mut replaced = false;
    match kind_at(dir, name)? {
        Some(FileType::Directory) => return Ok(false),
        Some(_) => {
            unlinkat(dir, name, AtFlags::empty())?;
            replaced = true;
        }
        None => {}
    }
    mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
    Ok(replaced)
}

/// Create a new regular file (`O_EXCL|O_NOFOLLOW`); the caller removed any old entry.
pub fn create_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?)
}

pub fn make_node(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    ty: FileType,
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let dev = rustix::fs::makedev(major, minor);
    mknodat(dir, name, ty, Mode::from_raw_mode(mode & 0o7777), dev)?;
    Ok(())
}

/// Owner, mode, xattrs and (for non-directories) mtime of an entry created by name.
/// chown comes before chmod: chown(2) clears setuid/setgid bits.
pub fn apply_meta_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    meta: &Meta,
    ty: FileType,
) -> io::Result<()> {
    chownat(
        dir,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    // Symlink modes are meaningless on Linux and chmod would follow the link.
    if ty != FileType::Symlink {
        chmodat(
            dir,
            name,
            Mode::from_raw_mode(meta.mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    for (key, value) in &meta.xattrs {
        set_xattr_at(dir, name, key, value)?;
    }
    if ty != FileType::Directory {
        utimensat(dir, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}

/// Same as [`apply_meta_at`] for a regular file still open for writing.
pub fn apply_meta_fd(fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777))?;
    for (key, value) in &meta.xattrs {
        match rustix::fs::fsetxattr(fd, key.as_os_str(), value, rustix::fs::XattrFlags::empty()) {
            Err(e) if unsupported(e) => tracing::debug!(?key, "xattr not supported here"),
            r => r?,
        }
    }
    rustix::fs::futimens(fd, &meta.times())?;
    Ok(())
}

fn unsupported(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::OPNOTSUPP
}

/// Set an xattr on `name` inside `dir` without following a final symlink. The
/// `/proc/self/fd/N/name` form lets lsetxattr(2) address an entry by directory fd.
pub fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &OsStr,
    value: &[u8],
) -> io::Result<()> {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    path.push(name);
    match rustix::fs::lsetxattr(&path, key, value, rustix::fs::XattrFlags::empty()) {
        Err(e) if unsupported(e) => {
            tracing::debug!(?key, "xattr not supported here");
            Ok(())
        }
        r => Ok(r?),
    }
}

/// Set an xattr on the directory an (O_PATH) fd refers to.
pub fn set_xattr_dir(dir: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    rustix::fs::setxattr(path.as_str(), key, value, rustix::fs::XattrFlags::empty())?;
    Ok(())
}
