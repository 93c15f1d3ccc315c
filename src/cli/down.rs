//! `stack down`: stop and remove a stack's containers, networks and cgroups.
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::project::load;
use super::{GlobalOpts, remote};
use crate::daemon::proto::DownRequest;
use crate::reconcile::DownOptions;
use crate::spec::LoadOptions;
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
    let load = loaded.map(|_| {
        let mut l = LoadOptions::from_global(global, Vec::new());
        l.environment = Some(std::env::vars().collect());
        l
    });
    let req = DownRequest {
        load,
        options: DownOptions {
            remove_orphans: args.remove_orphans,
            volumes: args.volumes,
            timeout: args.timeout.map(Duration::from_secs),
        },
    };
    Ok(remote::call(&roots, &format!("/v1/stacks/{name}/down"), &req)?.code)
}
