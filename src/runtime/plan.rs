//! config.json -> [`InitPlan`]: every value the container's init needs, computed and
//! validated in the parent before clone, so the child only makes raw syscalls on
//! prepared data (no allocation, no parsing, no error formatting after clone).
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use libc::{c_int, c_ulong};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::caps::{self, CapSets};
use super::{Error, mountopts};

/// A path inside the container root, split for component-by-component resolution.
#[derive(Debug, Clone, Default)]
pub(crate) struct RootPath {
    /// "a", "a/b", "a/b/c": each prefix, resolved with RESOLVE_IN_ROOT.
    pub prefixes: Vec<CString>,
    /// "a", "b", "c": the last component of each prefix, created with *at() calls.
    pub names: Vec<CString>,
    pub display: String,
}

#[derive(Debug)]
pub(crate) enum MountKind {
    /// Change the flags of the mount at the destination (MS_REMOUNT).
    Remount,
    Bind {
        source: CString,
        recursive: bool,
    },
    /// Attach the idmapped tree `InitPlan::idmaps[tree]`, prepared by the parent
    /// (`idmap.rs`), with move_mount(2).
    Idmapped {
        tree: usize,
    },
    Fs {
        fstype: CString,
        source: CString,
        data: Option<CString>,
    },
}

#[derive(Debug)]
pub(crate) struct MountPlan {
    pub dest: RootPath,
    /// The destination is a directory (else a file is created for a file bind).
    pub dest_is_dir: bool,
    pub kind: MountKind,
    pub flags: c_ulong,
    pub propagation: Vec<c_ulong>,
    /// Recursive attributes, applied after the mount with mount_setattr(AT_RECURSIVE).
    pub rec: Option<mountopts::RecAttr>,
    /// sysfs in a container without its own network namespace cannot be mounted:
    /// fall back to a read-only recursive bind of the host's /sys, as runc does.
    pub sysfs_fallback: bool,
}

/// An idmapped bind mount, made by the parent before clone (`idmap.rs`).
#[derive(Debug)]
pub(crate) struct IdmapPlan {
    pub source: CString,
    /// Destination, for errors.
    pub dest: String,
    /// rbind: clone the whole tree under the source.
    pub recursive_tree: bool,
    /// ridmap: idmap every mount of the tree, not only its top.
    pub recursive_idmap: bool,
    pub userns: super::idmap::UsernsSource,
}

#[derive(Debug)]
pub(crate) struct DevicePlan {
    pub path: RootPath,
    /// S_IFCHR / S_IFBLK / S_IFIFO | permission bits.
    pub mode: libc::mode_t,
    pub rdev: libc::dev_t,
    pub uid: u32,
    pub gid: u32,
    /// Host node bind-mounted instead of mknod inside a user namespace.
    pub host: CString,
}

/// A hook run by the init itself, inside the container's namespaces
/// (createContainer before pivot_root, startContainer before execve).
#[derive(Debug)]
pub(crate) struct HookPlan {
    pub path: CString,
    /// Own the strings `argv`/`envp` point into.
    #[allow(dead_code)]
    pub args: Vec<CString>,
    #[allow(dead_code)]
    pub env: Vec<CString>,
    /// NULL-terminated pointer arrays into `args`/`env` (heap buffers, stable).
    pub argv: Vec<*const libc::c_char>,
    pub envp: Vec<*const libc::c_char>,
    pub timeout_secs: Option<u64>,
}

pub(crate) fn hook_plan(h: &oci_spec::runtime::Hook) -> Result<HookPlan, Error> {
    let what = "hooks";
    let path = cstr(h.path(), what)?;
    let args: Vec<CString> = match h.args().as_ref().filter(|a| !a.is_empty()) {
        Some(a) => a.iter().map(|x| cstr(x, what)).collect::<Result<_, _>>()?,
        None => vec![path.clone()],
    };
    let env: Vec<CString> = h
        .env()
        .iter()
        .flatten()
        .map(|x| cstr(x, what))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let timeout_secs = h.timeout().map(|t| u64::try_from(t.max(1)).unwrap_or(1));
    Ok(HookPlan {
        path,
        args,
        env,
        argv,
        envp,
        timeout_secs,
    })
}

#[derive(Debug, Default)]
pub(crate) struct InitPlan {
    pub rootfs: CString,
    pub root_readonly: bool,
    pub root_propagation: c_ulong,
    /// With a shared rootfs propagation: the mount point holding the rootfs,
    /// made private first (pivot_root refuses a shared parent mount), and the
    /// propagation re-applied to "/" after pivot_root (as runc does).
    pub rootfs_parent_mount: Option<CString>,
    pub no_pivot: bool,
    pub mounts: Vec<MountPlan>,
    /// The idmapped mounts among `mounts` ([`MountKind::Idmapped`] indexes here).
    pub idmaps: Vec<IdmapPlan>,
    /// Devices and /dev symlinks are created when /dev is a fresh tmpfs.
    pub devices: Vec<DevicePlan>,
    pub dev_symlinks: Vec<(CString, CString)>,
    pub masked: Vec<RootPath>,
    pub readonly: Vec<RootPath>,
    /// (path under /proc, value): namespaced sysctls written through the verified procfs fd.
    pub sysctl: Vec<(CString, CString)>,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub clone_flags: c_int,
    /// Create the network namespace with unshare in the child rather than in
    /// clone: the slowest namespace to make then overlaps with the parent's
    /// cgroup setup. Only when nothing in the parent needs the namespace before
    /// GO (no hooks, no user namespace: see `early_go`).
    pub unshare_net: bool,
    /// unshare(CLONE_NEWCGROUP) in the child *after* the parent placed it in its
    /// cgroup, so the namespace root is the container's cgroup (as runc does).
    pub unshare_cgroupns: bool,
    /// Namespaces to join by path: (type flag, path); opened in the parent.
    pub join: Vec<(c_int, PathBuf)>,
    pub new_userns: bool,
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub umask: Option<libc::mode_t>,
    pub caps: Option<CapSets>,
    pub no_new_privs: bool,
    pub rlimits: Vec<(c_int, libc::rlimit)>,
    pub oom_score_adj: Option<i32>,
    pub personality: Option<c_ulong>,
    pub terminal: bool,
    /// process.consoleSize as (rows, columns), set on the pty.
    pub console_size: Option<(u16, u16)>,
    pub cwd: CString,
    /// cwd inside the root, created before pivot_root when missing.
    pub cwd_path: Option<RootPath>,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// Candidates for execve: args[0] itself when it holds a '/', else PATH entries.
    pub exec_candidates: Vec<CString>,
    pub seccomp: Option<Vec<libc::sock_filter>>,
    pub seccomp_flags: libc::c_uint,
    /// The filter notifies: load it before READY and send its listener fd to the
    /// parent (TAG_SECCOMP), which forwards it to `linux.seccomp.listenerPath`.
    pub seccomp_listener: bool,
    /// ioprio_set(2) value: class << 13 | level.
    pub ioprio: Option<c_int>,
    /// sched_setattr(2) for process.scheduler.
    pub sched: Option<super::sys::SchedAttr>,
    /// A new time namespace: unshare(CLONE_NEWTIME) in the child (clone(2)
    /// cannot take the flag: 0x80 is part of the exit-signal bits) and these
    /// offsets written to /proc/self/timens_offsets before execve enters it.
    pub unshare_time: bool,
    pub time_offsets: Option<CString>,
    /// `exec` into a running container: join its namespaces, no rootfs setup.
    pub exec_mode: bool,
    pub create_container_hooks: Vec<HookPlan>,
    pub start_container_hooks: Vec<HookPlan>,
    /// Wait for GO before anything else (user namespace maps, hooks, exec).
    pub early_go: bool,
    /// Index of the first cgroup mount: GO is awaited before it.
    pub go_before_mount: Option<usize>,
    /// cgroup mounts done after masked/read-only paths, right after GO, so that
    /// everything else overlaps the parent making the cgroup (see
    /// `defer_cgroup_mounts`).
    pub late_mounts: Vec<MountPlan>,
}

pub(crate) fn cstr(s: impl AsRef<OsStr>, what: &str) -> Result<CString, Error> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| Error::Invalid {
        field: what.into(),
        reason: "contains a NUL byte".into(),
    })
}

/// Split an absolute container path into resolvable prefixes; `..` is refused.
pub(crate) fn root_path(p: &Path, what: &str) -> Result<RootPath, Error> {
    let mut out = RootPath {
        display: p.display().to_string(),
        ..Default::default()
    };
    let mut acc = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => {
                acc.push(n);
                out.prefixes.push(cstr(&acc, what)?);
                out.names.push(cstr(n, what)?);
            }
            _ => {
                return Err(Error::Invalid {
                    field: what.into(),
                    reason: format!("{} must not contain '..'", p.display()),
                });
            }
        }
    }
    if out.prefixes.is_empty() {
        return Err(Error::Invalid {
            field: what.into(),
            reason: format!("{} is the container root", p.display()),
        });
    }
    Ok(out)
}

pub(crate) fn ns_flag(t: LinuxNamespaceType) -> c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// Options of `create` that shape the plan.
pub(crate) struct PlanInput<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    /// The container's cgroup (relative), for the v1 `cgroup` mount binds.
    pub cgroup_path: &'a Path,
    /// The runtime's state dir, which caches compiled seccomp filters.
    pub state_dir: Option<&'a Path>,
}

pub(crate) fn build(input: &PlanInput<'_>) -> Result<InitPlan, Error> {
    let spec = input.spec;
    let mut plan = InitPlan {
        no_pivot: input.no_pivot,
        ..Default::default()
    };
    let root = spec.root().as_ref().ok_or_else(|| Error::Invalid {
        field: "root".into(),
        reason: "missing".into(),
    })?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        input.bundle.join(root.path())
    };
    let rootfs = rootfs.canonicalize().map_err(|source| Error::Io {
        op: "resolving root.path",
        path: rootfs.clone(),
        source,
    })?;
    if !rootfs.is_dir() {
        return Err(Error::Invalid {
            field: "root.path".into(),
            reason: format!("{} is not a directory", rootfs.display()),
        });
    }
    plan.rootfs = cstr(&rootfs, "root.path")?;
    plan.root_readonly = root.readonly().unwrap_or(false);
    let linux = spec.linux().clone().unwrap_or_default();
    plan.root_propagation = mountopts::rootfs_propagation(linux.rootfs_propagation().as_deref())?;
    if plan.root_propagation & libc::MS_SHARED != 0 {
        plan.rootfs_parent_mount = Some(cstr(
            super::mountplan::mount_point_of(&rootfs)?,
            "root.path",
        )?);
    }
    namespaces(&mut plan, &linux)?;
    unsupported_linux(&linux)?;
    let has_netns = plan.clone_flags & libc::CLONE_NEWNET != 0;
    let container_userns = container_userns(&plan);
    let mut dev_is_tmpfs = false;
    let mut cgroup_dests: Vec<PathBuf> = Vec::new();
    for m in spec.mounts().iter().flatten() {
        if m.typ().as_deref() == Some("cgroup") {
            cgroup_dests.push(m.destination().clone());
            let opts = mountopts::parse(m.options().as_deref().unwrap_or_default())?;
            let mounts = super::cgroupfs::plan(
                m.destination(),
                &opts,
                plan.unshare_cgroupns,
                input.cgroup_path,
            )?;
            plan.mounts.extend(mounts);
            continue;
        }
        let mut mp = super::mountplan::mount(m, input.bundle, has_netns)?;
        if let Some(idmap) = super::mountplan::idmap(m, &mp, container_userns.as_ref())? {
            mp.kind = MountKind::Idmapped {
                tree: plan.idmaps.len(),
            };
            plan.idmaps.push(idmap);
        }
        if m.destination() == Path::new("/dev") && matches!(mp.kind, MountKind::Fs { .. }) {
            dev_is_tmpfs = true;
        }
        plan.mounts.push(mp);
    }
    // masked/readonly paths are planned below; collect them first for the check.
    let protected: Vec<PathBuf> = linux
        .masked_paths()
        .iter()
        .flatten()
        .chain(linux.readonly_paths().iter().flatten())
        .map(PathBuf::from)
        .collect();
    plan.late_mounts =
        super::mountplan::defer_cgroup_mounts(&mut plan.mounts, &cgroup_dests, &protected);
    plan.go_before_mount = plan.mounts.iter().position(|m| matches!(&m.kind, MountKind::Fs { fstype, .. } if fstype.as_bytes().starts_with(b"cgroup")));
    plan.early_go = plan.new_userns || spec.hooks().is_some();
    plan.unshare_net = !plan.early_go && plan.clone_flags & libc::CLONE_NEWNET != 0;
    if let Some(h) = spec.hooks() {
        plan.create_container_hooks = h
            .create_container()
            .iter()
            .flatten()
            .map(hook_plan)
            .collect::<Result<_, _>>()?;
        plan.start_container_hooks = h
            .start_container()
            .iter()
            .flatten()
            .map(hook_plan)
            .collect::<Result<_, _>>()?;
    }
    if dev_is_tmpfs {
        super::devices::plan(&mut plan, linux.devices().as_deref().unwrap_or_default())?;
    } else if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        super::devices::plan(&mut plan, linux.devices().as_deref().unwrap_or_default())?;
        plan.dev_symlinks.clear();
        plan.devices
            .retain(|d| !super::devices::is_default(&d.path.display));
    }
    for p in linux.masked_paths().iter().flatten() {
        plan.masked
            .push(root_path(Path::new(p), "linux.maskedPaths")?);
    }
    for p in linux.readonly_paths().iter().flatten() {
        plan.readonly
            .push(root_path(Path::new(p), "linux.readonlyPaths")?);
    }
    sysctls(&mut plan, linux.sysctl().as_ref())?;
    if let Some(h) = spec.hostname() {
        // Only in a new UTS namespace: setting it in a joined one would rename
        // another container (or the host).
        if plan.clone_flags & libc::CLONE_NEWUTS == 0 {
            return Err(Error::Invalid {
                field: "hostname".into(),
                reason: "needs a new uts namespace".into(),
            });
        }
        plan.hostname = Some(cstr(h, "hostname")?);
    }
    if let Some(d) = spec.domainname() {
        if plan.clone_flags & libc::CLONE_NEWUTS == 0 {
            return Err(Error::Invalid {
                field: "domainname".into(),
                reason: "needs a new uts namespace".into(),
            });
        }
        plan.domainname = Some(cstr(d, "domainname")?);
    }
    super::process::plan(&mut plan, spec)?;
    process_linux(&mut plan, &linux, input.state_dir)?;
    Ok(plan)
}

/// The parts of `linux` that apply to every process of the container, the init
/// and `exec`'d ones alike (as runc's setns init): personality and seccomp
/// (compiled filters cached under `state_dir`, the runtime's).
pub(crate) fn process_linux(
    plan: &mut InitPlan,
    linux: &oci_spec::runtime::Linux,
    state_dir: Option<&Path>,
) -> Result<(), Error> {
    plan.personality = linux
        .personality()
        .as_ref()
        .map(super::personality::value)
        .transpose()?;
    if let Some(s) = linux.seccomp() {
        let c = super::seccomp::compile_cached(s, state_dir)?;
        plan.seccomp = Some(c.prog);
        plan.seccomp_flags = c.flags;
        plan.seccomp_listener = c.listener;
    }
    Ok(())
}

/// The container's user namespace, for `idmap` mounts without mappings of their own.
fn container_userns(plan: &InitPlan) -> Option<super::idmap::UsernsSource> {
    if let Some((_, path)) = plan.join.iter().find(|j| j.0 == libc::CLONE_NEWUSER) {
        return Some(super::idmap::UsernsSource::Path(path.clone()));
    }
    match (&plan.uid_map, &plan.gid_map) {
        (Some(uid), Some(gid)) if plan.new_userns => Some(super::idmap::UsernsSource::Maps {
            uid: uid.clone(),
            gid: gid.clone(),
        }),
        _ => None,
    }
}

fn namespaces(plan: &mut InitPlan, linux: &oci_spec::runtime::Linux) -> Result<(), Error> {
    let mut seen = 0;
    for ns in linux.namespaces().iter().flatten() {
        let flag = ns_flag(ns.typ());
        if seen & flag != 0 {
            return Err(Error::Invalid {
                field: "linux.namespaces".into(),
                reason: format!("{} listed twice", ns.typ()),
            });
        }
        seen |= flag;
        match ns.path() {
            Some(p) => plan.join.push((flag, p.clone())),
            None => plan.clone_flags |= flag,
        }
    }
    if plan.clone_flags & libc::CLONE_NEWNS == 0
        && !plan.join.iter().any(|j| j.0 == libc::CLONE_NEWNS)
    {
        return Err(Error::Unsupported {
            what: "a container without a mount namespace".into(),
            hint: "add {\"type\": \"mount\"} to linux.namespaces".into(),
        });
    }
    plan.new_userns = plan.clone_flags & libc::CLONE_NEWUSER != 0;
    plan.unshare_cgroupns = plan.clone_flags & libc::CLONE_NEWCGROUP != 0;
    plan.clone_flags &= !libc::CLONE_NEWCGROUP;
    plan.unshare_time = plan.clone_flags & libc::CLONE_NEWTIME != 0;
    plan.clone_flags &= !libc::CLONE_NEWTIME;
    if let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) {
        if !plan.unshare_time {
            return Err(Error::Invalid {
                field: "linux.timeOffsets".into(),
                reason: "needs a new time namespace".into(),
            });
        }
        let mut text = String::new();
        for (clock, o) in offsets {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::Invalid {
                    field: "linux.timeOffsets".into(),
                    reason: format!("unknown clock {clock:?}"),
                });
            }
            text.push_str(&format!(
                "{clock} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            ));
        }
        plan.time_offsets = Some(cstr(text, "linux.timeOffsets")?);
    }
    let maps = |v: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        v.as_ref().filter(|m| !m.is_empty()).map(|m| {
            m.iter()
                .map(|e| format!("{} {} {}\n", e.container_id(), e.host_id(), e.size()))
                .collect::<String>()
        })
    };
    plan.uid_map = maps(linux.uid_mappings());
    plan.gid_map = maps(linux.gid_mappings());
    if plan.new_userns {
        for (name, m) in [
            ("uidMappings", linux.uid_mappings()),
            ("gidMappings", linux.gid_mappings()),
        ] {
            let m = m.as_deref().unwrap_or_default();
            if m.is_empty() {
                return Err(Error::Invalid {
                    field: format!("linux.{name}"),
                    reason: "a new user namespace needs mappings".into(),
                });
            }
            if m.iter().any(|e| e.size() == 0) || m.len() > 340 {
                return Err(Error::Invalid {
                    field: format!("linux.{name}"),
                    reason: "invalid mapping (size 0 or more than 340 lines)".into(),
                });
            }
        }
    } else if plan.uid_map.is_some() || plan.gid_map.is_some() {
        return Err(Error::Invalid {
            field: "linux.uidMappings".into(),
            reason: "mappings need a new user namespace".into(),
        });
    }
    Ok(())
}

/// Only namespaced sysctls may be set: they affect the container alone
/// (runc's validator list: kernel.{msg,sem,shm}*, fs.mqueue.*, net.* with a netns).
fn sysctls(
    plan: &mut InitPlan,
    sysctl: Option<&std::collections::HashMap<String, String>>,
) -> Result<(), Error> {
    for (k, v) in sysctl.into_iter().flatten() {
        let ipc = [
            "kernel.msgmax",
            "kernel.msgmnb",
            "kernel.msgmni",
            "kernel.sem",
            "kernel.shmall",
            "kernel.shmmax",
            "kernel.shmmni",
            "kernel.shm_rmid_forced",
        ];
        let ok = if ipc.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
            plan.clone_flags & libc::CLONE_NEWIPC != 0
        } else if k.starts_with("net.") {
            plan.clone_flags & libc::CLONE_NEWNET != 0
        } else if k == "kernel.hostname" || k == "kernel.domainname" {
            plan.clone_flags & libc::CLONE_NEWUTS != 0
        } else {
            false
        };
        if !ok || k.contains('/') || k.contains("..") {
            return Err(Error::Invalid {
                field: format!("linux.sysctl.{k}"),
                reason: "not a namespaced sysctl, or its namespace is not new in this container"
                    .into(),
            });
        }
        plan.sysctl.push((
            cstr(format!("sys/{}", k.replace('.', "/")), "linux.sysctl")?,
            cstr(v, "linux.sysctl")?,
        ));
    }
    Ok(())
}

pub(crate) fn cap_sets(spec: &Spec) -> Result<Option<CapSets>, Error> {
    let Some(c) = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    else {
        return Ok(None);
    };
    caps::sets(c, caps::last_cap()).map(Some)
}

/// Fields this runtime does not apply: refused, never silently ignored.
fn unsupported_linux(linux: &oci_spec::runtime::Linux) -> Result<(), Error> {
    let no = |what: &str, hint: &str| {
        Err(Error::Unsupported {
            what: what.into(),
            hint: hint.into(),
        })
    };
    if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) {
        return no(
            "linux.mountLabel",
            "SELinux labels are not supported (SELinux is not enabled here)",
        );
    }
    if linux.intel_rdt().is_some() {
        return no("linux.intelRdt", "Intel RDT is not supported");
    }
    if linux.memory_policy().is_some() {
        return no(
            "linux.memoryPolicy",
            "set the NUMA policy inside the container (numactl)",
        );
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return no(
            "linux.netDevices",
            "move network devices with the network layer",
        );
    }
    if let Some(r) = linux.resources() {
        if r.network().is_some() {
            return no(
                "linux.resources.network",
                "net_cls/net_prio are not supported",
            );
        }
        if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
            return no(
                "linux.resources.rdma",
                "the rdma controller is not supported",
            );
        }
        #[allow(deprecated)]
        if r.memory()
            .as_ref()
            .is_some_and(|m| m.kernel().is_some() || m.kernel_tcp().is_some())
        {
            return no(
                "linux.resources.memory.kernel/kernelTCP",
                "kernel memory limits are obsolete since Linux 5.4; remove them",
            );
        }
    }
    Ok(())
}
