//! Who is calling: the peer credentials of the socket connection (SO_PEERCRED)
//! and the groups of that process, mapped to what it may do.
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

/// The group whose members may do everything.
pub const GROUP: &str = "stack";
/// The group whose members may only read (listings, logs, events).
pub const READ_ONLY_GROUP: &str = "stack-ro";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Full,
    ReadOnly,
    None,
}

/// The caller of one connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// The caller's supplementary groups (from /proc), besides `gid`.
    pub groups: Vec<u32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(c) => Peer {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid(),
                groups: c.pid().map(supplementary_groups).unwrap_or_default(),
            },
            // Unknown callers get nothing.
            Err(_) => Peer {
                uid: u32::MAX,
                gid: u32::MAX,
                pid: None,
                groups: Vec::new(),
            },
        }
    }
}

impl Peer {
    pub fn access(&self) -> Access {
        access(self, group_id(GROUP), group_id(READ_ONLY_GROUP))
    }

    fn in_group(&self, gid: Option<u32>) -> bool {
        gid.is_some_and(|g| self.gid == g || self.groups.contains(&g))
    }
}

fn access(peer: &Peer, full: Option<u32>, read_only: Option<u32>) -> Access {
    if peer.uid == 0 || peer.in_group(full) {
        Access::Full
    } else if peer.in_group(read_only) {
        Access::ReadOnly
    } else {
        Access::None
    }
}

pub fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// `Groups:` of /proc/<pid>/status: the process's supplementary groups as the
/// kernel has them (not what /etc/group says now).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid,
            gid,
            pid: None,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_and_group_members_may_do_everything_read_only_members_read() {
        let (full, ro) = (Some(990), Some(991));
        assert_eq!(access(&peer(0, 0, &[]), full, ro), Access::Full);
        assert_eq!(access(&peer(1000, 990, &[]), full, ro), Access::Full);
        assert_eq!(access(&peer(1000, 1000, &[4, 990]), full, ro), Access::Full);
        assert_eq!(
            access(&peer(1000, 1000, &[991]), full, ro),
            Access::ReadOnly
        );
        assert_eq!(access(&peer(1000, 1000, &[4]), full, ro), Access::None);
        assert_eq!(access(&peer(1000, 1000, &[990]), None, None), Access::None);
    }

    #[test]
    fn groups_come_from_proc() {
        let me = std::process::id() as i32;
        let from_proc = supplementary_groups(me);
        let from_libc: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        assert_eq!(from_proc, from_libc);
    }
}
