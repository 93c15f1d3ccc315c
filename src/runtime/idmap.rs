//! Idmapped bind mounts (mount_setattr(2) MOUNT_ATTR_IDMAP), made in the parent.
//!
//! Flow, per idmapped mount, before clone:
//! 1. a user namespace carrying the mount's mapping: a throwaway child is cloned
//!    into a new user namespace, the parent writes its uid_map/gid_map through the
//!    verified procfs, opens `/proc/<pid>/ns/user` and lets the child exit (the fd
//!    keeps the namespace alive). Namespaces with the same mapping are shared. A
//!    container that joins a user namespace by path uses that one instead;
//! 2. `open_tree(source, OPEN_TREE_CLONE)` (AT_RECURSIVE for rbind): a detached
//!    copy of the source mount;
//! 3. `mount_setattr(tree, MOUNT_ATTR_IDMAP, userns)` (AT_RECURSIVE for ridmap).
//!
//! The init then only attaches the tree with move_mount(2) at the destination it
//! resolved inside the root (`rootfs.rs`).
//!
//! Why in the parent: the kernel requires CAP_SYS_ADMIN over the user namespace
//! of the source's superblock (the initial one for host filesystems) and a mount
//! that was never attached; an init that is already in the container's user
//! namespace has neither. Moving a detached tree only needs CAP_SYS_ADMIN over
//! its own mount namespace.
//!
//! Mapping direction: as runc, the mount's `containerID hostID size` lines are
//! written as they are to the new namespace, so a file owned by `containerID` on
//! disk appears owned by `hostID` through the mount (and, in a container whose
//! user namespace maps `hostID` back to `containerID`, as `containerID` inside).
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::plan::IdmapPlan;
use super::{Error, Result, sys};

const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Where the user namespace of an idmapped mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UsernsSource {
    /// uid_map and gid_map contents of a namespace made for the mount.
    Maps { uid: String, gid: String },
    /// The container joins this user namespace (linux.namespaces path).
    Path(PathBuf),
}

/// The kernel calls of the preparation: the seam that lets the logic above
/// them (namespace sharing, flags, error mapping) be unit-tested with a fake.
pub(crate) trait IdmapSys {
    /// A new user namespace with these uid_map / gid_map contents.
    fn userns_with_maps(&mut self, uid_map: &str, gid_map: &str) -> Result<OwnedFd>;
    /// An existing user namespace (a `/proc/<pid>/ns/user` style path).
    fn open_userns(&mut self, path: &Path) -> Result<OwnedFd>;
    /// open_tree(OPEN_TREE_CLONE), with AT_RECURSIVE if `recursive`.
    fn open_tree(&mut self, source: &CStr, recursive: bool) -> nix::Result<OwnedFd>;
    /// mount_setattr(MOUNT_ATTR_IDMAP), with AT_RECURSIVE if `recursive`.
    fn set_idmap(
        &mut self,
        tree: BorrowedFd<'_>,
        userns: BorrowedFd<'_>,
        recursive: bool,
    ) -> nix::Result<()>;
}

/// The real kernel; `proc_fd` is the verified host procfs.
pub(crate) struct Kernel {
    pub proc_fd: RawFd,
}

impl IdmapSys for Kernel {
    fn userns_with_maps(&mut self, uid_map: &str, gid_map: &str) -> Result<OwnedFd> {
        userns_with_maps(uid_map, gid_map, self.proc_fd)
    }

    fn open_userns(&mut self, path: &Path) -> Result<OwnedFd> {
        std::fs::File::open(path)
            .map(OwnedFd::from)
            .map_err(|source| Error::Io {
                op: "opening user namespace",
                path: path.into(),
                source,
            })
    }

    fn open_tree(&mut self, source: &CStr, recursive: bool) -> nix::Result<OwnedFd> {
        let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
        if recursive {
            flags |= libc::AT_RECURSIVE as libc::c_uint;
        }
        // SAFETY: source is NUL-terminated; open_tree returns a new fd or -1.
        let tree =
            unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, source.as_ptr(), flags) };
        if tree < 0 {
            return Err(nix::Error::last());
        }
        #[allow(clippy::cast_possible_truncation)]
        // SAFETY: open_tree returned a new fd owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(tree as RawFd) })
    }

    fn set_idmap(
        &mut self,
        tree: BorrowedFd<'_>,
        userns: BorrowedFd<'_>,
        recursive: bool,
    ) -> nix::Result<()> {
        #[allow(clippy::cast_sign_loss)]
        let attr = libc::mount_attr {
            attr_set: libc::MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        let rec = if recursive {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
        sys::mount_setattr(tree.as_raw_fd(), rec, &attr).map_err(nix::Error::from_raw)
    }
}

/// The detached, idmapped trees of `plans`, in order (module docs, steps 1-3).
/// Plans with the same mapping share one user namespace.
pub(crate) fn prepare(sys: &mut dyn IdmapSys, plans: &[IdmapPlan]) -> Result<Vec<OwnedFd>> {
    let mut namespaces: Vec<(&UsernsSource, OwnedFd)> = Vec::new();
    let mut trees = Vec::with_capacity(plans.len());
    for p in plans {
        let i = match namespaces.iter().position(|(s, _)| *s == &p.userns) {
            Some(i) => i,
            None => {
                let fd = match &p.userns {
                    UsernsSource::Path(path) => sys.open_userns(path)?,
                    UsernsSource::Maps { uid, gid } => sys.userns_with_maps(uid, gid)?,
                };
                namespaces.push((&p.userns, fd));
                namespaces.len() - 1
            }
        };
        let tree = sys
            .open_tree(&p.source, p.recursive_tree)
            .map_err(|e| refused(p, "open_tree", e))?;
        sys.set_idmap(tree.as_fd(), namespaces[i].1.as_fd(), p.recursive_idmap)
            .map_err(|e| refused(p, "mount_setattr(MOUNT_ATTR_IDMAP)", e))?;
        trees.push(tree);
    }
    Ok(trees)
}

/// A user namespace with these maps, held by an fd (see the module docs, step 1).
fn userns_with_maps(uid_map: &str, gid_map: &str, proc_fd: RawFd) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|source| Error::Sys { op: "pipe", source })?;
    #[allow(clippy::cast_sign_loss)]
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone without CLONE_VM behaves like fork(2). The child makes only
    // async-signal-safe calls (close, read, _exit) and never returns.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        sys::close(w.as_raw_fd());
        let mut b = [0u8; 1];
        // Returns (EOF) when the parent closes its end: the maps are written
        // and the namespace is held by the parent's fd.
        let _ = sys::read_some(r.as_raw_fd(), &mut b);
        // SAFETY: _exit never returns and runs no atexit handlers of the parent.
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        return Err(Error::Sys {
            op: "clone(CLONE_NEWUSER) for an idmapped mount",
            source: nix::Error::last(),
        });
    }
    drop(r);
    #[allow(clippy::cast_possible_truncation)]
    let pid = pid as i32;
    let result = write_maps_and_open(pid, uid_map, gid_map, proc_fd);
    drop(w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}

fn write_maps_and_open(pid: i32, uid_map: &str, gid_map: &str, proc_fd: RawFd) -> Result<OwnedFd> {
    super::spawn::write_proc(proc_fd, &format!("{pid}/uid_map"), uid_map)?;
    super::spawn::write_proc(proc_fd, &format!("{pid}/gid_map"), gid_map)?;
    let rel = CString::new(format!("{pid}/ns/user")).map_err(|_| Error::Invalid {
        field: "pid".into(),
        reason: "NUL".into(),
    })?;
    // A magic link (openat2's RESOLVE_* would refuse it), below the verified
    // procfs in our own child's directory; checked to be a namespace file.
    // SAFETY: rel is NUL-terminated; openat returns a new fd or -1.
    let fd = unsafe { libc::openat(proc_fd, rel.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::Sys {
            op: "opening the user namespace of an idmapped mount",
            source: nix::Error::last(),
        });
    }
    // SAFETY: openat returned a new fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    match sys::fstatfs_type(fd.as_raw_fd()) {
        Ok(NSFS_MAGIC) => Ok(fd),
        _ => Err(Error::Unsupported {
            what: format!("/proc/{pid}/ns/user"),
            hint: "not a namespace file (nsfs)".into(),
        }),
    }
}

/// The kernel's refusals, with what they mean for an idmapped mount.
fn refused(p: &IdmapPlan, op: &str, e: nix::Error) -> Error {
    let source = p.source.to_string_lossy();
    let hint = match e {
        nix::Error::ENOSYS => "the kernel is older than 5.12 (no mount_setattr)".to_string(),
        nix::Error::EINVAL => format!(
            "the filesystem of {source} does not support idmapped mounts \
             (ext4, xfs, btrfs, tmpfs >= 6.3, overlayfs >= 5.19 do), or it is already idmapped"
        ),
        nix::Error::EPERM => format!(
            "not permitted: idmapping {source} needs root in the initial user namespace, \
             and the mapping must not be the identity of the initial namespace"
        ),
        e => format!("{op} failed for {source}: {e}"),
    };
    Error::Unsupported {
        what: format!("the idmapped mount of {source} at {}", p.dest),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel call, with fds named by creation order.
    #[derive(Debug, PartialEq, Eq)]
    enum Call {
        UsernsWithMaps {
            uid: String,
            gid: String,
        },
        OpenUserns(PathBuf),
        OpenTree {
            source: String,
            recursive: bool,
        },
        SetIdmap {
            tree: usize,
            userns: usize,
            recursive: bool,
        },
    }

    /// Records calls; hands out /dev/null fds, told apart by their numbers
    /// (none is closed during one `prepare`). `refuse` fails set_idmap.
    #[derive(Default)]
    struct Fake {
        calls: Vec<Call>,
        fds: Vec<RawFd>,
        refuse: Option<nix::Error>,
    }

    impl Fake {
        fn fd(&mut self) -> OwnedFd {
            let f = std::fs::File::open("/dev/null").unwrap();
            self.fds.push(f.as_raw_fd());
            f.into()
        }

        fn name(&self, fd: BorrowedFd<'_>) -> usize {
            self.fds.iter().position(|f| *f == fd.as_raw_fd()).unwrap()
        }
    }

    impl IdmapSys for Fake {
        fn userns_with_maps(&mut self, uid: &str, gid: &str) -> Result<OwnedFd> {
            self.calls.push(Call::UsernsWithMaps {
                uid: uid.into(),
                gid: gid.into(),
            });
            Ok(self.fd())
        }

        fn open_userns(&mut self, path: &Path) -> Result<OwnedFd> {
            self.calls.push(Call::OpenUserns(path.into()));
            Ok(self.fd())
        }

        fn open_tree(&mut self, source: &CStr, recursive: bool) -> nix::Result<OwnedFd> {
            self.calls.push(Call::OpenTree {
                source: source.to_string_lossy().into(),
                recursive,
            });
            Ok(self.fd())
        }

        fn set_idmap(
            &mut self,
            tree: BorrowedFd<'_>,
            userns: BorrowedFd<'_>,
            recursive: bool,
        ) -> nix::Result<()> {
            let call = Call::SetIdmap {
                tree: self.name(tree),
                userns: self.name(userns),
                recursive,
            };
            self.calls.push(call);
            self.refuse.map_or(Ok(()), Err)
        }
    }

    fn maps(n: u32) -> UsernsSource {
        UsernsSource::Maps {
            uid: format!("0 {n} 1\n"),
            gid: format!("0 {n} 1\n"),
        }
    }

    fn plan(source: &str, userns: UsernsSource, rbind: bool, ridmap: bool) -> IdmapPlan {
        IdmapPlan {
            source: CString::new(source).unwrap(),
            dest: format!("/mnt{source}"),
            recursive_tree: rbind,
            recursive_idmap: ridmap,
            userns,
        }
    }

    #[test]
    fn one_namespace_per_mapping_and_flags_pass_through() {
        let mut fake = Fake::default();
        let plans = [
            plan("/a", maps(1000), true, false),
            plan("/b", maps(1000), false, true),
            plan(
                "/c",
                UsernsSource::Path("/proc/7/ns/user".into()),
                true,
                true,
            ),
        ];
        let trees = prepare(&mut fake, &plans).unwrap();
        assert_eq!(trees.len(), 3);
        let tree = |s: &str, recursive| Call::OpenTree {
            source: s.into(),
            recursive,
        };
        assert_eq!(
            fake.calls,
            [
                Call::UsernsWithMaps {
                    uid: "0 1000 1\n".into(),
                    gid: "0 1000 1\n".into()
                },
                tree("/a", true),
                Call::SetIdmap {
                    tree: 1,
                    userns: 0,
                    recursive: false
                },
                // Same mapping: the namespace is reused, not made again.
                tree("/b", false),
                Call::SetIdmap {
                    tree: 2,
                    userns: 0,
                    recursive: true
                },
                Call::OpenUserns("/proc/7/ns/user".into()),
                tree("/c", true),
                Call::SetIdmap {
                    tree: 4,
                    userns: 3,
                    recursive: true
                },
            ]
        );
    }

    #[test]
    fn the_kernels_refusal_names_the_mount_and_the_reason() {
        for (errno, says) in [
            (nix::Error::EINVAL, "does not support idmapped mounts"),
            (nix::Error::EPERM, "not permitted"),
            (nix::Error::ENOSYS, "older than 5.12"),
        ] {
            let mut fake = Fake {
                refuse: Some(errno),
                ..Default::default()
            };
            let e = prepare(&mut fake, &[plan("/src", maps(5), false, false)]).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("/src at /mnt/src") && e.to_string().contains("idmapped"),
                "{msg}"
            );
            let Error::Unsupported { hint, .. } = e else {
                panic!("{msg}")
            };
            assert!(hint.contains(says), "{hint}");
        }
    }
}
