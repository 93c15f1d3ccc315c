//! The `process` section of config.json -> the exec part of the [`InitPlan`].
use std::path::Path;

use oci_spec::runtime::{PosixRlimitType, Spec};

use super::Error;
use super::plan::{InitPlan, cap_sets, cstr};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) fn plan(plan: &mut InitPlan, spec: &Spec) -> Result<(), Error> {
    let p = spec.process().as_ref().ok_or_else(|| Error::Invalid {
        field: "process".into(),
        reason: "missing".into(),
    })?;
    let args = p.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::Invalid {
            field: "process.args".into(),
            reason: "must name the program to run".into(),
        });
    }
    plan.args = args
        .iter()
        .map(|a| cstr(a, "process.args"))
        .collect::<Result<_, _>>()?;
    let env = p.env().as_deref().unwrap_or_default();
    plan.env = env
        .iter()
        .map(|e| cstr(e, "process.env"))
        .collect::<Result<_, _>>()?;
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    plan.exec_candidates = exec_candidates(&args[0], path_var)?;
    if !p.cwd().is_absolute() {
        return Err(Error::Invalid {
            field: "process.cwd".into(),
            reason: "must be an absolute path".into(),
        });
    }
    plan.cwd = cstr(p.cwd(), "process.cwd")?;
    if p.cwd() != Path::new("/") {
        plan.cwd_path = Some(super::plan::root_path(p.cwd(), "process.cwd")?);
    }
    plan.uid = p.user().uid();
    plan.gid = p.user().gid();
    plan.groups = p.user().additional_gids().clone().unwrap_or_default();
    // runc's default: never inherit the caller's umask.
    plan.umask = Some(p.user().umask().unwrap_or(0o022));
    plan.caps = cap_sets(spec)?;
    plan.no_new_privs = p.no_new_privileges().unwrap_or(false);
    plan.oom_score_adj = p.oom_score_adj();
    plan.terminal = p.terminal().unwrap_or(false);
    plan.console_size = p.console_size().map(|b| {
        let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
        (clamp(b.height()), clamp(b.width()))
    });
    if let Some(v) = p.oom_score_adj().filter(|v| !(-1000..=1000).contains(v)) {
        return Err(Error::Invalid {
            field: "process.oomScoreAdj".into(),
            reason: format!("{v} is outside -1000..=1000"),
        });
    }
    for r in p.rlimits().iter().flatten() {
        plan.rlimits.push(rlimit(r.typ(), r.soft(), r.hard())?);
    }
    unsupported_process_fields(p)?;
    if let Some(io) = p.io_priority() {
        plan.ioprio = Some(ioprio(io)?);
    }
    if let Some(s) = p.scheduler() {
        plan.sched = Some(sched(s)?);
    }
    Ok(())
}

/// An exec like execvpe(3): a name with '/' is used as is, else each PATH entry.
fn exec_candidates(arg0: &str, path_var: &str) -> Result<Vec<std::ffi::CString>, Error> {
    if arg0.contains('/') {
        return Ok(vec![cstr(arg0, "process.args[0]")?]);
    }
    path_var
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| cstr(Path::new(d).join(arg0), "process.args[0]"))
        .collect()
}

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as R;
    match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Validate against the current hard limit: raising it needs CAP_SYS_RESOURCE
/// (setrlimit(2)), which this process may lack; better a clear error now than an
/// EPERM inside the container init.
fn rlimit(t: PosixRlimitType, soft: u64, hard: u64) -> Result<(libc::c_int, libc::rlimit), Error> {
    let field = format!("process.rlimits.{t}");
    if soft > hard {
        return Err(Error::Invalid {
            field,
            reason: format!("soft limit {soft} is above the hard limit {hard}"),
        });
    }
    let res = resource(t);
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid, exclusively borrowed struct.
    if unsafe { libc::getrlimit(res, &mut cur) } != 0 {
        return Err(Error::Sys {
            op: "getrlimit",
            source: nix::Error::last(),
        });
    }
    if hard > cur.rlim_max && !has_cap_sys_resource() {
        return Err(Error::Invalid {
            field,
            reason: format!(
                "hard limit {hard} is above this process's hard limit {} and raising it needs CAP_SYS_RESOURCE; lower it or raise the limit of the caller",
                cur.rlim_max
            ),
        });
    }
    #[allow(clippy::cast_possible_wrap)]
    Ok((
        res as libc::c_int,
        libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        },
    ))
}

fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|m| m & (1 << 24) != 0)
}

fn unsupported_process_fields(p: &oci_spec::runtime::Process) -> Result<(), Error> {
    if let Some(a) = p.apparmor_profile().as_deref().filter(|a| !a.is_empty()) {
        if !Path::new("/sys/kernel/security/apparmor").exists() {
            return Err(Error::Unsupported {
                what: format!("apparmorProfile {a:?}"),
                hint: "AppArmor is not enabled on this host".into(),
            });
        }
        return Err(Error::Unsupported {
            what: format!("apparmorProfile {a:?}"),
            hint: "stack does not apply AppArmor profiles yet".into(),
        });
    }
    if let Some(l) = p.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        return Err(Error::Unsupported {
            what: format!("selinuxLabel {l:?}"),
            hint: "SELinux is not enabled on this host".into(),
        });
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(Error::Unsupported {
            what: "process.execCPUAffinity".into(),
            hint: "remove the field; stack does not apply it yet".into(),
        });
    }
    Ok(())
}

/// ioprio_set(2) encoding: class in bits 13.., level 0..=7.
fn ioprio(io: &oci_spec::runtime::LinuxIOPriority) -> Result<libc::c_int, Error> {
    use oci_spec::runtime::IOPriorityClass as C;
    let class = match io.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    let level = io.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::Invalid {
            field: "process.ioPriority.priority".into(),
            reason: format!("{level} is outside 0..=7"),
        });
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok((class << 13) | level as libc::c_int)
}

/// sched_setattr(2) attributes (sched(7)).
fn sched(s: &oci_spec::runtime::Scheduler) -> Result<super::sys::SchedAttr, Error> {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => {
            return Err(Error::Unsupported {
                what: "SCHED_ISO".into(),
                hint: "Linux does not implement SCHED_ISO".into(),
            });
        }
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(super::sys::SchedAttr {
        size: 48,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: u32::try_from(s.priority().unwrap_or(0)).map_err(|_| Error::Invalid {
            field: "process.scheduler.priority".into(),
            reason: "must not be negative".into(),
        })?,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}
