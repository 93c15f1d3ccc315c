//! [`Manager`]: networks, stack cleanup and crash recovery. Attaching
//! containers lives in `attach.rs`, published ports in `ports.rs`.
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dns::DnsServer;
use super::firewall::{Firewall, NftFirewall};
use super::group::Group;
use super::ipam::{self, Cidr4};
use super::netlink::{Link, Nl};
use super::spec_check::{check_unchanged, plan_v6, validate};
use super::store::{self, Locked, NetRecord, NetState};
use super::types::{NetworkInfo, NetworkSpec, net_key};
use super::{Error, Result, dns_table, names, netns, proxy, ruleset};
use crate::state::Roots;

/// The network side of one state root. Cheap to clone; every method takes the
/// state lock for its whole duration and blocks (call it from
/// `spawn_blocking` in async code).
#[derive(Clone)]
pub struct Manager {
    lib: PathBuf,
    host_ns: Option<PathBuf>,
    firewall: Arc<dyn Firewall>,
    dns: Option<DnsServer>,
    group: Arc<Group>,
    /// The program run as `PROGRAM __proxy` for `[::1]` publishes.
    proxy: Option<PathBuf>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("lib", &self.lib)
            .field("host_ns", &self.host_ns)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Networking for `roots` in the caller's network namespace, with nftables.
    /// `[::1]` publishes are proxied by this very program (`stack __proxy`).
    pub fn open(roots: &Roots) -> Result<Manager> {
        let m = Self::with(roots, None, Arc::new(NftFirewall::default()));
        Ok(m.with_proxy(crate::self_exe::path()))
    }

    /// Run `exe __proxy` for ports published on `[::1]` (without it they are
    /// refused).
    pub fn with_proxy(mut self, exe: PathBuf) -> Manager {
        self.proxy = Some(exe);
        self
    }

    pub(crate) fn proxy_exe(&self) -> Option<&Path> {
        self.proxy.as_deref()
    }

    /// Networking whose "host" is the namespace at `host_ns` (tests use a
    /// namespace of their own; `None` is the caller's) and whose rulesets go
    /// to `firewall`.
    pub fn with(roots: &Roots, host_ns: Option<PathBuf>, firewall: Arc<dyn Firewall>) -> Manager {
        Manager {
            lib: roots.lib.clone(),
            host_ns,
            firewall,
            dns: None,
            group: Arc::default(),
            proxy: None,
        }
    }

    /// Host the resolver of this root's networks in this process, with
    /// `dns`: listeners open now for every network in the state (so a host
    /// that restarts rebuilds everything from the state), and from then on the
    /// table follows every change this manager makes and the listeners follow
    /// its networks; changes made by other processes are picked up by
    /// [`Manager::refresh_dns`]. Marks the root as hosting a resolver (see
    /// [`Manager::dns_hosted`]) for as long as `dns` lives. One host per root:
    /// a second one is an error.
    pub fn with_dns(mut self, dns: DnsServer) -> Result<Manager> {
        dns.claim(&self.lib.join("network"))?;
        self.dns = Some(dns);
        // A batch leader publishes its own DNS table: never share one with
        // the clones that have no resolver.
        self.group = Arc::default();
        let locked = self.lock()?;
        self.sync_dns(&locked.state)?;
        drop(locked);
        Ok(self)
    }

    /// Rebuild the resolver's table and listeners from the saved state: for
    /// the host after another process (a CLI `up`/`down`) changed it. Watch
    /// [`Manager::state_path`] (it is replaced by rename) or call it after
    /// each reconcile. Without a resolver this does nothing.
    pub fn refresh_dns(&self) -> Result<()> {
        if self.dns.is_none() {
            return Ok(());
        }
        self.sync_dns(&self.snapshot()?)
    }

    /// Whether some process (this one or another) hosts the resolver of this
    /// root: then containers get the gateway as their nameserver and their
    /// peers' names from DNS, not from /etc/hosts.
    pub fn dns_hosted(&self) -> bool {
        self.dns.is_some() || DnsServer::is_claimed(&self.lib.join("network"))
    }

    /// The state file (replaced atomically on every change).
    pub fn state_path(&self) -> PathBuf {
        self.lib.join("network").join("state.json")
    }

    /// Save the state and publish its DNS answers (rule 3: a new table, whole).
    pub(crate) fn commit(&self, locked: &Locked) -> Result<()> {
        locked.save()?;
        if let Some(dns) = &self.dns {
            dns.replace(dns_table::answers(&locked.state));
        }
        Ok(())
    }

    /// Table and listeners of the DNS server to match `st`.
    pub(crate) fn sync_dns(&self, st: &NetState) -> Result<()> {
        match &self.dns {
            Some(dns) => {
                dns.replace(dns_table::answers(st));
                dns.sync_listeners(self.host_ns())
            }
            None => Ok(()),
        }
    }

    pub(crate) fn host_ns(&self) -> Option<&Path> {
        self.host_ns.as_deref()
    }

    pub(crate) fn lock(&self) -> Result<Locked> {
        store::lock(&self.lib)
    }

    /// The state as last saved, without the lock: for reads (every save is an
    /// atomic rename, so a read sees one whole state).
    pub(crate) fn snapshot(&self) -> Result<NetState> {
        store::read(&self.lib)
    }

    pub(crate) fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// The nftables table of this root (`inet stack_<id>`).
    pub fn table_name(&self) -> Result<String> {
        Ok(names::table(&self.lock()?.state.root_id))
    }

    /// The link-name prefix of this root (every bridge and veth starts with it).
    pub fn link_prefix(&self) -> Result<String> {
        Ok(names::link_prefix(&self.lock()?.state.root_id))
    }

    /// One network, for `external: true` (it must exist) and `network ls`.
    pub fn network(&self, stack: &str, name: &str) -> Result<Option<NetworkInfo>> {
        Ok(self
            .snapshot()?
            .networks
            .get(&net_key(stack, name))
            .map(info))
    }

    /// The ports `container` publishes (for `stack port` and `ps`).
    pub fn published(&self, container: &str) -> Result<Vec<crate::network::PublishedPort>> {
        Ok(self
            .snapshot()?
            .published
            .get(container)
            .map(|p| p.ports.clone())
            .unwrap_or_default())
    }

    /// `network_mode: none`: the namespace gets only `lo`, up. (`host` needs
    /// nothing from this module; `service:`/`container:` join an existing
    /// namespace in the runtime and keep its interfaces.)
    pub fn loopback_only(&self, netns: &Path) -> Result<()> {
        netns::run(Some(netns), || {
            netns::block_on(async {
                let nl = Nl::connect()?;
                match nl.index("lo").await? {
                    Some(lo) => nl.up(lo).await,
                    None => Ok(()),
                }
            })
        })
    }

    /// The network called `host_name` on the host, for `external: true`.
    pub fn network_named(&self, host_name: &str) -> Result<Option<NetworkInfo>> {
        Ok(self
            .snapshot()?
            .networks
            .values()
            .find(|n| n.host_name == host_name)
            .map(info))
    }

    /// Every network of this root.
    pub fn networks(&self) -> Result<Vec<NetworkInfo>> {
        Ok(self.snapshot()?.networks.values().map(info).collect())
    }

    /// Create the network if missing (bridge up, gateway address, NAT rules)
    /// or check that the existing one matches; idempotent.
    pub fn ensure_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo> {
        validate(spec)?;
        let mut locked = self.lock()?;
        let key = spec.key();
        if let Some(rec) = locked.state.networks.get_mut(&key) {
            check_unchanged(spec, rec)?;
            if rec.orphaned || rec.host_name.is_empty() {
                // Its stack is back (or the state predates host names).
                rec.orphaned = false;
                rec.host_name = spec.host_name();
                self.commit(&locked)?;
            }
            let rec = locked.state.networks[&key].clone();
            self.bring_up(&rec)?;
            self.sync_firewall(&locked.state)?;
            self.sync_dns(&locked.state)?;
            return Ok(info(&rec));
        }
        // Other state roots pick subnets from the same pool by looking at the
        // host's routes: choosing one and routing it is one step host-wide.
        let host = host_subnet_lock()?;
        let rec = self.plan_network(&locked.state, spec)?;
        locked.state.networks.insert(key.clone(), rec.clone());
        self.commit(&locked)?; // intent first: a crash now leaves a record to clean up
        let applied = self.bring_up(&rec);
        drop(host);
        let applied = applied
            .and_then(|()| self.sync_firewall(&locked.state))
            .and_then(|()| self.sync_dns(&locked.state));
        if let Err(e) = applied {
            let _ = self.delete_links(vec![rec.bridge.clone()]);
            locked.state.networks.remove(&key);
            self.commit(&locked)?;
            let _ = self.sync_firewall(&locked.state);
            let _ = self.sync_dns(&locked.state);
            return Err(e);
        }
        Ok(info(&rec))
    }

    /// Remove a network: its bridge and rules. It must have no endpoints.
    /// A missing network is success.
    pub fn remove_network(&self, stack: &str, name: &str) -> Result<()> {
        let mut locked = self.lock()?;
        let key = net_key(stack, name);
        let Some(rec) = locked.state.networks.get(&key).cloned() else {
            return Ok(());
        };
        if let Some(users) = rec.allocations.values().next() {
            return Err(Error::InvalidSpec {
                network: key,
                reason: format!("still has endpoints (container {users}); detach them first"),
            });
        }
        locked.state.networks.remove(&key);
        self.commit(&locked)?;
        // DNS first: see `remove_stack`.
        let mut errs = Vec::new();
        errs.extend(self.sync_dns(&locked.state).err());
        errs.extend(self.delete_links(vec![rec.bridge]).err());
        errs.extend(self.sync_firewall(&locked.state).err());
        collect(errs)
    }

    /// `down`: remove every endpoint and published port of `stack`'s
    /// containers, wherever they are attached, and its networks, continuing
    /// past failures and reporting them all. A network that containers of
    /// other stacks still use (as `external`) stays, so they stay reachable;
    /// it goes when the last of them is detached.
    pub fn remove_stack(&self, stack: &str) -> Result<()> {
        let mut locked = self.lock()?;
        let st = &mut locked.state;
        let mut containers: Vec<String> = st
            .endpoints
            .keys()
            .chain(st.published.keys())
            .filter(|c| st.owner(c) == Some(stack))
            .cloned()
            .collect();
        containers.sort();
        containers.dedup();
        let mut links = Vec::new();
        let mut proxies = Vec::new();
        for c in &containers {
            proxies.extend(st.proxies.remove(c).map(|p| (c.clone(), p)));
            links.extend(forget_container(st, c));
        }
        for n in st.networks.values_mut().filter(|n| n.stack == stack) {
            n.orphaned = true;
        }
        links.extend(drop_orphans(st));
        // The DNS listeners on the gateways go before the bridges: once a
        // bridge is gone its subnet is free for another state root, whose
        // daemon binds the same gateway:53 and fails while ours still holds it.
        let mut errs = Vec::new();
        errs.extend(self.sync_dns(&locked.state).err());
        errs.extend(self.stop_proxies(proxies).err());
        let st = &locked.state;
        // A bridge's deletion waits for the kernel's RCU callbacks (two
        // rcu_barriers, tens of ms here): the save, the ruleset and the proxy
        // sweep go meanwhile. The table names interfaces, it does not hold
        // them. A crash before the save leaves the old state naming links
        // that are gone, which is what the next `down` (deleting what is gone
        // is success) and `recover` expect anyway.
        std::thread::scope(|s| {
            let links = s.spawn(|| {
                // and, after them, what an earlier crash left behind
                [self.delete_links(links), self.sweep_links(st)]
            });
            errs.extend(locked.save().err());
            proxy::sweep(&st.root_id, &st.proxies);
            errs.extend(self.sync_firewall(st).err());
            let links = links
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            errs.extend(links.into_iter().filter_map(Result::err));
        });
        collect(errs)
    }

    /// Crash recovery: delete links with this root's prefix that the state does
    /// not know, bring the known networks back up and rewrite the table from
    /// the state. Touches nothing whose name lacks our prefix.
    pub fn recover(&self) -> Result<()> {
        let locked = self.lock()?;
        let mut errs = Vec::new();
        proxy::sweep(&locked.state.root_id, &locked.state.proxies);
        errs.extend(self.sweep_links(&locked.state).err());
        for rec in locked.state.networks.values() {
            errs.extend(self.bring_up(rec).err());
        }
        errs.extend(self.sync_firewall(&locked.state).err());
        errs.extend(self.sync_dns(&locked.state).err());
        collect(errs)
    }

    /// Delete links with this root's prefix that `st` does not know: what a
    /// crash between forgetting an object and deleting it leaves behind.
    fn sweep_links(&self, st: &NetState) -> Result<()> {
        let prefix = names::link_prefix(&st.root_id);
        let known: std::collections::BTreeSet<String> = st
            .bridges()
            .into_iter()
            .chain(st.veths())
            .map(str::to_string)
            .collect();
        let existing = netns::run(self.host_ns(), || {
            netns::block_on(async { Nl::connect()?.links().await })
        })?;
        let stale: Vec<String> = existing
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n.starts_with(&prefix) && !known.contains(n))
            .collect();
        self.delete_links(stale)
    }

    /// Decide bridge name, subnet and gateway of a new network.
    fn plan_network(&self, st: &NetState, spec: &NetworkSpec) -> Result<NetRecord> {
        let key = spec.key();
        let ours: Vec<Cidr4> = st.networks.values().map(|n| n.subnet).collect();
        let subnet = match spec.subnet {
            Some(s) => {
                if let Some(other) = st.networks.values().find(|n| n.subnet.overlaps(s)) {
                    return Err(Error::InvalidSpec {
                        network: key,
                        reason: format!(
                            "subnet {s} overlaps {} of network {}/{}",
                            other.subnet, other.stack, other.name
                        ),
                    });
                }
                s.normalized()
            }
            None => {
                let mut taken = netns::run(self.host_ns(), || {
                    netns::block_on(async { Nl::connect()?.routed_v4().await })
                })?;
                taken.extend(ours);
                ipam::pick_subnet(ipam::DEFAULT_POOL, ipam::DEFAULT_PREFIX, &taken).ok_or(
                    Error::PoolExhausted {
                        pool: ipam::DEFAULT_POOL.to_string(),
                    },
                )?
            }
        };
        let gateway = match spec.gateway {
            Some(g) => g,
            None => Ipv4Addr::from(subnet.host_bounds().0),
        };
        if !subnet.contains(gateway) {
            return Err(Error::InvalidSpec {
                network: key,
                reason: format!("gateway {gateway} is outside subnet {subnet}"),
            });
        }
        let (subnet6, gateway6) = plan_v6(st, spec, &key)?;
        let host_name = spec.host_name();
        if let Some(other) = st.networks.values().find(|n| n.host_name == host_name) {
            return Err(Error::InvalidSpec {
                network: key,
                reason: format!(
                    "a network named {host_name} already exists (network {} of stack {}); \
                     declare it `external: true` to join it",
                    other.name, other.stack
                ),
            });
        }
        let bridge = match &spec.bridge {
            Some(b) => {
                if st.networks.values().any(|n| &n.bridge == b) {
                    return Err(Error::InvalidSpec {
                        network: key,
                        reason: format!("bridge {b} is used by another network"),
                    });
                }
                b.clone()
            }
            None => names::bridge(&st.root_id, &key, &st.bridges()),
        };
        Ok(NetRecord {
            stack: spec.stack.clone(),
            name: spec.name.clone(),
            host_name,
            orphaned: false,
            bridge,
            subnet,
            gateway,
            ip_range: spec.ip_range,
            internal: spec.internal,
            mtu: spec.mtu,
            labels: spec.labels.clone(),
            allocations: Default::default(),
            cursor: None,
            subnet6,
            gateway6,
            allocations6: Default::default(),
            cursor6: None,
        })
    }

    /// Bridge up with its gateway address and the sysctls it needs.
    pub(super) fn bring_up(&self, rec: &NetRecord) -> Result<()> {
        let (bridge, mtu, gw, prefix, internal) = (
            rec.bridge.clone(),
            rec.mtu,
            rec.gateway,
            rec.subnet.prefix,
            rec.internal,
        );
        let v6 = rec.subnet6.zip(rec.gateway6);
        netns::run(self.host_ns(), move || {
            if v6.is_some() {
                // A bridge created while default.disable_ipv6=1 has no IPv6.
                let key = format!("net.ipv6.conf.{bridge}.disable_ipv6");
                netns::block_on(async {
                    Nl::connect()?
                        .ensure_bridge(&bridge, mtu, names::link_group(&bridge))
                        .await
                        .map(|_| ())
                })?;
                netns::sysctl(&key, "0")?;
                // No DAD: the link-local address the bridge gets when its first
                // port comes up would stay tentative for ~2 s, and until then
                // the kernel sends no neighbour solicitation for forwarded
                // packets (ndisc_send_ns needs a usable link-local source),
                // so published IPv6 ports would not answer at first.
                netns::sysctl(&format!("net.ipv6.conf.{bridge}.accept_dad"), "0")?;
            }
            netns::block_on(async {
                let nl = Nl::connect()?;
                let idx = nl
                    .ensure_bridge(&bridge, mtu, names::link_group(&bridge))
                    .await?;
                nl.add_addr(idx, IpAddr::V4(gw), prefix).await?;
                if let Some((net6, gw6)) = v6 {
                    nl.add_addr(idx, IpAddr::V6(gw6), net6.prefix).await?;
                }
                Ok(())
            })?;
            if v6.is_some() && !internal {
                // Forwarding for IPv6 is global only (ip-sysctl.rst); it also
                // stops this host from accepting router advertisements on
                // interfaces with accept_ra=1 (Docker and netavark do the same).
                netns::sysctl("net.ipv6.conf.all.forwarding", "1")?;
            }
            // DNAT of 127.0.0.1 publishes leaves through the bridge with a
            // loopback source; the kernel drops that unless route_localnet
            // (ip-sysctl.rst). The `guard` chain closes what it opens.
            netns::sysctl(&format!("net.ipv4.conf.{bridge}.route_localnet"), "1")?;
            if !internal {
                // Egress and DNAT need forwarding (netavark and Docker set it too).
                netns::sysctl("net.ipv4.ip_forward", "1")?;
            }
            Ok(())
        })
    }

    /// Delete links by name in the host namespace; gone is success. A bridge
    /// and its veths go in one request, by their device group, when the group
    /// holds nothing else ([`whole_groups`]).
    pub(crate) fn delete_links(&self, names: Vec<String>) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        netns::run(self.host_ns(), move || {
            netns::block_on(async move {
                let nl = Nl::connect()?;
                let existing = nl.links().await?;
                let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
                let groups = whole_groups(&existing, &wanted);
                let mut errs = Vec::new();
                for &g in &groups {
                    errs.extend(nl.del_group(g).await.err());
                }
                let rest = existing
                    .iter()
                    .filter(|l| wanted.contains(l.name.as_str()) && !groups.contains(&l.group));
                for l in rest {
                    errs.extend(nl.del_link(&l.name).await.err());
                }
                collect(errs)
            })
        })
    }

    /// Apply this root's table again from the saved state, when the state has
    /// networks (with none, the table is meant to be absent): for the daemon's
    /// guard after something else removed the table. Idempotent; touches no
    /// link and no container. True when it applied.
    pub fn restore_firewall(&self) -> Result<bool> {
        let locked = self.lock()?;
        if locked.state.networks.is_empty() {
            return Ok(false);
        }
        self.firewall.forget();
        self.sync_firewall(&locked.state)?;
        Ok(true)
    }

    /// Rewrite this root's nftables table from `st` in one batch (or delete the
    /// table when no network is left).
    pub(crate) fn sync_firewall(&self, st: &NetState) -> Result<()> {
        let table = names::table(&st.root_id);
        let batch = if st.networks.is_empty() {
            ruleset::delete_if_exists(&table)
        } else {
            ruleset::build(&ruleset_input(st, table))
        };
        let fw = Arc::clone(&self.firewall);
        netns::run(self.host_ns(), move || fw.apply(&batch))
    }
}

/// The pure input of the ruleset, from the state.
pub(crate) fn ruleset_input(st: &NetState, table: String) -> ruleset::Input {
    ruleset::Input {
        table,
        networks: st
            .networks
            .values()
            .map(|n| ruleset::NetRules {
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                subnet6: n.subnet6,
                internal: n.internal,
            })
            .collect(),
        // `[::1]` ports are the proxy's: no kernel rule could serve them;
        // reserved ones get no traffic yet.
        ports: ruleset::forwards(
            st.published
                .values()
                .filter(|p| p.serving)
                .flat_map(|p| p.ports.iter().copied())
                .filter(|p| !super::ports::on_loopback6(p.host_ip)),
        ),
    }
}

/// Drop a container from the state: endpoints, allocations, ports. Returns its
/// host veth names for deletion. (Its proxy record the caller takes out first,
/// to stop the process.)
pub(crate) fn forget_container(st: &mut NetState, container: &str) -> Vec<String> {
    st.published.remove(container);
    st.owners.remove(container);
    let eps = st.endpoints.remove(container).unwrap_or_default();
    for n in st.networks.values_mut() {
        n.allocations.retain(|_, c| c != container);
        n.allocations6.retain(|_, c| c != container);
    }
    eps.into_iter().map(|e| e.host_veth).collect()
}

/// Remove the orphaned networks that no container uses any more; returns
/// their bridges for deletion.
pub(crate) fn drop_orphans(st: &mut NetState) -> Vec<String> {
    let gone: Vec<String> = st
        .networks
        .iter()
        .filter(|(_, n)| n.orphaned && n.allocations.is_empty() && n.allocations6.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    gone.iter()
        .filter_map(|k| st.networks.remove(k))
        .map(|n| n.bridge)
        .collect()
}

fn info(rec: &NetRecord) -> NetworkInfo {
    NetworkInfo {
        stack: rec.stack.clone(),
        name: rec.name.clone(),
        host_name: rec.host_name.clone(),
        bridge: rec.bridge.clone(),
        subnet: rec.subnet,
        gateway: rec.gateway,
        subnet6: rec.subnet6,
        gateway6: rec.gateway6,
        internal: rec.internal,
    }
}

/// The device groups whose links in `existing` are all in `wanted` (and
/// one at least): those can go in one request each. Group 0 holds every
/// link nobody grouped, never only ours.
fn whole_groups(existing: &[Link], wanted: &BTreeSet<&str>) -> BTreeSet<u32> {
    let mut groups: BTreeSet<u32> = existing
        .iter()
        .filter(|l| l.group != 0 && wanted.contains(l.name.as_str()))
        .map(|l| l.group)
        .collect();
    for l in existing {
        if !wanted.contains(l.name.as_str()) {
            groups.remove(&l.group);
        }
    }
    groups
}

fn collect(mut errs: Vec<Error>) -> Result<()> {
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(Error::Many(errs)),
    }
}

/// The lock every state root of this host takes while it chooses a subnet
/// from the default pool and brings its bridge up (`/run/lock`, shared by all
/// roots; `--root` moves everything else).
fn host_subnet_lock() -> Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = Path::new("/run/lock");
    let io = |source| Error::Io {
        what: "locking the host's subnet pool (/run/lock/stack-subnets.lock)".into(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("stack-subnets.lock"))
        .map_err(io)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, group: u32) -> Link {
        Link {
            name: name.into(),
            group,
        }
    }

    #[test]
    fn a_group_goes_whole_only_when_every_link_of_it_is_wanted() {
        let existing = [
            link("lo", 0),
            link("eth0", 0),
            link("br1", 7),
            link("v1", 7),
            link("br2", 9),
            link("v2", 9),
            link("theirs", 9),
            link("br3", 11),
        ];
        let wanted: BTreeSet<&str> = ["br1", "v1", "br2", "v2", "eth0"].into();
        assert_eq!(whole_groups(&existing, &wanted), [7].into());
        let all: BTreeSet<&str> = existing.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            whole_groups(&existing, &all),
            [7, 9, 11].into(),
            "never group 0"
        );
    }
}
