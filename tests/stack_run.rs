//! `stack run` (one-off containers) and `tty: true` on real containers (root).
//! Every stack ends with `down` and the shared leak check.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::stack::{TestStack, links_named, root_id};
use common::stack_bin;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

const STACK: &str = r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "8080", "-h", "/etc"]

[services.app]
image = "{IMAGE}"
command = ["echo", "the service's own command"]
depends_on = ["web"]
environment = { FROM_FILE = "file", FOO = "file" }
volumes = ["/scratch"]
"#;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_containers(t: &TestStack) -> Vec<serde_json::Value> {
    let prefix = format!("{}-app-run-", t.name);
    t.ps()
        .into_iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with(&prefix)))
        .collect()
}

fn anonymous_volumes(t: &TestStack) -> Vec<serde_json::Value> {
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&t.ok(&["volume", "ls", "--format", "json"])).unwrap();
    all.into_iter().filter(|v| v["anonymous"] == true).collect()
}

/// `stack run ARGS` with our own stdio settings.
fn command(t: &TestStack, args: &[&str]) -> Command {
    let mut cmd = t.command();
    cmd.arg("run").args(args);
    cmd
}

fn expect_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_exit_code_and_both_streams_pass_through_and_rm_leaves_nothing() {
    let t = TestStack::new(STACK);
    let out = t.run(&[
        "run",
        "--rm",
        "--no-deps",
        "app",
        "sh",
        "-c",
        "echo to-stdout; echo to-stderr >&2; exit 7",
    ]);
    expect_code(&out, 7);
    assert_eq!(text(&out.stdout), "to-stdout\n");
    assert!(
        text(&out.stderr).contains("to-stderr"),
        "{}",
        text(&out.stderr)
    );
    assert!(run_containers(&t).is_empty(), "--rm: {:?}", t.ps());
    assert!(
        anonymous_volumes(&t).is_empty(),
        "--rm removes the anonymous volume too: {:?}",
        anonymous_volumes(&t)
    );
    t.down_and_check();
}

#[test]
fn env_entrypoint_user_and_workdir_apply() {
    let t = TestStack::new(STACK);
    let out = t.run(&[
        "run",
        "--rm",
        "--no-deps",
        "-e",
        "FOO=cli",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "--entrypoint",
        "sh -c",
        "app",
        "echo $FOO $FROM_FILE; id -u; pwd",
    ]);
    expect_code(&out, 0);
    assert_eq!(text(&out.stdout), "cli file\n65534\n/tmp\n");
    // Without COMMAND, the service's own.
    let out = t.run(&["run", "--rm", "--no-deps", "app"]);
    expect_code(&out, 0);
    assert_eq!(text(&out.stdout), "the service's own command\n");
    t.down_and_check();
}

#[test]
fn a_run_container_reaches_its_dependency_by_name() {
    let t = TestStack::new(STACK);
    // The dependency is started first; its server may still be starting.
    let out = t.run(&[
        "run",
        "--rm",
        "app",
        "sh",
        "-c",
        "for i in $(seq 100); do wget -qO- http://web:8080/passwd && exit 0; sleep 0.1; done; exit 1",
    ]);
    expect_code(&out, 0);
    assert!(
        text(&out.stdout).contains("root:x:0:0"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(t.row(&t.container("web", 1))["up"], true);
    t.down_and_check();
}

#[test]
fn without_rm_ps_lists_it_up_leaves_it_alone_and_down_removes_it() {
    let t = TestStack::new(STACK);
    let out = t.run(&["run", "--no-deps", "app", "sh", "-c", "exit 3"]);
    expect_code(&out, 3);
    let runs = run_containers(&t);
    assert_eq!(runs.len(), 1, "{:?}", t.ps());
    assert_eq!(runs[0]["service"], "app");
    assert_eq!(runs[0]["up"], false);
    let name = runs[0]["name"].as_str().unwrap().to_string();
    // -d: runs on, its name printed.
    let detached = t.ok(&["run", "-d", "--no-deps", "app", "sleep", "3600"]);
    let detached = detached.trim();
    assert!(
        detached.starts_with(&format!("{}-app-run-", t.name)),
        "{detached}"
    );
    assert_eq!(t.row(detached)["up"], true);
    // Not replicas, not orphans: `up` creates app-1 beside them and keeps them.
    let up = t.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    assert!(!text(&up.stderr).contains("orphan"), "{}", text(&up.stderr));
    assert!(
        !text(&up.stderr).contains("Removed"),
        "{}",
        text(&up.stderr)
    );
    assert_eq!(t.row(detached)["up"], true);
    t.row(&name);
    t.row(&t.container("app", 1));
    let plan = t.ok(&["plan"]);
    assert!(!plan.contains("-run-"), "{plan}");
    // `start` does not run an ended one-off command again.
    t.ok(&["start"]);
    assert_eq!(t.row(&name)["up"], false);
    t.down_and_check();
}

/// `stack run --rm` of a shell that runs `trap` on SIGTERM, once it said it
/// is ready; and the reader of the rest of its output.
fn spawn_trapping(
    t: &TestStack,
    trap: &str,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let script = format!("trap '{trap}' TERM; echo ready; while true; do sleep 0.1; done");
    let mut child = command(t, &["--rm", "--no-deps", "app", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (child, stdout)
}

fn sigterm(child: &std::process::Child) {
    common::signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM).unwrap();
}

#[test]
fn sigterm_is_forwarded_to_the_container() {
    let t = TestStack::new(STACK);
    let (mut child, mut stdout) = spawn_trapping(&t, "echo got-term; exit 9");
    sigterm(&child);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(9));
    t.down_and_check();
}

#[test]
fn a_second_sigterm_kills_a_container_that_ignores_the_first() {
    let t = TestStack::new(STACK);
    let (mut child, mut stdout) = spawn_trapping(&t, "echo got-term");
    sigterm(&child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "got-term\n", "the first one reaches the container");
    sigterm(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137), "killed: 128 + SIGKILL");
    assert!(run_containers(&t).is_empty(), "--rm: {:?}", t.ps());
    t.down_and_check();
}

/// Run `stack run ARGS` with a pty as its stdin, stdout and stderr; what it
/// printed and its exit code.
fn run_in_pty(t: &TestStack, args: &[&str]) -> (String, Option<i32>) {
    let pty = nix::pty::openpty(None, None).unwrap();
    // openpty's descriptors are inheritable: only the copies below may reach
    // the CLI (and nothing of them the daemon it starts).
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .unwrap();
    }
    let slave = |p: &OwnedFd| Stdio::from(p.try_clone().unwrap());
    let mut child = command(t, args)
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let master = pty.master;
    let ended = Arc::new(AtomicBool::new(false));
    let reader = {
        let ended = ended.clone();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                let ready = poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0);
                if ready == 0 {
                    // Everything the CLI wrote was read before it was reaped.
                    if ended.load(Ordering::SeqCst) {
                        break;
                    }
                    continue;
                }
                match nix::unistd::read(&master, &mut buf) {
                    Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
                    // EIO: the last slave is closed.
                    _ => break,
                }
            }
            out
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stack run in a pty did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ended.store(true, Ordering::SeqCst);
    (text(&reader.join().unwrap()), status.code())
}

#[test]
fn a_terminal_on_stdin_gives_the_container_a_pty_unless_t_says_no() {
    let t = TestStack::new(STACK);
    let script = "test -t 0 && test -t 1 && echo has-tty || echo no-tty; exit 5";
    let (out, code) = run_in_pty(&t, &["--rm", "--no-deps", "app", "sh", "-c", script]);
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("has-tty"), "{out}");
    let (out, code) = run_in_pty(&t, &["--rm", "--no-deps", "-T", "app", "sh", "-c", script]);
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("no-tty"), "{out}");
    t.down_and_check();
}

#[test]
fn a_tty_service_logs_that_it_has_a_terminal() {
    let t = TestStack::new(
        r#"
[services.term]
image = "{IMAGE}"
tty = true
command = ["sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo has-tty || echo no-tty; exec sleep 3600"]

[services.plain]
image = "{IMAGE}"
command = ["sh", "-c", "test -t 1 && echo has-tty || echo no-tty; exec sleep 3600"]
"#,
    );
    t.ok(&["up", "-d"]);
    for (svc, want) in [("term", "has-tty"), ("plain", "no-tty")] {
        t.wait_for(30, &format!("{svc} to log"), || {
            t.ok(&["logs", "--no-color", svc]).contains(want)
        });
    }
    let logs = t.ok(&["logs", "--no-color"]);
    assert_eq!(logs.matches("has-tty").count(), 1, "{logs}");
    t.down_and_check();
}

/// What of one-off container `name` is left on the host (empty: nothing):
/// its state dir, netns, cgroup, veth, IPAM address or endpoint.
fn left_of(t: &TestStack, name: &str) -> Vec<String> {
    let mut left = Vec::new();
    let root = t.root();
    for p in [
        root.join("lib/containers").join(name),
        root.join("run/netns").join(name),
    ] {
        if p.exists() {
            left.push(p.display().to_string());
        }
    }
    let cgroups = Command::new("sh")
        .arg("-c")
        // `stack.slice/<stack>.slice/app-run-<id>` on every hierarchy
        .arg(format!(
            "find /sys/fs/cgroup -maxdepth 5 -type d -name 'app-run-{}' 2>/dev/null",
            name.rsplit_once("-run-").unwrap().1
        ))
        .output()
        .unwrap();
    left.extend(text(&cgroups.stdout).lines().map(str::to_string));
    let net = std::fs::read_to_string(root.join("lib/network/state.json")).unwrap_or_default();
    if net.contains(name) {
        left.push(format!("network state names it: {net}"));
    }
    // The stack's bridge (`s<root>b...`) stays until `down`; a container's
    // veth (`s<root>v...`) goes with it, and this stack has no other.
    if let Some(id) = root_id(&root) {
        let veths = links_named(&format!("s{id}v"));
        if !veths.is_empty() {
            left.push(format!("{} veth(s) of this root: {veths:#?}", veths.len()));
        }
    }
    left
}

#[test]
fn detached_rm_is_removed_once_it_exits_and_once_it_is_stopped() {
    let t = TestStack::new(STACK);
    let name = t.ok(&[
        "run",
        "-d",
        "--rm",
        "--no-deps",
        "app",
        "sh",
        "-c",
        "exit 3",
    ]);
    let name = name.trim().to_string();
    assert!(name.starts_with(&format!("{}-app-run-", t.name)), "{name}");
    t.wait_for(30, "the ended --rm container removed", || {
        left_of(&t, &name).is_empty()
    });
    assert!(run_containers(&t).is_empty(), "{:?}", t.ps());
    assert!(
        anonymous_volumes(&t).is_empty(),
        "its anonymous volume goes too: {:?}",
        anonymous_volumes(&t)
    );
    let events = std::fs::read_to_string(t.root().join("lib/events.jsonl")).unwrap();
    let destroyed = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .any(|e| e["action"] == "destroy" && e["container"] == name.as_str());
    assert!(destroyed, "a destroy event: {events}");

    // One that runs on until it is stopped goes as well.
    let name = t.ok(&["run", "-d", "--rm", "--no-deps", "app", "sleep", "3600"]);
    let name = name.trim().to_string();
    assert_eq!(t.row(&name)["up"], true);
    let running = left_of(&t, &name);
    for what in [
        "lib/containers/",
        "run/netns/",
        "/sys/fs/cgroup/",
        "network state",
        "veth",
    ] {
        assert!(
            running.iter().any(|l| l.contains(what)),
            "the probe sees the running one's {what}: {running:#?}"
        );
    }
    t.ok(&["stop", "-t", "1", "app"]);
    t.wait_for(30, "the stopped --rm container removed", || {
        left_of(&t, &name).is_empty()
    });
    assert!(
        anonymous_volumes(&t).is_empty(),
        "{:?}",
        anonymous_volumes(&t)
    );
    t.down_and_check();
}

#[test]
fn detached_rm_that_ends_while_no_daemon_runs_is_removed_by_the_next_one() {
    let t = TestStack::new(STACK);
    let name = t.ok(&["run", "-d", "--rm", "--no-deps", "app", "sleep", "3600"]);
    let name = name.trim().to_string();
    let pid = t.row(&name)["pid"].as_i64().unwrap() as i32;
    let daemon = t.daemon_pid();
    common::signal(daemon, nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(common::wait_gone(daemon), "the daemon exits");
    common::signal(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    t.wait_for(20, "its exit recorded by its monitor", || {
        t.root()
            .join("lib/containers")
            .join(&name)
            .join("exit.json")
            .exists()
    });
    assert!(
        !left_of(&t, &name).is_empty(),
        "no daemon, nobody removed it yet"
    );
    // The next daemon adopts it and removes it.
    let (mut next, _) = t.start_daemon(&stack_bin());
    t.wait_for(30, "the ended --rm container removed by adoption", || {
        left_of(&t, &name).is_empty()
    });
    assert!(
        anonymous_volumes(&t).is_empty(),
        "{:?}",
        anonymous_volumes(&t)
    );
    next.terminate();
    t.down_and_check();
}
