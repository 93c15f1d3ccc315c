//! Replicas of a service share its fixed host port: the kernel spreads the
//! connections over them (an nftables numgen map), and scaling changes the
//! map in one transaction. Needs root.
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::stack::{TestStack, root_id};

/// The hostname of the replica that answered, or why none did.
fn fetch(port: u16) -> Result<String, String> {
    common::http::get(port, "/hostname")
}

fn answering(port: u16, tries: usize) -> BTreeSet<String> {
    (0..tries).filter_map(|_| fetch(port).ok()).collect()
}

/// This root's nftables table, as `nft` prints it.
fn nft_table(t: &TestStack) -> String {
    let table = format!("stack_{}", root_id(&t.root()).unwrap());
    let out = std::process::Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(out.status.success(), "nft list table {table}: {:?}", out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn web(port: u16, replicas: u32) -> String {
    format!(
        r#"
[services.web]
image = "{{IMAGE}}"
command = ["sh", "-c", "hostname > /tmp/hostname && exec httpd -f -p 80 -h /tmp"]
ports = ["127.0.0.1:{port}:80"]
scale = {replicas}
init = true
"#
    )
}

#[test]
fn replicas_share_a_loopback_port_and_a_scale_down_loses_no_request() {
    let port = common::http::free_port();
    let t = TestStack::new(&web(port, 3));
    t.ok(&["up", "-d"]);
    let all: BTreeSet<String> = (1..=3).map(|n| t.container("web", n)).collect();
    // numgen inc hands each new connection to the next replica in turn
    t.wait_for(20, "every replica to answer", || answering(port, 9) == all);
    let rules = nft_table(&t);
    assert!(rules.contains("numgen inc mod 3"), "{rules}");
    assert_eq!(
        t.ok(&["port", "web", "80", "--index", "2"]).trim(),
        format!("127.0.0.1:{port}")
    );

    // a client at 100 requests/s while two replicas go away
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let client = {
        let (stop, failures) = (stop.clone(), failures.clone());
        std::thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = fetch(port) {
                    failures.lock().unwrap().push(e);
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    t.ok(&["up", "-d", "--scale", "web=1", "-t", "5"]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let sent = client.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(sent > 20, "the client sent only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}",
        failures.len()
    );
    assert_eq!(answering(port, 6), BTreeSet::from([t.container("web", 1)]));
    let rules = nft_table(&t);
    assert!(
        !rules.contains("numgen"),
        "one replica is a plain dnat: {rules}"
    );

    // scaling up again spreads over the new replicas too
    t.ok(&["up", "-d", "--scale", "web=2"]);
    let two: BTreeSet<String> = (1..=2).map(|n| t.container("web", n)).collect();
    t.wait_for(20, "both replicas to answer", || answering(port, 6) == two);
    t.down_and_check();
}

/// A client at 100 requests/s on the published port until `stop`; returns
/// how many it sent and the failures.
fn client_loop(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut sent, mut failures) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = fetch(port) {
                failures.push(e);
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        (sent, failures)
    })
}

#[test]
fn a_new_replica_gets_traffic_only_once_it_listens() {
    let port = common::http::free_port();
    // httpd listens two seconds after the container starts
    let slow = |replicas: u32| {
        format!(
            r#"
[services.web]
image = "{{IMAGE}}"
command = ["sh", "-c", "hostname > /tmp/hostname && sleep 2 && exec httpd -f -p 80 -h /tmp"]
ports = ["127.0.0.1:{port}:80"]
scale = {replicas}
init = true
"#
        )
    };
    let t = TestStack::new(&slow(1));
    t.ok(&["up", "-d"]);
    let first = BTreeSet::from([t.container("web", 1)]);
    t.wait_for(20, "web-1 to answer", || answering(port, 1) == first);

    let stop = Arc::new(AtomicBool::new(false));
    let client = client_loop(port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    t.write(&slow(2));
    t.ok(&["up", "-d"]);
    // up returns once web-2 serves: from here on both answer
    let two: BTreeSet<String> = (1..=2).map(|n| t.container("web", n)).collect();
    t.wait_for(20, "both replicas to answer", || answering(port, 6) == two);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (sent, failures) = client.join().unwrap();
    assert!(sent > 50, "the client sent only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}",
        failures.len()
    );
    assert!(nft_table(&t).contains("numgen inc mod 2"));
    t.down_and_check();
}

#[test]
fn a_replica_that_does_not_listen_in_time_gets_no_traffic_until_it_listens() {
    let port = common::http::free_port();
    // web-2 listens only once /tmp/go exists in it
    let body = |replicas: u32| {
        format!(
            r#"
[services.web]
image = "{{IMAGE}}"
command = ["sh", "-c", "hostname > /tmp/hostname; if grep -q web-2 /tmp/hostname; then while [ ! -e /tmp/go ]; do sleep 0.1; done; fi; exec httpd -f -p 80 -h /tmp"]
ports = ["127.0.0.1:{port}:80"]
scale = {replicas}
init = true

[services.web.deploy.update_config]
monitor = "1s"
"#
        )
    };
    let t = TestStack::new(&body(1));
    t.ok(&["up", "-d"]);
    let first = BTreeSet::from([t.container("web", 1)]);
    t.wait_for(20, "web-1 to answer", || answering(port, 1) == first);
    t.write(&body(2));
    let out = t.run(&["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "up reports the replica that is not ready"
    );
    assert!(err.contains("did not get ready"), "{err}");
    assert_eq!(t.row(&t.container("web", 2))["state"], "running");
    assert_eq!(answering(port, 6), first, "web-2 gets no traffic");

    t.ok(&["exec", "-T", "--index", "2", "web", "touch", "/tmp/go"]);
    let two: BTreeSet<String> = (1..=2).map(|n| t.container("web", n)).collect();
    // No other up: the daemon serves it once it listens.
    t.wait_for(20, "web-2 to be served", || answering(port, 6) == two);
    t.down_and_check();
}

/// A service whose replica `late` listens only once /tmp/go exists in it
/// (`gate` is the shell test that holds it back); the others at once.
fn gated(port: u16, replicas: u32, late: u32, gate: &str, extra: &str) -> String {
    format!(
        r#"
[services.web]
image = "{{IMAGE}}"
command = ["sh", "-c", "hostname > /tmp/hostname; if grep -q web-{late} /tmp/hostname; then {gate}; fi; exec httpd -f -p 80 -h /tmp"]
ports = ["127.0.0.1:{port}:80"]
scale = {replicas}
init = true
{extra}
"#
    )
}

const WAIT_FOR_GO: &str = "while [ ! -e /tmp/go ]; do sleep 0.1; done";

#[test]
fn a_standby_left_by_a_killed_daemon_is_served_by_the_next_one() {
    let port = common::http::free_port();
    let body = |replicas| gated(port, replicas, 2, WAIT_FOR_GO, "");
    let t = TestStack::new(&body(1));
    t.ok(&["up", "-d"]);
    let first = BTreeSet::from([t.container("web", 1)]);
    t.wait_for(20, "web-1 to answer", || answering(port, 1) == first);

    // An up that waits for web-2 (30 s without a healthcheck) when its
    // daemon is killed.
    t.write(&body(2));
    let mut up = t
        .command()
        .args(["up", "-d"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let web2 = t.container("web", 2);
    t.wait_for(20, "web-2 to run", || {
        t.ps()
            .iter()
            .any(|r| r["name"] == web2 && r["state"] == "running")
    });
    common::signal(t.daemon_pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    t.wait_for(20, "the killed daemon's lock", || t.daemon_lock_free());
    assert!(!up.wait().unwrap().success(), "the up lost its daemon");

    let (mut daemon, _) = t.start_daemon(&common::stack_bin());
    assert_eq!(answering(port, 6), first, "web-2 does not listen yet");
    t.ok(&["exec", "-T", "--index", "2", "web", "touch", "/tmp/go"]);
    // No up: the daemon serves web-2 once it listens.
    let two: BTreeSet<String> = (1..=2).map(|n| t.container("web", n)).collect();
    t.wait_for(20, "web-2 to be served", || answering(port, 6) == two);
    t.down_and_check();
    assert!(daemon.terminate().success());
}

#[test]
fn a_standby_restarted_by_the_supervisor_is_served_once_ready() {
    let port = common::http::free_port();
    // web-2's first run fails; its restart listens once /tmp/go exists
    let gate = format!("if [ -e /tmp/ran ]; then {WAIT_FOR_GO}; else touch /tmp/ran; exit 1; fi");
    let extra = "restart = \"always\"\n\n[services.web.deploy.update_config]\nmonitor = \"1s\"";
    let body = |replicas| gated(port, replicas, 2, &gate, extra);
    let t = TestStack::new(&body(1));
    t.ok(&["up", "-d"]);
    let first = BTreeSet::from([t.container("web", 1)]);
    t.wait_for(20, "web-1 to answer", || answering(port, 1) == first);

    t.write(&body(2));
    let out = t.run(&["up", "-d"]);
    assert!(!out.status.success(), "web-2 did not get ready in time");
    let web2 = t.container("web", 2);
    t.wait_for(20, "web-2's restart", || {
        let r = t.row(&web2);
        r["state"] == "running" && r["restarts"].as_u64() >= Some(1)
    });
    assert_eq!(answering(port, 6), first, "web-2 does not listen yet");
    t.ok(&["exec", "-T", "--index", "2", "web", "touch", "/tmp/go"]);
    // No up: the daemon serves web-2 once its restart listens.
    let two: BTreeSet<String> = (1..=2).map(|n| t.container("web", n)).collect();
    t.wait_for(20, "web-2 to be served", || answering(port, 6) == two);
    t.down_and_check();
}
