//! A container's place on the stack's networks: its own network namespace,
//! interfaces and addresses, published ports, and the /etc files that name them.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde_json::{Value, json};

use super::Error;
use crate::model::{NetworkMode, Port, Protocol, Service, Stack};
use crate::network::files::{self, HostEntry, ResolvConf};
use crate::network::{
    Attachment, Cidr4, Cidr6, Endpoint, Manager, NetworkSpec, PortMapping, Proto, PublishedPort,
    Sharing, sandbox,
};

/// The network module's view of a declared network.
fn network_spec(stack: &Stack, key: &str) -> Result<NetworkSpec, Error> {
    let n = &stack.networks[key];
    let bad = |s: &str| Error::Invalid(format!("network {key}: {s} is not a subnet"));
    let (mut subnet, mut gateway, mut ip_range, mut subnet6, mut gateway6) =
        (None, None, None, None, None);
    for c in &n.ipam {
        if c.subnet.contains(':') {
            subnet6 = Some(c.subnet.parse::<Cidr6>().map_err(|_| bad(&c.subnet))?);
            gateway6 = match c.gateway {
                Some(IpAddr::V6(g)) => Some(g),
                _ => None,
            };
        } else {
            subnet = Some(c.subnet.parse::<Cidr4>().map_err(|_| bad(&c.subnet))?);
            gateway = match c.gateway {
                Some(IpAddr::V4(g)) => Some(g),
                _ => None,
            };
            ip_range = c
                .ip_range
                .as_deref()
                .map(|r| r.parse::<Cidr4>().map_err(|_| bad(r)))
                .transpose()?;
        }
    }
    Ok(NetworkSpec {
        stack: stack.name.clone(),
        name: key.to_string(),
        host_name: Some(n.name.clone()),
        bridge: n.bridge_name.clone(),
        subnet,
        gateway,
        ip_range,
        internal: n.internal,
        enable_ipv6: n.enable_ipv6,
        subnet6,
        gateway6,
        mtu: n.mtu,
        labels: n.labels.clone(),
    })
}

/// Create (or find) every network a service of the stack joins.
pub fn ensure_networks(net: &Manager, stack: &Stack) -> Result<(), Error> {
    let used: std::collections::BTreeSet<&String> = stack
        .services
        .values()
        .filter(|s| s.network_mode == NetworkMode::Bridge)
        .flat_map(|s| s.networks.keys())
        .collect();
    for key in used {
        if stack.networks[key].external {
            external(net, stack, key)?;
            continue;
        }
        net.ensure_network(&network_spec(stack, key)?)?;
    }
    Ok(())
}

/// The `(stack, network)` that owns the `external: true` network `key`: found
/// by its name on the host, as another stack created it.
fn external(net: &Manager, stack: &Stack, key: &str) -> Result<(String, String), Error> {
    let name = &stack.networks[key].name;
    match net.network_named(name)? {
        Some(n) => Ok((n.stack, n.name)),
        None => Err(Error::Invalid(format!(
            "external network {name} (network {key}) does not exist; bring up the stack that \
             declares it first"
        ))),
    }
}

/// What networking gave a container.
#[derive(Debug, Default)]
pub struct Wired {
    /// Join this namespace (`None`: the host's, for `network_mode: host`).
    pub netns: Option<std::path::PathBuf>,
    pub endpoints: Vec<Endpoint>,
    pub published: Vec<PublishedPort>,
    /// The embedded resolver the container asks (its first network's
    /// gateway), when a process hosts one for this root; peers' names then
    /// come from it instead of /etc/hosts.
    pub resolver: Option<IpAddr>,
}

/// Give container `name` of `svc` its network namespace, interfaces and ports.
/// A `one_off` container (`stack run`) answers to its own name only, not to
/// the service's (as in Compose, which gives run containers no aliases).
pub fn wire(
    net: &Manager,
    run: &Path,
    stack: &Stack,
    svc: &Service,
    name: &str,
    standby: bool,
    one_off: bool,
) -> Result<Wired, Error> {
    match &svc.network_mode {
        NetworkMode::Host => Ok(Wired::default()),
        NetworkMode::Service(other) => {
            let first = super::desired::container_name(stack, &stack.services[other], 1);
            let path = sandbox::path(run, &first);
            if !sandbox::is_namespace(&path) {
                return Err(Error::Invalid(format!(
                    "service {}: network_mode service:{other}, but {first} has no network namespace (is it running?)",
                    svc.name
                )));
            }
            Ok(Wired {
                netns: Some(path),
                ..Default::default()
            })
        }
        NetworkMode::Container(other) => {
            let path = sandbox::path(run, other);
            if !sandbox::is_namespace(&path) {
                return Err(Error::Invalid(format!(
                    "service {}: network_mode container:{other}, but there is no container {other} with a network namespace under this state root (is it up?)",
                    svc.name
                )));
            }
            Ok(Wired {
                netns: Some(path),
                ..Default::default()
            })
        }
        NetworkMode::None => {
            let path = sandbox::path(run, name);
            sandbox::create(&path).map_err(|e| Error::Io {
                what: format!("network namespace {}", path.display()),
                source: e,
            })?;
            net.loopback_only(&path)?;
            Ok(Wired {
                netns: Some(path),
                ..Default::default()
            })
        }
        NetworkMode::Bridge => {
            let path = sandbox::path(run, name);
            sandbox::create(&path).map_err(|e| Error::Io {
                what: format!("network namespace {}", path.display()),
                source: e,
            })?;
            let mut attachments = Vec::new();
            for (key, sn) in &svc.networks {
                let (owner, network) = match stack.networks[key].external {
                    true => external(net, stack, key)?,
                    false => (stack.name.clone(), key.clone()),
                };
                let mut aliases = match one_off {
                    true => vec![name.to_string()],
                    false => vec![svc.name.clone(), name.to_string()],
                };
                aliases.extend(sn.aliases.iter().cloned());
                attachments.push(Attachment {
                    stack: owner,
                    network,
                    aliases,
                    ipv4: sn.ipv4_address,
                    ipv6: sn.ipv6_address,
                });
            }
            let endpoints = net.attach(&stack.name, name, &path, &attachments)?;
            let ports = port_mappings(&svc.ports)?;
            // Ports are published from the first network with a way out (each
            // look reads the network state: only with ports to publish).
            let exit = match ports.is_empty() {
                true => None,
                false => endpoints
                    .iter()
                    .find(
                        |e| matches!(net.network(&e.stack, &e.network), Ok(Some(n)) if !n.internal),
                    )
                    .or(endpoints.first()),
            };
            let published = match exit {
                Some(ep) => {
                    let sharing = sharing(stack, svc, standby);
                    net.publish_shared(&stack.name, name, &ports, ep.ipv4, &sharing)?
                }
                None => Vec::new(),
            };
            let resolver = match net.dns_hosted() {
                true => endpoints.first().map(|e| IpAddr::V4(e.gateway)),
                false => None,
            };
            Ok(Wired {
                netns: Some(path),
                endpoints,
                published,
                resolver,
            })
        }
    }
}

/// The replicas of a service share its fixed host ports: the kernel spreads
/// their connections over the replicas. A `standby` container (the new one of
/// a start-first update) holds them without traffic until the ports move to it.
fn sharing(stack: &Stack, svc: &Service, standby: bool) -> Sharing {
    Sharing {
        group: Some(sharing_group(stack, svc)),
        standby,
    }
}

/// The sharing group of `svc`'s replicas (see `Manager::publish_shared`).
pub fn sharing_group(stack: &Stack, svc: &Service) -> String {
    format!("{}/{}", stack.name, svc.name)
}

fn port_mappings(ports: &[Port]) -> Result<Vec<PortMapping>, Error> {
    ports
        .iter()
        .map(|p| {
            let proto = match p.protocol {
                Protocol::Tcp => Proto::Tcp,
                Protocol::Udp => Proto::Udp,
                Protocol::Sctp => {
                    return Err(Error::Invalid("sctp ports are not supported".into()));
                }
            };
            Ok(PortMapping {
                host_ip: p.host_ip,
                host_port: p.published.unwrap_or(0),
                container_port: p.target,
                proto,
            })
        })
        .collect()
}

/// Undo [`wire`]; what is already gone counts as done.
pub fn unwire(net: &Manager, run: &Path, name: &str) -> Vec<Error> {
    let mut errors = Vec::new();
    // Detach also unpublishes: one state change, one nftables apply.
    if let Err(e) = net.detach(name) {
        errors.push(e.into());
    }
    errors.extend(remove_netns(run, name));
    errors
}

/// Remove the container's network namespace (its interfaces go with it).
pub fn remove_netns(run: &Path, name: &str) -> Option<Error> {
    sandbox::remove(&sandbox::path(run, name))
        .err()
        .map(|e| Error::Io {
            what: format!("network namespace of {name}"),
            source: e,
        })
}

/// The interfaces of each of `names`, from one read of the network state.
pub fn endpoints_of(net: &Manager, names: &[String]) -> BTreeMap<String, Vec<Endpoint>> {
    net.endpoints_of(names).unwrap_or_default()
}

/// /etc/hosts entries for the containers sharing a network with `endpoints`:
/// their service names, container names and aliases. Service names resolve
/// through these without a resolver process.
pub fn peers(
    me: &str,
    endpoints: &[Endpoint],
    all: &BTreeMap<String, Vec<Endpoint>>,
) -> Vec<HostEntry> {
    let mine: Vec<(&str, &str)> = endpoints
        .iter()
        .map(|e| (e.stack.as_str(), e.network.as_str()))
        .collect();
    all.iter()
        .filter(|(name, _)| name.as_str() != me)
        .flat_map(|(_, eps)| eps)
        .filter(|e| mine.contains(&(e.stack.as_str(), e.network.as_str())))
        .map(|e| HostEntry {
            addr: IpAddr::V4(e.ipv4),
            names: e.aliases.clone(),
        })
        .collect()
}

/// The text of a container's /etc/hosts.
pub fn hosts_text(
    svc: &Service,
    hostname: &str,
    endpoints: &[Endpoint],
    peers: &[HostEntry],
) -> String {
    let own: Vec<HostEntry> = endpoints
        .iter()
        .map(|e| HostEntry {
            addr: IpAddr::V4(e.ipv4),
            names: vec![hostname.to_string()],
        })
        .collect();
    let mut extra = peers.to_vec();
    extra.extend(svc.extra_hosts.iter().map(|h| HostEntry {
        addr: h.ip,
        names: vec![h.host.clone()],
    }));
    let gateway = endpoints.first().map(|e| IpAddr::V4(e.gateway));
    files::hosts(&own, gateway, &extra)
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf of a container, written into
/// its directory and bind-mounted.
/// `resolver`: the embedded resolver to name in resolv.conf (else `dns:` or
/// the host's nameservers).
pub fn etc_files(
    dir: &Path,
    svc: &Service,
    hostname: &str,
    hosts: String,
    resolver: Option<IpAddr>,
) -> Result<Vec<Value>, Error> {
    let resolv = ResolvConf {
        dns: svc.dns.iter().filter_map(|d| d.parse().ok()).collect(),
        embedded: resolver,
        host: std::fs::read_to_string("/etc/resolv.conf").ok(),
        search: svc.dns_search.clone(),
        options: svc.dns_opt.clone(),
    };
    let etc = dir.join("etc");
    let write = |name: &str, text: String| -> Result<Value, Error> {
        let p = etc.join(name);
        crate::state::write_atomic(&p, text.as_bytes()).map_err(|e| Error::Io {
            what: p.display().to_string(),
            source: e,
        })?;
        Ok(
            json!({"destination": format!("/etc/{name}"), "type": "bind", "source": p, "options": ["rbind", "rprivate"]}),
        )
    };
    Ok(vec![
        write("hosts", hosts)?,
        write("hostname", files::hostname(hostname))?,
        write("resolv.conf", files::resolv_conf(&resolv))?,
    ])
}

/// Rewrite a running container's /etc/hosts in place: the bind mount pins the
/// file's inode, so a rename would not be seen.
pub fn rewrite_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text)
}
