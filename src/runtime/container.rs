//! Lifecycle verbs of [`Runtime`]: create, start, state, kill, delete, list,
//! pause, resume, ps.
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use super::plan::{self, PlanInput};
use super::spawn::{self, SpawnArgs};
use super::state::{self, Saved, State, Status};
use super::{CreateOptions, Error, Result, Runtime, check_id};
use crate::cgroup::Cgroup;
use crate::cgroup::systemd::Unit;

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
    /// The cgroup's OOM kills before the init ran anything of its own (a
    /// cgroup left by an earlier run keeps its count): an exit with more was
    /// an OOM kill.
    pub oom_kills_before: u64,
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
    pub(super) fn dir(&self, id: &str) -> PathBuf {
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
        // Borrowed: a clone would copy the seccomp profile (most of the spec).
        let linux: std::borrow::Cow<oci_spec::runtime::Linux> = match spec.linux() {
            Some(l) => std::borrow::Cow::Borrowed(l),
            None => std::borrow::Cow::Owned(Default::default()),
        };
        let (cgroup, unit) = self.cgroup_for(linux.cgroups_path().as_deref(), id)?;
        let plan = plan::build(&PlanInput {
            spec,
            bundle: &bundle,
            no_pivot: opts.no_pivot,
            cgroup_path: cgroup.path(),
            state_dir: Some(&self.state_dir),
        })?;
        if plan.terminal && opts.stdio.is_some() {
            return Err(Error::Invalid {
                field: "process.terminal".into(),
                reason: "a terminal replaces stdio; pass no stdio".into(),
            });
        }
        let console = connect_console(opts.console_socket.as_deref(), plan.terminal)?;
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
        guard.cgroup = Some(cgroup.clone());
        let resources = linux
            .resources()
            .as_ref()
            .map(|r| super::devices::with_default_rules(r, linux.devices().as_deref()));
        let oom_kills_before = std::cell::Cell::new(0);
        let make_cgroup = || -> Result<()> {
            cgroup.create()?;
            if let Some(r) = &resources {
                cgroup.apply(r)?;
            }
            oom_kills_before.set(cgroup.oom_events().map(|e| e.oom_kill).unwrap_or(0));
            Ok(())
        };
        // The cgroup is made after clone: meanwhile the init makes its network
        // namespace and mounts, on the other CPU; it waits for GO before it
        // needs the cgroup. Only the cgroup2 directory comes first, for the
        // init to be born in (spawn::Placement). With a systemd unit, systemd
        // places the init first.
        if unit.is_none() {
            cgroup.create_unified()?;
        }
        let register = |pid: i32| -> Result<()> {
            if let (Some(u), Some(d)) = (&unit, &self.systemd) {
                let what = format!("stack container {id}");
                crate::cgroup::systemd::start_unit(d.bus.as_deref(), u, pid, &what)?;
            }
            make_cgroup()
        };
        // prestart + createRuntime: namespaces exist, the init is in its cgroup
        // and still waits for GO, so it has not pivoted yet (config.md, Hooks).
        let rootfs_path = PathBuf::from(plan.rootfs.to_string_lossy().into_owned());
        let annotations = spec.annotations().clone().unwrap_or_default();
        let creating = |pid: i32| State {
            oci_version: OCI_VERSION.into(),
            id: id.into(),
            status: Status::Creating,
            pid,
            bundle: bundle.clone(),
            annotations: annotations.clone(),
            rootfs: rootfs_path.clone(),
            created: state::rfc3339(now()),
        };
        let before_go = |pid: i32| -> Result<Vec<u8>> {
            let Some(h) = spec.hooks() else {
                return Ok(Vec::new());
            };
            let st = creating(pid);
            super::hooks::run("prestart", h.prestart().as_deref().unwrap_or_default(), &st)?;
            super::hooks::run(
                "createRuntime",
                h.create_runtime().as_deref().unwrap_or_default(),
                &st,
            )?;
            // The state for the in-container hooks (createContainer, startContainer).
            serde_json::to_vec(&st).map_err(|source| Error::Config {
                path: "state".into(),
                source,
            })
        };
        let spawned = spawn::spawn(&SpawnArgs {
            plan: &plan,
            cgroup: Some(&cgroup),
            placement: match unit {
                Some(_) => spawn::Placement::Parent,
                None => spawn::Placement::Init,
            },
            before_place: Some(&register),
            state_dir: &dir,
            stdio: opts.stdio.as_ref(),
            preserve_fds: opts.preserve_fds,
            wait_fifo,
            before_go: Some(&before_go),
            on_seccomp_fd: Some(&|pid, fd| {
                send_listener_fd(linux.seccomp().as_ref(), pid, &creating(pid), fd)
            }),
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
            systemd_unit: unit.as_ref().map(|u| u.name.clone()),
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
            oom_kills_before: oom_kills_before.get(),
        })
    }
}

impl Runtime {
    /// The container's cgroup and, with the systemd driver where systemd runs,
    /// the unit to register for it (see `crate::cgroup::systemd`).
    fn cgroup_for(&self, p: Option<&Path>, id: &str) -> Result<(Cgroup, Option<Unit>)> {
        let Some(driver) = &self.systemd else {
            return Ok((Cgroup::open(cgroup_path(p, id)?)?, None));
        };
        let text = p.map(|p| p.to_string_lossy().into_owned());
        let unit = crate::cgroup::systemd::unit(text.as_deref(), id)?;
        let cgroup = Cgroup::open(&unit.path)?;
        if driver.systemd_running() {
            Ok((cgroup, Some(unit)))
        } else {
            crate::cgroup::systemd::note_cgroupfs_fallback(driver, &unit.path);
            Ok((cgroup, None))
        }
    }
}

/// OCI cgroupsPath for the cgroupfs driver: absolute or relative, both below
/// the hierarchy root.
fn cgroup_path(p: Option<&Path>, id: &str) -> Result<PathBuf> {
    match p {
        None => Ok(PathBuf::from("stack-oci").join(id)),
        Some(p) if p.to_string_lossy().contains(':') => Err(Error::Unsupported {
            what: format!("systemd cgroupsPath {}", p.display()),
            hint: "pass --systemd-cgroup (stack oci) for slice:prefix:name paths, or use a \
                   cgroupfs path such as /stack.slice/web-1"
                .into(),
        }),
        Some(p) => Ok(p.to_path_buf()),
    }
}

/// The seccomp listener fd of process `pid` to `linux.seccomp.listenerPath`.
pub(super) fn send_listener_fd(
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
    pid: i32,
    state: &State,
    fd: OwnedFd,
) -> Result<()> {
    let Some(path) = seccomp.and_then(|s| s.listener_path().as_deref()) else {
        return Err(Error::Invalid {
            field: "linux.seccomp.listenerPath".into(),
            reason: "missing".into(),
        });
    };
    let metadata = seccomp.and_then(|s| s.listener_metadata().as_deref());
    super::seccomp::listener::send(path, metadata, pid, state, fd)
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

/// The `--console-socket` for a process with a terminal (runc's protocol); a
/// socket without a terminal is a caller error.
pub(super) fn connect_console(
    socket: Option<&Path>,
    terminal: bool,
) -> Result<Option<std::os::unix::net::UnixStream>> {
    match (socket, terminal) {
        (Some(p), true) => std::os::unix::net::UnixStream::connect(p)
            .map(Some)
            .map_err(|source| Error::Io {
                op: "connecting console socket",
                path: p.to_path_buf(),
                source,
            }),
        (Some(_), false) => Err(Error::Invalid {
            field: "--console-socket".into(),
            reason: "process.terminal is false".into(),
        }),
        (None, _) => Ok(None),
    }
}
