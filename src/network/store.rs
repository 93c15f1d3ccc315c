//! Persisted network state: one JSON file per state root, guarded by a lock.
//!
//! Layout: `<lib>/network/state.json` (written with `state::write_json_durable`: temp,
//! fsync, rename, fsync dir) and `<lib>/network/lock` (`flock`, held for the
//! whole of one operation, so two processes or threads never allocate the same
//! address or port). The state is the source of truth the nftables table and
//! crash recovery are derived from.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::ipam::Cidr4;
use super::ipam6::Cidr6;
use super::proxy::ProxyRecord;
use super::types::{Endpoint, PublishedPort};
use super::{Error, Result};
use crate::state;

/// Everything `network` knows about one state root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetState {
    /// Random id that names this root's links and nftables table.
    pub root_id: String,
    /// Networks by `stack/name`.
    pub networks: BTreeMap<String, NetRecord>,
    /// Endpoints by container id.
    pub endpoints: BTreeMap<String, Vec<Endpoint>>,
    /// Published ports by container id.
    pub published: BTreeMap<String, Published>,
    /// The stack each attached container belongs to (which may differ from
    /// the stack of the networks it is on: `external` networks). Missing for
    /// state written before it was kept: the endpoints' stack is used then.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
    /// The `[::1]` proxy process of each container that publishes on `[::1]`.
    #[serde(default)]
    pub proxies: BTreeMap<String, ProxyRecord>,
}

/// One network as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRecord {
    pub stack: String,
    pub name: String,
    /// Name on the host (empty in state written before it was kept).
    #[serde(default)]
    pub host_name: String,
    /// Its stack is down but containers of other stacks were still on it: it
    /// is removed when the last of them leaves.
    #[serde(default)]
    pub orphaned: bool,
    pub bridge: String,
    pub subnet: Cidr4,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Cidr4>,
    pub internal: bool,
    pub mtu: Option<u32>,
    pub labels: BTreeMap<String, String>,
    /// Address -> container id.
    pub allocations: BTreeMap<Ipv4Addr, String>,
    /// Last address handed out (allocation continues after it).
    pub cursor: Option<Ipv4Addr>,
    /// IPv6 subnet and gateway when the network has IPv6.
    #[serde(default)]
    pub subnet6: Option<Cidr6>,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// IPv6 address -> container id, and the IPv6 cursor.
    #[serde(default)]
    pub allocations6: BTreeMap<Ipv6Addr, String>,
    #[serde(default)]
    pub cursor6: Option<Ipv6Addr>,
}

impl NetRecord {
    pub fn used(&self) -> BTreeSet<Ipv4Addr> {
        self.allocations.keys().copied().collect()
    }

    pub fn used6(&self) -> BTreeSet<Ipv6Addr> {
        self.allocations6.keys().copied().collect()
    }
}

/// The ports one container publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub stack: String,
    pub ports: Vec<PublishedPort>,
    /// Containers of one group (`<stack>/<service>`) may publish the same
    /// host port: its connections are spread over them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// False while the ports are only reserved for the container (the new
    /// container of a start-first update, until it is healthy): no traffic
    /// goes to it yet.
    #[serde(default = "serving", skip_serializing_if = "is_serving")]
    pub serving: bool,
}

fn serving() -> bool {
    true
}

fn is_serving(s: &bool) -> bool {
    *s
}

impl NetState {
    /// Every bridge name in use in this root.
    pub fn bridges(&self) -> BTreeSet<&str> {
        self.networks.values().map(|n| n.bridge.as_str()).collect()
    }

    /// The stack container `id` belongs to.
    pub fn owner(&self, id: &str) -> Option<&str> {
        self.owners
            .get(id)
            .or_else(|| self.published.get(id).map(|p| &p.stack))
            .or_else(|| self.endpoints.get(id)?.first().map(|e| &e.stack))
            .map(String::as_str)
    }

    /// Every host-side veth name in use in this root.
    pub fn veths(&self) -> BTreeSet<&str> {
        self.endpoints
            .values()
            .flatten()
            .map(|e| e.host_veth.as_str())
            .collect()
    }
}

/// The state file of a root, locked for the lifetime of the value.
pub struct Locked {
    path: PathBuf,
    _lock: Flock<File>,
    pub state: NetState,
}

/// Open (creating) the state of `lib`, waiting for the lock.
pub fn lock(lib: &Path) -> Result<Locked> {
    let dir = lib.join("network");
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::State { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(err(&dir))?;
    let lock_path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(err(&lock_path))?;
    let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| Error::State {
        path: lock_path.clone(),
        source: e.into(),
    })?;
    let path = dir.join("state.json");
    let mut state: NetState = state::read_json(&path)
        .map_err(err(&path))?
        .unwrap_or_default();
    if state.root_id.is_empty() {
        state.root_id = new_root_id();
    }
    Ok(Locked {
        path,
        _lock: lock,
        state,
    })
}

/// The saved state of `lib` without taking the lock (empty when none is saved).
pub fn read(lib: &Path) -> Result<NetState> {
    let path = lib.join("network").join("state.json");
    Ok(state::read_json(&path)
        .map_err(|source| Error::State {
            path: path.clone(),
            source,
        })?
        .unwrap_or_default())
}

impl Locked {
    /// Write the state atomically; the lock stays held.
    pub fn save(&self) -> Result<()> {
        state::write_json_durable(&self.path, &self.state).map_err(|source| Error::State {
            path: self.path.clone(),
            source,
        })
    }
}

/// 6 random hex digits from the kernel's RNG (getrandom via /dev/urandom).
fn new_root_id() -> String {
    let mut b = [0u8; 3];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        // Fall back to time and pid: uniqueness per host is what matters.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id();
        b = [(t >> 16) as u8, (t >> 8) as u8, t as u8];
    }
    format!("{:02x}{:02x}{:02x}", b[0], b[1], b[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_keeps_root_id() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let mut l = lock(dir.path()).unwrap();
            assert_eq!(l.state.root_id.len(), 6);
            l.state.published.insert(
                "c1".into(),
                Published {
                    stack: "s".into(),
                    ports: vec![],
                    group: None,
                    serving: true,
                },
            );
            l.save().unwrap();
            l.state.root_id.clone()
        };
        let l = lock(dir.path()).unwrap();
        assert_eq!(l.state.root_id, id);
        assert!(l.state.published.contains_key("c1"));
    }
}
