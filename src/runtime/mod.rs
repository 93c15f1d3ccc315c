//! The container runtime: an OCI runtime-spec bundle -> an isolated, limited process.
//!
//! This is the layer runc, crun and youki are; `stack oci ...` (src/cli/oci.rs)
//! exposes it with runc's command line. The supervisor calls [`Runtime`] directly.
//!
//! # Process model
//! [`Runtime::create`] clones the container init *directly from the calling
//! process* (clone(2) with the CLONE_NEW* flags, CLONE_PIDFD and SIGCHLD), so the
//! init is PID 1 of its new pid namespace and a child of the caller, which can
//! waitpid()/poll the pidfd for its exit status. There is no intermediate process
//! and no re-exec of the `stack` binary (CVE-2019-5736; no memfd copy either).
//!
//! Everything the init needs is computed in the parent before clone
//! (`plan::InitPlan`: CStrings, mount plans, capability masks, rlimits, the
//! compiled seccomp BPF program, argv/envp pointer arrays, verified fds); the
//! child then makes only raw syscalls on that data — no allocation, no locks —
//! and reports failures as fixed-size messages (`channel`).
//!
//! **Contract:** prefer calling `create`/`run`/`exec` from a single-threaded
//! process (the supervisor's per-container monitor is forked from the
//! single-threaded CLI before any thread exists; `stack oci` is single-threaded).
//! Multi-threaded callers work too, because the child never enters glibc code
//! that takes locks or walks glibc's (stale, after a raw clone) thread list: no
//! allocation, and the uid/gid/groups changes are raw syscalls — glibc's
//! setresuid/setgroups broadcast to "all threads" and deadlocked the child (found
//! by `tests/oci_library.rs::create_while_other_threads_allocate`).

//! # Lifecycle (runtime-spec "Lifecycle")
//! `create` leaves the init blocked opening `<state>/<id>/exec.fifo` for writing,
//! after all setup and right before execve; `start` opens the fifo for reading,
//! which releases it, and returns once execve has closed the init's end.
//! [`Runtime::run`] does both in one step (the init execs as soon as it is
//! ready; no fifo). `state` derives the status from the process,
//! the fifo and the freezer. `delete` kills what is left, removes the cgroup and
//! the state; a container that is already gone counts as deleted.
//!
//! # Use from the supervisor
//! ```no_run
//! use std::os::fd::OwnedFd;
//! use stack::runtime::{CreateOptions, Runtime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = Runtime::new("/run/stack/runtime".into());
//! let null = || -> std::io::Result<OwnedFd> { Ok(std::fs::File::open("/dev/null")?.into()) };
//! let opts = CreateOptions { stdio: Some([null()?, null()?, null()?]), ..Default::default() };
//! // config.json's linux.cgroupsPath: e.g. "stack.slice/web.slice/web-1".
//! let c = rt.create("web-1", "/var/lib/stack/bundles/web-1".as_ref(), opts)?;
//! rt.start("web-1")?;
//! // c.pid is our child: poll c.pidfd, then waitpid(c.pid) for the exit status;
//! // c.cgroup.oom_events() tells an OOM kill from other SIGKILLs.
//! let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c.pid), None)?;
//! let oom_killed = c.cgroup.oom_events()?.oom_kill > 0;
//! rt.delete("web-1", false)?;
//! # let _ = (status, oom_killed);
//! # Ok(())
//! # }
//! ```
//!
//! # Choices
//! - seccomp: libseccomp (see `seccomp/mod.rs`), compiled in the parent.
//! - Paths inside the root: openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS),
//!   mounts through `/proc/self/fd/N` of the host procfs before pivot_root.
//! - cgroups: [`crate::cgroup`], cgroupfs directly (v1, v2, hybrid); with
//!   [`Runtime::with_systemd_cgroup`] `slice:prefix:name` paths and, where
//!   systemd is PID 1, a transient scope per container over D-Bus (zbus).
//! - idmapped mounts: made in the parent (`idmap.rs`), attached by the init.
//! - seccomp user notification: the listener fd goes init -> parent -> the
//!   agent at `listenerPath` (`seccomp/listener.rs`).
mod caps;
pub use caps::NAMES as CAPABILITY_NAMES;
mod cgroupfs;
mod channel;
mod container;
mod devices;
mod exec;
mod hooks;
mod idmap;
mod init;
mod init_hooks;
mod lifecycle;
mod mountopts;
mod mountplan;
mod personality;
mod plan;
mod process;
mod rootfs;
mod seccomp;
mod spawn;
mod state;
mod sys;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub use container::Container;
pub use exec::{ExecOptions, ExecProcess};
pub use seccomp::default_profile as default_seccomp_profile;
pub use state::{State, Status};
pub(crate) use sys::close_range_cloexec;

/// Errors of the runtime. `kind`-like branching: match the variant, never the text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '-', '.' (not starting with '.')"
    )]
    InvalidId(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("reading {path}")]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{what} is not supported: {hint}")]
    Unsupported { what: String, hint: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}")]
    Sys {
        op: &'static str,
        source: nix::Error,
    },
    #[error("container init failed {step}")]
    Init { step: String, source: nix::Error },
    #[error("container {id} is {status}; {hint}")]
    WrongState {
        id: String,
        status: Status,
        hint: &'static str,
    },
    #[error("{phase} hook {path}: {reason}")]
    Hook {
        phase: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How `create` wires the container's process.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// The container's stdin, stdout, stderr; `None` = inherit the caller's.
    pub stdio: Option<[OwnedFd; 3]>,
    /// With `process.terminal`: a Unix socket that receives the pty master
    /// (SCM_RIGHTS), as runc's `--console-socket`. Without it the master is
    /// returned in [`Container::pty_master`].
    pub console_socket: Option<PathBuf>,
    /// Write the init's host pid here.
    pub pid_file: Option<PathBuf>,
    /// Pass fds 3..3+N of the caller to the container process.
    pub preserve_fds: u32,
    /// MS_MOVE + chroot instead of pivot_root (rootfs on ramfs).
    pub no_pivot: bool,
}

/// The runtime: per-container state lives under `state_dir/<id>/`.
#[derive(Debug, Clone)]
pub struct Runtime {
    state_dir: PathBuf,
    /// `Some`: systemd cgroup driver (`slice:prefix:name` cgroupsPath).
    systemd: Option<crate::cgroup::systemd::SystemdDriver>,
}

impl Runtime {
    /// `state_dir`: `stack oci --root`; default [`Runtime::DEFAULT_STATE_DIR`].
    pub fn new(state_dir: PathBuf) -> Self {
        Runtime {
            state_dir,
            systemd: None,
        }
    }

    /// Use the systemd cgroup driver (runc's `--systemd-cgroup`): see
    /// [`crate::cgroup::systemd`].
    pub fn with_systemd_cgroup(mut self, driver: crate::cgroup::systemd::SystemdDriver) -> Self {
        self.systemd = Some(driver);
        self
    }

    pub const DEFAULT_STATE_DIR: &'static str = "/run/stack/runtime";

    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }
}

/// Names of the capabilities this runtime knows (`CAP_CHOWN`, ...).
pub fn capability_names() -> Vec<String> {
    caps::all_names()
}

/// The recursive mount options (`rro`, `rnosuid`, ...) this runtime applies.
pub fn recursive_mount_options() -> Vec<&'static str> {
    mountopts::recursive_option_names().collect()
}

/// Container ids become directory names: keep them to a safe alphabet.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("web-1.x_y").is_ok());
        for bad in ["", "..", "a/b", ".hidden", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
