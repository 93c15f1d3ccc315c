//! The errors of `network`: one variant per failing step, carrying the object.
use std::net::IpAddr;
use std::path::PathBuf;

/// Result alias for this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a network operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network spec is invalid (bad subnet, gateway outside subnet, ...).
    #[error("network {network}: {reason}")]
    InvalidSpec { network: String, reason: String },
    /// A feature the spec asks for is not built yet.
    #[error("network {network}: {feature} is not supported yet")]
    Unsupported { network: String, feature: String },
    /// No such network in the state of this root.
    #[error("network {0} does not exist; create it first (ensure_network)")]
    NoSuchNetwork(String),
    /// A link we created or need is not there (removed behind our back?).
    #[error("link {0} does not exist; `stack` recreates it on the next up (recover)")]
    LinkMissing(String),
    /// The default pool has no subnet left that the host does not already route.
    #[error("no free subnet left in the default pool {pool}; give the network a subnet")]
    PoolExhausted { pool: String },
    /// Every address of the subnet (or ip_range) is allocated.
    #[error("network {network}: no free address left in {range}")]
    AddressesExhausted { network: String, range: String },
    /// A static address is already used by another container or is reserved.
    #[error("network {network}: address {addr} is {why}")]
    AddressUnavailable {
        network: String,
        addr: IpAddr,
        why: String,
    },
    /// A host port is already bound by a process or published by another container.
    #[error(
        "host port {ip}:{port}/{proto} is already in use{by}; pick another port or stop its user"
    )]
    PortInUse {
        ip: IpAddr,
        port: u16,
        proto: &'static str,
        by: String,
    },
    /// Reading or writing the network state failed.
    #[error("network state {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Entering a network namespace failed.
    #[error("cannot enter network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A netlink request failed.
    #[error("netlink: {op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// A sysctl could not be written.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `nft` rejected our batch or could not run.
    #[error("nftables: {0}")]
    Nftables(String),
    /// Any other I/O failure (thread spawn, socket probe).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Several independent steps of a teardown failed (rule 7: continue past each).
    #[error("{} cleanup steps failed: {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<Error>),
    /// A failure shared by every request of one batch (the state save or the
    /// nftables apply; see `group.rs`).
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
}

impl Error {
    /// True when the netlink error means "already gone" (ENODEV, ENOENT, ESRCH),
    /// which teardown counts as success (STYLE.md rule 7).
    pub fn is_gone(&self) -> bool {
        match self {
            Error::Netlink {
                source: rtnetlink::Error::NetlinkError(m),
                ..
            } => {
                let code = m.raw_code().abs();
                code == libc_errno::ENODEV
                    || code == libc_errno::ENOENT
                    || code == libc_errno::ESRCH
                    || code == libc_errno::EADDRNOTAVAIL
            }
            _ => false,
        }
    }

    /// True when the netlink error is EEXIST.
    pub fn is_exists(&self) -> bool {
        matches!(self, Error::Netlink { source: rtnetlink::Error::NetlinkError(m), .. }
            if m.raw_code().abs() == libc_errno::EEXIST)
    }

    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
        let op = op.into();
        move |source| Error::Netlink { op, source }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// errno values we branch on (from nix, so no libc dependency of our own).
mod libc_errno {
    use nix::errno::Errno;
    pub const ENODEV: i32 = Errno::ENODEV as i32;
    pub const ENOENT: i32 = Errno::ENOENT as i32;
    pub const ESRCH: i32 = Errno::ESRCH as i32;
    pub const EEXIST: i32 = Errno::EEXIST as i32;
    pub const EADDRNOTAVAIL: i32 = Errno::EADDRNOTAVAIL as i32;
}
