//! `stack up --wait [--wait-timeout T]` with real containers (root).
mod common;

use std::time::{Duration, Instant};

use common::stack::TestStack;

#[test]
fn wait_returns_once_services_are_healthy_and_one_shots_exited_zero() {
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["sh", "-c", "sleep 1; touch /tmp/ok; sleep 3600"]
stop_grace_period = "1s"
healthcheck = { test = ["CMD", "test", "-f", "/tmp/ok"], interval = "200ms", retries = 50 }

[services.migrate]
image = "{IMAGE}"
command = ["true"]
"#,
    );
    // -d with --wait waits too
    t.ok(&["up", "-d", "--wait", "--wait-timeout", "60"]);
    let web = t.row(&t.container("web", 1));
    assert_eq!(
        (web["state"].as_str(), web["health"].as_str()),
        (Some("running"), Some("healthy")),
        "{web}"
    );
    let migrate = t.row(&t.container("migrate", 1));
    assert_eq!(
        (migrate["state"].as_str(), migrate["exit_code"].as_i64()),
        (Some("exited"), Some(0)),
        "{migrate}"
    );
    t.down_and_check();
}

#[test]
fn wait_fails_at_the_timeout_and_not_before_for_an_unhealthy_service() {
    let t = TestStack::new(
        r#"
[services.sick]
image = "{IMAGE}"
command = ["sleep", "3600"]
stop_grace_period = "1s"
healthcheck = { test = ["CMD", "false"], interval = "200ms", retries = 1 }
"#,
    );
    let start = Instant::now();
    let out = t.run(&["up", "--wait", "--wait-timeout", "3"]);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        took >= Duration::from_secs(3),
        "gave up after {took:?}, before the timeout"
    );
    assert!(
        err.contains(&format!(
            "{} is not ready: running but unhealthy",
            t.container("sick", 1)
        )),
        "{err}"
    );
    t.down_and_check();
}

#[test]
fn without_a_timeout_a_service_that_failed_for_good_fails_the_wait() {
    let t = TestStack::new(
        r#"
[services.broken]
image = "{IMAGE}"
command = ["sh", "-c", "sleep 1; exit 4"]
# Never healthy: the wait goes on until the exit (a running container without
# a healthcheck would count as ready at once).
healthcheck = { test = ["CMD", "false"], interval = "200ms", retries = 100 }
"#,
    );
    let out = t.run(&["up", "--wait"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{} is not ready", t.container("broken", 1))),
        "{err}"
    );
    assert!(err.contains("(4)"), "the exit code is shown: {err}");
    t.down_and_check();
}
