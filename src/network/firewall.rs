//! Applying a computed ruleset: the `nft` JSON backend and a no-op one.
//!
//! Why `nft -j -f -` rather than raw nf_tables netlink: the JSON batch is one
//! kernel transaction (all or nothing), the format is stable and documented
//! (libnftables-json(5)), and it is what netavark ships; rustables (netlink) is
//! GPL-3.0. The cost is one `nft` process per apply (~3 ms here), paid once per
//! change, not per packet.
use std::io::Write;
use std::process::{Command, Stdio};

use nftables::schema::Nftables;

use super::{Error, Result};

/// Where rulesets go. Called on a thread inside the target namespace.
pub trait Firewall: Send + Sync {
    /// Apply one batch atomically.
    fn apply(&self, batch: &Nftables) -> Result<()>;
}

/// Runs `nft -j -f -` (from `$PATH`, Debian package `nftables`).
#[derive(Debug, Clone, Default)]
pub struct NftFirewall;

impl Firewall for NftFirewall {
    fn apply(&self, batch: &Nftables) -> Result<()> {
        let json = serde_json::to_vec(batch).map_err(|e| Error::Nftables(e.to_string()))?;
        let mut child = Command::new("nft")
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Nftables(format!("cannot run nft (install nftables): {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&json)
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
