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
