//! The bundled examples come up, answer, and go down leaving nothing (root).
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::stack::assert_no_leaks;
use common::{require_root, stack_bin, unique};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// `stack` on example `name` under its own root, with a unique project name.
struct Example {
    dir: PathBuf,
    root: tempfile::TempDir,
    project: String,
}

impl Example {
    fn new(name: &str) -> Example {
        require_root();
        let built = Command::new("bash")
            .arg(examples().join("images/build.sh"))
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        Example {
            dir: examples().join("stacks").join(name),
            root: tempfile::tempdir().unwrap(),
            project: unique("ex"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(stack_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(["-p", &self.project])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "stack {args:?}: {text}");
        text
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "-t", "1"]);
        if !std::thread::panicking() {
            assert_no_leaks(self.root.path(), &self.project);
        }
    }
}

fn wait_logs(ex: &Example, needle: &str) -> String {
    for _ in 0..200 {
        let logs = ex.ok(&["logs", "--no-color"]);
        if logs.contains(needle) {
            return logs;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "{needle:?} never appeared in the logs: {}",
        ex.ok(&["logs", "--no-color"])
    );
}

#[test]
fn hello_says_hello() {
    let ex = Example::new("hello");
    ex.ok(&["up", "-d"]);
    wait_logs(&ex, "hello from");
}

#[test]
fn web_serves_on_loopback_after_the_store_is_healthy() {
    let ex = Example::new("web");
    ex.ok(&["up", "-d"]);
    let ps = ex.ok(&["ps"]);
    assert!(
        ps.contains("-web-1") && ps.contains("-store-1") && ps.contains("-worker-1"),
        "{ps}"
    );
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:8080") {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let _ = s.read_to_string(&mut body);
            if body.contains("hello from stack") {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no answer on 127.0.0.1:8080: {body}");
}

#[test]
fn limits_apply_cgroup_limits_and_restart_the_crasher() {
    let ex = Example::new("limits");
    ex.ok(&["up", "-d"]);
    let slice = format!("stack.slice/{}.slice", ex.project);
    let read = |p: String| {
        std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(p))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read(format!("cpu/{slice}/capped-1/cpu.cfs_quota_us")),
        "50000",
        "cpus = 0.5"
    );
    assert_eq!(
        read(format!("memory/{slice}/memory.limit_in_bytes")),
        (256u64 << 20).to_string(),
        "stack-wide memory"
    );
    assert_eq!(
        read(format!("pids/{slice}/deployed-2/pids.max")),
        "10",
        "deploy.resources.limits.pids"
    );
    let crasher = format!("{}-crasher-1", ex.project);
    for _ in 0..200 {
        let out = ex.run(&["ps", "-a", "--format", "json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        if rows
            .iter()
            .any(|r| r["name"] == crasher && r["restarts"].as_u64().unwrap_or(0) >= 1)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the crasher never restarted: {}", ex.ok(&["ps", "-a"]));
}

#[test]
fn compose_example_merges_the_override() {
    let ex = Example::new("compose");
    ex.ok(&["up", "-d"]);
    wait_logs(&ex, "cache from the override");
}
