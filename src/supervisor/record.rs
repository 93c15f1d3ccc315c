//! What `stack` stores per container, under `<lib>/containers/<name>/`:
//!
//! ```text
//! spec.json        ContainerSpec: written once by the reconciler at create
//! status.json      ContainerStatus: by `stack __monitor` when a run starts, then
//!                  by the supervisor (health, restarts, the end of a run)
//! exit.json        ExitRecord: by stack-monitor when the run's init exited;
//!                  removed when the next run starts
//! stop-request     a stop in progress (the grace period in ms): by the stopper
//! container.log    output, JSON lines (see logs.rs), rotated as .1, .2, ...
//! monitor.log      diagnostics of the monitor processes
//! bundle/          the OCI bundle: config.json and the rootfs mount point
//! rootfs.json      how the rootfs is mounted (storage::RootfsPlan), for a
//!                  start after a reboot, and the stack's name: by the
//!                  reconciler, first at create (without spec.json: a create
//!                  a crash interrupted)
//! ```
//!
//! One writer at a time per file, every write atomic, so a crash of any side
//! leaves a record the next run can read. The exit of a run is in exit.json
//! even when no supervisor was there to see it.
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::backoff::BackoffConfig;
use crate::state;

/// Where one container's files live.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    pub dir: PathBuf,
}

impl ContainerPaths {
    pub fn new(lib: &Path, name: &str) -> Self {
        ContainerPaths {
            dir: lib.join("containers").join(name),
        }
    }
    pub fn spec(&self) -> PathBuf {
        self.dir.join("spec.json")
    }
    pub fn status(&self) -> PathBuf {
        self.dir.join("status.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    /// A stop in progress: the grace period in milliseconds that the stopper
    /// asked for (written before it signals the monitor).
    pub fn stop_request(&self) -> PathBuf {
        self.dir.join("stop-request")
    }
    /// How the last run ended, written by stack-monitor.
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    /// The last healthcheck probes (JSON), for `inspect`.
    pub fn health_log(&self) -> PathBuf {
        self.dir.join("health.json")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    /// How the root filesystem is mounted (a `storage::RootfsPlan`).
    pub fn rootfs_plan(&self) -> PathBuf {
        self.dir.join("rootfs.json")
    }
    /// The secrets and configs copied into its `files` tmpfs (a list of
    /// `storage::SecretFile`), for a start after a reboot.
    pub fn files_plan(&self) -> PathBuf {
        self.dir.join("files.json")
    }
}

pub use crate::model::RestartPolicy as Restart;

/// Whether a process that exited with `code` after `restarts` earlier restarts
/// should be started again (a user's stop never gets here).
pub fn should_restart(policy: Restart, code: i32, restarts: u32) -> bool {
    match policy {
        Restart::No => false,
        Restart::Always | Restart::UnlessStopped => true,
        Restart::OnFailure { max_retries } => {
            code != 0 && max_retries.is_none_or(|max| restarts < max)
        }
    }
}

/// A service's normalized config as recorded: kept as JSON text and parsed
/// only where it is looked at (`inspect`, the reasons of a plan). The monitor
/// reads the record at every start and never needs it; parsing it into a
/// `Value` was most of that read.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordedConfig(Box<serde_json::value::RawValue>);

impl RecordedConfig {
    pub fn new(config: &serde_json::Value) -> Self {
        // A `Value` always serializes; the default (null) is never reached.
        Self(serde_json::value::to_raw_value(config).unwrap_or_default())
    }

    /// The config (null if the text does not parse, as for a missing one).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl PartialEq for RecordedConfig {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl std::fmt::Debug for RecordedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

/// What the reconciler decided for this container; the monitor reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub stack: String,
    pub service: String,
    pub index: u32,
    pub config_hash: String,
    /// The service's normalized config, for `inspect` and plan reasons.
    pub config: RecordedConfig,
    #[serde(with = "state::rfc3339")]
    pub created: SystemTime,
    pub restart: Restart,
    pub backoff: BackoffConfig,
    /// Signal number sent first on stop.
    pub stop_signal: i32,
    pub stop_grace: Duration,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Where output goes: the json-file log (`container.log`, also for
    /// `local`), nowhere (`none`, with `log_max_size` 0) or the journal.
    #[serde(default)]
    pub log_driver: crate::model::LogDriver,
    /// The rendered `logging.options.tag`: the journal's CONTAINER_TAG and
    /// SYSLOG_IDENTIFIER (else the short id) and `attrs.tag` of each
    /// json-file record (else no `attrs`, as Docker's json-file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tag: Option<String>,
    /// 64 hex digits, chosen at create (Docker's container id shape); empty
    /// in records from before ids, see [`ContainerSpec::id`].
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub healthcheck: Option<crate::model::Healthcheck>,
    #[serde(default)]
    pub on_unhealthy: crate::model::OnUnhealthy,
    /// `tty: true`: the init's stdin, stdout and stderr are a pty; the
    /// monitor holds its master (and logs it as stdout).
    #[serde(default)]
    pub tty: bool,
    /// The short id of a one-off container of `stack run`. It is none of the
    /// service's replicas: `up` neither scales it down nor calls it an orphan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Removed once it ended for good (`stack run -d --rm`; Docker's
    /// AutoRemove), by the daemon's supervisor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_remove: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Created,
    Running,
    Restarting,
    Exited,
    /// Stopped by the user (`stop`, `down`): never restarted by the policy.
    Stopped,
}

/// The state of a container as its monitor and supervisor recorded it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub state: State,
    /// The container's init, in the host's pid namespace.
    pub pid: Option<i32>,
    pub monitor_pid: Option<i32>,
    /// `/proc/<pid>/stat` start time of the monitor: tells a live monitor from a
    /// reused pid after a reboot or crash.
    pub monitor_start_time: Option<u64>,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub restarts: u32,
    pub error: Option<String>,
    /// Healthcheck result; `None` without a healthcheck.
    pub health: Option<Health>,
    /// This run's output goes to the journal (`logging.driver: journald`
    /// with a journal socket there at the start).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub journal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

/// How a run ended (exit.json), as stack-monitor writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The init's exit code, 128+N when signal N killed it.
    pub exit_code: i32,
    pub oom_killed: bool,
    /// The run ended because of `stop` (or a stop signal sent by `kill`): the
    /// restart policy does not apply.
    pub stop_requested: bool,
    /// Seconds since the epoch.
    pub finished_at: u64,
}

impl ExitRecord {
    pub fn read(paths: &ContainerPaths) -> io::Result<Option<Self>> {
        state::read_json(&paths.exit())
    }
}

impl ContainerStatus {
    /// Fold the end of a run into the status: exited, or stopped by the user.
    pub fn ended(&mut self, exit: &ExitRecord) {
        self.state = if exit.stop_requested {
            State::Stopped
        } else {
            State::Exited
        };
        self.pid = None;
        self.exit_code = Some(exit.exit_code);
        self.oom_killed = exit.oom_killed;
        self.finished_at = Some(exit.finished_at);
        self.health = None;
    }

    pub fn read(paths: &ContainerPaths) -> io::Result<Self> {
        Ok(state::read_json(&paths.status())?.unwrap_or_default())
    }
    pub fn write(&self, paths: &ContainerPaths) -> io::Result<()> {
        state::write_json(&paths.status(), self)
    }
}

impl ContainerSpec {
    /// The container's id: the one chosen at create, or for older records
    /// one derived from the name and creation time (stable all the same).
    pub fn id(&self) -> String {
        if !self.id.is_empty() {
            return self.id.clone();
        }
        let created = self
            .created
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hex_digest(&[self.name.as_bytes(), &created.to_le_bytes()])
    }

    pub fn read(paths: &ContainerPaths) -> io::Result<Option<Self>> {
        state::read_json(&paths.spec())
    }
    pub fn write(&self, paths: &ContainerPaths) -> io::Result<()> {
        // The record that the container exists: durable (see state.rs).
        state::write_json_durable(&paths.spec(), self)
    }
}

/// A fresh container id for `name`: 64 hex digits, unique per creation.
pub fn new_id(name: &str) -> String {
    let mut noise = [0u8; 16];
    // Without randomness the time still makes it unique per creation.
    let _ = rustix::rand::getrandom(&mut noise, rustix::rand::GetRandomFlags::empty());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hex_digest(&[name.as_bytes(), &now.to_le_bytes(), &noise])
}

fn hex_digest(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the epoch, for status timestamps.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ_per_creation() {
        let (a, b) = (new_id("web-1"), new_id("web-1"));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn restart_policies() {
        assert!(!should_restart(Restart::No, 1, 0));
        assert!(should_restart(Restart::Always, 0, 100));
        assert!(should_restart(Restart::UnlessStopped, 0, 0));
        let on_failure = Restart::OnFailure {
            max_retries: Some(2),
        };
        assert!(
            !should_restart(on_failure, 0, 0),
            "a clean exit is not a failure"
        );
        assert!(should_restart(on_failure, 1, 1));
        assert!(!should_restart(on_failure, 1, 2), "max retries reached");
        assert!(should_restart(
            Restart::OnFailure { max_retries: None },
            3,
            1000
        ));
    }
}
