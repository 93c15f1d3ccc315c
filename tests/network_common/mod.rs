//! Helpers for the network integration tests: private namespaces created with
//! `ip netns add` and removed on drop, and threads that run inside them. Every
//! address used lives inside these namespaces.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use stack::network::{Attachment, Manager, NetworkSpec, NftFirewall};
use stack::state::Roots;

/// A named network namespace (`/run/netns/<name>`), deleted on drop.
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new(prefix: &str) -> Ns {
        let name = crate::common::unique(prefix);
        run(&["ip", "netns", "add", &name]);
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n <ns> ARGS`, asserting success.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// `ip netns exec <ns> ARGS`, returning the output whatever the status.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }

    /// Stdout of `ip netns exec <ns> ARGS`, asserting success.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Run a command, asserting success, returning stdout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `f` on a fresh thread inside namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: PathBuf, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let file = std::fs::File::open(&ns).expect("open netns");
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("thread in netns panicked")
}

/// A TCP server in a namespace that answers each connection with the client's
/// address as it sees it, then closes. Stops on drop.
pub struct PeerServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl PeerServer {
    pub fn start(ns: PathBuf, port: u16) -> PeerServer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(&ns).expect("open netns");
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
            // [::] is dual-stack on Linux (bindv6only=0): IPv4 and IPv6 clients
            let l = TcpListener::bind(("::", port)).expect("bind test server");
            l.set_nonblocking(true).expect("nonblocking");
            tx.send(()).expect("signal ready");
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(peer.ip().to_canonical().to_string().as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server ready");
        PeerServer {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// From namespace `ns`, connect to `addr` and return what the server says
/// (its view of our address), or the error.
pub fn ask(ns: PathBuf, addr: SocketAddr) -> std::io::Result<String> {
    in_ns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
}

/// A private "host" namespace, a state root and a manager working in them.
pub struct Fixture {
    pub host: Ns,
    _dir: tempfile::TempDir,
    pub roots: Roots,
    pub mgr: Manager,
    pub stack: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        crate::common::require_root();
        let host = Ns::new("sth");
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots::new(Some(dir.path()));
        let mgr = Manager::with(&roots, Some(host.path()), Arc::new(NftFirewall::default()));
        Fixture {
            host,
            _dir: dir,
            roots,
            mgr,
            stack: crate::common::unique("st"),
        }
    }

    pub fn spec(&self, name: &str) -> NetworkSpec {
        NetworkSpec {
            stack: self.stack.clone(),
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn att(&self, net: &str, aliases: &[&str]) -> Attachment {
        Attachment {
            stack: self.stack.clone(),
            network: net.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            ipv4: None,
            ipv6: None,
        }
    }

    /// Links of the host namespace whose name starts with this root's prefix.
    pub fn our_links(&self) -> Vec<String> {
        let prefix = self.mgr.link_prefix().unwrap();
        self.host
            .ip(&["-o", "link"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    pub fn ruleset(&self) -> String {
        self.host.exec_ok(&["nft", "list", "ruleset"])
    }
}

/// Connect `other` to `host` with a veth pair: `host_addr` on the host side,
/// `other_addr` on the other (both /24). Returns nothing: the links die with
/// the namespaces.
pub fn link(host: &Ns, other: &Ns, host_addr: &str, other_addr: &str) {
    let (h, o) = (crate::common::unique("uh"), crate::common::unique("uo"));
    host.ip(&[
        "link",
        "add",
        &h,
        "type",
        "veth",
        "peer",
        "name",
        &o,
        "netns",
        &other.name,
    ]);
    host.ip(&["addr", "add", &format!("{host_addr}/24"), "dev", &h]);
    host.ip(&["link", "set", &h, "up"]);
    other.ip(&["addr", "add", &format!("{other_addr}/24"), "dev", &o]);
    other.ip(&["link", "set", &o, "up"]);
}

/// Add IPv6 addresses (without duplicate address detection) to the veth pair
/// `link` made: `host_addr` on the host side, `other_addr` on the other.
pub fn link6(host: &Ns, other: &Ns, host_addr: &str, other_addr: &str) {
    let dev = |ns: &Ns, prefix: &str| {
        ns.ip(&["-o", "link"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .find(|n| n.starts_with(prefix))
            .expect("veth made by link()")
    };
    let (h, o) = (dev(host, "uh"), dev(other, "uo"));
    host.ip(&[
        "addr",
        "add",
        &format!("{host_addr}/64"),
        "dev",
        &h,
        "nodad",
    ]);
    other.ip(&[
        "addr",
        "add",
        &format!("{other_addr}/64"),
        "dev",
        &o,
        "nodad",
    ]);
}
