//! `exec`: a new process in a running container — joins the init's namespaces
//! (via `/proc/<pid>/ns/*`) and cgroup, applies the process' user, capabilities,
//! rlimits, no_new_privs and the container's seccomp filter. Same spawn path as
//! `create` (no re-exec of the runtime), without rootfs setup or exec.fifo.
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::container::connect_console;
use super::plan::{self, InitPlan};
use super::spawn::{self, SpawnArgs};
use super::state::Status;
use super::{Error, Result, Runtime};

/// How `exec` wires the new process.
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// stdin, stdout, stderr of the process; `None` = inherit.
    pub stdio: Option<[OwnedFd; 3]>,
    /// With `process.terminal`: receives the pty master (SCM_RIGHTS).
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// A process started by `exec`: a child of the caller.
#[derive(Debug)]
pub struct ExecProcess {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master with `process.terminal` and no console socket.
    pub pty_master: Option<OwnedFd>,
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

impl Runtime {
    /// The config.json the container was created from.
    pub fn spec(&self, id: &str) -> Result<Spec> {
        let path = self.state_dir.join(id).join("config.json");
        let text = std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(id.into()),
            _ => Error::Io {
                op: "reading",
                path: path.clone(),
                source,
            },
        })?;
        serde_json::from_slice(&text).map_err(|source| Error::Config { path, source })
    }

    /// Run `process` inside the running container `id`.
    pub fn exec(&self, id: &str, process: &Process, opts: ExecOptions) -> Result<ExecProcess> {
        let (saved, status) = self.load(id)?;
        if !matches!(status, Status::Running | Status::Created) {
            return Err(Error::WrongState {
                id: id.into(),
                status,
                hint: "exec needs a running container",
            });
        }
        let mut spec = self.spec(id)?;
        spec.set_process(Some(process.clone()));
        let plan = exec_plan(&spec, saved.pid, &self.state_dir)?;
        let console = connect_console(opts.console_socket.as_deref(), plan.terminal)?;
        let cgroup = self.cgroup(&saved)?;
        let dir = self.state_dir.join(id);
        let spawned = spawn::spawn(&SpawnArgs {
            plan: &plan,
            cgroup: Some(&cgroup),
            placement: spawn::Placement::Init,
            before_place: None,
            state_dir: &dir,
            stdio: opts.stdio.as_ref(),
            preserve_fds: opts.preserve_fds,
            wait_fifo: false,
            before_go: None,
            on_seccomp_fd: Some(&|pid, fd| {
                let linux = spec.linux().clone().unwrap_or_default();
                let st = self.state(id)?;
                super::container::send_listener_fd(linux.seccomp().as_ref(), pid, &st, fd)
            }),
        })?;
        let mut pty_master = spawned.pty_master;
        if let (Some(sock), Some(master)) = (&console, &pty_master) {
            super::container::send_console(sock, master)?;
            pty_master = None;
        }
        if let Some(p) = &opts.pid_file {
            super::container::write_pid_file(p, spawned.pid).map_err(|source| Error::Io {
                op: "writing pid file",
                path: p.clone(),
                source,
            })?;
        }
        Ok(ExecProcess {
            pid: spawned.pid,
            pidfd: spawned.pidfd,
            pty_master,
        })
    }
}

fn exec_plan(spec: &Spec, init_pid: i32, state_dir: &std::path::Path) -> Result<InitPlan> {
    let mut p = InitPlan {
        exec_mode: true,
        ..Default::default()
    };
    let linux = spec.linux().clone().unwrap_or_default();
    for ns in linux.namespaces().iter().flatten() {
        let path = PathBuf::from(format!("/proc/{init_pid}/ns/{}", ns_file(ns.typ())));
        p.join.push((plan::ns_flag(ns.typ()), path));
    }
    super::process::plan(&mut p, spec)?;
    p.cwd_path = None;
    plan::process_linux(&mut p, &linux, Some(state_dir))?;
    Ok(p)
}
