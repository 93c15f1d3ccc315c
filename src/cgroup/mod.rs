//! cgroup v2, v1 and hybrid hierarchies behind one interface.
//!
//! A [`Cgroup`] is a relative path (`stack.slice/web.slice/web-1`) placed in every
//! hierarchy the host has: on cgroup v2 one directory under the cgroup2 mount; on v1
//! one directory per controller mount (`/sys/fs/cgroup/memory/...`, `.../cpu/...`);
//! on a hybrid host (v1 controllers plus cgroup2 at `/sys/fs/cgroup/unified`) both,
//! so that cgroup namespaces, `cgroup.kill` and `unified` keys work too.
//!
//! No trait seam here: the hierarchy roots are plain paths ([`Hierarchy`]), so tests
//! lay out a temp dir like cgroupfs and run the same code (STYLE.md rule 2).
//!
//! Direct cgroupfs code was chosen over `cgroups-rs` (treats hybrid hosts as plain v1,
//! no v2 device control) and over youki's `libcgroups` (pulls systemd/D-Bus code we do
//! not use); the surface needed is small (see DESIGN.md, dependencies).
mod bpf;
mod dbus;
mod fs;
mod hierarchy;
mod stats;
pub mod systemd;
mod v1;
mod v2;

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

pub use hierarchy::Hierarchy;
pub use stats::{BlkioStats, CpuStats, MemoryStats, OomEvents, PidsStats, Stats};

/// Errors of the cgroup layer; each names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup path {0:?} is invalid: it must be relative to the cgroup root without '..'")]
    InvalidPath(PathBuf),
    #[error("no cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("creating cgroup {path}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("removing cgroup {path}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error("{what} is not supported by this host's cgroups: {hint}")]
    Unsupported { what: String, hint: String },
    #[error("cgroup {path} did not reach state {state} within {timeout:?}")]
    Timeout {
        path: PathBuf,
        state: &'static str,
        timeout: Duration,
    },
    #[error("{op}")]
    Sys {
        op: &'static str,
        source: nix::Error,
    },
    #[error("systemd: {op} for unit {unit}: {reason}")]
    Systemd {
        op: &'static str,
        unit: String,
        reason: String,
    },
}

impl Error {
    /// True when the object is already gone (teardown treats that as success).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Remove { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Run a create walk again when a directory on its way vanished. An empty
/// parent shared by others (`stack.slice`, left empty by the last stack's
/// `down`) is rmdir'ed by whoever emptied it, possibly between our mkdir of
/// it and of its child. Once our leaf exists its ancestors are not empty and
/// stay, so a few tries are enough.
fn again_if_vanished(walk: impl Fn() -> Result<()>) -> Result<()> {
    const TRIES: u32 = 5;
    let mut tried = 1;
    loop {
        match walk() {
            Err(
                Error::Create { source, .. }
                | Error::Read { source, .. }
                | Error::Write { source, .. },
            ) if source.kind() == std::io::ErrorKind::NotFound && tried < TRIES => tried += 1,
            done => return done,
        }
    }
}

/// One cgroup, present in every hierarchy of the host.
#[derive(Debug, Clone)]
pub struct Cgroup {
    hierarchy: Hierarchy,
    rel: PathBuf,
}

impl Cgroup {
    /// `path` is relative to the hierarchy root; a leading `/` is accepted (OCI
    /// `cgroupsPath` may be absolute, meaning relative to the root).
    pub fn new(hierarchy: Hierarchy, path: impl AsRef<Path>) -> Result<Self> {
        let rel = normalize(path.as_ref())?;
        Ok(Cgroup { hierarchy, rel })
    }

    /// [`Cgroup::new`] on the hierarchy mounted on this host.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::new(Hierarchy::detect()?, path)
    }

    /// The path relative to the hierarchy root.
    pub fn path(&self) -> &Path {
        &self.rel
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The directories of this cgroup, one per mounted hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.hierarchy
            .roots()
            .into_iter()
            .map(|r| r.join(&self.rel))
            .collect()
    }

    /// True when the cgroup directory exists in the first hierarchy.
    pub fn exists(&self) -> bool {
        self.dirs().first().is_some_and(|d| d.is_dir())
    }

    /// Create the cgroup (and its parents) in every hierarchy. Existing is fine.
    pub fn create(&self) -> Result<()> {
        again_if_vanished(|| match &self.hierarchy {
            Hierarchy::V2 { root } => v2::create(root, &self.rel),
            Hierarchy::V1 { controllers, .. } => {
                v1::create(controllers, &self.rel)?;
                self.unified_walk()
            }
        })
    }

    /// Create the cgroup2 part only: the whole cgroup on v2, the unified
    /// tree's directory on a hybrid host, nothing on pure v1. Existing is fine.
    pub fn create_unified(&self) -> Result<()> {
        again_if_vanished(|| self.unified_walk())
    }

    /// [`Cgroup::create_unified`] once, for a caller that retries the walk.
    fn unified_walk(&self) -> Result<()> {
        match &self.hierarchy {
            Hierarchy::V2 { root } => v2::create(root, &self.rel),
            Hierarchy::V1 {
                unified: Some(u), ..
            } => fs::mkdir_p(&u.join(&self.rel)),
            Hierarchy::V1 { unified: None, .. } => Ok(()),
        }
    }

    /// The cgroup2 directory (v2, or a hybrid host's unified tree): the one a
    /// child can be born into with clone3(CLONE_INTO_CGROUP).
    pub fn unified_dir(&self) -> Option<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V2 { root } => Some(root.join(&self.rel)),
            Hierarchy::V1 { unified, .. } => unified.as_ref().map(|u| u.join(&self.rel)),
        }
    }

    /// The `tasks` file of this cgroup in every v1 hierarchy. A process that
    /// writes "0" there moves itself (its one thread) without the kernel's
    /// global threadgroup lock, unlike a write of its pid to `cgroup.procs`.
    pub fn v1_tasks(&self) -> Vec<PathBuf> {
        let Hierarchy::V1 { unified, .. } = &self.hierarchy else {
            return Vec::new();
        };
        self.hierarchy
            .roots()
            .into_iter()
            .filter(|r| Some(r) != unified.as_ref())
            .map(|r| r.join(&self.rel).join("tasks"))
            .collect()
    }

    /// Move a process into the cgroup2 directory only (see [`Cgroup::unified_dir`]).
    pub fn add_pid_unified(&self, pid: i32) -> Result<()> {
        match self.unified_dir() {
            Some(dir) => fs::write(&dir.join("cgroup.procs"), &pid.to_string()),
            None => Ok(()),
        }
    }

    /// Write the OCI resources to the controller files.
    pub fn apply(&self, res: &LinuxResources) -> Result<()> {
        match &self.hierarchy {
            Hierarchy::V2 { root } => v2::apply(&root.join(&self.rel), res),
            Hierarchy::V1 {
                controllers,
                unified,
            } => {
                v1::apply(controllers, &self.rel, res)?;
                if let Some(keys) = res.unified().as_ref().filter(|k| !k.is_empty()) {
                    let Some(u) = unified else {
                        return Err(Error::Unsupported {
                            what: "linux.resources.unified".into(),
                            hint: "this host has no cgroup2 hierarchy".into(),
                        });
                    };
                    v2::write_unified(&u.join(&self.rel), keys)?;
                }
                Ok(())
            }
        }
    }

    /// Move a process (all its threads) into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The pids in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = self.main_dir();
        let mut out = Vec::new();
        fs::collect_pids(&dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Resource usage now.
    pub fn stats(&self) -> Result<Stats> {
        match &self.hierarchy {
            Hierarchy::V2 { root } => v2::stats(&root.join(&self.rel)),
            Hierarchy::V1 { controllers, .. } => v1::stats(controllers, &self.rel),
        }
    }

    /// OOM counters: `memory.events` on v2, `memory.oom_control` on v1.
    pub fn oom_events(&self) -> Result<OomEvents> {
        match &self.hierarchy {
            Hierarchy::V2 { root } => v2::oom_events(&root.join(&self.rel)),
            Hierarchy::V1 { controllers, .. } => v1::oom_events(controllers, &self.rel),
        }
    }

    /// v1 only: an eventfd that becomes readable on each OOM of the cgroup
    /// (cgroup.event_control + memory.oom_control, cgroups-v1/memory.rst §9).
    /// On v2 watch `memory.events` (inotify/poll) instead: see [`Cgroup::memory_events_file`].
    pub fn oom_eventfd(&self) -> Result<OwnedFd> {
        match &self.hierarchy {
            Hierarchy::V2 { .. } => Err(Error::Unsupported {
                what: "OOM eventfd".into(),
                hint: "on cgroup v2 watch memory.events with inotify".into(),
            }),
            Hierarchy::V1 { controllers, .. } => v1::oom_eventfd(controllers, &self.rel),
        }
    }

    /// v2 only: the `memory.events` file, which changes (inotify IN_MODIFY) on OOM.
    pub fn memory_events_file(&self) -> Option<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V2 { root } => Some(root.join(&self.rel).join("memory.events")),
            Hierarchy::V1 { .. } => None,
        }
    }

    /// The file with the `oom_kill` counter: `memory.events` on v2,
    /// `memory.oom_control` on v1; None without a memory controller.
    pub fn oom_counter_file(&self) -> Option<PathBuf> {
        match &self.hierarchy {
            Hierarchy::V2 { root } => Some(root.join(&self.rel).join("memory.events")),
            Hierarchy::V1 { controllers, .. } => controllers
                .get("memory")
                .map(|r| r.join(&self.rel).join("memory.oom_control")),
        }
    }

    /// Stop every process of the cgroup (freezer) and wait until they are stopped.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Let a frozen cgroup run again.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    /// True when the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer() {
            Freezer::V1(dir) => v1::is_frozen(&dir),
            Freezer::V2(dir) => v2::is_frozen(&dir),
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        match self.freezer() {
            Freezer::V1(dir) => v1::set_frozen(&dir, frozen),
            Freezer::V2(dir) => v2::set_frozen(&dir, frozen),
        }
    }

    /// Send `signal` to every process of the cgroup. SIGKILL uses `cgroup.kill`
    /// where the kernel has it (atomic, races with fork are impossible); otherwise
    /// the cgroup is frozen while the signals are sent so no child escapes.
    pub fn kill_all(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        if signal == nix::sys::signal::Signal::SIGKILL
            && let Some(file) = self.cgroup_kill_file()
        {
            return fs::write(&file, "1");
        }
        let frozen = self.freeze().is_ok();
        let result = self.signal_each(signal);
        if frozen {
            let _ = self.thaw();
        }
        result
    }

    fn signal_each(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        for pid in self.pids()? {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(source) => return Err(Error::Sys { op: "kill", source }),
            }
        }
        Ok(())
    }

    /// Remove the cgroup and its descendants from every hierarchy. Processes must
    /// have exited; EBUSY (the kernel still tearing down exited tasks) is retried
    /// for up to a second. Already gone is success.
    pub fn remove(&self) -> Result<()> {
        let mut first_err = None;
        for dir in self.dirs() {
            if let Err(e) = fs::remove_tree(&dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn main_dir(&self) -> PathBuf {
        match &self.hierarchy {
            Hierarchy::V2 { root } => root.join(&self.rel),
            Hierarchy::V1 {
                controllers,
                unified,
            } => controllers
                .get("pids")
                .or_else(|| controllers.get("memory"))
                .or_else(|| controllers.values().next())
                .or(unified.as_ref())
                .map(|r| r.join(&self.rel))
                .unwrap_or_default(),
        }
    }

    fn freezer(&self) -> Freezer {
        match &self.hierarchy {
            Hierarchy::V2 { root } => Freezer::V2(root.join(&self.rel)),
            Hierarchy::V1 {
                controllers,
                unified,
            } => match (controllers.get("freezer"), unified) {
                (Some(f), _) => Freezer::V1(f.join(&self.rel)),
                (None, Some(u)) => Freezer::V2(u.join(&self.rel)),
                (None, None) => Freezer::V1(self.main_dir()),
            },
        }
    }

    fn cgroup_kill_file(&self) -> Option<PathBuf> {
        let dir = match &self.hierarchy {
            Hierarchy::V2 { root } => root.join(&self.rel),
            Hierarchy::V1 {
                unified: Some(u), ..
            } => u.join(&self.rel),
            Hierarchy::V1 { unified: None, .. } => return None,
        };
        Some(dir.join("cgroup.kill")).filter(|f| f.exists())
    }
}

enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

/// Strip a leading `/`, reject `..` and empty paths.
fn normalize(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => out.push(p),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::InvalidPath(path.into()));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(Error::InvalidPath(path.into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
