//! `stack logs`: the stored output of a stack's containers, optionally followed.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;

use super::GlobalOpts;
use crate::supervisor::control::observe;
use crate::supervisor::logs::{Cursor, Record, read_all};
use crate::supervisor::record::ContainerPaths;

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
    let lib = project.roots.lib.clone();
    let pick = |svc: &str| args.services.is_empty() || args.services.iter().any(|s| s == svc);
    let containers: Vec<(String, PathBuf)> = observe(&lib, Some(&project.name))?
        .into_iter()
        .filter(|o| pick(&o.spec.service))
        .map(|o| {
            (
                o.spec.name.clone(),
                ContainerPaths::new(&lib, &o.spec.name).log(),
            )
        })
        .collect();
    let tail: Option<usize> = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .with_context(|| format!("--tail takes a number or `all`, not `{n}`"))?,
        ),
    };
    let mut printer = Printer {
        color: !args.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        prefix: !args.no_log_prefix,
        timestamps: args.timestamps,
        width: containers.iter().map(|(n, _)| n.len()).max().unwrap_or(0),
        colors: BTreeMap::new(),
    };
    let in_window = |r: &Record| {
        args.since.is_none_or(|s| r.time >= s) && args.until.is_none_or(|u| r.time <= u)
    };
    let mut all: Vec<(String, Record)> = Vec::new();
    for (name, path) in &containers {
        let recs: Vec<Record> = read_all(path)?.into_iter().filter(in_window).collect();
        let skip = tail.map_or(0, |n| recs.len().saturating_sub(n));
        all.extend(recs.into_iter().skip(skip).map(|r| (name.clone(), r)));
    }
    all.sort_by_key(|(_, r)| r.time);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (name, rec) in &all {
        printer.print(&mut out, name, rec)?;
    }
    out.flush()?;
    drop(out);
    if args.follow {
        follow(&lib, &project.name, &args, &mut printer, &containers, stop)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn follow(
    lib: &Path,
    stack: &str,
    args: &LogsArgs,
    printer: &mut Printer,
    seen: &[(String, PathBuf)],
    stop: &dyn Fn() -> bool,
) -> anyhow::Result<()> {
    let mut cursors: BTreeMap<String, Cursor> = seen
        .iter()
        .map(|(name, path)| (name.clone(), Cursor::at_end(path)))
        .collect();
    while !stop() {
        let observed = observe(lib, Some(stack))?;
        for o in observed
            .iter()
            .filter(|o| args.services.is_empty() || args.services.contains(&o.spec.service))
        {
            let path = ContainerPaths::new(lib, &o.spec.name).log();
            let records: Vec<Record> = cursors
                .entry(o.spec.name.clone())
                .or_default()
                .read_new(&path)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            printer.width = printer.width.max(o.spec.name.len());
            for rec in records {
                printer.print(&mut out, &o.spec.name, &rec)?;
            }
            out.flush()?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
