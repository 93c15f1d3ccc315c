//! cgroup logic against temp dirs laid out like cgroupfs (no root needed).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::*;

/// Removes a real cgroup even when the test fails.
struct RemoveOnDrop(Cgroup);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

/// A fake cgroup2 root: controllers offered at the root, files pre-created in
/// the leaf (cgroupfs creates them on mkdir; a temp dir needs them written).
fn v2_root(tmp: &Path) -> PathBuf {
    let root = tmp.join("cg2");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    root
}

fn touch_all(dir: &Path, files: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for f in files {
        std::fs::write(dir.join(f), "").unwrap();
    }
}

#[test]
fn mountinfo_of_a_hybrid_host() {
    let text = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw shared:13 - cgroup cgroup rw,memory
";
    let h = Hierarchy::from_mountinfo(text).unwrap();
    assert!(h.is_hybrid());
    let Hierarchy::V1 {
        controllers,
        unified,
    } = &h
    else {
        panic!("{h:?}")
    };
    assert_eq!(controllers["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    assert_eq!(controllers["cpuacct"], controllers["cpu"]);
    assert!(!controllers.contains_key("name=systemd"));
    assert_eq!(
        unified.as_deref(),
        Some(Path::new("/sys/fs/cgroup/unified"))
    );
    // Co-mounted controllers appear once among the roots.
    assert_eq!(h.roots().len(), 3);
}

#[test]
fn mountinfo_of_a_v2_host_and_escapes() {
    let text = "29 23 0:26 / /sys/fs/cgroup\\040x rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
    assert_eq!(
        Hierarchy::from_mountinfo(text).unwrap(),
        Hierarchy::V2 {
            root: "/sys/fs/cgroup x".into()
        }
    );
    assert!(matches!(
        Hierarchy::from_mountinfo(""),
        Err(Error::NoHierarchy)
    ));
}

#[test]
fn paths_are_relative_and_safe() {
    let h = Hierarchy::V2 { root: "/x".into() };
    assert_eq!(
        Cgroup::new(h.clone(), "/stack.slice/a.slice/web-1")
            .unwrap()
            .path(),
        Path::new("stack.slice/a.slice/web-1")
    );
    assert!(Cgroup::new(h.clone(), "a/../../etc").is_err());
    assert!(Cgroup::new(h, "/").is_err());
}

#[test]
fn v2_create_enables_controllers_on_ancestors_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    let cg = Cgroup::new(Hierarchy::V2 { root: root.clone() }, "stack.slice/web-1").unwrap();
    cg.create().unwrap();
    assert!(root.join("stack.slice/web-1").is_dir());
    // One write per controller; the fake file keeps the last.
    // The fake file was created empty; enabling writes "+<controller>" into it.
    assert!(read(&root.join("cgroup.subtree_control")).starts_with('+'));
    assert!(
        !root
            .join("stack.slice/web-1/cgroup.subtree_control")
            .exists()
    );
}

#[test]
fn v2_apply_writes_converted_values() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    let dir = root.join("s/c");
    touch_all(
        &dir,
        &[
            "memory.max",
            "memory.low",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "pids.max",
            "io.weight",
            "io.max",
            "cpuset.cpus",
            "memory.high",
        ],
    );
    let cg = Cgroup::new(Hierarchy::V2 { root }, "s/c").unwrap();
    cg.apply(&resources(
        r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 3145728},
            "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 0},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
            "unified": {"memory.high": "900000"}}"#,
    ))
    .unwrap();
    assert_eq!(read(&dir.join("memory.max")), "1048576");
    assert_eq!(read(&dir.join("memory.low")), "524288");
    assert_eq!(
        read(&dir.join("memory.swap.max")),
        "2097152",
        "swap alone = total - limit"
    );
    assert_eq!(read(&dir.join("cpu.weight")), "39", "runc's shares->weight");
    assert_eq!(read(&dir.join("cpu.max")), "20000 100000");
    assert_eq!(read(&dir.join("pids.max")), "max");
    assert_eq!(
        read(&dir.join("io.weight")),
        format!("default {}", v2::blkio_to_io_weight(500))
    );
    assert_eq!(read(&dir.join("io.max")), "8:0 rbps=1000");
    assert_eq!(read(&dir.join("cpuset.cpus")), "0");
    assert_eq!(read(&dir.join("memory.high")), "900000");
}

#[test]
fn v2_missing_controller_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    std::fs::create_dir_all(root.join("c")).unwrap();
    let cg = Cgroup::new(Hierarchy::V2 { root }, "c").unwrap();
    let err = cg
        .apply(&resources(r#"{"pids": {"limit": 5}}"#))
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("pids.max"));
}

#[test]
fn v2_stats_and_oom_events() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    let dir = root.join("c");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("memory.current"), "4096\n").unwrap();
    std::fs::write(dir.join("memory.max"), "max\n").unwrap();
    std::fs::write(dir.join("memory.stat"), "anon 1000\nfile 3000\nkernel 96\n").unwrap();
    std::fs::write(dir.join("pids.current"), "3\n").unwrap();
    std::fs::write(dir.join("pids.max"), "10\n").unwrap();
    std::fs::write(
        dir.join("cpu.stat"),
        "usage_usec 500\nuser_usec 300\nsystem_usec 200\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("io.stat"),
        "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    let cg = Cgroup::new(Hierarchy::V2 { root }, "c").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(
        s.memory,
        Some(MemoryStats {
            usage: 4096,
            limit: None,
            anon: 1000,
            file: 3000
        })
    );
    assert_eq!(
        s.pids,
        Some(PidsStats {
            current: 3,
            limit: Some(10)
        })
    );
    assert_eq!(
        s.cpu,
        Some(CpuStats {
            usage_usec: 500,
            user_usec: 300,
            system_usec: 200
        })
    );
    assert_eq!(
        s.blkio,
        Some(BlkioStats {
            read_bytes: 11,
            write_bytes: 22
        })
    );
    assert_eq!(
        cg.oom_events().unwrap(),
        OomEvents {
            oom: 2,
            oom_kill: 1,
            under_oom: false
        }
    );
}

/// The v2 freezer: `cgroup.freeze` written, the state read from `cgroup.events`
/// (the kernel flips `frozen` there once every task is stopped).
#[test]
fn v2_freeze_and_thaw_through_cgroup_freeze_and_events() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    let dir = root.join("c");
    touch_all(&dir, &["cgroup.freeze"]);
    let cg = Cgroup::new(Hierarchy::V2 { root }, "c").unwrap();
    std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(read(&dir.join("cgroup.freeze")), "1");
    assert!(cg.is_frozen().unwrap());
    std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    cg.thaw().unwrap();
    assert_eq!(read(&dir.join("cgroup.freeze")), "0");
    assert!(!cg.is_frozen().unwrap());
}

/// SIGKILL to every process is one write to `cgroup.kill` where it exists (no
/// listing, no race with fork).
#[test]
fn v2_kill_all_writes_cgroup_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    let dir = root.join("c");
    touch_all(&dir, &["cgroup.kill"]);
    let cg = Cgroup::new(Hierarchy::V2 { root }, "c").unwrap();
    cg.kill_all(nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(read(&dir.join("cgroup.kill")), "1");
}

/// v2 OOM reporting: the `memory.events` file to watch, counters read from it;
/// the v1 eventfd is refused with the way to do it on v2.
#[test]
fn v2_memory_events_is_the_oom_source() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    let dir = root.join("c");
    std::fs::create_dir_all(&dir).unwrap();
    let cg = Cgroup::new(Hierarchy::V2 { root }, "c").unwrap();
    assert_eq!(cg.memory_events_file(), Some(dir.join("memory.events")));
    std::fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 7\noom 3\noom_kill 2\n",
    )
    .unwrap();
    let ev = cg.oom_events().unwrap();
    assert_eq!((ev.oom, ev.oom_kill), (3, 2));
    let e = cg.oom_eventfd().unwrap_err();
    assert!(e.to_string().contains("memory.events"), "{e}");
}

/// Removal walks the v2 tree deepest first and "already gone" is success.
#[test]
fn v2_remove_takes_descendants_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = v2_root(tmp.path());
    std::fs::create_dir_all(root.join("s/c/sub")).unwrap();
    let cg = Cgroup::new(Hierarchy::V2 { root: root.clone() }, "s/c").unwrap();
    cg.remove().unwrap();
    assert!(!root.join("s/c").exists() && root.join("s").exists());
    cg.remove().unwrap();
}

fn v1_layout(tmp: &Path) -> BTreeMap<String, PathBuf> {
    let mut c = BTreeMap::new();
    for name in [
        "memory", "cpu", "cpuacct", "pids", "cpuset", "devices", "freezer", "blkio",
    ] {
        let p = tmp.join(if name == "cpuacct" { "cpu" } else { name });
        std::fs::create_dir_all(&p).unwrap();
        c.insert(name.to_string(), p);
    }
    std::fs::write(tmp.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
    std::fs::write(tmp.join("cpuset/cpuset.mems"), "0\n").unwrap();
    c
}

#[test]
fn v1_create_copies_cpuset_and_apply_writes_files() {
    let tmp = tempfile::tempdir().unwrap();
    let controllers = v1_layout(tmp.path());
    let h = Hierarchy::V1 {
        controllers,
        unified: None,
    };
    let cg = Cgroup::new(h, "stack/x").unwrap();
    cg.create().unwrap();
    assert_eq!(read(&tmp.path().join("cpuset/stack/x/cpuset.cpus")), "0-3");
    assert_eq!(read(&tmp.path().join("cpuset/stack/cpuset.mems")), "0");
    touch_all(
        &tmp.path().join("memory/stack/x"),
        &[
            "memory.memsw.limit_in_bytes",
            "memory.limit_in_bytes",
            "memory.swappiness",
        ],
    );
    touch_all(
        &tmp.path().join("cpu/stack/x"),
        &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
    );
    touch_all(&tmp.path().join("pids/stack/x"), &["pids.max"]);
    touch_all(
        &tmp.path().join("devices/stack/x"),
        &["devices.deny", "devices.allow"],
    );
    cg.apply(&resources(
        r#"{"memory": {"limit": 2097152, "swap": 4194304, "swappiness": 10},
            "cpu": {"shares": 256, "quota": 5000, "period": 10000},
            "pids": {"limit": 9},
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#,
    ))
    .unwrap();
    let d = |c: &str, f: &str| read(&tmp.path().join(c).join("stack/x").join(f));
    assert_eq!(d("memory", "memory.limit_in_bytes"), "2097152");
    assert_eq!(d("memory", "memory.memsw.limit_in_bytes"), "4194304");
    assert_eq!(d("memory", "memory.swappiness"), "10");
    assert_eq!(d("cpu", "cpu.shares"), "256");
    assert_eq!(d("cpu", "cpu.cfs_quota_us"), "5000");
    assert_eq!(d("cpu", "cpu.cfs_period_us"), "10000");
    assert_eq!(d("pids", "pids.max"), "9");
    assert_eq!(d("devices", "devices.deny"), "a");
    assert_eq!(d("devices", "devices.allow"), "c 1:3 rwm");
}

#[test]
fn v1_swap_without_accounting_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Hierarchy::V1 {
        controllers: v1_layout(tmp.path()),
        unified: None,
    };
    let cg = Cgroup::new(h, "y").unwrap();
    cg.create().unwrap();
    touch_all(&tmp.path().join("memory/y"), &["memory.limit_in_bytes"]);
    let err = cg
        .apply(&resources(r#"{"memory": {"limit": 1, "swap": 2}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("swap"), "{err}");
}

#[test]
fn v1_stats_oom_and_freezer() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Hierarchy::V1 {
        controllers: v1_layout(tmp.path()),
        unified: None,
    };
    let cg = Cgroup::new(h, "z").unwrap();
    cg.create().unwrap();
    let m = tmp.path().join("memory/z");
    std::fs::write(m.join("memory.usage_in_bytes"), "8192\n").unwrap();
    std::fs::write(m.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
    std::fs::write(
        m.join("memory.stat"),
        "cache 1\nrss 2\ntotal_cache 10\ntotal_rss 20\n",
    )
    .unwrap();
    std::fs::write(
        m.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 1\noom_kill 3\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("cpu/z/cpuacct.usage"), "5000000\n").unwrap();
    std::fs::write(tmp.path().join("pids/z/pids.current"), "2\n").unwrap();
    std::fs::write(tmp.path().join("pids/z/pids.max"), "max\n").unwrap();
    std::fs::write(tmp.path().join("pids/z/cgroup.procs"), "5\n7\n").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(
        s.memory,
        Some(MemoryStats {
            usage: 8192,
            limit: None,
            anon: 20,
            file: 10
        })
    );
    assert_eq!(
        s.pids,
        Some(PidsStats {
            current: 2,
            limit: None
        })
    );
    assert_eq!(s.cpu.unwrap().usage_usec, 5000);
    assert_eq!(
        cg.oom_events().unwrap(),
        OomEvents {
            oom: 0,
            oom_kill: 3,
            under_oom: true
        }
    );
    assert_eq!(cg.pids().unwrap(), vec![5, 7]);
    // A plain file keeps what is written, so freezing "succeeds" at once.
    touch_all(&tmp.path().join("freezer/z"), &["freezer.state"]);
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
}

#[test]
fn device_rules_format() {
    let r: oci_spec::runtime::LinuxDeviceCgroup =
        serde_json::from_str(r#"{"allow": true, "type": "b", "major": 8, "access": "r"}"#).unwrap();
    assert_eq!(v1::device_rule(&r), "b 8:* r");
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(262_144), 10_000);
}

/// Real cgroup2: a private cgroup2 mount is not possible without a new cgroup
/// namespace, so this uses the host's unified tree when it exists (root only).
#[test]
fn real_unified_hierarchy_create_add_remove() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (creates a cgroup on the real cgroup2 tree)");
    }
    let h = Hierarchy::detect().unwrap();
    let name = format!("stack-unit-{}", std::process::id());
    let cg = Cgroup::new(h, &name).unwrap();
    cg.create().unwrap();
    assert!(cg.exists());
    assert!(cg.pids().unwrap().is_empty());
    cg.remove().unwrap();
    assert!(cg.dirs().iter().all(|d| !d.exists()));
    cg.remove().unwrap();
}

#[test]
fn bpf_device_program_shape() {
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]"#,
    )
    .unwrap();
    let p = bpf::program(&rules);
    // 6 prologue + (type, 3 access, major, minor, verdict 2) + deny-all verdict 2;
    // the unconditional rule ends the program (no unreachable default).
    assert_eq!(p.len(), 6 + 8 + 2);
}

/// A real BPF device program on a real cgroup2 directory (the unified tree of
/// a hybrid host works too): /dev/null allowed, /dev/zero denied (root only).
#[test]
fn bpf_device_program_denies_unlisted_devices() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (attaches a BPF program to a cgroup)");
    }
    let root = match Hierarchy::detect().unwrap() {
        Hierarchy::V2 { root } => root,
        Hierarchy::V1 {
            unified: Some(u), ..
        } => u,
        Hierarchy::V1 { unified: None, .. } => panic!("no cgroup2 hierarchy on this host"),
    };
    let cg = Cgroup::new(
        Hierarchy::V2 { root },
        format!("stack-unit-bpf-{}", std::process::id()),
    )
    .unwrap();
    std::fs::create_dir_all(&cg.dirs()[0]).unwrap();
    let _guard = RemoveOnDrop(cg.clone());
    let rules = r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#;
    v2::apply(&cg.dirs()[0], &resources(rules)).unwrap();
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only calls read/open/_exit (async-signal-safe).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut b = [0u8; 1];
        // SAFETY: raw syscalls on valid buffers and NUL-terminated paths.
        unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&r),
                b.as_mut_ptr().cast(),
                1,
            );
            let null_ok = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) >= 0;
            let zero_ok = libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY) >= 0;
            libc::_exit(i32::from(null_ok) | (i32::from(zero_ok) << 1));
        }
    }
    cg.add_pid(pid).unwrap();
    nix::unistd::write(&w, b"g").unwrap();
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 1),
        "null allowed, zero denied"
    );
}

/// Regression: a long rule list (Docker's defaults and more) makes a verifier
/// log larger than any small buffer; loading must not depend on the log
/// (ENOSPC on Linux >= 6.4 when a log is requested and truncated). Root only.
#[test]
fn bpf_device_program_with_many_rules_loads() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root (attaches a BPF program to a cgroup)");
    }
    let root = match Hierarchy::detect().unwrap() {
        Hierarchy::V2 { root } => root,
        Hierarchy::V1 {
            unified: Some(u), ..
        } => u,
        Hierarchy::V1 { unified: None, .. } => panic!("no cgroup2 hierarchy on this host"),
    };
    let cg = Cgroup::new(
        Hierarchy::V2 { root },
        format!("stack-unit-bpf-many-{}", std::process::id()),
    )
    .unwrap();
    std::fs::create_dir_all(&cg.dirs()[0]).unwrap();
    let _guard = RemoveOnDrop(cg.clone());
    let mut rules = vec![r#"{"allow": false, "access": "rwm"}"#.to_string()];
    for minor in 0..40 {
        rules.push(format!(
            r#"{{"allow": true, "type": "c", "major": 1, "minor": {minor}, "access": "rwm"}}"#
        ));
    }
    let json = format!(r#"{{"devices": [{}]}}"#, rules.join(","));
    v2::apply(&cg.dirs()[0], &resources(&json)).unwrap();
}

#[test]
fn a_create_walk_whose_parent_vanished_is_run_again_a_few_times() {
    let vanished = || Error::Create {
        path: "/x".into(),
        source: std::io::ErrorKind::NotFound.into(),
    };
    let calls = std::cell::Cell::new(0);
    let twice_then_ok = || {
        calls.set(calls.get() + 1);
        if calls.get() <= 2 {
            Err(vanished())
        } else {
            Ok(())
        }
    };
    assert!(again_if_vanished(twice_then_ok).is_ok());
    assert_eq!(calls.get(), 3);
    calls.set(0);
    let always = || {
        calls.set(calls.get() + 1);
        Err(vanished())
    };
    assert!(matches!(
        again_if_vanished(always),
        Err(Error::Create { .. })
    ));
    assert_eq!(calls.get(), 5, "bounded");
    calls.set(0);
    let denied = || {
        calls.set(calls.get() + 1);
        Err(Error::Create {
            path: "/x".into(),
            source: std::io::ErrorKind::PermissionDenied.into(),
        })
    };
    assert!(again_if_vanished(denied).is_err());
    assert_eq!(calls.get(), 1, "other errors are not retried");
}

#[test]
fn a_one_level_mkdir_does_not_make_a_vanished_parent_again() {
    let tmp = tempfile::tempdir().unwrap();
    let child = tmp.path().join("gone/child");
    let err = fs::mkdir(&child).unwrap_err();
    assert!(
        matches!(&err, Error::Create { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(!tmp.path().join("gone").exists());
    fs::mkdir(&tmp.path().join("gone")).unwrap();
    fs::mkdir(&child).unwrap();
    fs::mkdir(&child).unwrap(); // existing is fine
    assert!(child.is_dir());
}
