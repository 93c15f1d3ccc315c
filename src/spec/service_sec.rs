//! Security and process settings: capabilities, security_opt, ulimits,
//! stop signals.
use std::collections::BTreeMap;

use super::ctx::Ctx;
use super::diag::did_you_mean;
use super::paths;
use super::raw::RawUlimit;
use super::shapes::ShortOrLong;
use crate::model::{Seccomp, SecurityOpts, Ulimit};

/// capabilities(7), Linux 6.x: the runtime's list.
use crate::runtime::CAPABILITY_NAMES as CAPABILITIES;

/// getrlimit(2) resources, by their Docker names.
const ULIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// signal(7) names without the SIG prefix.
const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

pub fn capabilities(ctx: &mut Ctx<'_>, key: &str, raw: Option<&[String]>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in raw.unwrap_or_default().iter().enumerate() {
        let upper = c.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if bare == "ALL" {
            out.push("ALL".to_string());
        } else if CAPABILITIES.contains(&bare) {
            out.push(format!("CAP_{bare}"));
        } else {
            let d = super::diag::Diagnostic::new(
                ctx.node.span_at(&[key, &i.to_string()]),
                format!("{}: unknown capability `{c}`", ctx.what),
            );
            ctx.errors
                .push(match did_you_mean(bare, CAPABILITIES.iter().copied()) {
                    Some(h) => d.with_help(h),
                    None => d,
                });
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn security_opts(ctx: &mut Ctx<'_>, raw: Option<&[String]>) -> SecurityOpts {
    let mut out = SecurityOpts::default();
    for (i, opt) in raw.unwrap_or_default().iter().enumerate() {
        let idx = i.to_string();
        // Docker accepts both `key=value` and the older `key:value`.
        let (k, v) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .map_or((opt.as_str(), None), |(k, v)| (k, Some(v)));
        match (k, v) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => out.seccomp = Some(Seccomp::Unconfined),
            ("seccomp", Some(path)) if !path.is_empty() => {
                out.seccomp = Some(Seccomp::Profile(paths::absolute(ctx.base, path)))
            }
            ("apparmor", Some(p)) if !p.is_empty() => out.apparmor = Some(p.to_string()),
            _ => ctx.err_help(
                &["security_opt", &idx],
                format!("security_opt `{opt}` is not supported"),
                "supported: no-new-privileges[=true|false], seccomp=unconfined|PATH, apparmor=PROFILE",
            ),
        }
    }
    out
}

pub fn ulimits(
    ctx: &mut Ctx<'_>,
    raw: Option<&BTreeMap<String, ShortOrLong<RawUlimit>>>,
) -> BTreeMap<String, Ulimit> {
    let mut out = BTreeMap::new();
    for (name, v) in raw.into_iter().flatten() {
        if !ULIMITS.contains(&name.as_str()) {
            let d = super::diag::Diagnostic::new(
                ctx.node.key_span_at(&["ulimits", name]),
                format!("{}: unknown ulimit `{name}`", ctx.what),
            );
            ctx.errors.push(match did_you_mean(name, ULIMITS) {
                Some(h) => d.with_help(h),
                None => d,
            });
            continue;
        }
        let limit = match v {
            ShortOrLong::Short(s) => match s.parse::<i64>() {
                Ok(n) => Ulimit { soft: n, hard: n },
                Err(_) => {
                    ctx.err(&["ulimits", name], format!("ulimit `{s}` is not a number"));
                    continue;
                }
            },
            ShortOrLong::Long(l) => Ulimit {
                soft: l.soft,
                hard: l.hard,
            },
        };
        // -1 means unlimited (RLIM_INFINITY) for both.
        let unlimited = |v: i64| v == -1;
        if !unlimited(limit.hard) && (unlimited(limit.soft) || limit.soft > limit.hard) {
            ctx.err(
                &["ulimits", name],
                format!(
                    "ulimit {name}: soft limit {} exceeds hard limit {}",
                    limit.soft, limit.hard
                ),
            );
            continue;
        }
        out.insert(name.clone(), limit);
    }
    out
}

/// `SIGTERM`, `TERM`, `sigterm`, `15`, `SIGRTMIN+3` -> `SIGTERM` ...
pub fn signal(ctx: &mut Ctx<'_>, s: &str) -> Option<String> {
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = |b: &str| {
        b.strip_prefix("RTMIN+")
            .or_else(|| b.strip_prefix("RTMAX-"))
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| n <= 30)
            || b == "RTMIN"
            || b == "RTMAX"
    };
    if let Ok(n) = bare.parse::<u8>()
        && (1..=64).contains(&n)
    {
        return Some(n.to_string());
    }
    if SIGNALS.contains(&bare) || rt(bare) {
        return Some(format!("SIG{bare}"));
    }
    ctx.err(&["stop_signal"], format!("unknown signal `{s}`"));
    None
}
