//! The typed messages between the parent and the container init over a
//! SOCK_SEQPACKET socketpair (one message per send, fixed size, no allocation).
//!
//! Flow: parent -> init `GO` (after uid/gid maps and the cgroup's creation;
//! it carries the v1 `tasks` fds the init writes itself into);
//! init -> parent `PTY` (with the pty master fd, only with a terminal),
//! `SECCOMP` (with the seccomp listener fd, only with `listenerPath`), then
//! either `READY` (waiting on exec.fifo) or `FAIL` (step, index, errno).

/// Parent -> init: namespaces mapped, cgroup ready (joined, or its `tasks`
/// fds attached), go on.
pub(crate) const GO: u8 = b'G';
pub(crate) const TAG_READY: u8 = 1;
pub(crate) const TAG_FAIL: u8 = 2;
pub(crate) const TAG_PTY: u8 = 3;
/// init -> parent: the seccomp listener fd (SCM_RIGHTS), for the seccomp agent.
pub(crate) const TAG_SECCOMP: u8 = 4;

/// The init steps, reported with a failure so the parent can name what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::FromRepr)]
#[repr(u8)]
pub(crate) enum Step {
    Sync = 1,
    SetNs,
    Identity,
    Hostname,
    RootPropagation,
    RootBind,
    Mount,
    Device,
    Symlink,
    Console,
    Sysctl,
    Mask,
    Readonly,
    PivotRoot,
    RootReadonly,
    Rlimit,
    Stdio,
    Seccomp,
    Groups,
    User,
    Capabilities,
    NoNewPrivs,
    Cwd,
    Exec,
    Personality,
    Scheduler,
    Hook,
    Cgroup,
}

impl Step {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Step::Sync => "waiting for the runtime",
            Step::SetNs => "joining a namespace (setns)",
            Step::Identity => "becoming root in the user namespace",
            Step::Hostname => "setting the hostname",
            Step::RootPropagation => "setting root mount propagation",
            Step::RootBind => "bind-mounting the root filesystem",
            Step::Mount => "mounting",
            Step::Device => "creating a device node",
            Step::Symlink => "creating /dev symlinks",
            Step::Console => "setting up the console",
            Step::Sysctl => "writing a sysctl",
            Step::Mask => "masking a path",
            Step::Readonly => "making a path read-only",
            Step::PivotRoot => "pivot_root",
            Step::RootReadonly => "remounting the root read-only",
            Step::Rlimit => "setting an rlimit",
            Step::Stdio => "setting up stdio",
            Step::Seccomp => "loading the seccomp filter",
            Step::Groups => "setting supplementary groups",
            Step::User => "switching uid/gid",
            Step::Capabilities => "setting capabilities",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Cwd => "changing to the working directory",
            Step::Exec => "finding the executable",
            Step::Personality => "setting the personality",
            Step::Scheduler => "setting the I/O priority or scheduler",
            Step::Hook => "running the hook",
            Step::Cgroup => "joining its cgroup",
        }
    }
}

/// `Step::SetNs` indexes above those of `linux.namespaces` paths: the
/// namespaces the init makes itself with unshare.
pub(crate) const UNSHARE_NET: usize = 96;
pub(crate) const TIME_OFFSETS: usize = 97;
pub(crate) const UNSHARE_TIME: usize = 98;
pub(crate) const UNSHARE_CGROUP: usize = 99;

/// A failure inside the init: which step, which item (mount index, ...), errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fail {
    pub step: Step,
    pub index: u32,
    pub errno: i32,
}

impl Fail {
    pub(crate) fn new(step: Step, index: usize, errno: i32) -> Self {
        Fail {
            step,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            errno,
        }
    }

    pub(crate) fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0] = TAG_FAIL;
        b[1] = self.step as u8;
        b[4..8].copy_from_slice(&self.index.to_le_bytes());
        b[8..12].copy_from_slice(&self.errno.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < 12 || b[0] != TAG_FAIL {
            return None;
        }
        Some(Fail {
            step: Step::from_repr(b[1])?,
            index: u32::from_le_bytes(b[4..8].try_into().ok()?),
            errno: i32::from_le_bytes(b[8..12].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_round_trips() {
        let f = Fail::new(Step::Mask, 3, libc::EPERM);
        assert_eq!(Fail::decode(&f.encode()), Some(f));
        assert_eq!(Fail::decode(&[TAG_READY; 12]), None);
    }

    #[test]
    fn every_step_decodes_and_nothing_else() {
        for v in 1..=Step::Cgroup as u8 {
            assert_eq!(Step::from_repr(v).map(|s| s as u8), Some(v));
        }
        assert_eq!(Step::from_repr(0), None);
        assert_eq!(Step::from_repr(Step::Cgroup as u8 + 1), None);
    }
}
