//! `stack events`: what happens to the stack's containers (create, start, die
//! with the exit code, oom, health_status, restart, stop, kill, destroy), as it
//! happens; `--since` replays recorded ones first, `--until` ends the stream.
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;

use super::GlobalOpts;
use super::logs::parse_time;
use crate::supervisor::events::{self, Event};
use crate::supervisor::logs::Cursor;

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
    let lib = project.roots.lib.clone();
    let path = events::path(&lib);
    let wanted = |e: &Event| {
        e.stack == project.name
            && (args.services.is_empty() || args.services.contains(&e.service))
            && args.until.is_none_or(|u| e.time <= u)
    };
    let mut out = std::io::stdout();
    // The cursor is taken before the replay so nothing falls between the two.
    let mut cursor = Cursor::at_end(&path);
    if let Some(since) = args.since {
        for e in events::read_all(&lib)?.iter().filter(|e| e.time >= since) {
            if wanted(e) {
                print(&mut out, e, args.json)?;
            }
        }
    }
    while args.until.is_none_or(|u| SystemTime::now() < u) {
        for e in cursor.read_new::<Event>(&path)? {
            if wanted(&e) {
                print(&mut out, &e, args.json)?;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
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
