//! The `restart_backoff` and `healthcheck.on_unhealthy` extensions with real
//! containers (root): the delays between restarts follow the configuration,
//! and an unhealthy container is restarted or stopped.
mod common;

use std::time::{Duration, SystemTime};

use common::stack::TestStack;

/// The stack's events of `action` for `container`, oldest first.
fn events(t: &TestStack, container: &str, action: &str) -> Vec<serde_json::Value> {
    t.ok(&["events", "--json", "--since", "10m", "--until", "0s"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["container"] == container && e["action"] == action)
        .collect()
}

fn time(e: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339(e["time"].as_str().unwrap()).unwrap()
}

#[test]
fn restart_delays_follow_the_configured_backoff() {
    let t = TestStack::new(
        r#"
[services.crash]
image = "{IMAGE}"
command = ["sh", "-c", "exit 1"]
restart = "always"
restart_backoff = { initial = "300ms", max = "1200ms", multiplier = 2, reset_after = "1h" }
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("crash", 1);
    t.wait_for(60, "five restarts", || {
        t.row(&name)["restarts"].as_i64() >= Some(5)
    });
    t.ok(&["stop", "-t", "1"]);
    let dies = events(&t, &name, "die");
    let restarts = events(&t, &name, "restart");
    // Five ends counted, the fifth restart may still be in its backoff.
    let expected = [300, 600, 1200, 1200];
    for (i, want) in expected.iter().enumerate() {
        let gap = time(&restarts[i])
            .duration_since(time(&dies[i]))
            .unwrap_or_default();
        let want = Duration::from_millis(*want);
        eprintln!(
            "restart {}: {gap:?} after the exit (backoff {want:?})",
            i + 1
        );
        assert!(
            gap >= want,
            "restart {} came after {gap:?}, before its backoff of {want:?}",
            i + 1
        );
        // Stuck or not multiplied as configured: the next step up (or the
        // default 30s cap) would be far beyond this.
        assert!(
            gap < want + Duration::from_millis(600),
            "restart {} came after {gap:?}, expected about {want:?}",
            i + 1
        );
    }
    t.down_and_check();
}

const UNHEALTHY: &str = r#"
[services.sick]
image = "{IMAGE}"
command = ["sleep", "3600"]
restart = "no"
stop_grace_period = "1s"
restart_backoff = { initial = "100ms" }
healthcheck = { test = ["CMD", "false"], interval = "200ms", retries = 2, on_unhealthy = "ACTION" }
"#;

#[test]
fn an_unhealthy_container_is_restarted_whatever_its_restart_policy() {
    let t = TestStack::new(&UNHEALTHY.replace("ACTION", "restart"));
    t.ok(&["up", "-d"]);
    let name = t.container("sick", 1);
    t.wait_for(60, "two restarts", || {
        t.row(&name)["restarts"].as_i64() >= Some(2)
    });
    let kills = events(&t, &name, "kill");
    assert!(
        kills
            .iter()
            .all(|e| e["detail"] == "unhealthy: on_unhealthy = restart"),
        "{kills:?}"
    );
    assert!(kills.len() >= 2, "{kills:?}");
    assert!(!events(&t, &name, "restart").is_empty());
    t.down_and_check();
}

#[test]
fn an_unhealthy_container_with_on_unhealthy_stop_is_stopped_for_good() {
    let t = TestStack::new(&UNHEALTHY.replace("ACTION", "stop"));
    t.ok(&["up", "-d"]);
    let name = t.container("sick", 1);
    t.wait_for(60, "the stop", || t.row(&name)["state"] == "stopped");
    let row = t.row(&name);
    assert_eq!(row["restarts"].as_i64(), Some(0), "{row}");
    let kills = events(&t, &name, "kill");
    assert_eq!(kills.len(), 1, "{kills:?}");
    assert_eq!(kills[0]["detail"], "unhealthy: on_unhealthy = stop");
    t.down_and_check();
}

#[test]
fn invalid_backoff_and_on_unhealthy_values_are_refused_at_load() {
    let t = TestStack::new(
        r#"
[services.a]
image = "{IMAGE}"
restart_backoff = { initial = "2s", max = "1s", multiplier = 0.5 }
healthcheck = { test = ["CMD", "true"], on_unhealthy = "reboot" }
"#,
    );
    let out = t.run(&["config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("restart_backoff.multiplier must be a number >= 1"),
        "{err}"
    );
    assert!(err.contains("on_unhealthy `reboot` is not known"), "{err}");
}

#[test]
fn a_restart_whose_start_fails_is_retried_with_backoff() {
    let t = TestStack::new(
        r#"
[services.flaky]
image = "{IMAGE}"
command = ["sh", "-c", "while [ ! -e /data/go ]; do sleep 0.1; done; rm /data/go; exit 3"]
volumes = ["./data:/data"]
restart = "always"
restart_backoff = { initial = "200ms", max = "400ms" }
init = true
"#,
    );
    let (data, away) = (t.dir.path().join("data"), t.dir.path().join("away"));
    std::fs::create_dir_all(&data).unwrap();
    t.ok(&["up", "-d"]);
    let name = t.container("flaky", 1);
    t.wait_for(20, "the first run", || t.row(&name)["state"] == "running");
    // The run keeps the directory (its mount follows it); every start from
    // now on finds no bind source and fails.
    std::fs::rename(&data, &away).unwrap();
    std::fs::write(away.join("go"), "").unwrap();
    let failed_starts = || {
        events(&t, &name, "restart")
            .iter()
            .filter(|e| e["detail"].is_string())
            .count()
    };
    t.wait_for(30, "two failed starts", || failed_starts() >= 2);
    let row = t.row(&name);
    assert_ne!(row["state"], "running", "{row}");
    let inspect: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", &name])).unwrap();
    let error = inspect[0]["state"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("data"),
        "the error names the missing source: {inspect}"
    );
    std::fs::rename(&away, &data).unwrap();
    t.wait_for(30, "the run after the source is back", || {
        t.row(&name)["state"] == "running"
    });
    let restarts = t.row(&name)["restarts"].as_i64().unwrap();
    assert!(
        restarts >= 3,
        "the exit and each failed start count: {restarts}"
    );
    t.down_and_check();
}
