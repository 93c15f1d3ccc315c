//! The parent side of clone: open and verify the fds the init needs, clone
//! (into the cgroup2 directory), write id maps, make the cgroup, release the
//! init with GO (and its v1 `tasks` fds), wait for READY.
use std::ffi::CString;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use libc::c_int;
use nix::sys::socket::{self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};

use super::channel::{self, Fail, Step};
use super::init::{self, InitFds};
use super::plan::InitPlan;
use super::{Error, Result, sys};
use crate::cgroup::Cgroup;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// What the caller gets back from a spawned init.
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub pty_master: Option<OwnedFd>,
}

/// Who moves the init into its cgroup.
///
/// Moving a process with a write of its pid to `cgroup.procs` takes the
/// kernel's global threadgroup lock for writing, and the first writer after a
/// quiet spell waits for an RCU grace period: 5-10 ms on this 2-CPU VM, more
/// than a whole container start otherwise takes (measured: bench/RESULTS.md).
/// A child born into its cgroup2 directory (clone3 CLONE_INTO_CGROUP) and a
/// single-threaded process writing "0" to a v1 `tasks` file (itself) skip
/// that lock, so the init places itself that way when it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// CLONE_INTO_CGROUP for the cgroup2 tree; the v1 `tasks` files go to the
    /// init with GO. Used unless the plan waits for GO early (user namespace
    /// maps, hooks that must see the init in its cgroup before GO).
    Init,
    /// This process writes the pid to every `cgroup.procs`, after
    /// `before_place` (systemd places the init in its unit first).
    Parent,
}

/// Inputs besides the plan.
pub(crate) struct SpawnArgs<'a> {
    pub plan: &'a InitPlan,
    pub cgroup: Option<&'a Cgroup>,
    pub placement: Placement,
    /// Runs with the child's pid before it is added to `cgroup` (creates the
    /// cgroup; the systemd driver registers its unit first).
    pub before_place: Option<&'a dyn Fn(i32) -> Result<()>>,
    pub state_dir: &'a Path,
    pub stdio: Option<&'a [OwnedFd; 3]>,
    pub preserve_fds: u32,
    /// Namespaces to join by path, plus the pid namespace (joined by the parent
    /// around clone: setns(CLONE_NEWPID) only affects children).
    pub wait_fifo: bool,
    /// Runs after clone, id maps and cgroup placement, before GO (hooks).
    /// Returns the state JSON given to in-container hooks.
    pub before_go: Option<&'a dyn Fn(i32) -> Result<Vec<u8>>>,
    /// Receives the seccomp listener fd (with `plan.seccomp_listener`), while the
    /// init waits: it forwards it to the seccomp agent (`seccomp::listener`).
    pub on_seccomp_fd: Option<&'a dyn Fn(i32, OwnedFd) -> Result<()>>,
}

fn open_verified(path: &std::ffi::CStr, flags: c_int) -> Result<OwnedFd> {
    // SAFETY: NUL-terminated path; the fd is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::Sys {
            op: "open",
            source: nix::Error::last(),
        });
    }
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Host /proc, checked to really be procfs (CVE-2025-52881).
pub(crate) fn open_proc() -> Result<OwnedFd> {
    let fd = open_verified(c"/proc", libc::O_PATH | libc::O_DIRECTORY)?;
    match sys::fstatfs_type(fd.as_raw_fd()) {
        Ok(PROC_SUPER_MAGIC) => Ok(fd),
        _ => Err(Error::Unsupported {
            what: "/proc".into(),
            hint: "/proc is not a procfs mount".into(),
        }),
    }
}

/// Write a file under `/proc/<pid>/` through the verified procfs fd.
pub(crate) fn write_proc(proc_fd: RawFd, rel: &str, value: &str) -> Result<()> {
    let c = CString::new(rel).map_err(|_| Error::Invalid {
        field: rel.into(),
        reason: "NUL".into(),
    })?;
    let fd = sys::openat2(
        proc_fd,
        &c,
        libc::O_WRONLY,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| Error::Sys {
        op: "open /proc file",
        source: nix::Error::from_raw(e),
    })?;
    let fd = sys::Fd(fd);
    sys::write_all(fd.0, value.as_bytes()).map_err(|e| Error::Io {
        op: "writing",
        path: Path::new("/proc").join(rel),
        source: std::io::Error::from_raw_os_error(e),
    })
}

fn open_ns(path: &Path) -> Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Invalid {
        field: "namespace path".into(),
        reason: "NUL".into(),
    })?;
    open_verified(&c, libc::O_RDONLY).map_err(|_| Error::Io {
        op: "opening namespace",
        path: path.into(),
        source: std::io::Error::last_os_error(),
    })
}

/// `fd` itself when it is >= `min`, else a close-on-exec duplicate >= `min`.
fn above(fd: OwnedFd, min: RawFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        Ok(fd)
    } else {
        dup_above(&fd, min)
    }
}

fn dup_above(fd: &OwnedFd, min: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd that we own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(Error::Sys {
            op: "fcntl(F_DUPFD_CLOEXEC)",
            source: nix::Error::last(),
        });
    }
    // SAFETY: new is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Clone the init and bring it to READY. On error the child is killed and reaped.
pub(crate) fn spawn(a: &SpawnArgs<'_>) -> Result<Spawned> {
    let plan = a.plan;
    // Every fd the init uses sits above the preserved range 3..3+N, so that
    // clearing close-on-exec on that range never leaks one of ours, and stdio
    // sources never collide with their dup2 targets 0..2.
    #[allow(clippy::cast_possible_wrap)]
    let low = 3 + a.preserve_fds as RawFd;
    let raise = |fd: OwnedFd| above(fd, low);
    let proc_fd = raise(open_proc()?)?;
    let state_dir = raise(open_verified(
        &CString::new(a.state_dir.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::InvalidId("state dir".into()))?,
        libc::O_PATH | libc::O_DIRECTORY,
    )?)?;
    let stdio = match a.stdio {
        Some(s) => Some([
            dup_above(&s[0], low)?,
            dup_above(&s[1], low)?,
            dup_above(&s[2], low)?,
        ]),
        None => None,
    };
    let mut join_pid = None;
    let mut join = Vec::new();
    let mut ns_fds = Vec::new();
    let mut joins: Vec<_> = plan.join.iter().collect();
    joins.sort_by_key(|(flag, _)| *flag != libc::CLONE_NEWUSER);
    for (flag, path) in joins {
        let fd = raise(open_ns(path)?)?;
        if *flag == libc::CLONE_NEWPID {
            join_pid = Some(fd);
        } else {
            join.push((*flag, fd.as_raw_fd()));
            ns_fds.push(fd);
        }
    }
    // One pipe per in-container hook: its stdin, filled with the state JSON
    // once the pid is known (before GO).
    let n_hooks = plan.create_container_hooks.len() + plan.start_container_hooks.len();
    let mut hook_pipes = Vec::with_capacity(n_hooks);
    for _ in 0..n_hooks {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|source| Error::Sys { op: "pipe", source })?;
        hook_pipes.push((raise(r)?, raise(w)?));
    }
    // Idmapped mounts: made here, in the host namespaces (see idmap.rs).
    let mut kernel = super::idmap::Kernel {
        proc_fd: proc_fd.as_raw_fd(),
    };
    let idmap_trees = super::idmap::prepare(&mut kernel, &plan.idmaps)?
        .into_iter()
        .map(raise)
        .collect::<Result<Vec<_>>>()?;
    let (parent_sock, child_sock) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| Error::Sys {
        op: "socketpair",
        source,
    })?;
    let (parent_sock, child_sock) = (raise(parent_sock)?, raise(child_sock)?);
    let mut argv: Vec<*const libc::c_char> = plan.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let fds = InitFds {
        sync: child_sock.as_raw_fd(),
        proc_fd: proc_fd.as_raw_fd(),
        state_dir: state_dir.as_raw_fd(),
        join,
        stdio: stdio
            .as_ref()
            .map(|s| [s[0].as_raw_fd(), s[1].as_raw_fd(), s[2].as_raw_fd()]),
        preserve_fds: a.preserve_fds,
        argv,
        envp,
        wait_fifo: a.wait_fifo,
        hook_stdin: hook_pipes.iter().map(|(r, _)| r.as_raw_fd()).collect(),
        close: hook_pipes
            .iter()
            .map(|(_, w)| w.as_raw_fd())
            .chain([parent_sock.as_raw_fd()])
            .collect(),
        idmap_trees: idmap_trees.iter().map(|t| t.as_raw_fd()).collect(),
    };
    let self_place = match a.cgroup {
        Some(cg) if a.placement == Placement::Init && !plan.early_go => Some(cg),
        _ => None,
    };
    // The caller made the cgroup2 directory (a fresh container's) or it exists
    // (exec joins a running one).
    let into = self_place
        .and_then(Cgroup::unified_dir)
        .map(|d| open_dir(&d))
        .transpose()?;
    let (pid, pidfd, born_in) = clone_init(plan, &fds, join_pid.as_ref(), into.as_ref())?;
    drop(child_sock);
    let mut guard = ChildGuard { pid, armed: true };
    let writers: Vec<OwnedFd> = hook_pipes.into_iter().map(|(_, w)| w).collect();
    let place = match self_place {
        Some(cg) => Place::Init {
            cgroup: cg,
            born_in,
        },
        None => Place::Parent,
    };
    match release(a, place, pid, proc_fd.as_raw_fd(), &parent_sock, writers) {
        Ok(pty_master) => {
            guard.armed = false;
            Ok(Spawned {
                pid,
                pidfd,
                pty_master,
            })
        }
        // The child runs ahead of GO: if it failed meanwhile, its report is the
        // better error than ours (e.g. ESRCH placing a dead child in a cgroup).
        Err(e) => Err(pending_fail(a.plan, &parent_sock).unwrap_or(e)),
    }
}

/// How the init gets into its cgroup (see [`Placement`]).
enum Place<'a> {
    /// It was born in the cgroup2 directory when `born_in` (else clone3 is
    /// missing and this process moves it there); it joins v1 itself.
    Init {
        cgroup: &'a Cgroup,
        born_in: bool,
    },
    Parent,
}

/// Open a cgroup file or directory; `op` names it in the error.
fn open_cgroup(path: &Path, flags: nix::fcntl::OFlag, op: &'static str) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|source| Error::Sys { op, source })
}

/// A cgroup directory, opened for CLONE_INTO_CGROUP (O_PATH fds do not do).
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    open_cgroup(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        "opening the cgroup directory",
    )
}

/// Open the v1 `tasks` files the init writes itself into.
fn open_tasks(cgroup: &Cgroup) -> Result<Vec<OwnedFd>> {
    cgroup
        .v1_tasks()
        .iter()
        .map(|p| {
            open_cgroup(
                p,
                nix::fcntl::OFlag::O_WRONLY,
                "opening a cgroup tasks file",
            )
        })
        .collect()
}

/// Clone the init: with `into`, by clone3 straight into that cgroup2
/// directory (the bool says so); without clone3 (before 5.7), by clone.
fn clone_init(
    plan: &InitPlan,
    fds: &InitFds,
    join_pid: Option<&OwnedFd>,
    into: Option<&OwnedFd>,
) -> Result<(i32, OwnedFd, bool)> {
    let saved_pid_ns = match join_pid {
        Some(target) => {
            let own = open_verified(c"/proc/self/ns/pid", libc::O_RDONLY)?;
            nix::sched::setns(target, nix::sched::CloneFlags::CLONE_NEWPID).map_err(|source| {
                Error::Sys {
                    op: "setns pid",
                    source,
                }
            })?;
            Some(own)
        }
        None => None,
    };
    let mut pidfd: c_int = -1;
    let mut flags = plan.clone_flags | libc::CLONE_PIDFD;
    if plan.unshare_net {
        flags &= !libc::CLONE_NEWNET;
    }
    #[allow(clippy::cast_sign_loss)]
    let flags = flags as u64;
    let mut r = match into.map(|dir| clone3_into(plan, fds, flags, dir, &mut pidfd)) {
        Some(Err(err)) => {
            restore_pid_ns(saved_pid_ns);
            return Err(Error::Sys {
                op: "clone3 into the cgroup",
                source: err,
            });
        }
        Some(Ok(Some(pid))) => pid,
        // No clone3 with a cgroup here, or no cgroup2 tree: clone below.
        Some(Ok(None)) | None => -1,
    };
    let born_in = r > 0;
    if r < 0 {
        // SAFETY: clone without CLONE_VM and without a new stack behaves like
        // fork(2): the child gets a copy of this address space and returns 0 on
        // the same stack. It only runs init::run, which never returns (execve
        // or _exit).
        r = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags | libc::SIGCHLD as u64,
                0usize,
                &mut pidfd as *mut c_int,
                0usize,
                0usize,
            )
        };
        if r == 0 {
            init::run(plan, fds);
        }
    }
    let clone_err = nix::Error::last();
    restore_pid_ns(saved_pid_ns);
    if r < 0 {
        return Err(Error::Sys {
            op: "clone",
            source: clone_err,
        });
    }
    #[allow(clippy::cast_possible_truncation)]
    let pid = r as i32;
    // SAFETY: CLONE_PIDFD stored a new fd owned by us.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }, born_in))
}

/// clone3 with CLONE_INTO_CGROUP `dir`: the child's pid, or None on a kernel
/// without it (ENOSYS before 5.3, E2BIG or EINVAL for the cgroup field before
/// 5.7). In the child, runs the init.
fn clone3_into(
    plan: &InitPlan,
    fds: &InitFds,
    flags: u64,
    dir: &OwnedFd,
    pidfd: &mut c_int,
) -> std::result::Result<Option<libc::c_long>, nix::Error> {
    let args = sys::CloneArgs {
        flags: flags | sys::CLONE_INTO_CGROUP,
        pidfd: pidfd as *mut c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        #[allow(clippy::cast_sign_loss)]
        cgroup: dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: as clone in clone_init; clone3 without a stack also runs the
    // child on a copy of this stack.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const sys::CloneArgs,
            std::mem::size_of::<sys::CloneArgs>(),
        )
    };
    match r {
        0 => init::run(plan, fds),
        r if r > 0 => Ok(Some(r)),
        _ => match nix::Error::last() {
            nix::Error::ENOSYS | nix::Error::E2BIG | nix::Error::EINVAL => Ok(None),
            err => Err(err),
        },
    }
}

fn restore_pid_ns(saved: Option<OwnedFd>) {
    if let Some(own) = saved {
        let _ = nix::sched::setns(own, nix::sched::CloneFlags::CLONE_NEWPID);
    }
}

/// Parent steps between clone and READY.
fn release(
    a: &SpawnArgs<'_>,
    place: Place<'_>,
    pid: i32,
    proc_fd: RawFd,
    sock: &OwnedFd,
    hook_writers: Vec<OwnedFd>,
) -> Result<Option<OwnedFd>> {
    let plan = a.plan;
    if let Some(m) = &plan.uid_map {
        write_proc(proc_fd, &format!("{pid}/uid_map"), m)?;
    }
    if let Some(m) = &plan.gid_map {
        write_proc(proc_fd, &format!("{pid}/gid_map"), m)?;
    }
    if let Some(f) = a.before_place {
        f(pid)?;
    }
    let tasks = match (place, a.cgroup) {
        (Place::Init { cgroup, born_in }, _) => {
            if !born_in {
                cgroup.add_pid_unified(pid)?;
            }
            open_tasks(cgroup)?
        }
        (Place::Parent, Some(cg)) => {
            cg.add_pid(pid)?;
            Vec::new()
        }
        (Place::Parent, None) => Vec::new(),
    };
    if let Some(adj) = plan.oom_score_adj {
        write_proc(proc_fd, &format!("{pid}/oom_score_adj"), &adj.to_string())?;
    }
    if let Some(f) = a.before_go {
        let state = f(pid)?;
        for w in hook_writers {
            // A pipe holds 64 KiB: far more than a state document. An init
            // that died meanwhile closed the read end: an error, not SIGPIPE.
            sys::write_all_no_sigpipe(w.as_raw_fd(), &state).map_err(|e| Error::Sys {
                op: "writing hook state",
                source: nix::Error::from_raw(e),
            })?;
        }
    }
    // A child that already failed has closed its end: the FAIL it queued is read
    // below, so a failed send is not an error by itself.
    let raw: Vec<RawFd> = tasks.iter().map(AsRawFd::as_raw_fd).collect();
    let rights = [socket::ControlMessage::ScmRights(&raw)];
    let cmsgs: &[socket::ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    let _ = socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(&[channel::GO])],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    );
    drop(tasks);
    let mut pty = None;
    loop {
        let mut buf = [0u8; 16];
        let mut cmsg = nix::cmsg_space!(RawFd);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = socket::recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|source| Error::Sys {
            op: "sync recv",
            source,
        })?;
        let mut received = None;
        for c in msg.cmsgs().map_err(|source| Error::Sys {
            op: "sync cmsg",
            source,
        })? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: fds received with SCM_RIGHTS are new fds owned by us.
                received = fds.first().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
        let n = msg.bytes;
        match buf.first().copied() {
            _ if n == 0 => return Err(init_died(pid)),
            Some(channel::TAG_READY) => return Ok(pty),
            Some(channel::TAG_PTY) => pty = received,
            Some(channel::TAG_SECCOMP) => match (received, a.on_seccomp_fd) {
                (Some(fd), Some(forward)) => forward(pid, fd)?,
                _ => {
                    return Err(Error::Init {
                        step: "handing over the seccomp listener fd".into(),
                        source: nix::Error::EPROTO,
                    });
                }
            },
            Some(channel::TAG_FAIL) => {
                let fail =
                    Fail::decode(&buf[..n]).unwrap_or(Fail::new(Step::Sync, 0, libc::EPROTO));
                return Err(describe(plan, fail));
            }
            _ => return Err(init_died(pid)),
        }
    }
}

/// A FAIL message already queued on the sync socket, if any.
fn pending_fail(plan: &InitPlan, sock: &OwnedFd) -> Option<Error> {
    let mut buf = [0u8; 16];
    let n = socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).ok()?;
    Fail::decode(&buf[..n]).map(|f| describe(plan, f))
}

fn init_died(pid: i32) -> Error {
    Error::Init {
        step: format!("(pid {pid} exited before it was ready)"),
        source: nix::Error::EPIPE,
    }
}

/// Turn a child's Fail into an error naming the mount/path involved.
fn describe(plan: &InitPlan, f: Fail) -> Error {
    let i = f.index as usize;
    let item = match f.step {
        Step::Mount => plan
            .mounts
            .iter()
            .chain(&plan.late_mounts)
            .nth(i)
            .map(|m| m.dest.display.clone()),
        Step::Device => plan.devices.get(i).map(|d| d.path.display.clone()),
        Step::Mask => plan.masked.get(i).map(|p| p.display.clone()),
        Step::Readonly => plan.readonly.get(i).map(|p| p.display.clone()),
        Step::Sysctl => plan
            .sysctl
            .get(i)
            .map(|s| s.0.to_string_lossy().into_owned()),
        Step::Exec => plan.args.first().map(|a| a.to_string_lossy().into_owned()),
        Step::Cwd => Some(plan.cwd.to_string_lossy().into_owned()),
        Step::Hook => plan
            .create_container_hooks
            .iter()
            .chain(&plan.start_container_hooks)
            .nth(i)
            .map(|h| format!("{} (createContainer)", h.path.to_string_lossy())),
        _ => None,
    };
    let step = match (f.step, item) {
        // The namespaces the child unshares itself (see init::setup).
        (Step::SetNs, _) if i == channel::UNSHARE_NET => "creating the network namespace".into(),
        (Step::SetNs, _) if i == channel::TIME_OFFSETS => {
            "writing the time namespace offsets".into()
        }
        (Step::SetNs, _) if i == channel::UNSHARE_TIME => "creating the time namespace".into(),
        (_, Some(item)) => format!("{} {item}", f.step.describe()),
        (_, None) => f.step.describe().to_string(),
    };
    Error::Init {
        step,
        source: nix::Error::from_raw(f.errno),
    }
}

/// Kills and reaps the child if setup fails before it is handed to the caller.
struct ChildGuard {
    pid: i32,
    armed: bool,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.armed {
            let pid = nix::unistd::Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}
