//! `Manager::attach`/`detach`: a container's interfaces.
//!
//! Flow of `attach` (one thread, two namespaces):
//! 1. under the lock, allocate addresses (a container keeps the address it
//!    had: allocations are keyed by container id) and save them (intent);
//! 2. on a thread in the host namespace open a netlink socket, create each veth
//!    with its host end on the bridge and its peer created directly inside the
//!    container's namespace as `eth<N>`;
//! 3. the same thread `setns()`es into the container's namespace, opens a
//!    second socket there: lo up, addresses, links up, default route;
//! 4. on failure the host ends are deleted (the peers go with them) and the
//!    allocations released.
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::ipam::AddressPool;
use super::manager::{Manager, forget_container};
use super::netlink::Nl;
use super::store::NetState;
use super::types::{Attachment, Endpoint, net_key};
use super::{Error, Result, names, netns};

impl Manager {
    /// Connect `container` (whose network namespace is at `netns`) to the
    /// networks in `attachments`, in order: the first gets `eth0`. The first
    /// non-internal network provides the default route. Re-attaching a
    /// container replaces its previous endpoints but keeps its addresses.
    pub fn attach(
        &self,
        container: &str,
        netns: &Path,
        attachments: &[Attachment],
    ) -> Result<Vec<Endpoint>> {
        let mut locked = self.lock()?;
        let stale: Vec<String> = locked
            .state
            .endpoints
            .get(container)
            .map(|eps| eps.iter().map(|e| e.host_veth.clone()).collect())
            .unwrap_or_default();
        let before = locked.state.clone();
        let endpoints = plan(&mut locked.state, container, attachments)?;
        locked
            .state
            .endpoints
            .insert(container.to_string(), endpoints.clone());
        self.commit(&locked)?;
        let mut remove: Vec<String> = stale;
        remove.extend(endpoints.iter().map(|e| e.host_veth.clone()));
        remove.sort();
        remove.dedup();
        let job = Job {
            netns: netns.to_path_buf(),
            endpoints: endpoints.clone(),
            bridges: endpoints
                .iter()
                .map(|e| {
                    locked
                        .state
                        .networks
                        .get(&net_key(&e.stack, &e.network))
                        .map(|n| (n.bridge.clone(), n.mtu, n.internal))
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::NoSuchNetwork(container.to_string()))?,
        };
        let stale_first = remove;
        let result = netns::run(self.host_ns(), move || wire(job, stale_first));
        if let Err(e) = result {
            let _ = self.delete_links(endpoints.iter().map(|e| e.host_veth.clone()).collect());
            locked.state = before;
            locked.state.endpoints.remove(container);
            for n in locked.state.networks.values_mut() {
                n.allocations.retain(|_, c| c != container);
            }
            self.commit(&locked)?;
            return Err(e);
        }
        Ok(endpoints)
    }

    /// Disconnect `container`: release its addresses and published ports and
    /// delete its veths. Unknown containers are success.
    pub fn detach(&self, container: &str) -> Result<()> {
        let mut locked = self.lock()?;
        let had_ports = locked.state.published.contains_key(container);
        let links = forget_container(&mut locked.state, container);
        if links.is_empty() && !had_ports {
            return Ok(());
        }
        self.commit(&locked)?;
        let a = self.delete_links(links);
        let b = if had_ports {
            self.sync_firewall(&locked.state)
        } else {
            Ok(())
        };
        a.and(b)
    }

    /// The endpoints `container` has (empty when none).
    pub fn endpoints(&self, container: &str) -> Result<Vec<Endpoint>> {
        Ok(self
            .lock()?
            .state
            .endpoints
            .get(container)
            .cloned()
            .unwrap_or_default())
    }
}

/// Allocate an address on each network and name the interfaces.
fn plan(st: &mut NetState, container: &str, atts: &[Attachment]) -> Result<Vec<Endpoint>> {
    let root = st.root_id.clone();
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
        let (prefix, gateway) = (rec.subnet.prefix, rec.gateway);
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
            aliases: a.aliases.clone(),
        });
    }
    Ok(out)
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
                .ok_or_else(|| Error::NoSuchNetwork(bridge.clone()))?;
            host.create_veth(&ep.host_veth, &ep.ifname, &ns_file, master, *mtu)
                .await?;
            let idx = host
                .index(&ep.host_veth)
                .await?
                .ok_or_else(|| Error::NoSuchNetwork(ep.host_veth.clone()))?;
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
            let idx = inner
                .index(&ep.ifname)
                .await?
                .ok_or_else(|| Error::NoSuchNetwork(ep.ifname.clone()))?;
            inner.add_addr(idx, IpAddr::V4(ep.ipv4), ep.prefix).await?;
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
        Ok(())
    })
}
