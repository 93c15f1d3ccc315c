//! seccomp: the OCI `linux.seccomp` section compiled to a classic BPF program.
//!
//! Compiled in the parent with libseccomp (Debian `libseccomp-dev`): it handles
//! multiple architectures, per-rule errno, argument comparisons and syscall-name
//! resolution per arch, which Docker's profile needs (see DESIGN.md). The program
//! is exported (seccomp_export_bpf) into a pipe and read back as `sock_filter`s,
//! so the child only calls seccomp(2) on a prepared buffer — no libseccomp after
//! clone.
mod profile;

use std::io::Read;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompOperator};

pub use profile::default_profile;

use super::Error;

fn err(what: impl std::fmt::Display) -> Error {
    Error::Invalid {
        field: "linux.seccomp".into(),
        reason: what.to_string(),
    }
}

/// serde name of an oci-spec enum ("SCMP_ACT_ERRNO", "SCMP_ARCH_X86_64", ...).
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn action(act: &impl serde::Serialize, errno: Option<u32>) -> Result<ScmpAction, Error> {
    let n = name(act);
    if n == "SCMP_ACT_NOTIFY" {
        return Err(Error::Unsupported {
            what: "SCMP_ACT_NOTIFY".into(),
            hint: "seccomp user notification needs a listener; not supported".into(),
        });
    }
    let val = match n.as_str() {
        "SCMP_ACT_ERRNO" => {
            Some(errno.map_or(libc::EPERM, |e| i32::try_from(e).unwrap_or(libc::EPERM)))
        }
        "SCMP_ACT_TRACE" => {
            Some(errno.map_or(libc::EPERM, |e| i32::try_from(e).unwrap_or(libc::EPERM)))
        }
        _ => None,
    };
    ScmpAction::from_str(&n, val).map_err(err)
}

fn compare(a: &oci_spec::runtime::LinuxSeccompArg) -> Result<ScmpArgCompare, Error> {
    let op = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // For MASKED_EQ the value is the mask and valueTwo the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(
                index(a.index())?,
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            ));
        }
    };
    Ok(ScmpArgCompare::new(index(a.index())?, op, a.value()))
}

fn index(i: usize) -> Result<u32, Error> {
    u32::try_from(i)
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| err(format!("argument index {i} is not 0..=5")))
}

fn flag(f: &impl serde::Serialize) -> Result<libc::c_uint, Error> {
    Ok(match name(f).as_str() {
        "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC as libc::c_uint,
        "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG as libc::c_uint,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as libc::c_uint,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => 1 << 5,
        other => return Err(err(format!("unknown flag {other}"))),
    })
}

/// Build the filter; returns the BPF program and the seccomp(2) flags.
pub(crate) fn compile(s: &LinuxSeccomp) -> Result<(Vec<libc::sock_filter>, libc::c_uint), Error> {
    if s.listener_path().is_some() {
        return Err(Error::Unsupported {
            what: "linux.seccomp.listenerPath".into(),
            hint: "seccomp user notification is not supported".into(),
        });
    }
    let default = action(&s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(err)?;
    for arch in s.architectures().iter().flatten() {
        let a: ScmpArch = name(arch).parse().map_err(err)?;
        if !ctx.is_arch_present(a).map_err(err)? {
            ctx.add_arch(a).map_err(err)?;
        }
    }
    for rule in s.syscalls().iter().flatten() {
        let act = action(&rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let args = rule
            .args()
            .iter()
            .flatten()
            .map(compare)
            .collect::<Result<Vec<_>, _>>()?;
        for sys in rule.names() {
            // Names unknown to libseccomp or this arch are skipped, as runc does:
            // profiles list syscalls of every architecture.
            let Ok(nr) = ScmpSyscall::from_name(sys) else {
                continue;
            };
            let added = if args.is_empty() {
                ctx.add_rule(act, nr)
            } else {
                ctx.add_rule_conditional(act, nr, &args)
            };
            added.map_err(|e| err(format!("rule for {sys}: {e}")))?;
        }
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= flag(f)?;
    }
    Ok((export(&ctx)?, flags))
}

/// seccomp_export_bpf into a pipe (a filter is at most 4096 instructions = 32 KiB,
/// below the 64 KiB pipe buffer), read back as sock_filter records.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, Error> {
    let (mut r, w) = std::io::pipe().map_err(|source| Error::Io {
        op: "pipe",
        path: "seccomp".into(),
        source,
    })?;
    ctx.export_bpf(&w).map_err(err)?;
    drop(w);
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(|source| Error::Io {
        op: "reading BPF",
        path: "seccomp".into(),
        source,
    })?;
    let prog: Vec<libc::sock_filter> = bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    if prog.is_empty() || prog.len() > 4096 {
        return Err(err(format!(
            "compiled filter has {} instructions (1..=4096 allowed)",
            prog.len()
        )));
    }
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_small_filter_compiles() {
        let (prog, flags) = compile(&spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["mkdir", "mkdirat", "not_a_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                             {"names": ["personality"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_NE"}]}]}"#,
        ))
        .unwrap();
        assert!(prog.len() > 5);
        assert_eq!(flags, libc::SECCOMP_FILTER_FLAG_LOG as libc::c_uint);
    }

    #[test]
    fn notify_is_refused() {
        assert!(compile(&spec(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#)).is_err());
    }

    #[test]
    fn the_default_profile_compiles_for_default_caps() {
        let caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"].map(String::from);
        let s = default_profile(&caps);
        assert_eq!(name(&s.default_action()), "SCMP_ACT_ERRNO");
        let (prog, _) = compile(&s).unwrap();
        assert!(prog.len() > 100);
    }
}
