//! The embedded resolver: one UDP listener per network on its gateway
//! address, all in the daemon/supervisor process, answering from an
//! immutable [`Answers`] table that is swapped whole on every change.
//!
//! Flow: a datagram arrives on network N's socket -> the current table is
//! cloned (an `Arc`, no lock held while answering) -> [`decide`]: an answer
//! from N's names, REFUSED for a source outside N, or "forward" -> forwarded
//! queries go as they are to the upstream resolvers (the host's
//! `/etc/resolv.conf`, read by the caller), first answer wins, SERVFAIL when
//! none answers. There is no public fallback resolver.
//!
//! Guarantees: replacing the table never touches the sockets (no dropped
//! queries on reload); a container removed from the state is gone from the
//! next answer (TTL 0). UDP answers larger than the client allows are sent
//! truncated (TC) so the client retries over TCP, which is served too.
//! Caveats: forwarded queries always go to the upstreams over UDP; the
//! listeners are on the IPv4 gateway only.
//!
//! Sockets are opened in the manager's host namespace by a small thread that
//! `setns()`ed there and only binds sockets (never a tokio worker).
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdp};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::dns_table::{Answers, Decision, decide, servfail, truncate_for_udp};
use super::{Error, Result, netns};

/// How long an idle TCP client connection is kept.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// How long one upstream gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The resolver of one state root. Cheap to clone.
#[derive(Clone)]
pub struct DnsServer {
    inner: Arc<Inner>,
}

struct Inner {
    rt: tokio::runtime::Handle,
    port: u16,
    upstreams: Vec<SocketAddr>,
    table: RwLock<Arc<Answers>>,
    listeners: Mutex<BTreeMap<String, Listener>>,
    rotate: AtomicUsize,
    /// The hosting mark of the state root served (`dns.lock`, flock held).
    claim: Mutex<Option<Flock<File>>>,
}

struct Listener {
    addr: SocketAddr,
    udp: tokio::task::JoinHandle<()>,
    tcp: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.udp.abort();
        self.tcp.abort();
    }
}

impl DnsServer {
    /// A resolver whose tasks run on `rt`, listening on port 53 of each
    /// network's gateway and forwarding unknown names to `upstreams`.
    pub fn new(rt: tokio::runtime::Handle, upstreams: Vec<SocketAddr>) -> DnsServer {
        Self::with_port(rt, upstreams, 53)
    }

    /// Same, on another port.
    pub fn with_port(
        rt: tokio::runtime::Handle,
        upstreams: Vec<SocketAddr>,
        port: u16,
    ) -> DnsServer {
        DnsServer {
            inner: Arc::new(Inner {
                rt,
                port,
                upstreams,
                table: RwLock::new(Arc::new(Answers::default())),
                listeners: Mutex::new(BTreeMap::new()),
                rotate: AtomicUsize::new(0),
                claim: Mutex::new(None),
            }),
        }
    }

    /// The `nameserver` lines of a resolv.conf as upstream addresses (port 53).
    pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some("nameserver"))
                    .then(|| it.next())
                    .flatten()
            })
            .filter_map(|a| a.parse().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }

    /// Mark the state root whose network directory is `dir` as served by
    /// this resolver, for as long as it lives (an exclusive `flock` on
    /// `dir/dns.lock`, released by the kernel if this process dies).
    pub(crate) fn claim(&self, dir: &Path) -> Result<()> {
        let path = dir.join("dns.lock");
        let err = |source: io::Error| Error::State {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            err(io::Error::other(format!(
                "{e}: another process already hosts the resolver of this state root"
            )))
        })?;
        *self.inner.claim.lock().unwrap_or_else(|p| p.into_inner()) = Some(lock);
        Ok(())
    }

    /// Whether a resolver (of any process) serves the root whose network
    /// directory is `dir`.
    pub(crate) fn is_claimed(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join("dns.lock")) else {
            return false;
        };
        matches!(
            Flock::lock(file, FlockArg::LockSharedNonblock),
            Err((_, nix::errno::Errno::EWOULDBLOCK))
        )
    }

    /// Swap the answer table (never touches sockets).
    pub fn replace(&self, answers: Answers) {
        let mut t = self.inner.table.write().unwrap_or_else(|p| p.into_inner());
        *t = Arc::new(answers);
    }

    /// Where each network's resolver listens.
    pub fn listeners(&self) -> BTreeMap<String, SocketAddr> {
        self.lock_listeners()
            .iter()
            .map(|(k, l)| (k.clone(), l.addr))
            .collect()
    }

    fn lock_listeners(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Listener>> {
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Make the listeners match the table: one per network at its gateway,
    /// opened in `host_ns`; listeners of networks that are gone are closed.
    pub(crate) fn sync_listeners(&self, host_ns: Option<&Path>) -> Result<()> {
        let table = self
            .inner
            .table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut listeners = self.lock_listeners();
        listeners.retain(|k, l| {
            table
                .networks
                .get(k)
                .is_some_and(|n| l.addr.ip() == std::net::IpAddr::V4(n.gateway))
        });
        for (key, net) in &table.networks {
            if listeners.contains_key(key) {
                continue;
            }
            let addr = SocketAddr::new(net.gateway.into(), self.inner.port);
            let binder = Arc::new(Binder::new(host_ns)?);
            let err = || Error::io(format!("DNS listener on {addr}"));
            let Sock::Udp(std_udp) = binder.bind(addr, false).map_err(err())? else {
                return Err(err()(io::Error::other("wrong socket kind")));
            };
            let Sock::Tcp(std_tcp) = binder.bind(addr, true).map_err(err())? else {
                return Err(err()(io::Error::other("wrong socket kind")));
            };
            let _guard = self.inner.rt.enter();
            let udp_sock = UdpSocket::from_std(std_udp).map_err(err())?;
            let tcp_sock = TcpListener::from_std(std_tcp).map_err(err())?;
            let udp = self.inner.rt.spawn(serve(
                Arc::clone(&self.inner),
                key.clone(),
                Arc::new(udp_sock),
                Arc::clone(&binder),
            ));
            let tcp = self.inner.rt.spawn(serve_tcp(
                Arc::clone(&self.inner),
                key.clone(),
                tcp_sock,
                binder,
            ));
            listeners.insert(key.clone(), Listener { addr, udp, tcp });
        }
        Ok(())
    }
}

/// The answer to one query from `src` on network `key`: ours, forwarded, or
/// none (not a DNS query).
async fn answer(
    inner: &Inner,
    key: &str,
    binder: &Binder,
    src: SocketAddr,
    query: &[u8],
) -> Option<Vec<u8>> {
    let table = inner
        .table
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let rot = inner.rotate.fetch_add(1, Ordering::Relaxed);
    match decide(table.networks.get(key), src.ip(), query, rot) {
        Decision::Reply(bytes) => Some(bytes),
        Decision::Ignore => None,
        Decision::Forward => forward(&inner.upstreams, binder, query)
            .await
            .or_else(|| servfail(query)),
    }
}

/// DNS over TCP (RFC 7766): two-byte length, message; several per connection.
async fn serve_tcp(inner: Arc<Inner>, key: String, listener: TcpListener, binder: Arc<Binder>) {
    loop {
        let Ok((mut conn, src)) = listener.accept().await else {
            continue;
        };
        let (inner, key, binder) = (Arc::clone(&inner), key.clone(), Arc::clone(&binder));
        tokio::spawn(async move {
            loop {
                let idle = tokio::time::timeout(TCP_IDLE, conn.read_u16()).await;
                let Ok(Ok(len)) = idle else { return };
                let mut query = vec![0u8; usize::from(len)];
                if conn.read_exact(&mut query).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&inner, &key, &binder, src, &query).await else {
                    return;
                };
                let Ok(len) = u16::try_from(reply.len()) else {
                    return;
                };
                if conn.write_all(&len.to_be_bytes()).await.is_err()
                    || conn.write_all(&reply).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn serve(inner: Arc<Inner>, key: String, sock: Arc<UdpSocket>, binder: Arc<Binder>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, src)) = sock.recv_from(&mut buf).await else {
            // ICMP errors from earlier sends surface here; keep serving.
            continue;
        };
        let query = buf[..n].to_vec();
        let (inner, sock, binder, key) = (
            Arc::clone(&inner),
            Arc::clone(&sock),
            Arc::clone(&binder),
            key.clone(),
        );
        // Each query on its own task: a slow upstream never delays answers
        // from the table.
        tokio::spawn(async move {
            if let Some(reply) = answer(&inner, &key, &binder, src, &query).await {
                let reply = truncate_for_udp(&query, reply);
                let _ = sock.send_to(&reply, src).await;
            }
        });
    }
}

/// Ask each upstream in turn; the first reply wins.
async fn forward(upstreams: &[SocketAddr], binder: &Binder, query: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let any: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .ok()?;
        let Ok(Sock::Udp(std_sock)) = binder.bind(any, false) else {
            continue;
        };
        let Ok(sock) = UdpSocket::from_std(std_sock) else {
            continue;
        };
        if sock.connect(up).await.is_err() || sock.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf)).await {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

type BindReq = (SocketAddr, bool, mpsc::SyncSender<io::Result<Sock>>);

/// A freshly bound socket.
enum Sock {
    Udp(StdUdp),
    Tcp(StdTcpListener),
}

/// Opens UDP sockets in the host namespace: directly when that is the
/// process's own, else through a thread parked in that namespace.
enum Binder {
    Direct,
    Ns(mpsc::Sender<BindReq>),
}

impl Binder {
    fn new(ns: Option<&Path>) -> Result<Binder> {
        let Some(ns) = ns else {
            return Ok(Binder::Direct);
        };
        let ns: PathBuf = ns.to_path_buf();
        let (tx, rx) = mpsc::channel::<BindReq>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("stack-dns-bind".into())
            .spawn(move || {
                if let Err(e) = netns::enter(&ns) {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                // Exits when the last sender (the listener) is dropped.
                for (addr, tcp, reply) in rx {
                    let _ = reply.send(bind(addr, tcp));
                }
            })
            .map_err(Error::io("spawn DNS socket thread"))?;
        ready_rx
            .recv()
            .map_err(|_| Error::io("DNS socket thread")(io::Error::other("exited")))??;
        Ok(Binder::Ns(tx))
    }

    /// Bind `addr`, waiting up to a second while it is in use: a listener
    /// being closed (an aborted task, here or in another state root's daemon
    /// whose network had this subnet a moment ago) lets go of it shortly.
    fn bind(&self, addr: SocketAddr, tcp: bool) -> io::Result<Sock> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match self.bind_once(addr, tcp) {
                Err(e)
                    if e.kind() == io::ErrorKind::AddrInUse
                        && std::time::Instant::now() < until =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    fn bind_once(&self, addr: SocketAddr, tcp: bool) -> io::Result<Sock> {
        match self {
            Binder::Direct => bind(addr, tcp),
            Binder::Ns(tx) => {
                let (rtx, rrx) = mpsc::sync_channel(1);
                tx.send((addr, tcp, rtx))
                    .map_err(|_| io::Error::other("DNS socket thread gone"))?;
                rrx.recv()
                    .map_err(|_| io::Error::other("DNS socket thread gone"))?
            }
        }
    }
}

fn bind(addr: SocketAddr, tcp: bool) -> io::Result<Sock> {
    if tcp {
        let l = StdTcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(Sock::Tcp(l))
    } else {
        let s = StdUdp::bind(addr)?;
        s.set_nonblocking(true)?;
        Ok(Sock::Udp(s))
    }
}
