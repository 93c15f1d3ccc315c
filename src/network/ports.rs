//! Published ports: conflict checks (pure), the host probe, and
//! `Manager::publish`/`unpublish`.
//!
//! Order (rule 6): every requested port is checked — against the ports this
//! root already publishes and by binding it on the host — before the state or
//! the ruleset changes, so a conflict changes nothing.
//!
//! Sharing: containers of one group (the replicas of a service) may publish
//! the same host address, port and protocol; the ruleset spreads its
//! connections over the group's serving members. A member published as
//! `standby` holds its ports without traffic until `move_ports` switches the
//! traffic of another member to it in one transaction (start-first updates).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use super::group::Step;
use super::manager::Manager;
use super::proxy::{self, Held};
use super::store::{NetState, Published};
use super::types::{PortMapping, Proto, PublishedPort, Sharing, Standby};
use super::{Error, Result, netns};

/// Who in `state` (other than `except`) already publishes `ip:port/proto`.
/// `None` as an address means "all addresses" and conflicts with every one.
/// Members of `group` may publish exactly the same address and port (not on
/// `[::1]`, whose socket one proxy holds).
pub fn taken_by(
    state: &NetState,
    except: &str,
    group: Option<&str>,
    ip: Option<IpAddr>,
    port: u16,
    proto: Proto,
) -> Option<String> {
    state
        .published
        .iter()
        .filter(|(cid, _)| cid.as_str() != except)
        .find_map(|(cid, p)| {
            let shared = group.is_some() && p.group.as_deref() == group;
            p.ports
                .iter()
                .any(|q| {
                    q.proto == proto
                        && q.host_port == port
                        && (q.host_ip.is_none() || ip.is_none() || q.host_ip == ip)
                        && !(shared && q.host_ip == ip && !on_loopback6(ip))
                })
                .then(|| format!(" by container {cid} of stack {}", p.stack))
        })
}

/// Bind `ip:port` to see whether a process of the host uses it; port 0 asks
/// the kernel for a free one. The socket is returned so that several random
/// picks in one request cannot collide, and so that a `[::1]` port can be
/// handed to its proxy as it is.
fn probe(ip: Option<IpAddr>, port: u16, proto: Proto) -> std::io::Result<(u16, Held)> {
    let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        Proto::Tcp => {
            let l = TcpListener::bind(addr)?;
            Ok((l.local_addr()?.port(), Held::Tcp(l)))
        }
        Proto::Udp => {
            let s = UdpSocket::bind(addr)?;
            Ok((s.local_addr()?.port(), Held::Udp(s)))
        }
    }
}

/// Whether `p` is published on `[::1]`, which only the proxy can serve.
pub(crate) fn on_loopback6(ip: Option<IpAddr>) -> bool {
    matches!(ip, Some(IpAddr::V6(h)) if h.is_loopback())
}

/// The ports as published, and the bound `[::1]` sockets with their targets
/// (for the proxy).
type Chosen = (Vec<PublishedPort>, Vec<(Held, SocketAddr)>);

/// How many random ports to try before giving up (each pick that collides
/// with a port this root publishes costs one try).
const RANDOM_TRIES: usize = 64;

/// Resolve every mapping to a concrete free host port, or fail on the first
/// conflict. Runs the bind probes on a thread in the host namespace.
fn choose_ports(
    m: &Manager,
    state: &NetState,
    container: &str,
    group: Option<&str>,
    ports: &[PortMapping],
    container_addr: Ipv4Addr,
    container_addr6: Option<Ipv6Addr>,
) -> Result<Chosen> {
    for (i, p) in ports.iter().enumerate() {
        check_family(p, container_addr6)?;
        if p.host_port != 0 {
            if let Some(by) = taken_by(state, container, group, p.host_ip, p.host_port, p.proto) {
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
        let mut loopback6 = Vec::new();
        for p in ports {
            let (host_port, h) = if p.host_port != 0 {
                probe(p.host_ip, p.host_port, p.proto).map_err(|_| {
                    in_use(
                        p.host_ip,
                        p.host_port,
                        p.proto,
                        " by a process on the host".into(),
                    )
                })?
            } else {
                random_port(&state_for_probe, &container, p, &mut held)?
            };
            if on_loopback6(p.host_ip) {
                let target = SocketAddr::new(IpAddr::V4(container_addr), p.container_port);
                loopback6.push((h, target));
            } else {
                held.push(h);
            }
            out.push(PublishedPort {
                host_ip: p.host_ip,
                host_port,
                container_addr,
                container_addr6,
                container_port: p.container_port,
                proto: p.proto,
            });
        }
        Ok((out, loopback6))
    })
}

/// IPv6 host addresses need an IPv6 container, except `::1`: that cannot be
/// DNAT'd (IPv6 has no `route_localnet`, a packet from ::1 never leaves `lo`,
/// RFC 4291 2.5.3), so its proxy connects to the container's IPv4 address.
fn check_family(p: &PortMapping, container_addr6: Option<Ipv6Addr>) -> Result<()> {
    let Some(IpAddr::V6(h)) = p.host_ip else {
        return Ok(());
    };
    if h.is_loopback() {
        return Ok(());
    }
    if container_addr6.is_none() {
        return Err(Error::InvalidSpec {
            network: format!("port {}", p.host_port),
            reason: format!(
                "host address {h} is IPv6 but the container has no IPv6 address (enable_ipv6)"
            ),
        });
    }
    Ok(())
}

/// A free random port (not published by another container of this root);
/// the sockets of rejected picks stay in `held` until the request is done.
fn random_port(
    state: &NetState,
    container: &str,
    p: PortMapping,
    held: &mut Vec<Held>,
) -> Result<(u16, Held)> {
    for _ in 0..RANDOM_TRIES {
        let (port, h) =
            probe(p.host_ip, 0, p.proto).map_err(Error::io("pick a random host port"))?;
        if taken_by(state, container, None, p.host_ip, port, p.proto).is_none() {
            return Ok((port, h));
        }
        held.push(h);
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
    /// Ports on `[::1]` are served by the container's proxy process
    /// (`proxy.rs`), every other port by kernel NAT. Concurrent calls share
    /// one state save and one nftables apply.
    pub fn publish(
        &self,
        stack: &str,
        container: &str,
        ports: &[PortMapping],
        container_addr: Ipv4Addr,
    ) -> Result<Vec<PublishedPort>> {
        self.publish_shared(stack, container, ports, container_addr, &Sharing::default())
    }

    /// [`Manager::publish`], sharing host ports with the other members of
    /// `sharing.group`, and with `sharing.standby` only reserving them (no
    /// traffic until [`Manager::move_ports`]).
    pub fn publish_shared(
        &self,
        stack: &str,
        container: &str,
        ports: &[PortMapping],
        container_addr: Ipv4Addr,
        sharing: &Sharing,
    ) -> Result<Vec<PublishedPort>> {
        if ports.iter().any(|p| on_loopback6(p.host_ip)) && self.proxy_exe().is_none() {
            return Err(Error::Unsupported {
                network: format!("container {container}"),
                feature: "publishing on [::1] without a proxy program (Manager::with_proxy)".into(),
            });
        }
        // An earlier proxy of the container holds its [::1] ports.
        self.stop_proxy(container)?;
        let (m, stack, id, ports, sharing) = (
            self.clone(),
            stack.to_string(),
            container.to_string(),
            ports.to_vec(),
            sharing.clone(),
        );
        let (chosen, loopback6) = self.submit(move |st| {
            check_network(st, container_addr)?;
            let addr6 = st
                .endpoints
                .get(&id)
                .and_then(|eps| eps.iter().find(|e| e.ipv4 == container_addr))
                .and_then(|e| e.ipv6);
            let group = sharing.group.as_deref();
            let (chosen, loopback6) =
                choose_ports(&m, st, &id, group, &ports, container_addr, addr6)?;
            let entry = Published {
                stack,
                ports: chosen.clone(),
                group: sharing.group.clone(),
                serving: !sharing.standby,
            };
            let before = st.published.insert(id.clone(), entry);
            Ok(Step {
                value: (chosen, loopback6),
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
        })?;
        if !loopback6.is_empty()
            && let Err(e) = self.start_proxy(container, loopback6)
        {
            let _ = self.unpublish(container);
            return Err(e);
        }
        Ok(chosen)
    }

    /// Send the traffic of `from`'s ports to `to` in one nftables
    /// transaction: `to`'s reserved (standby) ports start serving and `from`
    /// publishes nothing any more. Connections already open stay where they
    /// are (conntrack). Either may publish nothing; both unknown is success.
    pub fn move_ports(&self, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        let proxy = self.submit(move |st| {
            let before = (
                st.published.get(&from).cloned(),
                st.published.get(&to).cloned(),
            );
            let mut firewall = false;
            if let Some(p) = st.published.get_mut(&to).filter(|p| !p.serving) {
                p.serving = true;
                firewall = true;
            }
            firewall |= st.published.remove(&from).is_some();
            let proxy = st.proxies.remove(&from).map(|p| (from.clone(), p));
            Ok(Step {
                value: proxy,
                firewall,
                undo: Some(Box::new(move |st: &mut NetState| {
                    for (id, p) in [(from, before.0), (to, before.1)] {
                        match p {
                            Some(p) => st.published.insert(id, p),
                            None => st.published.remove(&id),
                        };
                    }
                })),
            })
        })?;
        self.stop_proxies(proxy.into_iter().collect())
    }

    /// Start sending traffic to `container`'s reserved (standby) ports, in
    /// one nftables transaction, next to the group's serving members. One
    /// that serves already or publishes nothing is success.
    pub fn serve(&self, container: &str) -> Result<()> {
        let id = container.to_string();
        self.submit(move |st| {
            let Some(p) = st.published.get_mut(&id).filter(|p| !p.serving) else {
                return Ok(Step {
                    value: (),
                    firewall: false,
                    undo: None,
                });
            };
            p.serving = true;
            Ok(Step {
                value: (),
                firewall: true,
                undo: Some(Box::new(move |st: &mut NetState| {
                    if let Some(p) = st.published.get_mut(&id) {
                        p.serving = false;
                    }
                })),
            })
        })
    }

    /// Whether a member of sharing group `group` other than `except` gets
    /// traffic on its published ports.
    pub fn group_serves(&self, group: &str, except: &str) -> Result<bool> {
        Ok(self
            .snapshot()?
            .published
            .iter()
            .any(|(id, p)| id != except && p.serving && p.group.as_deref() == Some(group)))
    }

    /// The sharing groups of `stack` with a member that gets traffic.
    pub fn serving_groups(&self, stack: &str) -> Result<std::collections::BTreeSet<String>> {
        Ok(self
            .snapshot()?
            .published
            .values()
            .filter(|p| p.stack == stack && p.serving)
            .filter_map(|p| p.group.clone())
            .collect())
    }

    /// The containers whose ports are reserved without traffic, of `stack`
    /// (of every stack: `None`).
    pub fn standby_of(&self, stack: Option<&str>) -> Result<Vec<Standby>> {
        Ok(self
            .snapshot()?
            .published
            .into_iter()
            .filter(|(_, p)| !p.serving && stack.is_none_or(|s| p.stack == s))
            .map(|(container, p)| Standby {
                container,
                stack: p.stack,
                ports: p.ports,
            })
            .collect())
    }

    /// Whether `container` publishes any port (serving or reserved).
    pub fn publishes(&self, container: &str) -> Result<bool> {
        Ok(self.snapshot()?.published.contains_key(container))
    }

    /// Whether `container`'s ports are reserved without traffic (a standby
    /// that [`Manager::move_ports`] has not switched to yet).
    pub fn is_standby(&self, container: &str) -> Result<bool> {
        Ok(self
            .snapshot()?
            .published
            .get(container)
            .is_some_and(|p| !p.serving))
    }

    /// Remove every port `container` publishes; nothing published is success.
    pub fn unpublish(&self, container: &str) -> Result<()> {
        let id = container.to_string();
        let proxy = self.submit(move |st| {
            Ok(Step {
                firewall: st.published.remove(&id).is_some(),
                value: st.proxies.remove(&id).map(|p| (id, p)),
                undo: None,
            })
        })?;
        self.stop_proxies(proxy.into_iter().collect())
    }

    /// Start the proxy of `container`'s `[::1]` ports and record it.
    fn start_proxy(&self, container: &str, sockets: Vec<(Held, SocketAddr)>) -> Result<()> {
        let exe = self.proxy_exe().ok_or_else(|| Error::Unsupported {
            network: format!("container {container}"),
            feature: "publishing on [::1] without a proxy program".into(),
        })?;
        let root_id = self.snapshot()?.root_id;
        let rec = proxy::start(exe, &root_id, container, self.host_ns(), sockets)?;
        let (id, r) = (container.to_string(), rec.clone());
        let recorded = self.submit(move |st| {
            st.proxies.insert(id, r);
            Ok(Step::saved(()))
        });
        if recorded.is_err() {
            let _ = proxy::stop(&rec, &root_id, container);
        }
        recorded
    }

    /// Start the proxy of `container`'s recorded `[::1]` ports again when
    /// none runs (after a reboot: the process went with the host, the ports
    /// are in the state). The same ports, bound anew; one taken meanwhile by
    /// a process of the host is an error. Nothing to serve is success.
    pub(crate) fn revive_proxy(&self, container: &str) -> Result<()> {
        let st = self.snapshot()?;
        let Some(published) = st.published.get(container) else {
            return Ok(());
        };
        let ports: Vec<PublishedPort> = published
            .ports
            .iter()
            .filter(|p| on_loopback6(p.host_ip))
            .cloned()
            .collect();
        let running = st
            .proxies
            .get(container)
            .is_some_and(|rec| proxy::is_ours(rec.pid, &st.root_id, container));
        if ports.is_empty() || running {
            return Ok(());
        }
        let sockets = netns::run(self.host_ns(), move || {
            ports
                .iter()
                .map(|p| {
                    let (_, held) = probe(p.host_ip, p.host_port, p.proto).map_err(|_| {
                        in_use(
                            p.host_ip,
                            p.host_port,
                            p.proto,
                            " by a process on the host".into(),
                        )
                    })?;
                    let target = SocketAddr::new(IpAddr::V4(p.container_addr), p.container_port);
                    Ok((held, target))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        self.start_proxy(container, sockets)
    }

    /// Stop (and forget) the proxy of `container`, if it has one.
    fn stop_proxy(&self, container: &str) -> Result<()> {
        if !self.snapshot()?.proxies.contains_key(container) {
            return Ok(());
        }
        let id = container.to_string();
        let proxy =
            self.submit(move |st| Ok(Step::saved(st.proxies.remove(&id).map(|p| (id, p)))))?;
        self.stop_proxies(proxy.into_iter().collect())
    }

    /// Kill the proxies `gone` (already forgotten by the state).
    pub(crate) fn stop_proxies(&self, gone: Vec<(String, proxy::ProxyRecord)>) -> Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        let root_id = self.snapshot()?.root_id;
        let errs: Vec<Error> = gone
            .iter()
            .filter_map(|(c, rec)| proxy::stop(rec, &root_id, c).err())
            .collect();
        match errs.len() {
            0 => Ok(()),
            _ => Err(Error::Many(errs)),
        }
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
                group: None,
                serving: true,
            },
        );
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let other = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let taken = |ip, port, proto| taken_by(&st, "b", None, ip, port, proto);
        assert!(taken(lo, 8080, Proto::Tcp).is_some());
        assert!(taken(None, 8080, Proto::Tcp).is_some());
        assert!(taken(other, 8080, Proto::Tcp).is_none());
        assert!(taken(other, 9090, Proto::Tcp).is_some());
        assert!(taken(lo, 8080, Proto::Udp).is_none());
        // a container's own ports do not conflict with its new request
        assert!(taken_by(&st, "a", None, lo, 8080, Proto::Tcp).is_none());
        let by = taken(lo, 8080, Proto::Tcp).unwrap_or_default();
        assert!(by.contains("container a of stack s1"), "{by}");
    }

    #[test]
    fn members_of_a_group_share_exactly_the_same_port_only() {
        let mut st = NetState::default();
        let v6lo = Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let mut lo6 = pp(None, 7070);
        lo6.host_ip = v6lo;
        st.published.insert(
            "web-1".into(),
            Published {
                stack: "s".into(),
                ports: vec![pp(Some([127, 0, 0, 1]), 8080), pp(None, 9090), lo6],
                group: Some("s/web".into()),
                serving: true,
            },
        );
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let web = Some("s/web");
        assert!(taken_by(&st, "web-2", web, lo, 8080, Proto::Tcp).is_none());
        assert!(taken_by(&st, "web-2", web, None, 9090, Proto::Tcp).is_none());
        // an overlapping but different address is still a conflict
        assert!(taken_by(&st, "web-2", web, None, 8080, Proto::Tcp).is_some());
        assert!(taken_by(&st, "web-2", web, lo, 9090, Proto::Tcp).is_some());
        // another group or none
        assert!(taken_by(&st, "db-1", Some("s/db"), lo, 8080, Proto::Tcp).is_some());
        assert!(taken_by(&st, "x", None, lo, 8080, Proto::Tcp).is_some());
        // [::1] is one proxy's socket
        assert!(taken_by(&st, "web-2", web, v6lo, 7070, Proto::Tcp).is_some());
    }

    /// A manager without a firewall whose group `s/web` publishes 8080 on
    /// 127.0.0.1 through `serving` (10.89.0.2) and `standby` (10.89.0.3).
    fn two_members(dir: &std::path::Path, serving: &str, standby: &str) -> Manager {
        use crate::network::NoFirewall;
        use crate::network::group::Step;

        let m = Manager::with(
            &crate::state::Roots::new(Some(dir)),
            None,
            std::sync::Arc::new(NoFirewall),
        );
        let member = |last: u8, serving: bool| {
            let mut p = pp(Some([127, 0, 0, 1]), 8080);
            p.container_addr = Ipv4Addr::new(10, 89, 0, last);
            Published {
                stack: "s".into(),
                ports: vec![p],
                group: Some("s/web".into()),
                serving,
            }
        };
        let (a, b) = (serving.to_string(), standby.to_string());
        m.submit(move |st| {
            st.published.insert(a, member(2, true));
            st.published.insert(b, member(3, false));
            Ok(Step::saved(()))
        })
        .unwrap();
        m
    }

    /// The addresses the ruleset would send published traffic to.
    fn backends(m: &Manager) -> Vec<Ipv4Addr> {
        let input = crate::network::manager::ruleset_input(&m.snapshot().unwrap(), "t".into());
        input
            .ports
            .iter()
            .flat_map(|f| f.backends.iter().map(|b| b.addr))
            .collect()
    }

    #[test]
    fn a_standby_gets_no_traffic_until_the_ports_move_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = two_members(dir.path(), "old", "new");
        assert_eq!(backends(&m), [Ipv4Addr::new(10, 89, 0, 2)]);
        assert!(m.is_standby("new").unwrap());
        m.move_ports("old", "new").unwrap();
        assert_eq!(backends(&m), [Ipv4Addr::new(10, 89, 0, 3)]);
        assert!(!m.is_standby("new").unwrap());
        assert!(!m.publishes("old").unwrap());
        // neither known: nothing to do
        m.move_ports("x", "y").unwrap();
    }

    #[test]
    fn a_ready_standby_joins_the_serving_members() {
        let dir = tempfile::tempdir().unwrap();
        let m = two_members(dir.path(), "web-1", "web-2");
        assert!(m.group_serves("s/web", "web-2").unwrap());
        assert!(!m.group_serves("s/web", "web-1").unwrap(), "web-2 waits");
        assert!(!m.group_serves("s/db", "x").unwrap());
        assert_eq!(m.serving_groups("s").unwrap(), ["s/web".to_string()].into());
        assert!(m.serving_groups("other").unwrap().is_empty());
        let names = |stack| -> Vec<String> {
            let all = m.standby_of(stack).unwrap();
            all.into_iter().map(|s| s.container).collect()
        };
        assert_eq!(names(Some("s")), ["web-2"]);
        assert_eq!(names(None), ["web-2"]);
        assert!(names(Some("other")).is_empty());
        assert_eq!(backends(&m), [Ipv4Addr::new(10, 89, 0, 2)]);
        m.serve("web-2").unwrap();
        let mut both = backends(&m);
        both.sort();
        assert_eq!(
            both,
            [Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 3)]
        );
        assert!(names(None).is_empty());
        // serving already, or unknown: nothing to do
        m.serve("web-2").unwrap();
        m.serve("nobody").unwrap();
    }
}
