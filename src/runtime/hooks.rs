//! OCI hooks (config.md "POSIX-platform Hooks"): host programs run with the
//! container's state JSON on stdin, in the runtime's namespaces.
//!
//! prestart and createRuntime run here, by `create`, after the namespaces exist
//! and the init sits in its cgroup, before it may pivot_root; poststart by
//! `start`, poststop by `delete`. createContainer and startContainer run in the
//! container's namespaces: the init forks and execs them itself (init.rs
//! `run_hooks`), with the state JSON the parent wrote into a pipe per hook.
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use super::state::State;
use super::{Error, Result};

/// Run `hooks` in order; the first failure stops and is returned.
pub(crate) fn run(phase: &'static str, hooks: &[Hook], state: &State) -> Result<()> {
    let json = serde_json::to_vec(state).map_err(|source| Error::Config {
        path: phase.into(),
        source,
    })?;
    for h in hooks {
        run_one(phase, h, &json)?;
    }
    Ok(())
}

/// Run hooks whose failure must not stop the lifecycle (poststart, poststop):
/// the spec says to log a warning and go on.
pub(crate) fn run_warn(phase: &'static str, hooks: &[Hook], state: &State) {
    let Ok(json) = serde_json::to_vec(state) else {
        return;
    };
    for h in hooks {
        if let Err(e) = run_one(phase, h, &json) {
            tracing::warn!(hook = %h.path().display(), phase, error = %e, "hook failed");
        }
    }
}

fn hook_err(phase: &'static str, h: &Hook, reason: String) -> Error {
    Error::Hook {
        phase,
        path: h.path().clone(),
        reason,
    }
}

fn run_one(phase: &'static str, h: &Hook, state: &[u8]) -> Result<()> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args().as_ref().filter(|a| !a.is_empty()) {
        cmd.arg0(&args[0]).args(&args[1..]);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| hook_err(phase, h, format!("cannot start: {e}")))?;
    if let Some(stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored, and
        // must not raise SIGPIPE: that killed `create` mid-way, leaving its
        // state dir, cgroup and a waiting init behind).
        let _ = super::sys::write_all_no_sigpipe(stdin.as_raw_fd(), state);
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(u64::try_from(t.max(1)).unwrap_or(1)));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(hook_err(phase, h, format!("exited with {status}"))),
            Ok(None) => {}
            Err(e) => return Err(hook_err(phase, h, format!("waiting: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(hook_err(
                phase,
                h,
                format!("timed out after {}s", h.timeout().unwrap_or(0)),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
