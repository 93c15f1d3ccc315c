//! The nftables guard: when something else removes this root's table (`nft
//! flush ruleset`, a firewall reload that starts with one), put it back at
//! once from the network state, touching no container.
//!
//! Flow: a raw `NETLINK_NETFILTER` socket, opened in the daemon's network
//! namespace (the one its network manager works in), joins the
//! `NFNLGRP_NFTABLES` multicast group, which the kernel sends every committed
//! nf_tables change to (what `nft monitor` reads; nf_tables_api.c
//! `nf_tables_table_notify`). A dedicated thread blocks on it; a deleted table
//! or chain named like ours -> read what else is queued (one flush is a burst
//! of messages) -> [`Manager::restore_firewall`] (one `nft` batch).
//!
//! Why these two messages only: our own applies flush our chains, which the
//! kernel reports as deleted rules (`NFT_MSG_DELRULE`), so reacting to those
//! would loop; they never delete our table or a chain, except when the last
//! network goes, and then the state has no network and restoring does nothing.
//! When the socket overflows (ENOBUFS: messages were lost), we restore anyway;
//! an apply of a present table is harmless (one atomic batch).
use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, setsockopt,
    socket, sockopt,
};

use crate::network::Manager;

/// linux/netfilter/nfnetlink.h
const NFNLGRP_NFTABLES: u32 = 7;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// linux/netfilter/nf_tables.h `enum nf_tables_msg_types`
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_DELCHAIN: u16 = 5;
/// `NFTA_TABLE_NAME` and `NFTA_CHAIN_TABLE` are both attribute 1.
const ATTR_TABLE: u16 = 1;
/// Type bits of an attribute (without NLA_F_NESTED / NLA_F_NET_BYTEORDER).
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// Start guarding `net`'s table. An error (no netfilter netlink here) is
/// returned for the caller to log: the daemon works on without the guard.
pub fn spawn(net: Manager) -> std::io::Result<()> {
    let sock = subscribe()?;
    std::thread::Builder::new()
        .name("stack-nft-guard".into())
        .spawn(move || watch(&sock, &net))?;
    Ok(())
}

fn subscribe() -> std::io::Result<OwnedFd> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )?;
    // Groups 1..=32 can be joined by the bind mask (netlink(7)).
    bind(
        sock.as_raw_fd(),
        &NetlinkAddr::new(0, 1 << (NFNLGRP_NFTABLES - 1)),
    )?;
    // Room for the burst a big ruleset change sends; overflow only costs an
    // unneeded restore.
    let _ = setsockopt(&sock, sockopt::RcvBuf, &(1 << 20));
    Ok(sock)
}

/// What a burst of messages removed.
#[derive(Default)]
struct Removed {
    tables: BTreeSet<Vec<u8>>,
    /// Messages were lost (ENOBUFS): anything may have been removed.
    lost: bool,
}

impl Removed {
    fn read(&mut self, got: nix::Result<usize>, buf: &[u8]) -> nix::Result<()> {
        match got {
            Ok(n) => self.tables.extend(removed_tables(&buf[..n])),
            Err(Errno::ENOBUFS) => self.lost = true,
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

fn watch(sock: &OwnedFd, net: &Manager) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut removed = Removed::default();
        let got = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty());
        match removed.read(got, &buf) {
            Ok(()) | Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!(error = %e, "the nftables guard stops: reading netlink failed");
                return;
            }
        }
        if removed.tables.is_empty() && !removed.lost {
            continue;
        }
        // The rest of the burst (a flush is many messages), without waiting.
        loop {
            let got = recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT);
            if removed.read(got, &buf).is_err() {
                break;
            }
        }
        restore(net, &removed);
    }
}

fn restore(net: &Manager, removed: &Removed) {
    // Asked now, not at start: the root's id is chosen with its first network.
    let table = match net.table_name() {
        Ok(t) => t,
        Err(e) => return tracing::error!(error = %e, "the nftables guard cannot read the state"),
    };
    if !removed.lost && !removed.tables.contains(table.as_bytes()) {
        return;
    }
    let started = std::time::Instant::now();
    match net.restore_firewall() {
        Ok(true) => tracing::warn!(
            %table,
            took_ms = started.elapsed().as_millis() as u64,
            "something removed our nftables table (nft flush ruleset? a firewall reload?): restored it"
        ),
        Ok(false) => {}
        Err(e) => tracing::error!(%table, error = %e, "restoring our nftables table failed"),
    }
}

/// The tables that one datagram of netlink messages deletes, or deletes a
/// chain of.
fn removed_tables(mut buf: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let deletes = ty == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE)
            || ty == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELCHAIN);
        if deletes
            && let Some(attrs) = buf[..len].get(NLMSG_HDRLEN + NFGENMSG_LEN..)
            && let Some(table) = table_attr(attrs)
        {
            out.push(table.to_vec());
        }
        buf = &buf[align(len).min(buf.len())..];
    }
    out
}

/// The table name attribute of a message's attributes (NUL stripped).
fn table_attr(mut attrs: &[u8]) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if ty == ATTR_TABLE {
            let value = &attrs[4..len];
            return Some(value.strip_suffix(&[0]).unwrap_or(value));
        }
        attrs = &attrs[align(len).min(attrs.len())..];
    }
    None
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One netlink message of subsystem nf_tables: header, nfgenmsg, and a
    /// string attribute 1 (the table name) plus an unrelated attribute.
    fn msg(kind: u16, table: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        let mut attr = |ty: u16, value: &[u8]| {
            let len = 4 + value.len();
            attrs.extend((len as u16).to_ne_bytes());
            attrs.extend(ty.to_ne_bytes());
            attrs.extend(value);
            attrs.resize(align(attrs.len()), 0);
        };
        attr(3, &7u32.to_be_bytes());
        attr(ATTR_TABLE, format!("{table}\0").as_bytes());
        let len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.len();
        let mut m = Vec::new();
        m.extend((len as u32).to_ne_bytes());
        m.extend((NFNL_SUBSYS_NFTABLES << 8 | kind).to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend([1u8, 0, 0, 0]);
        m.extend(attrs);
        m
    }

    fn removes(buf: &[u8], table: &str) -> bool {
        removed_tables(buf).contains(&table.as_bytes().to_vec())
    }

    #[test]
    fn a_deleted_table_or_chain_of_ours_is_seen() {
        assert!(removes(
            &msg(NFT_MSG_DELTABLE, "stack_ab12cd"),
            "stack_ab12cd"
        ));
        assert!(removes(
            &msg(NFT_MSG_DELCHAIN, "stack_ab12cd"),
            "stack_ab12cd"
        ));
        // several messages in one datagram (a flush): ours is the second
        let mut burst = msg(NFT_MSG_DELTABLE, "filter");
        burst.extend(msg(NFT_MSG_DELTABLE, "stack_ab12cd"));
        assert!(removes(&burst, "stack_ab12cd"));
    }

    #[test]
    fn our_own_applies_and_other_tables_are_not() {
        // a flushed chain of ours is reported as deleted rules
        assert!(!removes(&msg(8, "stack_ab12cd"), "stack_ab12cd"));
        assert!(!removes(&msg(0, "stack_ab12cd"), "stack_ab12cd"));
        assert!(!removes(
            &msg(NFT_MSG_DELTABLE, "stack_ab12"),
            "stack_ab12cd"
        ));
        assert!(!removes(&msg(NFT_MSG_DELTABLE, "filter"), "stack_ab12cd"));
        // truncated input is not read past its end
        let m = msg(NFT_MSG_DELTABLE, "stack_ab12cd");
        assert!(removed_tables(&m[..m.len() - 6]).is_empty());
    }
}
