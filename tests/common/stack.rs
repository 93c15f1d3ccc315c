//! A stack under test: its own state root and file, `stack` run as a process,
//! `down` and a leak check when it goes out of scope (also on failure).
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::OnceLock;

use super::{busybox_oci_layout, process_temp_dir, require_root, stack_bin, unique};

/// One busybox OCI layout per test binary.
pub fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| busybox_oci_layout(&process_temp_dir("stack-test-image")))
}

pub struct TestStack {
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl TestStack {
    /// `body` is the stack file without `name`; `{IMAGE}` stands for the busybox image.
    pub fn new(body: &str) -> TestStack {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let name = unique("t");
        let t = TestStack { dir, name };
        t.write(body);
        t
    }

    /// A stack of one service, `service`, that runs `command` on the busybox
    /// image (and sets nothing else).
    pub fn one(service: &str, command: &[&str]) -> TestStack {
        let args: Vec<String> = command.iter().map(|a| format!("{a:?}")).collect();
        TestStack::new(&format!(
            "[services.{service}]\nimage = \"{{IMAGE}}\"\ncommand = [{}]\n",
            args.join(", ")
        ))
    }

    pub fn write(&self, body: &str) {
        let image = format!("oci:{}:latest", image().display());
        let text = format!(
            "name = \"{}\"\n{}",
            self.name,
            body.replace("{IMAGE}", &image)
        );
        std::fs::write(self.file(), text).unwrap();
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("stack.toml")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `stack --root ROOT -f FILE`, to add a verb to (and spawn: a verb
    /// the test lets run while it does something else).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(stack_bin());
        cmd.arg("--root")
            .arg(self.root())
            .arg("-f")
            .arg(self.file())
            .current_dir(self.dir.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "stack {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ps -a --format json` rows.
    pub fn ps(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["ps", "-a", "--format", "json"])).unwrap()
    }

    pub fn row(&self, container: &str) -> serde_json::Value {
        self.ps()
            .into_iter()
            .find(|r| r["name"] == container)
            .unwrap_or_else(|| panic!("no container {container}"))
    }

    pub fn container(&self, service: &str, n: u32) -> String {
        format!("{}-{service}-{n}", self.name)
    }

    /// Poll `cond` for up to `secs` seconds.
    pub fn wait_for(&self, secs: u64, what: &str, cond: impl Fn() -> bool) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if cond() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}; ps: {:?}", self.ps());
    }

    /// The pid of the daemon serving this root (from its lock file).
    pub fn daemon_pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.root().join("run/daemon.lock")).unwrap();
        text.trim().parse().unwrap()
    }

    /// Whether no daemon holds this root's lock. A killed daemon is gone
    /// once it is free: a process's files close only when its last thread is
    /// gone, after its main thread shows as gone.
    pub fn daemon_lock_free(&self) -> bool {
        let file = std::fs::File::open(self.root().join("run/daemon.lock")).unwrap();
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
    }

    /// `bin daemon` for this root, once it said READY=1 (after adoption);
    /// with that first message.
    pub fn start_daemon(&self, bin: &Path) -> (Daemon, String) {
        let mut cmd = Command::new(bin);
        cmd.arg("--root").arg(self.root()).arg("daemon");
        self.spawn_notified(cmd)
    }

    /// Spawn `cmd` (a daemon) with NOTIFY_SOCKET set to a socket of the
    /// test's, and wait for its first message.
    pub fn spawn_notified(&self, mut cmd: Command) -> (Daemon, String) {
        let path = self.dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let notify = UnixDatagram::bind(&path).unwrap();
        notify
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let child = cmd.env("NOTIFY_SOCKET", &path).spawn().unwrap();
        let daemon = Daemon { child, notify };
        let first = daemon.message();
        (daemon, first)
    }

    /// Bring the stack down and check that nothing of it is left on the host.
    pub fn down_and_check(&self) {
        self.ok(&["down", "-v", "-t", "1"]);
        assert_no_leaks(&self.root(), &self.name);
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "-t", "1"]);
        if !std::thread::panicking() {
            assert_no_leaks(&self.root(), &self.name);
        }
    }
}

/// A daemon the test started, with the sd_notify socket it reports to;
/// killed when dropped (its output pipes would keep the harness waiting).
pub struct Daemon {
    pub child: Child,
    pub notify: UnixDatagram,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Its next sd_notify message, without the final newline; panics after
    /// 20 s without one.
    pub fn message(&self) -> String {
        let mut buf = [0u8; 1024];
        let n = self.notify.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        super::signal(self.pid(), sig).unwrap();
    }

    /// SIGTERM, and its exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The id of state root `root`, which names its links (`s<id>...`) and its
/// nftables table (`stack_<id>`); None before it has a network state.
pub fn root_id(root: &Path) -> Option<String> {
    let state = std::fs::read_to_string(root.join("lib/network/state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    state["root_id"].as_str().map(str::to_string)
}

/// The lines of `ip -o link` whose interface name starts with `prefix`.
pub fn links_named(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with(prefix)))
        .map(str::to_string)
        .collect()
}

/// Nothing of stack `name` under state root `root` is left: no process, cgroup,
/// mount, link, nftables rule or container state.
pub fn assert_no_leaks(root: &Path, name: &str) {
    for hierarchy in ["memory", "pids", "cpu", "unified", ""] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("stack.slice")
            .join(format!("{name}.slice"));
        assert!(!dir.exists(), "cgroup left behind: {}", dir.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root_s = root.display().to_string();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root_s)).collect();
    assert!(left.is_empty(), "mounts left behind: {left:#?}");
    let containers = root.join("lib/containers");
    let entries: Vec<_> = std::fs::read_dir(&containers)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        entries.is_empty(),
        "container state left behind: {entries:?}"
    );
    let netns: Vec<_> = std::fs::read_dir(root.join("run/netns"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        netns.is_empty(),
        "network namespaces left behind: {netns:?}"
    );
    if let Some(id) = root_id(root) {
        let left = links_named(&format!("s{id}"));
        assert!(left.is_empty(), "links left behind: {left:#?}");
        let tables = Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap();
        let tables = String::from_utf8_lossy(&tables.stdout);
        assert!(
            !tables.contains(&format!("stack_{id}")),
            "nftables table left behind: {tables}"
        );
    }
    let procs = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "grep -l 'stack.slice/{name}.slice' /proc/[0-9]*/cgroup 2>/dev/null"
        ))
        .output()
        .unwrap();
    let procs = String::from_utf8_lossy(&procs.stdout);
    assert!(procs.trim().is_empty(), "processes left behind: {procs}");
}
