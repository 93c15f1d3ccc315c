//! The daemon under things that happen to servers: something flushes the
//! host's firewall; a reboot; an upgrade; daemons killed mid-reconcile, over
//! and over (root, real containers).
mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::stack::TestStack;

/// Move the calling test thread into a network namespace of its own, with
/// loopback up: every process it spawns (the CLI, the daemon it starts, `nft`)
/// works there, so a `nft flush ruleset` hits only this namespace. The
/// namespace goes away with the thread and those processes.
fn own_network_namespace() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let ok = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().unwrap();
    assert!(out.status.success(), "nft {args:?}: {:?}", out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fetch(addr: &str) -> Option<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn a_flushed_ruleset_is_restored_and_the_port_answers_again() {
    own_network_namespace();
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
    let addr = t.ok(&["port", "web", "80"]).trim().to_string();
    let answers = || fetch(&addr).is_some_and(|b| b.contains(&name));
    t.wait_for(10, "the published port", answers);
    let pid = t.row(&name)["pid"].clone();
    for round in 0..3 {
        nft(&["flush", "ruleset"]);
        let flushed = Instant::now();
        t.wait_for(10, "the port after nft flush ruleset", answers);
        eprintln!(
            "round {round}: answers again {} ms after the flush",
            flushed.elapsed().as_millis()
        );
    }
    assert!(
        nft(&["list", "tables"]).contains("inet stack_"),
        "the table is back"
    );
    assert_eq!(t.row(&name)["pid"], pid, "the container was not touched");
    assert_eq!(t.row(&name)["restarts"], 0);
    t.down_and_check();
}

#[test]
fn a_stuck_daemon_times_the_client_out_and_a_streaming_client_does_not_stop_shutdown() {
    let t = TestStack::one(
        "app",
        &["sh", "-c", "while :; do echo tick; sleep 0.1; done"],
    );
    t.ok(&["up", "-d"]);
    let daemon = t.daemon_pid();
    // A client that follows logs forever does not keep a stopping daemon up.
    let mut follower = t
        .command()
        .args(["logs", "-f", "app"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 5];
    follower
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    // A daemon that accepts but never answers (stopped): the CLI gives up.
    common::signal(daemon, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let out = t
        .command()
        .arg("ps")
        .env("STACK_DAEMON_TIMEOUT", "1")
        .output()
        .unwrap();
    common::signal(daemon, nix::sys::signal::Signal::SIGCONT).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("did not answer within 1 s"), "{err}");
    common::signal(daemon, nix::sys::signal::Signal::SIGTERM).unwrap();
    let gone = common::wait_gone(daemon);
    assert!(gone, "the daemon exits with a client streaming");
    // The follower ends too, and says why.
    let until = Instant::now() + Duration::from_secs(10);
    while follower.try_wait().unwrap().is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = follower.kill();
    let out = follower.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("ended the stream"), "{err}");
    t.down_and_check();
}

#[test]
fn clients_that_hang_up_mid_answer_do_not_kill_the_daemon() {
    let t = TestStack::one(
        "app",
        &["sh", "-c", "while :; do echo tick; sleep 0.05; done"],
    );
    t.ok(&["up", "-d"]);
    let daemon = t.daemon_pid();
    let socket = t.root().join("run/stack.sock");
    let send = |path: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: stack\r\n\r\n");
        s.write_all(request.as_bytes()).unwrap();
        s
    };
    // Clients that send a request and go at once: the daemon's answer goes
    // to a closed socket (EPIPE, and SIGPIPE unless it is ignored).
    for _ in 0..50 {
        drop(send(&format!("/v1/stacks/{}/ps", t.name)));
    }
    // And clients that read the start of a followed stream, then go while
    // lines keep coming.
    for _ in 0..5 {
        let mut s = send(&format!("/v1/stacks/{}/logs?follow=true", t.name));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut start = [0u8; 64];
        s.read_exact(&mut start).unwrap();
        assert!(
            start.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&start)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        common::alive(daemon),
        "the daemon died of a client that hung up"
    );
    assert!(t.ok(&["ps"]).contains(&t.container("app", 1)));
    t.down_and_check();
}

/// The status line of `request` sent to the Unix socket at `path`.
fn http_status(path: &std::path::Path, request: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[test]
fn socket_activation_serves_both_sockets_and_the_ro_one_only_reads() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let api = std::os::unix::net::UnixListener::bind(dir.path().join("api.sock")).unwrap();
    let ro = std::os::unix::net::UnixListener::bind(dir.path().join("ro.sock")).unwrap();
    let (api_fd, ro_fd) = (api.as_raw_fd(), ro.as_raw_fd());
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$ exec "$0" --root "$1" daemon"#)
        .arg(common::stack_bin())
        .arg(dir.path().join("root"))
        // in an order the daemon must not assume
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "api-ro:api");
    // SAFETY: fcntl and dup2 are async-signal-safe. Copies above 100 first,
    // as the originals may be 3 or 4 themselves; dup2's copies lack CLOEXEC.
    unsafe {
        cmd.pre_exec(move || {
            let high = [ro_fd, api_fd].map(|fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100));
            for (from, to) in high.into_iter().zip([3, 4]) {
                if from < 0 || libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut daemon = cmd.spawn().unwrap();
    let get = "GET /v1/version HTTP/1.0\r\nHost: stack\r\n\r\n";
    let post = "POST /v1/stacks/none/down HTTP/1.0\r\nHost: stack\r\n\
                Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let api_get = http_status(&dir.path().join("api.sock"), get);
    let ro_get = http_status(&dir.path().join("ro.sock"), get);
    let ro_post = http_status(&dir.path().join("ro.sock"), post);
    let own_socket = dir.path().join("root/run/stack.sock").exists();
    let _ = common::signal(daemon.id() as i32, nix::sys::signal::Signal::SIGTERM);
    let status = daemon.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("root/run/daemon.log")).unwrap_or_default();
    assert!(api_get.contains(" 200"), "{api_get}: {log}");
    assert!(ro_get.contains(" 200"), "{ro_get}");
    assert!(ro_post.contains(" 403"), "{ro_post}");
    assert!(!own_socket, "with sockets passed, it binds none of its own");
    assert!(status.success(), "{status}");
    assert!(
        dir.path().join("api.sock").exists(),
        "a passed socket is not unlinked"
    );
}

/// Pids of the stack's containers, their monitors (whose command line
/// names the stack's cgroup) and their `[::1]` proxies (whose command line
/// names the container).
fn stack_processes(name: &str) -> Vec<i32> {
    let needle = format!("stack.slice/{name}.slice");
    let proxy = |cmdline: &str| cmdline.contains("__proxy") && cmdline.contains(name);
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let read = |f: &str| std::fs::read(e.path().join(f)).unwrap_or_default();
        let mention = |b: &[u8]| String::from_utf8_lossy(b).contains(&needle);
        let cmdline = read("cmdline");
        if mention(&read("cgroup"))
            || mention(&cmdline)
            || proxy(&String::from_utf8_lossy(&cmdline))
        {
            pids.push(pid);
        }
    }
    pids
}

/// What a reboot takes away: every process of the stack, the daemon, the
/// mounts under the root, `<root>/run` (a tmpfs on a real host), the
/// cgroups, the links and the nftables table (in this test's namespace).
fn simulate_reboot(t: &TestStack) {
    let daemon = t.daemon_pid();
    let kill = |pid: i32| {
        let _ = common::signal(pid, nix::sys::signal::Signal::SIGKILL);
    };
    kill(daemon);
    t.wait_for(10, "every process of the stack to die", || {
        let left = stack_processes(&t.name);
        left.iter().copied().for_each(kill);
        left.is_empty()
    });
    let root = t.root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
    std::fs::remove_dir_all(t.root().join("run")).unwrap();
    for hierarchy in ["memory", "pids", "cpu", "unified", ""] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("stack.slice")
            .join(format!("{}.slice", t.name));
        remove_cgroup(&dir);
    }
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        let Some(link) = l.split(": ").nth(1) else {
            continue;
        };
        let link = link.split('@').next().unwrap();
        if link.starts_with('s') && link != "lo" {
            let _ = Command::new("ip").args(["link", "del", link]).status();
        }
    }
    nft(&["flush", "ruleset"]);
}

fn remove_cgroup(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
}

fn ipv4(t: &TestStack, container: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", container])).unwrap();
    doc[0]["networks"].clone()
}

#[test]
fn after_a_reboot_restart_policies_bring_back_what_ran() {
    own_network_namespace();
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
ports = ["127.0.0.1::80", "[::1]::80"]
restart = "always"
init = true

[services.worker]
image = "{IMAGE}"
command = ["sleep", "3600"]
restart = "unless-stopped"
init = true
secrets = ["token"]
configs = ["greeting"]

[secrets.token]
file = "./token.txt"

[configs.greeting]
content = "hello from a config"

[services.paused]
image = "{IMAGE}"
command = ["sleep", "3600"]
restart = "unless-stopped"
init = true

[services.once]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
"#,
    );
    std::fs::write(t.dir.path().join("token.txt"), "s3cret").unwrap();
    t.ok(&["up", "-d"]);
    t.ok(&["stop", "-t", "1", "paused"]);
    let (web, worker) = (t.container("web", 1), t.container("worker", 1));
    let files = || {
        let out = t.run(&[
            "exec",
            "-T",
            "worker",
            "cat",
            "/run/secrets/token",
            "/greeting",
        ]);
        String::from_utf8_lossy(&out.stdout) == "s3crethello from a config"
    };
    assert!(files(), "the secret and config before the reboot");
    let ports = t.ok(&["port", "web", "80"]);
    let on = |prefix: &str| {
        let found = ports.lines().find(|l| l.starts_with(prefix));
        found
            .unwrap_or_else(|| panic!("no port on {prefix}: {ports}"))
            .to_string()
    };
    let (addr, addr6) = (on("127.0.0.1:"), on("[::1]:"));
    let answers = || fetch(&addr).is_some_and(|b| b.contains(&web));
    let answers6 = || fetch(&addr6).is_some_and(|b| b.contains(&web));
    t.wait_for(10, "the published port", answers);
    t.wait_for(10, "the port published on [::1]", answers6);
    let networks = ipv4(&t, &web);
    let pid = t.row(&web)["pid"].clone();

    simulate_reboot(&t);
    assert!(!answers6(), "the [::1] proxy survived the simulated reboot");
    let (mut daemon, ready) = t.start_daemon(&common::stack_bin());
    assert!(ready.contains("READY=1"), "{ready}");
    let back = || {
        [&web, &worker]
            .iter()
            .all(|c| t.row(c)["state"] == "running")
    };
    let until = Instant::now() + Duration::from_secs(20);
    while !back() {
        if Instant::now() > until {
            let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap_or_default();
            panic!(
                "web and worker did not come back; ps: {:?}\ndaemon log: {}\nweb's monitor log: {}",
                t.ps(),
                read(t.root().join("run/daemon.log")),
                read(t.root().join(format!("lib/containers/{web}/monitor.log"))),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(t.row(&web)["pid"], pid, "a new run");
    assert_eq!(ipv4(&t, &web), networks, "the same address");
    // ps may show the run before the reboot until the daemon notices its end.
    t.wait_for(10, "the secret and config after the reboot", files);
    let row = t.row(&worker);
    assert_eq!(
        row["restarts"], 1,
        "one restart (the reboot's), no failed start: {row}"
    );
    t.wait_for(10, "the published port after the reboot", answers);
    t.wait_for(10, "the port on [::1] after the reboot", answers6);
    assert_eq!(t.row(&t.container("paused", 1))["state"], "stopped");
    let once = t.row(&t.container("once", 1));
    assert_ne!(once["state"], "running", "restart = no stays down: {once}");
    t.down_and_check();
    assert!(daemon.terminate().success());
}

/// `/proc/<pid>/stat` start time: the same process, not a reused pid.
fn start_time(pid: i64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit(')').next().unwrap();
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// Each running container's (pid, start time).
fn runs(t: &TestStack) -> Vec<(String, i64, u64)> {
    let mut out: Vec<_> = t
        .ps()
        .into_iter()
        .filter(|r| r["state"] == "running")
        .map(|r| {
            let pid = r["pid"].as_i64().unwrap();
            (
                r["name"].as_str().unwrap().to_string(),
                pid,
                start_time(pid),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_upgrade_restarts_no_container_and_fails_no_request() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
ports = ["127.0.0.1::80"]
restart = "always"
init = true

[services.worker]
image = "{IMAGE}"
command = ["sleep", "3600"]
restart = "unless-stopped"
init = true
"#,
    );
    let bin = t.dir.path().join("stack-installed");
    std::fs::copy(common::stack_bin(), &bin).unwrap();
    let (mut old, _) = t.start_daemon(&bin);
    t.ok(&["up", "-d"]);
    let web = t.container("web", 1);
    let addr = t.ok(&["port", "web", "80"]).trim().to_string();
    t.wait_for(10, "the published port", || {
        fetch(&addr).is_some_and(|b| b.contains(&web))
    });
    let before = runs(&t);
    assert_eq!(before.len(), 2, "{before:?}");
    // A client every 10 ms for the whole upgrade.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let ok = std::sync::Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, ok, addr, web) = (stop.clone(), ok.clone(), addr.clone(), web.clone());
        std::thread::spawn(move || {
            let mut failed = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match fetch(&addr) {
                    Some(body) if body.contains(&web) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => failed.push(format!("{:?}: {other:?}", Instant::now())),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            failed
        })
    };
    let served = |n: usize| {
        let from = ok.load(Ordering::SeqCst);
        t.wait_for(20, "requests answered", || {
            ok.load(Ordering::SeqCst) >= from + n
        });
    };
    served(20);
    // The package manager's way: a new file renamed over the old one.
    let next = t.dir.path().join("stack-next");
    std::fs::copy(common::stack_bin(), &next).unwrap();
    let old_inode = std::fs::metadata(&bin).unwrap().ino();
    std::fs::rename(&next, &bin).unwrap();
    assert_ne!(std::fs::metadata(&bin).unwrap().ino(), old_inode);
    assert!(old.terminate().success());
    let (mut new, ready) = t.start_daemon(&bin);
    assert!(ready.contains("STATUS=supervising 2 containers"), "{ready}");
    let exe = std::fs::metadata(format!("/proc/{}/exe", new.pid())).unwrap();
    assert_eq!(
        exe.ino(),
        std::fs::metadata(&bin).unwrap().ino(),
        "the new binary runs"
    );
    served(50);
    stop.store(true, Ordering::SeqCst);
    let failed = client.join().unwrap();
    println!(
        "{} requests answered, {} failed, across the upgrade",
        ok.load(Ordering::SeqCst),
        failed.len()
    );
    assert!(failed.is_empty(), "failed requests: {failed:#?}");
    assert_eq!(runs(&t), before, "no container restarted");
    assert!(t.ps().iter().all(|r| r["restarts"] == 0));
    t.down_and_check();
    assert!(new.terminate().success());
}

/// A tiny deterministic generator (xorshift), seeded from the clock and
/// printed so that a failing sequence can be replayed (STACK_TORTURE_SEED).
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::env::var("STACK_TORTURE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("STACK_TORTURE_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Version `v` of the tortured file: `flip` changes its environment and its
/// scale with every version; the others never change.
fn torture_file(v: u64) -> String {
    format!(
        r#"
[services.ticker]
image = "{{IMAGE}}"
command = ["sh", "-c", "i=0; while :; do i=$$((i+1)); echo tick $$i; sleep 0.01; done"]
init = true

[services.short]
image = "{{IMAGE}}"
command = ["sh", "-c", "sleep 1; exit 3"]
init = true

[services.flip]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
environment = {{ VALUE = "{v}" }}
scale = {}
stop_grace_period = "1s"
init = true
"#,
        flip_scale(v)
    )
}

fn flip_scale(v: u64) -> u64 {
    1 + v % 3
}

/// For each container cgroup of the stack: how many process trees run in
/// it (processes whose parent is outside it). One run of a container is one.
fn runs_per_cgroup(stack: &str) -> std::collections::BTreeMap<String, usize> {
    let slice =
        std::path::Path::new("/sys/fs/cgroup/pids/stack.slice").join(format!("{stack}.slice"));
    let ppid = |pid: &str| -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or_default().to_string();
        after
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(&slice).unwrap().flatten() {
        if !e.file_type().is_ok_and(|f| f.is_dir()) {
            continue;
        }
        let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<&str> = procs.lines().collect();
        let roots = pids
            .iter()
            .filter(|p| !pids.contains(&ppid(p).as_str()))
            .count();
        out.insert(e.file_name().to_string_lossy().into_owned(), roots);
    }
    out
}

#[test]
fn twenty_daemons_killed_mid_reconcile_leave_nothing_half_done() {
    let t = TestStack::new(&torture_file(0));
    t.ok(&["up", "-d", "--watch"]);
    let ticker = t.container("ticker", 1);
    let ticker_pid = t.row(&ticker)["pid"].clone();
    let mut random = Random::new();
    let mut daemon = t.daemon_pid();
    let mut daemons = Vec::new();
    for v in 1..=20 {
        t.write(&torture_file(v));
        // Somewhere in the debounce, the reconcile, or after it.
        std::thread::sleep(Duration::from_millis(random.below(400)));
        let _ = common::signal(daemon, nix::sys::signal::Signal::SIGKILL);
        // Gone once its lock is free (see daemon_lock_free).
        t.wait_for(20, "the killed daemon's lock", || t.daemon_lock_free());
        // The next one starts on the same state and resumes the watch (it
        // reconciles the file at once).
        let (next, _) = t.start_daemon(&common::stack_bin());
        daemon = next.pid();
        daemons.push(next);
    }
    // The last one is let finish; `up` waits for the reconcile in flight.
    t.ok(&["up", "-d", "--watch"]);
    let last = flip_scale(20);
    let mut want: Vec<String> = (1..=last).map(|n| t.container("flip", n as u32)).collect();
    want.extend([t.container("short", 1), ticker.clone()]);
    want.sort();
    let rows = t.ps();
    let mut have: Vec<String> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    have.sort();
    assert_eq!(have, want, "exactly the final file's containers");
    for n in 1..=last {
        let out = t.ok(&[
            "exec",
            "--index",
            &n.to_string(),
            "flip",
            "sh",
            "-c",
            "echo $VALUE",
        ]);
        assert_eq!(out.trim(), "20", "flip-{n} runs the final file");
    }
    let short = t.container("short", 1);
    t.wait_for(10, "short's exit", || {
        let r = t.row(&short);
        r["state"] == "exited" && r["exit_code"] == 3
    });
    // One run per running container, and no cgroup of another.
    let mut expected: std::collections::BTreeMap<String, usize> =
        (1..=last).map(|n| (format!("flip-{n}"), 1)).collect();
    expected.insert("ticker-1".into(), 1);
    assert_eq!(runs_per_cgroup(&t.name), expected, "one run per container");
    // The ticker ran through it all, and its monitor kept every line.
    let r = t.row(&ticker);
    assert_eq!(
        (r["pid"].clone(), r["restarts"].clone()),
        (ticker_pid, 0.into())
    );
    let ticks: Vec<u64> = t
        .ok(&["logs", "--no-log-prefix", "ticker"])
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert_eq!(ticks.first(), Some(&1));
    let gap = ticks.windows(2).find(|w| w[1] != w[0] + 1);
    assert!(
        gap.is_none(),
        "a gap in the ticker's log: {gap:?} of {}",
        ticks.len()
    );
    t.down_and_check();
    assert!(daemons.last_mut().unwrap().terminate().success());
}

/// Make container `name` look like a create that a crash cut short: its
/// directory, mounts, namespace and addresses are there, its spec.json (the
/// last write of a create) and its processes are not. Its rootfs.json (the
/// first write) names the stack.
fn cut_short(t: &TestStack, name: &str) {
    let dir = t.root().join("lib/containers").join(name);
    std::fs::remove_file(dir.join("spec.json")).unwrap();
    let record = std::fs::read_to_string(dir.join("rootfs.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(parsed["stack"], t.name.as_str(), "{record}");
}

#[test]
fn a_create_cut_short_by_a_crash_is_removed_by_the_next_up_and_down() {
    let file = |scale: u32| {
        format!(
            "[services.app]\nimage = \"{{IMAGE}}\"\ncommand = [\"sleep\", \"3600\"]\nscale = {scale}\ninit = true\n"
        )
    };
    let t = TestStack::new(&file(2));
    t.ok(&["up", "-d"]);
    t.ok(&["stop", "-t", "1", "app"]);
    let (first, second) = (t.container("app", 1), t.container("app", 2));
    let netns = |c: &str| t.root().join("run/netns").join(c);
    assert!(netns(&second).exists());
    cut_short(&t, &second);
    assert!(
        !t.ps().iter().any(|r| r["name"] == second.as_str()),
        "not a container"
    );
    // Scaled down, so no create of its name finishes it: `up` removes it.
    t.write(&file(1));
    t.ok(&["up", "-d"]);
    assert!(!t.root().join("lib/containers").join(&second).exists());
    assert!(!netns(&second).exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&second), "{mounts}");
    assert_eq!(t.row(&first)["state"], "running");
    // And `down` removes one too.
    t.ok(&["stop", "-t", "1", "app"]);
    cut_short(&t, &first);
    t.down_and_check();
}
