//! `stack start|stop|restart|kill`: act on existing containers without
//! changing what exists.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::GlobalOpts;
use crate::reconcile::container::parse_signal;
use crate::state::Roots;
use crate::supervisor::control::{self, Observed};

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Only these services.
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Only these services.
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    /// Only these services.
    pub services: Vec<String>,
}

fn selected(global: &GlobalOpts, services: &[String]) -> anyhow::Result<(Roots, Vec<Observed>)> {
    let project = super::project::resolve(global)?;
    let all = control::observe(&project.roots.lib, Some(&project.name))?;
    for s in services {
        if !all.iter().any(|o| &o.spec.service == s) {
            bail!("no container of service {s} in stack {}", project.name);
        }
    }
    let picked = all
        .into_iter()
        .filter(|o| services.is_empty() || services.contains(&o.spec.service))
        .collect();
    Ok((project.roots, picked))
}

fn stop_all(roots: &Roots, picked: &[Observed], timeout: Option<u64>) {
    std::thread::scope(|s| {
        for o in picked.iter().filter(|o| o.monitor_alive) {
            s.spawn(move || {
                let grace = timeout
                    .map(Duration::from_secs)
                    .unwrap_or(o.spec.stop_grace);
                eprintln!(" Container {}  Stopping", o.spec.name);
                match control::stop(roots, &o.spec.name, grace) {
                    Ok(_) => eprintln!(" Container {}  Stopped", o.spec.name),
                    Err(e) => eprintln!(" Container {}  Error: {e}", o.spec.name),
                }
            });
        }
    });
}

fn start_all(roots: &Roots, picked: &[Observed]) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for o in picked.iter().filter(|o| !o.monitor_alive) {
        match control::spawn_monitor(roots, &o.spec.name) {
            Ok(()) => eprintln!(" Container {}  Started", o.spec.name),
            Err(e) => {
                eprintln!(" Container {}  Error: {e}", o.spec.name);
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

pub fn stop(global: &GlobalOpts, args: StopArgs) -> anyhow::Result<ExitCode> {
    let (roots, picked) = selected(global, &args.services)?;
    stop_all(&roots, &picked, args.timeout);
    Ok(ExitCode::SUCCESS)
}

pub fn start(global: &GlobalOpts, args: StartArgs) -> anyhow::Result<ExitCode> {
    let (roots, picked) = selected(global, &args.services)?;
    Ok(start_all(&roots, &picked))
}

pub fn restart(global: &GlobalOpts, args: StopArgs) -> anyhow::Result<ExitCode> {
    let (roots, picked) = selected(global, &args.services)?;
    stop_all(&roots, &picked, args.timeout);
    let (roots, picked) = selected(global, &args.services)?;
    Ok(start_all(&roots, &picked))
}

pub fn kill(global: &GlobalOpts, args: KillArgs) -> anyhow::Result<ExitCode> {
    let sig =
        parse_signal(&args.signal).with_context(|| format!("unknown signal {}", args.signal))?;
    let (_, picked) = selected(global, &args.services)?;
    for o in picked.iter().filter(|o| o.is_up()) {
        if let Some(pid) = o.status.pid {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
                .with_context(|| format!("signalling {}", o.spec.name))?;
            eprintln!(" Container {}  Killed ({sig})", o.spec.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
