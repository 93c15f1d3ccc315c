//! Which stack a verb acts on: its name, its state roots and, when a file is
//! needed, the loaded model.
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::GlobalOpts;
use crate::model;
use crate::spec::{self, LoadOptions};
use crate::state::{self, Roots};

pub struct Project {
    pub name: String,
    pub roots: Roots,
}

/// What the state root remembers of a stack: where its files are, so a second
/// checkout with the same name cannot silently take it over.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StackRecord {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub project_dir: PathBuf,
}

impl StackRecord {
    pub fn path(roots: &Roots, name: &str) -> PathBuf {
        roots.lib.join("stacks").join(name).join("stack.json")
    }
}

/// The stack named by `-p`, else by the file.
pub fn resolve(global: &GlobalOpts) -> anyhow::Result<Project> {
    let roots = Roots::new(global.root.as_deref());
    if let Some(name) = &global.project_name {
        return Ok(Project {
            name: name.clone(),
            roots,
        });
    }
    let (loaded, _) = load(global, &[])?;
    Ok(Project {
        name: loaded.stack.name,
        roots,
    })
}

/// Load the stack file(s); warnings are printed here.
pub fn load(global: &GlobalOpts, services: &[String]) -> anyhow::Result<(spec::Loaded, Roots)> {
    let opts = LoadOptions::from_global(global, services.to_vec());
    let loaded = spec::load(&opts).map_err(|d| super::Rendered(d.to_string()))?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok((loaded, Roots::new(global.root.as_deref())))
}

/// Refuse to act on a stack that the state root knows from other files.
pub fn claim(roots: &Roots, stack: &model::Stack, files: &[PathBuf]) -> anyhow::Result<()> {
    let path = StackRecord::path(roots, &stack.name);
    let record = StackRecord {
        name: stack.name.clone(),
        files: files.to_vec(),
        project_dir: stack.project_dir.clone(),
    };
    if let Some(old) = state::read_json::<StackRecord>(&path)? {
        if old.project_dir != record.project_dir {
            bail!(
                "stack `{}` already exists here from {} (files: {}); this file is {}.\n\
                 Use another name (-p NAME or `name =` in the file), or `stack down -p {}` first.",
                stack.name,
                old.project_dir.display(),
                old.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                record.project_dir.display(),
                stack.name
            );
        }
        if old == record {
            return Ok(());
        }
    }
    state::write_json(&path, &record).context("cannot record the stack")?;
    Ok(())
}
