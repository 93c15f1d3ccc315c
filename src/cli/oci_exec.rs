//! `stack oci exec`: runc's exec command line over [`Runtime::exec`].
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use oci_spec::runtime::{Capability, Process};

use crate::runtime::{ExecOptions, Runtime};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// process.json to run (runc's --process); otherwise the container's process
    /// with the arguments and options given here.
    #[arg(long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (needs --console-socket).
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Add a capability (repeatable), e.g. CAP_NET_ADMIN.
    #[arg(long = "cap", value_name = "CAP")]
    pub caps: Vec<String>,
    #[arg(long)]
    pub no_new_privs: bool,
    /// Return once the process runs.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    /// Command and arguments (after the id).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(rt: &Runtime, a: ExecArgs) -> anyhow::Result<ExitCode> {
    let process = process(rt, &a)?;
    if process.terminal() == Some(true) && a.console_socket.is_none() && a.detach {
        bail!("--tty with --detach needs --console-socket");
    }
    let opts = ExecOptions {
        stdio: None,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    };
    let p = rt
        .exec(&a.id, &process, opts)
        .with_context(|| format!("exec in container {}", a.id))?;
    if a.detach {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(master) = p.pty_master {
        super::oci_tty::proxy(master)?;
    }
    Ok(ExitCode::from(super::oci::wait_exit(p.pid)?))
}

fn process(rt: &Runtime, a: &ExecArgs) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_slice(&text)
            .with_context(|| format!("parsing {}", path.display()));
    }
    if a.args.is_empty() {
        bail!("exec needs a command (or --process FILE)");
    }
    let spec = rt.spec(&a.id)?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        p.user_mut().set_uid(
            uid.parse()
                .with_context(|| format!("--user {u}: numeric UID[:GID]"))?,
        );
        p.user_mut().set_gid(
            gid.parse()
                .with_context(|| format!("--user {u}: numeric UID[:GID]"))?,
        );
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &a.caps {
            let name = c.strip_prefix("CAP_").unwrap_or(c);
            let cap: Capability = name
                .parse()
                .with_context(|| format!("unknown capability {c}"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
