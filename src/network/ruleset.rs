//! The nftables table of one state root, computed as a value (STYLE.md rule 3).
//!
//! One `inet` table per state root holds everything: the same fixed chains
//! always exist, and every apply flushes and refills them in ONE `nft`
//! transaction, so a reader never sees half a ruleset and removing a network
//! or a port is just rebuilding without it. Nothing outside our table is read
//! or written, so firewalld, ufw or a host `inet filter` table keep working
//! (their drop verdicts still apply: an accept here is not final for them).
//!
//! Chains (priorities per nft(8) "CHAINS"):
//! - `guard` (filter, prerouting, -300): drops packets from our bridges to
//!   127.0.0.0/8. We set `route_localnet=1` on our bridges so DNAT'd loopback
//!   traffic may leave through them; without this guard a container could
//!   reach the host's loopback-only services (CVE-2020-8558, kube-proxy).
//! - `prerouting` (nat, -100): traffic to a local address, but never to
//!   127.0.0.0/8 (a neighbour's crafted packet to 127.0.0.1 must not be
//!   DNAT'd: Docker's CVE-2020-8558-style hole), jumps to `published`.
//! - `output` (nat, -100): the host's own connections to a local address jump
//!   to `published-local`, which also holds the 127.0.0.1 publishes: loopback
//!   publishes exist only here, so only host processes can reach them.
//! - `postrouting` (nat, 100): masquerade egress of non-internal subnets;
//!   masquerade hairpin (container -> host port -> container on the same
//!   bridge) and loopback-sourced DNAT traffic.
//! - `forward` (filter, 0): into a bridge only replies, same-bridge traffic
//!   and DNAT'd connections (after the administrator's `filter-published`
//!   chain); everything else is dropped, so routing the container subnet via
//!   the host reaches nothing. Internal networks neither enter nor leave.
//! - `filter-published`: ours to create, never flushed: the administrator's
//!   rules for published ports (e.g. `nft add rule inet stack_<id>
//!   filter-published ip saddr != 192.168.1.0/24 drop`). It survives every
//!   apply; only removing the last network (the whole table) deletes it.
//!
//! A host port published by several containers (the replicas of one service,
//! or the old and new container of a start-first update) is ONE rule per
//! chain and family whose DNAT target is a map over the containers:
//! `dnat ip to numgen inc mod N map { 0 : A . 80, 1 : B . 80 }`, so each new
//! connection goes to the next container in turn (conntrack keeps a
//! connection on the container it started with). Changing the members is a
//! rebuild like any other, so a scale or a switch is one atomic transaction.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nftables::expr::{CT, Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression};
use nftables::expr::{Map, NgMode, Numgen, Payload, PayloadField, Prefix, SetItem};
use nftables::schema::{Chain, FlushObject, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{JumpTarget, Match, NAT, NATFamily, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::ipam::Cidr4;
use super::ipam6::Cidr6;
use super::types::{Proto, PublishedPort};

/// The administrator's chain: created, never flushed.
pub const ADMIN_CHAIN: &str = "filter-published";

/// One network as the ruleset sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: Cidr4,
    pub subnet6: Option<Cidr6>,
    pub internal: bool,
}

/// Everything the table is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Input {
    pub table: String,
    pub networks: Vec<NetRules>,
    pub ports: Vec<Forward>,
}

/// One published host port and the containers its connections are spread over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `None`: every address of the host.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    /// Never empty; connections go to each in turn.
    pub backends: Vec<Backend>,
}

/// A container behind a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub addr: Ipv4Addr,
    /// Target of IPv6 connections; a backend without one gets none.
    pub addr6: Option<Ipv6Addr>,
    pub port: u16,
}

/// Group published ports by host address, port and protocol: the containers
/// that publish the same one share it (in the order given).
pub fn forwards(ports: impl IntoIterator<Item = PublishedPort>) -> Vec<Forward> {
    let mut by_key: BTreeMap<(Option<IpAddr>, u16, Proto), Vec<Backend>> = BTreeMap::new();
    for p in ports {
        by_key
            .entry((p.host_ip, p.host_port, p.proto))
            .or_default()
            .push(Backend {
                addr: p.container_addr,
                addr6: p.container_addr6,
                port: p.container_port,
            });
    }
    by_key
        .into_iter()
        .map(|((host_ip, host_port, proto), backends)| Forward {
            host_ip,
            host_port,
            proto,
            backends,
        })
        .collect()
}

/// (name, type, hook, priority) of our base chains.
const BASE: [(&str, NfChainType, NfHook, i32); 5] = [
    ("guard", NfChainType::Filter, NfHook::Prerouting, -300),
    ("prerouting", NfChainType::NAT, NfHook::Prerouting, -100),
    ("output", NfChainType::NAT, NfHook::Output, -100),
    ("postrouting", NfChainType::NAT, NfHook::Postrouting, 100),
    ("forward", NfChainType::Filter, NfHook::Forward, 0),
];
const REGULAR: [&str; 2] = ["published", "published-local"];

/// The whole batch: create table and chains, flush ours, add every rule.
pub fn build(input: &Input) -> Nftables<'static> {
    let t = input.table.clone();
    let mut cmds = vec![NfCmd::Add(NfListObject::Table(table(&t)))];
    for (name, ty, hook, prio) in BASE {
        let mut c = chain(&t, name);
        c._type = Some(ty);
        c.hook = Some(hook);
        c.prio = Some(prio);
        c.policy = Some(NfChainPolicy::Accept);
        cmds.push(NfCmd::Add(NfListObject::Chain(c)));
    }
    for name in REGULAR.iter().chain([&ADMIN_CHAIN]) {
        cmds.push(NfCmd::Add(NfListObject::Chain(chain(&t, name))));
    }
    for name in BASE.iter().map(|b| b.0).chain(REGULAR) {
        cmds.push(NfCmd::Flush(FlushObject::Chain(chain(&t, name))));
    }
    for (chain_name, stmts) in rules(input) {
        cmds.push(NfCmd::Add(NfListObject::Rule(Rule {
            family: NfFamily::INet,
            table: t.clone().into(),
            chain: chain_name.into(),
            expr: stmts.into(),
            handle: None,
            index: None,
            comment: None,
        })));
    }
    Nftables {
        objects: cmds.into_iter().map(NfObject::CmdObject).collect(),
    }
}

/// The batch that removes the table (and with it every rule of this root);
/// adding it first makes "already gone" succeed (rule 7).
pub fn delete_if_exists(table_name: &str) -> Nftables<'static> {
    let t = || NfListObject::Table(table(table_name));
    Nftables {
        objects: vec![
            NfObject::CmdObject(NfCmd::Add(t())),
            NfObject::CmdObject(NfCmd::Delete(t())),
        ]
        .into(),
    }
}

type RuleSpec = (&'static str, Vec<Statement<'static>>);

fn rules(input: &Input) -> Vec<RuleSpec> {
    let mut out: Vec<RuleSpec> = vec![
        (
            "prerouting",
            vec![
                m(
                    Operator::NEQ,
                    ip("daddr"),
                    prefix(Ipv4Addr::new(127, 0, 0, 0), 8),
                ),
                m(Operator::EQ, fib_daddr_type(), s("local")),
                jump("published"),
            ],
        ),
        (
            // IPv6: ::1 from outside never gets this far, the kernel drops
            // loopback addresses on non-loopback interfaces (ip6_input.c).
            "prerouting",
            vec![
                m(Operator::EQ, meta(MetaKey::Nfproto), s("ipv6")),
                m(Operator::EQ, fib_daddr_type(), s("local")),
                jump("published"),
            ],
        ),
        (
            "output",
            vec![
                m(Operator::EQ, fib_daddr_type(), s("local")),
                jump("published-local"),
            ],
        ),
    ];
    for n in &input.networks {
        out.extend(network_rules(n));
    }
    for p in &input.ports {
        out.extend(port_rules(p));
    }
    out
}

fn network_rules(n: &NetRules) -> Vec<RuleSpec> {
    let br = || s(&n.bridge);
    let net = || prefix(n.subnet.network(), n.subnet.prefix);
    let iif = |op| m(op, meta(MetaKey::Iifname), br());
    let oif = |op| m(op, meta(MetaKey::Oifname), br());
    let mut r: Vec<RuleSpec> = vec![(
        "guard",
        vec![
            iif(Operator::EQ),
            m(
                Operator::EQ,
                ip("daddr"),
                prefix(Ipv4Addr::new(127, 0, 0, 0), 8),
            ),
            Statement::Drop(None),
        ],
    )];
    r.push((
        "forward",
        vec![
            iif(Operator::EQ),
            oif(Operator::EQ),
            Statement::Accept(None),
        ],
    ));
    if n.internal {
        r.push(("forward", vec![iif(Operator::EQ), Statement::Drop(None)]));
        r.push(("forward", vec![oif(Operator::EQ), Statement::Drop(None)]));
        return r;
    }
    let state = ct("state");
    r.push((
        "forward",
        vec![
            oif(Operator::EQ),
            m(
                Operator::IN,
                state,
                Expression::List(vec![s("established"), s("related")]),
            ),
            Statement::Accept(None),
        ],
    ));
    let dnat = || m(Operator::IN, ct("status"), s("dnat"));
    r.push((
        "forward",
        vec![oif(Operator::EQ), dnat(), jump(ADMIN_CHAIN)],
    ));
    r.push((
        "forward",
        vec![oif(Operator::EQ), dnat(), Statement::Accept(None)],
    ));
    r.push(("forward", vec![oif(Operator::EQ), Statement::Drop(None)]));
    let masq = Statement::Masquerade(None);
    r.push((
        "postrouting",
        vec![
            m(Operator::EQ, ip("saddr"), net()),
            oif(Operator::NEQ),
            masq.clone(),
        ],
    ));
    r.push((
        "postrouting",
        vec![
            oif(Operator::EQ),
            dnat(),
            m(Operator::EQ, ip("saddr"), net()),
            masq.clone(),
        ],
    ));
    r.push((
        "postrouting",
        vec![
            oif(Operator::EQ),
            m(
                Operator::EQ,
                ip("saddr"),
                prefix(Ipv4Addr::new(127, 0, 0, 0), 8),
            ),
            masq.clone(),
        ],
    ));
    if let Some(n6) = n.subnet6 {
        let net6 = || prefix(n6.network(), n6.prefix);
        let saddr6 = || m(Operator::EQ, payload("ip6", "saddr"), net6());
        r.push((
            "postrouting",
            vec![saddr6(), oif(Operator::NEQ), masq.clone()],
        ));
        r.push((
            "postrouting",
            vec![oif(Operator::EQ), dnat(), saddr6(), masq],
        ));
    }
    r
}

fn port_rules(p: &Forward) -> Vec<RuleSpec> {
    let mut r = Vec::new();
    let v4: Vec<(IpAddr, u16)> = p
        .backends
        .iter()
        .map(|b| (IpAddr::V4(b.addr), b.port))
        .collect();
    let v6: Vec<(IpAddr, u16)> = p
        .backends
        .iter()
        .filter_map(|b| b.addr6.map(|a| (IpAddr::V6(a), b.port)))
        .collect();
    for (targets, proto, family) in [(v4, "ip", NATFamily::IP), (v6, "ip6", NATFamily::IP6)] {
        if targets.is_empty() {
            continue;
        }
        // host address of the other family: no rule of this family
        if p.host_ip
            .is_some_and(|h| h.is_ipv4() != (family == NATFamily::IP))
        {
            continue;
        }
        let mut stmts = vec![m(Operator::EQ, meta(MetaKey::L4proto), s(p.proto.as_str()))];
        if let Some(hip) = p.host_ip {
            stmts.push(m(
                Operator::EQ,
                payload(proto, "daddr"),
                s(&hip.to_string()),
            ));
        } else if family == NATFamily::IP6 {
            // nft needs the family spelled out before an ip6 NAT in inet
            stmts.push(m(Operator::EQ, meta(MetaKey::Nfproto), s("ipv6")));
        }
        stmts.push(m(
            Operator::EQ,
            th_dport(),
            Expression::Number(u32::from(p.host_port)),
        ));
        stmts.push(dnat(&targets, family));
        let loopback = p.host_ip.is_some_and(|ip| ip.is_loopback());
        r.push(("published-local", stmts.clone()));
        if !loopback {
            r.push(("published", stmts));
        }
    }
    r
}

/// DNAT to one target, or round-robin over several: `numgen inc` counts the
/// connections this rule translates (only a connection's first packet goes
/// through NAT) and the map picks address and port by the count.
fn dnat(targets: &[(IpAddr, u16)], family: NATFamily) -> Statement<'static> {
    let (addr, port) = match targets {
        [(addr, port)] => (
            s(&addr.to_string()),
            Some(Expression::Number(u32::from(*port))),
        ),
        _ => {
            let items = targets
                .iter()
                .zip(0u32..)
                .map(|((addr, port), i)| {
                    SetItem::Mapping(
                        Expression::Number(i),
                        Expression::Named(NamedExpression::Concat(vec![
                            s(&addr.to_string()),
                            Expression::Number(u32::from(*port)),
                        ])),
                    )
                })
                .collect();
            let n = u32::try_from(targets.len()).unwrap_or(u32::MAX);
            let map = Map {
                key: Expression::Named(NamedExpression::Numgen(Numgen {
                    mode: NgMode::Inc,
                    ng_mod: n,
                    offset: None,
                })),
                data: Expression::Named(NamedExpression::Set(items)),
            };
            (Expression::Named(NamedExpression::Map(Box::new(map))), None)
        }
    };
    Statement::DNAT(Some(NAT {
        addr: Some(addr),
        family: Some(family),
        port,
        flags: None,
    }))
}

fn table(name: &str) -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: name.to_string().into(),
        handle: None,
    }
}

fn chain(table: &str, name: &str) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: table.to_string().into(),
        name: name.to_string().into(),
        ..Chain::default()
    }
}

fn s(v: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(v.to_string()))
}

fn m(op: Operator, left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn jump(target: &str) -> Statement<'static> {
    Statement::Jump(JumpTarget {
        target: target.to_string().into(),
    })
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.to_string().into(),
        family: None,
        dir: None,
    }))
}

fn payload(protocol: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.to_string().into(),
            field: field.to_string().into(),
        },
    )))
}

fn ip(field: &str) -> Expression<'static> {
    payload("ip", field)
}

fn th_dport() -> Expression<'static> {
    payload("th", "dport")
}

fn prefix(addr: impl std::fmt::Display, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(&addr.to_string())),
        len: u32::from(len),
    }))
}

fn fib_daddr_type() -> Expression<'static> {
    Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: [FibFlag::Daddr].into_iter().collect(),
    }))
}

#[cfg(test)]
mod tests;
