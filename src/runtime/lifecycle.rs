//! Lifecycle verbs of [`Runtime`] after create: start, state, kill, delete,
//! list, pause, resume, pids.
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::container::OCI_VERSION;
use super::state::{self, Saved, State, Status};
use super::{Error, Result, Runtime, check_id};
use crate::cgroup::Cgroup;

impl Runtime {
    /// Release a created container's init into the user's program.
    pub fn start(&self, id: &str) -> Result<()> {
        let (saved, status) = self.load(id)?;
        if status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                hint: "only a created container can be started",
            });
        }
        let fifo = self.dir(id).join("exec.fifo");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo)
            .map_err(|source| Error::Io {
                op: "opening",
                path: fifo.clone(),
                source,
            })?;
        // The init writes one byte, then holds the fifo open (close-on-exec)
        // until execve: EOF after the byte means the program runs (or the init
        // exited), so an `exec` right after `start` finds the program.
        let mut released = false;
        loop {
            let mut pfd = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&f),
                nix::poll::PollFlags::POLLIN,
            )];
            let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)).map_err(
                |source| Error::Sys {
                    op: "poll exec.fifo",
                    source,
                },
            )?;
            if n > 0 {
                let mut b = [0u8; 1];
                match nix::unistd::read(&f, &mut b) {
                    Ok(1) => released = true,
                    Ok(0) if released => break,
                    _ => {}
                }
            }
            if !released && state::pid_start(saved.pid) != Some(saved.pid_start) {
                return Err(Error::WrongState {
                    id: id.into(),
                    status: Status::Stopped,
                    hint: "the init exited before start",
                });
            }
        }
        let _ = std::fs::remove_file(&fifo);
        if let Some(h) = saved
            .has_hooks
            .then(|| self.spec(id).ok().and_then(|s| s.hooks().clone()))
            .flatten()
        {
            let mut st = self.state(id)?;
            // The program may already have exited; the hook is told "running".
            st.status = Status::Running;
            st.pid = saved.pid;
            super::hooks::run_warn(
                "poststart",
                h.poststart().as_deref().unwrap_or_default(),
                &st,
            );
        }
        Ok(())
    }

    /// The runtime-spec state of a container.
    pub fn state(&self, id: &str) -> Result<State> {
        let (saved, status) = self.load(id)?;
        Ok(State {
            oci_version: OCI_VERSION.into(),
            id: saved.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                saved.pid
            },
            bundle: saved.bundle,
            annotations: saved.annotations,
            rootfs: saved.rootfs,
            created: state::rfc3339(saved.created),
        })
    }

    /// Send a signal to the init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let (saved, status) = self.load(id)?;
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                hint: "nothing to signal",
            });
        }
        if all {
            return Ok(self.cgroup(&saved)?.kill_all(signal)?);
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(saved.pid), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(Error::Sys { op: "kill", source }),
        }
    }

    /// Remove a container: its processes (only with `force` when running),
    /// cgroup and state. A container that does not exist is already deleted.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        check_id(id)?;
        let dir = self.dir(id);
        if !dir.exists() {
            return Ok(());
        }
        let (saved, status) = match self.load(id) {
            Ok(s) => s,
            // A create that crashed before writing state: nothing runs from it.
            Err(Error::NotFound(_)) => return remove_dir(&dir),
            Err(e) => return Err(e),
        };
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                hint: "stop it first or use --force",
            });
        }
        let cgroup = self.cgroup(&saved)?;
        if status != Status::Stopped {
            if status == Status::Paused {
                let _ = cgroup.thaw();
            }
            let _ = cgroup.kill_all(Signal::SIGKILL);
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(saved.pid), Signal::SIGKILL);
            wait_gone(&saved, &cgroup);
        }
        if let Some(unit) = &saved.systemd_unit {
            // Best effort: systemd also drops a scope once its processes are gone.
            let bus = self.systemd.as_ref().and_then(|d| d.bus.as_deref());
            if let Err(e) = crate::cgroup::systemd::stop_unit(bus, unit) {
                tracing::warn!("{e}");
            }
        }
        cgroup.remove()?;
        if let Some(h) = saved
            .has_hooks
            .then(|| self.spec(id).ok().and_then(|s| s.hooks().clone()))
            .flatten()
        {
            let mut st = self.state(id)?;
            st.status = Status::Stopped;
            super::hooks::run_warn("poststop", h.poststop().as_deref().unwrap_or_default(), &st);
        }
        remove_dir(&dir)
    }

    /// Every container under the state directory.
    pub fn list(&self) -> Result<Vec<State>> {
        let rd = match std::fs::read_dir(&self.state_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    op: "listing",
                    path: self.state_dir.clone(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for entry in rd.flatten() {
            if let Some(id) = entry.file_name().to_str() {
                match self.state(id) {
                    Ok(s) => out.push(s),
                    Err(Error::NotFound(_) | Error::InvalidId(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Freeze every process of the container (cgroup freezer).
    pub fn pause(&self, id: &str) -> Result<()> {
        let (saved, status) = self.load(id)?;
        if status != Status::Running && status != Status::Created {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                hint: "only a running container can be paused",
            });
        }
        Ok(self.cgroup(&saved)?.freeze()?)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (saved, status) = self.load(id)?;
        if status != Status::Paused {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                hint: "only a paused container can be resumed",
            });
        }
        Ok(self.cgroup(&saved)?.thaw()?)
    }

    /// Change the resources of a created or running container (cgroup files).
    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let (saved, status) = self.load(id)?;
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                hint: "nothing to update",
            });
        }
        Ok(self.cgroup(&saved)?.apply(resources)?)
    }

    /// Host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (saved, _) = self.load(id)?;
        Ok(self.cgroup(&saved)?.pids()?)
    }

    /// The container's cgroup (for stats and OOM events).
    pub fn container_cgroup(&self, id: &str) -> Result<Cgroup> {
        let (saved, _) = self.load(id)?;
        self.cgroup(&saved)
    }

    pub(super) fn cgroup(&self, saved: &Saved) -> Result<Cgroup> {
        Ok(Cgroup::open(&saved.cgroup_path)?)
    }

    pub(super) fn load(&self, id: &str) -> Result<(Saved, Status)> {
        check_id(id)?;
        let dir = self.dir(id);
        if !dir.is_dir() {
            return Err(Error::NotFound(id.into()));
        }
        let saved = state::load(&dir, id)?;
        let status = if state::pid_start(saved.pid) != Some(saved.pid_start) {
            Status::Stopped
        } else if dir.join("exec.fifo").exists() {
            Status::Created
        } else if self
            .cgroup(&saved)
            .and_then(|c| Ok(c.is_frozen()?))
            .unwrap_or(false)
        {
            Status::Paused
        } else {
            Status::Running
        };
        Ok((saved, status))
    }
}

use std::os::unix::fs::OpenOptionsExt;

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            op: "removing",
            path: dir.into(),
            source,
        }),
    }
}

/// Wait (up to 5 s) until the init is gone and the cgroup is empty.
fn wait_gone(saved: &Saved, cgroup: &Cgroup) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let init_alive = state::pid_start(saved.pid) == Some(saved.pid_start);
        if !init_alive && cgroup.pids().map_or(true, |p| p.is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
