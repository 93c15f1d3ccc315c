//! The userspace proxy for ports published on `[::1]`, and the manager's
//! side of it: start, record, stop, sweep.
//!
//! Why a proxy: the kernel cannot DNAT a connection from `::1` to a container.
//! IPv6 has no `route_localnet`; a packet with a loopback address never leaves
//! `lo` (RFC 4291 2.5.3). For exactly that case (and no other: every other
//! publish is kernel NAT) a small process per container accepts on `[::1]:P`
//! and connects to the container's IPv4 address.
//!
//! Flow: `publish` binds the `[::1]` sockets itself while it checks the ports
//! (so there is no window in which another process could take them), saves the
//! ports, then starts `stack __proxy` with those sockets inherited as file
//! descriptors. The proxy forks once more (so it is nobody's child: no zombie
//! in a long-running daemon), starts a session, reports its pid on its stdout
//! and serves until killed. The pid goes into the state (`proxies`).
//!
//! Guarantees: the proxy depends on no other process: a daemon or CLI that
//! exits or restarts leaves it serving, and a container restart keeps its
//! address, so the proxy keeps working. `detach`, `unpublish`, `remove_stack`
//! kill it (after checking that the pid still is our proxy: its command line
//! names this root and the container). A crash between the start and the
//! record leaves a proxy the state does not know; `recover` and `remove_stack`
//! find those by their command line (`--root-id R`) and kill them.
//!
//! Caveats: the container sees connections from its gateway address, not
//! from `::1` (the client is on this host either way). UDP flows are kept per
//! client address and dropped after [`UDP_IDLE`] without traffic.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdp};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::types::Proto;
use super::{Error, Result, netns};

/// How long a UDP flow without traffic in either direction is kept.
pub const UDP_IDLE: Duration = Duration::from_secs(60);

/// A running proxy, as the state records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRecord {
    pub pid: i32,
}

/// One socket the proxy serves: what arrives on `fd` goes to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub proto: Proto,
    pub fd: RawFd,
    pub target: SocketAddr,
}

impl Map {
    /// `tcp:FD:ADDR:PORT`, as on the proxy's command line.
    pub fn arg(&self) -> String {
        format!("{}:{}:{}", self.proto.as_str(), self.fd, self.target)
    }

    pub fn parse(s: &str) -> Option<Map> {
        let mut it = s.splitn(3, ':');
        let proto = match it.next()? {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return None,
        };
        let fd = it.next()?.parse().ok()?;
        let target = it.next()?.parse().ok()?;
        Some(Map { proto, fd, target })
    }
}

/// A bound socket handed to the proxy.
pub(crate) enum Held {
    Tcp(StdTcpListener),
    Udp(StdUdp),
}

impl Held {
    fn fd(&self) -> RawFd {
        match self {
            Held::Tcp(l) => l.as_raw_fd(),
            Held::Udp(s) => s.as_raw_fd(),
        }
    }
}

/// The command line that marks a proxy of root `root_id` for `container`.
fn marks(root_id: &str, container: &str) -> [String; 5] {
    [
        "__proxy".into(),
        "--root-id".into(),
        root_id.into(),
        "--container".into(),
        container.into(),
    ]
}

/// Start the proxy program `exe` serving `sockets` (each with its target);
/// returns its pid once it runs. `host_ns`: the namespace it connects from.
pub(crate) fn start(
    exe: &Path,
    root_id: &str,
    container: &str,
    host_ns: Option<&Path>,
    sockets: Vec<(Held, SocketAddr)>,
) -> Result<ProxyRecord> {
    let maps: Vec<Map> = sockets
        .iter()
        .map(|(h, target)| Map {
            proto: match h {
                Held::Tcp(_) => Proto::Tcp,
                Held::Udp(_) => Proto::Udp,
            },
            fd: h.fd(),
            target: *target,
        })
        .collect();
    let fds: Vec<RawFd> = maps.iter().map(|m| m.fd).collect();
    let mut cmd = Command::new(exe);
    cmd.args(marks(root_id, container));
    if let Some(ns) = host_ns {
        cmd.arg("--netns").arg(ns);
    }
    for m in &maps {
        cmd.arg("--map").arg(m.arg());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: runs in the forked child before exec; fcntl(F_SETFD) is
    // async-signal-safe and touches only the child's descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let io = |what: &str| Error::io(format!("start the [::1] proxy of {container}: {what}"));
    let mut child = cmd.spawn().map_err(io("spawn"))?;
    // The sockets now live in the proxy; ours close when `sockets` drops.
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(io("read its pid"))?;
    }
    let _ = child.wait(); // the first half exits at once
    drop(sockets);
    let pid = line.trim().parse::<i32>().map_err(|_| {
        io("read its pid")(std::io::Error::other(format!(
            "it reported {line:?} (run `stack __proxy` by hand to see why)"
        )))
    })?;
    Ok(ProxyRecord { pid })
}

/// Whether `pid` is the proxy of `container` in root `root_id`.
pub(crate) fn is_ours(pid: i32, root_id: &str, container: &str) -> bool {
    let want = marks(root_id, container);
    proxy_args(pid).is_some_and(|args| args.windows(want.len()).any(|w| w == want))
}

/// The arguments of process `pid` when it is a `__proxy`.
fn proxy_args(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args.iter().any(|a| a == "__proxy").then_some(args)
}

/// Kill the proxy `rec` of `container` if it still is one; gone is success.
pub(crate) fn stop(rec: &ProxyRecord, root_id: &str, container: &str) -> Result<()> {
    if !is_ours(rec.pid, root_id, container) {
        return Ok(());
    }
    match kill(Pid::from_raw(rec.pid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(Error::io(format!(
            "stop the [::1] proxy {} of {container}",
            rec.pid
        ))(e.into())),
    }
}

/// Kill every proxy of root `root_id` that `known` (container -> record)
/// does not list: what a crash between start and record leaves.
pub(crate) fn sweep(root_id: &str, known: &std::collections::BTreeMap<String, ProxyRecord>) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Some(args) = proxy_args(pid) else {
            continue;
        };
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
        };
        if value("--root-id").map(String::as_str) != Some(root_id) {
            continue;
        }
        let recorded = value("--container")
            .and_then(|c| known.get(c))
            .is_some_and(|r| r.pid == pid);
        if !recorded {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// The `stack __proxy` process: detach, report the pid, serve `maps`
/// (inherited sockets) until killed. Call only from a single-threaded
/// process (it forks).
pub fn run(netns_path: Option<PathBuf>, maps: Vec<Map>) -> Result<()> {
    let io = |what: &str| Error::io(format!("[::1] proxy: {what}"));
    // SAFETY: the process is single-threaded here (the CLI calls this before
    // starting any thread), so the child may run arbitrary code after fork.
    match unsafe { nix::unistd::fork() }.map_err(|e| io("fork")(e.into()))? {
        nix::unistd::ForkResult::Parent { .. } => return Ok(()),
        nix::unistd::ForkResult::Child => {}
    }
    let _ = nix::unistd::setsid();
    if let Some(ns) = &netns_path {
        netns::enter(ns)?;
    }
    // Report, then let the starter see EOF: stdout becomes /dev/null.
    println!("{}", std::process::id());
    let null = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .map_err(io("open /dev/null"))?;
    nix::unistd::dup2_stdout(&null).map_err(|e| io("redirect stdout")(e.into()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(io("tokio runtime"))?;
    rt.block_on(serve(maps))
}

async fn serve(maps: Vec<Map>) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for m in maps {
        // SAFETY: the starter passed these descriptors to us (inherited,
        // listed on our command line) and nothing else in this process
        // owns them.
        let fd = unsafe { OwnedFd::from_raw_fd(m.fd) };
        check_socket(fd.as_raw_fd())?;
        match m.proto {
            Proto::Tcp => {
                let l = tcp_listener(fd)?;
                tasks.spawn(serve_tcp(l, m.target));
            }
            Proto::Udp => {
                let s = udp_socket(fd)?;
                tasks.spawn(serve_udp(s, m.target));
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// A descriptor that is not a socket means a wrong command line: refuse it
/// rather than read from whatever it is.
fn check_socket(fd: RawFd) -> Result<()> {
    // SAFETY: fd is open for the duration of the call (owned by the caller).
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(b.as_raw_fd())
        .map(|_| ())
        .map_err(|e| Error::io(format!("[::1] proxy: fd {fd} is not a socket"))(e.into()))
}

fn tcp_listener(fd: OwnedFd) -> Result<tokio::net::TcpListener> {
    let l = StdTcpListener::from(fd);
    l.set_nonblocking(true)
        .map_err(Error::io("[::1] proxy: nonblocking"))?;
    tokio::net::TcpListener::from_std(l).map_err(Error::io("[::1] proxy: register listener"))
}

fn udp_socket(fd: OwnedFd) -> Result<tokio::net::UdpSocket> {
    let s = StdUdp::from(fd);
    s.set_nonblocking(true)
        .map_err(Error::io("[::1] proxy: nonblocking"))?;
    tokio::net::UdpSocket::from_std(s).map_err(Error::io("[::1] proxy: register socket"))
}

/// Accept forever; each connection is copied both ways to `target`.
async fn serve_tcp(listener: tokio::net::TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            // EMFILE and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
    }
}

/// One connected socket to `target` per client address; replies go back
/// through the listening socket.
async fn serve_udp(socket: tokio::net::UdpSocket, target: SocketAddr) {
    let socket = Arc::new(socket);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let existing = flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let flow = match existing {
            Some(f) => f,
            None => match open_flow(target).await {
                Some(f) => {
                    flows
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(client, Arc::clone(&f));
                    tokio::spawn(replies(
                        Arc::clone(&f),
                        Arc::clone(&socket),
                        client,
                        Arc::clone(&flows),
                    ));
                    f
                }
                None => continue,
            },
        };
        let _ = flow.send(&buf[..n]).await;
    }
}

async fn open_flow(target: SocketAddr) -> Option<Arc<tokio::net::UdpSocket>> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().ok()?,
        SocketAddr::V6(_) => "[::]:0".parse().ok()?,
    };
    let s = tokio::net::UdpSocket::bind(any).await.ok()?;
    s.connect(target).await.ok()?;
    Some(Arc::new(s))
}

/// Copy the container's answers to `client` until the flow is idle.
async fn replies(
    flow: Arc<tokio::net::UdpSocket>,
    socket: Arc<tokio::net::UdpSocket>,
    client: SocketAddr,
    flows: Arc<Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>>,
) {
    let mut buf = vec![0u8; 65535];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, flow.recv(&mut buf)).await {
        let _ = socket.send_to(&buf[..n], client).await;
    }
    flows
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&client);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trips_through_its_argument() {
        let m = Map {
            proto: Proto::Udp,
            fd: 7,
            target: "10.89.0.2:53".parse().unwrap(),
        };
        assert_eq!(m.arg(), "udp:7:10.89.0.2:53");
        assert_eq!(Map::parse(&m.arg()), Some(m));
        assert_eq!(Map::parse("sctp:3:10.0.0.1:1"), None);
        assert_eq!(Map::parse("tcp:x:10.0.0.1:1"), None);
    }

    #[test]
    fn a_process_that_is_not_a_proxy_is_never_ours() {
        assert!(!is_ours(std::process::id() as i32, "abcdef", "c"));
    }
}
