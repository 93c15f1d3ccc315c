//! `stack start|stop|restart|kill`: act on existing containers without
//! changing what exists.
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::{GlobalOpts, remote};
use crate::daemon::proto::ContainersRequest;
use crate::reconcile::container::parse_signal;

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

/// Act on the stack's containers through the daemon.
fn call(global: &GlobalOpts, verb: &str, req: ContainersRequest) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let path = format!("/v1/stacks/{}/{verb}", project.name);
    Ok(remote::call(&project.roots, &path, &req)?.code)
}

pub fn stop(global: &GlobalOpts, args: StopArgs) -> anyhow::Result<ExitCode> {
    call(global, "stop", args.request())
}

pub fn start(global: &GlobalOpts, args: StartArgs) -> anyhow::Result<ExitCode> {
    let req = ContainersRequest {
        services: args.services,
        ..Default::default()
    };
    call(global, "start", req)
}

pub fn restart(global: &GlobalOpts, args: StopArgs) -> anyhow::Result<ExitCode> {
    call(global, "restart", args.request())
}

pub fn kill(global: &GlobalOpts, args: KillArgs) -> anyhow::Result<ExitCode> {
    if parse_signal(&args.signal).is_none() {
        bail!("unknown signal {}", args.signal);
    }
    let req = ContainersRequest {
        services: args.services,
        signal: Some(args.signal),
        ..Default::default()
    };
    call(global, "kill", req)
}

impl StopArgs {
    fn request(self) -> ContainersRequest {
        ContainersRequest {
            services: self.services,
            timeout: self.timeout,
            signal: None,
        }
    }
}
