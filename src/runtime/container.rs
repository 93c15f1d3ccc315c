//! Lifecycle verbs of [`Runtime`]: create, start, state, kill, delete, list,
//! pause, resume, ps.
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use super::plan::{self, PlanInput};
use super::spawn::{self, SpawnArgs};
use super::state::{self, Saved, State, Status};
use super::{CreateOptions, Error, Result, Runtime, check_id};
use crate::cgroup::Cgroup;

/// A created container: its init is a child of the process that called `create`.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    /// Host pid of the init (PID 1 inside).
    pub pid: i32,
    /// pidfd of the init (CLONE_PIDFD): poll it for exit, waitid(P_PIDFD) to reap.
    pub pidfd: OwnedFd,
    /// The pty master with `process.terminal` and no console socket.
    pub pty_master: Option<OwnedFd>,
    pub cgroup: Cgroup,
}

/// Undo a half-made create: state dir and cgroup (STYLE rule 6).
struct CreateGuard<'a> {
    dir: &'a Path,
    cgroup: Option<Cgroup>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(cg) = &self.cgroup {
                let _ = cg.remove();
            }
            let _ = std::fs::remove_dir_all(self.dir);
        }
    }
}

fn read_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| Error::Io {
        op: "reading",
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| Error::Config { path, source })
}

/// 0622 like runc: the init may already run as a non-root user (or as an
/// unmapped uid in a user namespace) when it opens the fifo for writing.
fn make_fifo(fifo: &Path) -> Result<()> {
    nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).map_err(
        |source| Error::Sys {
            op: "mkfifo exec.fifo",
            source,
        },
    )?;
    std::fs::set_permissions(fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622)).map_err(
        |source| Error::Io {
            op: "chmod",
            path: fifo.into(),
            source,
        },
    )
}

/// temp + rename, like runc (readers never see a partial pid); no fsync.
pub(super) fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path)
}

/// The runtime-spec version this runtime implements.
pub(crate) const OCI_VERSION: &str = "1.2.0";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Runtime {
    fn dir(&self, id: &str) -> PathBuf {
        self.state_dir.join(id)
    }

    /// Read `bundle/config.json` and create the container (see module docs).
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
        let spec = read_spec(bundle)?;
        self.create_from_spec(id, &spec, bundle, opts)
    }

    /// Create from a Spec value; `bundle` anchors relative paths (root.path, bind sources).
    pub fn create_from_spec(
        &self,
        id: &str,
        spec: &Spec,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<Container> {
        self.create_inner(id, spec, bundle, opts, true)
    }

    /// create + start in one step: the init execs the program as soon as it is
    /// set up (no exec.fifo round trip); poststart hooks run before returning.
    pub fn run_from_spec(
        &self,
        id: &str,
        spec: &Spec,
        bundle: &Path,
        opts: CreateOptions,
    ) -> Result<Container> {
        let c = self.create_inner(id, spec, bundle, opts, false)?;
        if let Some(h) = spec.hooks() {
            let mut st = self.state(id)?;
            st.status = Status::Running;
            st.pid = c.pid;
            super::hooks::run_warn(
                "poststart",
                h.poststart().as_deref().unwrap_or_default(),
                &st,
            );
        }
        Ok(c)
    }

    /// [`Runtime::run_from_spec`] reading `bundle/config.json`.
    pub fn run(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
        let spec = read_spec(bundle)?;
        self.run_from_spec(id, &spec, bundle, opts)
    }

    fn create_inner(
        &self,
        id: &str,
        spec: &Spec,
        bundle: &Path,
        opts: CreateOptions,
        wait_fifo: bool,
    ) -> Result<Container> {
        check_id(id)?;
        let bundle = std::path::absolute(bundle).map_err(|source| Error::Io {
            op: "resolving",
            path: bundle.into(),
            source,
        })?;
        if let Some(h) = spec.hooks() {
            super::hooks::check_supported(h)?;
        }
        let plan = plan::build(&PlanInput {
            spec,
            bundle: &bundle,
            no_pivot: opts.no_pivot,
        })?;
        if plan.terminal && opts.stdio.is_some() {
            return Err(Error::Invalid {
                field: "process.terminal".into(),
                reason: "a terminal replaces stdio; pass no stdio".into(),
            });
        }
        let console = match (&opts.console_socket, plan.terminal) {
            (Some(p), true) => Some(std::os::unix::net::UnixStream::connect(p).map_err(
                |source| Error::Io {
                    op: "connecting console socket",
                    path: p.clone(),
                    source,
                },
            )?),
            (Some(_), false) => {
                return Err(Error::Invalid {
                    field: "--console-socket".into(),
                    reason: "process.terminal is false".into(),
                });
            }
            (None, _) => None,
        };
        let linux = spec.linux().clone().unwrap_or_default();
        let cgroup_path = cgroup_path(linux.cgroups_path().as_deref(), id)?;
        std::fs::create_dir_all(&self.state_dir).map_err(|source| Error::Io {
            op: "creating",
            path: self.state_dir.clone(),
            source,
        })?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.into()));
            }
            Err(source) => {
                return Err(Error::Io {
                    op: "creating",
                    path: dir,
                    source,
                });
            }
        }
        let mut guard = CreateGuard {
            dir: &dir,
            cgroup: None,
            armed: true,
        };
        let config = dir.join("config.json");
        let json = serde_json::to_vec(spec).map_err(|source| Error::Config {
            path: config.clone(),
            source,
        })?;
        std::fs::write(&config, json).map_err(|source| Error::Io {
            op: "writing",
            path: config,
            source,
        })?;
        if wait_fifo {
            make_fifo(&dir.join("exec.fifo"))?;
        }
        let cgroup = Cgroup::open(&cgroup_path)?;
        guard.cgroup = Some(cgroup.clone());
        cgroup.create()?;
        if let Some(res) = linux.resources() {
            cgroup.apply(&super::devices::with_default_rules(
                res,
                linux.devices().as_deref(),
            ))?;
        }
        // prestart + createRuntime: namespaces exist, the init is in its cgroup
        // and still waits for GO, so it has not pivoted yet (config.md, Hooks).
        let rootfs_path = PathBuf::from(plan.rootfs.to_string_lossy().into_owned());
        let annotations = spec.annotations().clone().unwrap_or_default();
        let before_go = |pid: i32| -> Result<()> {
            let Some(h) = spec.hooks() else { return Ok(()) };
            let st = State {
                oci_version: OCI_VERSION.into(),
                id: id.into(),
                status: Status::Creating,
                pid,
                bundle: bundle.clone(),
                annotations: annotations.clone(),
                rootfs: rootfs_path.clone(),
                created: state::rfc3339(now()),
            };
            super::hooks::run("prestart", h.prestart().as_deref().unwrap_or_default(), &st)?;
            super::hooks::run(
                "createRuntime",
                h.create_runtime().as_deref().unwrap_or_default(),
                &st,
            )
        };
        let spawned = spawn::spawn(&SpawnArgs {
            plan: &plan,
            cgroup: Some(&cgroup),
            state_dir: &dir,
            stdio: opts.stdio.as_ref(),
            preserve_fds: opts.preserve_fds,
            wait_fifo,
            before_go: Some(&before_go),
        })?;
        let mut pty_master = spawned.pty_master;
        if let (Some(sock), Some(master)) = (&console, &pty_master) {
            send_console(sock, master)?;
            pty_master = None;
        }
        let saved = Saved {
            id: id.into(),
            pid: spawned.pid,
            pid_start: state::pid_start(spawned.pid).unwrap_or(0),
            bundle: bundle.clone(),
            rootfs: PathBuf::from(plan.rootfs.to_string_lossy().into_owned()),
            cgroup_path: cgroup.path().into(),
            created: now(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            has_hooks: spec.hooks().is_some(),
        };
        let kill_child = || {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(spawned.pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(spawned.pid), None);
        };
        if let Err(e) = state::save(&dir, &saved) {
            kill_child();
            return Err(e);
        }
        if let Some(p) = &opts.pid_file
            && let Err(source) = write_pid_file(p, spawned.pid)
        {
            kill_child();
            return Err(Error::Io {
                op: "writing pid file",
                path: p.clone(),
                source,
            });
        }
        guard.armed = false;
        Ok(Container {
            id: id.into(),
            pid: spawned.pid,
            pidfd: spawned.pidfd,
            pty_master,
            cgroup,
        })
    }

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
                let got = nix::unistd::read(&f, &mut b).unwrap_or(0);
                if got == 1 {
                    break;
                }
            }
            if state::pid_start(saved.pid) != Some(saved.pid_start) {
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

/// OCI cgroupsPath: absolute or relative, both below the hierarchy root;
/// systemd's "slice:prefix:name" form needs systemd (not PID 1 here).
fn cgroup_path(p: Option<&Path>, id: &str) -> Result<PathBuf> {
    match p {
        None => Ok(PathBuf::from("stack-oci").join(id)),
        Some(p) if p.to_string_lossy().contains(':') => Err(Error::Unsupported {
            what: format!("systemd cgroupsPath {}", p.display()),
            hint: "use a cgroupfs path such as /stack.slice/web-1".into(),
        }),
        Some(p) => Ok(p.to_path_buf()),
    }
}

/// Hand the pty master to the console socket (runc's protocol: SCM_RIGHTS with
/// the pty name as payload).
pub(super) fn send_console(sock: &std::os::unix::net::UnixStream, master: &OwnedFd) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(|source| Error::Sys {
        op: "sending pty master to the console socket",
        source,
    })?;
    Ok(())
}
