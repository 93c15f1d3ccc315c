//! `stack inspect`, `stack port`, `stack ls`: what exists, as JSON or tables.
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::GlobalOpts;
use super::output::{ListFormat, print_rows, table};
use crate::network::Manager;
use crate::reconcile::container::cgroups_path;
use crate::reconcile::ocispec;
use crate::reconcile::stacks::{StackRecord, StackStatus};
use crate::state::{self, Roots};
use crate::supervisor::control::{self, Observed};
use crate::supervisor::record::ContainerPaths;

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

fn document(roots: &Roots, net: Option<&Manager>, o: &Observed) -> serde_json::Value {
    let paths = ContainerPaths::new(&roots.lib, &o.spec.name);
    let oci: Option<serde_json::Value> = state::read_json(&paths.bundle().join("config.json"))
        .ok()
        .flatten();
    let health: Option<serde_json::Value> = state::read_json(&paths.health_log()).ok().flatten();
    let annotations = oci.as_ref().and_then(|s| s["annotations"].as_object());
    let labels: serde_json::Map<String, serde_json::Value> = annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| !ocispec::OWN_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let exposed: Vec<&str> = annotations
        .and_then(|a| a.get(ocispec::EXPOSED_PORTS))
        .and_then(|v| v.as_str())
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    json!({
        "name": o.spec.name,
        "stack": o.spec.stack,
        "service": o.spec.service,
        "index": o.spec.index,
        "created": humantime::format_rfc3339_seconds(o.spec.created).to_string(),
        "config_hash": o.spec.config_hash,
        "config": o.spec.config,
        "state": {
            "status": o.status.state,
            "running": o.is_up(),
            "pid": o.status.pid,
            "exit_code": o.status.exit_code,
            "oom_killed": o.status.oom_killed,
            "restarts": o.status.restarts,
            "error": o.status.error,
            "health": o.status.health,
            "health_log": health,
            "monitor_pid": o.status.monitor_pid.filter(|_| o.monitor_alive),
        },
        "cgroup": cgroups_path(&o.spec.stack, &o.spec.service, o.spec.index),
        "networks": net.and_then(|n| n.endpoints(&o.spec.name).ok()),
        "ports": net.and_then(|n| n.published(&o.spec.name).ok()),
        "labels": labels,
        "exposed_ports": exposed,
        "mounts": oci.as_ref().map(|s| s["mounts"].clone()),
        "oci_spec": oci,
        "log_path": paths.log(),
    })
}

pub fn inspect(global: &GlobalOpts, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let net = Manager::open(&project.roots).ok();
    let all = control::observe(&project.roots.lib, Some(&project.name))?;
    let picked: Vec<&Observed> = if args.names.is_empty() {
        all.iter().collect()
    } else {
        let mut out = Vec::new();
        for n in &args.names {
            let found: Vec<&Observed> = all
                .iter()
                .filter(|o| &o.spec.name == n || &o.spec.service == n)
                .collect();
            if found.is_empty() {
                bail!("no container or service {n} in stack {}", project.name);
            }
            out.extend(found);
        }
        out
    };
    let docs: Vec<serde_json::Value> = picked
        .iter()
        .map(|o| document(&project.roots, net.as_ref(), o))
        .collect();
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

#[derive(serde::Serialize)]
struct StackRow {
    name: String,
    status: String,
    files: Vec<std::path::PathBuf>,
    /// The daemon reconciles on every change of the files.
    watch: bool,
    /// The files do not load since then (the stack runs as it was).
    file_error: Option<crate::reconcile::stacks::FileError>,
}

pub fn ls(global: &GlobalOpts, args: LsArgs) -> anyhow::Result<ExitCode> {
    let roots = Roots::new(global.root.as_deref());
    let mut rows = Vec::new();
    for rec in StackRecord::all(&roots) {
        let all = control::observe(&roots.lib, Some(&rec.name))?;
        let up = all.iter().filter(|o| o.is_up()).count();
        let file_error = StackStatus::read(&roots, &rec.name).file_error;
        let mut status = format!("running({up}/{})", all.len());
        if let Some(e) = &file_error {
            let first = e.message.lines().next().unwrap_or_default();
            status.push_str(&format!(", file invalid since {}: {first}", clock(e.since)));
        }
        rows.push(StackRow {
            name: rec.name,
            status,
            files: rec.files,
            watch: rec.watch,
            file_error,
        });
    }
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

/// HH:MM (UTC) of a time in seconds since the epoch.
fn clock(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.get(11..16).unwrap_or(&text).to_string()
}
