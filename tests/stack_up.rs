//! `stack up` / `ps` / `logs` / `down` with real containers (root).
mod common;

use std::time::Duration;

use common::stack::{TestStack, links_named, root_id};

fn logs(t: &TestStack) -> String {
    t.ok(&["logs", "--no-color"])
}

#[test]
fn up_runs_an_isolated_limited_service_and_down_leaves_nothing() {
    let t = TestStack::new(
        r#"
[services.hello]
image = "{IMAGE}"
command = ["sh", "-c", "echo hello from $$(hostname) pid $$$$; ls /sys/class/net; sleep 3600"]
mem_limit = "64M"
pids_limit = 50
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("hello", 1);
    let row = t.row(&name);
    assert_eq!(row["state"], "running", "{row}");
    t.wait_for(10, "output", || logs(&t).contains("hello from"));
    let out = logs(&t);
    assert!(
        out.contains(&format!("hello from {name} pid 1")),
        "own hostname, PID 1 in its namespace: {out}"
    );
    assert!(
        out.contains("eth0") && out.contains("lo"),
        "own network interfaces: {out}"
    );
    let cg = format!(
        "/sys/fs/cgroup/memory/stack.slice/{}.slice/hello-1/memory.limit_in_bytes",
        t.name
    );
    assert_eq!(
        std::fs::read_to_string(cg).unwrap().trim(),
        (64 * 1024 * 1024).to_string()
    );
    let pids = format!(
        "/sys/fs/cgroup/pids/stack.slice/{}.slice/hello-1/pids.max",
        t.name
    );
    assert_eq!(std::fs::read_to_string(pids).unwrap().trim(), "50");
    t.down_and_check();
    assert!(t.ps().is_empty());
}

/// Removes the link when dropped, whether the test passed or not.
struct Foreign(String);

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

#[test]
fn down_deletes_its_links_at_once_and_never_one_of_someone_else() {
    let t = TestStack::new(
        r#"
[services.a]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true

[services.b]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let ours = links_named(&format!("s{}", root_id(&t.root()).unwrap()));
    assert_eq!(ours.len(), 3, "a bridge and two veths: {ours:#?}");
    // The bridge and its veths share a device group (what `down` deletes
    // in one request); a link of someone else put in that same group must
    // survive the `down`.
    let group = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "group").unwrap();
        words[at + 1].to_string()
    };
    let groups: std::collections::BTreeSet<String> = ours.iter().map(|l| group(l)).collect();
    assert_eq!(groups.len(), 1, "one group: {ours:#?}");
    let g = groups.into_iter().next().unwrap();
    assert_ne!(g, "default");
    let foreign = Foreign(common::unique("brx"));
    let made = std::process::Command::new("ip")
        .args(["link", "add", &foreign.0, "group", &g, "type", "bridge"])
        .status()
        .unwrap();
    assert!(made.success());
    t.down_and_check();
    assert_eq!(
        links_named(&foreign.0).len(),
        1,
        "someone else's link stays"
    );
}

#[test]
fn a_second_up_without_change_does_nothing_and_an_edit_recreates_only_that_service() {
    let body = |b_env: &str| {
        format!(
            r#"
[services.a]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
init = false

[services.b]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
environment = {{ LOG_LEVEL = "{b_env}" }}
"#
        )
    };
    let t = TestStack::new(&body("info"));
    t.ok(&["up", "-d"]);
    let (a, b) = (t.container("a", 1), t.container("b", 1));
    let pid = |n: &str| t.row(n)["pid"].as_i64().unwrap();
    let (a1, b1) = (pid(&a), pid(&b));
    let out = t.run(&["up", "-d"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
    assert_eq!((pid(&a), pid(&b)), (a1, b1));
    t.write(&body("debug"));
    let plan = t.ok(&["plan"]);
    assert_eq!(
        plan.trim(),
        format!("recreate {b}: environment.LOG_LEVEL changed")
    );
    t.ok(&["up", "-d", "-t", "1"]);
    assert_eq!(pid(&a), a1, "a was not touched");
    assert_ne!(pid(&b), b1, "b was recreated");
    t.down_and_check();
}

#[test]
fn on_failure_restarts_up_to_the_limit_and_records_the_exit_code() {
    let t = TestStack::new(
        r#"
[services.flaky]
image = "{IMAGE}"
command = ["sh", "-c", "echo try; exit 3"]
restart = "on-failure:2"
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("flaky", 1);
    t.wait_for(20, "the last exit", || t.row(&name)["state"] == "exited");
    let row = t.row(&name);
    assert_eq!(
        (row["exit_code"].as_i64(), row["restarts"].as_i64()),
        (Some(3), Some(2)),
        "{row}"
    );
    assert_eq!(logs(&t).matches("try").count(), 3);
    t.down_and_check();
}

#[test]
fn a_container_killed_by_its_memory_limit_shows_oomkilled() {
    let t = TestStack::new(
        r#"
[services.hog]
image = "{IMAGE}"
command = ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1"]
mem_limit = "16M"
memswap_limit = "16M"
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("hog", 1);
    t.wait_for(20, "the OOM kill", || t.row(&name)["state"] == "exited");
    let row = t.row(&name);
    assert_eq!(
        (row["exit_code"].as_i64(), row["oom_killed"].as_bool()),
        (Some(137), Some(true)),
        "{row}"
    );
    let ps = t.ok(&["ps", "-a"]);
    assert!(ps.contains("137, OOMKilled"), "{ps}");
    t.down_and_check();
}

#[test]
fn depends_on_orders_start_and_waits_for_completion() {
    let t = TestStack::new(
        r#"
[services.setup]
image = "{IMAGE}"
command = ["sh", "-c", "sleep 0.5; echo ready > /data/flag"]
volumes = ["data:/data"]

[services.app]
image = "{IMAGE}"
command = ["sh", "-c", "cat /data/flag; sleep 3600"]
volumes = ["data:/data"]
depends_on = { setup = { condition = "service_completed_successfully" } }

[volumes.data]
"#,
    );
    t.ok(&["up", "-d"]);
    t.wait_for(10, "app output", || logs(&t).contains("ready"));
    t.down_and_check();
}

#[test]
fn a_bad_file_is_rejected_with_its_location_and_changes_nothing() {
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
mem_limit = "lots"
"#,
    );
    let out = t.run(&["up", "-d"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stack.toml:5:13"), "{err}");
    assert!(
        !t.root().join("lib/containers").exists()
            || std::fs::read_dir(t.root().join("lib/containers"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn stop_signal_and_grace_period_are_honoured() {
    let t = TestStack::new(
        r#"
[services.svc]
image = "{IMAGE}"
command = ["sh", "-c", "trap 'echo got USR1 > /out/sig; exit 0' USR1; touch /out/trapped; while :; do sleep 0.1; done"]
stop_signal = "SIGUSR1"
stop_grace_period = "5s"
volumes = ["./out:/out"]
"#,
    );
    t.ok(&["up", "-d"]);
    let trapped = t.dir.path().join("out/trapped");
    t.wait_for(10, "the trap is set", || trapped.exists());
    let started = std::time::Instant::now();
    t.down_and_check();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the stop signal ended it, not the grace period"
    );
    assert_eq!(
        std::fs::read_to_string(t.dir.path().join("out/sig")).unwrap(),
        "got USR1\n"
    );
}

#[test]
fn init_is_pid_1_and_forwards_the_stop_signal() {
    let t = TestStack::new(
        r#"
[services.app]
image = "{IMAGE}"
command = ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; (sleep 0.1 &); exec sleep 3600"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    t.wait_for(10, "output", || logs(&t).contains("stack-init"));
    assert!(
        logs(&t).contains("/sbin/stack-init -- sh -c"),
        "{}",
        logs(&t)
    );
    let started = std::time::Instant::now();
    t.ok(&["down", "-t", "10"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "sleep got SIGTERM through the init, no 10 s wait"
    );
}

#[test]
fn stop_start_kill_inspect_port_and_ls() {
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
ports = ["127.0.0.1::80"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("web", 1);
    let addr = t.ok(&["port", "web", "80"]);
    let addr = addr.trim();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let fetch = || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    };
    t.wait_for(10, "the published port", || {
        fetch().is_some_and(|b| b.contains(&name))
    });
    let doc: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", "web"])).unwrap();
    assert_eq!(doc[0]["name"], name.as_str());
    assert_eq!(doc[0]["state"]["running"], true);
    assert!(
        doc[0]["oci_spec"]["process"]["args"][0] == "/sbin/stack-init",
        "{}",
        doc[0]["oci_spec"]["process"]
    );
    let out = t.run(&["exec", "-T", "web", "sh", "-c", "exit 7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "exec passes the exit code through"
    );
    let out = t.ok(&[
        "exec",
        "-T",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "X=1",
        "web",
        "sh",
        "-c",
        "echo $(id -u) $(pwd) $X",
    ]);
    assert_eq!(out.trim(), "65534 /tmp 1");
    let ls = t.ok(&["ls", "--format", "json"]);
    assert!(ls.contains(&t.name) && ls.contains("running(1/1)"), "{ls}");
    t.ok(&["stop", "-t", "2"]);
    assert_eq!(t.row(&name)["state"], "stopped");
    t.ok(&["start"]);
    assert_eq!(t.row(&name)["state"], "running");
    t.wait_for(10, "the port after start", || fetch().is_some());
    // The stop signal (or SIGKILL) sent by `kill` is a stop by the user, as
    // in Docker: the restart policy does not bring the container back.
    t.ok(&["kill", "-s", "TERM"]);
    t.wait_for(10, "the kill", || t.row(&name)["state"] == "stopped");
    assert_eq!(t.row(&name)["exit_code"], 143);
    t.down_and_check();
}

#[test]
fn volumes_outlive_down_binds_can_be_read_only_and_tmpfs_is_bounded() {
    let t = TestStack::new(
        r#"
[services.app]
image = "{IMAGE}"
command = ["sh", "-c", "cat /data/kept 2>/dev/null || echo none; echo kept > /data/kept; touch /conf/x 2>/dev/null && echo rw || echo ro; dd if=/dev/zero of=/scratch/big bs=1M count=8 2>/dev/null && echo fits || echo full; sleep 3600"]
volumes = ["data:/data", "./conf:/conf:ro", { type = "tmpfs", target = "/scratch", tmpfs = { size = "4m" } }]

[volumes.data]
"#,
    );
    std::fs::create_dir(t.dir.path().join("conf")).unwrap();
    t.ok(&["up", "-d"]);
    t.wait_for(10, "the first run", || logs(&t).contains("full"));
    let first = logs(&t);
    assert!(
        first.contains("none")
            && first.contains("ro")
            && !first.contains("rw")
            && !first.contains("fits"),
        "{first}"
    );
    t.ok(&["down", "-t", "1"]);
    t.ok(&["up", "-d"]);
    t.wait_for(10, "the second run", || logs(&t).contains("full"));
    assert!(
        logs(&t).contains("kept"),
        "the named volume kept its data across down and up: {}",
        logs(&t)
    );
    t.ok(&["down", "-v", "-t", "1"]);
    t.ok(&["up", "-d"]);
    t.wait_for(10, "the third run", || logs(&t).contains("full"));
    assert!(
        logs(&t).contains("none"),
        "down -v removed the volume: {}",
        logs(&t)
    );
    t.down_and_check();
}

#[test]
fn a_second_checkout_with_the_same_stack_name_is_refused_with_both_paths() {
    let t = TestStack::new(
        r#"
[services.a]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(t.file(), other.path().join("stack.toml")).unwrap();
    let out = std::process::Command::new(common::stack_bin())
        .arg("--root")
        .arg(t.root())
        .args(["up", "-d"])
        .current_dir(other.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&t.dir.path().display().to_string())
            && err.contains(&other.path().display().to_string()),
        "{err}"
    );
    assert_eq!(t.ps().len(), 1, "the first stack is untouched");
    t.down_and_check();
}
