//! `stack logs`: the stored output of a stack's containers, optionally followed.
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;

use super::GlobalOpts;
use crate::ops::logs::{Line, Query};
use crate::supervisor::logs::Record;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow: keep printing new output, across restarts and recreations (`-f`
    /// after the verb).
    #[arg(long)]
    pub follow: bool,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only output since this time (RFC 3339) or for this long ("10m", "1h30m").
    #[arg(long, value_parser = parse_time)]
    pub since: Option<SystemTime>,
    /// Only output until this time (RFC 3339) or until this long ago.
    #[arg(long, value_parser = parse_time)]
    pub until: Option<SystemTime>,
    /// Only the last N lines of each container ("all" for everything).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// No colours in the prefixes.
    #[arg(long)]
    pub no_color: bool,
    /// No `name |` prefixes.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Only these services.
    pub services: Vec<String>,
}

pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    let d = humantime::parse_duration(s).map_err(|_| {
        format!("`{s}` is neither a time (2026-01-02T15:04:05Z) nor a duration (10m)")
    })?;
    Ok(SystemTime::now() - d)
}

struct Printer {
    color: bool,
    prefix: bool,
    timestamps: bool,
    width: usize,
    colors: BTreeMap<String, usize>,
}

const COLORS: [u8; 6] = [36, 33, 32, 35, 34, 31];

impl Printer {
    fn print(&mut self, out: &mut impl Write, name: &str, rec: &Record) -> std::io::Result<()> {
        if self.prefix {
            let next = self.colors.len();
            let color = COLORS[*self.colors.entry(name.to_string()).or_insert(next) % COLORS.len()];
            if self.color {
                write!(out, "\x1b[{color}m{name:<w$} |\x1b[0m ", w = self.width)?;
            } else {
                write!(out, "{name:<w$} | ", w = self.width)?;
            }
        }
        if self.timestamps {
            write!(out, "{} ", humantime::format_rfc3339_nanos(rec.time))?;
        }
        out.write_all(rec.log.as_bytes())?;
        if !rec.log.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

impl LogsArgs {
    /// What `stack up` in the foreground shows: everything new, followed.
    pub fn follow_all(no_color: bool) -> LogsArgs {
        LogsArgs {
            follow: true,
            timestamps: false,
            since: None,
            until: None,
            tail: "all".into(),
            no_color,
            no_log_prefix: false,
            services: Vec::new(),
        }
    }
}

pub fn run(global: &GlobalOpts, args: LogsArgs) -> anyhow::Result<ExitCode> {
    run_until(global, args, &|| false)
}

/// Print (and follow) until `stop()` turns true.
pub fn run_until(
    global: &GlobalOpts,
    args: LogsArgs,
    stop: &dyn Fn() -> bool,
) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let tail: Option<usize> = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .with_context(|| format!("--tail takes a number or `all`, not `{n}`"))?,
        ),
    };
    let rfc = |t: Option<SystemTime>| t.map(|t| humantime::format_rfc3339_nanos(t).to_string());
    let query = Query {
        services: args.services.join(","),
        tail,
        since: rfc(args.since),
        until: rfc(args.until),
        follow: args.follow,
    };
    let mut printer = Printer {
        color: !args.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        prefix: !args.no_log_prefix,
        timestamps: args.timestamps,
        width: 0,
        colors: BTreeMap::new(),
    };
    // The prefixes line up on the longest container name there is now.
    let path = format!("/v1/stacks/{}/ps", project.name);
    let rows: Vec<crate::ops::ps::Row> = super::remote::read(&project.roots, &path, || {
        Ok(crate::ops::ps::rows(&project.roots, &project.name)?)
    })?;
    printer.width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    // What is in the journal is not read back: say where it is.
    for note in crate::ops::logs::journal_notes(&project.roots, &project.name, &args.services) {
        eprintln!("note: {note}");
    }
    let mut failed: Option<std::io::Error> = None;
    let mut sink = |line: Line| {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        printer.width = printer.width.max(line.container.len());
        match printer
            .print(&mut out, &line.container, &line.record)
            .and_then(|()| out.flush())
        {
            Ok(()) => !stop(),
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    };
    match crate::daemon::client::Client::connect(&project.roots) {
        Some(client) => {
            let path = format!(
                "/v1/stacks/{}/logs?{}",
                project.name,
                serde_urlencoded::to_string(&query)?
            );
            client.get_lines(&path, &mut sink)?
        }
        None => crate::ops::logs::stream(&project.roots, &project.name, &query, stop, &mut sink)?,
    }
    match failed {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
