//! Mount points shared by the containers of an image.
//!
//! Every container gets /etc/hosts, /etc/hostname and /etc/resolv.conf (and
//! with `init`, /sbin/stack-init) bind-mounted onto files that must exist in
//! its root. An image without them (busybox has none) had them created in each
//! container's upper directory: six inodes and two overlay copy-ups per
//! container, ~1.5 ms of CPU here, and on a journal-less ext4 every inode
//! allocation scans the recently deleted ones, which `down` just made. Here
//! one read-only directory, shared, holds the empty files and their parent
//! directories (with the image's modes and owners) and becomes the topmost
//! lower layer. Only a file whose parents are real directories in the image
//! gets one: a symlinked /sbin (a merged-/usr image) is left to the runtime,
//! which creates the file resolving the link inside the root.
//!
//! The directories are named by what they hold (paths, modes, owners), so
//! images alike share one, and there are as many as distinct such sets.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::rootfs::{RootfsPlan, mount_rootfs, unmount_rootfs};
use super::{Error, Result};

/// What a lookup found for a set of lower layers and files, per process:
/// layers are content-addressed, so the answer never changes.
type Memo = HashMap<(Vec<PathBuf>, Vec<String>), Option<PathBuf>>;
static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

/// One entry of a mount-point layer, relative to its root.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Dir {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        path: String,
    },
}

/// The layer (under `store`) holding those of `files` (relative paths, such
/// as `etc/hosts`) that the image of `layers` (bottom first, as
/// `rootfs_plan` takes them) lacks; None when it lacks none, or has no layers.
pub fn layer(store: &Path, layers: &[PathBuf], files: &[&str]) -> Result<Option<PathBuf>> {
    let key = (
        layers.to_vec(),
        files.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
    );
    let known = || {
        let memo = MEMO.lock().unwrap_or_else(|p| p.into_inner());
        memo.as_ref()
            .and_then(|m| m.get(&key))
            .filter(|found| found.as_ref().is_none_or(|dir| dir.is_dir()))
            .cloned()
    };
    if let Some(found) = known() {
        return Ok(found);
    }
    // The first creates of an image come at once: one looks, the others wait.
    static LOOKING: Mutex<()> = Mutex::new(());
    let _looking = LOOKING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = known() {
        return Ok(found);
    }
    let lower: Vec<PathBuf> = layers.iter().rev().cloned().collect();
    let found = match missing(store, &lower, files)? {
        entries if entries.is_empty() => None,
        entries => Some(build(store, &entries)?),
    };
    MEMO.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(key, found.clone());
    Ok(found)
}

/// The entries a layer needs for `files` over the image of `lower`.
fn missing(store: &Path, lower: &[PathBuf], files: &[&str]) -> Result<Vec<Entry>> {
    if lower.is_empty() || lower.iter().any(|l| !l.is_dir()) {
        return Ok(Vec::new());
    }
    if let [only] = lower {
        return Ok(entries(only, files));
    }
    // The merged view answers for whiteouts and opaque directories.
    let view = scratch(store, "probe")?;
    let plan = RootfsPlan::Overlay {
        lower: lower.to_vec(),
        upper: None,
        work: None,
    };
    let found = mount_rootfs(&plan, &view).map(|()| {
        let found = entries(&view, files);
        unmount_rootfs(&view).map(|()| found)
    });
    let _ = fs::remove_dir(&view);
    found?
}

/// A new, empty directory in `store` for this process's own use.
fn scratch(store: &Path, what: &str) -> Result<PathBuf> {
    let dir = store.join(format!(".{what}-{}", crate::state::unique_suffix()));
    fs::create_dir_all(store)
        .and_then(|()| fs::create_dir(&dir))
        .map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

fn entries(root: &Path, files: &[&str]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    'file: for file in files {
        let path = root.join(file);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        let mut dirs = Vec::new();
        let mut prefix = PathBuf::new();
        let parts: Vec<&str> = file.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            prefix.push(part);
            match root.join(&prefix).symlink_metadata() {
                Ok(m) if m.is_dir() => dirs.push(Entry::Dir {
                    path: prefix.display().to_string(),
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                }),
                _ => continue 'file,
            }
        }
        out.extend(dirs);
        out.push(Entry::File {
            path: file.to_string(),
        });
    }
    out.sort();
    out.dedup();
    out
}

/// The layer of `entries`, made once (durable before its name appears: a
/// container's recorded rootfs plan refers to it across reboots).
fn build(store: &Path, entries: &[Entry]) -> Result<PathBuf> {
    let mut text = String::new();
    for e in entries {
        let _ = match e {
            Entry::Dir {
                path,
                mode,
                uid,
                gid,
            } => writeln!(text, "d {path} {mode:o} {uid} {gid}"),
            Entry::File { path } => writeln!(text, "f {path}"),
        };
    }
    let name: String = Sha256::digest(text.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = store.join(&name);
    if dir.is_dir() {
        return Ok(dir);
    }
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |e: io::Error| Error::io(&p, e)
    };
    let tmp = scratch(store, &name)?;
    let made = fill(&tmp, entries);
    let made = match made {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // Deepest first, so each directory's entries are durable with it.
    for p in made.iter().rev() {
        crate::state::sync_dir(p).map_err(io_err(p))?;
    }
    match fs::rename(&tmp, &dir) {
        Ok(()) => crate::state::sync_dir(store).map_err(io_err(store))?,
        // Another create made the same one meanwhile.
        Err(_) if dir.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io(&dir, e));
        }
    }
    Ok(dir)
}

/// Make `entries` in `tmp`; the directories made, `tmp` first.
fn fill(tmp: &Path, entries: &[Entry]) -> Result<Vec<PathBuf>> {
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |e: io::Error| Error::io(&p, e)
    };
    let mut made = vec![tmp.to_path_buf()];
    for e in entries {
        match e {
            Entry::Dir {
                path,
                mode,
                uid,
                gid,
            } => {
                let p = tmp.join(path);
                fs::DirBuilder::new()
                    .mode(*mode)
                    .create(&p)
                    .and_then(|()| std::os::unix::fs::chown(&p, Some(*uid), Some(*gid)))
                    .and_then(|()| fs::set_permissions(&p, fs::Permissions::from_mode(*mode)))
                    .map_err(io_err(&p))?;
                made.push(p);
            }
            Entry::File { path } => {
                let p = tmp.join(path);
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&p)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(&p))?;
            }
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_mode(p: &Path) -> u32 {
        p.symlink_metadata().unwrap().mode() & 0o7777
    }

    #[test]
    fn only_missing_files_under_real_directories_get_a_mount_point() {
        let t = tempfile::tempdir().unwrap();
        let image = t.path().join("layer");
        fs::create_dir_all(image.join("etc")).unwrap();
        fs::set_permissions(image.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(image.join("etc/hostname"), "box\n").unwrap();
        fs::create_dir_all(image.join("usr/sbin")).unwrap();
        std::os::unix::fs::symlink("usr/sbin", image.join("sbin")).unwrap();
        let store = t.path().join("store");
        let files = ["etc/hosts", "etc/hostname", "sbin/stack-init", "run/x"];
        let dir = layer(&store, std::slice::from_ref(&image), &files)
            .unwrap()
            .expect("etc/hosts is missing");
        assert!(dir.join("etc/hosts").is_file());
        assert_eq!(fs::read(dir.join("etc/hosts")).unwrap(), b"");
        assert_eq!(dir_mode(&dir.join("etc")), 0o750, "the image's mode");
        assert!(!dir.join("etc/hostname").exists(), "the image has it");
        assert!(
            !dir.join("sbin").exists(),
            "a symlinked parent is not shadowed"
        );
        assert!(!dir.join("run").exists(), "a missing parent is not made");
        // The same content is the same directory, and nothing else is left.
        let again = layer(&store, std::slice::from_ref(&image), &["etc/hosts"]).unwrap();
        assert_eq!(again.as_deref(), Some(dir.as_path()));
        let names: Vec<_> = fs::read_dir(&store).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // An image that has them all needs none.
        fs::write(image.join("etc/hosts"), "").unwrap();
        let none = layer(&store, std::slice::from_ref(&image), &["etc/hostname"]).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn over_several_layers_the_merged_view_decides() {
        let t = tempfile::tempdir().unwrap();
        let (bottom, top) = (t.path().join("bottom"), t.path().join("top"));
        for l in [&bottom, &top] {
            fs::create_dir_all(l.join("etc")).unwrap();
        }
        fs::write(bottom.join("etc/hosts"), "").unwrap();
        fs::write(bottom.join("etc/hostname"), "").unwrap();
        // The top layer deletes etc/hosts (an overlay whiteout).
        rustix::fs::mknodat(
            rustix::fs::CWD,
            top.join("etc/hosts"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        let store = t.path().join("store");
        let dir = layer(&store, &[bottom, top], &["etc/hosts", "etc/hostname"])
            .unwrap()
            .expect("etc/hosts is deleted in the image");
        assert!(dir.join("etc/hosts").is_file());
        assert!(!dir.join("etc/hostname").exists());
        let left: Vec<_> = fs::read_dir(&store).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "the probe is gone: {left:?}");
    }
}
