//! The container init: the cloned child, from clone to execve of the user's program.
//!
//! Runs in new namespaces as a copy of the caller. It only makes raw syscalls on the
//! [`InitPlan`] prepared by the parent, reports failures as a fixed-size [`Fail`]
//! over the sync socket, and ends in execve(2) or _exit(2) — it never returns into
//! the caller's code and never execs the `stack` binary (CVE-2019-5736).
//!
//! Order (each step needs the previous ones):
//! 1. non-dumpable (no `/proc/<pid>/{exe,fd,mem}` access by container processes
//!    until execve resets it); with a user namespace or hooks, wait for GO here
//!    (id maps written, hooks run) — otherwise the child runs ahead while the
//!    parent places it in its cgroups, and waits for GO only before the first
//!    cgroup mount or at the latest before step 4 (see [`Go`]);
//! 2. setns for namespaces joined by path, a new time namespace, become root in
//!    a new user namespace; unshare the cgroup namespace right after GO;
//! 3. hostname; root propagation; bind the rootfs onto itself; mounts; devices;
//!    console; sysctls; masked and read-only paths; cwd resolved inside the root
//!    (all through fds resolved with RESOLVE_IN_ROOT, before pivot_root, while the
//!    host /proc is still ours);
//! 4. pivot_root; read-only root; I/O priority and scheduler; rlimits; stdio/tty;
//!    groups, uid/gid, capabilities; umask; chdir to cwd and check it is
//!    reachable from the new root (CVE-2024-21626); mark every other fd
//!    close-on-exec;
//! 5. READY, block opening exec.fifo until `start` (not for `run`/`exec`);
//!    no_new_privs; seccomp last; execve. A filter with a listener
//!    (`listenerPath`) is loaded before READY instead, and its fd sent to the
//!    parent, so the seccomp agent has it when `create` returns.
use std::os::fd::RawFd;

use libc::{c_char, c_int};

use super::channel::{self, Fail, Step};
use super::plan::InitPlan;
use super::rootfs::{self, Leaf};
use super::sys::{self, Fd};

/// Raw fds and pointer arrays the init uses; all opened/built before clone.
pub(crate) struct InitFds {
    pub sync: RawFd,
    /// Host procfs, verified PROC_SUPER_MAGIC.
    pub proc_fd: RawFd,
    /// The container's state directory, holding exec.fifo.
    pub state_dir: RawFd,
    /// (CLONE_NEW* flag, fd): namespaces to join, user namespace first.
    pub join: Vec<(c_int, RawFd)>,
    pub stdio: Option<[RawFd; 3]>,
    pub preserve_fds: u32,
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    /// Wait for `start` on exec.fifo (false for `exec`: run at once).
    pub wait_fifo: bool,
    /// stdin (read end of a pipe holding the state JSON) of each in-container
    /// hook: createContainer hooks first, then startContainer hooks.
    pub hook_stdin: Vec<RawFd>,
    /// The parent's fds, closed first thing: the write ends of those pipes (or
    /// a hook reading its stdin to EOF would wait for us) and the parent's end
    /// of the sync socket (or, with our copy open, a parent that dies before
    /// GO would leave us blocked on the socket for ever instead of at EOF).
    pub close: Vec<RawFd>,
    /// Detached idmapped trees (`plan.idmaps` order), attached with move_mount.
    pub idmap_trees: Vec<RawFd>,
}

fn err() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Entry point of the child. Never returns.
pub(crate) fn run(plan: &InitPlan, fds: &InitFds) -> ! {
    let code = match setup(plan, fds) {
        Ok(candidate) => exec(plan, fds, candidate),
        Err(f) => {
            let _ = sys::write_all(fds.sync, &f.encode());
            1
        }
    };
    // SAFETY: _exit never returns and skips atexit handlers of the copied parent.
    unsafe { libc::_exit(code) }
}

fn setup(plan: &InitPlan, fds: &InitFds) -> Result<usize, Fail> {
    // CVE-2019-5736: until execve, this process is a copy of the runtime binary;
    // keep container processes from opening /proc/<pid>/exe of it.
    sys::prctl(libc::PR_SET_DUMPABLE, 0).map_err(|e| Fail::new(Step::Sync, 0, e))?;
    // The caller's signal state must not leak into the container: handlers
    // survive until execve and SIG_IGN (Rust ignores SIGPIPE) and the blocked
    // mask (async runtimes block signals for signalfd) survive execve itself.
    reset_signals();
    // A new session without a controlling terminal: the caller's terminal must
    // not be reachable from the container (TIOCSTI into the host's shell).
    // SAFETY: setsid has no arguments; failure (already a leader) is harmless.
    unsafe { libc::setsid() };
    for fd in &fds.close {
        sys::close(*fd);
    }
    let mut go = Go {
        fds,
        plan,
        done: false,
    };
    if plan.early_go {
        go.wait()?;
    }
    for (i, (flag, fd)) in fds.join.iter().enumerate() {
        // SAFETY: setns on an fd opened by the parent.
        if unsafe { libc::setns(*fd, *flag) } != 0 {
            return Err(Fail::new(Step::SetNs, i, err()));
        }
    }
    if plan.new_userns && (sys::setresgid(0) != 0 || sys::setresuid(0) != 0) {
        return Err(Fail::new(Step::Identity, 0, err()));
    }
    // SAFETY: unshare with a namespace flag.
    if plan.unshare_net && unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(Fail::new(Step::SetNs, channel::UNSHARE_NET, err()));
    }
    if plan.unshare_time {
        time_namespace(plan, fds)?;
    }
    let tty = if plan.exec_mode {
        // `exec`: setns(mnt) already put us at the container's root.
        // SAFETY: NUL-terminated path.
        let root = unsafe {
            libc::open(
                c"/".as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if root < 0 {
            return Err(Fail::new(Step::RootBind, 2, err()));
        }
        let root = Fd(root);
        match plan.terminal {
            true => Some(open_tty(plan, fds, root.0, false)?),
            false => None,
        }
    } else {
        set_names(plan)?;
        let (root, tty) = prepare_root(plan, fds, &mut go)?;
        // createContainer: in the container's namespaces, before pivot_root.
        super::init_hooks::run_hooks(&plan.create_container_hooks, &fds.hook_stdin, 0)?;
        rootfs::pivot(root.0, plan.no_pivot)?;
        drop(root);
        if plan.rootfs_parent_mount.is_some() {
            // rootfsPropagation "shared"/"rshared": applied to the new root.
            sys::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                plan.root_propagation,
                std::ptr::null(),
            )
            .map_err(|e| Fail::new(Step::RootPropagation, 2, e))?;
        }
        if plan.root_readonly {
            let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
            sys::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
            .map_err(|e| Fail::new(Step::RootReadonly, 0, e))?;
        }
        tty
    };
    // Everything after this point needs the cgroup placement (and exec must
    // happen inside the cgroup).
    go.wait()?;
    // Before capabilities are dropped: realtime classes need CAP_SYS_NICE/ADMIN.
    if let Some(v) = plan.ioprio {
        sys::ioprio_set(v).map_err(|e| Fail::new(Step::Scheduler, 0, e))?;
    }
    if let Some(a) = &plan.sched {
        sys::sched_setattr(a).map_err(|e| Fail::new(Step::Scheduler, 1, e))?;
    }
    for (i, (res, lim)) in plan.rlimits.iter().enumerate() {
        // SAFETY: lim is a valid rlimit struct.
        #[allow(clippy::cast_sign_loss)]
        if unsafe { libc::setrlimit(*res as libc::__rlimit_resource_t, lim) } != 0 {
            return Err(Fail::new(Step::Rlimit, i, err()));
        }
    }
    if let Some(p) = plan.personality {
        // SAFETY: personality with a plain value.
        if unsafe { libc::personality(p) } < 0 {
            return Err(Fail::new(Step::Personality, 0, err()));
        }
    }
    stdio(fds, tty.as_ref().map(|t| t.1.0))?;
    drop(tty);
    if !plan.no_new_privs {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
        // while we still have it (as runc does).
        load_seccomp(plan, fds)?;
    }
    identity(plan)?;
    if let Some(m) = plan.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(m) };
    }
    let candidate = find_executable(plan)?;
    if plan.no_new_privs && plan.seccomp_listener {
        // The listener fd must reach the agent during create, before READY
        // (runc's order); otherwise the filter is loaded as late as possible.
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(|e| Fail::new(Step::NoNewPrivs, 0, e))?;
        load_seccomp(plan, fds)?;
    }
    // CVE-2024-21626: nothing but stdio and the preserved fds may survive execve.
    sys::close_range_cloexec(3 + fds.preserve_fds).map_err(|e| Fail::new(Step::Stdio, 9, e))?;
    for fd in 3..3 + fds.preserve_fds {
        #[allow(clippy::cast_possible_wrap)]
        let _ = sys::clear_cloexec(fd as RawFd);
    }
    Ok(candidate)
}

/// The GO message: the parent writes the id maps, makes the cgroup (and sends
/// its v1 `tasks` fds, or places the child itself: spawn.rs `Placement`) and
/// runs the create hooks, while the child already sets up its mounts; the
/// child waits for GO only where it needs those (early with a user namespace or
/// hooks; else before a cgroup mount, or at the latest before rlimits/exec).
struct Go<'a> {
    fds: &'a InitFds,
    plan: &'a InitPlan,
    done: bool,
}

impl Go<'_> {
    fn wait(&mut self) -> Result<(), Fail> {
        if self.done {
            return Ok(());
        }
        let mut b = [0u8; 1];
        let mut tasks = [-1; sys::MAX_FDS];
        match sys::recv_fds(self.fds.sync, &mut b, &mut tasks) {
            Ok((1, n)) if b[0] == channel::GO => join_cgroup(&tasks[..n])?,
            Ok(_) => return Err(Fail::new(Step::Sync, 0, libc::EPIPE)),
            Err(e) => return Err(Fail::new(Step::Sync, 0, e)),
        }
        self.done = true;
        // After the placement, so the namespace root is the container's cgroup.
        // SAFETY: unshare with a namespace flag.
        if self.plan.unshare_cgroupns && unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
            return Err(Fail::new(Step::SetNs, channel::UNSHARE_CGROUP, err()));
        }
        Ok(())
    }
}

/// Move this process into the cgroup v1 hierarchies whose `tasks` files came
/// with GO (see spawn.rs, `Placement`): "0" is this thread, the only thread.
fn join_cgroup(tasks: &[RawFd]) -> Result<(), Fail> {
    let mut result = Ok(());
    for (i, fd) in tasks.iter().enumerate() {
        if result.is_ok() {
            result = sys::write_all(*fd, b"0").map_err(|e| Fail::new(Step::Cgroup, i, e));
        }
        sys::close(*fd);
    }
    result
}

/// unshare(CLONE_NEWTIME) takes effect for this process at execve; the offsets
/// must be written before that (time_namespaces(7)), through the verified procfs.
fn time_namespace(plan: &InitPlan, fds: &InitFds) -> Result<(), Fail> {
    // SAFETY: unshare with a namespace flag.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        return Err(Fail::new(Step::SetNs, channel::UNSHARE_TIME, err()));
    }
    if let Some(offsets) = &plan.time_offsets {
        let f = |e| Fail::new(Step::SetNs, channel::TIME_OFFSETS, e);
        let fd = Fd(sys::openat2(
            fds.proc_fd,
            c"self/timens_offsets",
            libc::O_WRONLY,
            sys::RESOLVE_BENEATH,
        )
        .map_err(f)?);
        sys::write_all(fd.0, offsets.as_bytes()).map_err(f)?;
    }
    Ok(())
}

/// Every signal to SIG_DFL, none blocked (async-signal-safe calls only).
fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // The raw syscall: glibc's wrappers refuse its reserved signals 32/33.
        // struct kernel_sigaction { handler, flags, restorer, mask }.
        let act: [libc::c_ulong; 4] = [libc::SIG_DFL as libc::c_ulong, 0, 0, 0];
        // SAFETY: a valid kernel_sigaction with an 8-byte mask; no old action.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                act.as_ptr(),
                std::ptr::null::<u8>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty set, then SIG_SETMASK on this (only) thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

fn set_names(plan: &InitPlan) -> Result<(), Fail> {
    if let Some(h) = &plan.hostname {
        // SAFETY: pointer and length of a live CString.
        if unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) } != 0 {
            return Err(Fail::new(Step::Hostname, 0, err()));
        }
    }
    if let Some(d) = &plan.domainname {
        // SAFETY: pointer and length of a live CString.
        if unsafe { libc::setdomainname(d.as_ptr(), d.as_bytes().len()) } != 0 {
            return Err(Fail::new(Step::Hostname, 1, err()));
        }
    }
    Ok(())
}

/// Open the pty and hand the master to the parent (SCM_RIGHTS over the sync socket).
fn open_tty(
    plan: &InitPlan,
    fds: &InitFds,
    root: RawFd,
    bind_console: bool,
) -> Result<(Fd, Fd), Fail> {
    let (master, slave) =
        rootfs::console(root, bind_console).map_err(|e| Fail::new(Step::Console, 0, e))?;
    if let Some((rows, cols)) = plan.console_size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
        if unsafe { libc::ioctl(slave.0, libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(Fail::new(Step::Console, 2, err()));
        }
    }
    sys::send_fd(fds.sync, channel::TAG_PTY, master.0)
        .map_err(|e| Fail::new(Step::Console, 1, e))?;
    Ok((master, slave))
}

/// Step 3 of the module docs: everything done through the host /proc, before pivot.
fn prepare_root(
    plan: &InitPlan,
    fds: &InitFds,
    go: &mut Go<'_>,
) -> Result<(Fd, Option<(Fd, Fd)>), Fail> {
    let null = std::ptr::null();
    match &plan.rootfs_parent_mount {
        // Shared: everything slave, the rootfs' parent private (pivot_root
        // refuses a shared parent); "shared" is applied to "/" after pivot.
        Some(parent) => {
            sys::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_SLAVE | libc::MS_REC,
                null,
            )
            .map_err(|e| Fail::new(Step::RootPropagation, 0, e))?;
            sys::mount(null, parent.as_ptr(), null, libc::MS_PRIVATE, null)
                .map_err(|e| Fail::new(Step::RootPropagation, 1, e))?;
        }
        None => sys::mount(null, c"/".as_ptr(), null, plan.root_propagation, null)
            .map_err(|e| Fail::new(Step::RootPropagation, 0, e))?,
    }
    sys::mount(
        plan.rootfs.as_ptr(),
        plan.rootfs.as_ptr(),
        null,
        libc::MS_BIND | libc::MS_REC,
        null,
    )
    .map_err(|e| Fail::new(Step::RootBind, 0, e))?;
    // Re-open after the bind so the fd names the new mount, not the covered dir.
    // SAFETY: rootfs is NUL-terminated.
    let root = unsafe {
        libc::open(
            plan.rootfs.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if root < 0 {
        return Err(Fail::new(Step::RootBind, 1, err()));
    }
    let root = Fd(root);
    rootfs::mount_all(plan, root.0, &fds.idmap_trees, &mut || go.wait())?;
    rootfs::devices(plan, root.0)?;
    let tty = match plan.terminal {
        true => Some(open_tty(plan, fds, root.0, true)?),
        false => None,
    };
    rootfs::sysctls(plan, fds.proc_fd)?;
    rootfs::mask(plan, root.0)?;
    rootfs::readonly(plan, root.0)?;
    rootfs::mount_late(plan, root.0, &mut || go.wait())?;
    if let Some(cwd) = &plan.cwd_path {
        // Created like runc does; resolved without magic links (CVE-2024-21626).
        rootfs::resolve_create(root.0, cwd, Leaf::Dir).map_err(|e| Fail::new(Step::Cwd, 3, e))?;
    }
    Ok((root, tty))
}

fn stdio(fds: &InitFds, tty: Option<RawFd>) -> Result<(), Fail> {
    let f = |i| Fail::new(Step::Stdio, i, err());
    if let Some(slave) = tty {
        // SAFETY: setsid/ioctl/dup2 on fds we own.
        unsafe {
            if libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
                return Err(f(1));
            }
            for target in 0..3 {
                if libc::dup2(slave, target) < 0 {
                    return Err(f(2));
                }
            }
        }
        return Ok(());
    }
    if let Some(io) = fds.stdio {
        for (target, fd) in io.iter().enumerate() {
            #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
            let target = target as c_int;
            // dup2 onto itself keeps CLOEXEC: clear it explicitly.
            if *fd == target {
                sys::clear_cloexec(target).map_err(|e| Fail::new(Step::Stdio, 3, e))?;
                continue;
            }
            // SAFETY: dup2 on fds the parent passed in.
            if unsafe { libc::dup2(*fd, target) } < 0 {
                return Err(f(4));
            }
        }
    }
    Ok(())
}

/// Groups, uid/gid and the five capability sets, in the order that keeps the
/// permitted set across setresuid (capabilities(7), "KEEPCAPS").
fn identity(plan: &InitPlan) -> Result<(), Fail> {
    if let Some(c) = &plan.caps {
        for cap in 0..=c.last_cap {
            if c.bounding & (1 << cap) == 0 {
                sys::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap))
                    .map_err(|e| Fail::new(Step::Capabilities, 0, e))?;
            }
        }
        sys::prctl(libc::PR_SET_KEEPCAPS, 1).map_err(|e| Fail::new(Step::Capabilities, 1, e))?;
    }
    if sys::setgroups(&plan.groups) != 0 {
        return Err(Fail::new(Step::Groups, 0, err()));
    }
    if sys::setresgid(plan.gid) != 0 {
        return Err(Fail::new(Step::User, 0, err()));
    }
    if sys::setresuid(plan.uid) != 0 {
        return Err(Fail::new(Step::User, 1, err()));
    }
    if let Some(c) = &plan.caps {
        sys::prctl(libc::PR_SET_KEEPCAPS, 0).map_err(|e| Fail::new(Step::Capabilities, 2, e))?;
        sys::capset(c.effective, c.permitted, c.inheritable)
            .map_err(|e| Fail::new(Step::Capabilities, 3, e))?;
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
        }
        for cap in 0..=c.last_cap {
            if c.ambient & (1 << cap) != 0 {
                // SAFETY: prctl with integer arguments.
                if unsafe {
                    libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0)
                } != 0
                {
                    return Err(Fail::new(Step::Capabilities, 4, err()));
                }
            }
        }
    }
    Ok(())
}

/// chdir to cwd and pick the first executable candidate (execvpe(3) order), so a
/// missing program is a `create` error, not a silent exit after `start`.
fn find_executable(plan: &InitPlan) -> Result<usize, Fail> {
    // SAFETY: chdir with a NUL-terminated path, after pivot_root: resolves inside the root.
    if unsafe { libc::chdir(plan.cwd.as_ptr()) } != 0 {
        return Err(Fail::new(Step::Cwd, 0, err()));
    }
    // CVE-2024-21626: the kernel prefixes "(unreachable)" when cwd is outside root.
    let mut buf = [0u8; 256];
    // SAFETY: buf is a valid buffer of the given length.
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if r < 0 && err() != libc::ERANGE {
        return Err(Fail::new(Step::Cwd, 1, err()));
    }
    if r >= 0 && buf[0] != b'/' {
        return Err(Fail::new(Step::Cwd, 2, libc::EXDEV));
    }
    let mut last = libc::ENOENT;
    for (i, c) in plan.exec_candidates.iter().enumerate() {
        // SAFETY: c is NUL-terminated.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            let st = sys::fstat_path(c).map_err(|e| Fail::new(Step::Exec, i, e))?;
            if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                return Ok(i);
            }
            last = libc::EACCES;
        } else if err() != libc::ENOENT {
            last = err();
        }
    }
    Err(Fail::new(Step::Exec, 0, last))
}

/// seccomp(2) with the prepared program; with a listener, the notify fd it
/// returns goes to the parent (sendmsg: the syscall notify rules may not use).
fn load_seccomp(plan: &InitPlan, fds: &InitFds) -> Result<(), Fail> {
    let Some(prog) = &plan.seccomp else {
        return Ok(());
    };
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).unwrap_or(u16::MAX),
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: fprog points at the filter array that lives in the plan.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            plan.seccomp_flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(Fail::new(Step::Seccomp, 0, err()));
    }
    if plan.seccomp_listener {
        #[allow(clippy::cast_possible_truncation)]
        let listener = Fd(r as RawFd);
        sys::send_fd(fds.sync, channel::TAG_SECCOMP, listener.0)
            .map_err(|e| Fail::new(Step::Seccomp, 1, e))?;
    }
    Ok(())
}

/// Report READY, wait for `start`, then execve. Returns the exit code on failure.
fn exec(plan: &InitPlan, fds: &InitFds, candidate: usize) -> c_int {
    if sys::write_all(fds.sync, &[channel::TAG_READY]).is_err() {
        return 1;
    }
    if fds.wait_fifo {
        // Blocks until `start` opens the fifo for reading (runc's exec.fifo).
        // The fd stays open and close-on-exec: `start` returns at its EOF, once
        // execve has replaced this process (or it exited), never before.
        // SAFETY: NUL-terminated name relative to the state dir fd.
        let fifo = unsafe {
            libc::openat(
                fds.state_dir,
                c"exec.fifo".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            )
        };
        if fifo < 0 || sys::write_all(fifo, b"0").is_err() {
            return 1;
        }
    }
    // startContainer: after `start`, before the user's program (config.md).
    let first = plan.create_container_hooks.len();
    if super::init_hooks::run_hooks(&plan.start_container_hooks, &fds.hook_stdin, first).is_err() {
        let _ = sys::write_all(2, b"stack: a startContainer hook failed\n");
        return 1;
    }
    if plan.no_new_privs && !plan.seccomp_listener {
        if sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).is_err() {
            return 1;
        }
        if load_seccomp(plan, fds).is_err() {
            let _ = sys::write_all(2, b"stack: loading the seccomp filter failed\n");
            return 1;
        }
    }
    let path = &plan.exec_candidates[candidate];
    // SAFETY: argv/envp are NULL-terminated arrays of pointers into the plan's
    // CStrings, which live until execve replaces this process.
    unsafe { libc::execve(path.as_ptr(), fds.argv.as_ptr(), fds.envp.as_ptr()) };
    let _ = sys::write_all(2, b"stack: execve of the container process failed\n");
    127
}
