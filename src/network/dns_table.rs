//! The DNS answer table (pure): built from the network state, replaced whole,
//! and the decision for one query against it.
//!
//! Names are per network: a container resolves the service names, container
//! names and aliases of the networks it is on, because it asks the resolver
//! on its own network's gateway, and a query whose source is outside that
//! network's subnet is refused.
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

use super::ipam::Cidr4;
use super::store::NetState;

/// The name that resolves to the host (the network's gateway).
pub const HOST_NAME: &str = "host.stack.internal";

/// Answers of every network of a state root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// By network key (`stack/name`).
    pub networks: BTreeMap<String, NetAnswers>,
}

/// One network's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetAnswers {
    pub subnet: Cidr4,
    pub gateway: Ipv4Addr,
    pub gateway6: Option<Ipv6Addr>,
    /// Lower-case name without trailing dot -> addresses (replicas).
    pub names: BTreeMap<String, Vec<Ipv4Addr>>,
    /// The same for IPv6 (AAAA).
    pub names6: BTreeMap<String, Vec<Ipv6Addr>>,
}

/// The table for `st`: every endpoint's aliases on its network.
pub fn answers(st: &NetState) -> Answers {
    let mut networks: BTreeMap<String, NetAnswers> = st
        .networks
        .iter()
        .map(|(k, n)| {
            let a = NetAnswers {
                subnet: n.subnet,
                gateway: n.gateway,
                gateway6: n.gateway6,
                names: BTreeMap::new(),
                names6: BTreeMap::new(),
            };
            (k.clone(), a)
        })
        .collect();
    for ep in st.endpoints.values().flatten() {
        let Some(net) = networks.get_mut(&format!("{}/{}", ep.stack, ep.network)) else {
            continue;
        };
        for alias in &ep.aliases {
            let ips = net.names.entry(normalize(alias)).or_default();
            if !ips.contains(&ep.ipv4) {
                ips.push(ep.ipv4);
            }
            if let Some(v6) = ep.ipv6 {
                let ips6 = net.names6.entry(normalize(alias)).or_default();
                if !ips6.contains(&v6) {
                    ips6.push(v6);
                }
            }
        }
    }
    for n in networks.values_mut() {
        n.names.values_mut().for_each(|v| v.sort());
        n.names6.values_mut().for_each(|v| v.sort());
    }
    Answers { networks }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: forward the query to the upstream resolvers.
    Forward,
    /// Not a DNS query: drop silently.
    Ignore,
}

/// Decide the answer to `query` from `src` on a network with table `net`
/// (`None`: the network is gone). `rotate` orders replica addresses
/// (round-robin across queries).
pub fn decide(net: Option<&NetAnswers>, src: IpAddr, query: &[u8], rotate: usize) -> Decision {
    let Ok(msg) = Message::from_vec(query) else {
        return Decision::Ignore;
    };
    if msg.metadata.message_type != MessageType::Query {
        return Decision::Ignore;
    }
    let id = msg.metadata.id;
    let refuse = |code| reply_bytes(error(&msg, id, code));
    let Some(net) = net else {
        return refuse(ResponseCode::Refused);
    };
    let from_member = matches!(src, IpAddr::V4(v4) if net.subnet.contains(v4));
    if !from_member {
        return refuse(ResponseCode::Refused);
    }
    if msg.metadata.op_code != OpCode::Query || msg.queries.len() != 1 {
        return refuse(ResponseCode::NotImp);
    }
    let q = &msg.queries[0];
    let name = normalize(&q.name().to_ascii());
    let (v4, v6): (Vec<Ipv4Addr>, Vec<Ipv6Addr>) = if name == HOST_NAME {
        (vec![net.gateway], net.gateway6.into_iter().collect())
    } else if let Some(ips) = net.names.get(&name) {
        let v6 = net.names6.get(&name).cloned().unwrap_or_default();
        (rotated(ips, rotate), rotated(&v6, rotate))
    } else {
        return Decision::Forward;
    };
    let mut resp = Message::response(id, OpCode::Query);
    resp.metadata.authoritative = true;
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(q.clone());
    // TTL 0: a recreated container's new address is seen at once.
    match q.query_type() {
        RecordType::A => {
            for ip in v4 {
                resp.add_answer(Record::from_rdata(q.name().clone(), 0, RData::A(A(ip))));
            }
        }
        RecordType::AAAA => {
            for ip in v6 {
                resp.add_answer(Record::from_rdata(
                    q.name().clone(),
                    0,
                    RData::AAAA(AAAA(ip)),
                ));
            }
        }
        _ => {}
    }
    // Other types (AAAA, MX, ...) of a known name: NOERROR with no data.
    reply_bytes(resp)
}

fn rotated<T: Clone>(v: &[T], k: usize) -> Vec<T> {
    let mut v = v.to_vec();
    if !v.is_empty() {
        let k = k % v.len();
        v.rotate_left(k);
    }
    v
}

fn error(req: &Message, id: u16, code: ResponseCode) -> Message {
    let mut m = Message::error_msg(id, req.metadata.op_code, code);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_queries(req.queries.iter().cloned());
    m
}

/// A SERVFAIL for `query` (upstreams unreachable or none configured).
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    error(&msg, msg.metadata.id, ResponseCode::ServFail)
        .to_vec()
        .ok()
}

/// RFC 1035 4.2.1 / RFC 6891 6.2.3: a UDP answer larger than the client's
/// limit (512 bytes, or its EDNS payload size) goes out with the TC bit and
/// no records, so the client asks again over TCP.
pub fn truncate_for_udp(query: &[u8], reply: Vec<u8>) -> Vec<u8> {
    let limit = Message::from_vec(query)
        .ok()
        .and_then(|q| q.edns.map(|e| e.max_payload()))
        .map_or(512, |p| usize::from(p.max(512)));
    if reply.len() <= limit {
        return reply;
    }
    match Message::from_vec(&reply) {
        Ok(m) => m.truncate().to_vec().unwrap_or(reply),
        Err(_) => reply,
    }
}

fn reply_bytes(m: Message) -> Decision {
    m.to_vec().map_or(Decision::Ignore, Decision::Reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn table() -> NetAnswers {
        let mut names = BTreeMap::new();
        names.insert(
            "web".into(),
            vec![Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 3)],
        );
        NetAnswers {
            subnet: "10.89.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 89, 0, 1),
            gateway6: None,
            names,
            names6: BTreeMap::new(),
        }
    }

    fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 4242;
        m.add_query(Query::query(Name::from_str(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    fn parse(d: Decision) -> Message {
        match d {
            Decision::Reply(b) => Message::from_vec(&b).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn a_records(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(ip)) => Some(ip),
                _ => None,
            })
            .collect()
    }

    const MEMBER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 89, 0, 9));

    #[test]
    fn replicas_rotate_and_case_is_ignored() {
        let t = table();
        let r0 = parse(decide(Some(&t), MEMBER, &query("WEB.", RecordType::A), 0));
        let r1 = parse(decide(Some(&t), MEMBER, &query("web", RecordType::A), 1));
        assert_eq!(r0.metadata.id, 4242);
        assert_eq!(
            a_records(&r0),
            [Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 3)]
        );
        assert_eq!(
            a_records(&r1),
            [Ipv4Addr::new(10, 89, 0, 3), Ipv4Addr::new(10, 89, 0, 2)]
        );
    }

    #[test]
    fn host_name_is_the_gateway_and_aaaa_is_empty() {
        let t = table();
        let r = parse(decide(
            Some(&t),
            MEMBER,
            &query("host.stack.internal.", RecordType::A),
            0,
        ));
        assert_eq!(a_records(&r), [Ipv4Addr::new(10, 89, 0, 1)]);
        let r = parse(decide(
            Some(&t),
            MEMBER,
            &query("web.", RecordType::AAAA),
            0,
        ));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
    }

    #[test]
    fn strangers_are_refused_and_unknown_names_forwarded() {
        let t = table();
        let outsider = IpAddr::V4(Ipv4Addr::new(10, 89, 1, 5));
        let r = parse(decide(Some(&t), outsider, &query("web.", RecordType::A), 0));
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(r.answers.is_empty());
        let r = parse(decide(None, MEMBER, &query("web.", RecordType::A), 0));
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert_eq!(
            decide(Some(&t), MEMBER, &query("example.org.", RecordType::A), 0),
            Decision::Forward
        );
        assert_eq!(decide(Some(&t), MEMBER, b"garbage", 0), Decision::Ignore);
    }

    #[test]
    fn large_udp_answers_are_truncated() {
        let mut names = BTreeMap::new();
        names.insert(
            "web".to_string(),
            (1..=60).map(|d| Ipv4Addr::new(10, 89, 0, d)).collect(),
        );
        let t = NetAnswers { names, ..table() };
        let q = query("web.", RecordType::A);
        let Decision::Reply(full) = decide(Some(&t), MEMBER, &q, 0) else {
            panic!("no reply")
        };
        assert!(full.len() > 512);
        let cut = Message::from_vec(&truncate_for_udp(&q, full)).unwrap();
        assert!(cut.metadata.truncation);
        assert!(cut.answers.is_empty());
    }

    #[test]
    fn answers_follow_endpoints() {
        use crate::network::store::NetRecord;
        use crate::network::types::Endpoint;
        let mut st = NetState::default();
        st.networks.insert(
            "s/default".into(),
            NetRecord {
                stack: "s".into(),
                name: "default".into(),
                host_name: "s_default".into(),
                orphaned: false,
                bridge: "b".into(),
                subnet: "10.89.0.0/24".parse().unwrap(),
                gateway: Ipv4Addr::new(10, 89, 0, 1),
                ip_range: None,
                internal: false,
                mtu: None,
                labels: Default::default(),
                allocations: Default::default(),
                cursor: None,
                subnet6: None,
                gateway6: None,
                allocations6: Default::default(),
                cursor6: None,
            },
        );
        for (c, ip) in [("web-1", 3), ("web-2", 2)] {
            st.endpoints.insert(
                c.into(),
                vec![Endpoint {
                    stack: "s".into(),
                    network: "default".into(),
                    ifname: "eth0".into(),
                    host_veth: format!("v{c}"),
                    ipv4: Ipv4Addr::new(10, 89, 0, ip),
                    prefix: 24,
                    gateway: Ipv4Addr::new(10, 89, 0, 1),
                    ipv6: Some(format!("fd00::{ip}").parse().unwrap()),
                    prefix6: 64,
                    gateway6: None,
                    aliases: vec!["Web".into(), c.into()],
                }],
            );
        }
        let a = answers(&st);
        let n = &a.networks["s/default"];
        assert_eq!(
            n.names["web"],
            [Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 3)]
        );
        assert_eq!(n.names["web-1"], [Ipv4Addr::new(10, 89, 0, 3)]);
        assert_eq!(n.names6["web"].len(), 2);
    }
}
