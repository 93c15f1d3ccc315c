//! The monitor's [`Launcher`] on the real runtime: one OCI container per launch,
//! created from the bundle the reconciler wrote, deleted after every exit.
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sys::signal::Signal;

use super::monitor::Launcher;
use crate::cgroup::Cgroup;
use crate::runtime::{CreateOptions, ExecOptions, Runtime};

pub struct RuntimeLauncher {
    pub runtime: Runtime,
    pub id: String,
    pub bundle: PathBuf,
    cgroup: Option<Cgroup>,
    /// OOM kills counted before this run, so each run reports only its own.
    oom_kills_before: u64,
}

impl RuntimeLauncher {
    pub fn new(runtime: Runtime, id: String, bundle: PathBuf) -> Self {
        RuntimeLauncher {
            runtime,
            id,
            bundle,
            cgroup: None,
            oom_kills_before: 0,
        }
    }
}

impl Launcher for RuntimeLauncher {
    fn launch(&mut self, stdout: OwnedFd, stderr: OwnedFd) -> Result<i32, String> {
        // A runtime record left by a monitor that died mid-run is stale now.
        let _ = self.runtime.delete(&self.id, true);
        let stdin: OwnedFd = File::open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?
            .into();
        let opts = CreateOptions {
            stdio: Some([stdin, stdout, stderr]),
            ..Default::default()
        };
        let container = self
            .runtime
            .create(&self.id, &self.bundle, opts)
            .map_err(|e| error_chain(&e))?;
        self.oom_kills_before = container
            .cgroup
            .oom_events()
            .map(|e| e.oom_kill)
            .unwrap_or(0);
        self.cgroup = Some(container.cgroup);
        if let Err(e) = self.runtime.start(&self.id) {
            let _ = self.runtime.delete(&self.id, true);
            return Err(error_chain(&e));
        }
        Ok(container.pid)
    }

    fn reap(&mut self) -> bool {
        // Read the OOM counter before delete removes the cgroup, or it is lost.
        let oom = self
            .cgroup
            .take()
            .and_then(|cg| cg.oom_events().ok())
            .is_some_and(|e| e.oom_kill > self.oom_kills_before);
        if let Err(e) = self.runtime.delete(&self.id, true) {
            eprintln!("monitor {}: delete: {}", self.id, error_chain(&e));
        }
        oom
    }

    fn kill_all(&mut self) {
        let _ = self.runtime.kill(&self.id, Signal::SIGKILL, true);
    }

    fn exec(&mut self, argv: &[String], stdout: OwnedFd, stderr: OwnedFd) -> Result<i32, String> {
        let spec = self.runtime.spec(&self.id).map_err(|e| error_chain(&e))?;
        let mut process = spec
            .process()
            .clone()
            .ok_or("the container has no process")?;
        process.set_args(Some(argv.to_vec()));
        process.set_terminal(Some(false));
        let stdin: OwnedFd = File::open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?
            .into();
        let opts = ExecOptions {
            stdio: Some([stdin, stdout, stderr]),
            ..Default::default()
        };
        let p = self
            .runtime
            .exec(&self.id, &process, opts)
            .map_err(|e| error_chain(&e))?;
        Ok(p.pid)
    }

    fn reaps_orphans(&self) -> bool {
        true
    }
}

/// An error with its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
