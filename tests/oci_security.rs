//! Security of `stack oci` containers (root required): capabilities,
//! no_new_privs, masked/read-only paths, seccomp, device cgroup, and the
//! regression tests for known runtime escapes (CVE-2019-5736, CVE-2024-21626,
//! CVE-2025-31133, symlinked mount destinations).
#[path = "oci_bundle/mod.rs"]
mod bundle;
mod common;

use std::path::Path;
use std::process::Command;

use bundle::{Bundle, ok, text};
use serde_json::{Value, json};

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
fn cve_2025_52565_dev_console_symlink_is_refused() {
    let mut b = Bundle::new(&["true"]);
    b.config["process"]["terminal"] = json!(true);
    // The image's own /dev (no tmpfs over it) with /dev/console pointing at a
    // host-sensitive file; devpts is still mounted for the pty.
    let mounts: Vec<Value> = b.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] != "/dev")
        .cloned()
        .collect();
    b.config["mounts"] = json!(mounts);
    std::fs::create_dir_all(b.rootfs().join("dev/pts")).unwrap();
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/core_pattern",
        b.rootfs().join("dev/console"),
    )
    .unwrap();
    let sock = b.path().join("console.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let out = b.oci(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    assert!(
        !out.status.success(),
        "a symlinked /dev/console must not be mounted over"
    );
    assert!(
        text(&out.stderr).contains("console"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    assert!(!b.root.path().join(&b.id).exists());
}

#[test]
fn cve_2025_52881_sysctls_are_written_through_the_verified_procfs() {
    // The container mounts a tmpfs over /proc/sys: a runtime writing sysctls
    // through the container's /proc would write into that tmpfs instead.
    let mut b = Bundle::new(&["sh", "-c", "ls /proc/sys | wc -l; sleep 30"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}));
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.config["linux"]["readonlyPaths"] = json!([]);
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let pid = b.state()["pid"].as_i64().unwrap();
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout).trim(),
        "1",
        "applied in the container's network namespace"
    );
    let ls = b.oci(&["exec", &b.id, "ls", "/proc/sys"]);
    ok(&ls);
    assert_eq!(
        text(&ls.stdout).trim(),
        "",
        "nothing was written into the container's tmpfs"
    );
}
