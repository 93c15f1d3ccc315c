//! Resource limits, replicas and restart policy. Compose has two spellings
//! for most of them (`mem_limit` and `deploy.resources.limits.memory`, ...):
//! both are accepted, and giving both with different values is an error.
use super::ctx::Ctx;
use super::raw::{RawBlkio, RawDeviceRate, RawResources, RawService, RawUpdateConfig};
use super::shapes::Scalar;
use crate::model::{
    Blkio, DeviceRate, DeviceWeight, FailureAction, Resources, RestartPolicy, UpdateConfig,
    UpdateOrder,
};

pub fn service(ctx: &mut Ctx<'_>, raw: &RawService) -> (u32, RestartPolicy, Resources) {
    let deploy = raw.deploy.as_ref();
    let limits = deploy
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = deploy
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    if let Some(mode) = deploy.and_then(|d| d.mode.as_deref())
        && mode != "replicated"
    {
        ctx.err(
            &["deploy", "mode"],
            format!("deploy mode `{mode}` is not supported on one host: only `replicated`"),
        );
    }
    let replicas = one_of(
        ctx,
        ("scale", raw.scale),
        ("deploy.replicas", deploy.and_then(|d| d.replicas)),
        &["deploy", "replicas"],
    )
    .unwrap_or(1);

    let memory = {
        let a = ctx.size(&["mem_limit"], &raw.mem_limit);
        let b = ctx.size(
            &["deploy", "resources", "limits", "memory"],
            &limits.and_then(|l| l.memory.clone()),
        );
        one_of(
            ctx,
            ("mem_limit", a),
            ("deploy.resources.limits.memory", b),
            &["deploy", "resources", "limits", "memory"],
        )
    };
    let memory_reservation = {
        let a = ctx.size(&["mem_reservation"], &raw.mem_reservation);
        let path = ["deploy", "resources", "reservations", "memory"];
        let b = ctx.size(&path, &reservations.and_then(|r| r.memory.clone()));
        one_of(
            ctx,
            ("mem_reservation", a),
            ("deploy.resources.reservations.memory", b),
            &path,
        )
    };
    let cpus = {
        let a = cpus(ctx, &["cpus"], raw.cpus.as_ref());
        let path = ["deploy", "resources", "limits", "cpus"];
        let b = cpus(ctx, &path, limits.and_then(|l| l.cpus.as_ref()));
        match (a, b) {
            (Some(a), Some(b)) if (a - b).abs() > f64::EPSILON => {
                ctx.err(
                    &path,
                    format!("cpus is {a} but deploy.resources.limits.cpus is {b}: give one"),
                );
                Some(a)
            }
            (a, b) => a.or(b),
        }
    };
    let pids = one_of(
        ctx,
        ("pids_limit", raw.pids_limit),
        ("deploy.resources.limits.pids", limits.and_then(|l| l.pids)),
        &["deploy", "resources", "limits", "pids"],
    );
    let memory_swap = swap(ctx, &["memswap_limit"], raw.memswap_limit.as_ref(), memory);
    if let Some(s) = raw.mem_swappiness
        && s > 100
    {
        ctx.err(&["mem_swappiness"], "mem_swappiness must be 0..100");
    }
    let resources = Resources {
        memory,
        memory_reservation,
        memory_swap,
        memory_swappiness: raw.mem_swappiness,
        cpus,
        cpu_shares: raw.cpu_shares,
        cpu_quota: raw.cpu_quota,
        cpu_period: raw.cpu_period,
        cpuset: cpuset(ctx, &["cpuset"], raw.cpuset.as_deref()),
        pids,
        blkio: blkio(ctx, "blkio_config", raw.blkio_config.as_ref()),
        oom_kill_disable: raw.oom_kill_disable.unwrap_or(false),
    };
    (replicas, restart(ctx, raw), resources)
}

/// The stack-wide `[resources]` table.
pub fn stack(ctx: &mut Ctx<'_>, raw: Option<&RawResources>) -> Resources {
    let Some(r) = raw else {
        return Resources::default();
    };
    let memory = ctx.size(&["memory"], &r.memory);
    Resources {
        memory,
        memory_reservation: ctx.size(&["memory_reservation"], &r.memory_reservation),
        memory_swap: swap(ctx, &["memory_swap"], r.memory_swap.as_ref(), memory),
        memory_swappiness: None,
        cpus: cpus(ctx, &["cpus"], r.cpus.as_ref()),
        cpu_shares: r.cpu_shares,
        cpu_quota: r.cpu_quota,
        cpu_period: r.cpu_period,
        cpuset: cpuset(ctx, &["cpuset"], r.cpuset.as_deref()),
        pids: r.pids,
        blkio: blkio(ctx, "blkio_config", r.blkio_config.as_ref()),
        oom_kill_disable: false,
    }
}

/// Two spellings of one setting: either, or both when equal.
fn one_of<T: PartialEq + std::fmt::Display + Copy>(
    ctx: &mut Ctx<'_>,
    a: (&str, Option<T>),
    b: (&str, Option<T>),
    path: &[&str],
) -> Option<T> {
    match (a.1, b.1) {
        (Some(x), Some(y)) if x != y => {
            ctx.err(path, format!("{} is {x} but {} is {y}: give one", a.0, b.0));
            Some(x)
        }
        (x, y) => x.or(y),
    }
}

fn cpus(ctx: &mut Ctx<'_>, path: &[&str], v: Option<&Scalar>) -> Option<f64> {
    let v = v?;
    match v.0.trim().parse::<f64>() {
        Ok(c) if c > 0.0 && c.is_finite() => Some(c),
        Ok(0.0) => None,
        _ => {
            ctx.err(
                path,
                format!(
                    "invalid cpus `{}`: expected a positive number like 0.5 or 2",
                    v.0
                ),
            );
            None
        }
    }
}

fn swap(ctx: &mut Ctx<'_>, path: &[&str], v: Option<&Scalar>, memory: Option<u64>) -> Option<i64> {
    let v = v?;
    if v.0.trim() == "-1" {
        return Some(-1);
    }
    let bytes = ctx.size(path, &Some(v.clone()))?;
    if let Some(m) = memory
        && bytes < m
    {
        ctx.err(
            path,
            "memory+swap limit must not be smaller than the memory limit",
        );
    }
    i64::try_from(bytes).ok()
}

/// `0-3,5`: CPU (or memory node) lists as the kernel's cpuset files take them.
fn cpuset(ctx: &mut Ctx<'_>, path: &[&str], v: Option<&str>) -> Option<String> {
    let v = v?.trim();
    let valid = !v.is_empty()
        && v.split(',').all(|part| {
            let mut ends = part.splitn(2, '-').map(|n| n.parse::<u32>());
            match (ends.next(), ends.next()) {
                (Some(Ok(_)), None) => true,
                (Some(Ok(a)), Some(Ok(b))) => a <= b,
                _ => false,
            }
        });
    if !valid {
        ctx.err(
            path,
            format!("invalid cpuset `{v}`: expected a list like 0-3,5"),
        );
        return None;
    }
    Some(v.to_string())
}

fn blkio(ctx: &mut Ctx<'_>, key: &str, raw: Option<&RawBlkio>) -> Blkio {
    let Some(b) = raw else {
        return Blkio::default();
    };
    let check_weight = |ctx: &mut Ctx<'_>, path: &[&str], w: u16| {
        if !(10..=1000).contains(&w) {
            ctx.err(path, format!("blkio weight {w} is outside 10..1000"));
        }
    };
    if let Some(w) = b.weight {
        check_weight(ctx, &[key, "weight"], w);
    }
    let mut weight_device = Vec::new();
    for (i, d) in b.weight_device.iter().flatten().enumerate() {
        check_weight(ctx, &[key, "weight_device", &i.to_string()], d.weight);
        weight_device.push(DeviceWeight {
            path: d.path.clone().into(),
            weight: d.weight,
        });
    }
    let mut rates =
        |field: &str, list: &Option<Vec<RawDeviceRate>>, bytes: bool| -> Vec<DeviceRate> {
            let mut out = Vec::new();
            for (i, d) in list.iter().flatten().enumerate() {
                let idx = i.to_string();
                let path = [key, field, &idx, "rate"];
                let rate = if bytes {
                    ctx.size(&path, &Some(d.rate.clone()))
                } else {
                    ctx.parse(&path, &d.rate.0, "operations per second")
                };
                if let Some(rate) = rate {
                    out.push(DeviceRate {
                        path: d.path.clone().into(),
                        rate,
                    });
                }
            }
            out
        };
    Blkio {
        weight: b.weight,
        weight_device,
        device_read_bps: rates("device_read_bps", &b.device_read_bps, true),
        device_write_bps: rates("device_write_bps", &b.device_write_bps, true),
        device_read_iops: rates("device_read_iops", &b.device_read_iops, false),
        device_write_iops: rates("device_write_iops", &b.device_write_iops, false),
    }
}

/// `restart` and `deploy.restart_policy`, which must agree when both are given.
fn restart(ctx: &mut Ctx<'_>, raw: &RawService) -> RestartPolicy {
    let from_restart = raw
        .restart
        .as_deref()
        .and_then(|r| match r.parse::<RestartPolicy>() {
            Ok(p) => Some(p),
            Err(e) => {
                ctx.err(&["restart"], e);
                None
            }
        });
    let policy = raw.deploy.as_ref().and_then(|d| d.restart_policy.as_ref());
    let from_deploy = policy.and_then(|p| {
        for (k, v) in [("delay", &p.delay), ("window", &p.window)] {
            if v.is_some() {
                ctx.warn(format!(
                    "deploy.restart_policy.{k} has no effect: stack restarts with exponential backoff"
                ));
            }
        }
        match p.condition.as_deref() {
            Some("none") => Some(RestartPolicy::No),
            Some("on-failure") => Some(RestartPolicy::OnFailure {
                max_retries: p.max_attempts,
            }),
            None | Some("any") => {
                if p.max_attempts.is_some() {
                    ctx.err(
                        &["deploy", "restart_policy", "max_attempts"],
                        "max_attempts needs condition: on-failure",
                    );
                }
                Some(RestartPolicy::Always)
            }
            Some(other) => {
                ctx.err(
                    &["deploy", "restart_policy", "condition"],
                    format!("unknown restart condition `{other}`: expected none, on-failure or any"),
                );
                None
            }
        }
    });
    match (from_restart, from_deploy) {
        (Some(a), Some(b)) if a != b => {
            ctx.err(
                &["deploy", "restart_policy"],
                format!("restart is `{a}` but deploy.restart_policy means `{b}`: give one"),
            );
            a
        }
        (a, b) => a.or(b).unwrap_or(RestartPolicy::No),
    }
}

/// `deploy.update_config`.
pub fn update_config(ctx: &mut Ctx<'_>, raw: Option<&RawUpdateConfig>) -> UpdateConfig {
    let Some(raw) = raw else {
        return UpdateConfig::default();
    };
    let path = |k| ["deploy", "update_config", k];
    let order = match raw.order.as_deref() {
        None | Some("stop-first") => UpdateOrder::StopFirst,
        Some("start-first") => UpdateOrder::StartFirst,
        Some(o) => {
            ctx.err(
                &path("order"),
                format!("unknown update order `{o}`: use start-first or stop-first"),
            );
            UpdateOrder::StopFirst
        }
    };
    let failure_action = match raw.failure_action.as_deref() {
        None | Some("rollback") => FailureAction::Rollback,
        Some("continue") => FailureAction::Continue,
        Some("pause") => {
            ctx.err(
                &path("failure_action"),
                "failure_action `pause` has no meaning for a one-shot `up`: use rollback (keep the old container) or continue",
            );
            FailureAction::Rollback
        }
        Some(a) => {
            ctx.err(
                &path("failure_action"),
                format!("unknown failure_action `{a}`: use rollback or continue"),
            );
            FailureAction::Rollback
        }
    };
    UpdateConfig {
        order,
        failure_action,
        monitor: ctx.duration(&path("monitor"), &raw.monitor),
    }
}
