//! `stack stats`: live resource use of the stack's running containers.
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalOpts;
use super::images::human_size;
use super::output::{ListFormat, table};
use crate::ops::stats::{ContainerStats, sample};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Print one reading and exit (default: refresh every second until Ctrl-C;
    /// with `--format json`, one JSON array per line per reading).
    #[arg(long)]
    pub no_stream: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only these services.
    pub services: Vec<String>,
}

/// CPU % is measured over this window: one reading per refresh.
const WINDOW: Duration = Duration::from_secs(1);

pub fn run(global: &GlobalOpts, args: StatsArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let mut out = std::io::stdout().lock();
    loop {
        let rows = sample(&project.roots, &project.name, &args.services, WINDOW)?;
        match (args.format, args.no_stream) {
            (ListFormat::Json, true) => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
            (ListFormat::Json, false) => writeln!(out, "{}", serde_json::to_string(&rows)?)?,
            (ListFormat::Table, no_stream) => {
                if !no_stream {
                    // Clear the screen and go home, as `docker stats` redraws.
                    write!(out, "\x1b[2J\x1b[H")?;
                }
                for line in render(&rows).lines() {
                    writeln!(out, "{}", line.trim_end())?;
                }
            }
        }
        out.flush()?;
        if args.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

fn render(rows: &[ContainerStats]) -> String {
    let mut t = table([
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "ANON / FILE",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]);
    let na = || "--".to_string();
    for r in rows {
        let m = r.memory.as_ref();
        t.add_row([
            r.name.clone(),
            r.cpu_percent.map_or_else(na, |p| format!("{p:.2}%")),
            m.map_or_else(na, |m| {
                let limit = m.limit.map_or_else(|| "unlimited".into(), binary_size);
                format!("{} / {limit}", binary_size(m.usage))
            }),
            r.memory_percent.map_or_else(na, |p| format!("{p:.2}%")),
            m.map_or_else(na, |m| {
                format!("{} / {}", binary_size(m.anon), binary_size(m.file))
            }),
            r.net.as_ref().map_or_else(na, |n| {
                format!("{} / {}", human_size(n.rx_bytes), human_size(n.tx_bytes))
            }),
            r.block.as_ref().map_or_else(na, |b| {
                format!(
                    "{} / {}",
                    human_size(b.read_bytes),
                    human_size(b.write_bytes)
                )
            }),
            r.pids.as_ref().map_or_else(na, |p| p.current.to_string()),
        ]);
    }
    t.to_string()
}

/// Memory as `docker stats` shows it: binary units, two decimals.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{MemoryStats, PidsStats};
    use crate::ops::stats::NetStats;

    #[test]
    fn binary_sizes() {
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(1536), "1.50KiB");
        assert_eq!(binary_size(64 << 20), "64.00MiB");
    }

    #[test]
    fn table_row() {
        let row = ContainerStats {
            name: "s-web-1".into(),
            service: "web".into(),
            cpu_percent: Some(12.345),
            cpu_usage_usec: Some(1),
            memory: Some(MemoryStats {
                usage: 16 << 20,
                limit: Some(64 << 20),
                anon: 8 << 20,
                file: 4 << 20,
            }),
            memory_percent: Some(25.0),
            pids: Some(PidsStats {
                current: 3,
                limit: None,
            }),
            net: Some(NetStats {
                rx_bytes: 2344,
                tx_bytes: 586,
                ..Default::default()
            }),
            block: None,
        };
        let text = render(&[row]);
        let line = text.lines().nth(1).unwrap();
        for part in [
            "s-web-1",
            "12.35%",
            "16.00MiB / 64.00MiB",
            "25.00%",
            "8.00MiB / 4.00MiB",
            "2.34kB / 586B",
            "--",
        ] {
            assert!(line.contains(part), "{part} not in {line:?}");
        }
        assert!(line.trim_end().ends_with('3'));
    }
}
