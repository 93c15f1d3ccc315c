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
//! # Namespaces and threads
//!
//! Netlink sockets and `nft` always run on a dedicated `std::thread` that
//! `setns()`es into the namespace it works on and then exits ([`netns`]); no tokio
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
pub mod ipam;
pub mod ipam6;
mod manager;
mod names;
mod netlink;
mod netns;
mod ports;
pub mod ruleset;
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
