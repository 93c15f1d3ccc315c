//! The runtime as the supervisor uses it: a library call from the monitor
//! process, stdio as fds, the init a child reaped by its caller (root required).
//!
//! The runtime's contract is a single-threaded caller; the test harness has a
//! few threads, which the spawn path tolerates because the child only makes raw
//! syscalls on data prepared before clone.
mod common;

use std::io::Read;
use std::os::fd::OwnedFd;

use oci_spec::runtime::Spec;
use stack::runtime::{CreateOptions, ExecOptions, Runtime, Status};

struct Cleanup<'a>(&'a Runtime, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.delete(&self.1, true);
        if let Ok(parent) = stack::cgroup::Cgroup::open("stack-test") {
            for dir in parent.dirs() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

fn spec(args: &[&str], id: &str) -> Spec {
    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    let mut linux = spec.linux().clone().unwrap();
    linux.set_cgroups_path(Some(format!("/stack-test/{id}").into()));
    spec.set_linux(Some(linux));
    spec
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().unwrap()
}

#[test]
fn create_with_stdio_pipes_start_wait_and_delete() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    common::busybox_rootfs(&dir.path().join("rootfs"));
    let rt = Runtime::new(dir.path().join("state"));
    let id = common::unique("lib");
    let _cleanup = Cleanup(&rt, id.clone());
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let (in_r, in_w) = pipe();
    drop(in_w);
    let opts = CreateOptions {
        stdio: Some([in_r, out_w, err_w]),
        ..Default::default()
    };
    let spec = spec(&["sh", "-c", "echo out; echo err >&2; exit 3"], &id);
    let c = rt.create_from_spec(&id, &spec, dir.path(), opts).unwrap();
    assert_eq!(rt.state(&id).unwrap().status, Status::Created);
    assert_eq!(rt.state(&id).unwrap().pid, c.pid);
    rt.start(&id).unwrap();
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    let mut err = String::new();
    std::fs::File::from(err_r).read_to_string(&mut err).unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    // The init is our child: its exit status is ours to collect.
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c.pid), None).unwrap();
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(c.pid), 3)
    );
    assert_eq!(rt.state(&id).unwrap().status, Status::Stopped);
    let dirs = c.cgroup.dirs();
    rt.delete(&id, false).unwrap();
    assert!(dirs.iter().all(|d| !d.exists()));
    rt.delete(&id, false).expect("already gone is success");
    assert!(matches!(
        rt.state(&id),
        Err(stack::runtime::Error::NotFound(_))
    ));
}

#[test]
fn exec_returns_a_child_with_its_own_stdio() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    common::busybox_rootfs(&dir.path().join("rootfs"));
    let rt = Runtime::new(dir.path().join("state"));
    let id = common::unique("lib");
    let _cleanup = Cleanup(&rt, id.clone());
    let mut spec = spec(&["sleep", "30"], &id);
    // A slow startContainer hook runs between the release and execve: `start`
    // returns only after execve, so the exec below finds `sleep` as PID 1.
    let hook = oci_spec::runtime::HookBuilder::default()
        .path("/bin/sleep")
        .args(vec!["sleep".to_string(), "0.3".to_string()])
        .build()
        .unwrap();
    let mut hooks = oci_spec::runtime::Hooks::default();
    hooks.set_start_container(Some(vec![hook]));
    spec.set_hooks(Some(hooks));
    let null = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    let c = rt
        .create_from_spec(
            &id,
            &spec,
            dir.path(),
            CreateOptions {
                stdio: Some([null(), null(), null()]),
                ..Default::default()
            },
        )
        .unwrap();
    rt.start(&id).unwrap();
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "cat /proc/1/cmdline".into(),
    ]));
    let (r, w) = pipe();
    let p = rt
        .exec(
            &id,
            &process,
            ExecOptions {
                stdio: Some([null(), w, null()]),
                ..Default::default()
            },
        )
        .unwrap();
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert!(out.starts_with("sleep"), "{out:?}");
    let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(p.pid), None).unwrap();
    assert_eq!(
        st,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(p.pid), 0)
    );
    let stats = c.cgroup.stats().unwrap();
    assert!(stats.memory.unwrap().usage > 0);
    assert!(stats.pids.unwrap().current >= 1);
    rt.kill(&id, nix::sys::signal::Signal::SIGKILL, false)
        .unwrap();
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c.pid), None).unwrap();
    rt.delete(&id, false).unwrap();
}

/// Evidence for the spawn path's claim (raw syscalls only after clone): create
/// while other threads allocate and lock in a tight loop must never hang the
/// child on a lock a vanished thread held at clone time.
#[test]
fn create_while_other_threads_allocate() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    common::busybox_rootfs(&dir.path().join("rootfs"));
    let rt = Runtime::new(dir.path().join("state"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let m = std::sync::Mutex::new(Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v: Vec<u8> = vec![1; 4096];
                    m.lock().unwrap().push(v);
                    if m.lock().unwrap().len() > 64 {
                        m.lock().unwrap().clear();
                    }
                    let _ = format!("{:?}", std::time::Instant::now());
                }
            })
        })
        .collect();
    for i in 0..50 {
        let id = format!("{}-{i}", common::unique("mt"));
        let _cleanup = Cleanup(&rt, id.clone());
        let null = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let opts = CreateOptions {
            stdio: Some([null(), null(), null()]),
            ..Default::default()
        };
        let c = rt
            .run_from_spec(&id, &spec(&["true"], &id), dir.path(), opts)
            .unwrap();
        let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c.pid), None).unwrap();
        assert_eq!(
            st,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(c.pid), 0)
        );
        rt.delete(&id, false).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}
