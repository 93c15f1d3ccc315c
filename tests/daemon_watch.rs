//! The daemon follows stack files: an edit recreates exactly what changed, an
//! invalid edit changes nothing and is reported, `.env` counts, and a stacks
//! directory brings stacks up and down (root, real containers).
mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::stack::{TestStack, assert_no_leaks, image};
use common::stack_bin;
use stack::daemon::client::Client;
use stack::daemon::proto::StackInfo;
use stack::state::Roots;

/// Pids of the stack's running containers, by container name.
fn pids(t: &TestStack) -> BTreeMap<String, i64> {
    t.ps()
        .into_iter()
        .filter(|r| r["state"] == "running")
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["pid"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn stack_info(root: &std::path::Path, name: &str) -> StackInfo {
    let client = Client::connect(&Roots::new(Some(root))).expect("a daemon runs");
    client.get(&format!("/v1/stacks/{name}")).unwrap()
}

/// How many times the daemon has read the stack's files so far.
fn loads(root: &std::path::Path, name: &str) -> u64 {
    stack_info(root, name).loads
}

/// Wait until the daemon has read the stack's files again since `loads` was
/// `before` (so it saw the latest write) and finished what that read started.
fn settle(root: &std::path::Path, name: &str, before: u64) {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let info = stack_info(root, name);
        if info.loads > before && !info.pending {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the daemon never settled on {name}");
}

/// Replace the file as vim does: write a new file, rename it over.
fn save(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn body(level: &str) -> String {
    format!(
        r#"
[services.a]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
init = true

[services.b]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
init = true
environment = {{ LEVEL = "{level}", FROM_ENV = "${{FROM_ENV:-unset}}" }}
"#
    )
}

#[test]
fn an_edit_recreates_only_what_changed_and_an_invalid_one_changes_nothing() {
    let t = TestStack::new(&body("info"));
    t.ok(&["up", "-d", "--watch"]);
    let (a, b) = (t.container("a", 1), t.container("b", 1));
    let before = pids(&t);
    assert_eq!(before.len(), 2);
    // A valid edit, saved by rename: only b is recreated.
    let text = std::fs::read_to_string(t.file()).unwrap();
    save(&t.file(), &text.replace("\"info\"", "\"debug\""));
    t.wait_for(20, "b recreated", || {
        pids(&t).get(&b).is_some_and(|p| *p != before[&b])
    });
    assert_eq!(pids(&t)[&a], before[&a], "a was not touched");
    // An invalid edit: everything runs on, and the error says where.
    let now = pids(&t);
    let seen = loads(&t.root(), &t.name);
    std::fs::write(t.file(), format!("{text}\n[services.c\nimage = 1\n")).unwrap();
    settle(&t.root(), &t.name, seen);
    assert_eq!(pids(&t), now, "nothing changed");
    let ls = t.ok(&["ls", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == t.name.as_str())
        .unwrap();
    let message = row["file_error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("stack.toml:"), "file:line:col in {row}");
    assert!(
        row["status"]
            .as_str()
            .unwrap()
            .contains("file invalid since"),
        "{row}"
    );
    let events = t.ok(&["events", "--json", "--since", "10m", "--until", "0s"]);
    assert!(
        events.contains("file_invalid") && events.contains("stack.toml:"),
        "{events}"
    );
    // .env changes an interpolated value: b again, and the error is gone.
    let seen = loads(&t.root(), &t.name);
    std::fs::write(t.file(), &text).unwrap();
    std::fs::write(t.dir.path().join(".env"), "FROM_ENV=set\n").unwrap();
    settle(&t.root(), &t.name, seen);
    t.wait_for(20, "b recreated for .env", || {
        t.ok(&["exec", "-T", "b", "sh", "-c", "echo $FROM_ENV"])
            .trim()
            == "set"
    });
    assert_eq!(pids(&t)[&a], before[&a], "a still untouched");
    let ls = t.ok(&["ls", "--format", "json"]);
    assert!(!ls.contains("file invalid"), "{ls}");
    t.down_and_check();
}

/// `service hash` of every container of the stack, as recorded.
fn hashes_on_disk(t: &TestStack) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(t.root().join("lib/containers"))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| std::fs::read_to_string(e.path().join("spec.json")).ok())
        .map(|text| {
            let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
            format!(
                "{} {}",
                spec["service"].as_str().unwrap(),
                spec["config_hash"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// `service hash` of every service of a file, None when it does not load as
/// stack `name` (a file cut before its `name =` line names another stack,
/// which the daemon refuses for this one).
fn hashes_of(file: &std::path::Path, name: &str) -> Option<Vec<String>> {
    let opts = stack::spec::LoadOptions {
        files: vec![file.to_path_buf()],
        working_dir: file.parent().unwrap().to_path_buf(),
        ..Default::default()
    };
    let loaded = stack::spec::load(&opts).ok()?;
    let stack = &loaded.stack;
    if stack.name != name {
        return None;
    }
    let mut lines: Vec<String> = stack
        .services
        .iter()
        .map(|(name, svc)| format!("{name} {}", svc.config_hash(stack)))
        .collect();
    lines.sort();
    Some(lines)
}

#[test]
fn truncated_writes_leave_the_old_state_or_exactly_the_new_one() {
    let full = body("v2")
        + "\n[services.c]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"3600\"]\ninit = true\n";
    let t = TestStack::new(&body("v1"));
    t.ok(&["up", "-d", "--watch"]);
    let image = format!("oci:{}:latest", image().display());
    let name_line = format!("name = \"{}\"\n", t.name);
    let versions =
        [body("v1"), full.clone()].map(|b| name_line.clone() + &b.replace("{IMAGE}", &image));
    let check = t.dir.path().join("check.toml");
    std::fs::write(&check, &versions[0]).unwrap();
    let mut expected = hashes_of(&check, &t.name).unwrap();
    let mut seed: u64 = 0x5eed;
    let rounds: usize = std::env::var("STACK_TRUNCATION_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    for round in 0..rounds {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = &versions[(seed >> 33) as usize % 2];
        // Most writes are cut short, as a crashing editor leaves them.
        let cut = if seed.is_multiple_of(5) {
            v.len()
        } else {
            (seed >> 13) as usize % v.len()
        };
        let text = &v[..v.floor_char_boundary(cut)];
        let seen = loads(&t.root(), &t.name);
        std::fs::write(t.file(), text).unwrap();
        std::fs::write(&check, text).unwrap();
        if let Some(h) = hashes_of(&check, &t.name) {
            expected = h;
        }
        settle(&t.root(), &t.name, seen);
        assert_eq!(
            hashes_on_disk(&t),
            expected,
            "round {round}: the containers are those of the last valid file"
        );
    }
    std::fs::write(t.file(), &versions[0]).unwrap();
    t.down_and_check();
}

#[test]
fn a_stacks_directory_brings_stacks_up_and_down() {
    let t = TestStack::new("");
    let dir = t.dir.path().join("stacks.d");
    std::fs::create_dir_all(&dir).unwrap();
    let mut daemon = Command::new(stack_bin())
        .arg("--root")
        .arg(t.root())
        .args(["daemon", "--stacks-dir"])
        .arg(&dir)
        .spawn()
        .unwrap();
    let file = dir.join(format!("{}.toml", t.name));
    let image = format!("oci:{}:latest", image().display());
    std::fs::write(
        &file,
        format!("[services.web]\nimage = \"{image}\"\ncommand = [\"sleep\", \"3600\"]\n"),
    )
    .unwrap();
    // Named by its file name, up without any `stack up`.
    let web = t.container("web", 1);
    let ps = || {
        Command::new(stack_bin())
            .arg("--root")
            .arg(t.root())
            .args(["-p", &t.name, "ps", "--format", "json"])
            .output()
            .unwrap()
    };
    let running = || String::from_utf8_lossy(&ps().stdout).contains(&web);
    let until = Instant::now() + Duration::from_secs(30);
    while !running() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(running(), "the stack came up from the stacks directory");
    std::fs::remove_file(&file).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while running() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running(), "removing the file brought the stack down");
    common::signal(daemon.id() as i32, nix::sys::signal::Signal::SIGTERM).unwrap();
    daemon.wait().unwrap();
    assert_no_leaks(&t.root(), &t.name);
}
