//! `stack oci` against a busybox bundle on the real kernel (root required).
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

/// A bundle (busybox rootfs + config.json) and a private runtime root; the
/// container is force-deleted on drop, even when the test fails.
struct Bundle {
    dir: tempfile::TempDir,
    root: tempfile::TempDir,
    id: String,
    config: Value,
}

impl Bundle {
    fn new(args: &[&str]) -> Bundle {
        common::require_root();
        let dir = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        common::busybox_rootfs(&dir.path().join("rootfs"));
        let id = common::unique("oci");
        let out = Command::new(common::stack_bin())
            .args(["oci", "spec", "--bundle"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stack oci spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        config["process"]["args"] = json!(args);
        config["process"]["terminal"] = json!(false);
        config["hostname"] = json!("box");
        config["linux"]["cgroupsPath"] = json!(format!("/stack-test/{id}"));
        Bundle {
            dir,
            root,
            id,
            config,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn write(&self) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Output goes to files, not pipes: a created container keeps the runtime's
    /// stdio open, so reading a pipe to EOF would wait for the container.
    fn oci(&self, args: &[&str]) -> Output {
        self.write();
        let (out, err) = (self.dir.path().join("out"), self.dir.path().join("err"));
        let status = Command::new(common::stack_bin())
            .arg("--root")
            .arg(self.root.path())
            .arg("oci")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    }

    /// `oci <verb> [--bundle B] <id>` with the test's id.
    fn verb(&self, verb: &str) -> Output {
        match verb {
            "create" | "run" => {
                self.oci(&[verb, "--bundle", self.path().to_str().unwrap(), &self.id])
            }
            _ => self.oci(&[verb, &self.id]),
        }
    }

    /// Run in the foreground; returns (exit code, stdout, stderr).
    fn run(&self) -> (i32, String, String) {
        let out = self.verb("run");
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    fn state(&self) -> Value {
        let out = self.verb("state");
        assert!(out.status.success(), "state: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The container's cgroup directories on every hierarchy of this host.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        stack::cgroup::Cgroup::open(format!("stack-test/{}", self.id))
            .unwrap()
            .dirs()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new(common::stack_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(["oci", "delete", "--force", &self.id])
            .output();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

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
fn capabilities_no_new_privs_masked_and_readonly_paths() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs)' /proc/self/status; echo keys=$(wc -c < /proc/keys); \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-readonly; \
         ls /sys/firmware | wc -l",
    ]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    // Default spec: CAP_AUDIT_WRITE(29), CAP_KILL(5), CAP_NET_BIND_SERVICE(10).
    assert!(out.contains("CapEff:\t0000000020000420"), "{out}");
    assert!(out.contains("CapBnd:\t0000000020000420"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("keys=0"), "/proc/keys masked: {out}");
    assert!(out.contains("sys-readonly"), "{out}");
    assert!(
        out.trim_end().ends_with('0'),
        "/sys/firmware masked by an empty tmpfs: {out}"
    );
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
    std::thread::sleep(std::time::Duration::from_millis(100));
    let ps = b.oci(&["ps", "--format", "json", &b.id]);
    ok(&ps);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap();
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
fn cve_2024_21626_no_leaked_fds_and_cwd_must_be_inside_root() {
    let b = Bundle::new(&["ls", "/proc/self/fd"]);
    b.write();
    // fd 7 is open (not close-on-exec) in the runtime process.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 7</etc/passwd; exec {} --root {} oci run --bundle {} {}",
            common::stack_bin().display(),
            b.root.path().display(),
            b.path().display(),
            b.id
        ))
        .output()
        .unwrap();
    ok(&out);
    let fds: Vec<String> = text(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "only stdio (+ ls's own dir fd)");
    let mut b = Bundle::new(&["true"]);
    for cwd in ["/proc/self/fd/3", "/proc/self/cwd", "/proc/1/root"] {
        b.config["process"]["cwd"] = json!(cwd);
        let out = b.verb("create");
        assert!(!out.status.success(), "cwd {cwd} must be refused");
        assert!(
            text(&out.stderr).contains("working directory"),
            "{}",
            text(&out.stderr)
        );
        assert!(!b.root.path().join(&b.id).exists());
    }
}

#[test]
fn mount_destination_symlinks_stay_inside_the_root() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "grep ' /etc/escaped ' /proc/self/mountinfo | wc -l; ls /etc/escaped",
    ]);
    // An absolute symlink in the image pointing at the host's /etc.
    std::os::unix::fs::symlink("/etc", b.rootfs().join("escape")).unwrap();
    let marker = tempfile::tempdir().unwrap();
    std::fs::write(marker.path().join("marker"), "x").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/escape/escaped", "type": "bind", "source": marker.path(), "options": ["rbind", "ro"]
    }));
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("marker"),
        "bind landed at /etc/escaped inside the root: {out}"
    );
    assert!(
        b.rootfs().join("etc/escaped").is_dir(),
        "created inside the rootfs"
    );
    assert!(
        !Path::new("/etc/escaped").exists(),
        "nothing created on the host"
    );
}

#[test]
fn cve_2025_31133_masking_ignores_the_images_dev_null() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "echo '|/evil' > /proc/keys; cat /proc/sys/kernel/core_pattern",
    ]);
    // No /dev tmpfs: the image's own /dev/null (a symlink to core_pattern) stays.
    let mounts: Vec<Value> = b.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["destination"] != "/dev"
                && m["destination"] != "/dev/pts"
                && m["destination"] != "/dev/shm"
                && m["destination"] != "/dev/mqueue"
        })
        .cloned()
        .collect();
    b.config["mounts"] = json!(mounts);
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", b.rootfs().join("dev/null"))
        .unwrap();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let (_, out, _) = b.run();
    assert!(!out.contains("/evil"), "{out}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
}

#[test]
fn cve_2019_5736_container_cannot_reach_the_runtime_binary() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "readlink /proc/1/exe; echo x >> /proc/1/exe && echo WROTE || echo refused",
    ]);
    let before = std::fs::metadata(common::stack_bin())
        .unwrap()
        .modified()
        .unwrap();
    let (_, out, _) = b.run();
    assert!(
        out.starts_with("/bin/busybox"),
        "PID 1 runs the image's program: {out}"
    );
    assert!(out.contains("refused"), "{out}");
    assert_eq!(
        std::fs::metadata(common::stack_bin())
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
}

#[test]
fn seccomp_rule_denies_a_syscall() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "mkdir /dev/shm/x 2>&1 && echo made || echo denied; touch /dev/shm/y && echo touched",
    ]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Operation not permitted") && out.contains("denied"),
        "{out}"
    );
    assert!(out.contains("touched"), "other syscalls still work: {out}");
}

#[test]
fn default_seccomp_profile_allows_ordinary_programs() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "echo hi; ls /bin > /dev/null && echo listed; grep Seccomp: /proc/self/status",
    ]);
    let caps: Vec<String> =
        serde_json::from_value(b.config["process"]["capabilities"]["bounding"].clone()).unwrap();
    b.config["linux"]["seccomp"] =
        serde_json::to_value(stack::runtime::default_seccomp_profile(&caps)).unwrap();
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hi") && out.contains("listed"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "filter mode is on: {out}");
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
    std::thread::sleep(std::time::Duration::from_millis(200));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
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

#[test]
fn console_socket_receives_the_pty_master() {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut b = Bundle::new(&["sh", "-c", "tty; echo hello-tty"]);
    b.config["process"]["terminal"] = json!(true);
    let sock_path = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    ok(&b.oci(&[
        "create",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
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
    let master = std::fs::File::from(master.expect("pty master received"));
    ok(&b.verb("start"));
    let mut out = Vec::new();
    let mut reader = master;
    let mut chunk = [0u8; 256];
    // Read until the container exits (EIO on the master once the slave closes).
    while let Ok(n) = reader.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    let out = text(&out);
    assert!(
        out.contains("/dev/pts/0") || out.contains("/dev/console"),
        "{out}"
    );
    assert!(out.contains("hello-tty"), "{out}");
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let mut b = Bundle::new(&["true"]);
    let log = b.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo {name} $(echo \"$s\" | grep -o '\"status\":\"[a-z]*\"') >> {}", log.display())], "timeout": 5});
    b.config["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let got = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            "prestart \"status\":\"creating\"",
            "createRuntime \"status\":\"creating\"",
            "poststart \"status\":\"running\"",
            "poststop \"status\":\"stopped\""
        ]
    );
}

#[test]
fn failing_create_hook_aborts_create_and_leaves_nothing() {
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let out = b.verb("create");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("createRuntime hook /bin/false"),
        "{}",
        text(&out.stderr)
    );
    assert!(!b.root.path().join(&b.id).exists());
    assert!(b.cgroup_dirs().iter().all(|d| !d.exists()));
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
    let out = b.verb("create");
    assert!(
        text(&out.stderr).contains("startContainer"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn devices_cgroup_denies_an_unlisted_device() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok; head -c 1 /dev/kmsg-host > /dev/null 2>&1 && echo kmsg-open || echo kmsg-denied",
    ]);
    b.config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/dev/kmsg-host", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}));
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("null-ok"),
        "default devices stay usable: {out}"
    );
    assert!(out.contains("kmsg-denied"), "{out}");
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
