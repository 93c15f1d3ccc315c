//! cgroup v1 controller files (Documentation/admin-guide/cgroup-v1/*).
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxResources};

use super::stats::{self, BlkioStats, CpuStats, MemoryStats, OomEvents, PidsStats, Stats};
use super::{Error, Result, fs};

type Controllers = BTreeMap<String, PathBuf>;

/// mkdir -p in every controller mount. cpuset needs `cpus`/`mems` copied down from
/// the parent before a task can join (cpusets.rst §1.3).
pub(super) fn create(ctrl: &Controllers, rel: &Path) -> Result<()> {
    let mut done: Vec<&PathBuf> = Vec::new();
    for (name, root) in ctrl {
        if done.contains(&root) {
            continue;
        }
        done.push(root);
        if name == "cpuset" {
            create_cpuset(root, rel)?;
        } else {
            fs::mkdir_p(&root.join(rel))?;
        }
    }
    Ok(())
}

fn create_cpuset(root: &Path, rel: &Path) -> Result<()> {
    let mut dir = root.to_path_buf();
    for comp in rel.components() {
        let parent = dir.clone();
        dir.push(comp);
        // One level: a parent made by mkdir -p would lack its cpus and mems.
        fs::mkdir(&dir)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read_opt(&dir.join(file))?.unwrap_or_default();
            if mine.trim().is_empty() {
                let theirs = fs::read(&parent.join(file))?;
                fs::write_new(&dir.join(file), theirs.trim())?;
            }
        }
    }
    Ok(())
}

fn dir(ctrl: &Controllers, name: &str, rel: &Path) -> Result<PathBuf> {
    ctrl.get(name)
        .map(|r| r.join(rel))
        .ok_or_else(|| Error::Unsupported {
            what: format!("the {name} controller"),
            hint: format!("mount the cgroup v1 {name} hierarchy"),
        })
}

pub(super) fn apply(ctrl: &Controllers, rel: &Path, res: &LinuxResources) -> Result<()> {
    if let Some(m) = res.memory() {
        memory(&dir(ctrl, "memory", rel)?, m)?;
    }
    if let Some(c) = res.cpu() {
        cpu(ctrl, rel, c)?;
    }
    if let Some(p) = res.pids() {
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        fs::write(&dir(ctrl, "pids", rel)?.join("pids.max"), &v)?;
    }
    if let Some(b) = res.block_io() {
        blkio(&dir(ctrl, "blkio", rel)?, b)?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        let d = dir(ctrl, "hugetlb", rel)?;
        fs::write(
            &d.join(format!("hugetlb.{}.limit_in_bytes", h.page_size())),
            &h.limit().to_string(),
        )?;
    }
    if let Some(devs) = res.devices().as_ref().filter(|d| !d.is_empty()) {
        devices(&dir(ctrl, "devices", rel)?, devs)?;
    }
    Ok(())
}

fn memory(d: &Path, m: &LinuxMemory) -> Result<()> {
    if let Some(r) = m.reservation() {
        fs::write(&d.join("memory.soft_limit_in_bytes"), &r.to_string())?;
    }
    let limit = m.limit().map(|l| {
        if l <= 0 {
            "-1".to_string()
        } else {
            l.to_string()
        }
    });
    let swap = m.swap().map(|s| {
        if s <= 0 {
            "-1".to_string()
        } else {
            s.to_string()
        }
    });
    let memsw = d.join("memory.memsw.limit_in_bytes");
    if swap.is_some() && !memsw.exists() {
        return Err(Error::Unsupported {
            what: "memory.swap".into(),
            hint: "swap accounting is off (boot with swapaccount=1)".into(),
        });
    }
    // memsw must stay >= limit: when raising, memsw goes first; when lowering,
    // limit goes first. Try limit first, and on EINVAL the other order.
    let set_limit = |v: &str| fs::write(&d.join("memory.limit_in_bytes"), v);
    match (&limit, &swap) {
        (Some(l), Some(s)) => {
            if set_limit(l).is_err() {
                fs::write(&memsw, s)?;
                set_limit(l)?;
            } else {
                fs::write(&memsw, s)?;
            }
        }
        (Some(l), None) => set_limit(l)?,
        (None, Some(s)) => fs::write(&memsw, s)?,
        (None, None) => {}
    }
    if let Some(s) = m.swappiness() {
        fs::write(&d.join("memory.swappiness"), &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fs::write(&d.join("memory.oom_control"), "1")?;
    }
    Ok(())
}

fn cpu(ctrl: &Controllers, rel: &Path, c: &LinuxCpu) -> Result<()> {
    let needs_cpu = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
        || c.burst().is_some()
        || c.idle().is_some();
    if needs_cpu {
        let d = dir(ctrl, "cpu", rel)?;
        if let Some(s) = c.shares().filter(|&s| s > 0) {
            fs::write(&d.join("cpu.shares"), &s.to_string())?;
        }
        // Period before quota: the kernel validates quota against the period.
        if let Some(p) = c.period() {
            fs::write(&d.join("cpu.cfs_period_us"), &p.to_string())?;
        }
        if let Some(q) = c.quota() {
            fs::write(
                &d.join("cpu.cfs_quota_us"),
                &(if q <= 0 { -1 } else { q }).to_string(),
            )?;
        }
        if let Some(b) = c.burst() {
            fs::write(&d.join("cpu.cfs_burst_us"), &b.to_string())?;
        }
        if let Some(i) = c.idle() {
            fs::write(&d.join("cpu.idle"), &i.to_string())?;
        }
        if let Some(p) = c.realtime_period() {
            fs::write(&d.join("cpu.rt_period_us"), &p.to_string())?;
        }
        if let Some(r) = c.realtime_runtime() {
            fs::write(&d.join("cpu.rt_runtime_us"), &r.to_string())?;
        }
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(&dir(ctrl, "cpuset", rel)?.join("cpuset.cpus"), cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(&dir(ctrl, "cpuset", rel)?.join("cpuset.mems"), mems)?;
    }
    Ok(())
}

fn blkio(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = b.weight() {
        fs::write(&d.join("blkio.weight"), &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        fs::write(&d.join("blkio.leaf_weight"), &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            fs::write(
                &d.join("blkio.weight_device"),
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            fs::write(
                &d.join(file),
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// devices.allow / devices.deny lines: `type major:minor access` (devices.rst).
pub(super) fn device_rule(r: &LinuxDeviceCgroup) -> String {
    let typ = r.typ().map_or("a", |t| match t.as_str() {
        "b" => "b",
        "c" | "u" => "c",
        _ => "a",
    });
    if typ == "a" && r.major().is_none() && r.minor().is_none() {
        return "a".into();
    }
    let num = |n: Option<i64>| {
        n.filter(|&n| n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = r.access().as_deref().unwrap_or("rwm");
    format!("{typ} {}:{} {access}", num(r.major()), num(r.minor()))
}

fn devices(d: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for r in rules {
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(&d.join(file), &device_rule(r))?;
    }
    Ok(())
}

pub(super) fn stats(ctrl: &Controllers, rel: &Path) -> Result<Stats> {
    let memory = match ctrl.get("memory").map(|r| r.join(rel)) {
        None => None,
        Some(d) => match fs::read_u64(&d.join("memory.usage_in_bytes"))? {
            None => None,
            Some(usage) => {
                let stat = fs::read_opt(&d.join("memory.stat"))?.unwrap_or_default();
                Some(MemoryStats {
                    usage,
                    limit: stats::limit(fs::read_u64(&d.join("memory.limit_in_bytes"))?),
                    anon: fs::flat_key(&stat, "total_rss")
                        .or_else(|| fs::flat_key(&stat, "rss"))
                        .unwrap_or(0),
                    file: fs::flat_key(&stat, "total_cache")
                        .or_else(|| fs::flat_key(&stat, "cache"))
                        .unwrap_or(0),
                })
            }
        },
    };
    let pids = match ctrl.get("pids").map(|r| r.join(rel)) {
        None => None,
        Some(d) => fs::read_u64(&d.join("pids.current"))?.map(|current| PidsStats {
            current,
            limit: None,
        }),
    };
    let pids = match pids {
        Some(mut p) => {
            p.limit = stats::limit(fs::read_u64(&dir(ctrl, "pids", rel)?.join("pids.max"))?);
            Some(p)
        }
        None => None,
    };
    let cpu = match ctrl.get("cpuacct").map(|r| r.join(rel)) {
        None => None,
        Some(d) => match fs::read_u64(&d.join("cpuacct.usage"))? {
            None => None,
            Some(ns) => {
                let st = fs::read_opt(&d.join("cpuacct.stat"))?.unwrap_or_default();
                // cpuacct.stat is in USER_HZ ticks (100 per second on Linux).
                let tick = |k| fs::flat_key(&st, k).unwrap_or(0) * 10_000;
                Some(CpuStats {
                    usage_usec: ns / 1000,
                    user_usec: tick("user"),
                    system_usec: tick("system"),
                })
            }
        },
    };
    let blkio = match ctrl.get("blkio").map(|r| r.join(rel)) {
        None => None,
        Some(d) => {
            fs::read_opt(&d.join("blkio.throttle.io_service_bytes"))?.map(|s| io_service_bytes(&s))
        }
    };
    Ok(Stats {
        memory,
        pids,
        cpu,
        blkio,
    })
}

/// `8:0 Read 4096` lines (and a `Total` line, skipped).
fn io_service_bytes(content: &str) -> BlkioStats {
    let mut out = BlkioStats::default();
    for line in content.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, v] = f[..] {
            let v: u64 = v.parse().unwrap_or(0);
            match op {
                "Read" => out.read_bytes += v,
                "Write" => out.write_bytes += v,
                _ => {}
            }
        }
    }
    out
}

pub(super) fn oom_events(ctrl: &Controllers, rel: &Path) -> Result<OomEvents> {
    let path = dir(ctrl, "memory", rel)?.join("memory.oom_control");
    let s = fs::read(&path)?;
    Ok(OomEvents {
        oom: 0,
        oom_kill: fs::flat_key(&s, "oom_kill").unwrap_or(0),
        under_oom: fs::flat_key(&s, "under_oom") == Some(1),
    })
}

/// Register an eventfd for OOM notifications (cgroup-v1/memory.rst §9).
pub(super) fn oom_eventfd(ctrl: &Controllers, rel: &Path) -> Result<OwnedFd> {
    let d = dir(ctrl, "memory", rel)?;
    let control = d.join("memory.oom_control");
    let oc = std::fs::File::open(&control).map_err(|source| Error::Read {
        path: control.clone(),
        source,
    })?;
    let efd = nix::sys::eventfd::EventFd::from_flags(nix::sys::eventfd::EfdFlags::EFD_CLOEXEC)
        .map_err(|source| Error::Sys {
            op: "eventfd",
            source,
        })?;
    let line = format!("{} {}", efd.as_raw_fd(), oc.as_raw_fd());
    fs::write(&d.join("cgroup.event_control"), &line)?;
    Ok(OwnedFd::from(efd))
}

pub(super) fn set_frozen(d: &Path, frozen: bool) -> Result<()> {
    let target = if frozen { "FROZEN" } else { "THAWED" };
    fs::write(&d.join("freezer.state"), target)?;
    fs::wait_until(
        d,
        if frozen { "frozen" } else { "thawed" },
        Duration::from_secs(5),
        || {
            let state = fs::read(&d.join("freezer.state"))?;
            if state.trim() == target {
                return Ok(true);
            }
            // FREEZING: write again, the kernel retries tasks that were busy.
            fs::write(&d.join("freezer.state"), target)?;
            Ok(false)
        },
    )
}

pub(super) fn is_frozen(d: &Path) -> Result<bool> {
    Ok(fs::read(&d.join("freezer.state"))?.trim() == "FROZEN")
}
