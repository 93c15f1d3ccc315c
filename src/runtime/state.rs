//! Per-container runtime state on disk.
//!
//! Layout under the runtime's state directory (`--root`, default /run/stack/runtime):
//! ```text
//! <id>/state.json   Saved (below), written atomically (temp + rename; no fsync: tmpfs)
//! <id>/config.json  the Spec the container was created from (exec, hooks)
//! <id>/exec.fifo    exists while the container is "created": `start` opens it
//! ```
//! The status is never stored: it is derived from the init process (alive and the
//! same process, by its start time in `/proc/<pid>/stat`), the fifo and the freezer.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub id: String,
    pub pid: i32,
    /// starttime of the init (field 22 of `/proc/<pid>/stat`) against pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub cgroup_path: PathBuf,
    pub created: u64,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// config.json has hooks (start/delete read it only then).
    #[serde(default)]
    pub has_hooks: bool,
    /// The transient systemd unit registered for the container (systemd driver
    /// on a systemd host): stopped on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

/// The runtime-spec state (config-linux "State"), as `stack oci state` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// runc's extra fields, used by callers such as containerd.
    pub rootfs: PathBuf,
    pub created: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

pub(crate) fn load(dir: &Path, id: &str) -> Result<Saved, Error> {
    let path = dir.join("state.json");
    match crate::state::read_json::<Saved>(&path) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(Error::NotFound(id.to_string())),
        Err(source) => Err(Error::Io {
            op: "reading state",
            path,
            source,
        }),
    }
}

/// Atomic (temp + rename) but not fsync'ed: runtime state describes live
/// processes, lives on tmpfs (/run) and means nothing after a reboot; an fsync
/// per container start would cost milliseconds on a disk-backed --root.
pub(crate) fn save(dir: &Path, saved: &Saved) -> Result<(), Error> {
    let path = dir.join("state.json");
    let tmp = dir.join(".state.json.tmp");
    let io = |source| Error::Io {
        op: "writing state",
        path: path.clone(),
        source,
    };
    let data = serde_json::to_vec(saved).map_err(|source| Error::Config {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// starttime of a process, or None when it does not exist (or is a zombie).
pub(crate) fn pid_start(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and ')': fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// RFC 3339 UTC timestamp of a unix time (no chrono dependency for one format).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days -> civil date algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn own_process_has_a_start_time() {
        assert!(pid_start(std::process::id() as i32).is_some());
        assert!(pid_start(i32::MAX).is_none());
    }

    #[test]
    fn state_json_uses_spec_names() {
        let s = State {
            oci_version: "1.2.0".into(),
            id: "a".into(),
            status: Status::Created,
            pid: 7,
            bundle: "/b".into(),
            annotations: HashMap::new(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339(0),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["ociVersion"], "1.2.0");
        assert_eq!(v["status"], "created");
    }
}
