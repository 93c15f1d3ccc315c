//! What the state root remembers of each stack, under
//! `<lib>/stacks/<name>/stack.json`: where its files are (so a second checkout
//! with the same name cannot silently take it over) and how it was loaded (so
//! a daemon can load it again when the files change or after a restart).
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::LoadOptions;
use crate::state::{self, Roots};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StackRecord {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub project_dir: PathBuf,
    /// How `up` loaded the files; None for records of older versions.
    #[serde(default)]
    pub load: Option<LoadOptions>,
    /// The daemon reconciles the stack whenever its files change.
    #[serde(default)]
    pub watch: bool,
    /// Every file to watch: the stack files and what they read (.env,
    /// env_file, secret and config files).
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// The stacks directory file this stack comes from (removing the file
    /// brings the stack down).
    #[serde(default)]
    pub source: Option<PathBuf>,
}

/// What the daemon says of a stack's files (`status.json` beside the record).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StackStatus {
    /// The files as they are now do not load: the stack runs as it was.
    #[serde(default)]
    pub file_error: Option<FileError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileError {
    /// Seconds since the epoch.
    pub since: u64,
    /// Rendered as the CLI prints it, with file:line:col.
    pub message: String,
}

impl StackStatus {
    pub fn path(roots: &Roots, name: &str) -> PathBuf {
        roots.lib.join("stacks").join(name).join("status.json")
    }

    pub fn read(roots: &Roots, name: &str) -> StackStatus {
        state::read_json(&Self::path(roots, name))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn write(&self, roots: &Roots, name: &str) -> io::Result<()> {
        state::write_json_durable(&Self::path(roots, name), self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "stack `{name}` already exists here from {old_dir} (files: {old_files}); this file is {new_dir}.\n\
         Use another name (-p NAME or `name =` in the file), or `stack down -p {name}` first."
    )]
    Taken {
        name: String,
        old_dir: String,
        old_files: String,
        new_dir: String,
    },
    #[error("cannot record the stack: {0}")]
    Io(#[from] io::Error),
}

impl StackRecord {
    pub fn path(roots: &Roots, name: &str) -> PathBuf {
        roots.lib.join("stacks").join(name).join("stack.json")
    }

    pub fn read(roots: &Roots, name: &str) -> io::Result<Option<StackRecord>> {
        state::read_json(&Self::path(roots, name))
    }

    /// Every recorded stack, by name.
    pub fn all(roots: &Roots) -> Vec<StackRecord> {
        let Ok(dir) = std::fs::read_dir(roots.lib.join("stacks")) else {
            return Vec::new();
        };
        let mut out: Vec<StackRecord> = dir
            .flatten()
            .filter_map(|e| {
                Self::read(roots, &e.file_name().to_string_lossy())
                    .ok()
                    .flatten()
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Forget the stack (after `down`).
    pub fn remove(roots: &Roots, name: &str) {
        if let Some(dir) = Self::path(roots, name).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl StackRecord {
    /// The record of a loaded stack.
    pub fn of(loaded: &crate::spec::Loaded, load: Option<&LoadOptions>, watch: bool) -> Self {
        let mut inputs = loaded.files.clone();
        inputs.extend(loaded.inputs.iter().cloned());
        StackRecord {
            name: loaded.stack.name.clone(),
            files: loaded.files.clone(),
            project_dir: loaded.stack.project_dir.clone(),
            load: load.cloned(),
            watch,
            inputs,
            source: None,
        }
    }
}

/// Record the stack; refuse one that the state root knows from another
/// project directory.
pub fn claim(roots: &Roots, record: &StackRecord) -> Result<(), ClaimError> {
    let stack = record;
    if let Some(old) = StackRecord::read(roots, &stack.name)? {
        if old.project_dir != record.project_dir {
            return Err(ClaimError::Taken {
                name: stack.name.clone(),
                old_dir: old.project_dir.display().to_string(),
                old_files: old
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                new_dir: record.project_dir.display().to_string(),
            });
        }
        if &old == record {
            return Ok(());
        }
    }
    state::write_json_durable(&StackRecord::path(roots, &stack.name), record)?;
    Ok(())
}
