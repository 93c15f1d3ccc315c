//! Checks across the whole stack, after every service is converted:
//! references (networks, volumes, secrets, configs, depends_on, service:
//! namespaces), dependency cycles, duplicate container names, published
//! port clashes, static addresses outside their subnet, names.
use std::collections::BTreeMap;
use std::net::IpAddr;

use super::diag::{Diagnostic, did_you_mean};
use super::node::Node;
use super::objects::{cidr_contains, parse_cidr};
use crate::model::{MountKind, NetworkMode, Port, Protocol, Stack};

pub fn check(stack: &Stack, root: &Node, errors: &mut Vec<Diagnostic>) {
    let mut v = Validator {
        stack,
        root,
        errors,
    };
    v.names();
    for (name, svc) in &stack.services {
        v.references(name, svc);
    }
    v.cycles();
    v.container_names();
    v.port_clashes();
}

struct Validator<'a> {
    stack: &'a Stack,
    root: &'a Node,
    errors: &'a mut Vec<Diagnostic>,
}

fn valid_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Validator<'_> {
    fn at(&mut self, path: &[&str], msg: String) {
        self.errors
            .push(Diagnostic::new(self.root.span_at(path), msg));
    }

    fn undefined<'k>(
        &mut self,
        path: &[&str],
        what: &str,
        name: &str,
        known: impl Iterator<Item = &'k str>,
        svc: &str,
    ) {
        let d = Diagnostic::new(
            self.root.span_at(path),
            format!("service `{svc}` uses {what} `{name}`, which is not defined"),
        );
        let help = did_you_mean(name, known)
            .unwrap_or_else(|| format!("define it under top-level `{what}s`"));
        self.errors.push(d.with_help(help));
    }

    fn names(&mut self) {
        let project = &self.stack.name;
        let ok = !project.is_empty()
            && project.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && project
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
        if !ok {
            self.at(
                &["name"],
                format!("stack name `{project}` must be lower-case letters, digits, `-` and `_`, starting with a letter or digit"),
            );
        }
        for name in self.stack.services.keys() {
            if !valid_name(name) {
                self.at(
                    &["services", name],
                    format!("service name `{name}` must be letters, digits, `_`, `.`, `-`"),
                );
            }
        }
    }

    fn references(&mut self, name: &str, svc: &crate::model::Service) {
        // Name lists for "did you mean" are built only when a name is wrong.
        let stack = self.stack;
        let nets = || stack.networks.keys().map(String::as_str);
        let vols = || stack.volumes.keys().map(String::as_str);
        let services = || stack.services.keys().map(String::as_str);
        for (net, sn) in &svc.networks {
            let path = ["services", name, "networks", net.as_str()];
            let Some(def) = self.stack.networks.get(net) else {
                self.undefined(&path, "network", net, nets(), name);
                continue;
            };
            for ip in [
                sn.ipv4_address.map(IpAddr::V4),
                sn.ipv6_address.map(IpAddr::V6),
            ]
            .into_iter()
            .flatten()
            {
                let subnets: Vec<_> = def
                    .ipam
                    .iter()
                    .filter_map(|c| parse_cidr(&c.subnet))
                    .collect();
                if !subnets.is_empty() && !subnets.iter().any(|s| cidr_contains(*s, ip)) {
                    self.at(&path, format!("service `{name}`: address {ip} is outside every subnet of network `{net}`"));
                }
            }
        }
        for (i, m) in svc.volumes.iter().enumerate() {
            if let MountKind::Volume {
                source: Some(v), ..
            } = &m.kind
                && !self.stack.volumes.contains_key(v)
            {
                self.undefined(
                    &["services", name, "volumes", &i.to_string()],
                    "volume",
                    v,
                    vols(),
                    name,
                );
            }
        }
        for (key, defs) in [
            ("secrets", &self.stack.secrets),
            ("configs", &self.stack.configs),
        ] {
            for (i, f) in svc.secrets_or_configs(key).iter().enumerate() {
                if !defs.contains_key(&f.source) {
                    self.undefined(
                        &["services", name, key, &i.to_string()],
                        &key[..key.len() - 1],
                        &f.source,
                        defs.keys().map(String::as_str),
                        name,
                    );
                }
            }
        }
        for dep in svc.depends_on.keys() {
            if !self.stack.services.contains_key(dep) {
                self.undefined(
                    &["services", name, "depends_on", dep],
                    "service",
                    dep,
                    services(),
                    name,
                );
            }
        }
        let ns_refs = [
            (
                "network_mode",
                match &svc.network_mode {
                    NetworkMode::Service(s) => Some(s.as_str()),
                    _ => None,
                },
            ),
            (
                "ipc",
                svc.ipc.as_deref().and_then(|s| s.strip_prefix("service:")),
            ),
            (
                "pid",
                svc.pid.as_deref().and_then(|s| s.strip_prefix("service:")),
            ),
        ];
        for (key, target) in ns_refs {
            if let Some(t) = target {
                if t == name {
                    self.at(
                        &["services", name, key],
                        format!("service `{name}` cannot share its own namespace"),
                    );
                } else if !self.stack.services.contains_key(t) {
                    self.undefined(&["services", name, key], "service", t, services(), name);
                }
            }
        }
    }

    /// depends_on plus `service:` namespace sharing form a graph that must be acyclic.
    fn cycles(&mut self) {
        let edges: BTreeMap<&str, Vec<&str>> = self
            .stack
            .services
            .iter()
            .map(|(n, s)| {
                let mut deps: Vec<&str> = s.depends_on.keys().map(String::as_str).collect();
                if let NetworkMode::Service(t) = &s.network_mode {
                    deps.push(t);
                }
                (n.as_str(), deps)
            })
            .collect();
        let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on stack, 2 = done
        let mut reported = false;
        for start in edges.keys() {
            let mut stack = vec![*start];
            if !reported && let Some(cycle) = dfs(start, &edges, &mut state, &mut stack) {
                let first = cycle[0];
                let second = cycle.get(1).copied().unwrap_or(first);
                self.at(
                    &["services", first, "depends_on", second],
                    format!("dependency cycle: {}", cycle.join(" -> ")),
                );
                reported = true;
            }
        }
    }

    fn container_names(&mut self) {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, svc) in &self.stack.services {
            if let Some(c) = &svc.container_name
                && let Some(other) = seen.insert(c, name)
            {
                self.at(
                    &["services", name, "container_name"],
                    format!("container name `{c}` is used by services `{other}` and `{name}`"),
                );
            }
        }
    }

    fn port_clashes(&mut self) {
        let mut taken: Vec<(&str, usize, &Port)> = Vec::new();
        for (name, svc) in &self.stack.services {
            for (i, p) in svc.ports.iter().enumerate() {
                let Some(published) = p.published else {
                    continue;
                };
                let clash = taken.iter().find(|(_, _, q)| {
                    q.published == Some(published)
                        && q.protocol == p.protocol
                        && ips_overlap(q.host_ip, p.host_ip)
                });
                let idx = i.to_string();
                if let Some((other, _, _)) = clash {
                    self.at(
                        &["services", name, "ports", &idx],
                        format!(
                            "service `{name}` publishes {}/{} which service `{other}` already publishes",
                            published,
                            proto(p.protocol)
                        ),
                    );
                } else if svc.replicas > 1 && is_loopback6(p.host_ip) {
                    // Replicas share other host ports (the kernel spreads the
                    // connections); a [::1] port is one proxy's socket.
                    self.at(
                        &["services", name, "ports", &idx],
                        format!("service `{name}` has {} replicas but publishes fixed host port [::1]:{published}, which only one container can hold: publish it on 127.0.0.1 or another address, or use one replica", svc.replicas),
                    );
                }
                taken.push((name, i, p));
            }
        }
    }
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn is_loopback6(ip: Option<IpAddr>) -> bool {
    matches!(ip, Some(IpAddr::V6(h)) if h.is_loopback())
}

fn ips_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        _ => true,
    }
}

fn dfs<'a>(
    node: &'a str,
    edges: &BTreeMap<&'a str, Vec<&'a str>>,
    state: &mut BTreeMap<&'a str, u8>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    match state.get(node) {
        Some(2) => return None,
        Some(1) => {
            let start = path.iter().position(|n| *n == node).unwrap_or(0);
            let mut cycle = path[start..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        _ => {}
    }
    state.insert(node, 1);
    for next in edges.get(node).into_iter().flatten() {
        if !edges.contains_key(next) {
            continue;
        }
        if state.get(next) == Some(&1) {
            let start = path.iter().position(|n| n == next).unwrap_or(0);
            let mut cycle = path[start..].to_vec();
            cycle.push(next);
            return Some(cycle);
        }
        path.push(next);
        if let Some(c) = dfs(next, edges, state, path) {
            return Some(c);
        }
        path.pop();
    }
    state.insert(node, 2);
    None
}
