//! Copying a directory tree by file descriptors, never following symlinks: used to
//! fill an empty named volume from the image (Docker's copy-up).
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, Timestamps, chownat, fchmod, fchown, futimens, mkdirat,
    mknodat, openat, readlinkat, statat, symlinkat, utimensat,
};
use rustix::process::{Gid, Uid};

fn open_dir(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn times(st: &rustix::fs::Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn owner(st: &rustix::fs::Stat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

/// Copy extended attributes, except overlayfs's own.
fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::flistxattr(src, &mut names[..]) {
        Ok(n) => n,
        Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::RANGE => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let name = OsStr::from_bytes(name);
        let mut value = vec![0u8; 65536];
        let len = match rustix::fs::fgetxattr(src, name, &mut value[..]) {
            Ok(len) => len,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::fsetxattr(dst, name, &value[..len], rustix::fs::XattrFlags::empty()) {
            Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::PERM => {
                tracing::debug!(?name, "xattr not copied");
            }
            r => r?,
        }
    }
    Ok(())
}

/// Copy everything inside `src` into `dst` (both open directories), keeping types,
/// owners, modes, times and xattrs. Returns bytes of file content copied.
pub fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<u64> {
    let mut names: Vec<OsString> = Vec::new();
    for entry in Dir::read_from(src)? {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_os_string());
        }
    }
    let mut total = 0;
    for name in names {
        total += copy_entry(src, dst, &name)?;
    }
    Ok(total)
}

fn copy_entry(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &OsStr) -> io::Result<u64> {
    let st = statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let (uid, gid) = owner(&st);
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
            let s = open_dir(src, name)?;
            let d = open_dir(dst, name)?;
            let n = copy_tree(s.as_fd(), d.as_fd())?;
            fchown(&d, uid, gid)?;
            fchmod(&d, mode)?;
            copy_xattrs(s.as_fd(), d.as_fd())?;
            futimens(&d, &times(&st))?;
            Ok(n)
        }
        FileType::RegularFile => {
            let s = openat(
                src,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let d = openat(
                dst,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let (mut sf, mut df) = (std::fs::File::from(s), std::fs::File::from(d));
            let n = io::copy(&mut sf, &mut df)?;
            fchown(&df, uid, gid)?;
            fchmod(&df, mode)?;
            copy_xattrs(sf.as_fd(), df.as_fd())?;
            futimens(&df, &times(&st))?;
            Ok(n)
        }
        FileType::Symlink => {
            let target = readlinkat(src, name, Vec::new())?;
            symlinkat(target.as_c_str(), dst, name)?;
            chownat(dst, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
            utimensat(dst, name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(0)
        }
        ty @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
            mknodat(dst, name, ty, mode, st.st_rdev)?;
            chownat(dst, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
            utimensat(dst, name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(0)
        }
        _ => Ok(0), // sockets are not content
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("d")).unwrap();
        std::fs::write(src.path().join("d/f"), "data").unwrap();
        std::fs::set_permissions(
            src.path().join("d/f"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        symlink("/etc/passwd", src.path().join("l")).unwrap();
        let s = rustix::fs::open(
            src.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let d = rustix::fs::open(
            dst.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        assert_eq!(copy_tree(s.as_fd(), d.as_fd()).unwrap(), 4);
        assert_eq!(std::fs::read(dst.path().join("d/f")).unwrap(), b"data");
        assert_eq!(
            std::fs::metadata(dst.path().join("d/f")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_link(dst.path().join("l")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
    }
}
