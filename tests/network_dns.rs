//! The embedded resolver against real sockets in private namespaces: service
//! names, aliases, replicas, `host.stack.internal`, forwarding to a stub
//! upstream the test runs on the host namespace's loopback, isolation between
//! networks, and answers under container churn.
mod common;
mod network_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use network_common::{Fixture, Ns, in_ns};
use stack::network::files::{ResolvConf, resolv_conf};
use stack::network::{DnsServer, Manager};

const STUB: &str = "127.0.0.1:5300";
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// A stub upstream resolver in `ns`: `upstream.test` -> 192.0.2.10, all else
/// NXDOMAIN. Runs until the test process ends (its namespace dies first).
fn stub_upstream(ns: &Ns) {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = ns.path();
    std::thread::spawn(move || {
        in_ns(path, move || {
            let sock = UdpSocket::bind(STUB).unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 1500];
            while let Ok((n, src)) = sock.recv_from(&mut buf) {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.add_queries(q.queries.iter().cloned());
                match q.queries.first() {
                    Some(query) if query.name().to_ascii() == "upstream.test." => {
                        r.add_answer(Record::from_rdata(
                            query.name().clone(),
                            60,
                            RData::A(A(UPSTREAM_ANSWER)),
                        ));
                    }
                    _ => r.metadata.response_code = ResponseCode::NXDomain,
                }
                let _ = sock.send_to(&r.to_vec().unwrap(), src);
            }
        })
    });
    rx.recv().unwrap();
}

/// Response code and A records of one query, or the I/O error.
type Answer = std::io::Result<(ResponseCode, Vec<Ipv4Addr>)>;

/// One A query from inside `ns` to `server`: (rcode, addresses).
fn resolve(ns: &Ns, server: Ipv4Addr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    let name = name.to_string();
    in_ns(ns.path(), move || query(server, &name)).unwrap()
}

fn query(server: Ipv4Addr, name: &str) -> std::io::Result<(ResponseCode, Vec<Ipv4Addr>)> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut m = Message::query();
    m.metadata.id = 7;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    sock.send_to(
        &m.to_vec().unwrap(),
        SocketAddr::new(IpAddr::V4(server), 53),
    )?;
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf)?;
    let r = Message::from_vec(&buf[..n]).map_err(std::io::Error::other)?;
    let ips = r
        .answers
        .iter()
        .filter_map(|rec| match rec.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect();
    Ok((r.metadata.response_code, ips))
}

/// The same query over TCP (RFC 7766 framing).
fn resolve_tcp(ns: &Ns, server: Ipv4Addr, name: &str) -> Answer {
    use std::io::{Read, Write};
    let name = name.to_string();
    in_ns(ns.path(), move || {
        let mut s = std::net::TcpStream::connect_timeout(
            &SocketAddr::new(IpAddr::V4(server), 53),
            Duration::from_secs(3),
        )?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut m = Message::query();
        m.metadata.id = 9;
        m.add_query(Query::query(Name::from_str(&name).unwrap(), RecordType::A));
        let bytes = m.to_vec().unwrap();
        s.write_all(&u16::try_from(bytes.len()).unwrap().to_be_bytes())?;
        s.write_all(&bytes)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf)?;
        let r = Message::from_vec(&buf).map_err(std::io::Error::other)?;
        let ips = r
            .answers
            .iter()
            .filter_map(|rec| match rec.data {
                RData::A(A(ip)) => Some(ip),
                _ => None,
            })
            .collect();
        Ok((r.metadata.response_code, ips))
    })
}

struct Dns {
    f: Fixture,
    mgr: Manager,
    _rt: tokio::runtime::Runtime,
}

fn setup() -> Dns {
    let f = Fixture::new();
    stub_upstream(&f.host);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dns = DnsServer::new(rt.handle().clone(), vec![STUB.parse().unwrap()]);
    let mgr = f.mgr.clone().with_dns(dns).unwrap();
    Dns { f, mgr, _rt: rt }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.mgr.remove_stack(&self.f.stack);
    }
}

/// `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` mounts over
/// /etc/resolv.conf (ip-netns(8)); removed on drop.
struct EtcNetns(std::path::PathBuf);

impl EtcNetns {
    fn new(ns: &Ns, text: &str) -> EtcNetns {
        let dir = std::path::PathBuf::from("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), text).unwrap();
        EtcNetns(dir)
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn service_names_resolve_on_their_network_only() {
    let d = setup();
    let f = &d.f;
    let net = d.mgr.ensure_network(&f.spec("default")).unwrap();
    d.mgr.ensure_network(&f.spec("other")).unwrap();
    let (w1, w2, client, stranger) = (
        Ns::new("stc"),
        Ns::new("stc"),
        Ns::new("stc"),
        Ns::new("stc"),
    );
    let e1 = d
        .mgr
        .attach(
            &f.stack,
            "w1",
            &w1.path(),
            &[f.att("default", &["web", "web-1", "www"])],
        )
        .unwrap();
    let e2 = d
        .mgr
        .attach(
            &f.stack,
            "w2",
            &w2.path(),
            &[f.att("default", &["web", "web-2"])],
        )
        .unwrap();
    d.mgr
        .attach(
            &f.stack,
            "c",
            &client.path(),
            &[f.att("default", &["client"])],
        )
        .unwrap();
    let es = d
        .mgr
        .attach(
            &f.stack,
            "s",
            &stranger.path(),
            &[f.att("other", &["stranger"])],
        )
        .unwrap();
    let gw = net.gateway;

    // replicas, both addresses, rotating
    let (rc, a) = resolve(&client, gw, "web.");
    assert_eq!(rc, ResponseCode::NoError);
    let mut sorted = a.clone();
    sorted.sort();
    let mut want = vec![e1[0].ipv4, e2[0].ipv4];
    want.sort();
    assert_eq!(sorted, want);
    let (_, b) = resolve(&client, gw, "web.");
    assert_ne!(a[0], b[0], "round-robin must rotate the first address");
    // container name and alias
    assert_eq!(resolve(&client, gw, "web-2.").1, [e2[0].ipv4]);
    assert_eq!(resolve(&client, gw, "WWW.").1, [e1[0].ipv4]);
    assert_eq!(resolve(&client, gw, "host.stack.internal.").1, [gw]);
    // other names go to the upstream
    assert_eq!(resolve(&client, gw, "upstream.test.").1, [UPSTREAM_ANSWER]);
    assert_eq!(
        resolve(&client, gw, "nothing.test.").0,
        ResponseCode::NXDomain
    );
    // and over TCP
    let (rc, mut tcp) = resolve_tcp(&client, gw, "web.").unwrap();
    tcp.sort();
    assert_eq!((rc, tcp), (ResponseCode::NoError, want.clone()));
    assert_eq!(
        resolve_tcp(&client, gw, "upstream.test.").unwrap().1,
        [UPSTREAM_ANSWER]
    );

    // another network's member: its own resolver does not know `web` ...
    let (rc, ips) = resolve(&stranger, es[0].gateway, "web.");
    assert_eq!((rc, ips), (ResponseCode::NXDomain, vec![]));
    // ... and this network's resolver refuses it
    let (rc, ips) = resolve(&stranger, gw, "web.");
    assert_eq!((rc, ips), (ResponseCode::Refused, vec![]));

    // busybox with a generated resolv.conf: nslookup, ping and wget by name
    let conf = resolv_conf(&ResolvConf {
        embedded: Some(IpAddr::V4(gw)),
        ..Default::default()
    });
    let _etc = EtcNetns::new(&client, &conf);
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "hello from web-1\n").unwrap();
    let _httpd = Kill(
        Command::new("ip")
            .args([
                "netns", "exec", &w1.name, "busybox", "httpd", "-f", "-p", "8080", "-h",
            ])
            .arg(root.path())
            .spawn()
            .unwrap(),
    );
    let ns_out = client.exec_ok(&["busybox", "nslookup", "web-1"]);
    assert!(ns_out.contains(&e1[0].ipv4.to_string()), "{ns_out}");
    assert!(
        client
            .exec(&["busybox", "ping", "-c", "1", "-W", "2", "web-2"])
            .status
            .success()
    );
    let mut page = String::new();
    for _ in 0..50 {
        let out = client.exec(&["busybox", "wget", "-q", "-O", "-", "http://web-1:8080/"]);
        page = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(page, "hello from web-1\n");
}

#[test]
fn dns_under_churn_never_fails_or_answers_a_removed_container() {
    let d = setup();
    let f = &d.f;
    let net = d.mgr.ensure_network(&f.spec("default")).unwrap();
    let client = Ns::new("stc");
    d.mgr
        .attach(&f.stack, "client", &client.path(), &[f.att("default", &[])])
        .unwrap();
    // two replicas to start with
    let mut live: Vec<(String, Ns, Ipv4Addr)> = Vec::new();
    for i in 0..2 {
        let ns = Ns::new("stc");
        let id = format!("api-{i}");
        let ip = d
            .mgr
            .attach(&f.stack, &id, &ns.path(), &[f.att("default", &["api"])])
            .unwrap()[0]
            .ipv4;
        live.push((id, ns, ip));
    }
    let removed: Arc<Mutex<Vec<(Ipv4Addr, Instant)>>> = Arc::default();
    let answers: Arc<Mutex<Vec<(Instant, Answer)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client_thread = {
        let (answers, stop, path, gw) = (
            Arc::clone(&answers),
            Arc::clone(&stop),
            client.path(),
            net.gateway,
        );
        std::thread::spawn(move || {
            in_ns(path, move || {
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let r = query(gw, "api.");
                    answers.lock().unwrap().push((sent, r));
                }
            })
        })
    };
    // rolling recreation: start the new replica, then remove the oldest
    for i in 2..102 {
        let ns = Ns::new("stc");
        let id = format!("api-{i}");
        let ip = d
            .mgr
            .attach(&f.stack, &id, &ns.path(), &[f.att("default", &["api"])])
            .unwrap()[0]
            .ipv4;
        live.push((id, ns, ip));
        let (old_id, old_ns, old_ip) = live.remove(0);
        d.mgr.detach(&old_id).unwrap();
        removed.lock().unwrap().push((old_ip, Instant::now()));
        drop(old_ns);
    }
    stop.store(true, Ordering::Relaxed);
    client_thread.join().unwrap();
    let answers = answers.lock().unwrap();
    let removed = removed.lock().unwrap();
    assert!(
        answers.len() > 100,
        "client made only {} queries",
        answers.len()
    );
    eprintln!("{} queries during 100 recreations", answers.len());
    for (sent, r) in answers.iter() {
        let (rc, ips) = r.as_ref().expect("a query failed during churn");
        assert_eq!(*rc, ResponseCode::NoError);
        assert!(!ips.is_empty(), "empty answer during churn");
        for ip in ips {
            let stale = removed.iter().any(|(r_ip, at)| r_ip == ip && at < sent);
            assert!(!stale, "{ip} answered after its container was removed");
        }
    }
}

#[test]
fn a_hosted_resolver_picks_up_other_processes_changes_on_refresh() {
    let d = setup();
    let f = &d.f;
    // `f.mgr` stands for another process on the same root (a CLI `up`): it
    // has no resolver of its own but sees that one is hosted
    assert!(f.mgr.dns_hosted());
    let second = DnsServer::new(d._rt.handle().clone(), vec![]);
    let err = f.mgr.clone().with_dns(second).unwrap_err();
    assert!(err.to_string().contains("already hosts"), "{err}");
    let net = f.mgr.ensure_network(&f.spec("default")).unwrap();
    let (w, client) = (Ns::new("stc"), Ns::new("stc"));
    let ew = f
        .mgr
        .attach(&f.stack, "w", &w.path(), &[f.att("default", &["web"])])
        .unwrap();
    f.mgr
        .attach(&f.stack, "c", &client.path(), &[f.att("default", &[])])
        .unwrap();
    // the host rebuilds listeners and table from the state
    d.mgr.refresh_dns().unwrap();
    assert_eq!(resolve(&client, net.gateway, "web.").1, [ew[0].ipv4]);
    assert_eq!(
        resolve(&client, net.gateway, "host.stack.internal.").1,
        [net.gateway]
    );
    f.mgr.detach("w").unwrap();
    d.mgr.refresh_dns().unwrap();
    assert_eq!(
        resolve(&client, net.gateway, "web.").0,
        ResponseCode::NXDomain
    );
}
