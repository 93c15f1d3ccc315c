//! `stack oci` on a pure cgroup v2 layout (root required).
//!
//! This host is hybrid (v1 controllers, cgroup2 at /sys/fs/cgroup/unified), so
//! the test makes a v2-only view in a private mount namespace: /sys/fs/cgroup is
//! replaced by a bind of a test-owned cgroup2 directory, and every `stack`
//! command runs in that namespace (`nsenter`). `stack` then detects pure v2
//! and uses only its v2 code. The only controller free on the unified tree
//! here is hugetlb (memory, cpu, pids, io are bound to v1), so hugetlb is the
//! one limit exercised; what the cgroup2 core offers without controllers is
//! exercised too: placement, cgroup.freeze, cgroup.kill, a BPF device program,
//! the container's cgroup2 mount and removal. Memory limits and memory.events
//! OOM counters on v2 are covered by unit tests only (src/cgroup/tests.rs).
#[path = "oci_bundle/mod.rs"]
mod bundle;
mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use bundle::{Bundle, ok, text};
use serde_json::json;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// The test's cgroup2 subtree, a mount namespace showing it as /sys/fs/cgroup
/// (held by a sleeping process), and hugetlb enabled at the unified root for
/// the test's duration. Undone on drop, even when the test fails.
struct V2View {
    holder: std::process::Child,
    subtree: PathBuf,
    enabled_hugetlb: bool,
    _stage: tempfile::TempDir,
}

impl V2View {
    fn new() -> V2View {
        common::require_root();
        let subtree = Path::new(UNIFIED).join(common::unique("stack-v2"));
        std::fs::create_dir(&subtree).unwrap();
        let root_ctl = Path::new(UNIFIED).join("cgroup.subtree_control");
        let before = std::fs::read_to_string(&root_ctl).unwrap();
        let enabled_hugetlb = !before.split_whitespace().any(|c| c == "hugetlb");
        if enabled_hugetlb {
            std::fs::write(&root_ctl, "+hugetlb").unwrap();
        }
        let stage = tempfile::tempdir().unwrap();
        let script = "mount --bind \"$1\" \"$2\" && umount -l /sys/fs/cgroup && \
                      mount --move \"$2\" /sys/fs/cgroup && echo ready && exec sleep 600";
        let mut holder = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(&subtree)
            .arg(stage.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let view = V2View {
            holder,
            subtree,
            enabled_hugetlb,
            _stage: stage,
        };
        assert_eq!(line.trim(), "ready", "setting up the v2 mount namespace");
        view
    }

    fn pid(&self) -> String {
        self.holder.id().to_string()
    }
}

impl Drop for V2View {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        remove_tree(&self.subtree);
        if self.enabled_hugetlb {
            let _ = std::fs::write(
                Path::new(UNIFIED).join("cgroup.subtree_control"),
                "-hugetlb",
            );
        }
    }
}

/// rmdir deepest first (cgroupfs removes the control files with the directory).
fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn pure_v2_limits_freezer_kill_devices_and_delete() {
    let view = V2View::new();
    let mut b = Bundle::new(&["sleep", "600"]);
    const LIMIT: u64 = 4 * 2 * 1024 * 1024;
    b.config["linux"]["resources"] = json!({
        "hugepageLimits": [{"pageSize": "2MB", "limit": LIMIT}],
        "devices": [{"allow": false, "access": "rwm"}]
    });
    b.config["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/dev/kmsg-host", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}));
    let pid = view.pid();
    let ns = ["nsenter", "-t", pid.as_str(), "-m", "--"];
    let oci = |args: &[&str]| b.oci_wrapped(&ns, args);
    ok(&oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    // The container's cgroup, seen from the host's unified tree.
    let cg = view.subtree.join("stack-test").join(&b.id);
    let state = |oci: &dyn Fn(&[&str]) -> std::process::Output| {
        let out = oci(&["state", &b.id]);
        ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    };
    assert_eq!(state(&oci), "running");
    let init = read(&cg.join("cgroup.procs"));
    assert!(!init.is_empty(), "the init is placed in its v2 cgroup");
    assert_eq!(read(&cg.join("hugetlb.2MB.max")), LIMIT.to_string());
    assert!(
        read(&view.subtree.join("stack-test/cgroup.subtree_control")).contains("hugetlb"),
        "the controller is enabled on the way down"
    );

    // Inside: a cgroup2 mount rooted at the container's cgroup (cgroup
    // namespace) with its limit; the BPF device program denies unlisted devices.
    let out = oci(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "grep -c cgroup2 /proc/self/mounts; cat /sys/fs/cgroup/hugetlb.2MB.max; \
         echo x > /dev/null && echo null-ok; \
         head -c 1 /dev/kmsg-host > /dev/null 2>&1 && echo kmsg-open || echo kmsg-denied",
    ]);
    ok(&out);
    assert_eq!(
        text(&out.stdout),
        format!("1\n{LIMIT}\nnull-ok\nkmsg-denied\n")
    );

    ok(&oci(&["pause", &b.id]));
    assert_eq!(read(&cg.join("cgroup.freeze")), "1");
    assert!(read(&cg.join("cgroup.events")).contains("frozen 1"));
    assert_eq!(state(&oci), "paused");
    ok(&oci(&["resume", &b.id]));
    assert_eq!(state(&oci), "running");

    // kill --all KILL is one write to cgroup.kill.
    ok(&oci(&["kill", "--all", &b.id, "KILL"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while state(&oci) != "stopped" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(state(&oci), "stopped");
    ok(&oci(&["delete", &b.id]));
    assert!(!cg.exists(), "delete removed the v2 cgroup");
}
