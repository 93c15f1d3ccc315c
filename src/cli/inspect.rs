//! `stack inspect`, `stack port`, `stack ls`: what exists, as JSON or tables.
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::output::{ListFormat, print_rows, table};
use super::{GlobalOpts, remote};
use crate::network::Manager;
use crate::ops::ls::StackRow;
use crate::state::Roots;
use crate::supervisor::control;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Containers (`<stack>-<service>-<n>`) or services; all of the stack when empty.
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    /// The service.
    pub service: String,
    /// Only this container port (`80` or `80/udp`).
    pub port: Option<String>,
    /// Which replica.
    #[arg(long, default_value_t = 1)]
    pub index: u32,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

pub fn inspect(global: &GlobalOpts, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let path = format!("/v1/stacks/{}/inspect", project.name);
    let all: Vec<serde_json::Value> = remote::read(&project.roots, &path, || {
        Ok(crate::ops::inspect::documents(
            &project.roots,
            &project.name,
        )?)
    })?;
    let is = |d: &serde_json::Value, n: &str| d["name"] == n || d["service"] == n;
    let mut docs: Vec<&serde_json::Value> = Vec::new();
    for n in &args.names {
        let before = docs.len();
        docs.extend(all.iter().filter(|d| is(d, n)));
        if docs.len() == before {
            bail!("no container or service {n} in stack {}", project.name);
        }
    }
    if args.names.is_empty() {
        docs = all.iter().collect();
    }
    println!("{}", serde_json::to_string_pretty(&docs)?);
    Ok(ExitCode::SUCCESS)
}

pub fn port(global: &GlobalOpts, args: PortArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let all = control::observe(&project.roots.lib, Some(&project.name))?;
    let Some(o) = all
        .iter()
        .find(|o| o.spec.service == args.service && o.spec.index == args.index)
    else {
        bail!(
            "no container {} of service {} in stack {}",
            args.index,
            args.service,
            project.name
        );
    };
    let net = Manager::open(&project.roots)?;
    let (want_port, want_proto) = match args
        .port
        .as_deref()
        .map(|p| p.split_once('/').unwrap_or((p, "tcp")))
    {
        Some((p, proto)) => (Some(p.parse::<u16>()?), proto.to_string()),
        None => (None, "tcp".to_string()),
    };
    let mut found = false;
    for p in net.published(&o.spec.name)? {
        if want_port.is_some_and(|w| w != p.container_port || want_proto != p.proto.as_str()) {
            continue;
        }
        found = true;
        match want_port {
            Some(_) => println!("{}", p.host_socket()),
            None => println!(
                "{}/{} -> {}",
                p.container_port,
                p.proto.as_str(),
                p.host_socket()
            ),
        }
    }
    if !found && want_port.is_some() {
        bail!(
            "{} publishes no port {}",
            o.spec.name,
            args.port.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ls(global: &GlobalOpts, args: LsArgs) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    let rows: Vec<StackRow> =
        remote::read(&roots, "/v1/stacks", || Ok(crate::ops::ls::stacks(&roots)?))?;
    print_rows(args.format, &rows, |rows| {
        let mut t = table(["NAME", "STATUS", "CONFIG FILES"]);
        for r in rows {
            let files: Vec<String> = r.files.iter().map(|f| f.display().to_string()).collect();
            let watched = if r.watch { " (watched)" } else { "" };
            t.add_row([r.name.clone(), r.status.clone(), files.join(",") + watched]);
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}
