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
    let (loaded, name) = match (&global.project_name, global.files.is_empty()) {
        (Some(name), true) => (None, name.clone()),
        _ => match load(global, &[]) {
            Ok((l, _)) => {
                let name = l.stack.name.clone();
                (Some(l), name)
            }
            // A broken file of a known stack: everything of it goes.
            Err(e) => (None, super::project::recorded(global, &roots).ok_or(e)?),
        },
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
