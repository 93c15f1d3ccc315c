//! Container storage: overlay root filesystems, named volumes, binds, tmpfs,
//! secrets and configs.
//!
//! Each container directory (chosen by the caller, under the persistent state root
//! so a stopped container keeps its changes) holds:
//!
//! ```text
//! <container_dir>/upper/   the container's writes (overlayfs upperdir)
//! <container_dir>/work/    overlayfs workdir (same filesystem as upper)
//! <container_dir>/empty/   lower layer of an image without layers
//! ```
//!
//! and `<lib>/mountpoints/<hash>/` holds the mount points that images lack,
//! shared by their containers (mountpoints.rs).
//!
//! The plan is a value ([`rootfs_plan`]); [`mount_rootfs`] is the one place that
//! acts on it.
mod copy;
mod mountpoints;
mod mounts;
mod rootfs;
mod secrets;
mod volumes;

use std::io;
use std::path::{Path, PathBuf};

pub use mountpoints::layer as mount_point_layer;
pub use mounts::{
    BindSpec, Mount, TmpfsSpec, bind_mount, open_mount_target, source_is_dir, tmpfs_mount,
    volume_mount,
};
pub use rootfs::{RootfsPlan, mount_rootfs, remove_rootfs_dirs, rootfs_plan, unmount_rootfs};
pub use secrets::{
    SecretFile, materialise as materialise_secrets, unmaterialise as unmaterialise_secrets,
};
pub use volumes::{VolumeInfo, VolumeKind, VolumeSpec, Volumes, volume_name};

/// Errors of container storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("mounting {what} on {}: {source}", target.display())]
    Mount {
        what: String,
        target: PathBuf,
        source: io::Error,
    },
    #[error("unmounting {}: {source}", target.display())]
    Unmount { target: PathBuf, source: io::Error },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
