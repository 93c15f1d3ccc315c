//! IPv6 networks inside private namespaces: ULA allocation, container to
//! container, egress masquerade, published ports over IPv6 with the client's
//! address preserved. Addresses: the network's own ULA and 2001:db8::/64
//! (documentation prefix) on the host<->neighbour veth, nothing else.
mod common;
mod network_common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use network_common::{Fixture, Ns, PeerServer, ask, link, link6};
use stack::network::{Error, PortMapping, Proto};

const HOST6: &str = "2001:db8::1";
const NEIGHBOUR6: &str = "2001:db8::2";

fn sock6(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(ip), port)
}

#[test]
fn ipv6_network_end_to_end() {
    let f = Fixture::new();
    let lan = Ns::new("stn");
    link(&f.host, &lan, "198.51.100.1", "198.51.100.2");
    link6(&f.host, &lan, HOST6, NEIGHBOUR6);
    let mut spec = f.spec("default");
    spec.enable_ipv6 = true;
    let net = f.mgr.ensure_network(&spec).unwrap();
    let subnet6 = net.subnet6.expect("an IPv6 subnet is allocated");
    assert_eq!(subnet6.prefix, 64);
    assert_eq!(subnet6.addr.octets()[0], 0xfd, "ULA expected: {subnet6}");

    let (c1, c2) = (Ns::new("stc"), Ns::new("stc"));
    let e1 = f
        .mgr
        .attach(&f.stack, "c1", &c1.path(), &[f.att("default", &[])])
        .unwrap()
        .remove(0);
    let e2 = f
        .mgr
        .attach(&f.stack, "c2", &c2.path(), &[f.att("default", &[])])
        .unwrap()
        .remove(0);
    let (a1, a2) = (e1.ipv6.unwrap(), e2.ipv6.unwrap());
    assert!(subnet6.contains(a1) && subnet6.contains(a2) && a1 != a2);
    let routes = c1.ip(&["-6", "route"]);
    assert!(
        routes.contains(&format!("default via {}", net.gateway6.unwrap())),
        "{routes}"
    );

    // container to container over IPv6, no NAT
    let _srv = PeerServer::start(c2.path(), 80);
    assert_eq!(ask(c1.path(), sock6(a2, 80)).unwrap(), a1.to_string());

    // egress: the upstream sees the host's address
    let _up = PeerServer::start(lan.path(), 7001);
    let neighbour: Ipv6Addr = NEIGHBOUR6.parse().unwrap();
    assert_eq!(ask(c1.path(), sock6(neighbour, 7001)).unwrap(), HOST6);

    // published on all addresses: reachable over IPv6 from the neighbour,
    // which the container sees as itself (kernel DNAT, no proxy)
    let port = PortMapping {
        host_ip: None,
        host_port: 18086,
        container_port: 80,
        proto: Proto::Tcp,
    };
    let p = f.mgr.publish(&f.stack, "c2", &[port], e2.ipv4).unwrap();
    assert_eq!(p[0].container_addr6, Some(a2));
    let host6: Ipv6Addr = HOST6.parse().unwrap();
    assert_eq!(ask(lan.path(), sock6(host6, 18086)).unwrap(), NEIGHBOUR6);
    assert_eq!(
        ask(lan.path(), "198.51.100.1:18086".parse().unwrap()).unwrap(),
        "198.51.100.2"
    );
    // a routing trick towards the container's IPv6 address reaches nothing
    lan.ip(&["-6", "route", "add", &subnet6.to_string(), "via", HOST6]);
    assert!(ask(lan.path(), sock6(a2, 80)).is_err());

    // [::1] cannot be published with kernel NAT: without a proxy program it
    // is refused and nothing changes
    let before = f.ruleset();
    let lo6 = PortMapping {
        host_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        host_port: 18087,
        container_port: 80,
        proto: Proto::Tcp,
    };
    let err = f.mgr.publish(&f.stack, "c2", &[lo6], e2.ipv4).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_eq!(f.ruleset(), before);
    // with one, the proxy serves TCP and UDP on [::1] of the host namespace
    let mgr = f.mgr.clone().with_proxy(common::stack_bin());
    let _echo = UdpEcho::start(c2.path(), 5353);
    let udp6 = PortMapping {
        host_port: 0,
        container_port: 5353,
        proto: Proto::Udp,
        ..lo6
    };
    let p = mgr.publish(&f.stack, "c2", &[lo6, udp6], e2.ipv4).unwrap();
    let rules = f.ruleset();
    assert!(
        !rules.contains("18087") && !rules.contains(&format!("dport {}", p[1].host_port)),
        "no kernel rule for [::1]: {rules}"
    );
    let gw = net.gateway.to_string();
    assert_eq!(
        ask(f.host.path(), sock6(Ipv6Addr::LOCALHOST, 18087)).unwrap(),
        gw
    );
    let to = sock6(Ipv6Addr::LOCALHOST, p[1].host_port);
    assert_eq!(udp_ask(f.host.path(), to).unwrap(), "ping");
    // a port the proxy holds is in use for everyone else
    let err = mgr.publish(&f.stack, "c1", &[lo6], e1.ipv4).unwrap_err();
    assert!(matches!(err, Error::PortInUse { .. }), "{err}");
    mgr.unpublish("c2").unwrap();
    assert!(ask(f.host.path(), sock6(Ipv6Addr::LOCALHOST, 18087)).is_err());
    mgr.publish(&f.stack, "c2", &[lo6], e2.ipv4).unwrap();
    assert_eq!(
        ask(f.host.path(), sock6(Ipv6Addr::LOCALHOST, 18087)).unwrap(),
        gw
    );

    // a crash between starting the proxy and recording it: the state does
    // not know it, and `remove_stack` still finds and stops it
    let path = f.roots.lib.join("network/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(state["proxies"]["c2"]["pid"].is_i64(), "{state}");
    state["proxies"] = serde_json::json!({});
    std::fs::write(&path, state.to_string()).unwrap();
    f.mgr.remove_stack(&f.stack).unwrap();
    assert!(!f.ruleset().contains(&f.mgr.table_name().unwrap()));
    assert!(
        ask(f.host.path(), sock6(Ipv6Addr::LOCALHOST, 18087)).is_err(),
        "the proxy goes with the stack"
    );
}

/// A UDP server in a namespace that sends every datagram back. Stops on drop.
struct UdpEcho(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl UdpEcho {
    fn start(ns: std::path::PathBuf, port: u16) -> UdpEcho {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let s = network_common::in_ns(ns, move || std::net::UdpSocket::bind(("0.0.0.0", port)))
            .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&buf[..n], from);
                }
            }
        });
        UdpEcho(stop)
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// From namespace `ns`, send "ping" to `to` and return the answer.
fn udp_ask(ns: std::path::PathBuf, to: SocketAddr) -> std::io::Result<String> {
    network_common::in_ns(ns, move || {
        let s = std::net::UdpSocket::bind("[::1]:0")?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.send_to(b"ping", to)?;
        let mut buf = [0u8; 64];
        let n = s.recv(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}
