//! `stack __proxy` (hidden): the userspace proxy of a container's `[::1]`
//! published ports, started by `network` with the sockets already bound.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::network::proxy::{self, Map};

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// The state root's id (marks the process for crash recovery).
    #[arg(long)]
    pub root_id: String,
    /// The container whose ports these are.
    #[arg(long)]
    pub container: String,
    /// Connect from this network namespace (the manager's host namespace).
    #[arg(long)]
    pub netns: Option<PathBuf>,
    /// `tcp|udp:FD:ADDR:PORT`: serve the inherited socket FD, forward to ADDR:PORT.
    #[arg(long = "map", required = true)]
    pub maps: Vec<String>,
}

pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let maps = args
        .maps
        .iter()
        .map(|m| {
            Map::parse(m).with_context(|| format!("bad --map {m:?} (want tcp|udp:FD:ADDR:PORT)"))
        })
        .collect::<anyhow::Result<Vec<Map>>>()?;
    proxy::run(args.netns, maps)?;
    Ok(ExitCode::SUCCESS)
}
