//! `ls`: the stacks of a state root.
use crate::reconcile::stacks::{StackRecord, StackStatus};
use crate::state::Roots;
use crate::supervisor::control;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StackRow {
    pub name: String,
    pub status: String,
    pub files: Vec<std::path::PathBuf>,
    /// The daemon reconciles on every change of the files.
    pub watch: bool,
    /// The files do not load since then (the stack runs as it was).
    pub file_error: Option<crate::reconcile::stacks::FileError>,
}

/// Every stack on record, with how many of its containers run.
pub fn stacks(roots: &Roots) -> Result<Vec<StackRow>, control::Error> {
    let mut rows = Vec::new();
    for rec in StackRecord::all(roots) {
        let all = control::observe(&roots.lib, Some(&rec.name))?;
        let up = all.iter().filter(|o| o.is_up()).count();
        let file_error = StackStatus::read(roots, &rec.name).file_error;
        let mut status = format!("running({up}/{})", all.len());
        if let Some(e) = &file_error {
            let first = e.message.lines().next().unwrap_or_default();
            status.push_str(&format!(", file invalid since {}: {first}", clock(e.since)));
        }
        rows.push(StackRow {
            name: rec.name,
            status,
            files: rec.files,
            watch: rec.watch,
            file_error,
        });
    }
    Ok(rows)
}

/// HH:MM (UTC) of a time in seconds since the epoch.
fn clock(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.get(11..16).unwrap_or(&text).to_string()
}
