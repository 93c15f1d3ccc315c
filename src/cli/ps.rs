//! `stack ps`: the containers of a stack.
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::GlobalOpts;
use super::output::{ListFormat, print_rows, since, table};
use crate::supervisor::control::{Observed, observe};
use crate::supervisor::record::State;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show stopped containers too.
    #[arg(short, long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only print container names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these services.
    pub services: Vec<String>,
}

/// One row of `ps`, also its JSON shape.
#[derive(Serialize)]
pub struct Row {
    pub name: String,
    pub service: String,
    pub state: State,
    pub status: String,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Frozen by `stack pause`.
    pub paused: bool,
    pub restarts: u32,
    pub created: String,
    pub health: Option<crate::supervisor::record::Health>,
    /// `127.0.0.1:32768->80/tcp`
    pub ports: Vec<String>,
}

/// "running", "exited (3)", "exited (137, OOMKilled)", "restarting (2)", "dead"
/// (the monitor is gone while the record says running).
pub fn status_text(o: &Observed) -> String {
    let s = &o.status;
    let exit = || match (s.exit_code, s.oom_killed) {
        (Some(c), true) => format!("{c}, OOMKilled"),
        (Some(c), false) => c.to_string(),
        (None, _) => "?".into(),
    };
    match s.state {
        State::Running | State::Created if !o.monitor_alive => "dead (monitor gone)".into(),
        State::Running => format!("up {}", since(s.started_at)),
        State::Created => "created".into(),
        State::Restarting => format!("restarting ({}), last exit {}", s.restarts, exit()),
        State::Exited => format!("exited ({}) {} ago", exit(), since(s.finished_at)),
        State::Stopped => format!("stopped ({}) {} ago", exit(), since(s.finished_at)),
    }
}

pub fn rows(
    observed: &[Observed],
    args: &PsArgs,
    roots: &crate::state::Roots,
    net: Option<&crate::network::Manager>,
) -> Vec<Row> {
    observed
        .iter()
        .filter(|o| args.all || o.is_up())
        .filter(|o| args.services.is_empty() || args.services.contains(&o.spec.service))
        .map(|o| {
            (
                o,
                o.is_up() && crate::ops::pause::is_paused(roots, &o.spec.name),
            )
        })
        .map(|(o, paused)| Row {
            name: o.spec.name.clone(),
            service: o.spec.service.clone(),
            state: o.status.state,
            status: if paused {
                format!("{} (paused)", status_text(o))
            } else {
                status_text(o)
            },
            paused,
            pid: o.status.pid.filter(|_| o.is_up()),
            exit_code: o.status.exit_code,
            oom_killed: o.status.oom_killed,
            restarts: o.status.restarts,
            created: humantime::format_rfc3339_seconds(o.spec.created).to_string(),
            health: o.status.health,
            ports: net
                .and_then(|n| n.published(&o.spec.name).ok())
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}->{}/{}",
                        p.host_addr(),
                        p.host_port,
                        p.container_port,
                        p.proto.as_str()
                    )
                })
                .collect(),
        })
        .collect()
}

pub fn run(global: &GlobalOpts, args: PsArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let observed = observe(&project.roots.lib, Some(&project.name))?;
    let net = crate::network::Manager::open(&project.roots).ok();
    let rows = rows(&observed, &args, &project.roots, net.as_ref());
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", r.name));
        return Ok(ExitCode::SUCCESS);
    }
    print_rows(args.format, &rows, |rows| {
        let mut t = table(["NAME", "SERVICE", "STATUS", "PORTS"]);
        for r in rows {
            let status = match r.health {
                Some(h) => format!(
                    "{} ({})",
                    r.status,
                    serde_json::to_value(h)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("")
                ),
                None => r.status.clone(),
            };
            t.add_row([
                r.name.clone(),
                r.service.clone(),
                status,
                r.ports.join(", "),
            ]);
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}
