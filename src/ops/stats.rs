//! `stats`: resource use of running containers. CPU, memory, pids and block I/O
//! come from each container's cgroup exactly as the kernel's files give them
//! (v2: `cpu.stat`, `memory.current`, `memory.stat`, `memory.max`, `pids.*`,
//! `io.stat`; v1: `cpuacct.*`, `memory.usage_in_bytes`, `memory.stat`,
//! `memory.limit_in_bytes`, `pids.*`, `blkio.throttle.io_service_bytes`); network
//! I/O from the counters of the container's network namespace
//! (`/proc/<init>/net/dev`, loopback left out).
//!
//! CPU % is the CPU time used over a sampling window divided by the window's
//! length: 100 % is one CPU fully busy, as in `docker stats`.
//!
//! Caveat: on cgroup v1 with a recent kernel, `blkio.throttle.*` counts only on
//! devices that have a throttle limit (`blkio_config`); elsewhere it reads 0.
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Error, cgroup, containers};
use crate::cgroup::{BlkioStats, MemoryStats, PidsStats};
use crate::state::Roots;
use crate::supervisor::control::Observed;

/// One container's use of resources.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContainerStats {
    pub name: String,
    pub service: String,
    /// Over the sampling window; `None` when the container (re)started during it.
    pub cpu_percent: Option<f64>,
    /// Total CPU time used so far, microseconds.
    pub cpu_usage_usec: Option<u64>,
    pub memory: Option<MemoryStats>,
    /// `memory.usage` over `memory.limit`; `None` without a limit.
    pub memory_percent: Option<f64>,
    pub pids: Option<PidsStats>,
    /// `None` for a container in the host's network namespace (its counters are
    /// the host's) or without a running process.
    pub net: Option<NetStats>,
    pub block: Option<BlkioStats>,
}

/// Interface counters summed over a network namespace's interfaces but `lo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

/// Read the running containers of `services` (all when empty) twice, `window`
/// apart, and report the second reading with CPU % over the window.
pub fn sample(
    roots: &Roots,
    stack: &str,
    services: &[String],
    window: Duration,
) -> Result<Vec<ContainerStats>, Error> {
    let running: Vec<Observed> = containers(roots, stack, services)?
        .into_iter()
        .filter(|o| o.is_up())
        .collect();
    let first: Vec<Option<u64>> = running.iter().map(|o| cpu_usec(o).ok().flatten()).collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let elapsed = t0.elapsed();
    running
        .iter()
        .zip(first)
        .map(|(o, before)| read(o, before, elapsed))
        .collect()
}

fn cpu_usec(o: &Observed) -> Result<Option<u64>, Error> {
    let cg = cgroup(o)?;
    if !cg.exists() {
        return Ok(None);
    }
    let stats = cg.stats().map_err(|source| Error::Cgroup {
        name: o.spec.name.clone(),
        source,
    })?;
    Ok(stats.cpu.map(|c| c.usage_usec))
}

fn read(o: &Observed, cpu_before: Option<u64>, elapsed: Duration) -> Result<ContainerStats, Error> {
    let cg = cgroup(o)?;
    // Between restarts: no cgroup, nothing in use.
    let (stats, pids) = if cg.exists() {
        let err = |source| Error::Cgroup {
            name: o.spec.name.clone(),
            source,
        };
        (cg.stats().map_err(err)?, cg.pids().map_err(err)?)
    } else {
        Default::default()
    };
    let cpu_now = stats.cpu.as_ref().map(|c| c.usage_usec);
    Ok(ContainerStats {
        name: o.spec.name.clone(),
        service: o.spec.service.clone(),
        cpu_percent: cpu_percent(cpu_before, cpu_now, elapsed),
        cpu_usage_usec: cpu_now,
        memory_percent: stats.memory.as_ref().and_then(memory_percent),
        memory: stats.memory,
        pids: stats.pids,
        // Any process of the container is in its network namespace; a pid from
        // the cgroup (not the recorded one) cannot be a reused pid.
        net: pids
            .first()
            .and_then(|&pid| net_of(Path::new("/proc"), pid)),
        block: stats.blkio,
    })
}

/// CPU time over wall time, in percent of one CPU. `None` when a reading is
/// missing or the counter went back (a new cgroup: the container restarted).
pub fn cpu_percent(before: Option<u64>, after: Option<u64>, elapsed: Duration) -> Option<f64> {
    let used = after?.checked_sub(before?)?;
    let wall = elapsed.as_micros();
    (wall > 0).then(|| used as f64 * 100.0 / wall as f64)
}

pub fn memory_percent(m: &MemoryStats) -> Option<f64> {
    let limit = m.limit.filter(|&l| l > 0)?;
    Some(m.usage as f64 * 100.0 / limit as f64)
}

/// The counters of `pid`'s network namespace, unless it is this process's.
pub fn net_of(proc: &Path, pid: i32) -> Option<NetStats> {
    use std::os::unix::fs::MetadataExt;
    let ns = |p: &Path| std::fs::metadata(p.join("ns/net")).ok().map(|m| m.ino());
    let theirs = ns(&proc.join(pid.to_string()))?;
    if ns(&proc.join("self")) == Some(theirs) {
        return None;
    }
    let text = std::fs::read_to_string(proc.join(pid.to_string()).join("net/dev")).ok()?;
    Some(parse_net_dev(&text))
}

/// `/proc/net/dev`: two header lines, then `iface: rx_bytes rx_packets errs drop
/// fifo frame compressed multicast tx_bytes tx_packets ...`.
pub fn parse_net_dev(text: &str) -> NetStats {
    let mut out = NetStats::default();
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let v: Vec<u64> = counters
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        if v.len() < 10 {
            continue;
        }
        out.rx_bytes += v[0];
        out.rx_packets += v[1];
        out.tx_bytes += v[8];
        out.tx_packets += v[9];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0
  eth0:    2344      28    0    0    0     0          0         0      586       7    0    0    0     0       0          0
  eth1:      10       1    0    0    0     0          0         0       20       2    0    0    0     0       0          0
";

    #[test]
    fn net_dev_sums_all_but_loopback() {
        assert_eq!(
            parse_net_dev(NET_DEV),
            NetStats {
                rx_bytes: 2354,
                rx_packets: 29,
                tx_bytes: 606,
                tx_packets: 9,
            }
        );
    }

    #[test]
    fn percentages() {
        let s = Duration::from_secs(1);
        assert_eq!(cpu_percent(Some(1_000), Some(501_000), s), Some(50.0));
        assert_eq!(
            cpu_percent(Some(0), Some(2_000_000), s),
            Some(200.0),
            "two busy CPUs"
        );
        assert_eq!(cpu_percent(Some(10), Some(5), s), None, "restarted");
        assert_eq!(cpu_percent(None, Some(5), s), None);
        let m = MemoryStats {
            usage: 16 << 20,
            limit: Some(64 << 20),
            anon: 0,
            file: 0,
        };
        assert_eq!(memory_percent(&m), Some(25.0));
        assert_eq!(memory_percent(&MemoryStats { limit: None, ..m }), None);
    }

    #[test]
    fn own_network_namespace_has_no_counters() {
        let me = std::process::id() as i32;
        assert_eq!(net_of(Path::new("/proc"), me), None);
    }
}
