//! `logs`: the stored output of a stack's containers, in time order, then
//! (when following) what they write next, across restarts and recreations.
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::state::Roots;
use crate::supervisor::control;
use crate::supervisor::logs::{Cursor, Record, files_oldest_first};
use crate::supervisor::record::ContainerPaths;

/// What to show; also the query string of `GET /v1/stacks/{name}/logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Query {
    /// Comma-separated services; all when empty.
    #[serde(default)]
    pub services: String,
    /// Only the last N records of each container.
    pub tail: Option<usize>,
    /// RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
    #[serde(default)]
    pub follow: bool,
}

/// One record of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub container: String,
    #[serde(flatten)]
    pub record: Record,
}

impl Query {
    fn services(&self) -> Vec<&str> {
        self.services.split(',').filter(|s| !s.is_empty()).collect()
    }

    fn window(&self) -> Result<(Option<SystemTime>, Option<SystemTime>), Error> {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .map(humantime::parse_rfc3339_weak)
                .transpose()
                .map_err(|e| Error::Query(format!("since/until: {e}")))
        };
        Ok((parse(&self.since)?, parse(&self.until)?))
    }
}

/// Hand every record of `stack` that `q` selects to `sink`, oldest first, then
/// (with `follow`) every new one until `sink` returns false or `stop()` turns
/// true. A record is handed over once: the history ends where following
/// begins.
pub fn stream(
    roots: &Roots,
    stack: &str,
    q: &Query,
    stop: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(Line) -> bool,
) -> Result<(), Error> {
    let (since, until) = q.window()?;
    let services = q.services();
    let picked = |service: &str| services.is_empty() || services.contains(&service);
    let in_window =
        |r: &Record| since.is_none_or(|s| r.time >= s) && until.is_none_or(|u| r.time <= u);
    let mut cursors: BTreeMap<String, Cursor> = BTreeMap::new();
    let mut history: Vec<Line> = Vec::new();
    for o in control::observe(&roots.lib, Some(stack))?
        .iter()
        .filter(|o| picked(&o.spec.service))
    {
        let path = ContainerPaths::new(&roots.lib, &o.spec.name).log();
        let mut records: Vec<Record> = Vec::new();
        for older in files_oldest_first(&path).into_iter().filter(|f| f != &path) {
            records.extend(io(Cursor::default().read_new::<Record>(&older), &older)?);
        }
        let mut cursor = Cursor::default();
        records.extend(io(cursor.read_new::<Record>(&path), &path)?);
        cursors.insert(o.spec.name.clone(), cursor);
        let records: Vec<Record> = records.into_iter().filter(|r| in_window(r)).collect();
        let skip = q.tail.map_or(0, |n| records.len().saturating_sub(n));
        history.extend(records.into_iter().skip(skip).map(|record| Line {
            container: o.spec.name.clone(),
            record,
        }));
    }
    history.sort_by_key(|l| l.record.time);
    for line in history {
        if !sink(line) {
            return Ok(());
        }
    }
    while q.follow && !stop() && until.is_none_or(|u| SystemTime::now() <= u) {
        for o in control::observe(&roots.lib, Some(stack))?
            .iter()
            .filter(|o| picked(&o.spec.service))
        {
            let path = ContainerPaths::new(&roots.lib, &o.spec.name).log();
            let cursor = cursors.entry(o.spec.name.clone()).or_default();
            for record in io(cursor.read_new::<Record>(&path), &path)? {
                let line = Line {
                    container: o.spec.name.clone(),
                    record,
                };
                if !sink(line) {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Where the output of `stack`'s journald containers (of `services`, all
/// when empty) goes instead of their logs: one line for each whose current
/// run logs to the journal.
pub fn journal_notes(roots: &Roots, stack: &str, services: &[String]) -> Vec<String> {
    control::observe(&roots.lib, Some(stack))
        .unwrap_or_default()
        .iter()
        .filter(|o| services.is_empty() || services.contains(&o.spec.service))
        .filter(|o| o.status.journal)
        .map(|o| {
            format!(
                "{name} logs to the journal (logging.driver journald): journalctl CONTAINER_NAME={name}",
                name = o.spec.name
            )
        })
        .collect()
}

fn io<T>(r: std::io::Result<T>, path: &std::path::Path) -> Result<T, Error> {
    r.map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
