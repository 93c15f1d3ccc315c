//! Container networking: Linux bridges, veth pairs, persistent IPAM, nftables NAT
//! and published ports, and the files (`/etc/hosts`, `/etc/resolv.conf`,
//! `/etc/hostname`) a container needs to find its peers.
//!
//! # Shape
//!
//! [`Manager`] is the one entry point. Every operation follows the same order
//! (STYLE.md rules 3 and 6):
//!
//! 1. take the state lock (`flock` on `<lib>/network/lock`), load the state;
//! 2. validate and compute the new state as a value (IPAM, port checks) — an
//!    error here changes nothing;
//! 3. write the new state (intent first, so a crash leaves a record of what may
//!    exist on the host and the next `recover`/`remove_stack` can delete it);
//! 4. act on the kernel: links and addresses through rtnetlink, then the whole
//!    nftables table of this state root, rebuilt from the state as one value
//!    ([`ruleset::build`]) and applied in one atomic `nft -j -f -` batch.
//!
//! # Use (what the reconciler calls)
//!
//! ```text
//! let dns = DnsServer::new(tokio_handle, DnsServer::upstreams_from_resolv_conf(&host_resolv));
//! let net = Manager::open(&roots)?.with_dns(dns)?;      // once per daemon
//! net.recover()?;                                       // at start: crash leftovers
//! net.ensure_network(&spec)?;                           // per network (idempotent)
//! let eps = net.attach(id, &netns_path, &attachments)?; // after the runtime made the netns
//! net.publish(stack, id, &ports, eps[0].ipv4)?;         // host port 0 -> chosen port returned
//! files::{hosts, resolv_conf, hostname}(..)             // write into the container
//! net.detach(id)?;                                      // container removed
//! net.remove_stack(stack)?;                             // `down`
//! ```
//!
//! Compose `network_mode: host` needs nothing from here, `none` is
//! [`Manager::loopback_only`], `service:`/`container:` join an existing
//! namespace in the runtime. `external: true` networks: check
//! [`Manager::network`] and attach with the owning stack's name. Port ranges
//! are expanded by the caller into one [`PortMapping`] per port.
//!
//! # Namespaces and threads
//!
//! Netlink sockets and `nft` always run on a dedicated `std::thread` that
//! `setns()`es into the namespace it works on and then exits (`netns.rs`); no tokio
//! worker ever changes namespace, so the manager is safe to call from a
//! multi-threaded daemon (blocking calls: use `spawn_blocking`).
//!
//! # Names (unique per state root, recognisable for crash recovery)
//!
//! Each state root has a random 6-hex-digit id `R` kept in the state file.
//! Bridges are `s<R>b<7 hex>`, host-side veths `s<R>v<7 hex>` (15 chars, the
//! kernel's IFNAMSIZ-1), the nftables table is `inet stack_<R>`. `recover`
//! removes links with the `s<R>` prefix that the state does not know and nothing
//! else.
mod attach;
mod dns;
pub mod dns_table;
mod error;
pub mod files;
mod firewall;
mod group;
pub mod ipam;
pub mod ipam6;
mod manager;
mod names;
mod netlink;
mod netns;
mod ports;
pub mod proxy;
pub mod ruleset;
pub mod sandbox;
mod spec_check;
mod store;
mod types;

pub use dns::DnsServer;
pub use error::{Error, Result};
pub use firewall::{Firewall, NftFirewall, NoFirewall};
pub use ipam::Cidr4;
pub use ipam6::Cidr6;
pub use manager::Manager;
pub use types::{
    Attachment, Endpoint, NetworkInfo, NetworkSpec, PortMapping, Proto, PublishedPort,
};
