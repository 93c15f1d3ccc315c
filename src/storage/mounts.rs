//! Bind and tmpfs mounts of a container, as values for the runtime, and safe
//! resolution of mount targets inside a container root.
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::{Error, Result};

/// One mount for the runtime, shaped like an OCI runtime-spec `mounts[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute path inside the container.
    pub destination: String,
    /// `bind` or `tmpfs`.
    pub kind: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

/// A bind mount from the stack file (short `./src:/dst:ro` or long syntax).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindSpec {
    /// Host path; relative paths are taken from the stack file's directory.
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
    /// Create a missing source directory: implied by the short syntax, the long
    /// syntax's `bind.create_host_path` otherwise (Compose's rules).
    pub create_host_path: bool,
    /// `bind.propagation`: private, rprivate, shared, rshared, slave, rslave.
    pub propagation: Option<String>,
}

/// A tmpfs mount (`tmpfs:` or `type: tmpfs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmpfsSpec {
    pub target: String,
    /// Bytes; `None` is the kernel's default (half of RAM).
    pub size: Option<u64>,
    /// Permission bits of the mount's root (default 1777 as Docker).
    pub mode: Option<u32>,
    pub read_only: bool,
}

fn check_target(target: &str) -> Result<()> {
    let p = Path::new(target);
    if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(Error::Invalid(format!(
            "mount target {target:?} must be an absolute path without '..'"
        )));
    }
    Ok(())
}

/// Plan a bind mount, creating a missing source directory where the file allows
/// it, owned by `owner` (the service's user) rather than root.
pub fn bind_mount(spec: &BindSpec, base_dir: &Path, owner: Option<(u32, u32)>) -> Result<Mount> {
    check_target(&spec.target)?;
    let source = if spec.source.is_absolute() {
        spec.source.clone()
    } else {
        base_dir.join(&spec.source)
    };
    if fs::symlink_metadata(&source).is_err() {
        if !spec.create_host_path {
            return Err(Error::Invalid(format!(
                "bind source {} does not exist (create it, or set bind.create_host_path: true)",
                source.display()
            )));
        }
        create_dirs_owned(&source, owner)?;
    }
    let source = fs::canonicalize(&source).map_err(|e| Error::io(&source, e))?;
    let mut options = vec![
        "rbind".to_string(),
        if spec.read_only { "ro" } else { "rw" }.to_string(),
    ];
    if let Some(p) = &spec.propagation {
        const KNOWN: [&str; 6] = [
            "private", "rprivate", "shared", "rshared", "slave", "rslave",
        ];
        if !KNOWN.contains(&p.as_str()) {
            return Err(Error::Invalid(format!(
                "bind propagation {p:?} is not one of {}",
                KNOWN.join(", ")
            )));
        }
        options.push(p.clone());
    }
    Ok(Mount {
        destination: spec.target.clone(),
        kind: "bind".into(),
        source,
        options,
    })
}

/// mkdir -p, chowning only the directories this call created.
fn create_dirs_owned(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = path;
    while fs::symlink_metadata(cur).is_err() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
    if let Some((uid, gid)) = owner {
        for dir in missing {
            std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))
                .map_err(|e| Error::io(&dir, e))?;
        }
    }
    Ok(())
}

/// Plan a volume mount (the host path comes from `Volumes::ensure`).
pub fn volume_mount(source: &Path, target: &str, read_only: bool) -> Result<Mount> {
    check_target(target)?;
    Ok(Mount {
        destination: target.to_string(),
        kind: "bind".into(),
        source: source.to_path_buf(),
        options: vec!["rbind".into(), if read_only { "ro" } else { "rw" }.into()],
    })
}

/// Plan a tmpfs mount: nosuid, nodev, with the size and mode asked for.
pub fn tmpfs_mount(spec: &TmpfsSpec) -> Result<Mount> {
    check_target(&spec.target)?;
    let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
    if let Some(size) = spec.size {
        options.push(format!("size={size}"));
    }
    options.push(format!("mode={:o}", spec.mode.unwrap_or(0o1777)));
    if spec.read_only {
        options.push("ro".into());
    }
    Ok(Mount {
        destination: spec.target.clone(),
        kind: "tmpfs".into(),
        source: PathBuf::from("tmpfs"),
        options,
    })
}

/// Open (creating where missing) a mount target inside the container root, with
/// every component resolved inside `rootfs` (openat2 RESOLVE_IN_ROOT): a symlink the
/// image planted (`/data -> /etc`) resolves inside the container, never to the host
/// (CVE-2021-30465-style target swaps). Mount onto the returned O_PATH fd, e.g.
/// move_mount(2) with MOVE_MOUNT_T_EMPTY_PATH or `/proc/self/fd/N`.
pub fn open_mount_target(rootfs: &Path, destination: &str, is_dir: bool) -> Result<OwnedFd> {
    check_target(destination)?;
    let err = |e: rustix::io::Errno| {
        Error::io(&rootfs.join(destination.trim_start_matches('/')), e.into())
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err)?;
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let comps: Vec<&std::ffi::OsStr> = Path::new(destination)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut dir = root;
    for (i, name) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let rel: PathBuf = comps[..=i].iter().collect();
        let root_fd = rustix::fs::open(
            rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        match rustix::fs::openat2(
            &root_fd,
            &rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        ) {
            Ok(fd) => {
                if last {
                    return Ok(fd);
                }
                dir = fd;
            }
            Err(rustix::io::Errno::NOENT) => {
                if last && !is_dir {
                    let f = rustix::fs::openat(
                        &dir,
                        *name,
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    );
                    drop(f.map_err(err)?);
                } else {
                    match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        // A dangling symlink: its target would be outside what exists.
                        Err(rustix::io::Errno::EXIST) => {
                            return Err(Error::Invalid(format!(
                                "mount target {destination}: {} is a dangling symlink in the image",
                                rel.display()
                            )));
                        }
                        Err(e) => return Err(err(e)),
                    }
                }
                let fd = rustix::fs::openat2(
                    &root_fd,
                    &rel,
                    OFlags::PATH | OFlags::CLOEXEC,
                    Mode::empty(),
                    how,
                )
                .map_err(err)?;
                if last {
                    return Ok(fd);
                }
                dir = fd;
            }
            Err(e) => return Err(err(e)),
        }
    }
    // The destination is `/` itself.
    Ok(dir)
}

/// Whether `p` exists as a directory (for choosing `is_dir` of a bind target).
pub fn source_is_dir(p: &Path) -> io::Result<bool> {
    Ok(fs::metadata(p)?.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn bind_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = BindSpec {
            source: "data".into(),
            target: "/data".into(),
            read_only: true,
            ..Default::default()
        };
        assert!(
            bind_mount(&spec, tmp.path(), None).is_err(),
            "create_host_path false must refuse"
        );
        let spec = BindSpec {
            create_host_path: true,
            ..spec
        };
        let m = bind_mount(&spec, tmp.path(), None).unwrap();
        assert!(tmp.path().join("data").is_dir());
        assert_eq!(m.options, vec!["rbind", "ro"]);
        let bad = BindSpec {
            target: "rel".into(),
            ..spec
        };
        assert!(bind_mount(&bad, tmp.path(), None).is_err());
    }

    #[test]
    fn tmpfs_options() {
        let m = tmpfs_mount(&TmpfsSpec {
            target: "/run".into(),
            size: Some(1 << 20),
            mode: Some(0o755),
            read_only: false,
        })
        .unwrap();
        assert_eq!(
            m.options,
            vec!["nosuid", "nodev", "size=1048576", "mode=755"]
        );
    }

    #[test]
    fn mount_targets_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // The image plants /data -> <outside> (absolute): must resolve inside root.
        symlink(&outside, root.join("data")).unwrap();
        let err = open_mount_target(&root, "/data/sub", true);
        assert!(err.is_err() || !outside.join("sub").exists());
        assert!(
            !outside.join("sub").exists(),
            "created a directory outside the root"
        );
        symlink("/", root.join("up")).unwrap();
        open_mount_target(&root, "/up/etc/x", false).unwrap();
        assert!(root.join("etc/x").is_file());
        assert!(!Path::new("/etc/x").exists());
    }
}
