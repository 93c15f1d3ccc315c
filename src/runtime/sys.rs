//! Raw syscalls for the container init, usable after clone in a process that may
//! have had other threads: no allocation, no locks, errors are plain errno values.
use std::ffi::CStr;
use std::os::fd::RawFd;
use std::ptr;

use libc::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

pub(crate) type SysResult<T> = Result<T, c_int>;

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

fn check(r: c_long) -> SysResult<c_long> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

/// "/proc/self/fd/N" built in a stack buffer: the target for mount(2) through an
/// fd that was resolved safely inside the container root.
pub(crate) struct FdPath([u8; 32]);

impl FdPath {
    pub(crate) fn new(fd: RawFd) -> Self {
        let mut b = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        b[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd.unsigned_abs();
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            b[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath(b)
    }

    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub(crate) const RESOLVE_BENEATH: u64 = 0x08;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2): resolve `path` with `resolve` restrictions relative to `dirfd`.
pub(crate) fn openat2(dirfd: RawFd, path: &CStr, flags: c_int, resolve: u64) -> SysResult<RawFd> {
    #[allow(clippy::cast_sign_loss)]
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: path is NUL-terminated, `how` lives for the call and its size is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    #[allow(clippy::cast_possible_truncation)]
    check(r).map(|fd| fd as RawFd)
}

/// Resolve inside the container root: symlinks stay in the root, /proc magic
/// links are refused (CVE-2024-21626 style escapes through /proc/self/fd).
pub(crate) fn open_in_root(root: RawFd, path: &CStr, flags: c_int) -> SysResult<RawFd> {
    openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

pub(crate) fn mount(
    src: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_char,
) -> SysResult<()> {
    // SAFETY: every pointer is NUL-terminated or null, as mount(2) allows.
    let r = unsafe { libc::mount(src, target, fstype, flags, data.cast::<c_void>()) };
    check(r.into()).map(drop)
}

pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing an fd this process owns; errors are irrelevant here.
    unsafe { libc::close(fd) };
}

/// An fd closed on drop (the child cannot use OwnedFd's allocation-free drop? it
/// can, but a plain type keeps the raw-syscall contract obvious).
pub(crate) struct Fd(pub RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        close(self.0);
    }
}

pub(crate) fn mkdirat(dirfd: RawFd, name: &CStr, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: name is NUL-terminated.
    check(unsafe { libc::mkdirat(dirfd, name.as_ptr(), mode) }.into()).map(drop)
}

pub(crate) fn mknodat(
    dirfd: RawFd,
    name: &CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> SysResult<()> {
    // SAFETY: name is NUL-terminated.
    check(unsafe { libc::mknodat(dirfd, name.as_ptr(), mode, dev) }.into()).map(drop)
}

pub(crate) fn fstat(fd: RawFd) -> SysResult<libc::stat> {
    // SAFETY: an all-zero stat is a valid value; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, exclusively borrowed buffer.
    check(unsafe { libc::fstat(fd, &mut st) }.into())?;
    Ok(st)
}

pub(crate) fn fstatfs_type(fd: RawFd) -> SysResult<i64> {
    // SAFETY: an all-zero statfs is a valid value; fstatfs fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, exclusively borrowed buffer.
    check(unsafe { libc::fstatfs(fd, &mut st) }.into())?;
    Ok(st.f_type)
}

pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match check(r as c_long) {
            Ok(n) => buf = &buf[n as usize..],
            Err(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// [`write_all`] to a pipe whose reader may be gone (a hook that exits without
/// reading its stdin, an init that died): EPIPE comes back as an error instead
/// of SIGPIPE killing us, as `stack` keeps SIGPIPE's default action (main.rs).
/// SIGPIPE is blocked for this thread only, and the one our write raised is
/// taken off the thread's pending set before the old mask comes back.
pub(crate) fn write_all_no_sigpipe(fd: RawFd, buf: &[u8]) -> SysResult<()> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset below.
    let mut pipe: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers; pthread_sigmask only changes this thread.
    unsafe {
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
    }
    let r = write_all(fd, buf);
    // SAFETY: valid sigset pointers; a zero timeout only polls.
    unsafe {
        if r == Err(libc::EPIPE) && libc::sigismember(&old, libc::SIGPIPE) == 0 {
            let now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&pipe, std::ptr::null_mut(), &now);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    r
}

pub(crate) fn read_some(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: buf is a valid, exclusively borrowed slice.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match check(r as c_long) {
            Ok(n) => return Ok(n as usize),
            Err(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn prctl(op: c_int, arg: c_ulong) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(op, arg, 0, 0, 0) }.into()).map(drop)
}

pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    // SAFETY: both paths are NUL-terminated.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capset(2) with the 64-bit (version 3) layout.
pub(crate) fn capset(effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
    let hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    #[allow(clippy::cast_possible_truncation)]
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as capset(2) expects for version 3.
    check(unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) })
        .map(drop)
}

pub(crate) fn close_range_cloexec(first: u32) -> SysResult<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

pub(crate) fn clear_cloexec(fd: RawFd) -> SysResult<()> {
    // SAFETY: fcntl on an fd number; an invalid fd yields EBADF.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }.into()).map(drop)
}

/// Send one fd with SCM_RIGHTS and a one-byte tag, using only stack memory.
pub(crate) fn send_fd(sock: RawFd, tag: u8, fd: RawFd) -> SysResult<()> {
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    let mut data = [tag];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: an all-zero msghdr is valid; fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) } as usize;
    // SAFETY: msg_control points at a buffer larger than CMSG_SPACE(int), so the
    // first header and its data are in bounds.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as usize;
        ptr::write_unaligned(libc::CMSG_DATA(c).cast::<c_int>(), fd);
    }
    // SAFETY: msg references live stack buffers.
    check(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as c_long).map(drop)
}

/// Most fds [`recv_fds`] takes from one message: one per cgroup v1 hierarchy
/// fits (the kernel has 14 v1 controllers).
pub(crate) const MAX_FDS: usize = 16;

/// Receive one message and the fds it carries (SCM_RIGHTS, close-on-exec),
/// using only stack memory. Returns the byte count and the number of fds.
pub(crate) fn recv_fds(
    sock: RawFd,
    buf: &mut [u8],
    fds: &mut [RawFd; MAX_FDS],
) -> SysResult<(usize, usize)> {
    #[repr(C, align(8))]
    struct Cmsg([u8; 128]);
    let mut cbuf = Cmsg([0; 128]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len();
    let n = loop {
        // SAFETY: msg references live stack buffers.
        match check(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) } as c_long) {
            Ok(n) => break n as usize,
            Err(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    };
    let mut count = 0;
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // well-formed headers; CMSG_* walk them within that length.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<c_int>();
                let len = (*c).cmsg_len - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<c_int>() {
                    let fd = ptr::read_unaligned(data.add(i));
                    match fds.get_mut(count) {
                        Some(slot) => {
                            *slot = fd;
                            count += 1;
                        }
                        None => close(fd),
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, count))
}

/// struct clone_args of clone3(2), as far as CLONE_ARGS_SIZE_VER2 (`cgroup`).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// clone3's flag to create the child in the cgroup2 directory `cgroup` (5.7).
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub(crate) fn fstat_path(path: &CStr) -> SysResult<libc::stat> {
    // SAFETY: an all-zero stat is a valid value; stat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated, st a valid buffer.
    check(unsafe { libc::stat(path.as_ptr(), &mut st) }.into())?;
    Ok(st)
}

/// struct sched_attr, version 0 (48 bytes), for sched_setattr(2).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

pub(crate) fn sched_setattr(attr: &SchedAttr) -> SysResult<()> {
    // SAFETY: attr is a valid sched_attr of the size it declares.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) })
        .map(drop)
}

pub(crate) fn ioprio_set(value: c_int) -> SysResult<()> {
    // SAFETY: IOPRIO_WHO_PROCESS (1) of the caller (0) with a plain value.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) }).map(drop)
}

// The id syscalls, raw: glibc's wrappers (setxid) broadcast the change to every
// thread in *its* thread list, which after a raw clone still names the caller's
// other threads — waiting for them deadlocks the child. The kernel calls are
// per-thread, which is exactly right for the single-threaded init.

pub(crate) fn setresuid(id: u32) -> c_long {
    // SAFETY: plain integer arguments.
    unsafe { libc::syscall(libc::SYS_setresuid, id, id, id) }
}

pub(crate) fn setresgid(id: u32) -> c_long {
    // SAFETY: plain integer arguments.
    unsafe { libc::syscall(libc::SYS_setresgid, id, id, id) }
}

pub(crate) fn setgroups(groups: &[libc::gid_t]) -> c_long {
    // SAFETY: pointer and length of a live slice.
    unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }
}

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH); `flags` may add
/// AT_RECURSIVE to reach every submount.
pub(crate) fn mount_setattr(fd: RawFd, flags: c_uint, attr: &libc::mount_attr) -> SysResult<()> {
    // SAFETY: "" is NUL-terminated; attr is a valid mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags | libc::AT_EMPTY_PATH as c_uint,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map(drop)
}

/// move_mount(2) of the detached tree `from` onto the (resolved) target fd `to`.
pub(crate) fn move_mount(from: RawFd, to: RawFd) -> SysResult<()> {
    // SAFETY: both paths are "" with the EMPTY_PATH flags: the fds are used.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}
