//! `stack top`: the processes of the stack's running containers.
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use super::output::{ListFormat, print_rows, table};
use crate::ops::top::{Process, top};

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only these services.
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: TopArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let tops = top(&project.roots, &project.name, &args.services)?;
    if args.format == ListFormat::Json {
        println!("{}", serde_json::to_string_pretty(&tops)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::supervisor::record::now_secs();
    for (i, c) in tops.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", c.name);
        print_rows(ListFormat::Table, &c.processes, |ps| processes(ps, now))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ps -ef`'s columns, as `docker top` prints them.
fn processes(ps: &[Process], now: u64) -> comfy_table::Table {
    let mut t = table(["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
    for p in ps {
        t.add_row([
            p.uid.to_string(),
            p.pid.to_string(),
            p.ppid.to_string(),
            p.cpu_percent.to_string(),
            start_time(p.started, now),
            p.tty.clone().unwrap_or_else(|| "?".into()),
            cpu_time(p.cpu_ms),
            p.command.clone(),
        ]);
    }
    t
}

/// `HH:MM:SS` of CPU time.
fn cpu_time(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// As `ps` prints STIME, in local time: `HH:MM` within the last day, else `MonDD`.
fn start_time(secs: u64, now: u64) -> String {
    let Some(tm) = local_time(secs) else {
        return "?".into();
    };
    if now.saturating_sub(secs) < 86_400 {
        format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
    } else {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = usize::try_from(tm.tm_mon).ok().and_then(|m| MONTHS.get(m));
        format!("{}{:02}", month.unwrap_or(&"?"), tm.tm_mday)
    }
}

fn local_time(secs: u64) -> Option<libc::tm> {
    let t = libc::time_t::try_from(secs).ok()?;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are
    // valid for the call, and localtime_r is the thread-safe variant.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        (!libc::localtime_r(&t, &mut tm).is_null()).then_some(tm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_ps() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(3_723_999), "01:02:03");
        let now = 1_700_000_000;
        assert_eq!(start_time(now - 60, now).len(), 5, "HH:MM");
        let old = start_time(now - 10 * 86_400, now);
        assert_eq!(old.len(), 5, "MonDD: {old}");
        assert!(old[..3].chars().all(char::is_alphabetic));
    }

    #[test]
    fn one_row_per_process() {
        let p = Process {
            pid: 10,
            ppid: 1,
            container_pid: Some(1),
            uid: 0,
            state: "S".into(),
            started: 1_700_000_000,
            cpu_ms: 1500,
            cpu_percent: 0,
            rss: 4096,
            tty: None,
            command: "sleep 3600".into(),
        };
        let text = processes(&[p], 1_700_000_100).to_string();
        let row = text.lines().nth(1).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[..4], ["0", "10", "1", "0"]);
        assert_eq!(cols[5..], ["?", "00:00:01", "sleep", "3600"]);
    }
}
