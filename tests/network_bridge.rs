//! Bridge networks, veths, IPAM and cleanup against the real kernel, inside a
//! "host" network namespace each test makes for itself (the machine's own
//! namespace, links and nftables ruleset are never touched).
mod common;
mod network_common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use network_common::{Fixture, Ns, PeerServer, ask};
use stack::network::{Manager, NftFirewall};

#[test]
fn two_containers_on_one_bridge_reach_each_other_and_down_leaves_nothing() {
    let f = Fixture::new();
    let net = f.mgr.ensure_network(&f.spec("default")).unwrap();
    assert_eq!(net.subnet.prefix, 24);
    let (c1, c2) = (Ns::new("stc"), Ns::new("stc"));
    let e1 = f
        .mgr
        .attach(&f.stack, "c1", &c1.path(), &[f.att("default", &["web"])])
        .unwrap();
    let e2 = f
        .mgr
        .attach(&f.stack, "c2", &c2.path(), &[f.att("default", &["db"])])
        .unwrap();
    assert_eq!(e1[0].ifname, "eth0");
    assert_ne!(e1[0].ipv4, e2[0].ipv4);
    assert!(net.subnet.contains(e1[0].ipv4) && net.subnet.contains(e2[0].ipv4));

    // inside the container: eth0 with the address, default route via gateway
    let addrs = c1.ip(&["-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{}/24", e1[0].ipv4)), "{addrs}");
    let routes = c1.ip(&["route"]);
    assert!(
        routes.contains(&format!("default via {}", net.gateway)),
        "{routes}"
    );

    // c1 -> c2 over TCP, c2 sees c1's own address (no NAT on the bridge)
    let _srv = PeerServer::start(c2.path(), 7000);
    let seen = ask(c1.path(), SocketAddr::new(IpAddr::V4(e2[0].ipv4), 7000)).unwrap();
    assert_eq!(seen, e1[0].ipv4.to_string());
    // and ICMP both ways, and to the gateway
    let ping = |ns: &Ns, to: String| {
        ns.exec(&["busybox", "ping", "-c", "1", "-W", "2", &to])
            .status
            .success()
    };
    assert!(ping(&c1, e2[0].ipv4.to_string()));
    assert!(ping(&c2, e1[0].ipv4.to_string()));
    assert!(ping(&c1, net.gateway.to_string()));

    // the table exists with masquerade for the subnet
    let table = f.mgr.table_name().unwrap();
    let rules = f.ruleset();
    assert!(rules.contains(&format!("table inet {table}")), "{rules}");
    assert!(
        rules.contains(&format!(
            "ip saddr {} oifname != \"{}\" masquerade",
            net.subnet, net.bridge
        )),
        "{rules}"
    );

    f.mgr.remove_stack(&f.stack).unwrap();
    assert_eq!(f.our_links(), Vec::<String>::new());
    assert!(!f.ruleset().contains(&table), "{}", f.ruleset());
    assert!(f.mgr.networks().unwrap().is_empty());
    assert!(c1.ip(&["-o", "link"]).lines().all(|l| !l.contains("eth0")));
    // removing again is success
    f.mgr.remove_stack(&f.stack).unwrap();
}

#[test]
fn addresses_are_stable_across_restart_and_never_duplicated() {
    let f = Fixture::new();
    f.mgr.ensure_network(&f.spec("default")).unwrap();
    let c1 = Ns::new("stc");
    let first = f
        .mgr
        .attach(&f.stack, "c1", &c1.path(), &[f.att("default", &[])])
        .unwrap();
    // the container restarts in a new namespace; a new process opens the root
    drop(c1);
    let again = Ns::new("stc");
    let mgr2 = Manager::with(
        &f.roots,
        Some(f.host.path()),
        Arc::new(NftFirewall::default()),
    );
    let second = mgr2
        .attach(&f.stack, "c1", &again.path(), &[f.att("default", &[])])
        .unwrap();
    assert_eq!(first[0].ipv4, second[0].ipv4);
    assert_eq!(first[0].host_veth, second[0].host_veth);
    // other containers never get that address
    let mut seen = vec![first[0].ipv4];
    let mut nss = Vec::new();
    for i in 0..5 {
        let ns = Ns::new("stc");
        let e = mgr2
            .attach(
                &f.stack,
                &format!("x{i}"),
                &ns.path(),
                &[f.att("default", &[])],
            )
            .unwrap();
        assert!(!seen.contains(&e[0].ipv4), "{} handed out twice", e[0].ipv4);
        seen.push(e[0].ipv4);
        nss.push(ns);
    }
    // a static address that is taken is refused, before any change
    let ns = Ns::new("stc");
    let mut att = f.att("default", &[]);
    att.ipv4 = Some(first[0].ipv4);
    let err = mgr2.attach(&f.stack, "y", &ns.path(), &[att]).unwrap_err();
    assert!(err.to_string().contains("already assigned"), "{err}");
    assert!(ns.ip(&["-o", "link"]).lines().all(|l| !l.contains("eth0")));
    // released on detach: a fresh static request for it now works
    f.mgr.detach("c1").unwrap();
    let mut att = f.att("default", &[]);
    att.ipv4 = Some(first[0].ipv4);
    let e = f.mgr.attach(&f.stack, "y", &ns.path(), &[att]).unwrap();
    assert_eq!(e[0].ipv4, first[0].ipv4);
    f.mgr.remove_stack(&f.stack).unwrap();
    assert_eq!(f.our_links(), Vec::<String>::new());
}

#[test]
fn recover_removes_only_leftovers_of_this_root() {
    let f = Fixture::new();
    let net = f.mgr.ensure_network(&f.spec("default")).unwrap();
    let prefix = f.mgr.link_prefix().unwrap();
    // a crash left a veth of ours behind; an unrelated link must survive
    let leftover = format!("{prefix}v0abcdef");
    f.host.ip(&[
        "link",
        "add",
        &leftover,
        "type",
        "veth",
        "peer",
        "name",
        "tmp-peer0",
    ]);
    f.host.ip(&["link", "add", "foreign0", "type", "bridge"]);
    // and someone deleted our bridge
    f.host.ip(&["link", "del", &net.bridge]);
    f.mgr.recover().unwrap();
    let links = f.host.ip(&["-o", "link"]);
    assert!(!links.contains(&leftover), "{links}");
    assert!(links.contains("foreign0"), "{links}");
    assert!(links.contains(&net.bridge), "bridge not restored: {links}");
    f.mgr.remove_stack(&f.stack).unwrap();
    assert!(f.host.ip(&["-o", "link"]).contains("foreign0"));
    assert_eq!(f.our_links(), Vec::<String>::new());
}

#[test]
fn default_subnets_avoid_routed_ones_and_each_other() {
    let f = Fixture::new();
    // the host already routes 10.89.0.0/24 (say, a VPN)
    f.host.ip(&[
        "link", "add", "vpn0", "type", "veth", "peer", "name", "vpn0p",
    ]);
    f.host.ip(&["addr", "add", "10.89.0.1/24", "dev", "vpn0"]);
    f.host.ip(&["link", "set", "vpn0", "up"]);
    let a = f.mgr.ensure_network(&f.spec("a")).unwrap();
    let b = f.mgr.ensure_network(&f.spec("b")).unwrap();
    assert_eq!(a.subnet.to_string(), "10.89.1.0/24");
    assert_eq!(b.subnet.to_string(), "10.89.2.0/24");
    assert_ne!(a.bridge, b.bridge);
    // ensure is idempotent
    assert_eq!(f.mgr.ensure_network(&f.spec("a")).unwrap(), a);
    f.mgr.remove_network(&f.stack, "a").unwrap();
    f.mgr.remove_stack(&f.stack).unwrap();
    assert_eq!(f.our_links(), Vec::<String>::new());
}

#[test]
fn network_mode_none_has_only_loopback_up() {
    let f = Fixture::new();
    let ns = Ns::new("stc");
    ns.ip(&["link", "set", "lo", "down"]);
    f.mgr.loopback_only(&ns.path()).unwrap();
    let links = ns.ip(&["-o", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    assert!(f.mgr.network(&f.stack, "default").unwrap().is_none());
}

#[test]
fn an_unchanged_ruleset_is_applied_again_only_after_something_else_changed_the_ruleset() {
    let f = Fixture::new();
    f.mgr.ensure_network(&f.spec("default")).unwrap();
    let table = f.mgr.table_name().unwrap();
    // Rule handles are new with every apply (the batch flushes and refills).
    let handles = || {
        f.host
            .exec_ok(&["nft", "-a", "list", "table", "inet", &table])
    };
    let applied = handles();
    f.mgr.ensure_network(&f.spec("default")).unwrap();
    assert_eq!(
        handles(),
        applied,
        "the same batch with no other change: no nft run"
    );

    f.host
        .exec_ok(&["nft", "add", "table", "inet", "someone_else"]);
    f.mgr.ensure_network(&f.spec("default")).unwrap();
    assert_ne!(
        handles(),
        applied,
        "another program changed the ruleset: applied again"
    );

    f.host.exec_ok(&["nft", "flush", "table", "inet", &table]);
    f.mgr.ensure_network(&f.spec("default")).unwrap();
    assert!(
        handles().contains("masquerade"),
        "a flushed table is filled again"
    );
    f.mgr.remove_network(&f.stack, "default").unwrap();
}
