//! seccomp: the OCI `linux.seccomp` section compiled to a classic BPF program.
//!
//! Compiled in the parent with libseccomp (Debian `libseccomp-dev`): it handles
//! multiple architectures, per-rule errno, argument comparisons and syscall-name
//! resolution per arch, which Docker's profile needs (see DESIGN.md). The program
//! is exported (seccomp_export_bpf) into a pipe and read back as `sock_filter`s,
//! so the child only calls seccomp(2) on a prepared buffer — no libseccomp after
//! clone. Compiled programs are cached per runtime state dir (`cache.rs`).
mod cache;
pub(crate) mod listener;
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

/// The syscall the init hands the notify fd over with (`sys::send_fd`): a
/// notify rule on it would block the init before the listener has the fd.
const HANDOVER_SYSCALL: &str = "sendmsg";

/// A compiled filter: the BPF program and the seccomp(2) flags.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub prog: Vec<libc::sock_filter>,
    pub flags: libc::c_uint,
    /// Some rule notifies: the filter is loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER
    /// and the fd goes to `linux.seccomp.listenerPath` (see `listener.rs`).
    pub listener: bool,
}

/// The filter of `s`: from the cache under `state_dir` (the runtime's) when
/// there is one, else compiled.
pub(crate) fn compile_cached(
    s: &LinuxSeccomp,
    state_dir: Option<&std::path::Path>,
) -> Result<Compiled, Error> {
    match state_dir {
        Some(dir) => cache::get_or_compile(&cache::dir(dir), s, || compile(s)),
        None => compile(s),
    }
}

/// Build the filter.
pub(crate) fn compile(s: &LinuxSeccomp) -> Result<Compiled, Error> {
    let default = action(&s.default_action(), s.default_errno_ret())?;
    if default == ScmpAction::Notify {
        // As runc: every syscall of the init after loading, including the one
        // handing the fd over, would wait for a listener that has no fd yet.
        return Err(err("SCMP_ACT_NOTIFY cannot be the default action"));
    }
    let mut ctx = ScmpFilterContext::new(default).map_err(err)?;
    // A binary tree over the syscall numbers, not libseccomp's default list
    // (one comparison per rule in order). For Docker's profile that is
    // ~15 instructions per syscall instead of up to ~1,100. The kernel runs
    // the filter on every syscall of the container, and once per syscall
    // number when it is loaded (the action cache, computed with interrupts
    // off): a load took 1.1 ms here, 0.3 ms with the tree. Before
    // libseccomp 2.5 the attribute does not exist and the list stays.
    let _ = ctx.set_ctl_optimize(2);
    let mut notify = false;
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
        if act == ScmpAction::Notify {
            notify = true;
            if rule.names().iter().any(|n| n == HANDOVER_SYSCALL) {
                return Err(err(format!(
                    "SCMP_ACT_NOTIFY cannot be used for {HANDOVER_SYSCALL}: the runtime sends the \
                     listener fd with it"
                )));
            }
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
    match (notify, s.listener_path()) {
        (true, None) => {
            return Err(err(
                "SCMP_ACT_NOTIFY needs listenerPath (the unix socket of the seccomp agent)",
            ));
        }
        (false, Some(p)) => {
            return Err(err(format!(
                "listenerPath {} is set but no rule uses SCMP_ACT_NOTIFY",
                p.display()
            )));
        }
        (true, Some(_)) => {
            if flags & libc::SECCOMP_FILTER_FLAG_TSYNC as libc::c_uint != 0 {
                return Err(err(
                    "SECCOMP_FILTER_FLAG_TSYNC cannot be combined with a listener (the init is single-threaded: drop it)",
                ));
            }
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as libc::c_uint;
        }
        (false, None) => {}
    }
    Ok(Compiled {
        prog: export(&ctx)?,
        flags,
        listener: notify,
    })
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

    /// Run classic BPF `prog` on a seccomp_data of `nr` on x86_64 with zero
    /// arguments: the return value and how many instructions ran.
    fn run(prog: &[libc::sock_filter], nr: u32) -> (u32, usize) {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&0xC000_003Eu32.to_ne_bytes()); // AUDIT_ARCH_X86_64
        let word = |k: u32| {
            let k = k as usize;
            u32::from_ne_bytes(data[k..k + 4].try_into().unwrap())
        };
        let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
        for steps in 1..=prog.len() {
            let i = prog[pc];
            pc += 1;
            let src = if i.code & 0x08 != 0 { x } else { i.k };
            match (i.code & 0x07, i.code & 0xf8) {
                (0x00, 0x20) => a = word(i.k),         // ld [k]
                (0x00, 0x00) => a = i.k,               // ld #k
                (0x00, 0x60) => a = mem[i.k as usize], // ld M[k]
                (0x01, 0x00) => x = i.k,               // ldx #k
                (0x01, 0x60) => x = mem[i.k as usize], // ldx M[k]
                (0x02, _) => mem[i.k as usize] = a,    // st M[k]
                (0x03, _) => mem[i.k as usize] = x,    // stx M[k]
                (0x04, op) => match op & 0xf0 {
                    0x50 => a &= src,
                    0x40 => a |= src,
                    0x00 => a = a.wrapping_add(src),
                    0x10 => a = a.wrapping_sub(src),
                    other => panic!("alu op {other:#x}"),
                },
                (0x05, op) => {
                    let taken = match op & 0xf0 {
                        0x00 => {
                            pc += i.k as usize; // ja
                            continue;
                        }
                        0x10 => a == src,
                        0x20 => a > src,
                        0x30 => a >= src,
                        0x40 => a & src != 0,
                        other => panic!("jump op {other:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                (0x06, m) => return (if m & 0x10 != 0 { a } else { i.k }, steps),
                (0x07, 0x00) => x = a, // tax
                (0x07, 0x80) => a = x, // txa
                (class, mode) => panic!("instruction {class:#x}/{mode:#x}"),
            }
        }
        panic!("the filter ran off its end");
    }

    #[test]
    fn the_default_profile_is_a_tree_with_dockers_verdicts() {
        let prog = compile(&default_profile(&[])).unwrap().prog;
        let allow = libc::SECCOMP_RET_ALLOW;
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let verdicts = [
            (libc::SYS_read, allow),
            (libc::SYS_openat, allow),
            (libc::SYS_mkdirat, allow),
            (libc::SYS_kexec_load, eperm),
            (libc::SYS_init_module, eperm),
            (libc::SYS_mount, allow),
            (libc::SYS_bpf, eperm),
            // Not in the profile: its default, ENOSYS.
            (1000, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        ];
        for (nr, want) in verdicts {
            assert_eq!(run(&prog, nr as u32).0, want, "syscall {nr}");
        }
        // Every syscall reaches its verdict in a few dozen instructions (the
        // list libseccomp makes by default takes up to ~1,100).
        let longest = (0..460).map(|nr| run(&prog, nr).1).max().unwrap();
        assert!(longest <= 64, "a syscall took {longest} instructions");
    }

    #[test]
    fn a_small_filter_compiles() {
        let Compiled { prog, flags, .. } = compile(&spec(
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
    fn notify_needs_a_listener_and_sets_new_listener() {
        let rule = r#""syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]"#;
        let c = compile(&spec(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock", {rule}}}"#
        )))
        .unwrap();
        assert!(c.listener);
        assert_eq!(
            c.flags,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as libc::c_uint
        );
        let refused = [
            format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", {rule}}}"#),
            r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}"#.to_string(),
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a"}"#.to_string(),
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
                "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}"#
                .to_string(),
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
                    "flags": ["SECCOMP_FILTER_FLAG_TSYNC"], {rule}}}"#
            ),
        ];
        for json in refused {
            assert!(compile(&spec(&json)).is_err(), "{json}");
        }
    }

    #[test]
    fn the_default_profile_compiles_for_default_caps() {
        let caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"].map(String::from);
        let s = default_profile(&caps);
        assert_eq!(name(&s.default_action()), "SCMP_ACT_ERRNO");
        let c = compile(&s).unwrap();
        assert!(c.prog.len() > 100 && !c.listener);
    }
}
