//! IPv6 networks inside private namespaces: ULA allocation, container to
//! container, egress masquerade, published ports over IPv6 with the client's
//! address preserved. Addresses: the network's own ULA and 2001:db8::/64
//! (documentation prefix) on the host<->neighbour veth, nothing else.
mod common;
mod network_common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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

    // [::1] cannot be published with kernel NAT: refused, nothing changes
    let before = f.ruleset();
    let lo6 = PortMapping {
        host_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        host_port: 18087,
        container_port: 80,
        proto: Proto::Tcp,
    };
    let err = f.mgr.publish(&f.stack, "c1", &[lo6], e1.ipv4).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_eq!(f.ruleset(), before);

    f.mgr.remove_stack(&f.stack).unwrap();
    assert!(!f.ruleset().contains(&f.mgr.table_name().unwrap()));
}
