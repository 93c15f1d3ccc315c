//! A fork server for monitors. The daemon starts `stack __spawner` once and
//! sends it each container to start; the spawner forks the monitor from
//! itself instead of the daemon exec'ing `stack __monitor` per start.
//!
//! Why: an exec of this 25 MB binary costs ~2.5 ms of CPU here (the page
//! faults of its relocated data and of the text it touches, the loader), a
//! fork of the small single-threaded spawner a tenth of that, and `up` starts
//! a monitor per container on few cores. The daemon cannot fork monitors
//! itself: it is multi-threaded, and a monitor runs arbitrary code (the
//! runtime, allocations) after the fork.
//!
//! Protocol: a SOCK_SEQPACKET pair, the spawner's end its stdin. One message
//! per start: the container's name, with two descriptors, the monitor's
//! stderr (its `monitor.log`) and the write end of the pipe on which it
//! reports `ok` or `error: ...` as `__monitor` does on its stdout. The
//! monitor is the spawner's child, reaped by the kernel; like `__monitor`'s
//! second half, it outlives the daemon (reparented to init, or the nearest
//! subreaper, once the spawner ends). EOF on the socket (the daemon is gone)
//! ends the spawner.
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, setsockopt, socketpair, sockopt,
};
use nix::sys::time::TimeVal;
use nix::unistd::{ForkResult, fork};

use crate::state::Roots;

static ENABLED: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<Spawner>> = Mutex::new(None);

/// How long a start may wait for the spawner to take its request.
const SEND_TIMEOUT_SECS: i64 = 5;

/// Names are short; a longer message is not ours.
const MAX_NAME: usize = 1024;

/// Start monitors through a spawner from now on (the daemon, which starts
/// many; a CLI starting one would pay an extra exec).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

struct Spawner {
    sock: OwnedFd,
    child: Child,
    /// The `--root` it was started with: it serves only that root.
    root: Option<PathBuf>,
}

impl Drop for Spawner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Have the spawner start the monitor of `name`: true when the request went
/// out (the monitor reports on `ready`), false when there is no spawner for
/// `roots` and none can be started (the caller execs `__monitor` itself).
pub(super) fn request(roots: &Roots, name: &str, diag: &File, ready: &OwnedFd) -> bool {
    if !ENABLED.load(Ordering::Relaxed) || name.len() > MAX_NAME {
        return false;
    }
    let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    // A spawner that died (killed, or out of memory) is replaced once.
    for _ in 0..2 {
        if current.as_ref().is_none_or(|s| s.root != roots.custom) {
            *current = match start(roots) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the monitor spawner; exec'ing monitors");
                    return false;
                }
            };
        }
        let Some(spawner) = current.as_ref() else {
            return false;
        };
        let fds = [diag.as_raw_fd(), ready.as_raw_fd()];
        let sent = sendmsg::<()>(
            spawner.sock.as_raw_fd(),
            &[IoSlice::new(name.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        match sent {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "the monitor spawner is gone; starting another");
                *current = None;
            }
        }
    }
    false
}

fn start(roots: &Roots) -> io::Result<Spawner> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    // Its queue holds only net.unix.max_dgram_qlen requests (10 by default),
    // so a burst of starts waits for it; one that stopped reading (SIGSTOP)
    // is replaced after SEND_TIMEOUT instead of holding every start.
    setsockopt(
        &ours,
        sockopt::SendTimeout,
        &TimeVal::new(SEND_TIMEOUT_SECS, 0),
    )?;
    let mut cmd = crate::self_exe::command();
    cmd.env_remove("STACK_ROOT");
    if let Some(root) = &roots.custom {
        cmd.arg("--root").arg(root);
    }
    cmd.arg("__spawner")
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null());
    // Out of our process group: a Ctrl-C to a daemon in the foreground is the
    // daemon's to handle; the spawner ends with it, on EOF.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn()?;
    Ok(Spawner {
        sock: ours,
        child,
        root: roots.custom.clone(),
    })
}

/// What a forked monitor gets: the container's name, its stderr, and the
/// pipe to report readiness on.
pub struct Start {
    pub name: String,
    pub diag: OwnedFd,
    pub ready: File,
}

/// The spawner's loop on `sock`: fork a monitor per request, running
/// `monitor` in it (a monitor that returns exits 1). Returns at EOF.
///
/// The monitors are the spawner's children, reaped by the kernel
/// (SIGCHLD ignored): no wait, and one fork per start rather than a double
/// fork whose middle child pays an exit. When the spawner ends, they are
/// reparented to init (or the nearest subreaper) and outlive it.
pub fn serve(sock: OwnedFd, monitor: &dyn Fn(Start)) -> io::Result<()> {
    // SAFETY: setting a disposition to SIG_IGN installs no handler.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }?;
    loop {
        let Some(start) = receive(&sock)? else {
            return Ok(());
        };
        // SAFETY: the spawner is single-threaded, so the child may run
        // arbitrary code after fork.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(sock);
                // The monitor waits for its container: SIGCHLD is its again
                // (an ignored SIGCHLD would survive its exec, too).
                // SAFETY: restoring the default disposition installs no handler.
                if let Err(e) = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) } {
                    report(start.ready, &format!("cannot reset SIGCHLD: {e}"));
                    std::process::exit(1)
                }
                monitor(start);
                std::process::exit(1)
            }
            Ok(ForkResult::Parent { .. }) => drop(start),
            Err(e) => report(start.ready, &format!("cannot fork the monitor: {e}")),
        }
    }
}

fn report(mut ready: File, err: &str) {
    use std::io::Write;
    let _ = writeln!(ready, "error: {err}");
}

/// The next request, skipping malformed ones; None at EOF.
fn receive(sock: &OwnedFd) -> io::Result<Option<Start>> {
    loop {
        let mut buf = [0u8; MAX_NAME];
        let mut cmsg = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let n = msg.bytes;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: descriptors received with SCM_RIGHTS are new, ours.
                fds.extend(raw.iter().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) }));
            }
        }
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        let name = std::str::from_utf8(&buf[..n]).ok().map(str::to_owned);
        let mut fds = fds.into_iter();
        match (name, fds.next(), fds.next(), fds.next()) {
            (Some(name), Some(diag), Some(ready), None) if !name.is_empty() => {
                return Ok(Some(Start {
                    name,
                    diag,
                    ready: File::from(ready),
                }));
            }
            _ => tracing::warn!("monitor spawner: malformed request ignored"),
        }
    }
}
