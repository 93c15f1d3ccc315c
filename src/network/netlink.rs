//! The one netlink handle type: links, addresses and routes through rtnetlink.
//!
//! A [`Nl`] wraps a socket opened in whatever namespace the calling thread is
//! in when [`Nl::connect`] runs; use it only inside `netns::run`.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressHeaderFlags;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder,
};

use super::ipam::Cidr4;
use super::{Error, Result};

/// One link of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    /// Its device group (`ip link set DEV group N`); 0 is the default.
    pub group: u32,
}

/// A netlink route socket bound to one namespace.
pub struct Nl {
    handle: Handle,
}

impl Nl {
    /// Open a socket in the calling thread's namespace. Must run inside a tokio
    /// runtime (the connection task is spawned on it).
    pub fn connect() -> Result<Nl> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(Error::io("netlink socket"))?;
        tokio::spawn(conn);
        Ok(Nl { handle })
    }

    /// Index of the link called `name`, `None` when there is none.
    pub async fn index(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(e) => {
                let err = Error::netlink(format!("get link {name}"))(e);
                if err.is_gone() { Ok(None) } else { Err(err) }
            }
        }
    }

    /// Every link of this namespace.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(Error::netlink("dump links"))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| {
                let name = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })?;
                let group = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Group(g) => Some(*g),
                    _ => None,
                });
                Some(Link {
                    name,
                    group: group.unwrap_or(0),
                })
            })
            .collect())
    }

    /// Create the bridge if missing and bring it up in device group `group`
    /// (see [`Nl::del_group`]); returns its index.
    pub async fn ensure_bridge(&self, name: &str, mtu: Option<u32>, group: u32) -> Result<u32> {
        if self.index(name).await?.is_none() {
            // A fixed MAC: otherwise the bridge takes the lowest MAC of its
            // ports and changes it as containers come and go, leaving every
            // container's ARP entry for the gateway stale for seconds.
            // Multicast snooping off: with it, a bridge that has not yet seen a
            // container's MLD report drops the host's IPv6 neighbour
            // solicitations to it (the host then cannot reach that container
            // over IPv6 until the report arrives; measured here).
            let mut b = LinkBridge::new(name)
                .mcast_snooping(false)
                .address(bridge_mac(name).to_vec());
            if let Some(m) = mtu {
                b = b.mtu(m);
            }
            let res = self.handle.link().add(b.build()).execute().await;
            if let Err(e) = res {
                let err = Error::netlink(format!("create bridge {name}"))(e);
                if !err.is_exists() {
                    return Err(err);
                }
            }
        }
        let idx = self
            .index(name)
            .await?
            .ok_or_else(|| Error::LinkMissing(name.to_string()))?;
        // The group is set here for new bridges and for those an older
        // release made outside any group.
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .up()
                    .link_group(group)
                    .build(),
            )
            .execute()
            .await
            .map_err(Error::netlink(format!("set bridge {name} up")))?;
        Ok(idx)
    }

    /// Set a link up.
    pub async fn up(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(Error::netlink(format!("set link {index} up")))
    }

    /// Let the bridge send a frame back out of the port it came in on: a
    /// container reaching its own published port through the host's address
    /// is DNAT'd back to itself (Docker sets the same without its proxy).
    pub async fn hairpin(&self, port: u32) -> Result<()> {
        self.handle
            .link()
            .set_port(LinkBridgePort::new(port).hairpin(true).build())
            .execute()
            .await
            .map_err(Error::netlink(format!("set hairpin on bridge port {port}")))
    }

    /// Add (or keep) an address on a link.
    pub async fn add_addr(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let mut req = self.handle.address().add(index, addr, prefix).replace();
        if addr.is_ipv6() {
            // No duplicate address detection: the address is ours by IPAM, and
            // DAD would leave it "tentative" (unusable) for a second or more.
            req.message_mut().header.flags = AddressHeaderFlags::Nodad;
        }
        req.execute().await.map_err(Error::netlink(format!(
            "add address {addr}/{prefix} to link {index}"
        )))
    }

    /// Create a veth pair: `host` attached to bridge `master` and in its
    /// device group `group`, `peer` created directly inside the namespace
    /// open as `peer_ns` (never visible in the host namespace, so its name
    /// cannot clash there).
    pub async fn create_veth(
        &self,
        host: &str,
        peer: &str,
        peer_ns: &impl AsRawFd,
        master: u32,
        group: u32,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut p = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .setns_by_fd(peer_ns.as_raw_fd());
        let mut h = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .controller(master)
            .link_group(group);
        if let Some(m) = mtu {
            p = p.mtu(m);
            h = h.mtu(m);
        }
        let msg = h
            .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(Error::netlink(format!("create veth {host} <-> {peer}")))
    }

    /// Delete every link of device group `group` in one request: the kernel
    /// unregisters them as one batch, with one `rcu_barrier` (tens of ms
    /// here) for all, where a deletion per link waits for one each.
    pub async fn del_group(&self, group: u32) -> Result<()> {
        let what = format!("delete link group {group}");
        self.del(LinkAttribute::Group(group), what).await
    }

    /// Delete a link by name (one request: the kernel looks the name up);
    /// "already gone" is success.
    pub async fn del_link(&self, name: &str) -> Result<()> {
        let what = format!("delete link {name}");
        self.del(LinkAttribute::IfName(name.to_string()), what)
            .await
    }

    /// RTM_DELLINK of what `select` names; "already gone" is success.
    async fn del(&self, select: LinkAttribute, what: String) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(select);
        match self.handle.link().del_with_message(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = Error::netlink(what)(e);
                if err.is_gone() { Ok(()) } else { Err(err) }
            }
        }
    }

    /// Default route via `gw`.
    pub async fn default_route(&self, gw: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build();
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(Error::netlink(format!("add default route via {gw}")))
    }

    /// Default IPv6 route via `gw`.
    pub async fn default_route6(&self, gw: Ipv6Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).build();
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(Error::netlink(format!("add default route via {gw}")))
    }

    /// Destinations of all IPv4 routes in all tables, the default route excluded.
    pub async fn routed_v4(&self) -> Result<Vec<Cidr4>> {
        let msgs: Vec<_> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(Error::netlink("dump routes"))?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.destination_prefix_length > 0)
            .filter_map(|m| {
                let dst = m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                    _ => None,
                })?;
                Cidr4::new(dst, m.header.destination_prefix_length)
            })
            .collect())
    }
}

/// A locally administered unicast MAC derived from the bridge name (stable
/// across re-creation, so neighbours' ARP caches stay right).
fn bridge_mac(name: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_le_bytes();
    // 0x02: locally administered, unicast (IEEE 802 bit rules)
    [0x02, b[0], b[1], b[2], b[3], b[4]]
}

#[cfg(test)]
mod tests {
    #[test]
    fn bridge_mac_is_local_unicast_and_stable() {
        let m = super::bridge_mac("sabcdefb1234567");
        assert_eq!(m[0] & 0x03, 0x02);
        assert_eq!(m, super::bridge_mac("sabcdefb1234567"));
        assert_ne!(m, super::bridge_mac("sabcdefb1234568"));
    }
}
