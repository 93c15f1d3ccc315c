//! Root filesystem setup inside the container's mount namespace (child side).
//!
//! Every destination is resolved inside the root with openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS), created component by component with *at() calls on the
//! resolved parent, and mounted through "/proc/self/fd/N" of the host procfs
//! (still our root at this point, in our private mount namespace) — so a symlink
//! in the image can never redirect a mount outside the root (runc CVE-2021-30465
//! class). Runs before pivot_root; see `init.rs` for the order.
use std::ffi::CStr;
use std::os::fd::RawFd;
use std::ptr::null;

use super::channel::{Fail, Step};
use super::plan::{DevicePlan, InitPlan, MountKind, MountPlan, RootPath};
use super::sys::{self, Fd, FdPath};

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

type R<T> = Result<T, Fail>;

/// What to create for the last path component when it is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaf {
    Dir,
    File,
}

/// Resolve (creating as needed) `rp` inside `root`; returns an O_PATH fd.
pub(crate) fn resolve_create(root: RawFd, rp: &RootPath, leaf: Leaf) -> Result<Fd, i32> {
    // Common case first: the whole path exists (one openat2 instead of one
    // per component).
    match resolve(root, rp) {
        Ok(fd) => return Ok(fd),
        Err(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut parent: Option<Fd> = None;
    let n = rp.prefixes.len();
    for i in 0..n {
        let fd = match sys::open_in_root(root, &rp.prefixes[i], libc::O_PATH) {
            Ok(fd) => fd,
            Err(libc::ENOENT) => {
                let dir = parent.as_ref().map_or(root, |p| p.0);
                let made = if i + 1 < n || leaf == Leaf::Dir {
                    sys::mkdirat(dir, &rp.names[i], 0o755)
                } else {
                    sys::mknodat(dir, &rp.names[i], libc::S_IFREG | 0o644, 0)
                };
                match made {
                    Ok(()) | Err(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                sys::open_in_root(root, &rp.prefixes[i], libc::O_PATH)?
            }
            Err(e) => return Err(e),
        };
        parent = Some(Fd(fd));
    }
    parent.ok_or(libc::EINVAL)
}

/// Resolve an existing path inside the root (no creation).
fn resolve(root: RawFd, rp: &RootPath) -> Result<Fd, i32> {
    let last = rp.prefixes.last().ok_or(libc::EINVAL)?;
    sys::open_in_root(root, last, libc::O_PATH).map(Fd)
}

/// Resolve the parent directory of `rp` (creating it), for *at() on the last name.
fn resolve_parent(root: RawFd, rp: &RootPath) -> Result<(Option<Fd>, &CStr), i32> {
    let n = rp.prefixes.len();
    let name = rp.names.last().ok_or(libc::EINVAL)?;
    if n == 1 {
        return Ok((None, name));
    }
    let mut fd: Option<Fd> = None;
    for i in 0..n - 1 {
        let dir = fd.as_ref().map_or(root, |p| p.0);
        let next = match sys::open_in_root(root, &rp.prefixes[i], libc::O_PATH) {
            Ok(f) => f,
            Err(libc::ENOENT) => {
                match sys::mkdirat(dir, &rp.names[i], 0o755) {
                    Ok(()) | Err(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                sys::open_in_root(root, &rp.prefixes[i], libc::O_PATH)?
            }
            Err(e) => return Err(e),
        };
        fd = Some(Fd(next));
    }
    Ok((fd, name))
}

/// `go` is called before the first cgroup mount: it must see the container's
/// cgroup namespace, which exists only after the parent placed the child.
/// `trees`: the parent's detached idmapped trees, by `MountKind::Idmapped` index.
pub(crate) fn mount_all(
    plan: &InitPlan,
    root: RawFd,
    trees: &[RawFd],
    go: &mut dyn FnMut() -> R<()>,
) -> R<()> {
    for (i, m) in plan.mounts.iter().enumerate() {
        if plan.go_before_mount == Some(i) {
            go()?;
        }
        mount_one(m, root, trees).map_err(|e| Fail::new(Step::Mount, i, e))?;
    }
    Ok(())
}

/// The deferred cgroup mounts (after GO).
pub(crate) fn mount_late(plan: &InitPlan, root: RawFd, go: &mut dyn FnMut() -> R<()>) -> R<()> {
    if plan.late_mounts.is_empty() {
        return Ok(());
    }
    go()?;
    for (i, m) in plan.late_mounts.iter().enumerate() {
        mount_one(m, root, &[]).map_err(|e| Fail::new(Step::Mount, plan.mounts.len() + i, e))?;
    }
    Ok(())
}

fn mount_one(m: &MountPlan, root: RawFd, trees: &[RawFd]) -> Result<(), i32> {
    let leaf = if m.dest_is_dir { Leaf::Dir } else { Leaf::File };
    let target = resolve_create(root, &m.dest, leaf)?;
    let tpath = FdPath::new(target.0);
    match &m.kind {
        MountKind::Idmapped { tree } => {
            let tree = *trees.get(*tree).ok_or(libc::EBADF)?;
            sys::move_mount(tree, target.0)?;
            drop(target);
            if m.flags != 0 {
                let fresh = resolve(root, &m.dest)?;
                let p = FdPath::new(fresh.0);
                let flags = libc::MS_REMOUNT | libc::MS_BIND | m.flags;
                sys::mount(null(), p.as_ptr(), null(), flags, null())?;
            }
        }
        MountKind::Remount => {
            let flags = libc::MS_REMOUNT | m.flags;
            sys::mount(null(), tpath.as_ptr(), null(), flags, null())?;
        }
        MountKind::Bind { source, recursive } => {
            let rec = if *recursive { libc::MS_REC } else { 0 };
            sys::mount(
                source.as_ptr(),
                tpath.as_ptr(),
                null(),
                libc::MS_BIND | rec,
                null(),
            )?;
            drop(target);
            if m.flags != 0 {
                // Bind mounts ignore flags on the first call; a remount applies them.
                // Re-resolve: the old fd names the covered directory, not the new mount.
                let fresh = resolve(root, &m.dest)?;
                let p = FdPath::new(fresh.0);
                sys::mount(
                    null(),
                    p.as_ptr(),
                    null(),
                    libc::MS_REMOUNT | libc::MS_BIND | rec | m.flags,
                    null(),
                )?;
            }
        }
        MountKind::Fs {
            fstype,
            source,
            data,
        } => {
            let data_ptr = data.as_ref().map_or(null(), |d| d.as_ptr());
            match sys::mount(
                source.as_ptr(),
                tpath.as_ptr(),
                fstype.as_ptr(),
                m.flags,
                data_ptr,
            ) {
                Ok(()) => {}
                Err(libc::EPERM | libc::EBUSY) if m.sysfs_fallback => {
                    let src = c"/sys";
                    sys::mount(
                        src.as_ptr(),
                        tpath.as_ptr(),
                        null(),
                        libc::MS_BIND | libc::MS_REC,
                        null(),
                    )?;
                    let fresh = resolve(root, &m.dest)?;
                    let p = FdPath::new(fresh.0);
                    let ro = libc::MS_REMOUNT
                        | libc::MS_BIND
                        | libc::MS_RDONLY
                        | libc::MS_NOSUID
                        | libc::MS_NODEV
                        | libc::MS_NOEXEC;
                    sys::mount(null(), p.as_ptr(), null(), ro, null())?;
                }
                Err(e) => return Err(e),
            }
            drop(target);
        }
    }
    if let Some(r) = &m.rec {
        // rro, rnosuid, ...: the mount and every submount (mount_setattr(2)).
        let fresh = resolve(root, &m.dest)?;
        let attr = libc::mount_attr {
            attr_set: r.set,
            attr_clr: r.clr,
            propagation: 0,
            userns_fd: 0,
        };
        sys::mount_setattr(fresh.0, libc::AT_RECURSIVE as libc::c_uint, &attr)?;
    }
    if !m.propagation.is_empty() {
        let fresh = resolve(root, &m.dest)?;
        let p = FdPath::new(fresh.0);
        for flags in &m.propagation {
            sys::mount(null(), p.as_ptr(), null(), *flags, null())?;
        }
    }
    Ok(())
}

/// Device nodes: mknod, or (in a user namespace, where mknod is refused) a bind
/// mount of the host node onto an empty file, as runc does.
pub(crate) fn devices(plan: &InitPlan, root: RawFd) -> R<()> {
    for (i, d) in plan.devices.iter().enumerate() {
        device(d, root, plan.new_userns).map_err(|e| Fail::new(Step::Device, i, e))?;
    }
    let dev = c"dev";
    let devfd = sys::open_in_root(root, dev, libc::O_PATH | libc::O_DIRECTORY).map(Fd);
    for (i, (target, name)) in plan.dev_symlinks.iter().enumerate() {
        let devfd = devfd
            .as_ref()
            .map_err(|e| Fail::new(Step::Symlink, i, *e))?;
        // SAFETY: both strings are NUL-terminated; devfd was resolved in the root.
        let r = unsafe { libc::symlinkat(target.as_ptr(), devfd.0, name.as_ptr()) };
        if r != 0 {
            let e = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            if e != libc::EEXIST {
                return Err(Fail::new(Step::Symlink, i, e));
            }
        }
    }
    Ok(())
}

fn device(d: &DevicePlan, root: RawFd, userns: bool) -> Result<(), i32> {
    let (parent, name) = resolve_parent(root, &d.path)?;
    let dir = parent.as_ref().map_or(root, |p| p.0);
    if userns {
        match sys::mknodat(dir, name, libc::S_IFREG | 0o644, 0) {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        let target = resolve(root, &d.path)?;
        let p = FdPath::new(target.0);
        return sys::mount(d.host.as_ptr(), p.as_ptr(), null(), libc::MS_BIND, null());
    }
    match sys::mknodat(dir, name, d.mode, d.rdev) {
        Ok(()) => {}
        Err(libc::EEXIST) => return Ok(()),
        Err(e) => return Err(e),
    }
    // mknod applies the umask; set the exact mode and owner.
    // SAFETY: name is NUL-terminated; dir is a directory fd resolved in the root.
    unsafe {
        if libc::fchmodat(dir, name.as_ptr(), d.mode & 0o7777, 0) != 0
            || libc::fchownat(dir, name.as_ptr(), d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW) != 0
        {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO));
        }
    }
    Ok(())
}

/// The pty for `process.terminal`: open the container's own devpts ptmx (verified
/// to be devpts), get the peer with TIOCGPTPEER (no path lookup), and bind the
/// peer onto a /dev/console we just created as a plain file in our /dev tmpfs
/// and re-opened without following symlinks (CVE-2025-52565).
/// Returns (master, slave).
pub(crate) fn console(root: RawFd, bind_console: bool) -> Result<(Fd, Fd), i32> {
    let master = Fd(sys::open_in_root(
        root,
        c"dev/pts/ptmx",
        libc::O_RDWR | libc::O_NOCTTY,
    )?);
    if sys::fstatfs_type(master.0)? != DEVPTS_SUPER_MAGIC {
        return Err(libc::EXDEV);
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer; TIOCGPTPEER takes flags.
    let slave = unsafe {
        if libc::ioctl(master.0, libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO));
        }
        libc::ioctl(
            master.0,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    let slave = Fd(slave);
    if !bind_console {
        return Ok((master, slave));
    }
    let dev = Fd(sys::open_in_root(
        root,
        c"dev",
        libc::O_PATH | libc::O_DIRECTORY,
    )?);
    match sys::mknodat(dev.0, c"console", libc::S_IFREG | 0o600, 0) {
        Ok(()) | Err(libc::EEXIST) => {}
        Err(e) => return Err(e),
    }
    let target = Fd(sys::openat2(
        dev.0,
        c"console",
        libc::O_PATH | libc::O_NOFOLLOW,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
    )?);
    let mode = sys::fstat(target.0)?.st_mode & libc::S_IFMT;
    if mode != libc::S_IFREG && mode != libc::S_IFCHR {
        return Err(libc::ELOOP);
    }
    sys::mount(
        FdPath::new(slave.0).as_ptr(),
        FdPath::new(target.0).as_ptr(),
        null(),
        libc::MS_BIND,
        null(),
    )?;
    Ok((master, slave))
}

/// Namespaced sysctls through the verified host procfs fd: /proc/sys/net and the
/// IPC/UTS keys resolve to the namespaces of the writing task (CVE-2025-52881:
/// never through a path the container could have mounted over).
pub(crate) fn sysctls(plan: &InitPlan, proc_fd: RawFd) -> R<()> {
    for (i, (path, value)) in plan.sysctl.iter().enumerate() {
        let f = |e| Fail::new(Step::Sysctl, i, e);
        let fd = Fd(sys::openat2(
            proc_fd,
            path,
            libc::O_WRONLY | libc::O_NOFOLLOW,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )
        .map_err(f)?);
        sys::write_all(fd.0, value.as_bytes()).map_err(f)?;
    }
    Ok(())
}

/// maskedPaths: directories get a read-only empty tmpfs; files get the host's
/// /dev/null, whose fd the parent verified to be the 1:3 character device
/// (CVE-2025-31133: never bind whatever "/dev/null" the image provides).
pub(crate) fn mask(plan: &InitPlan, root: RawFd) -> R<()> {
    if plan.masked.is_empty() {
        return Ok(());
    }
    // Opened here, in our mount namespace: bind sources must be mounts of the
    // caller's namespace (an fd from the parent's namespace gives EINVAL).
    let devnull = Fd(open_devnull().map_err(|e| Fail::new(Step::Mask, usize::MAX, e))?);
    let null_path = FdPath::new(devnull.0);
    for (i, rp) in plan.masked.iter().enumerate() {
        let f = |e| Fail::new(Step::Mask, i, e);
        let target = match resolve(root, rp) {
            Ok(t) => t,
            Err(libc::ENOENT) => continue,
            Err(e) => return Err(f(e)),
        };
        let is_dir = sys::fstat(target.0).map_err(f)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let tp = FdPath::new(target.0);
        if is_dir {
            sys::mount(
                c"tmpfs".as_ptr(),
                tp.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY,
                c"size=0k".as_ptr(),
            )
            .map_err(f)?;
        } else {
            sys::mount(
                null_path.as_ptr(),
                tp.as_ptr(),
                null(),
                libc::MS_BIND,
                null(),
            )
            .map_err(f)?;
        }
    }
    Ok(())
}

/// The host's /dev/null, verified to be the 1:3 character device.
fn open_devnull() -> Result<RawFd, i32> {
    // SAFETY: NUL-terminated path.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    let fd = Fd(fd);
    let st = sys::fstat(fd.0)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(libc::ENODEV);
    }
    let raw = fd.0;
    std::mem::forget(fd);
    Ok(raw)
}

/// readonlyPaths: bind each onto itself, then remount read-only (adding nosuid,
/// nodev, noexec never fails even where the mount's flags are locked).
pub(crate) fn readonly(plan: &InitPlan, root: RawFd) -> R<()> {
    for (i, rp) in plan.readonly.iter().enumerate() {
        let f = |e| Fail::new(Step::Readonly, i, e);
        let target = match resolve(root, rp) {
            Ok(t) => t,
            Err(libc::ENOENT) => continue,
            Err(e) => return Err(f(e)),
        };
        let tp = FdPath::new(target.0);
        sys::mount(
            tp.as_ptr(),
            tp.as_ptr(),
            null(),
            libc::MS_BIND | libc::MS_REC,
            null(),
        )
        .map_err(f)?;
        let fresh = resolve(root, rp).map_err(f)?;
        let p = FdPath::new(fresh.0);
        let flags = libc::MS_REMOUNT
            | libc::MS_BIND
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        sys::mount(null(), p.as_ptr(), null(), flags, null()).map_err(f)?;
    }
    Ok(())
}

/// pivot_root(".", ".") then detach the old root (the runc/lxc trick: no put_old
/// directory is needed inside the image). The old root is made rslave first so
/// the unmount does not propagate to the host.
pub(crate) fn pivot(root: RawFd, no_pivot: bool) -> R<()> {
    let f = |e| Fail::new(Step::PivotRoot, 0, e);
    // SAFETY: fchdir on a directory fd we own.
    if unsafe { libc::fchdir(root) } != 0 {
        return Err(f(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)));
    }
    if no_pivot {
        // --no-pivot: MS_MOVE + chroot, for ramfs roots where pivot_root fails.
        sys::mount(c".".as_ptr(), c"/".as_ptr(), null(), libc::MS_MOVE, null()).map_err(f)?;
        // SAFETY: chroot to the cwd.
        if unsafe { libc::chroot(c".".as_ptr()) } != 0 {
            return Err(f(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)));
        }
    } else {
        sys::pivot_root(c".", c".").map_err(f)?;
        sys::mount(
            null(),
            c".".as_ptr(),
            null(),
            libc::MS_SLAVE | libc::MS_REC,
            null(),
        )
        .map_err(f)?;
        // SAFETY: umount2 on a NUL-terminated path.
        if unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(f(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)));
        }
    }
    // SAFETY: chdir to a NUL-terminated path.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        return Err(f(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)));
    }
    Ok(())
}
