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
        ports: forwards([
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
        ]),
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

/// Two replicas (one with IPv6, one without) behind one port, and a
/// loopback port that the old and new container of an update share.
fn replicated() -> Input {
    let port =
        |host_ip: Option<IpAddr>, host_port, last: u8, v6: bool, container_port| PublishedPort {
            host_ip,
            host_port,
            container_addr: Ipv4Addr::new(10, 89, 0, last),
            container_addr6: v6.then(|| format!("fd00:89::{last}").parse().unwrap()),
            container_port,
            proto: Proto::Tcp,
        };
    let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Input {
        ports: forwards([
            port(None, 8080, 2, true, 80),
            port(lo, 9090, 2, true, 80),
            port(None, 8080, 3, false, 80),
            port(lo, 9090, 4, true, 8081),
        ]),
        ..input()
    }
}

#[test]
fn replicas_share_one_rule_per_port_and_family() {
    let input = replicated();
    assert_eq!(input.ports.len(), 2, "{:?}", input.ports);
    assert_eq!(input.ports[0].backends.len(), 2);
    insta::assert_snapshot!(serde_json::to_string_pretty(&build(&input)).unwrap());
}

#[test]
fn a_port_of_several_containers_is_a_round_robin_map_of_address_and_port() {
    let rules = rules(&replicated());
    let dnats: Vec<(&str, serde_json::Value)> = rules
        .iter()
        .flat_map(|(c, stmts)| {
            stmts.iter().filter_map(move |x| match x {
                Statement::DNAT(Some(nat)) => Some((*c, serde_json::to_value(nat).unwrap())),
                _ => None,
            })
        })
        .collect();
    let local: Vec<&serde_json::Value> = dnats
        .iter()
        .filter(|(c, _)| *c == "published-local")
        .map(|(_, v)| v)
        .collect();
    // 8080: v4 over both, v6 over the one with an IPv6 address (a plain
    // DNAT); 9090 on 127.0.0.1: v4 only, over both with their own ports
    assert_eq!(local.len(), 3, "{local:#?}");
    let map = &local[0]["addr"]["map"];
    assert_eq!(map["key"]["numgen"]["mod"], 2);
    assert_eq!(map["key"]["numgen"]["mode"], "inc");
    assert_eq!(
        map["data"]["set"],
        serde_json::json!([[0, {"concat": ["10.89.0.2", 80]}], [1, {"concat": ["10.89.0.3", 80]}]])
    );
    assert_eq!(local[1]["addr"], "fd00:89::2");
    assert_eq!(local[1]["port"], 80);
    assert_eq!(
        local[2]["addr"]["map"]["data"]["set"],
        serde_json::json!([[0, {"concat": ["10.89.0.2", 80]}], [1, {"concat": ["10.89.0.4", 8081]}]])
    );
    // the loopback port never reaches prerouting
    assert_eq!(dnats.iter().filter(|(c, _)| *c == "published").count(), 2);
}

#[test]
fn ipv6_replicas_get_an_ip6_map_and_v4_only_ones_stay_out_of_it() {
    let port = |last: u8, v6: bool| PublishedPort {
        host_ip: None,
        host_port: 7070,
        container_addr: Ipv4Addr::new(10, 89, 0, last),
        container_addr6: v6.then(|| format!("fd00:89::{last}").parse().unwrap()),
        container_port: 80,
        proto: Proto::Tcp,
    };
    let input = Input {
        ports: forwards([port(2, true), port(3, true), port(4, false)]),
        ..input()
    };
    let local: Vec<serde_json::Value> = rules(&input)
        .into_iter()
        .filter(|(c, _)| *c == "published-local")
        .flat_map(|(_, stmts)| stmts)
        .filter_map(|x| match x {
            Statement::DNAT(Some(nat)) => Some(serde_json::to_value(nat).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(local.len(), 2, "{local:#?}");
    assert_eq!(local[0]["family"], "ip");
    assert_eq!(local[0]["addr"]["map"]["key"]["numgen"]["mod"], 3);
    assert_eq!(local[1]["family"], "ip6");
    assert_eq!(local[1]["addr"]["map"]["key"]["numgen"]["mod"], 2);
    assert_eq!(
        local[1]["addr"]["map"]["data"]["set"],
        serde_json::json!([[0, {"concat": ["fd00:89::2", 80]}], [1, {"concat": ["fd00:89::3", 80]}]])
    );
}
