//! Egress NAT, internal networks, published ports and their security
//! properties, inside namespaces each test makes: a "host" namespace, container
//! namespaces on its bridges and a "neighbour"/"upstream" namespace linked to
//! the host by a veth (198.51.100.0/24, TEST-NET-2, exists only there).
mod common;
mod network_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use network_common::{Fixture, Ns, PeerServer, ask, in_ns, link};
use stack::network::{Endpoint, Error, PortMapping, Proto};

const HOST_LAN: &str = "198.51.100.1";
const NEIGHBOUR: &str = "198.51.100.2";

fn sock(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn tcp(host_ip: Option<Ipv4Addr>, host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        host_ip: host_ip.map(IpAddr::V4),
        host_port,
        container_port,
        proto: Proto::Tcp,
    }
}

/// Fixture + neighbour namespace + one container on `default` serving on :80.
struct World {
    f: Fixture,
    lan: Ns,
    c: Ns,
    ep: Endpoint,
    _srv: PeerServer,
}

fn world() -> World {
    let f = Fixture::new();
    let lan = Ns::new("stn");
    link(&f.host, &lan, HOST_LAN, NEIGHBOUR);
    f.mgr.ensure_network(&f.spec("default")).unwrap();
    let c = Ns::new("stc");
    let ep = f
        .mgr
        .attach(&f.stack, "web-1", &c.path(), &[f.att("default", &["web"])])
        .unwrap()
        .remove(0);
    let srv = PeerServer::start(c.path(), 80);
    World {
        f,
        lan,
        c,
        ep,
        _srv: srv,
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.f.mgr.remove_stack(&self.f.stack);
    }
}

#[test]
fn egress_is_masqueraded_to_the_upstream() {
    let w = world();
    let _up = PeerServer::start(w.lan.path(), 7001);
    let seen = ask(w.c.path(), sock(NEIGHBOUR, 7001)).unwrap();
    assert_eq!(
        seen, HOST_LAN,
        "upstream must see the host's address, not the container's"
    );
}

#[test]
fn internal_network_has_no_way_out_but_members_talk() {
    let w = world();
    let mut spec = w.f.spec("back");
    spec.internal = true;
    w.f.mgr.ensure_network(&spec).unwrap();
    let (a, b) = (Ns::new("stc"), Ns::new("stc"));
    let ea =
        w.f.mgr
            .attach(&w.f.stack, "a", &a.path(), &[w.f.att("back", &[])])
            .unwrap();
    let eb =
        w.f.mgr
            .attach(&w.f.stack, "b", &b.path(), &[w.f.att("back", &[])])
            .unwrap();
    assert!(
        !a.ip(&["route"]).contains("default"),
        "internal network must not give a default route"
    );
    let _srv = PeerServer::start(b.path(), 7002);
    assert_eq!(
        ask(a.path(), SocketAddr::new(IpAddr::V4(eb[0].ipv4), 7002)).unwrap(),
        ea[0].ipv4.to_string()
    );
    // even with a route added by hand the host forwards nothing out
    let _up = PeerServer::start(w.lan.path(), 7003);
    a.ip(&["route", "add", "default", "via", &ea[0].gateway.to_string()]);
    assert!(ask(a.path(), sock(NEIGHBOUR, 7003)).is_err());
    // nor in from the other network
    assert!(ask(w.c.path(), SocketAddr::new(IpAddr::V4(eb[0].ipv4), 7002)).is_err());
}

#[test]
fn networks_are_isolated_from_each_other() {
    let w = world();
    w.f.mgr.ensure_network(&w.f.spec("other")).unwrap();
    let o = Ns::new("stc");
    let eo =
        w.f.mgr
            .attach(&w.f.stack, "o", &o.path(), &[w.f.att("other", &[])])
            .unwrap();
    let _srv = PeerServer::start(o.path(), 7004);
    assert!(ask(w.c.path(), SocketAddr::new(IpAddr::V4(eo[0].ipv4), 7004)).is_err());
    assert!(ask(o.path(), SocketAddr::new(IpAddr::V4(w.ep.ipv4), 80)).is_err());
}

#[test]
fn loopback_publish_answers_the_host_only() {
    let w = world();
    let p =
        w.f.mgr
            .publish(
                &w.f.stack,
                "web-1",
                &[tcp(Some(Ipv4Addr::LOCALHOST), 18080, 80)],
                w.ep.ipv4,
            )
            .unwrap();
    assert_eq!(p[0].host_port, 18080);
    // the host's own curl-equivalent works
    assert!(ask(w.f.host.path(), sock("127.0.0.1", 18080)).is_ok());
    // the LAN neighbour cannot use it: not via the host's LAN address ...
    assert!(ask(w.lan.path(), sock(HOST_LAN, 18080)).is_err());
    // ... not by routing the container subnet via the host ...
    let net = w.f.mgr.networks().unwrap().remove(0);
    w.lan
        .ip(&["route", "add", &net.subnet.to_string(), "via", HOST_LAN]);
    assert!(ask(w.lan.path(), SocketAddr::new(IpAddr::V4(w.ep.ipv4), 80)).is_err());
    // ... and not with packets addressed to 127.0.0.1 (CVE-2020-8558 style):
    // the neighbour rewrites its packets to 198.51.100.77 into 127.0.0.1
    // after routing, so they reach the host with destination 127.0.0.1.
    crafted_redirect(&w.lan, "198.51.100.77", "127.0.0.1");
    assert!(ask(w.lan.path(), sock("198.51.100.77", 18080)).is_err());
}

#[test]
fn crafted_packet_control_reaches_an_all_address_publish() {
    // Positive control for the crafted-packet trick above: the same rewrite
    // towards the host's real address works, so the failure there is ours.
    let w = world();
    w.f.mgr
        .publish(&w.f.stack, "web-1", &[tcp(None, 18082, 80)], w.ep.ipv4)
        .unwrap();
    crafted_redirect(&w.lan, "198.51.100.78", HOST_LAN);
    assert_eq!(
        ask(w.lan.path(), sock("198.51.100.78", 18082)).unwrap(),
        NEIGHBOUR
    );
}

#[test]
fn all_address_publish_preserves_the_client_address_and_hairpins() {
    let w = world();
    let p =
        w.f.mgr
            .publish(&w.f.stack, "web-1", &[tcp(None, 0, 80)], w.ep.ipv4)
            .unwrap();
    let port = p[0].host_port;
    assert_ne!(port, 0, "random port must be reported");
    // from the LAN: the container sees the neighbour's own address
    assert_eq!(ask(w.lan.path(), sock(HOST_LAN, port)).unwrap(), NEIGHBOUR);
    // from the host itself, including 127.0.0.1
    assert!(ask(w.f.host.path(), sock(HOST_LAN, port)).is_ok());
    assert!(ask(w.f.host.path(), sock("127.0.0.1", port)).is_ok());
    // hairpin: another container on the same network via the host's address,
    // and the container to itself
    let c2 = Ns::new("stc");
    w.f.mgr
        .attach(&w.f.stack, "web-2", &c2.path(), &[w.f.att("default", &[])])
        .unwrap();
    assert!(ask(c2.path(), sock(HOST_LAN, port)).is_ok());
    assert!(ask(w.c.path(), sock(HOST_LAN, port)).is_ok());
    // unpublish closes it
    w.f.mgr.unpublish("web-1").unwrap();
    assert!(ask(w.lan.path(), sock(HOST_LAN, port)).is_err());
}

#[test]
fn a_port_in_use_fails_before_any_change() {
    let w = world();
    w.f.mgr
        .publish(&w.f.stack, "web-1", &[tcp(None, 18083, 80)], w.ep.ipv4)
        .unwrap();
    let before = w.f.ruleset();
    // a second stack asking for the same port
    let c2 = Ns::new("stc");
    let other = common::unique("st");
    let mut spec = w.f.spec("default");
    spec.stack = other.clone();
    w.f.mgr.ensure_network(&spec).unwrap();
    let before_other = w.f.ruleset();
    let mut att = w.f.att("default", &[]);
    att.stack = other.clone();
    let e2 = w.f.mgr.attach(&other, "api-1", &c2.path(), &[att]).unwrap();
    let err =
        w.f.mgr
            .publish(
                &other,
                "api-1",
                &[
                    tcp(None, 18090, 80),
                    tcp(Some(Ipv4Addr::LOCALHOST), 18083, 80),
                ],
                e2[0].ipv4,
            )
            .unwrap_err();
    assert!(matches!(err, Error::PortInUse { port: 18083, .. }), "{err}");
    assert!(err.to_string().contains("web-1"), "{err}");
    assert!(
        !w.f.ruleset().contains("18090"),
        "nothing of the failed request may be applied"
    );
    assert_eq!(w.f.ruleset().len(), before_other.len());
    // a host process holding a port
    let held = in_ns(w.f.host.path(), || {
        std::net::TcpListener::bind(("0.0.0.0", 18084)).unwrap()
    });
    let err =
        w.f.mgr
            .publish(&other, "api-1", &[tcp(None, 18084, 80)], e2[0].ipv4)
            .unwrap_err();
    assert!(err.to_string().contains("process on the host"), "{err}");
    drop(held);
    w.f.mgr.remove_stack(&other).unwrap();
    assert_eq!(w.f.ruleset(), before);
}

#[test]
fn containers_cannot_reach_the_hosts_loopback_services() {
    // route_localnet=1 on our bridges (needed for 127.0.0.1 publishes) must not
    // open the host's 127.0.0.1-only services to containers (CVE-2020-8558).
    let w = world();
    // a loopback-only service on the host, alive for the test's duration
    let host = w.f.host.path();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        in_ns(host, move || {
            let l = std::net::TcpListener::bind(("127.0.0.1", 7005)).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            for _ in 0..500 {
                if let Ok((mut s, _)) = l.accept() {
                    let _ = std::io::Write::write_all(&mut s, b"secret");
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    });
    rx.recv().unwrap();
    crafted_redirect_via(
        &w.c,
        "198.51.100.79",
        "127.0.0.1",
        &w.ep.gateway.to_string(),
    );
    assert!(ask(w.c.path(), sock("198.51.100.79", 7005)).is_err());
}

/// In `ns`, make packets for `fake` leave towards the host with destination
/// `real`, and rewrite replies from `real` back to `fake` (before conntrack),
/// so an ordinary TCP client can talk to `real` as if it were `fake`.
fn crafted_redirect(ns: &Ns, fake: &str, real: &str) {
    crafted_redirect_via(ns, fake, real, HOST_LAN)
}

fn crafted_redirect_via(ns: &Ns, fake: &str, real: &str, via: &str) {
    ns.ip(&["route", "add", &format!("{fake}/32"), "via", via]);
    let rules = format!(
        "table ip craft {{\n\
           chain out {{ type filter hook output priority 0; ip daddr {fake} ip daddr set {real}; }}\n\
           chain in {{ type filter hook prerouting priority -300; ip saddr {real} ip saddr set {fake}; }}\n\
         }}\n"
    );
    let path = std::env::temp_dir().join(common::unique("craft") + ".nft");
    std::fs::write(&path, rules).unwrap();
    ns.exec_ok(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(path);
}

#[test]
fn admin_rules_filter_published_ports_and_foreign_tables_are_untouched() {
    let w = world();
    // someone else's table on the host (a host firewall stand-in)
    w.f.host
        .exec_ok(&["nft", "add table inet hostfw; add chain inet hostfw input { type filter hook input priority 0; policy accept; }; add rule inet hostfw input tcp dport 22 accept"]);
    let foreign = || {
        w.f.host
            .exec_ok(&["nft", "list", "table", "inet", "hostfw"])
    };
    let foreign_before = foreign();
    w.f.mgr
        .publish(&w.f.stack, "web-1", &[tcp(None, 18088, 80)], w.ep.ipv4)
        .unwrap();
    assert_eq!(ask(w.lan.path(), sock(HOST_LAN, 18088)).unwrap(), NEIGHBOUR);
    // the administrator's rule in the documented chain
    let table = w.f.mgr.table_name().unwrap();
    w.f.host.exec_ok(&[
        "nft",
        "add",
        "rule",
        "inet",
        &table,
        "filter-published",
        "ip",
        "saddr",
        NEIGHBOUR,
        "drop",
    ]);
    assert!(ask(w.lan.path(), sock(HOST_LAN, 18088)).is_err());
    // it survives our next rebuild of the table
    let c2 = Ns::new("stc");
    let e2 =
        w.f.mgr
            .attach(&w.f.stack, "web-2", &c2.path(), &[w.f.att("default", &[])])
            .unwrap();
    w.f.mgr
        .publish(&w.f.stack, "web-2", &[tcp(None, 18089, 80)], e2[0].ipv4)
        .unwrap();
    assert!(ask(w.lan.path(), sock(HOST_LAN, 18088)).is_err());
    // the host itself is not filtered by it
    assert!(ask(w.f.host.path(), sock(HOST_LAN, 18088)).is_ok());
    w.f.mgr.remove_stack(&w.f.stack).unwrap();
    assert_eq!(foreign(), foreign_before);
}
