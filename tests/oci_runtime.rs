//! `stack oci` against a busybox bundle on the real kernel (root required):
//! lifecycle, isolation, process settings, cgroups, exec, hooks.
#[path = "oci_bundle/mod.rs"]
mod bundle;
mod common;

use std::path::Path;
use std::process::Command;

use bundle::{Bundle, ok, text};
use serde_json::{Value, json};

#[test]
fn run_is_isolated_and_exit_code_is_the_containers() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "hostname; echo pid=$$; cat /proc/net/dev | tail -n +3 | cut -d: -f1; grep -c . /proc/self/mountinfo; exit 7",
    ]);
    let (code, out, err) = b.run();
    assert_eq!(code, 7, "stderr: {err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "box");
    assert_eq!(lines[1], "pid=1");
    assert_eq!(lines[2], "lo", "only loopback in the new netns: {out}");
    let mounts: usize = lines[3].parse().unwrap();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert!(
        mounts < host_mounts || mounts < 40,
        "container sees its own mount table ({mounts} lines)"
    );
    assert!(!b.root.path().join(&b.id).exists(), "run removes its state");
}

#[test]
fn lifecycle_create_start_state_kill_delete() {
    let b = Bundle::new(&["sleep", "30"]);
    ok(&b.verb("create"));
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["ociVersion"], "1.2.0");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(
        b.verb("create").status.code() != Some(0),
        "duplicate id refused"
    );
    ok(&b.verb("start"));
    assert_eq!(b.state()["status"], "running");
    assert!(
        !b.verb("delete").status.success(),
        "running container needs --force"
    );
    ok(&b.oci(&["kill", &b.id, "KILL"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.state()["status"] != "stopped" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(b.state()["status"], "stopped");
    let dirs = b.cgroup_dirs();
    assert!(
        dirs.iter().any(|d| d.exists()),
        "cgroup exists before delete"
    );
    ok(&b.verb("delete"));
    assert!(!b.root.path().join(&b.id).exists());
    for d in dirs {
        assert!(!d.exists(), "delete removed {}", d.display());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(b.path().to_str().unwrap()),
        "no mount left on the host"
    );
    ok(&b.oci(&["delete", "--force", &b.id]));
}

#[test]
fn user_cwd_env_and_rlimits_apply() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "id -u; id -g; id -G; pwd; echo $GREETING; ulimit -n",
    ]);
    b.config["process"]["user"] = json!({"uid": 65534, "gid": 65534, "additionalGids": [65534, 4]});
    b.config["process"]["cwd"] = json!("/work/dir");
    b.config["process"]["env"] = json!(["PATH=/bin", "GREETING=hi"]);
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["65534", "65534", "65534 4", "/work/dir", "hi", "123"]
    );
}

#[test]
fn rlimit_above_hard_limit_is_a_clear_error_and_leaves_nothing() {
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": u64::MAX - 1}]);
    let out = b.verb("create");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("RLIMIT_NOFILE") && err.contains("CAP_SYS_RESOURCE"),
        "{err}"
    );
    assert!(!b.root.path().join(&b.id).exists(), "no state dir left");
    assert!(
        b.cgroup_dirs().iter().all(|d| !d.exists()),
        "no cgroup left"
    );
}

#[test]
fn bad_configs_are_rejected_before_side_effects() {
    let mut b = Bundle::new(&["true"]);
    b.config["root"]["path"] = json!("missing-rootfs");
    let err = text(&b.verb("create").stderr);
    assert!(err.contains("missing-rootfs"), "{err}");
    b.config["root"]["path"] = json!("rootfs");
    b.config["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "uts"}, {"type": "bogus"}]);
    let err = text(&b.verb("create").stderr);
    assert!(
        err.contains("bogus") || err.contains("unknown variant"),
        "{err}"
    );
    b.config["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "uts"}, {"type": "pid"}, {"type": "user"}]);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 0}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let err = text(&b.verb("create").stderr);
    assert!(err.contains("uidMappings"), "{err}");
    b.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "pid"}]);
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("uidMappings");
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("gidMappings");
    b.config["process"]["args"] = json!(["no-such-program"]);
    let err = text(&b.verb("create").stderr);
    assert!(
        err.contains("no-such-program") && err.contains("ENOENT"),
        "{err}"
    );
    assert!(!b.root.path().join(&b.id).exists(), "no state dir left");
    assert!(
        b.cgroup_dirs().iter().all(|d| !d.exists()),
        "no cgroup left"
    );
}

#[test]
fn cgroup_limits_are_applied_and_read_back() {
    let mut b = Bundle::new(&["sleep", "30"]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 32},
        "cpu": {"quota": 50000, "period": 100000, "shares": 512}
    });
    ok(&b.verb("create"));
    let cg = stack::cgroup::Cgroup::open(format!("stack-test/{}", b.id)).unwrap();
    let pid = b.state()["pid"].as_i64().unwrap() as i32;
    assert!(cg.pids().unwrap().contains(&pid), "init is in the cgroup");
    let stats = cg.stats().unwrap();
    assert_eq!(stats.memory.unwrap().limit, Some(67_108_864));
    assert_eq!(stats.pids.unwrap().limit, Some(32));
    match cg.hierarchy() {
        stack::cgroup::Hierarchy::V1 { controllers, .. } => {
            let cpu = controllers["cpu"].join(cg.path());
            assert_eq!(
                std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
                    .unwrap()
                    .trim(),
                "50000"
            );
            assert_eq!(
                std::fs::read_to_string(cpu.join("cpu.shares"))
                    .unwrap()
                    .trim(),
                "512"
            );
        }
        stack::cgroup::Hierarchy::V2 { root } => {
            assert_eq!(
                std::fs::read_to_string(root.join(cg.path()).join("cpu.max"))
                    .unwrap()
                    .trim(),
                "50000 100000"
            );
        }
    }
    ok(&b.oci(&["delete", "--force", &b.id]));
    assert!(b.cgroup_dirs().iter().all(|d| !d.exists()));
}

#[test]
fn pids_limit_makes_fork_fail() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done 2>&1; wait; echo done",
    ]);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 4}});
    let (_, out, err) = b.run();
    assert!(
        out.contains("can't fork") || err.contains("can't fork"),
        "stdout: {out}\nstderr: {err}"
    );
}

#[test]
fn memory_limit_oom_kill_is_observed() {
    let mut b = Bundle::new(&["tail", "/dev/zero"]);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    let out = b.oci(&[
        "run",
        "--keep",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "killed by SIGKILL: {}",
        text(&out.stderr)
    );
    let cg = stack::cgroup::Cgroup::open(format!("stack-test/{}", b.id)).unwrap();
    let ev = cg.oom_events().unwrap();
    assert!(ev.oom_kill >= 1, "{ev:?}");
}

#[test]
fn pause_resume_and_ps() {
    let b = Bundle::new(&["sh", "-c", "sleep 30 & sleep 30"]);
    ok(&b.verb("create"));
    ok(&b.verb("start"));
    // Both sleeps, once the shell has forked the first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let pids = loop {
        let ps = b.oci(&["ps", "--format", "json", &b.id]);
        ok(&ps);
        let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap();
        if pids.len() >= 2 || std::time::Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(pids.len() >= 2, "{pids:?}");
    ok(&b.verb("pause"));
    assert_eq!(b.state()["status"], "paused");
    let st = std::fs::read_to_string(format!("/proc/{}/stat", pids[0])).unwrap();
    assert!(st.contains(") D ") || st.contains(") S "), "{st}");
    ok(&b.verb("resume"));
    assert_eq!(b.state()["status"], "running");
    ok(&b.oci(&["kill", "--all", &b.id, "9"]));
}

#[test]
fn exec_joins_namespaces_cgroup_and_user() {
    let b = Bundle::new(&["sleep", "30"]);
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let out = b.oci(&["exec", &b.id, "sh", "-c", "echo pid=$$; hostname; cat /proc/1/cmdline; echo; grep -c . /proc/self/cgroup; grep ':/$' /proc/self/cgroup | wc -l"]);
    ok(&out);
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_ne!(
        lines[0], "pid=1",
        "a second process in the container's pid namespace"
    );
    assert!(lines[0].starts_with("pid="));
    assert_eq!(lines[1], "box");
    assert!(lines[2].starts_with("sleep"), "{lines:?}");
    assert_eq!(
        lines[3], lines[4],
        "cgroup namespace: every hierarchy shows / ({lines:?})"
    );
    let out = b.oci(&[
        "exec",
        "--user",
        "65534:65534",
        "--cwd",
        "/tmp",
        "--env",
        "X=1",
        &b.id,
        "sh",
        "-c",
        "id -u; pwd; echo $X; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(text(&out.stdout), "65534\n/tmp\n1\n");
    let pid = b.state()["pid"].as_i64().unwrap() as i32;
    let cg = stack::cgroup::Cgroup::open(format!("stack-test/{}", b.id)).unwrap();
    assert_eq!(
        cg.pids().unwrap(),
        vec![pid],
        "exec'd processes left the cgroup when they exited"
    );
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_host_uid() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; sleep 30",
    ]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let pid = b.state()["pid"].as_i64().unwrap();
    let uid_line = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .unwrap()
            .to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !uid_line().contains("200000") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let uid_line = uid_line();
    assert!(
        uid_line.contains("200000"),
        "host sees uid 200000: {uid_line}"
    );
    let exec = b.oci(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "cat /proc/self/uid_map; id -u; ls -ln /bin/busybox",
    ]);
    ok(&exec);
    let o = text(&exec.stdout);
    let words: Vec<&str> = o.split_whitespace().collect();
    assert_eq!(&words[..4], ["0", "200000", "65536", "0"], "{o}");
    assert!(
        o.contains("65534"),
        "host root's files are unmapped (nobody) inside: {o}"
    );
}

/// Accept one connection on a console socket and take the pty master it carries.
fn receive_master(listener: &std::os::unix::net::UnixListener) -> std::fs::File {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut cmsg = nix::cmsg_space!(std::os::fd::RawFd);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&conn),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut master = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: a received fd is owned by this process.
            master = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    std::fs::File::from(master.expect("pty master received"))
}

/// Everything the pty shows until the process exits (EIO once the slave closes).
fn read_pty(mut master: std::fs::File) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    while let Ok(n) = master.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    text(&out)
}

#[test]
fn console_socket_receives_the_pty_master() {
    let mut b = Bundle::new(&["sh", "-c", "tty; stty size; echo hello-tty"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    let sock_path = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let sock = sock_path.to_str().unwrap();
    ok(&b.oci(&[
        "create",
        "--console-socket",
        sock,
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let master = receive_master(&listener);
    ok(&b.verb("start"));
    let out = read_pty(master);
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out}"
    );
    assert!(out.contains("hello-tty"), "{out}");
    assert!(out.contains("30 100"), "consoleSize applied: {out}");
}

#[test]
fn exec_with_a_tty_hands_its_pty_to_the_console_socket() {
    let b = Bundle::new(&["sleep", "30"]);
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let sock_path = b.path().join("exec.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let sock = sock_path.to_str().unwrap();
    ok(&b.oci(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock,
        &b.id,
        "sh",
        "-c",
        "tty; echo exec-tty",
    ]));
    let out = read_pty(receive_master(&listener));
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("exec-tty"), "{out}");
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let mut b = Bundle::new(&["true"]);
    // One directory seen by every hook: on the host, and at /hooklog inside
    // (startContainer runs after pivot_root, in the container's file system).
    let logdir = b.path().join("hooklog");
    std::fs::create_dir(&logdir).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/hooklog", "type": "bind", "source": logdir, "options": ["rbind", "rw"]}),
    );
    let hook = |name: &str, log: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo {name} $(echo \"$s\" | grep -o '\"status\":\"[a-z]*\"') >> {log}")], "timeout": 5});
    let host_log = logdir.join("hooks.log");
    let host = host_log.to_str().unwrap();
    b.config["hooks"] = json!({
        "prestart": [hook("prestart", host)],
        "createRuntime": [hook("createRuntime", host)],
        "createContainer": [hook("createContainer", host)],
        "startContainer": [hook("startContainer", "/hooklog/hooks.log")],
        "poststart": [hook("poststart", host)],
        "poststop": [hook("poststop", host)]
    });
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let got = std::fs::read_to_string(&host_log).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "prestart \"status\":\"creating\"",
            "createRuntime \"status\":\"creating\"",
            "createContainer \"status\":\"creating\"",
        ]
    );
    // startContainer (in the init) and poststart (in the runtime) both follow
    // the release of the init; their relative order is not defined.
    let mut middle = lines[3..5].to_vec();
    middle.sort();
    assert_eq!(
        middle,
        [
            "poststart \"status\":\"running\"",
            "startContainer \"status\":\"creating\""
        ]
    );
    assert_eq!(lines[5], "poststop \"status\":\"stopped\"");
}

#[test]
fn failing_create_hook_aborts_create_and_leaves_nothing() {
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let out = b.verb("create");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("createRuntime hook /bin/false"),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(!b.root.path().join(&b.id).exists());
    assert!(b.cgroup_dirs().iter().all(|d| !d.exists()));
    b.config["hooks"] = json!({"createContainer": [{"path": "/bin/false"}]});
    let out = b.verb("create");
    assert!(
        text(&out.stderr).contains("hook /bin/false"),
        "{}",
        text(&out.stderr)
    );
    assert!(!b.root.path().join(&b.id).exists());
}

/// A createRuntime hook that exits without reading its stdin, with a state
/// document bigger than a pipe holds, so the write to the hook meets EPIPE
/// every time: `create` must fail with the hook's error and clean up, not die
/// of SIGPIPE (which left the state dir, the cgroup and a waiting init).
#[test]
fn hook_that_does_not_read_its_stdin_fails_create_cleanly() {
    let mut b = Bundle::new(&["true"]);
    b.config["annotations"] = json!({"big": "x".repeat(256 * 1024)});
    b.config["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exec 0<&-; exit 3"]}
    ]});
    let out = b.verb("create");
    assert!(
        text(&out.stderr).contains("createRuntime hook /bin/sh"),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(!b.root.path().join(&b.id).exists());
    assert!(b.cgroup_dirs().iter().all(|d| !d.exists()));
}

/// A runtime killed while its init waits for GO (here by its createRuntime
/// hook): the init must see the sync socket's EOF and exit, not wait for ever
/// holding the container's cgroup.
#[test]
fn init_waiting_for_go_exits_when_the_runtime_dies() {
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}
    ]});
    let out = b.verb("create");
    assert_eq!(out.status.code(), None, "killed: {:?}", out.status);
    // No `create` is left to clean up: the cgroups are the test's to remove
    // once the init is gone (rmdir fails while a process is inside).
    let dirs = b.cgroup_dirs();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    while !left.is_empty() && std::time::Instant::now() < deadline {
        left.retain(|d| std::fs::remove_dir(d).is_err());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if !left.is_empty() {
        let procs: Vec<String> = left
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .collect();
        for pid in procs.iter().flat_map(|p| p.split_whitespace()) {
            if let Ok(pid) = pid.parse() {
                let _ = common::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        panic!("the init outlived its runtime: cgroup.procs {procs:?}");
    }
}

#[test]
fn sysctl_readonly_root_no_pivot_pid_file_and_preserved_fds() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward; touch /x 2>/dev/null || echo root-ro; cat <&3",
    ]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.config["root"]["readonly"] = json!(true);
    b.write();
    let pid_file = b.path().join("pid");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo preserved > {d}/fd3; exec 3<{d}/fd3; exec {bin} --root {root} oci run --no-pivot --preserve-fds 1 --pid-file {pf} --bundle {d} {id}",
            d = b.path().display(),
            bin = common::stack_bin().display(),
            root = b.root.path().display(),
            pf = pid_file.display(),
            id = b.id
        ))
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(text(&out.stdout), "1\nroot-ro\npreserved\n");
    assert!(
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .parse::<i32>()
            .unwrap()
            > 1
    );
    b.config["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/evil"});
    let err = text(&b.verb("create").stderr);
    assert!(
        err.contains("kernel.core_pattern") && err.contains("namespaced"),
        "{err}"
    );
}

#[test]
fn features_and_spec_documents() {
    common::require_root();
    let out = Command::new(common::stack_bin())
        .args(["oci", "features"])
        .output()
        .unwrap();
    ok(&out);
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("user"))
    );
    assert!(
        f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_SYS_ADMIN"))
    );
    let opts = f["mountOptions"].as_array().unwrap();
    for o in ["rro", "rnosymfollow", "idmap", "ridmap"] {
        assert!(opts.contains(&json!(o)), "mountOptions lack {o}");
    }
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    assert!(
        f["linux"]["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("SCMP_ACT_NOTIFY"))
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = || {
        Command::new(common::stack_bin())
            .args(["oci", "spec", "--bundle"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    ok(&spec());
    let c: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(c["root"]["path"], "rootfs");
    assert!(
        !spec().status.success(),
        "an existing config.json is not overwritten"
    );
}

#[test]
fn scheduler_io_priority_and_time_namespace() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "grep -E '^policy' /proc/self/sched | tr -d ' '; cut -d' ' -f19 /proc/self/stat; cut -d. -f1 /proc/uptime",
    ]);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 8640000, "nanosecs": 0}});
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "policy:3", "SCHED_BATCH: {out}");
    assert_eq!(lines[1], "7", "nice: {out}");
    let uptime: u64 = lines[2].parse().unwrap();
    assert!(
        uptime >= 8_640_000,
        "boottime offset applies in the time namespace: {out}"
    );
}

#[test]
fn oom_notification_fd_fires_on_v1_or_memory_events_changes_on_v2() {
    let mut b = Bundle::new(&["tail", "/dev/zero"]);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    ok(&b.verb("create"));
    let cg = stack::cgroup::Cgroup::open(format!("stack-test/{}", b.id)).unwrap();
    let before = cg.oom_events().unwrap().oom_kill;
    match cg.memory_events_file() {
        None => {
            let efd = cg.oom_eventfd().unwrap();
            ok(&b.verb("start"));
            let mut pfd = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&efd),
                nix::poll::PollFlags::POLLIN,
            )];
            let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10_000u16)).unwrap();
            assert_eq!(n, 1, "the eventfd fired");
            let mut buf = [0u8; 8];
            nix::unistd::read(&efd, &mut buf).unwrap();
            assert!(u64::from_ne_bytes(buf) >= 1);
        }
        Some(file) => {
            ok(&b.verb("start"));
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while cg.oom_events().unwrap().oom_kill == before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} did not change",
                    file.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cg.oom_events().unwrap().oom_kill == before {
        assert!(
            std::time::Instant::now() < deadline,
            "oom_kill counter did not move"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let mut b = Bundle::new(&["sleep", "30"]);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 10}});
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let res = b.path().join("res.json");
    std::fs::write(
        &res,
        r#"{"pids": {"limit": 20}, "memory": {"limit": 104857600}}"#,
    )
    .unwrap();
    ok(&b.oci(&["update", "--resources", res.to_str().unwrap(), &b.id]));
    let cg = stack::cgroup::Cgroup::open(format!("stack-test/{}", b.id)).unwrap();
    let st = cg.stats().unwrap();
    assert_eq!(st.pids.unwrap().limit, Some(20));
    assert_eq!(st.memory.unwrap().limit, Some(104_857_600));
}

#[test]
fn terminal_needs_a_console_socket_unless_run_in_the_foreground() {
    let mut b = Bundle::new(&["sh"]);
    b.config["process"]["terminal"] = json!(true);
    let out = b.verb("create");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--console-socket"),
        "{}",
        text(&out.stderr)
    );
    assert!(!b.root.path().join(&b.id).exists());
    // Foreground `run` proxies the pty to its own stdin/stdout.
    b.write();
    let mut child = Command::new(common::stack_bin())
        .arg("--root")
        .arg(b.root.path())
        .args(["oci", "run", "--bundle", b.path().to_str().unwrap(), &b.id])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo proxied-$((1+2))\nexit 4\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("proxied-3"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn unsupported_fields_are_refused_not_ignored() {
    let mut b = Bundle::new(&["true"]);
    for (path, value) in [
        ("intelRdt", json!({"closID": "x"})),
        ("resources", json!({"memory": {"kernel": 1048576}})),
        ("resources", json!({"network": {"classID": 1}})),
    ] {
        b.config["linux"][path] = value;
        let out = b.verb("create");
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("not supported"),
            "{}",
            text(&out.stderr)
        );
        b.config["linux"].as_object_mut().unwrap().remove(path);
    }
    assert!(!b.root.path().join(&b.id).exists());
}

#[test]
fn list_and_state_of_unknown_containers() {
    let b = Bundle::new(&["sleep", "30"]);
    ok(&b.verb("create"));
    let out = b.oci(&["list", "--format", "json"]);
    ok(&out);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == b.id.as_str())
        .expect("listed");
    assert_eq!(entry["status"], "created");
    let out = b.oci(&["list", "--quiet"]);
    assert_eq!(text(&out.stdout).trim(), b.id);
    let missing = b.oci(&["state", "no-such-container"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("does not exist"),
        "{}",
        text(&missing.stderr)
    );
    assert!(
        !b.oci(&["delete", "no-such-container"]).status.success(),
        "runc: delete of an unknown id fails"
    );
    ok(&b.oci(&["delete", "--force", "no-such-container"]));
}

#[test]
fn shared_rootfs_propagation_is_applied_after_pivot_root() {
    let mut b = Bundle::new(&["awk", "$5 == \"/\"", "/proc/self/mountinfo"]);
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shared:"), "/ is a shared mount inside: {out}");
}

#[test]
fn cgroup_mount_shows_the_containers_own_limits() {
    let v1 = matches!(
        stack::cgroup::Hierarchy::detect().unwrap(),
        stack::cgroup::Hierarchy::V1 { .. }
    );
    let file = if v1 {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    } else {
        "/sys/fs/cgroup/memory.max"
    };
    for cgroupns in [true, false] {
        let mut b = Bundle::new(&[
            "sh",
            "-c",
            &format!("cat {file}; touch /sys/fs/cgroup/x 2>/dev/null || echo ro"),
        ]);
        b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
        if !cgroupns {
            let ns: Vec<Value> = b.config["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["type"] != "cgroup")
                .cloned()
                .collect();
            b.config["linux"]["namespaces"] = json!(ns);
        }
        let (code, out, err) = b.run();
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "67108864\nro\n", "cgroupns={cgroupns}");
    }
}

#[test]
fn namespaces_can_be_joined_by_path() {
    let a = Bundle::new(&["sleep", "30"]);
    ok(&a.oci(&[
        "run",
        "--detach",
        "--bundle",
        a.path().to_str().unwrap(),
        &a.id,
    ]));
    let pid = a.state()["pid"].as_i64().unwrap();
    let mut b = Bundle::new(&["sh", "-c", "hostname; cat /proc/1/cmdline; echo; echo $$"]);
    b.config.as_object_mut().unwrap().remove("hostname");
    let mut ns: Vec<Value> = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| !matches!(n["type"].as_str(), Some("uts" | "pid" | "network")))
        .cloned()
        .collect();
    for (typ, file) in [("uts", "uts"), ("pid", "pid"), ("network", "net")] {
        ns.push(json!({"type": typ, "path": format!("/proc/{pid}/ns/{file}")}));
    }
    b.config["linux"]["namespaces"] = json!(ns);
    b.config["hostname"] = json!("other");
    let err = text(&b.verb("create").stderr);
    assert!(
        err.contains("new uts namespace"),
        "a joined UTS namespace is not renamed: {err}"
    );
    b.config.as_object_mut().unwrap().remove("hostname");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box", "A's hostname");
    assert!(
        lines[1].starts_with("sleep"),
        "A's init is PID 1 here: {out}"
    );
    assert_ne!(lines[2], "1");
}

#[test]
fn the_runtimes_signal_state_does_not_leak_into_the_container() {
    // `stack` ignores SIGPIPE (Rust's default) and the shell below ignores
    // SIGUSR1 (trap '') before exec'ing the runtime; neither may reach the
    // container (ignored dispositions survive execve).
    let b = Bundle::new(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    b.write();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' USR1; exec {} --root {} oci run --bundle {} {}",
            common::stack_bin().display(),
            b.root.path().display(),
            b.path().display(),
            b.id
        ))
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(
        text(&out.stdout),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}

#[test]
fn new_session_and_default_umask() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "umask; cut -d' ' -f6,7 /proc/self/stat; (exec 3</dev/tty) 2>/dev/null && echo has-tty || echo no-tty",
    ]);
    b.write();
    // The runtime runs with umask 077; the container gets the default 0022.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 077; exec {} --root {} oci run --bundle {} {}",
            common::stack_bin().display(),
            b.root.path().display(),
            b.path().display(),
            b.id
        ))
        .output()
        .unwrap();
    ok(&out);
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines[0], "0022");
    // Fields 6 and 7 of stat: session (the init, pid 1) and tty_nr (none).
    assert_eq!(lines[1], "1 0", "own session, no controlling terminal");
    assert!(
        lines[1].ends_with(" 0"),
        "no controlling terminal: {lines:?}"
    );
    assert_eq!(lines[2], "no-tty");
}
