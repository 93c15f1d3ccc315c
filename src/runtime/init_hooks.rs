//! In-container hooks (createContainer, startContainer), run by the init: a
//! fork + execve of prepared data, waited for with the hook's timeout. Same
//! raw-syscall rules as `init.rs`.
use std::os::fd::RawFd;

use libc::c_int;

use super::channel::{Fail, Step};
use super::plan::HookPlan;

fn err() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Fork and exec each hook with its state pipe as stdin, waiting for it (and
/// killing it at its timeout). `first` offsets into `stdin`.
pub(crate) fn run_hooks(hooks: &[HookPlan], stdin: &[RawFd], first: usize) -> Result<(), Fail> {
    for (i, h) in hooks.iter().enumerate() {
        let fd = stdin.get(first + i).copied().unwrap_or(-1);
        // SAFETY: clone without CLONE_VM = fork, from this single-threaded init;
        // the child only dup2s and execs prepared data.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err(Fail::new(Step::Hook, first + i, err()));
        }
        if pid == 0 {
            // SAFETY: dup2/execve/_exit on prepared fds and NUL-terminated arrays.
            unsafe {
                if fd >= 0 {
                    libc::dup2(fd, 0);
                }
                libc::execve(h.path.as_ptr(), h.argv.as_ptr(), h.envp.as_ptr());
                libc::_exit(127);
            }
        }
        #[allow(clippy::cast_possible_truncation)]
        wait_hook(pid as libc::pid_t, h.timeout_secs)
            .map_err(|e| Fail::new(Step::Hook, first + i, e))?;
    }
    Ok(())
}

fn monotonic_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

fn wait_hook(pid: libc::pid_t, timeout_secs: Option<u64>) -> Result<(), c_int> {
    let deadline =
        timeout_secs.map(|t| monotonic_ms() + i64::try_from(t).unwrap_or(i64::MAX / 2000) * 1000);
    let mut status = 0;
    loop {
        let flags = if deadline.is_some() { libc::WNOHANG } else { 0 };
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            return if ok { Ok(()) } else { Err(libc::ECANCELED) };
        }
        if r < 0 && err() != libc::EINTR {
            return Err(err());
        }
        if deadline.is_some_and(|d| monotonic_ms() >= d) {
            // SAFETY: kill and reap our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(libc::ETIMEDOUT);
        }
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: nanosleep with a valid timespec.
        unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
    }
}
