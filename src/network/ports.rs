//! Published ports: conflict checks (pure), the host probe, and
//! `Manager::publish`/`unpublish`.
//!
//! Order (rule 6): every requested port is checked — against the ports this
//! root already publishes and by binding it on the host — before the state or
//! the ruleset changes, so a conflict changes nothing.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use super::group::Step;
use super::manager::Manager;
use super::store::{NetState, Published};
use super::types::{PortMapping, Proto, PublishedPort};
use super::{Error, Result, netns};

/// Who in `state` (other than `except`) already publishes `ip:port/proto`.
/// `None` as an address means "all addresses" and conflicts with every one.
pub fn taken_by(
    state: &NetState,
    except: &str,
    ip: Option<IpAddr>,
    port: u16,
    proto: Proto,
) -> Option<String> {
    state
        .published
        .iter()
        .filter(|(cid, _)| cid.as_str() != except)
        .find_map(|(cid, p)| {
            p.ports
                .iter()
                .any(|q| {
                    q.proto == proto
                        && q.host_port == port
                        && (q.host_ip.is_none() || ip.is_none() || q.host_ip == ip)
                })
                .then(|| format!(" by container {cid} of stack {}", p.stack))
        })
}

/// Bind `ip:port` to see whether a process of the host uses it; port 0 asks
/// the kernel for a free one. The socket is returned so that several random
/// picks in one request cannot collide.
fn probe(ip: Option<IpAddr>, port: u16, proto: Proto) -> std::io::Result<(u16, Holder)> {
    let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        Proto::Tcp => {
            let l = TcpListener::bind(addr)?;
            Ok((l.local_addr()?.port(), Holder::Tcp(l)))
        }
        Proto::Udp => {
            let s = UdpSocket::bind(addr)?;
            Ok((s.local_addr()?.port(), Holder::Udp(s)))
        }
    }
}

#[allow(dead_code)] // held only for its Drop
enum Holder {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// How many random ports to try before giving up (each pick that collides
/// with a port this root publishes costs one try).
const RANDOM_TRIES: usize = 64;

/// Resolve every mapping to a concrete free host port, or fail on the first
/// conflict. Runs the bind probes on a thread in the host namespace.
fn choose_ports(
    m: &Manager,
    state: &NetState,
    container: &str,
    ports: &[PortMapping],
    container_addr: Ipv4Addr,
    container_addr6: Option<Ipv6Addr>,
) -> Result<Vec<PublishedPort>> {
    for (i, p) in ports.iter().enumerate() {
        check_family(p, container_addr6)?;
        if p.host_port != 0 {
            if let Some(by) = taken_by(state, container, p.host_ip, p.host_port, p.proto) {
                return Err(in_use(p.host_ip, p.host_port, p.proto, by));
            }
            let dup = ports[..i].iter().any(|q| {
                q.proto == p.proto
                    && q.host_port == p.host_port
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if dup {
                return Err(in_use(
                    p.host_ip,
                    p.host_port,
                    p.proto,
                    " twice in the same request".into(),
                ));
            }
        }
    }
    let ports = ports.to_vec();
    let state_for_probe = state.clone();
    let container = container.to_string();
    netns::run(m.host_ns(), move || {
        let mut held = Vec::new();
        let mut out = Vec::new();
        for p in ports {
            let host_port = if p.host_port != 0 {
                let (port, h) = probe(p.host_ip, p.host_port, p.proto).map_err(|_| {
                    in_use(
                        p.host_ip,
                        p.host_port,
                        p.proto,
                        " by a process on the host".into(),
                    )
                })?;
                held.push(h);
                port
            } else {
                random_port(&state_for_probe, &container, p, &mut held)?
            };
            out.push(PublishedPort {
                host_ip: p.host_ip,
                host_port,
                container_addr,
                container_addr6,
                container_port: p.container_port,
                proto: p.proto,
            });
        }
        Ok(out)
    })
}

/// IPv6 host addresses need an IPv6 container, and `::1` cannot be DNAT'd:
/// IPv6 has no `route_localnet`, a packet from ::1 never leaves `lo`
/// (RFC 4291 2.5.3), so it would need a userland proxy, which we do not run.
fn check_family(p: &PortMapping, container_addr6: Option<Ipv6Addr>) -> Result<()> {
    let Some(IpAddr::V6(h)) = p.host_ip else {
        return Ok(());
    };
    let network = format!("port {}", p.host_port);
    if h.is_loopback() {
        return Err(Error::Unsupported {
            network,
            feature: "publishing on [::1] (use 127.0.0.1)".into(),
        });
    }
    if container_addr6.is_none() {
        return Err(Error::InvalidSpec {
            network,
            reason: format!(
                "host address {h} is IPv6 but the container has no IPv6 address (enable_ipv6)"
            ),
        });
    }
    Ok(())
}

fn random_port(
    state: &NetState,
    container: &str,
    p: PortMapping,
    held: &mut Vec<Holder>,
) -> Result<u16> {
    for _ in 0..RANDOM_TRIES {
        let (port, h) =
            probe(p.host_ip, 0, p.proto).map_err(Error::io("pick a random host port"))?;
        held.push(h);
        if taken_by(state, container, p.host_ip, port, p.proto).is_none() {
            return Ok(port);
        }
    }
    Err(in_use(
        p.host_ip,
        0,
        p.proto,
        ": no free random port found".into(),
    ))
}

fn in_use(ip: Option<IpAddr>, port: u16, proto: Proto, by: String) -> Error {
    Error::PortInUse {
        ip: ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        port,
        proto: proto.as_str(),
        by,
    }
}

impl Manager {
    /// Publish `ports` of `container` of stack `stack` (which has
    /// `container_addr` on one of this root's networks). Replaces what the
    /// container published before. A port in use (by another container of this
    /// root or a host process) is an error and nothing changes. Host port 0
    /// picks a free port; the chosen ports are returned (for `stack port`/`ps`).
    /// Concurrent calls share one state save and one nftables apply.
    pub fn publish(
        &self,
        stack: &str,
        container: &str,
        ports: &[PortMapping],
        container_addr: Ipv4Addr,
    ) -> Result<Vec<PublishedPort>> {
        let (m, stack, id, ports) = (
            self.clone(),
            stack.to_string(),
            container.to_string(),
            ports.to_vec(),
        );
        self.submit(move |st| {
            check_network(st, container_addr)?;
            let addr6 = st
                .endpoints
                .get(&id)
                .and_then(|eps| eps.iter().find(|e| e.ipv4 == container_addr))
                .and_then(|e| e.ipv6);
            let chosen = choose_ports(&m, st, &id, &ports, container_addr, addr6)?;
            let entry = Published {
                stack,
                ports: chosen.clone(),
            };
            let before = st.published.insert(id.clone(), entry);
            Ok(Step {
                value: chosen,
                firewall: true,
                undo: Some(Box::new(move |st: &mut NetState| match before {
                    Some(p) => {
                        st.published.insert(id, p);
                    }
                    None => {
                        st.published.remove(&id);
                    }
                })),
            })
        })
    }

    /// Remove every port `container` publishes; nothing published is success.
    pub fn unpublish(&self, container: &str) -> Result<()> {
        let id = container.to_string();
        self.submit(move |st| {
            Ok(Step {
                firewall: st.published.remove(&id).is_some(),
                value: (),
                undo: None,
            })
        })
    }
}

/// `container_addr` must be on a non-internal network of this root.
fn check_network(st: &NetState, container_addr: Ipv4Addr) -> Result<()> {
    match st
        .networks
        .values()
        .find(|n| n.subnet.contains(container_addr))
    {
        None => Err(Error::InvalidSpec {
            network: "?".into(),
            reason: format!(
                "container address {container_addr} is on no network of this state root"
            ),
        }),
        Some(n) if n.internal => Err(Error::InvalidSpec {
            network: format!("{}/{}", n.stack, n.name),
            reason: "ports cannot be published from an internal network".into(),
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pp(ip: Option<[u8; 4]>, port: u16) -> PublishedPort {
        PublishedPort {
            host_ip: ip.map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            container_addr6: None,
            host_port: port,
            container_addr: Ipv4Addr::new(10, 89, 0, 2),
            container_port: 80,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn all_addresses_conflict_with_specific_ones_and_protocols_do_not() {
        let mut st = NetState::default();
        st.published.insert(
            "a".into(),
            Published {
                stack: "s1".into(),
                ports: vec![pp(Some([127, 0, 0, 1]), 8080), pp(None, 9090)],
            },
        );
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let other = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(taken_by(&st, "b", lo, 8080, Proto::Tcp).is_some());
        assert!(taken_by(&st, "b", None, 8080, Proto::Tcp).is_some());
        assert!(taken_by(&st, "b", other, 8080, Proto::Tcp).is_none());
        assert!(taken_by(&st, "b", other, 9090, Proto::Tcp).is_some());
        assert!(taken_by(&st, "b", lo, 8080, Proto::Udp).is_none());
        // a container's own ports do not conflict with its new request
        assert!(taken_by(&st, "a", lo, 8080, Proto::Tcp).is_none());
        let by = taken_by(&st, "b", lo, 8080, Proto::Tcp).unwrap_or_default();
        assert!(by.contains("container a of stack s1"), "{by}");
    }
}
