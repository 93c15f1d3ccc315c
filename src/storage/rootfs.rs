//! Root filesystems: image layers as overlayfs lower directories, plus the
//! container's own upper and work directories.
//!
//! The mount data of mount(2) is limited to one page (4096 bytes), which 40-odd
//! layer paths under /var/lib fill. Longer stacks (and paths holding `:` `,` `\`,
//! which the monolithic option string would need escaped) are mounted with the new
//! mount API instead: fsopen(2) + one `fsconfig(FSCONFIG_SET_STRING, "lowerdir+")`
//! per layer (Linux 6.8, overlayfs "lowerdir+"), which has no total-length limit and
//! takes each path literally. No chdir tricks, no process-wide state.
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount,
};

use super::{Error, Result};

/// Mount data must fit in one page including the terminating NUL.
const MOUNT_DATA_MAX: usize = 4095;

/// How a container's root filesystem is assembled (recorded with the
/// container, so a start after a reboot can mount it again).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootfsPlan {
    /// overlayfs. `lower` is in overlayfs order: the topmost layer first. Without
    /// `upper` (read-only container) there are at least two lowers.
    Overlay {
        lower: Vec<PathBuf>,
        upper: Option<PathBuf>,
        work: Option<PathBuf>,
    },
    /// One directory, bind-mounted read-only (a read-only container over a single
    /// layer: overlayfs refuses one lower without an upper).
    ReadOnlyBind { source: PathBuf },
}

/// Plan the root filesystem of the container whose directory is `container_dir`.
/// `layers` are bottom first (as `image::Image::layers`); an image without layers
/// gets `<container_dir>/empty` as its only lower.
pub fn rootfs_plan(container_dir: &Path, layers: &[PathBuf], read_only: bool) -> RootfsPlan {
    let mut lower: Vec<PathBuf> = layers.iter().rev().cloned().collect();
    if lower.is_empty() {
        lower.push(container_dir.join("empty"));
    }
    if read_only {
        if lower.len() == 1 {
            return RootfsPlan::ReadOnlyBind {
                source: lower.remove(0),
            };
        }
        return RootfsPlan::Overlay {
            lower,
            upper: None,
            work: None,
        };
    }
    RootfsPlan::Overlay {
        lower,
        upper: Some(container_dir.join("upper")),
        work: Some(container_dir.join("work")),
    }
}

impl RootfsPlan {
    /// The plan with `top` as the topmost lower layer (see mountpoints.rs).
    pub fn under(self, top: PathBuf) -> RootfsPlan {
        match self {
            RootfsPlan::Overlay {
                mut lower,
                upper,
                work,
            } => {
                lower.insert(0, top);
                RootfsPlan::Overlay { lower, upper, work }
            }
            RootfsPlan::ReadOnlyBind { source } => RootfsPlan::Overlay {
                lower: vec![top, source],
                upper: None,
                work: None,
            },
        }
    }

    /// The mount(2) data string, or `None` when it cannot be one (too long, or a
    /// path needs escaping); `mount_rootfs` then uses the new mount API.
    pub fn mount_data(&self) -> Option<String> {
        let RootfsPlan::Overlay { lower, upper, work } = self else {
            return None;
        };
        let all = lower.iter().chain(upper).chain(work);
        let mut plain = Vec::new();
        for p in all {
            let s = p.to_str()?;
            if s.contains([':', ',', '\\']) {
                return None;
            }
            plain.push(s);
        }
        let mut data = format!("lowerdir={}", plain[..lower.len()].join(":"));
        if let (Some(u), Some(w)) = (
            upper.as_ref().and_then(|p| p.to_str()),
            work.as_ref().and_then(|p| p.to_str()),
        ) {
            data.push_str(&format!(",upperdir={u},workdir={w}"));
        }
        (data.len() <= MOUNT_DATA_MAX).then_some(data)
    }
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Mount the planned root filesystem on `target` (an existing directory), creating
/// the container's upper/work (or empty) directories as needed.
pub fn mount_rootfs(plan: &RootfsPlan, target: &Path) -> Result<()> {
    match plan {
        RootfsPlan::ReadOnlyBind { source } => {
            if source.file_name().is_some_and(|n| n == "empty") {
                mkdir(source, 0o755)?;
            }
            bind_read_only(source, target)
        }
        RootfsPlan::Overlay { lower, upper, work } => {
            for dir in lower
                .iter()
                .filter(|p| p.file_name().is_some_and(|n| n == "empty"))
            {
                mkdir(dir, 0o755)?;
            }
            if let (Some(upper), Some(work)) = (upper, work) {
                mkdir(upper, 0o755)?;
                mkdir(work, 0o700)?;
            }
            let err = |source: io::Error| Error::Mount {
                what: "overlay".into(),
                target: target.to_path_buf(),
                source,
            };
            match plan.mount_data() {
                Some(data) => {
                    let data =
                        std::ffi::CString::new(data).map_err(|e| err(io::Error::other(e)))?;
                    rustix::mount::mount(
                        "overlay",
                        target,
                        "overlay",
                        MountFlags::empty(),
                        data.as_c_str(),
                    )
                    .map_err(|e| err(e.into()))
                }
                None => mount_overlay_fsconfig(lower, upper.as_deref(), work.as_deref(), target)
                    .map_err(err),
            }
        }
    }
}

fn mount_overlay_fsconfig(
    lower: &[PathBuf],
    upper: Option<&Path>,
    work: Option<&Path>,
    target: &Path,
) -> io::Result<()> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, "source", "overlay")?;
    for dir in lower {
        fsconfig_set_string(&fs, "lowerdir+", dir.as_path()).map_err(|e| {
            if e == rustix::io::Errno::INVAL {
                io::Error::other(format!(
                    "the kernel refused lowerdir+ for {} (needs Linux 6.8 or later for images with this many layers)",
                    dir.display()
                ))
            } else {
                e.into()
            }
        })?;
    }
    if let (Some(upper), Some(work)) = (upper, work) {
        fsconfig_set_string(&fs, "upperdir", upper)?;
        fsconfig_set_string(&fs, "workdir", work)?;
    }
    fsconfig_create(&fs)?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    let err = |source_err: rustix::io::Errno| Error::Mount {
        what: format!("bind of {}", source.display()),
        target: target.to_path_buf(),
        source: source_err.into(),
    };
    rustix::mount::mount_bind(source, target).map_err(err)?;
    // A bind mount ignores MS_RDONLY on creation: remount it (mount(8) does the same).
    if let Err(e) = rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")
    {
        let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
        return Err(err(e));
    }
    Ok(())
}

/// Unmount a root filesystem; not mounted (or gone) counts as done. A busy mount
/// is detached (lazy unmount) so teardown always makes progress.
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    let err = |e: rustix::io::Errno| Error::Unmount {
        target: target.to_path_buf(),
        source: e.into(),
    };
    match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => Ok(()),
        Err(e) if e == rustix::io::Errno::BUSY => {
            rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)
                .map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Remove a container's upper, work and empty directories (its writes). Call after
/// [`unmount_rootfs`]; missing directories count as removed.
pub fn remove_rootfs_dirs(container_dir: &Path) -> Result<()> {
    let mut first_err = None;
    for name in ["upper", "work", "empty"] {
        let p = container_dir.join(name);
        match fs::remove_dir_all(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first_err.get_or_insert(Error::io(&p, e));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn plan_orders_layers_top_first() {
        let plan = rootfs_plan(Path::new("/c"), &paths(&["/l/bottom", "/l/top"]), false);
        assert_eq!(
            plan,
            RootfsPlan::Overlay {
                lower: paths(&["/l/top", "/l/bottom"]),
                upper: Some("/c/upper".into()),
                work: Some("/c/work".into()),
            }
        );
        assert_eq!(
            plan.mount_data().unwrap(),
            "lowerdir=/l/top:/l/bottom,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn read_only_single_layer_is_a_bind() {
        assert_eq!(
            rootfs_plan(Path::new("/c"), &paths(&["/rootfs"]), true),
            RootfsPlan::ReadOnlyBind {
                source: "/rootfs".into()
            }
        );
        let ro = rootfs_plan(Path::new("/c"), &paths(&["/a", "/b"]), true);
        assert_eq!(ro.mount_data().unwrap(), "lowerdir=/b:/a");
    }

    #[test]
    fn long_or_odd_plans_need_the_new_mount_api() {
        let many: Vec<PathBuf> = (0..100)
            .map(|i| PathBuf::from(format!("/var/lib/stack/images/layers/{i:064}")))
            .collect();
        assert_eq!(
            rootfs_plan(Path::new("/c"), &many, false).mount_data(),
            None
        );
        assert_eq!(
            rootfs_plan(Path::new("/c"), &paths(&["/a:b"]), false).mount_data(),
            None
        );
        let empty = rootfs_plan(Path::new("/c"), &[], false);
        assert!(
            empty
                .mount_data()
                .unwrap()
                .starts_with("lowerdir=/c/empty,")
        );
    }
}
