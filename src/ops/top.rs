//! `top`: the processes of running containers, read from their cgroup and /proc
//! (the host's view: host pids, host uids, as `docker top` shows them).
use std::path::Path;

use super::{Error, cgroup, containers};
use crate::state::Roots;

/// The processes of one container.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContainerTop {
    pub name: String,
    pub service: String,
    pub processes: Vec<Process>,
}

/// One process, as `ps -ef` would describe it plus its pid inside the container.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Process {
    /// In the host's pid namespace.
    pub pid: i32,
    pub ppid: i32,
    /// In the container's pid namespace (the last of `NSpid`).
    pub container_pid: Option<i32>,
    /// Real uid, as the host sees it (differs from the container's view with a
    /// user namespace).
    pub uid: u32,
    /// `R`, `S`, `D`, `Z`, ... (proc(5) `state`).
    pub state: String,
    /// Start time, seconds since the epoch.
    pub started: u64,
    /// User plus system CPU time, milliseconds.
    pub cpu_ms: u64,
    /// Lifetime CPU use in percent of one CPU (`ps`'s `C` column).
    pub cpu_percent: u32,
    /// Resident set size, bytes.
    pub rss: u64,
    /// Controlling terminal (`pts/0`), `None` without one.
    pub tty: Option<String>,
    /// The command line; `[name]` when it has none (a kernel thread or zombie).
    pub command: String,
}

/// The processes of the running containers of `services` (all when empty).
pub fn top(roots: &Roots, stack: &str, services: &[String]) -> Result<Vec<ContainerTop>, Error> {
    let clock = Clock::now()?;
    let mut out = Vec::new();
    for o in containers(roots, stack, services)?
        .iter()
        .filter(|o| o.is_up())
    {
        let cg = cgroup(o)?;
        // Between restarts there is no cgroup and no process.
        let pids = if cg.exists() {
            cg.pids().map_err(|source| Error::Cgroup {
                name: o.spec.name.clone(),
                source,
            })?
        } else {
            Vec::new()
        };
        out.push(ContainerTop {
            name: o.spec.name.clone(),
            service: o.spec.service.clone(),
            // A process that exited since the cgroup was read is left out.
            processes: pids
                .into_iter()
                .filter_map(|pid| read_process(Path::new("/proc"), pid, &clock))
                .collect(),
        });
    }
    Ok(out)
}

/// What converts /proc's clock ticks since boot into times.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Boot time, seconds since the epoch (`btime` of /proc/stat).
    pub boot: u64,
    /// Seconds since the epoch now.
    pub now: u64,
    /// sysconf(_SC_CLK_TCK).
    pub ticks_per_sec: u64,
}

impl Clock {
    fn now() -> Result<Clock, Error> {
        let path = Path::new("/proc/stat");
        let stat = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let boot = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t > 0)
            .unwrap_or(100);
        Ok(Clock {
            boot,
            now: crate::supervisor::record::now_secs(),
            ticks_per_sec: ticks,
        })
    }
}

/// Read `<proc>/<pid>/{stat,status,cmdline}`; `None` when the process is gone.
pub fn read_process(proc: &Path, pid: i32, clock: &Clock) -> Option<Process> {
    let dir = proc.join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
    parse_process(pid, &stat, &status, &cmdline, clock)
}

/// Build a [`Process`] from the text of its /proc files (proc(5)).
pub fn parse_process(
    pid: i32,
    stat: &str,
    status: &str,
    cmdline: &[u8],
    clock: &Clock,
) -> Option<Process> {
    // comm may hold spaces and parentheses: the fields start after the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // Numbering of proc(5) minus 3: state is field 3, ppid 4, tty_nr 7,
    // utime 14, stime 15, starttime 22.
    let field = |n: usize| fields.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|v| v.parse::<u64>().ok());
    let ticks = clock.ticks_per_sec.max(1);
    let cpu_ticks = num(14)? + num(15)?;
    let started = clock.boot + num(22)? / ticks;
    let status_field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    let elapsed = clock.now.saturating_sub(started).max(1);
    let cpu_secs = cpu_ticks / ticks;
    Some(Process {
        pid,
        ppid: field(4)?.parse().ok()?,
        container_pid: status_field("NSpid:")
            .and_then(|v| v.split_whitespace().last())
            .and_then(|v| v.parse().ok()),
        uid: status_field("Uid:")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?,
        state: field(3)?.to_string(),
        started,
        cpu_ms: cpu_ticks * 1000 / ticks,
        cpu_percent: u32::try_from(cpu_secs * 100 / elapsed).unwrap_or(u32::MAX),
        rss: status_field("VmRSS:")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024),
        tty: tty_name(field(7)?.parse().ok()?),
        command: command_line(cmdline, comm),
    })
}

/// `tty_nr` (a device number) as a name: Unix98 ptys `pts/N`, consoles `ttyN`.
fn tty_name(tty_nr: u64) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => format!("{major}:{minor}"),
    })
}

/// NUL-separated arguments joined by spaces; `[comm]` when empty.
fn command_line(cmdline: &[u8], comm: &str) -> String {
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.is_empty() {
        format!("[{comm}]")
    } else {
        args.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock {
        boot: 1_000_000,
        now: 1_000_200,
        ticks_per_sec: 100,
    };

    #[test]
    fn parses_a_process() {
        // A comm with a space and a ')' must not shift the fields.
        let stat = "4242 (my (odd) cmd) S 4200 4242 4242 34816 4242 4194560 110 0 0 0 \
                    1500 500 0 0 20 0 1 0 10000 4300800 200 18446744073709551615";
        let status =
            "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nNSpid:\t4242\t7\nVmRSS:\t  1536 kB\n";
        let p = parse_process(4242, stat, status, b"sh\0-c\0sleep 10\0", &CLOCK).unwrap();
        assert_eq!(
            p,
            Process {
                pid: 4242,
                ppid: 4200,
                container_pid: Some(7),
                uid: 1000,
                state: "S".into(),
                started: 1_000_100,
                cpu_ms: 20_000,
                cpu_percent: 20,
                rss: 1536 * 1024,
                tty: Some("pts/0".into()),
                command: "sh -c sleep 10".into(),
            }
        );
    }

    #[test]
    fn zombie_without_cmdline_and_tty() {
        let stat = "9 (sleep) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 20000 0 0 0";
        let status = "Name:\tsleep\nUid:\t0\t0\t0\t0\n";
        let p = parse_process(9, stat, status, b"", &CLOCK).unwrap();
        assert_eq!(p.command, "[sleep]");
        assert_eq!(p.tty, None);
        assert_eq!(p.container_pid, None);
        assert_eq!(p.rss, 0);
        assert_eq!(parse_process(9, "garbage", status, b"", &CLOCK), None);
    }

    #[test]
    fn tty_names() {
        assert_eq!(tty_name(34816 + 3).as_deref(), Some("pts/3"));
        assert_eq!(tty_name((4 << 8) | 1).as_deref(), Some("tty1"));
        assert_eq!(tty_name((4 << 8) | 65).as_deref(), Some("ttyS1"));
        assert_eq!(tty_name(0), None);
    }

    #[test]
    fn reads_this_process() {
        let clock = Clock::now().unwrap();
        let me = read_process(Path::new("/proc"), std::process::id() as i32, &clock).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.rss > 0);
        assert!(me.started <= clock.now && me.started >= clock.boot);
    }
}
