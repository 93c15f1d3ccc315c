//! `stack daemon`: containers outlive it, the next one adopts them, it tells
//! systemd when it is ready, and its socket lets only root (and the `stack`
//! group) act (root, real containers).
mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use common::stack::TestStack;
use common::{alive, stack_bin};

fn counter_lines(t: &TestStack) -> usize {
    t.ok(&["logs", "--no-log-prefix", "ticker"])
        .lines()
        .filter(|l| l.starts_with("tick "))
        .count()
}

#[test]
fn a_killed_daemon_loses_nothing_and_the_next_one_adopts_everything() {
    let t = TestStack::new(
        r#"
[services.ticker]
image = "{IMAGE}"
command = ["sh", "-c", "i=0; while :; do i=$$((i+1)); echo tick $$i; sleep 0.01; done"]

[services.flaky]
image = "{IMAGE}"
command = ["sh", "-c", "sleep 1; exit 5"]
restart = "on-failure:1"
"#,
    );
    t.ok(&["up", "-d"]);
    let ticker = t.container("ticker", 1);
    let flaky = t.container("flaky", 1);
    let pid = t.row(&ticker)["pid"].as_i64().unwrap();
    let daemon = t.daemon_pid();
    common::signal(daemon, nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(common::wait_gone(daemon), "the daemon exits");
    // Without a daemon: output is still captured, the exit is still recorded.
    let before = counter_lines(&t);
    // Its policy will restart it: it shows as restarting, with its exit.
    t.wait_for(10, "flaky's exit while no daemon runs", || {
        t.row(&flaky)["exit_code"] == 5
    });
    assert_eq!(t.row(&flaky)["state"], "restarting");
    assert_eq!(t.row(&flaky)["restarts"], 0, "no daemon, no restart yet");
    assert!(counter_lines(&t) > before, "output goes on being captured");
    let lines = t
        .ok(&["logs", "--no-log-prefix", "ticker"])
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse::<u64>().ok())
        .collect::<Vec<_>>();
    assert!(
        lines.windows(2).all(|w| w[1] == w[0] + 1),
        "no line lost or repeated"
    );
    // The next daemon adopts the running container and applies flaky's policy.
    t.ok(&["start", "flaky"]);
    assert_ne!(t.daemon_pid(), daemon);
    assert_eq!(t.row(&ticker)["pid"].as_i64(), Some(pid), "not restarted");
    t.wait_for(10, "flaky's last exit", || {
        let r = t.row(&flaky);
        r["state"] == "exited" && r["restarts"] == 1
    });
    t.down_and_check();
}

#[test]
fn sigterm_stops_the_daemon_but_not_the_containers() {
    let t = TestStack::one("app", &["sleep", "3600"]);
    t.ok(&["up", "-d"]);
    let name = t.container("app", 1);
    let pid = t.row(&name)["pid"].as_i64().unwrap() as i32;
    let daemon = t.daemon_pid();
    common::signal(daemon, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(common::wait_gone(daemon), "the daemon exits");
    assert!(alive(pid), "the container runs on");
    assert!(
        !t.root().join("run/stack.sock").exists(),
        "its socket is gone"
    );
    assert_eq!(t.row(&name)["state"], "running");
    t.down_and_check();
}

#[test]
fn the_daemon_started_on_demand_keeps_no_descriptor_of_its_caller() {
    let t = TestStack::one("app", &["sleep", "3600"]);
    // The CLI's fd 3 is its stdout pipe, inheritable: a daemon that kept it
    // would hold our end open long after the CLI exited.
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" --root "$1" -f "$2" up -d 3>&1"#)
        .arg(stack_bin())
        .arg(t.root())
        .arg(t.file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the caller's pipe stays open: the daemon inherited it")
        .unwrap();
    assert!(out.status.success());
    assert!(alive(t.daemon_pid()), "the daemon runs");
    t.down_and_check();
}

#[test]
fn the_daemon_says_ready_to_systemd_after_adoption() {
    let t = TestStack::one("app", &["sleep", "3600"]);
    t.ok(&["up", "-d"]);
    let daemon = t.daemon_pid();
    common::signal(daemon, nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(common::wait_gone(daemon), "the daemon exits");
    let (mut daemon, msg) = t.start_daemon(&stack_bin());
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    assert!(msg.contains("STATUS=supervising 1 containers"), "{msg}");
    let meta = std::fs::metadata(t.root().join("run/stack.sock")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    // A second daemon for the same root refuses to start.
    let second = Command::new(stack_bin())
        .arg("--root")
        .arg(t.root())
        .arg("daemon")
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already runs"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    daemon.terminate();
    t.down_and_check();
}

#[test]
fn with_a_watchdog_set_the_daemon_pings_systemd_after_ready() {
    let t = TestStack::one("app", &["sleep", "3600"]);
    t.ok(&["up", "-d"]);
    let daemon = t.daemon_pid();
    common::signal(daemon, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(common::wait_gone(daemon), "the daemon exits");
    // As systemd with WatchdogSec=200ms starts it: WATCHDOG_PID is the
    // service's main pid, which the exec keeps.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" --root \"$1\" daemon")
        .arg(stack_bin())
        .arg(t.root())
        .env("WATCHDOG_USEC", "200000");
    let (mut daemon, first) = t.spawn_notified(cmd);
    assert!(first.lines().any(|l| l == "READY=1"), "{first}");
    assert!(first.contains("STATUS=supervising 1 containers"), "{first}");
    let started = std::time::Instant::now();
    let mut pings = 0;
    let mut other = Vec::new();
    while pings < 5 && other.len() < 5 {
        let msg = daemon.message();
        match msg.as_str() {
            "WATCHDOG=1" => pings += 1,
            _ => other.push(msg),
        }
    }
    // Every 100 ms (half the period, as sd_watchdog_enabled(3) advises);
    // printed, not asserted: this machine may be busy.
    println!("5 pings in {:?}", started.elapsed());
    assert!(other.is_empty(), "only pings after READY: {other:?}");
    // A reload says what it does.
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let mut reload = Vec::new();
    while !reload.iter().any(|m: &String| m.contains("READY=1")) {
        let msg = daemon.message();
        if msg != "WATCHDOG=1" {
            reload.push(msg);
        }
    }
    assert_eq!(reload.len(), 2, "{reload:?}");
    let lines = |m: &str| m.lines().map(str::to_string).collect::<Vec<_>>();
    let (begin, end) = (lines(&reload[0]), lines(&reload[1]));
    assert!(begin.contains(&"RELOADING=1".into()), "{begin:?}");
    assert!(begin.contains(&"STATUS=reloading".into()), "{begin:?}");
    assert!(
        begin.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{begin:?}"
    );
    assert!(
        end.contains(&"STATUS=supervising 1 containers".into()),
        "{end:?}"
    );
    assert!(daemon.terminate().success());
    let mut last = String::new();
    while !last.contains("STOPPING=1") {
        last = daemon.message();
    }
    t.down_and_check();
}

#[test]
fn users_outside_the_stack_group_are_refused() {
    let t = TestStack::one("app", &["sleep", "3600"]);
    t.ok(&["up", "-d"]);
    let as_nobody = |verb: &str| {
        let mut cmd = Command::new(stack_bin());
        cmd.arg("--root")
            .arg(t.root())
            .args(["-p", &t.name, verb])
            // std drops the supplementary groups when root sets a uid.
            .uid(65534)
            .gid(65534);
        cmd.output().unwrap()
    };
    // The socket is 0660: nobody cannot even connect.
    let out = as_nobody("stop");
    assert!(!out.status.success());
    // Opened up by hand, the daemon itself refuses (403) and logs it.
    for dir in [t.dir.path().to_path_buf(), t.root(), t.root().join("run")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sock = t.root().join("run/stack.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Reads go through the daemon too, even where the files are readable.
    for verb in ["stop", "ps"] {
        let out = as_nobody(verb);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{verb}");
        assert!(
            err.contains("403") && err.contains("permission denied"),
            "{verb}: {err}"
        );
    }
    assert_eq!(t.row(&t.container("app", 1))["state"], "running");
    let log = std::fs::read_to_string(t.root().join("run/daemon.log")).unwrap();
    assert!(
        log.contains("request refused") && log.contains("uid=65534"),
        "{log}"
    );
    t.down_and_check();
}

#[test]
fn a_daemon_whose_binary_was_replaced_still_starts_containers() {
    let t = TestStack::one("app", &["sleep", "3600"]);
    // The daemon runs from a copy, which is then replaced as an upgrade does
    // (a new file renamed over it): until the daemon restarts, it must go on
    // starting monitors with the binary it runs.
    let bin = t.dir.path().join("stack-copy");
    std::fs::copy(stack_bin(), &bin).unwrap();
    let (mut daemon, _) = t.start_daemon(&bin);
    let next = t.dir.path().join("stack-next");
    std::fs::copy(stack_bin(), &next).unwrap();
    std::fs::rename(&next, &bin).unwrap();
    t.ok(&["up", "-d"]);
    assert_eq!(t.row(&t.container("app", 1))["state"], "running");
    t.ok(&["down"]);
    daemon.terminate();
    t.down_and_check();
}

/// The pids of the `__spawner` processes serving state root `t`.
fn spawners(t: &TestStack) -> Vec<i32> {
    let root = t.root().display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&b"__spawner".as_slice()) && args.contains(&root.as_bytes())
        })
        .filter(|pid| alive(*pid))
        .collect()
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_daemon_forks_monitors_from_a_spawner_it_replaces_when_killed_and_that_ends_with_it() {
    let t = TestStack::new(
        r#"
[services.a]
image = "{IMAGE}"
command = ["sleep", "3600"]

[services.b]
image = "{IMAGE}"
command = ["sleep", "3600"]
"#,
    );
    let (mut daemon, _) = t.start_daemon(&stack_bin());
    t.ok(&["up", "-d", "a"]);
    let first = spawners(&t);
    assert_eq!(first.len(), 1, "one spawner: {first:?}");
    assert_eq!(parent_of(first[0]), daemon.pid(), "the daemon's child");
    let status = t.root().join("lib/containers").join(t.container("a", 1));
    let status = std::fs::read_to_string(status.join("status.json")).unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let monitor = status["monitor_pid"].as_i64().expect("a monitor pid") as i32;
    assert_eq!(parent_of(monitor), first[0], "monitors are its children");
    common::signal(first[0], nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(common::wait_gone(first[0]));
    // Its monitors outlive it, reparented, and their containers run on.
    assert!(alive(monitor), "the monitor outlives the spawner");
    assert_ne!(parent_of(monitor), first[0]);
    assert_eq!(t.row(&t.container("a", 1))["state"], "running");
    // The next start goes to a new spawner.
    t.ok(&["up", "-d", "b"]);
    assert_eq!(t.row(&t.container("b", 1))["state"], "running");
    let second = spawners(&t);
    assert_eq!(second.len(), 1, "one spawner again: {second:?}");
    assert_ne!(second, first);
    daemon.terminate();
    assert!(
        common::wait_gone(second[0]),
        "the spawner ends with the daemon"
    );
    assert_eq!(t.row(&t.container("a", 1))["state"], "running");
    t.down_and_check();
}
