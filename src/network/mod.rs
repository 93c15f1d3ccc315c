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
//! let net = Manager::open(&roots)?;                     // [::1] proxies run this program
//! net.recover()?;                                       // at start: crash leftovers
//! net.ensure_network(&spec)?;                           // per network (idempotent)
//! let eps = net.attach(stack, id, &netns_path, &attachments)?; // after the netns exists
//! net.publish(stack, id, &ports, eps[0].ipv4)?;         // host port 0 -> chosen port returned
//! net.publish_shared(stack, id, &ports, addr, &sharing)?; // replicas share host ports
//! net.move_ports(old, new)?;                            // start-first: traffic to `new` at once
//! files::{hosts, resolv_conf, hostname}(..)             // write into the container
//! net.detach(id)?;                                      // container removed (ports, proxy too)
//! net.remove_stack(stack)?;                             // `down`
//! ```
//!
//! `attach`, `publish`, `unpublish` and `detach` may be called from many
//! threads at once: their state changes are batched (`group.rs`: one lock,
//! one save, one nftables apply per batch) and the netlink work of different
//! containers runs in parallel.
//!
//! Compose `network_mode: host` needs nothing from here, `none` is
//! [`Manager::loopback_only`], `service:`/`container:` join an existing
//! namespace in the runtime. `external: true` networks: find the owner with
//! [`Manager::network_named`] (the name on the host) and attach with the
//! owning stack's name; `remove_stack` of the owner keeps a network that
//! other stacks' containers still use, and the last of them takes it along.
//! Port ranges are expanded by the caller into one [`PortMapping`] per port.
//! Ports on `[::1]` are served by a proxy process per container (`proxy.rs`;
//! the kernel cannot NAT from `::1`), every other port by nftables.
//!
//! # Hosting the resolver (daemon, foreground `up`)
//!
//! ```text
//! let dns = DnsServer::new(tokio_handle, DnsServer::upstreams_from_resolv_conf(&host_resolv));
//! let net = Manager::open(&roots)?.with_dns(dns)?; // listeners for every network in the state,
//!                                                  // table built from the state; one host per root
//! // changes made through `net` update the table (and listeners) at once;
//! // after another process changed the state (CLI up/down; watch net.state_path()):
//! net.refresh_dns()?;
//! net.dns_hosted()      // true in every process of the root while a host lives:
//!                       // the reconciler then writes `nameserver <gateway>` into
//!                       // resolv.conf and no peers into /etc/hosts
//! ```
//!
//! The resolver answers service names, container names and aliases
//! (round-robin over replicas), `host.stack.internal` (the gateway), for
//! clients on that network only (others are refused), and forwards the rest
//! to the host's resolvers (`dns.rs`, `dns_table.rs`). Dropping the
//! `DnsServer` (with its tokio runtime) closes the listeners and the mark.
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
    Attachment, Endpoint, NetworkInfo, NetworkSpec, PortMapping, Proto, PublishedPort, Sharing,
    Standby,
};
