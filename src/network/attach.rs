//! `Manager::attach`/`detach`: a container's interfaces.
//!
//! Flow of `attach`:
//! 1. as one change of the state (`group.rs`: batched with the other
//!    containers attached at the same time, one lock and one save for all),
//!    allocate addresses (a container keeps the address it had: allocations are
//!    keyed by container id) and record the endpoints (intent);
//! 2. without the lock, so containers are wired in parallel: on a thread in the
//!    host namespace open a netlink socket, create each veth with its host end
//!    on the bridge and its peer created directly inside the container's
//!    namespace as `eth<N>`;
//! 3. the same thread `setns()`es into the container's namespace, opens a
//!    second socket there: lo up, addresses, links up, default route;
//! 4. on failure the host ends are deleted (the peers go with them) and the
//!    container's endpoints and allocations are released (a second change).
use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::group::Step;
use super::ipam::AddressPool;
use super::ipam6;
use super::manager::{Manager, drop_orphans, forget_container};
use super::netlink::Nl;
use super::store::{NetRecord, NetState};
use super::types::{Attachment, Endpoint, net_key};
use super::{Error, Result, names, netns};

impl Manager {
    /// Connect `container` of stack `stack` (whose network namespace is at
    /// `netns`) to the networks in `attachments`, in order: the first gets
    /// `eth0`. The first non-internal network provides the default route.
    /// Re-attaching a container replaces its previous endpoints but keeps its
    /// addresses. Safe to call from many threads at once: the state changes
    /// are batched, the kernel work runs in parallel.
    pub fn attach(
        &self,
        stack: &str,
        container: &str,
        netns: &Path,
        attachments: &[Attachment],
    ) -> Result<Vec<Endpoint>> {
        let (owner, id, atts) = (
            stack.to_string(),
            container.to_string(),
            attachments.to_vec(),
        );
        let (endpoints, stale, bridges) = self.submit(move |st| {
            let stale: Vec<String> = st
                .endpoints
                .get(&id)
                .map(|eps| eps.iter().map(|e| e.host_veth.clone()).collect())
                .unwrap_or_default();
            let endpoints = plan(st, &id, &atts)?;
            let mut bridges = Vec::new();
            for e in &endpoints {
                let key = net_key(&e.stack, &e.network);
                let n = st.networks.get(&key).ok_or(Error::NoSuchNetwork(key))?;
                bridges.push((n.bridge.clone(), n.mtu, n.internal));
            }
            st.endpoints.insert(id.clone(), endpoints.clone());
            st.owners.insert(id, owner);
            Ok(Step::saved((endpoints, stale, bridges)))
        })?;
        let mut remove: Vec<String> = stale;
        remove.extend(endpoints.iter().map(|e| e.host_veth.clone()));
        remove.sort();
        remove.dedup();
        let job = Job {
            netns: netns.to_path_buf(),
            endpoints: endpoints.clone(),
            bridges,
        };
        let result = netns::run(self.host_ns(), move || wire(job, remove));
        if let Err(e) = result {
            let _ = self.delete_links(endpoints.iter().map(|e| e.host_veth.clone()).collect());
            let (id, mine) = (container.to_string(), endpoints);
            self.submit(move |st| {
                // Only what this attach recorded: a later attach may own it now.
                if st.endpoints.get(&id) == Some(&mine) {
                    st.endpoints.remove(&id);
                    st.owners.remove(&id);
                    for n in st.networks.values_mut() {
                        n.allocations.retain(|_, c| *c != id);
                        n.allocations6.retain(|_, c| *c != id);
                    }
                }
                Ok(Step::saved(()))
            })?;
            return Err(e);
        }
        Ok(endpoints)
    }

    /// Disconnect `container`: release its addresses and published ports and
    /// delete its veths. Unknown containers are success.
    pub fn detach(&self, container: &str) -> Result<()> {
        let id = container.to_string();
        let (mut links, bridges, proxy) = self.submit(move |st| {
            let had_ports = st.published.contains_key(&id);
            let proxy = st.proxies.remove(&id).map(|p| (id.clone(), p));
            let links = forget_container(st, &id);
            // The last user of a network whose stack is down takes it along.
            let bridges = drop_orphans(st);
            Ok(Step {
                firewall: had_ports || !bridges.is_empty(),
                value: (links, bridges, proxy),
                undo: None,
            })
        })?;
        let stopped = self.stop_proxies(proxy.into_iter().collect());
        // The DNS listeners of the networks that go are closed before their
        // bridges: see `Manager::remove_stack`.
        let dns = match bridges.is_empty() {
            true => Ok(()),
            false => self.snapshot().and_then(|st| self.sync_dns(&st)),
        };
        links.extend(bridges);
        let deleted = self.delete_links(links).and(stopped);
        dns.and(deleted)
    }

    /// Rebuild the interfaces of `container` in the new, empty namespace at
    /// `netns` from the state, after a reboot took the old namespace with
    /// them: the same addresses and interface names, on bridges brought back
    /// up if they are gone, and the table applied again (its published ports
    /// are in the state). A container without endpoints gets loopback only
    /// (`network_mode: none`). The proxy of its `[::1]` ports starts again.
    /// Level-triggered: what still exists is kept.
    pub fn revive(&self, container: &str, netns: &Path) -> Result<Vec<Endpoint>> {
        let locked = self.lock()?;
        let st = &locked.state;
        let endpoints = st.endpoints.get(container).cloned().unwrap_or_default();
        let mut bridges = Vec::new();
        for e in &endpoints {
            let key = net_key(&e.stack, &e.network);
            let n = st.networks.get(&key).ok_or(Error::NoSuchNetwork(key))?;
            // Under the lock: two containers reviving at once create a
            // missing bridge once.
            self.bring_up(n)?;
            bridges.push((n.bridge.clone(), n.mtu, n.internal));
        }
        if !endpoints.is_empty() {
            self.sync_firewall(st)?;
        }
        drop(locked);
        if endpoints.is_empty() {
            self.loopback_only(netns)?;
            return Ok(endpoints);
        }
        let stale = endpoints.iter().map(|e| e.host_veth.clone()).collect();
        let job = Job {
            netns: netns.to_path_buf(),
            endpoints: endpoints.clone(),
            bridges,
        };
        netns::run(self.host_ns(), move || wire(job, stale))?;
        // Its `[::1]` ports: the proxy went with the host.
        self.revive_proxy(container)?;
        Ok(endpoints)
    }

    /// The endpoints `container` has (empty when none).
    pub fn endpoints(&self, container: &str) -> Result<Vec<Endpoint>> {
        Ok(self
            .snapshot()?
            .endpoints
            .get(container)
            .cloned()
            .unwrap_or_default())
    }

    /// The endpoints of each of `containers`, from one read of the state
    /// (containers without any map to an empty list).
    pub fn endpoints_of(&self, containers: &[String]) -> Result<BTreeMap<String, Vec<Endpoint>>> {
        let st = self.snapshot()?;
        Ok(containers
            .iter()
            .map(|c| (c.clone(), st.endpoints.get(c).cloned().unwrap_or_default()))
            .collect())
    }
}

/// Allocate an address on each network and name the interfaces.
fn plan(st: &mut NetState, container: &str, atts: &[Attachment]) -> Result<Vec<Endpoint>> {
    let root = st.root_id.clone();
    let wanted: Vec<String> = atts.iter().map(|a| net_key(&a.stack, &a.network)).collect();
    for (_, n) in st.networks.iter_mut().filter(|(k, _)| !wanted.contains(k)) {
        n.allocations.retain(|_, c| c != container);
        n.allocations6.retain(|_, c| c != container);
    }
    let mut out = Vec::new();
    for (i, a) in atts.iter().enumerate() {
        let key = net_key(&a.stack, &a.network);
        if atts[..i]
            .iter()
            .any(|b| b.stack == a.stack && b.network == a.network)
        {
            return Err(Error::InvalidSpec {
                network: key,
                reason: format!("container {container} joins it twice"),
            });
        }
        let rec = st
            .networks
            .get_mut(&key)
            .ok_or_else(|| Error::NoSuchNetwork(key.clone()))?;
        let mine = rec
            .allocations
            .iter()
            .find(|(_, c)| c.as_str() == container)
            .map(|(ip, _)| *ip);
        let ip = match (a.ipv4, mine) {
            (Some(want), Some(have)) if want == have => have,
            (None, Some(have)) => have,
            (want, _) => {
                rec.allocations.retain(|_, c| c != container);
                let used = rec.used();
                let pool = AddressPool {
                    subnet: rec.subnet,
                    range: rec.ip_range,
                    gateway: rec.gateway,
                    used: &used,
                };
                match want {
                    Some(w) => {
                        pool.check_static(w)
                            .map_err(|why| Error::AddressUnavailable {
                                network: key.clone(),
                                addr: IpAddr::V4(w),
                                why: why.describe().into(),
                            })?;
                        w
                    }
                    None => {
                        let got = pool.next_free(rec.cursor).ok_or_else(|| {
                            Error::AddressesExhausted {
                                network: key.clone(),
                                range: rec.ip_range.unwrap_or(rec.subnet).to_string(),
                            }
                        })?;
                        rec.cursor = Some(got);
                        got
                    }
                }
            }
        };
        rec.allocations.insert(ip, container.to_string());
        let ipv6 = alloc6(rec, &key, container, a.ipv6)?;
        let (prefix, gateway) = (rec.subnet.prefix, rec.gateway);
        let (prefix6, gateway6) = (rec.subnet6.map_or(0, |s| s.prefix), rec.gateway6);
        let taken = st.veths();
        let host_veth = st
            .endpoints
            .get(container)
            .and_then(|eps| {
                eps.iter()
                    .find(|e| e.stack == a.stack && e.network == a.network)
            })
            .map(|e| e.host_veth.clone())
            .unwrap_or_else(|| names::veth(&root, container, &key, &taken));
        out.push(Endpoint {
            stack: a.stack.clone(),
            network: a.network.clone(),
            ifname: format!("eth{i}"),
            host_veth,
            ipv4: ip,
            prefix,
            gateway,
            ipv6,
            prefix6,
            gateway6,
            aliases: a.aliases.clone(),
        });
    }
    Ok(out)
}

/// The container's IPv6 address on `rec` (kept if it has one), `None` on an
/// IPv4-only network.
fn alloc6(
    rec: &mut NetRecord,
    key: &str,
    container: &str,
    want: Option<Ipv6Addr>,
) -> Result<Option<Ipv6Addr>> {
    let (Some(subnet6), Some(gw6)) = (rec.subnet6, rec.gateway6) else {
        return match want {
            Some(w) => Err(Error::AddressUnavailable {
                network: key.to_string(),
                addr: IpAddr::V6(w),
                why: "on a network without IPv6 (enable_ipv6)".into(),
            }),
            None => Ok(None),
        };
    };
    let mine = rec
        .allocations6
        .iter()
        .find(|(_, c)| c.as_str() == container)
        .map(|(ip, _)| *ip);
    if let Some(have) = mine
        && want.is_none_or(|w| w == have)
    {
        return Ok(Some(have));
    }
    rec.allocations6.retain(|_, c| c != container);
    let used = rec.used6();
    let ip = match want {
        Some(w) => {
            let why = if !subnet6.contains(w) {
                Some("outside the network's IPv6 subnet")
            } else if w == gw6 || w == subnet6.network() {
                Some("reserved (subnet-router anycast or gateway address)")
            } else if used.contains(&w) {
                Some("already assigned to another container")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::AddressUnavailable {
                    network: key.to_string(),
                    addr: IpAddr::V6(w),
                    why: why.into(),
                });
            }
            w
        }
        None => {
            let got = ipam6::next_free(subnet6, gw6, &used, rec.cursor6).ok_or_else(|| {
                Error::AddressesExhausted {
                    network: key.to_string(),
                    range: subnet6.to_string(),
                }
            })?;
            rec.cursor6 = Some(got);
            got
        }
    };
    rec.allocations6.insert(ip, container.to_string());
    Ok(Some(ip))
}

/// What the netns thread needs, computed before it starts.
struct Job {
    netns: PathBuf,
    endpoints: Vec<Endpoint>,
    /// (bridge, mtu, internal) per endpoint.
    bridges: Vec<(String, Option<u32>, bool)>,
}

/// Runs on a `netns::run` thread that starts in the host namespace.
fn wire(job: Job, stale: Vec<String>) -> Result<()> {
    let ns_file = File::open(&job.netns).map_err(|source| Error::Netns {
        path: job.netns.clone(),
        source,
    })?;
    netns::block_on(async {
        let host = Nl::connect()?;
        for name in &stale {
            host.del_link(name).await?;
        }
        for (ep, (bridge, mtu, _)) in job.endpoints.iter().zip(&job.bridges) {
            let master = host
                .index(bridge)
                .await?
                .ok_or_else(|| Error::LinkMissing(bridge.clone()))?;
            let group = names::link_group(bridge);
            host.create_veth(&ep.host_veth, &ep.ifname, &ns_file, master, group, *mtu)
                .await?;
            let idx = host
                .index(&ep.host_veth)
                .await?
                .ok_or_else(|| Error::LinkMissing(ep.host_veth.clone()))?;
            host.hairpin(idx).await?;
            host.up(idx).await?;
        }
        // From here on this thread lives in the container's namespace.
        netns::enter(&job.netns)?;
        let inner = Nl::connect()?;
        if let Some(lo) = inner.index("lo").await? {
            inner.up(lo).await?;
        }
        for ep in &job.endpoints {
            if ep.ipv6.is_some() {
                netns::sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", ep.ifname), "0")?;
                // The link-local address is usable at once (see bring_up).
                netns::sysctl(&format!("net.ipv6.conf.{}.accept_dad", ep.ifname), "0")?;
            }
            let idx = inner
                .index(&ep.ifname)
                .await?
                .ok_or_else(|| Error::LinkMissing(ep.ifname.clone()))?;
            inner.add_addr(idx, IpAddr::V4(ep.ipv4), ep.prefix).await?;
            if let Some(v6) = ep.ipv6 {
                inner.add_addr(idx, IpAddr::V6(v6), ep.prefix6).await?;
            }
            inner.up(idx).await?;
        }
        let gw: Option<Ipv4Addr> = job
            .endpoints
            .iter()
            .zip(&job.bridges)
            .find(|(_, (_, _, internal))| !internal)
            .map(|(ep, _)| ep.gateway);
        if let Some(gw) = gw {
            inner.default_route(gw).await?;
        }
        let gw6 = job
            .endpoints
            .iter()
            .zip(&job.bridges)
            .find(|(ep, (_, _, internal))| !internal && ep.gateway6.is_some())
            .and_then(|(ep, _)| ep.gateway6);
        if let Some(gw6) = gw6 {
            inner.default_route6(gw6).await?;
        }
        Ok(())
    })
}
