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
//! next answer (TTL 0). Caveats: UDP only (no TCP fallback for truncated
//! answers yet); IPv4 only.
//!
//! Sockets are opened in the manager's host namespace by a small thread that
//! `setns()`ed there and only binds sockets (never a tokio worker).
use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::dns_table::{Answers, Decision, decide, servfail};
use super::{Error, Result, netns};

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
}

struct Listener {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
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
            let std_sock = binder
                .udp(addr)
                .map_err(Error::io(format!("DNS listener on {addr}")))?;
            let _guard = self.inner.rt.enter();
            let sock = UdpSocket::from_std(std_sock)
                .map_err(Error::io(format!("DNS listener on {addr}")))?;
            let task = self.inner.rt.spawn(serve(
                Arc::clone(&self.inner),
                key.clone(),
                Arc::new(sock),
                binder,
            ));
            listeners.insert(key.clone(), Listener { addr, task });
        }
        Ok(())
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
        let table = inner
            .table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let rot = inner.rotate.fetch_add(1, Ordering::Relaxed);
        match decide(table.networks.get(&key), src.ip(), &query, rot) {
            Decision::Reply(bytes) => {
                let _ = sock.send_to(&bytes, src).await;
            }
            Decision::Ignore => {}
            Decision::Forward => {
                let (inner, sock, binder) =
                    (Arc::clone(&inner), Arc::clone(&sock), Arc::clone(&binder));
                tokio::spawn(async move {
                    let answer = forward(&inner.upstreams, &binder, &query).await;
                    if let Some(bytes) = answer.or_else(|| servfail(&query)) {
                        let _ = sock.send_to(&bytes, src).await;
                    }
                });
            }
        }
    }
}

/// Ask each upstream in turn; the first reply wins.
async fn forward(upstreams: &[SocketAddr], binder: &Binder, query: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let any: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .ok()?;
        let Ok(std_sock) = binder.udp(any) else {
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

type BindReq = (SocketAddr, mpsc::SyncSender<io::Result<StdUdp>>);

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
                for (addr, reply) in rx {
                    let _ = reply.send(bind(addr));
                }
            })
            .map_err(Error::io("spawn DNS socket thread"))?;
        ready_rx
            .recv()
            .map_err(|_| Error::io("DNS socket thread")(io::Error::other("exited")))??;
        Ok(Binder::Ns(tx))
    }

    fn udp(&self, addr: SocketAddr) -> io::Result<StdUdp> {
        match self {
            Binder::Direct => bind(addr),
            Binder::Ns(tx) => {
                let (rtx, rrx) = mpsc::sync_channel(1);
                tx.send((addr, rtx))
                    .map_err(|_| io::Error::other("DNS socket thread gone"))?;
                rrx.recv()
                    .map_err(|_| io::Error::other("DNS socket thread gone"))?
            }
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<StdUdp> {
    let s = StdUdp::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}
