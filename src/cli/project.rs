//! Which stack a verb acts on: its name, its state roots and, when a file is
//! needed, the loaded model.
use super::GlobalOpts;
use crate::spec::{self, LoadOptions};
use crate::state::Roots;

pub struct Project {
    pub name: String,
    pub roots: Roots,
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
    let name = match load(global, &[]) {
        Ok((loaded, _)) => loaded.stack.name,
        Err(e) => recorded(global, &roots).ok_or(e)?,
    };
    Ok(Project { name, roots })
}

/// The stack the state root knows from these files, when they do not load
/// now (a watched stack whose file is being edited): verbs that only need the
/// name (ps, logs, down, ...) still work, with a warning.
pub fn recorded(global: &GlobalOpts, roots: &Roots) -> Option<String> {
    let opts = LoadOptions::from_global(global, Vec::new());
    let files = spec::find_files(&opts).ok()?;
    let record = crate::reconcile::stacks::StackRecord::all(roots)
        .into_iter()
        .find(|r| files.iter().any(|f| r.files.contains(f)))?;
    eprintln!(
        "warning: the stack file does not load now (`stack validate` says why); acting on stack `{}` as recorded",
        record.name
    );
    Some(record.name)
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
