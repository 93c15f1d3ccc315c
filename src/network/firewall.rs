//! Applying a computed ruleset: the `nft` JSON backend and a no-op one.
//!
//! Why `nft -j -f -` rather than raw nf_tables netlink: the JSON batch is one
//! kernel transaction (all or nothing), the format is stable and documented
//! (libnftables-json(5)), and it is what netavark ships; rustables (netlink) is
//! GPL-3.0. The cost is one `nft` process per apply (~3 ms here), paid once per
//! change, not per packet.
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use nftables::schema::Nftables;

use super::{Error, Result};

/// Where rulesets go. Called on a thread inside the target namespace.
pub trait Firewall: Send + Sync {
    /// Apply one batch atomically.
    fn apply(&self, batch: &Nftables) -> Result<()>;
    /// Apply the next batch even when it is the one applied last (something
    /// else changed the ruleset: the daemon's guard).
    fn forget(&self) {}
}

/// Runs `nft -j -f -` (from `$PATH`, Debian package `nftables`), except when
/// the batch is the one it applied last and nothing has changed the ruleset
/// since: every `up` ensures its networks, and an `nft` run costs 5-10 ms of
/// the 100 ms an edit may take to reach its new container.
#[derive(Debug, Default)]
pub struct NftFirewall {
    /// The batch applied last and the ruleset generation right after it.
    last: Mutex<Option<(Vec<u8>, u32)>>,
}

impl Firewall for NftFirewall {
    fn apply(&self, batch: &Nftables) -> Result<()> {
        let json = serde_json::to_vec(batch).map_err(|e| Error::Nftables(e.to_string()))?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let unchanged = last
            .as_ref()
            .is_some_and(|(b, g)| *b == json && generation().ok() == Some(*g));
        if unchanged {
            return Ok(());
        }
        *last = None;
        run_nft(&json)?;
        // Read while this root's state lock is held: no apply of ours can
        // come between; a change by another program makes the next apply run.
        *last = generation().ok().map(|g| (json, g));
        Ok(())
    }

    fn forget(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// linux/netfilter/nfnetlink.h and nf_tables.h.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
const NLMSG_ERROR: u16 = 2;

/// The nf_tables generation of this network namespace: every committed
/// ruleset change, by anyone, increments it (what `nft list ruleset` checks).
fn generation() -> std::io::Result<u32> {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send};
    let sock = nix::sys::socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )?;
    // nlmsghdr (len, type, flags = NLM_F_REQUEST, seq, pid) + nfgenmsg (AF_UNSPEC, v0, res_id 0).
    let mut req = [0u8; 20];
    req[0..4].copy_from_slice(&20u32.to_ne_bytes());
    req[4..6].copy_from_slice(&(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN).to_ne_bytes());
    req[6..8].copy_from_slice(&1u16.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    send(sock.as_raw_fd(), &req, MsgFlags::empty())?;
    let mut buf = [0u8; 512];
    let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    parse_generation(&buf[..n]).ok_or_else(|| std::io::Error::other("no nf_tables generation"))
}

/// NFTA_GEN_ID of an NFT_MSG_NEWGEN answer.
fn parse_generation(msg: &[u8]) -> Option<u32> {
    let u16_at = |i: usize| Some(u16::from_ne_bytes(msg.get(i..i + 2)?.try_into().ok()?));
    if u16_at(4)? == NLMSG_ERROR {
        return None;
    }
    let mut at = 20; // after nlmsghdr and nfgenmsg
    while at + 4 <= msg.len() {
        let len = usize::from(u16_at(at)?);
        if len < 4 {
            return None;
        }
        if u16_at(at + 2)? & 0x3fff == NFTA_GEN_ID {
            return Some(u32::from_be_bytes(
                msg.get(at + 4..at + 8)?.try_into().ok()?,
            ));
        }
        at += (len + 3) & !3;
    }
    None
}

fn run_nft(json: &[u8]) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nftables(format!("cannot run nft (install nftables): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(json)
            .map_err(|e| Error::Nftables(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nftables(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Nftables(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Applies nothing: for hosts where `stack` must not touch the firewall and
/// for tests of everything else.
#[derive(Debug, Clone, Default)]
pub struct NoFirewall;

impl Firewall for NoFirewall {
    fn apply(&self, _batch: &Nftables) -> Result<()> {
        Ok(())
    }
}
