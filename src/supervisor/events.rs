//! What happened to containers, for `stack events`: one JSON line per event in
//! `<lib>/events.jsonl`, rotated at [`MAX_SIZE`] keeping one older file.
//!
//! Writers are the supervisor (start, die, oom, restart, health_status) and the
//! reconciler (create, destroy), in the daemon or in a CLI acting without one.
//! Each line is one `write(2)` on an `O_APPEND` file, so concurrent writers do
//! not interleave; rotation takes an exclusive `flock` on the file so that no
//! writer appends to a file being renamed.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Size at which the events file rotates (one older file is kept).
pub const MAX_SIZE: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Start,
    Die,
    Oom,
    Restart,
    HealthStatus,
    Stop,
    Kill,
    Destroy,
    /// The stack's files do not load (a watched stack runs on as it was).
    FileInvalid,
    /// Something did not go as the file asks, and what happens instead (a
    /// journald service without a journal logs to its json-file log).
    Warning,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Start => "start",
            Action::Die => "die",
            Action::Oom => "oom",
            Action::Restart => "restart",
            Action::HealthStatus => "health_status",
            Action::Stop => "stop",
            Action::Kill => "kill",
            Action::Destroy => "destroy",
            Action::FileInvalid => "file_invalid",
            Action::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(with = "crate::state::rfc3339")]
    pub time: SystemTime,
    pub action: Action,
    pub stack: String,
    pub service: String,
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `healthy`, `unhealthy`, `starting` for health_status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Anything else worth saying (the signal of a kill, why a start failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    pub fn new(action: Action, stack: &str, service: &str, container: &str) -> Event {
        Event {
            time: SystemTime::now(),
            action,
            stack: stack.into(),
            service: service.into(),
            container: container.into(),
            exit_code: None,
            health: None,
            detail: None,
        }
    }
}

/// The events file of a state root.
pub fn path(lib: &Path) -> PathBuf {
    lib.join("events.jsonl")
}

/// Append one event; failures are logged, never fatal (events are a record,
/// not state).
pub fn emit(lib: &Path, event: &Event) {
    if let Err(e) = append(lib, event) {
        tracing::warn!(error = %e, action = event.action.as_str(), "cannot record the event");
    }
}

fn append(lib: &Path, event: &Event) -> io::Result<()> {
    let path = path(lib);
    let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
    line.push(b'\n');
    std::fs::create_dir_all(lib)?;
    let mut f = open(&path)?;
    if f.metadata()?.len() + line.len() as u64 > MAX_SIZE {
        rotate(&path, &f)?;
        f = open(&path)?;
    }
    f.write_all(&line)
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Rename the full file to `.1` under an exclusive lock; whoever rotated first
/// wins, the others find a small file again.
fn rotate(path: &Path, f: &File) -> io::Result<()> {
    use nix::fcntl::{Flock, FlockArg};
    let dup = f.as_fd().try_clone_to_owned()?;
    let _lock = Flock::lock(File::from(dup), FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::from(e))?;
    if std::fs::metadata(path)?.len() > MAX_SIZE / 2 {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, old)?;
    }
    Ok(())
}

/// Which events to stream; also the query string of
/// `GET /v1/stacks/{name}/events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Query {
    /// Comma-separated services; all when empty.
    #[serde(default)]
    pub services: String,
    /// RFC 3339: replay recorded events since then first.
    pub since: Option<String>,
    /// RFC 3339: end the stream then.
    pub until: Option<String>,
}

/// Hand the events of `stack` that `q` selects to `sink` as they happen
/// (after the replay `since` asks for), until `until`, `stop()`, or `sink`
/// returning false.
pub fn stream(
    lib: &Path,
    stack: &str,
    q: &Query,
    stop: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(Event) -> bool,
) -> io::Result<()> {
    let time = |s: &Option<String>| {
        s.as_deref()
            .map(humantime::parse_rfc3339_weak)
            .transpose()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("since/until: {e}")))
    };
    let (since, until) = (time(&q.since)?, time(&q.until)?);
    let services: Vec<&str> = q.services.split(',').filter(|s| !s.is_empty()).collect();
    let wanted = |e: &Event| {
        e.stack == stack
            && (services.is_empty() || services.contains(&e.service.as_str()))
            && until.is_none_or(|u| e.time <= u)
    };
    let file = path(lib);
    // The cursor is taken before the replay so nothing falls between the two.
    let mut cursor = super::logs::Cursor::at_end(&file);
    if let Some(since) = since {
        for e in read_all(lib)?.into_iter().filter(|e| e.time >= since) {
            if wanted(&e) && !sink(e) {
                return Ok(());
            }
        }
    }
    while !stop() && until.is_none_or(|u| SystemTime::now() < u) {
        for e in cursor.read_new::<Event>(&file)? {
            if wanted(&e) && !sink(e) {
                return Ok(());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}

/// Every recorded event, oldest first.
pub fn read_all(lib: &Path) -> io::Result<Vec<Event>> {
    let path = path(lib);
    let mut out = Vec::new();
    for file in super::logs::files_oldest_first(&path) {
        out.extend(super::logs::Cursor::default().read_new::<Event>(&file)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_appended_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for (i, action) in [Action::Create, Action::Start, Action::Die]
            .into_iter()
            .enumerate()
        {
            let mut e = Event::new(action, "s", "web", "s-web-1");
            e.exit_code = Some(i as i32);
            emit(dir.path(), &e);
        }
        let got: Vec<(Action, Option<i32>)> = read_all(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.exit_code))
            .collect();
        assert_eq!(
            got,
            [
                (Action::Create, Some(0)),
                (Action::Start, Some(1)),
                (Action::Die, Some(2))
            ]
        );
    }

    #[test]
    fn a_full_file_rotates_and_nothing_is_lost_from_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Event::new(Action::Start, "s", "web", "s-web-1");
        e.detail = Some("x".repeat(1000));
        let n = (MAX_SIZE / 1000 + 10) as i32;
        for i in 0..n {
            e.exit_code = Some(i);
            emit(dir.path(), &e);
        }
        assert!(dir.path().join("events.jsonl.1").exists());
        let got: Vec<i32> = read_all(dir.path())
            .unwrap()
            .iter()
            .filter_map(|e| e.exit_code)
            .collect();
        assert_eq!(got.last(), Some(&(n - 1)));
        assert!(
            got.windows(2).all(|w| w[1] == w[0] + 1),
            "what is kept is contiguous"
        );
    }
}
