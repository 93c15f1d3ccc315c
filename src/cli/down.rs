//! `stack down`: stop and remove a stack's containers, networks and cgroups.
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalOpts;
use super::project::{StackRecord, load};
use crate::reconcile::{self, Ctx, DownOptions};
use crate::state::Roots;

#[derive(Args, Debug)]
pub struct DownArgs {
    /// Also remove the stack's named and anonymous volumes (never external ones).
    #[arg(short, long)]
    pub volumes: bool,
    /// Also remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short, long)]
    pub timeout: Option<u64>,
}

pub fn run(global: &GlobalOpts, args: DownArgs) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    // With -p and no file, act on what the state root knows of that stack.
    let loaded = match (&global.project_name, global.files.is_empty()) {
        (Some(_), true) => None,
        _ => Some(load(global, &[])?.0),
    };
    let name = match &loaded {
        Some(l) => l.stack.name.clone(),
        None => global.project_name.clone().unwrap_or_default(),
    };
    let ctx = Ctx::open(roots.clone())?;
    let opts = DownOptions {
        remove_orphans: args.remove_orphans || loaded.is_none(),
        volumes: args.volumes,
        timeout: args.timeout.map(Duration::from_secs),
    };
    let errors = reconcile::down(
        &ctx,
        &name,
        loaded.as_ref().map(|l| &l.stack),
        &opts,
        &super::up::print_event,
    );
    if errors.is_empty() {
        let record = StackRecord::path(&roots, &name);
        if let Some(dir) = record.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Ok(ExitCode::SUCCESS);
    }
    for e in &errors {
        eprintln!("error: {}", crate::supervisor::launcher::error_chain(e));
    }
    Ok(ExitCode::FAILURE)
}
