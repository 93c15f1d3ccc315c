//! `stack exec SERVICE CMD...`: run a command in a running container of the
//! stack, with its exit code passed through.
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::GlobalOpts;
use crate::reconcile::ocispec::resolve_user;
use crate::reconcile::runtime_dir;
use crate::runtime::{ExecOptions, Runtime};
use crate::supervisor::control;
use crate::supervisor::record::ContainerPaths;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// No pseudo-terminal (the default when stdin is not a terminal).
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Run as this user: name, uid, or uid:gid.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Extra environment variable KEY=VALUE (repeatable).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Which replica of the service.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// The service.
    pub service: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let observed = control::observe(&project.roots.lib, Some(&project.name))?;
    let Some(o) = observed
        .iter()
        .find(|o| o.spec.service == args.service && o.spec.index == args.index)
    else {
        bail!(
            "service {} has no container {} in stack {}",
            args.service,
            args.index,
            project.name
        );
    };
    if !o.is_up() {
        bail!("{} is not running", o.spec.name);
    }
    let rt = Runtime::new(runtime_dir(&project.roots.run));
    let spec = rt
        .spec(&o.spec.name)
        .with_context(|| format!("{} is not running", o.spec.name))?;
    let mut p = spec
        .process()
        .clone()
        .context("the container has no process")?;
    let tty = !args.no_tty && std::io::stdin().is_terminal();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(dir) = &args.workdir {
        p.set_cwd(dir.into());
    }
    if let Some(user) = &args.user {
        let rootfs = ContainerPaths::new(&project.roots.lib, &o.spec.name)
            .bundle()
            .join("rootfs");
        let (uid, gid, _) = resolve_user(user, &[], &rootfs, &args.service)?;
        p.user_mut().set_uid(uid);
        p.user_mut().set_gid(gid);
    }
    let proc = rt
        .exec(&o.spec.name, &p, ExecOptions::default())
        .with_context(|| format!("exec in {}", o.spec.name))?;
    if let Some(master) = proc.pty_master {
        super::oci_tty::proxy(master)?;
    }
    Ok(ExitCode::from(super::oci::wait_exit(proc.pid)?))
}
