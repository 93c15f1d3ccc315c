//! Planning changes nothing: `stack plan` and `up --dry-run` leave the state
//! root (every file, its size and mtime) and the kernel objects of the stack
//! (links, nftables table, cgroups, mounts) as they were. And `up -d` of an
//! unchanged file, repeated, performs no action. Needs root.
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::stack::{TestStack, root_id};

fn body(level: &str, scale: u32) -> String {
    format!(
        r#"
[services.web]
image = "{{IMAGE}}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
ports = ["127.0.0.1::80"]
init = true
scale = {scale}

[services.app]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
environment = {{ LOG_LEVEL = "{level}" }}
depends_on = {{ web = {{ condition = "service_started", restart = true }} }}
"#
    )
}

/// Every entry under `dir`: kind, size and mtime (nanoseconds).
fn files(dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        out.insert(
            path.display().to_string(),
            format!("{:?} {} {mtime:?}", meta.file_type(), meta.len()),
        );
        if meta.is_dir() {
            files(&path, out);
        }
    }
}

fn cmd(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What planning must not change: the state root and the stack's kernel objects.
fn snapshot(t: &TestStack) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    files(&t.root(), &mut out);
    let id = root_id(&t.root()).unwrap();
    // links and their addresses (not `-d`: it prints running timers)
    for what in ["link", "addr"] {
        let ours: Vec<String> = cmd(&["ip", "-o", what])
            .lines()
            .filter(|l| {
                l.split(": ")
                    .nth(1)
                    .is_some_and(|n| n.starts_with(&format!("s{id}")))
            })
            .map(str::to_string)
            .collect();
        out.insert(what.into(), ours.join("\n"));
    }
    let table = format!("stack_{id}");
    out.insert("nft".into(), cmd(&["nft", "list", "table", "inet", &table]));
    for hierarchy in ["memory", "pids", "cpu", "unified"] {
        let slice = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("stack.slice")
            .join(format!("{}.slice", t.name));
        let mut dirs = Vec::new();
        let mut todo = vec![slice];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|f| f.is_dir()) {
                    dirs.push(e.path().display().to_string());
                    todo.push(e.path());
                }
            }
        }
        dirs.sort();
        out.insert(format!("cgroup {hierarchy}"), dirs.join("\n"));
    }
    let root = t.root().display().to_string();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&root))
        .map(str::to_string)
        .collect();
    out.insert("mounts".into(), mounts.join("\n"));
    out
}

fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}", a.get(k), b.get(k)))
        .collect()
}

#[test]
fn plan_and_dry_run_change_nothing_on_disk_or_in_the_kernel() {
    let t = TestStack::new(&body("info", 1));
    t.ok(&["up", "-d"]);
    // an edit that recreates one service and adds a replica to the other
    t.write(&body("debug", 2));
    let before = snapshot(&t);
    let plan = t.ok(&["plan"]);
    assert_eq!(
        plan.lines().collect::<Vec<_>>(),
        [
            format!(
                "recreate {}: environment.LOG_LEVEL changed",
                t.container("app", 1)
            ),
            format!("create {}", t.container("web", 2)),
        ],
        "{plan}"
    );
    let dry = t.ok(&["up", "--dry-run"]);
    assert_eq!(dry, plan);
    let after = snapshot(&t);
    let changed = diff(&before, &after);
    assert!(
        changed.is_empty(),
        "planning changed:\n{}",
        changed.join("\n")
    );
    t.down_and_check();
}

#[test]
fn a_thousand_ups_of_an_unchanged_file_do_nothing() {
    let t = TestStack::new(&body("info", 2));
    t.ok(&["up", "-d"]);
    let rows = |t: &TestStack| -> Vec<(String, i64, String)> {
        t.ps()
            .iter()
            .map(|r| {
                let pid = r["pid"].as_i64().unwrap_or_default();
                let name = r["name"].as_str().unwrap_or_default().to_string();
                (name, pid, r["created"].to_string())
            })
            .collect()
    };
    let first = rows(&t);
    assert_eq!(first.len(), 3, "{first:?}");
    for i in 0..1000 {
        let out = t.run(&["up", "-d"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.contains("nothing to do"),
            "up #{i}: {}\n{err}",
            out.status
        );
    }
    assert_eq!(rows(&t), first, "no container was replaced or restarted");
    t.down_and_check();
}
