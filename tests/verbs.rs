//! `top`, `stats`, `pause`/`unpause`, `rm`, `images` and `wait` on real
//! containers (root). Every stack ends with `down` and the shared leak check.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::stack::TestStack;
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The container's cgroup file: `v1` under its controller on a v1 or hybrid host,
/// `v2` in the unified tree on a pure v2 host.
fn cgroup_file(t: &TestStack, service: &str, controller: &str, v1: &str, v2: &str) -> String {
    let rel = format!("stack.slice/{}.slice/{service}-1", t.name);
    let root = Path::new("/sys/fs/cgroup");
    let path = if root.join("cgroup.controllers").exists() {
        root.join(rel).join(v2)
    } else {
        root.join(controller).join(rel).join(v1)
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The whole disk under `dir` (`/dev/vda`), when `dir` is on a block device.
fn disk_of(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let mut sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    if sys.join("partition").exists() {
        sys = sys.parent()?.to_path_buf();
    }
    let uevent = std::fs::read_to_string(sys.join("uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(Path::new("/dev").join(name))
}

#[test]
fn top_lists_each_container_s_processes() {
    let t = TestStack::new(
        r#"
[services.app]
image = "{IMAGE}"
command = ["sh", "-c", "sleep 3601 & exec sleep 3600"]

[services.done]
image = "{IMAGE}"
command = ["true"]
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("app", 1);
    let done = t.container("done", 1);
    t.wait_for(10, "both sleeps, and `done` ended", || {
        t.ok(&["top", "--format", "json"]).contains("sleep 3601")
            && t.row(&done)["state"] == "exited"
    });
    let tops = json(&t.ok(&["top", "--format", "json"]));
    let tops = tops.as_array().unwrap();
    assert_eq!(tops.len(), 1, "only running containers: {tops:?}");
    assert_eq!(tops[0]["name"], name.as_str());
    let procs = tops[0]["processes"].as_array().unwrap();
    let mut cmds: Vec<&str> = procs
        .iter()
        .map(|p| p["command"].as_str().unwrap())
        .collect();
    cmds.sort();
    assert_eq!(cmds, ["sleep 3600", "sleep 3601"]);
    // The init is PID 1 inside, its host pid is what ps reports, and the
    // processes are exactly those of the container's cgroup.
    let init = procs.iter().find(|p| p["container_pid"] == 1).unwrap();
    assert_eq!(init["pid"], t.row(&name)["pid"]);
    assert_eq!(init["uid"], 0);
    let mut in_cgroup: Vec<i64> = cgroup_file(&t, "app", "pids", "cgroup.procs", "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let mut listed: Vec<i64> = procs.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    in_cgroup.sort();
    listed.sort();
    assert_eq!(listed, in_cgroup);
    let table = t.ok(&["top", "app"]);
    assert!(table.starts_with(&format!("{name}\nUID")), "{table}");
    assert!(table.contains("sleep 3601"), "{table}");
    let out = t.run(&["top", "ap"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no container of service ap (it has containers of: app, done)"),
        "{}",
        stderr(&out)
    );
    t.down_and_check();
}

#[test]
fn stats_report_the_cgroup_and_netns_counters() {
    let t = TestStack::new("");
    let disk = disk_of(t.dir.path());
    // With a throttle limit on the disk, cgroup v1 counts block I/O there (recent
    // kernels count nothing on devices without one); v2 counts in any case.
    let blkio = disk.as_ref().map_or(String::new(), |d| {
        format!(
            "[services.app.blkio_config]\ndevice_write_bps = [{{ path = \"{}\", rate = \"10gb\" }}]\n",
            d.display()
        )
    });
    t.write(&format!(
        r#"
[services.app]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
init = true
{blkio}
[services.app.deploy.resources.limits]
memory = "64M"
pids = 100

[services.busy]
image = "{{IMAGE}}"
command = ["sh", "-c", "while :; do :; done"]
[services.busy.deploy.resources.limits]
cpus = 0.5
"#
    ));
    t.ok(&["up", "-d"]);
    let traffic = "dd if=/dev/zero of=/written bs=1M count=4 oflag=direct 2>/dev/null; \
                   gw=$(ip route | awk '/default/ {print $3}'); ping -q -c 3 -s 1000 $gw";
    t.ok(&["exec", "-T", "app", "sh", "-c", traffic]);
    let rows = json(&t.ok(&["stats", "--no-stream", "--format", "json"]));
    let row = |svc: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == svc)
            .unwrap_or_else(|| panic!("no {svc} in {rows}"))
            .clone()
    };
    let app = row("app");
    // Limits exactly as the cgroup files hold them.
    let mem_limit = cgroup_file(&t, "app", "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(app["memory"]["limit"], 64 * 1024 * 1024);
    assert_eq!(app["memory"]["limit"].to_string(), mem_limit.trim());
    let pids_max = cgroup_file(&t, "app", "pids", "pids.max", "pids.max");
    assert_eq!(app["pids"]["limit"].to_string(), pids_max.trim());
    assert_eq!(app["pids"]["current"], 2, "stack-init and sleep: {app}");
    let usage = app["memory"]["usage"].as_u64().unwrap();
    let anon = app["memory"]["anon"].as_u64().unwrap();
    assert!(anon > 0 && usage >= anon, "{app}");
    let pct = app["memory_percent"].as_f64().unwrap();
    assert!((pct - usage as f64 * 100.0 / (64 << 20) as f64).abs() < 1e-9);
    // Three 1028-byte pings each way, from the container's own counters.
    let net = &app["net"];
    for dir in ["rx_bytes", "tx_bytes"] {
        assert!(net[dir].as_u64().unwrap() >= 3 * 1028, "{dir}: {net}");
    }
    // Block I/O: the same sums as the file, which holds the 4 MiB direct write.
    // v2 io.stat: `254:0 rbytes=N wbytes=N ...`; v1: `254:0 Read N` lines.
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let file = if v2 {
        "io.stat"
    } else {
        "blkio.throttle.io_service_bytes"
    };
    let text = cgroup_file(&t, "app", "blkio", file, file);
    let sum = |v2_key: &str, v1_key: &str| -> u64 {
        let words: Vec<&str> = text.split_whitespace().collect();
        if v2 {
            let prefix = format!("{v2_key}=");
            let values = words.iter().filter_map(|w| w.strip_prefix(prefix.as_str()));
            values.map(|v| v.parse::<u64>().unwrap()).sum()
        } else {
            let pairs = words.windows(2).filter(|w| w[0] == v1_key);
            pairs.map(|w| w[1].parse::<u64>().unwrap()).sum()
        }
    };
    assert_eq!(app["block"]["read_bytes"], sum("rbytes", "Read"), "{text}");
    assert_eq!(
        app["block"]["write_bytes"],
        sum("wbytes", "Write"),
        "{text}"
    );
    if disk.is_some() {
        assert!(
            app["block"]["write_bytes"].as_u64().unwrap() >= 4 << 20,
            "{app}"
        );
    }
    // A busy loop under a 0.5 CPU quota: some CPU, never much more than half of one.
    let busy = row("busy")["cpu_percent"].as_f64().unwrap();
    assert!(busy > 0.0 && busy < 60.0, "busy: {busy}%");
    let table = t.ok(&["stats", "--no-stream", "app"]);
    assert!(table.contains("MEM USAGE / LIMIT"), "{table}");
    assert!(table.contains("/ 64.00MiB"), "{table}");
    assert!(!table.contains("busy"), "{table}");
    // Streaming JSON: one array per reading and line, until stopped.
    let mut stream = Command::new(common::stack_bin())
        .arg("--root")
        .arg(t.root())
        .arg("-f")
        .arg(t.file())
        .args(["stats", "--format", "json", "app"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stream.stdout.take().unwrap()));
    for _ in 0..2 {
        let reading = json(&lines.next().unwrap().unwrap());
        assert_eq!(
            reading[0]["name"],
            t.container("app", 1).as_str(),
            "{reading}"
        );
        assert_eq!(reading.as_array().unwrap().len(), 1);
    }
    stream.kill().unwrap();
    stream.wait().unwrap();
    t.down_and_check();
    let out = t.run(&["stats", "--no-stream"]);
    assert!(
        stderr(&out).contains("has no containers on this state root; bring it up first"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let t = TestStack::new(
        r#"
[services.ticker]
image = "{IMAGE}"
command = ["sh", "-c", "while :; do echo tick; sleep 0.05; done"]

[services.once]
image = "{IMAGE}"
command = ["true"]
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("ticker", 1);
    let ticks = || {
        t.ok(&["logs", "--no-color", "ticker"])
            .matches("tick")
            .count()
    };
    t.wait_for(10, "ticks", || ticks() > 2);
    let outcomes = json(&t.ok(&["pause", "--format", "json"]));
    assert_eq!(
        outcomes,
        json(&format!(
            r#"[{{"name": "{}", "service": "once", "result": "skipped", "reason": "not running"}},
                {{"name": "{name}", "service": "ticker", "result": "done"}}]"#,
            t.container("once", 1)
        ))
    );
    let frozen = cgroup_file(&t, "ticker", "freezer", "freezer.state", "cgroup.freeze");
    assert!(matches!(frozen.trim(), "FROZEN" | "1"), "{frozen}");
    let row = t.row(&name);
    assert_eq!(row["paused"], true);
    assert!(
        row["status"].as_str().unwrap().ends_with("(paused)"),
        "{row}"
    );
    // Frozen: the loop makes no progress.
    let before = ticks();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(ticks(), before, "a paused container ran");
    let again = t.run(&["pause", "ticker"]);
    assert!(again.status.success());
    assert!(stderr(&again).contains("Skipped: already paused"));
    assert!(stderr(&t.run(&["unpause"])).contains(&format!("Container {name}  Unpaused")));
    t.wait_for(10, "ticks after unpause", || ticks() > before);
    assert_eq!(t.row(&name)["paused"], false);
    let not = t.run(&["unpause", "ticker"]);
    assert!(not.status.success() && stderr(&not).contains("Skipped: not paused"));
    t.down_and_check();
}

#[test]
fn a_paused_container_stops_gracefully() {
    let t = TestStack::one(
        "app",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done",
        ],
    );
    t.ok(&["up", "-d"]);
    let name = t.container("app", 1);
    t.wait_for(10, "the trap", || t.ok(&["logs", "app"]).contains("up"));
    t.ok(&["pause"]);
    t.ok(&["stop", "-t", "20"]);
    let row = t.row(&name);
    assert_eq!(
        (row["state"].as_str(), row["exit_code"].as_i64()),
        (Some("stopped"), Some(0)),
        "thawed and stopped by its signal, not killed: {row}"
    );
    assert!(t.ok(&["logs", "app"]).contains("bye"));
    t.down_and_check();
}

/// Names of the volumes under the state root.
fn volumes(t: &TestStack) -> Vec<String> {
    json(&t.ok(&["volume", "ls", "--format", "json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn rm_removes_stopped_containers_and_with_v_their_anonymous_volumes() {
    let t = TestStack::new(
        r#"
[services.job]
image = "{IMAGE}"
command = ["sh", "-c", "echo done > /scratch/out"]
volumes = ["/scratch", "data:/data"]

[services.web]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true

[volumes.data]
"#,
    );
    t.ok(&["up", "-d"]);
    let (job, web) = (t.container("job", 1), t.container("web", 1));
    t.wait_for(10, "the job to finish", || t.row(&job)["state"] == "exited");
    let named = format!("{}_data", t.name);
    let before = volumes(&t);
    assert_eq!(before.len(), 2, "one anonymous, one named: {before:?}");
    let anon = before.iter().find(|v| **v != named).unwrap().clone();

    // Without -f the running container stays; without -v the volumes stay.
    let out = t.run(&["rm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("Container {job}  Removed")), "{err}");
    assert!(
        err.contains(&format!("Container {web}  Skipped: running")),
        "{err}"
    );
    let names: Vec<Value> = t.ps().iter().map(|r| r["name"].clone()).collect();
    assert_eq!(names, [Value::from(web.as_str())]);
    assert_eq!(volumes(&t), before);

    // A new job: -v removes its anonymous volume, never the named one.
    t.ok(&["up", "-d", "job"]);
    t.wait_for(10, "the second job", || t.row(&job)["state"] == "exited");
    let second = volumes(&t)
        .into_iter()
        .find(|v| !before.contains(v))
        .expect("a new anonymous volume");
    let removed = json(&t.ok(&["rm", "-v", "--format", "json", "job"]));
    assert_eq!(removed[0]["result"], "done", "{removed}");
    assert_eq!(removed[0]["volumes"], json(&format!("[\"{second}\"]")));
    let left = volumes(&t);
    assert!(left.contains(&named) && left.contains(&anon) && !left.contains(&second));

    // -f removes a running container: its processes and cgroup go.
    t.ok(&["rm", "-f", "-t", "1", "web"]);
    assert!(t.ps().is_empty());
    for root in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
        let cg = Path::new(root).join(format!("stack.slice/{}.slice/web-1", t.name));
        assert!(!cg.exists(), "{} left", cg.display());
    }
    let out = t.run(&["rm", "job"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no containers"),
        "{}",
        stderr(&out)
    );
    t.down_and_check();
}

/// The `destroy` events of `events --json` so far: (container, service).
fn destroy_events(t: &TestStack) -> Vec<(String, String)> {
    t.ok(&["events", "--json", "--since", "10m", "--until", "0s"])
        .lines()
        .map(json)
        .filter(|e| e["action"] == "destroy")
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (field("container"), field("service"))
        })
        .collect()
}

#[test]
fn rm_records_a_destroy_event_per_removed_container() {
    let t = TestStack::new(
        r#"
[services.job]
image = "{IMAGE}"
command = ["true"]

[services.web]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let (job, web) = (t.container("job", 1), t.container("web", 1));
    t.wait_for(10, "the job to finish", || t.row(&job)["state"] == "exited");
    // The running web is skipped: no event for it.
    t.ok(&["rm"]);
    assert_eq!(destroy_events(&t), [(job.clone(), "job".to_string())]);
    t.ok(&["rm", "-f", "-t", "1", "web"]);
    assert_eq!(
        destroy_events(&t),
        [(job, "job".to_string()), (web, "web".to_string())]
    );
    t.down_and_check();
}

#[test]
fn images_lists_each_container_s_image_and_without_a_stack_the_store() {
    let t = TestStack::new(
        r#"
[services.a]
image = "{IMAGE}"
command = ["sleep", "3600"]

[services.b]
image = "{IMAGE}"
command = ["true"]
"#,
    );
    t.ok(&["up", "-d"]);
    let rows = json(&t.ok(&["images", "--format", "json"]));
    let store = json(&t.ok(&["image", "ls", "--format", "json"]));
    assert_eq!(store.as_array().unwrap().len(), 1, "{store}");
    let image = &store[0];
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, svc) in rows.iter().zip(["a", "b"]) {
        assert_eq!(row["container"], t.container(svc, 1).as_str());
        assert_eq!(row["service"], svc);
        assert!(row["image"].as_str().unwrap().starts_with("oci:/"), "{row}");
        assert_eq!(row["id"], image["id"]);
        assert_eq!(row["config_digest"], image["config_digest"]);
        assert_eq!(row["size"], image["size"]);
    }
    let short = &image["config_digest"].as_str().unwrap()["sha256:".len()..][..12];
    assert_eq!(t.ok(&["images", "-q"]).trim(), short);
    let table = t.ok(&["images", "b"]);
    assert!(table.starts_with("CONTAINER"), "{table}");
    assert!(table.contains(short) && !table.contains(&t.container("a", 1)));
    // No -p, no -f and no stack file here: the whole store.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(common::stack_bin())
        .arg("--root")
        .arg(t.root())
        .args(["images", "--format", "json"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&String::from_utf8_lossy(&out.stdout)), store);
    t.down_and_check();
}

#[test]
fn wait_blocks_until_containers_stop_for_good_and_reports_exit_codes() {
    let t = TestStack::new(
        r#"
[services.ok]
image = "{IMAGE}"
command = ["sh", "-c", "sleep 0.5"]

[services.flaky]
image = "{IMAGE}"
command = ["sh", "-c", "exit 3"]
restart = "on-failure:2"

[services.forever]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let ok = json(&t.ok(&["wait", "--format", "json", "ok"]));
    assert_eq!(ok[0]["exit_code"], 0);
    assert_eq!(ok[0]["state"], "exited");
    // on-failure:2 restarts twice: wait returns after the last try, not the first.
    let out = t.run(&["wait", "flaky"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a non-zero exit code fails wait"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&t.container("flaky", 1)) && text.contains(" 3"),
        "{text}"
    );
    let flaky = t.row(&t.container("flaky", 1));
    assert_eq!(
        (flaky["state"].clone(), flaky["restarts"].clone()),
        ("exited".into(), 2.into())
    );
    let out = t.run(&["wait", "-t", "1", "forever"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("still running: {}", t.container("forever", 1))),
        "{}",
        stderr(&out)
    );
    // A wait in progress returns when the container is stopped.
    let waiter = Command::new(common::stack_bin())
        .arg("--root")
        .arg(t.root())
        .arg("-f")
        .arg(t.file())
        .args(["wait", "--format", "json", "forever"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    t.ok(&["stop", "-t", "1", "forever"]);
    let out = waiter.wait_with_output().unwrap();
    let stopped = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(stopped[0]["state"], "stopped", "{stopped}");
    assert!(stopped[0]["exit_code"].is_i64(), "{stopped}");
    t.down_and_check();
}

#[test]
fn every_new_verb_has_help() {
    for (verb, says) in [
        ("top", "--format"),
        ("stats", "--no-stream"),
        ("pause", "--format"),
        ("unpause", "--format"),
        ("rm", "--volumes"),
        ("images", "--quiet"),
        ("wait", "Exit status"),
    ] {
        let out = Command::new(common::stack_bin())
            .args([verb, "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(says),
            "{verb}: {text}"
        );
    }
}
