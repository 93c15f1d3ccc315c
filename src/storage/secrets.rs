//! Secrets and configs (file-based) materialised per container: a private tmpfs
//! holds a copy of each file with the owner and mode the service asked for, so the
//! host file may stay 0400 root and other containers never see it.
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;

use super::mounts::Mount;
use super::{Error, Result};

/// One secret or config file for one container; recorded with the
/// container so that a start after a reboot can copy them again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretFile {
    /// The host file (read as root).
    pub source: PathBuf,
    /// Absolute path in the container (`/run/secrets/<name>` for secrets by default,
    /// `/<name>` for configs, as Compose).
    pub target: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Largest secret accepted (Docker's limit is 500 KiB).
const MAX_SECRET: u64 = 500 * 1024;

/// Mount a private tmpfs at `dir` (mode 0700, root), copy each file into it with
/// its uid/gid/mode, remount it read-only, and return read-only bind mounts of the
/// copies onto their targets.
pub fn materialise(dir: &Path, files: &[SecretFile]) -> Result<Vec<Mount>> {
    for f in files {
        if !f.target.starts_with('/') {
            return Err(Error::Invalid(format!(
                "secret target {:?} must be absolute",
                f.target
            )));
        }
    }
    // A restarted container gets fresh copies: drop the tmpfs of its last run.
    super::unmount_rootfs(dir)?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))?;
    let total: u64 = files.len() as u64 * MAX_SECRET + 65536;
    let opts = std::ffi::CString::new(format!("size={total},mode=0700,uid=0,gid=0"))
        .map_err(|_| Error::Invalid("bad tmpfs options".into()))?;
    let mount_err = |e: rustix::io::Errno| Error::Mount {
        what: "secrets tmpfs".into(),
        target: dir.to_path_buf(),
        source: e.into(),
    };
    rustix::mount::mount(
        "tmpfs",
        dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        opts.as_c_str(),
    )
    .map_err(mount_err)?;
    let result = write_all(dir, files);
    if result.is_err() {
        let _ = super::unmount_rootfs(dir);
    }
    let mounts = result?;
    rustix::mount::mount_remount(
        dir,
        MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        "",
    )
    .map_err(mount_err)?;
    Ok(mounts)
}

fn write_all(dir: &Path, files: &[SecretFile]) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let meta = fs::metadata(&f.source).map_err(|e| Error::io(&f.source, e))?;
        if !meta.is_file() || meta.len() > MAX_SECRET {
            return Err(Error::Invalid(format!(
                "secret {} must be a regular file of at most {MAX_SECRET} bytes",
                f.source.display()
            )));
        }
        let data = fs::read(&f.source).map_err(|e| Error::io(&f.source, e))?;
        let copy = dir.join(i.to_string());
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .map_err(|e| Error::io(&copy, e))?;
        out.write_all(&data).map_err(|e| Error::io(&copy, e))?;
        std::os::unix::fs::fchown(&out, Some(f.uid), Some(f.gid))
            .map_err(|e| Error::io(&copy, e))?;
        out.set_permissions(fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(|e| Error::io(&copy, e))?;
        mounts.push(Mount {
            destination: f.target.clone(),
            kind: "bind".into(),
            source: copy,
            options: vec![
                "bind".into(),
                "ro".into(),
                "nosuid".into(),
                "nodev".into(),
                "noexec".into(),
            ],
        });
    }
    Ok(mounts)
}

/// Unmount a container's secrets tmpfs (its content vanishes with it).
pub fn unmaterialise(dir: &Path) -> Result<()> {
    super::unmount_rootfs(dir)?;
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}
