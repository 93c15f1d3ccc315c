//! `stack events`: what happens to the stack's containers (create, start, die
//! with the exit code, oom, health_status, restart, stop, kill, destroy), as it
//! happens; `--since` replays recorded ones first, `--until` ends the stream.
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;

use super::GlobalOpts;
use super::logs::parse_time;
use crate::supervisor::events::{self, Event, Query};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Replay recorded events since this time (RFC 3339) or for this long ("10m").
    #[arg(long, value_parser = parse_time)]
    pub since: Option<SystemTime>,
    /// Stop at this time (or at once, after the replay, when it is past).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<SystemTime>,
    /// Only these services.
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let rfc = |t: Option<SystemTime>| t.map(|t| humantime::format_rfc3339_nanos(t).to_string());
    let query = Query {
        services: args.services.join(","),
        since: rfc(args.since),
        until: rfc(args.until),
    };
    let mut out = std::io::stdout();
    let mut sink = |e: Event| print(&mut out, &e, args.json).is_ok();
    match crate::daemon::client::Client::connect(&project.roots) {
        Some(client) => {
            let path = format!(
                "/v1/stacks/{}/events?{}",
                project.name,
                serde_urlencoded::to_string(&query)?
            );
            client.get_lines(&path, query.until.is_none(), &mut sink)?
        }
        None => events::stream(
            &project.roots.lib,
            &project.name,
            &query,
            &|| false,
            &mut sink,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print(out: &mut impl Write, e: &Event, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, e)?;
        writeln!(out)?;
        return out.flush();
    }
    let mut attrs = vec![format!("service={}", e.service)];
    if let Some(code) = e.exit_code {
        attrs.push(format!("exitCode={code}"));
    }
    if let Some(h) = &e.health {
        attrs.push(format!("health={h}"));
    }
    if let Some(d) = &e.detail {
        attrs.push(format!("detail={d}"));
    }
    writeln!(
        out,
        "{} container {} {} ({})",
        humantime::format_rfc3339_micros(e.time),
        e.action.as_str(),
        e.container,
        attrs.join(", ")
    )?;
    out.flush()
}
