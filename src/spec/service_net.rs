//! The network side of a service: network_mode, networks, ports, expose,
//! extra_hosts, dns.
use std::collections::BTreeMap;
use std::net::IpAddr;

use super::ctx::Ctx;
use super::raw::{RawPort, RawServiceNetwork};
use super::shapes::{KeyValues, ListOrMap, OneOrMany, Scalar, ShortOrLong};
use crate::model::{ExposedPort, ExtraHost, NetworkMode, Port, Protocol, ServiceNetwork};

pub fn network_mode(ctx: &mut Ctx<'_>, mode: Option<&str>) -> NetworkMode {
    match mode {
        None | Some("bridge") | Some("default") => NetworkMode::Bridge,
        Some("host") => NetworkMode::Host,
        Some("none") => NetworkMode::None,
        Some(m) => match (m.strip_prefix("service:"), m.strip_prefix("container:")) {
            (Some(s), _) if !s.is_empty() => NetworkMode::Service(s.to_string()),
            (_, Some(c)) if !c.is_empty() => NetworkMode::Container(c.to_string()),
            _ => {
                ctx.err_help(
                    &["network_mode"],
                    format!("network_mode `{m}` is not supported"),
                    "use bridge, host, none, service:NAME or container:NAME",
                );
                NetworkMode::Bridge
            }
        },
    }
}

pub fn networks(
    ctx: &mut Ctx<'_>,
    mode: &NetworkMode,
    raw: Option<&ListOrMap<RawServiceNetwork>>,
) -> BTreeMap<String, ServiceNetwork> {
    let mut out = BTreeMap::new();
    if *mode != NetworkMode::Bridge {
        if raw.is_some_and(|r| !r.items.is_empty()) {
            ctx.err(
                &["networks"],
                "`networks` cannot be combined with network_mode host, none, service: or container:",
            );
        }
        return out;
    }
    for (name, n) in raw.iter().flat_map(|r| r.items.iter()) {
        let mut sn = ServiceNetwork::default();
        if let Some(n) = n {
            sn.aliases = n.aliases.clone().unwrap_or_default();
            if let Some(ip) = &n.ipv4_address {
                sn.ipv4_address =
                    ctx.parse(&["networks", name, "ipv4_address"], ip, "an IPv4 address");
            }
            if let Some(ip) = &n.ipv6_address {
                sn.ipv6_address =
                    ctx.parse(&["networks", name, "ipv6_address"], ip, "an IPv6 address");
            }
        }
        out.insert(name.clone(), sn);
    }
    if out.is_empty() {
        out.insert("default".to_string(), ServiceNetwork::default());
    }
    out
}

fn protocol(ctx: &mut Ctx<'_>, path: &[&str], p: &str) -> Protocol {
    match p {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => {
            ctx.err(
                path,
                format!("unknown protocol `{p}`: expected tcp, udp or sctp"),
            );
            Protocol::Tcp
        }
    }
}

/// `8080`, `8000-8010`: an inclusive port range.
fn port_range(text: &str) -> Option<(u16, u16)> {
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = text.parse().ok()?;
            (p, p)
        }
    };
    (a <= b && a > 0).then_some((a, b))
}

pub fn ports(ctx: &mut Ctx<'_>, raw: Option<&[ShortOrLong<RawPort>]>) -> Vec<Port> {
    let mut out = Vec::new();
    for (i, p) in raw.unwrap_or_default().iter().enumerate() {
        let idx = i.to_string();
        let path = ["ports", idx.as_str()];
        let parsed = match p {
            ShortOrLong::Short(s) => short_port(s),
            ShortOrLong::Long(l) => long_port(l),
        };
        match parsed {
            Ok((ip, published, target, proto)) => {
                let proto = protocol(ctx, &path, &proto);
                out.extend(expand(ctx, &path, ip, published, target, proto));
            }
            Err(e) => ctx.err_help(
                &path,
                e,
                "ports are [IP:][HOST[-RANGE]:]CONTAINER[-RANGE][/PROTOCOL], e.g. 127.0.0.1:8080:80/tcp",
            ),
        }
    }
    out
}

type PortParts = (Option<IpAddr>, Option<(u16, u16)>, (u16, u16), String);

fn short_port(s: &str) -> Result<PortParts, String> {
    let bad = |why: &str| format!("invalid port `{s}`: {why}");
    let (spec, proto) = match s.rsplit_once('/') {
        Some((spec, proto)) => (spec, proto.to_string()),
        None => (s, "tcp".to_string()),
    };
    // An IPv6 host address is written in brackets: [::1]:8080:80.
    let (ip, rest) = if let Some(inner) = spec.strip_prefix('[') {
        let (ip, rest) = inner.split_once("]:").ok_or_else(|| bad("unclosed `[`"))?;
        (Some(ip), rest)
    } else {
        match spec.matches(':').count() {
            0 | 1 => (None, spec),
            2 => {
                let (ip, rest) = spec.split_once(':').ok_or_else(|| bad("malformed"))?;
                (Some(ip), rest)
            }
            _ => return Err(bad("too many `:` (write IPv6 addresses in brackets)")),
        }
    };
    let ip = match ip {
        None | Some("") => None,
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| bad("host IP is not an IP address"))?,
        ),
    };
    let (published, target) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let target =
        port_range(target).ok_or_else(|| bad("container port must be 1-65535 or a range"))?;
    let published = match published {
        None | Some("") => None,
        Some(h) => Some(port_range(h).ok_or_else(|| bad("host port must be 1-65535 or a range"))?),
    };
    Ok((ip, published, target, proto))
}

fn long_port(l: &RawPort) -> Result<PortParts, String> {
    if let Some(mode) = l.mode.as_deref()
        && mode != "host"
        && mode != "ingress"
    {
        return Err(format!("unknown port mode `{mode}`: expected host"));
    }
    let target = port_range(&l.target.0)
        .filter(|(a, b)| a == b)
        .ok_or_else(|| format!("invalid target port `{}`: expected 1-65535", l.target.0))?;
    let published = match &l.published {
        None => None,
        Some(Scalar(p, _)) if p.is_empty() => None,
        Some(Scalar(p, _)) => {
            Some(port_range(p).ok_or_else(|| format!("invalid published port `{p}`"))?)
        }
    };
    let ip = match l.host_ip.as_deref() {
        None | Some("") => None,
        Some(ip) => Some(ip.parse().map_err(|_| format!("invalid host_ip `{ip}`"))?),
    };
    Ok((
        ip,
        published,
        target,
        l.protocol.clone().unwrap_or_else(|| "tcp".into()),
    ))
}

fn expand(
    ctx: &mut Ctx<'_>,
    path: &[&str],
    ip: Option<IpAddr>,
    published: Option<(u16, u16)>,
    target: (u16, u16),
    protocol: Protocol,
) -> Vec<Port> {
    let count = target.1 - target.0;
    match published {
        Some((a, b)) if b - a != count => {
            ctx.err(
                path,
                "host and container port ranges must have the same length (a host range for one container port is not supported: pick one port)",
            );
            Vec::new()
        }
        _ => (0..=count)
            .map(|k| Port {
                host_ip: ip,
                published: published.map(|(a, _)| a + k),
                target: target.0 + k,
                protocol,
            })
            .collect(),
    }
}

pub fn expose(ctx: &mut Ctx<'_>, raw: Option<&[Scalar]>) -> Vec<ExposedPort> {
    let mut out = Vec::new();
    for (i, e) in raw.unwrap_or_default().iter().enumerate() {
        let idx = i.to_string();
        let (spec, proto) = e.0.rsplit_once('/').unwrap_or((&e.0, "tcp"));
        let protocol = protocol(ctx, &["expose", &idx], proto);
        match port_range(spec) {
            Some((a, b)) => out.extend((a..=b).map(|port| ExposedPort { port, protocol })),
            None => ctx.err(&["expose", &idx], format!("invalid port `{}`", e.0)),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `host:ip` / `host=ip` list items or a `host: ip` map; IPv6 may be bracketed.
pub fn extra_hosts(ctx: &mut Ctx<'_>, raw: Option<&KeyValues>) -> Vec<ExtraHost> {
    let mut out = Vec::new();
    for (i, (k, v)) in raw
        .map(|r| r.items.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let (host, ip) = match v {
            Some(v) => (k.as_str(), v.as_str()),
            None => match k.split_once(':') {
                Some(pair) => pair,
                None => {
                    ctx.err(
                        &["extra_hosts", &i.to_string()],
                        format!("`{k}` is not host:ip"),
                    );
                    continue;
                }
            },
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        for one in ip.split(',') {
            match one.parse::<IpAddr>() {
                Ok(ip) => out.push(ExtraHost {
                    host: host.to_string(),
                    ip,
                }),
                Err(_) => ctx.err(
                    &["extra_hosts", &i.to_string()],
                    format!("`{one}` is not an IP address"),
                ),
            }
        }
    }
    out.sort();
    out
}

pub fn dns(ctx: &mut Ctx<'_>, raw: Option<&OneOrMany>) -> Vec<String> {
    let list = raw.map(|d| d.0.clone()).unwrap_or_default();
    for (i, d) in list.iter().enumerate() {
        if d.parse::<IpAddr>().is_err() {
            ctx.err(
                &["dns", &i.to_string()],
                format!("dns server `{d}` is not an IP address"),
            );
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_port_forms() {
        let ok: [(&str, PortParts); 5] = [
            ("80", (None, None, (80, 80), "tcp".into())),
            (
                "8080:80",
                (None, Some((8080, 8080)), (80, 80), "tcp".into()),
            ),
            (
                "127.0.0.1:8080:80/udp",
                (
                    Some("127.0.0.1".parse().expect("ip")),
                    Some((8080, 8080)),
                    (80, 80),
                    "udp".into(),
                ),
            ),
            (
                "[::1]:53:53/udp",
                (
                    Some("::1".parse().expect("ip")),
                    Some((53, 53)),
                    (53, 53),
                    "udp".into(),
                ),
            ),
            (
                "127.0.0.1::80",
                (
                    Some("127.0.0.1".parse().expect("ip")),
                    None,
                    (80, 80),
                    "tcp".into(),
                ),
            ),
        ];
        for (text, want) in ok {
            assert_eq!(short_port(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "0",
            "70000",
            "a:80",
            "1.2.3:80:80",
            "::1:80:80",
            "9-8:80",
            "[::1:80:80",
        ] {
            assert!(short_port(bad).is_err(), "{bad}");
        }
    }
}
