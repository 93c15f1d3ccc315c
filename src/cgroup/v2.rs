//! cgroup v2 (unified) controller files (Documentation/admin-guide/cgroup-v2.rst).
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::stats::{self, BlkioStats, CpuStats, MemoryStats, OomEvents, PidsStats, Stats};
use super::{Error, Result, fs};

/// Controllers we delegate to our cgroups when the parent offers them.
const WANTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids", "hugetlb", "misc"];

/// mkdir -p, enabling the available controllers in every ancestor's
/// `cgroup.subtree_control` on the way down ("no internal process" rule: only
/// ancestors get controllers enabled, never the leaf).
pub(super) fn create(root: &Path, rel: &Path) -> Result<()> {
    let mut dir = root.to_path_buf();
    for comp in rel.components() {
        enable_controllers(&dir)?;
        dir.push(comp);
        fs::mkdir(&dir)?;
    }
    Ok(())
}

fn enable_controllers(dir: &Path) -> Result<()> {
    let Some(available) = fs::read_opt(&dir.join("cgroup.controllers"))? else {
        return Ok(());
    };
    let enabled = fs::read_opt(&dir.join("cgroup.subtree_control"))?.unwrap_or_default();
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| WANTED.contains(c) && !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // One write per controller: a single failing controller (e.g. cpu with
    // realtime tasks in the parent) must not block the others.
    for c in missing {
        let _ = fs::write(&dir.join("cgroup.subtree_control"), &c);
    }
    Ok(())
}

pub(super) fn apply(dir: &Path, res: &LinuxResources) -> Result<()> {
    if let Some(m) = res.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = res.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = res.pids() {
        write(dir, "pids.max", &max_or(p.limit()))?;
    }
    if let Some(b) = res.block_io() {
        blkio(dir, b)?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        write(
            dir,
            &format!("hugetlb.{}.max", h.page_size()),
            &max_or(h.limit()),
        )?;
    }
    if let Some(rules) = res.devices().as_ref().filter(|d| !d.is_empty()) {
        super::bpf::attach(dir, rules)?;
    }
    if let Some(keys) = res.unified() {
        write_unified(dir, keys)?;
    }
    Ok(())
}

/// `unified` keys are file names in the cgroup directory; refuse anything else.
pub(super) fn write_unified(dir: &Path, keys: &HashMap<String, String>) -> Result<()> {
    for (k, v) in keys {
        if k.contains('/') || k.starts_with('.') || k.is_empty() {
            return Err(Error::Unsupported {
                what: format!("unified key {k:?}"),
                hint: "keys are cgroup file names".into(),
            });
        }
        write(dir, k, v)?;
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(|e| match e {
        Error::Write { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::Unsupported {
                what: file.to_string(),
                hint: format!("the controller is not enabled in {}", dir.display()),
            }
        }
        e => e,
    })
}

fn max_or(v: i64) -> String {
    if v <= 0 { "max".into() } else { v.to_string() }
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    if let Some(r) = m.reservation() {
        write(dir, "memory.low", &max_or(r))?;
    }
    if let Some(l) = m.limit() {
        write(dir, "memory.max", &max_or(l))?;
    }
    // OCI `swap` is memory+swap; v2 limits swap alone.
    if let Some(s) = m.swap() {
        let value = match (s, m.limit()) {
            (s, _) if s <= 0 => "max".to_string(),
            (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
            _ => {
                return Err(Error::Unsupported {
                    what: "memory.swap without memory.limit".into(),
                    hint: "set a memory limit with the swap limit".into(),
                });
            }
        };
        write(dir, "memory.swap.max", &value)?;
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(Error::Unsupported {
            what: "disableOOMKiller".into(),
            hint: "cgroup v2 has no switch to disable the OOM killer".into(),
        });
    }
    Ok(())
}

/// runc's shares -> weight conversion: [2, 262144] onto [1, 10000].
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        0
    } else {
        1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
    }
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|&s| s > 0) {
        write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let quota = c
            .quota()
            .filter(|&q| q > 0)
            .map_or("max".to_string(), |q| q.to_string());
        let period = c.period().unwrap_or(100_000);
        write(dir, "cpu.max", &format!("{quota} {period}"))?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
        return Err(Error::Unsupported {
            what: "cpu.realtimeRuntime/realtimePeriod".into(),
            hint: "cgroup v2 has no realtime budget".into(),
        });
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// blkio weight [10, 1000] -> io.weight [1, 10000].
pub(super) fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        write(
            dir,
            "io.weight",
            &format!("default {}", blkio_to_io_weight(w)),
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            write(
                dir,
                "io.weight",
                &format!("{}:{} {}", d.major(), d.minor(), blkio_to_io_weight(w)),
            )?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

pub(super) fn stats(dir: &Path) -> Result<Stats> {
    let memory = match fs::read_u64(&dir.join("memory.current"))? {
        None => None,
        Some(usage) => {
            let stat = fs::read_opt(&dir.join("memory.stat"))?.unwrap_or_default();
            Some(MemoryStats {
                usage,
                limit: stats::limit(fs::read_u64(&dir.join("memory.max"))?),
                anon: fs::flat_key(&stat, "anon").unwrap_or(0),
                file: fs::flat_key(&stat, "file").unwrap_or(0),
            })
        }
    };
    let pids = fs::read_u64(&dir.join("pids.current"))?.map(|current| PidsStats {
        current,
        limit: None,
    });
    let pids = match pids {
        Some(mut p) => {
            p.limit = stats::limit(fs::read_u64(&dir.join("pids.max"))?);
            Some(p)
        }
        None => None,
    };
    let cpu = fs::read_opt(&dir.join("cpu.stat"))?.map(|s| CpuStats {
        usage_usec: fs::flat_key(&s, "usage_usec").unwrap_or(0),
        user_usec: fs::flat_key(&s, "user_usec").unwrap_or(0),
        system_usec: fs::flat_key(&s, "system_usec").unwrap_or(0),
    });
    let blkio = fs::read_opt(&dir.join("io.stat"))?.map(|s| io_stat(&s));
    Ok(Stats {
        memory,
        pids,
        cpu,
        blkio,
    })
}

/// io.stat: `8:0 rbytes=1 wbytes=2 rios=3 ...` per device; summed.
fn io_stat(content: &str) -> BlkioStats {
    let mut out = BlkioStats::default();
    for kv in content.split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            let v: u64 = v.parse().unwrap_or(0);
            match k {
                "rbytes" => out.read_bytes += v,
                "wbytes" => out.write_bytes += v,
                _ => {}
            }
        }
    }
    out
}

pub(super) fn oom_events(dir: &Path) -> Result<OomEvents> {
    let path = dir.join("memory.events");
    let s = fs::read(&path)?;
    Ok(OomEvents {
        oom: fs::flat_key(&s, "oom").unwrap_or(0),
        oom_kill: fs::flat_key(&s, "oom_kill").unwrap_or(0),
        under_oom: false,
    })
}

pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    fs::write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    fs::wait_until(
        dir,
        if frozen { "frozen" } else { "thawed" },
        Duration::from_secs(5),
        || Ok(is_frozen(dir)? == frozen),
    )
}

pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    let events = fs::read(&dir.join("cgroup.events"))?;
    Ok(fs::flat_key(&events, "frozen") == Some(1))
}
