//! Start-first updates (`deploy.update_config.order = "start-first"`): a
//! client on loopback at 100 requests/s loses no request while the service
//! is replaced, and a replacement that never gets healthy is rolled back.
//! Needs root.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::stack::TestStack;

/// The version the container serves, or why none answered.
fn fetch(port: u16) -> Result<String, String> {
    common::http::get(port, "/v")
}

/// `version` served on `port`; `check` is the healthcheck command.
fn web(port: u16, version: &str, check: &str) -> String {
    format!(
        r#"
[services.web]
image = "{{IMAGE}}"
command = ["sh", "-c", "echo $$V > /tmp/v && exec httpd -f -p 80 -h /tmp"]
environment = {{ V = "{version}" }}
ports = ["127.0.0.1:{port}:80"]
init = true
stop_grace_period = "2s"

[services.web.healthcheck]
test = ["CMD-SHELL", "{check}"]
interval = "200ms"
timeout = "1s"
retries = 2

[services.web.deploy.update_config]
order = "start-first"
failure_action = "rollback"
monitor = "10s"
"#
    )
}

const GOOD: &str = "wget -q -O /dev/null http://127.0.0.1/v";

/// A client at 100 requests/s until stopped: what it got, and its failures.
struct Client {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<String>, Vec<String>)>,
}

impl Client {
    fn start(port: u16) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut got, mut failed) = (Vec::new(), Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match fetch(port) {
                    Ok(v) => got.push(v),
                    Err(e) => failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (got, failed)
        });
        Client { stop, thread }
    }

    fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn healthy(t: &TestStack, name: &str) -> bool {
    t.ps()
        .iter()
        .any(|r| r["name"] == name && r["health"] == "healthy")
}

#[test]
fn a_start_first_update_under_load_loses_no_request() {
    let port = common::http::free_port();
    let t = TestStack::new(&web(port, "one", GOOD));
    t.ok(&["up", "-d"]);
    let name = t.container("web", 1);
    t.wait_for(20, "web to be healthy", || healthy(&t, &name));
    assert_eq!(fetch(port).as_deref(), Ok("one"));

    let client = Client::start(port);
    std::thread::sleep(Duration::from_millis(300));
    t.write(&web(port, "two", GOOD));
    t.ok(&["up", "-d"]);
    std::thread::sleep(Duration::from_millis(300));
    let (got, failed) = client.finish();

    assert!(got.len() > 50, "only {} requests answered", got.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        got.len() + failed.len()
    );
    assert_eq!(got.first().map(String::as_str), Some("one"));
    assert_eq!(got.last().map(String::as_str), Some("two"));
    // no going back once the new version answered
    let first_two = got.iter().position(|v| v == "two").unwrap();
    assert!(got[first_two..].iter().all(|v| v == "two"), "{got:?}");
    let rows = t.ps();
    assert_eq!(rows.len(), 1, "the temporary container is gone: {rows:?}");
    assert_eq!(rows[0]["name"], name.as_str());
    assert_eq!(rows[0]["state"], "running");
    t.down_and_check();
}

#[test]
fn a_replacement_that_never_gets_healthy_is_rolled_back() {
    let port = common::http::free_port();
    let t = TestStack::new(&web(port, "one", GOOD));
    t.ok(&["up", "-d"]);
    let name = t.container("web", 1);
    t.wait_for(20, "web to be healthy", || healthy(&t, &name));
    let pid = t.row(&name)["pid"].clone();

    let client = Client::start(port);
    t.write(&web(port, "bad", "exit 1"));
    let out = t.run(&["up", "-d"]);
    let (got, failed) = client.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the failed update is an error:\n{err}"
    );
    assert!(err.contains("rolled back"), "{err}");
    assert!(
        failed.is_empty(),
        "{} requests failed: {failed:?}",
        failed.len()
    );
    assert!(
        got.iter().all(|v| v == "one"),
        "the bad version never got traffic: {got:?}"
    );

    let rows = t.ps();
    assert_eq!(rows.len(), 1, "the replacement is gone: {rows:?}");
    let row = &rows[0];
    assert_eq!(row["name"], name.as_str());
    assert_eq!(row["pid"], pid, "the old container kept running");
    assert!(
        row["status"].as_str().unwrap().contains("rolled-back"),
        "{row}"
    );
    assert_eq!(row["rolled_back"]["reason"], "unhealthy");
    let table = t.ok(&["ps"]);
    assert!(table.contains("rolled-back"), "{table}");
    // still supervised: its healthcheck goes on
    t.wait_for(10, "web to stay healthy", || healthy(&t, &name));

    // a good version later replaces it, and the mark goes with it
    t.write(&web(port, "three", GOOD));
    t.ok(&["up", "-d"]);
    assert_eq!(fetch(port).as_deref(), Ok("three"));
    assert!(t.row(&name).get("rolled_back").is_none());
    t.down_and_check();
}
