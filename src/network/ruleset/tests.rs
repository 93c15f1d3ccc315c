use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::network::types::Proto;

fn input() -> Input {
    Input {
        table: "stack_abc123".into(),
        networks: vec![
            NetRules {
                bridge: "sabc123b0000001".into(),
                subnet: "10.89.0.0/24".parse().unwrap(),
                subnet6: Some("fd00:89::/64".parse().unwrap()),
                internal: false,
            },
            NetRules {
                bridge: "sabc123b0000002".into(),
                subnet: "10.89.1.0/24".parse().unwrap(),
                subnet6: None,
                internal: true,
            },
        ],
        ports: vec![
            PublishedPort {
                host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                container_addr6: Some("fd00:89::2".parse().unwrap()),
                host_port: 8080,
                container_addr: Ipv4Addr::new(10, 89, 0, 2),
                container_port: 80,
                proto: Proto::Tcp,
            },
            PublishedPort {
                host_ip: None,
                container_addr6: Some("fd00:89::3".parse().unwrap()),
                host_port: 5353,
                container_addr: Ipv4Addr::new(10, 89, 0, 3),
                container_port: 53,
                proto: Proto::Udp,
            },
        ],
    }
}

#[test]
fn ruleset_snapshot() {
    let json = serde_json::to_string_pretty(&build(&input())).unwrap();
    insta::assert_snapshot!(json);
}

#[test]
fn loopback_publish_is_never_in_prerouting() {
    let rules = rules(&input());
    let dnat_in = |chain: &str| {
        rules
            .iter()
            .filter(|(c, s)| *c == chain && s.iter().any(|x| matches!(x, Statement::DNAT(_))))
            .count()
    };
    // both ports are reachable from the host itself, only the all-address one
    // from outside
    // (v4 for both, v6 only for the all-address one: 127.0.0.1 is v4)
    assert_eq!(dnat_in("published-local"), 3);
    assert_eq!(dnat_in("published"), 2);
}

#[test]
fn admin_chain_is_created_but_never_flushed() {
    let batch = build(&input());
    let cmds: Vec<&NfCmd> = batch
        .objects
        .iter()
        .filter_map(|o| match o {
            NfObject::CmdObject(c) => Some(c),
            _ => None,
        })
        .collect();
    let flushed = |name: &str| {
        cmds.iter()
            .any(|c| matches!(c, NfCmd::Flush(FlushObject::Chain(ch)) if ch.name == name))
    };
    let added = |name: &str| {
        cmds.iter()
            .any(|c| matches!(c, NfCmd::Add(NfListObject::Chain(ch)) if ch.name == name))
    };
    assert!(added(ADMIN_CHAIN) && !flushed(ADMIN_CHAIN));
    assert!(flushed("forward") && flushed("published"));
}

#[test]
fn internal_network_gets_no_masquerade() {
    let only_internal = Input {
        networks: vec![input().networks[1].clone()],
        ports: vec![],
        ..input()
    };
    let rules = rules(&only_internal);
    assert!(
        !rules
            .iter()
            .any(|(_, s)| s.iter().any(|x| matches!(x, Statement::Masquerade(_))))
    );
    assert!(
        rules
            .iter()
            .filter(|(c, s)| *c == "forward" && s.contains(&Statement::Drop(None)))
            .count()
            == 2
    );
}
