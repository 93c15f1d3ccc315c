//! Named volumes under `<lib_root>/volumes/`:
//!
//! ```text
//! <name>/meta.json   VolumeInfo, written atomically
//! <name>/_data/      the content (local volumes; a tmpfs is mounted here for
//!                    tmpfs volumes); bind volumes use their `device` instead
//! .holds/<holder>    volume names a container uses (rm/prune keep those)
//! ```
//!
//! Volumes are data: nothing here deletes a volume except `remove`, `remove_for_stack`
//! (`down -v`: only the stack's own, never an external one) and `prune`.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

use super::{Error, Result, copy};

/// A volume as the stack file declares it (mirrors Compose's top-level `volumes:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    /// `name:`: the volume's real name, used as is (no stack prefix).
    pub name: Option<String>,
    /// `external: true`: must exist already; never created or deleted by a stack.
    pub external: bool,
    /// `driver:`; only `local` (the default) exists here.
    pub driver: Option<String>,
    /// `driver_opts:` of the local driver: `type`, `o`, `device`.
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// What kind of storage backs a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum VolumeKind {
    /// A directory under the state root.
    Local,
    /// `driver_opts: {type: none, o: bind, device: PATH}`.
    Bind { device: PathBuf },
    /// `driver_opts: {type: tmpfs, o: size=..}`: content lives in memory.
    Tmpfs { options: String },
}

/// `stack volume inspect` output and the on-disk record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    /// The stack that created it (None: created by hand).
    pub stack: Option<String>,
    pub driver: String,
    pub kind: VolumeKind,
    pub mountpoint: PathBuf,
    pub labels: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: u64,
    pub anonymous: bool,
    /// Filled from the image already (copy-up happens once).
    pub initialized: bool,
    /// An anonymous volume's container and mount point there: a recreated
    /// container gets it back (as Compose does). `None` once the container is gone
    /// (a dangling volume, which `volume prune` and `down -v` remove).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Handle on the volume directory of a state root.
#[derive(Debug, Clone)]
pub struct Volumes {
    root: PathBuf,
}

/// Docker's rule for volume names.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "volume name {name:?} is invalid: use letters, digits, '_', '.', '-', starting with a letter or digit"
        )))
    }
}

/// The full name of volume `name` of `stack`: Compose's `<project>_<name>`, or the
/// `name:` given in the file.
pub fn volume_name(stack: &str, name: &str, spec: &VolumeSpec) -> String {
    match &spec.name {
        Some(n) => n.clone(),
        None if spec.external => name.to_string(),
        None => format!("{stack}_{name}"),
    }
}

fn kind_of(spec: &VolumeSpec) -> Result<VolumeKind> {
    if let Some(driver) = spec.driver.as_deref().filter(|d| *d != "local") {
        return Err(Error::Invalid(format!(
            "volume driver {driver:?} is not supported (only \"local\")"
        )));
    }
    let opt = |k: &str| spec.driver_opts.get(k).map(String::as_str);
    match opt("type") {
        None if spec.driver_opts.is_empty() => Ok(VolumeKind::Local),
        Some("none")
            if opt("o").is_some_and(|o| o.split(',').any(|p| p == "bind" || p == "rbind")) =>
        {
            let device = opt("device")
                .ok_or_else(|| Error::Invalid("bind volume needs driver_opts.device".into()))?;
            Ok(VolumeKind::Bind {
                device: PathBuf::from(device),
            })
        }
        Some("tmpfs") => Ok(VolumeKind::Tmpfs {
            options: opt("o").unwrap_or("").to_string(),
        }),
        _ => Err(Error::Invalid(format!(
            "driver_opts {:?} are not supported: use type=none,o=bind,device=PATH or type=tmpfs",
            spec.driver_opts
        ))),
    }
}

impl Volumes {
    /// Open (creating) `<lib_root>/volumes`.
    pub fn open(lib_root: &Path) -> Result<Volumes> {
        let root = lib_root.join("volumes");
        let holds = root.join(".holds");
        fs::create_dir_all(&holds).map_err(|e| Error::io(&holds, e))?;
        Ok(Volumes { root })
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("meta.json")
    }

    /// The record of a volume, if it exists.
    pub fn get(&self, name: &str) -> Result<Option<VolumeInfo>> {
        check_name(name)?;
        let p = self.meta_path(name);
        crate::state::read_json(&p).map_err(|e| Error::io(&p, e))
    }

    fn save(&self, info: &VolumeInfo) -> Result<()> {
        let p = self.meta_path(&info.name);
        crate::state::write_json_durable(&p, info).map_err(|e| Error::io(&p, e))
    }

    /// Create the stack's volume `name` on first use (or find it) and return the
    /// host directory to mount. External volumes must exist already.
    pub fn ensure(&self, stack: &str, name: &str, spec: &VolumeSpec) -> Result<PathBuf> {
        let full = volume_name(stack, name, spec);
        check_name(&full)?;
        if let Some(info) = self.get(&full)? {
            self.activate(&info)?;
            return Ok(info.mountpoint);
        }
        if spec.external {
            return Err(Error::Invalid(format!(
                "external volume {full:?} does not exist; create it first (stack volume create {full})"
            )));
        }
        let mut labels = spec.labels.clone();
        labels.insert("com.docker.compose.project".into(), stack.into());
        labels.insert("com.docker.compose.volume".into(), name.into());
        self.create(&full, Some(stack), kind_of(spec)?, labels, false)
    }

    /// Create a volume not tied to a file (`stack volume create`); an existing one is
    /// returned as it is.
    pub fn create(
        &self,
        name: &str,
        stack: Option<&str>,
        kind: VolumeKind,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<PathBuf> {
        self.create_owned(name, stack, kind, labels, anonymous, None)
    }

    /// [`Volumes::create`], recording the (container, target) of an anonymous one.
    fn create_owned(
        &self,
        name: &str,
        stack: Option<&str>,
        kind: VolumeKind,
        labels: BTreeMap<String, String>,
        anonymous: bool,
        owner: Option<(&str, &str)>,
    ) -> Result<PathBuf> {
        check_name(name)?;
        if let Some(info) = self.get(name)? {
            return Ok(info.mountpoint);
        }
        let dir = self.root.join(name);
        let data = dir.join("_data");
        fs::create_dir_all(&data).map_err(|e| Error::io(&data, e))?;
        let mountpoint = match &kind {
            VolumeKind::Bind { device } => {
                if !device.is_dir() {
                    return Err(Error::Invalid(format!(
                        "bind volume device {} is not a directory",
                        device.display()
                    )));
                }
                device.clone()
            }
            _ => data,
        };
        let info = VolumeInfo {
            name: name.to_string(),
            stack: stack.map(String::from),
            driver: "local".into(),
            kind,
            mountpoint: mountpoint.clone(),
            labels,
            created: crate::image::now_secs(),
            anonymous,
            initialized: false,
            container: owner.map(|(c, _)| c.to_string()),
            target: owner.map(|(_, t)| t.to_string()),
        };
        self.activate(&info)?;
        self.save(&info)?;
        Ok(mountpoint)
    }

    /// The anonymous volume of `container` at `target` (an image's `VOLUME` or a
    /// bare `- /path` entry): the one it had before it was recreated, else a new
    /// one, named with 64 random hex digits as Docker names them.
    pub fn anonymous(
        &self,
        stack: &str,
        container: &str,
        target: &str,
    ) -> Result<(String, PathBuf)> {
        let owned = self.list()?.into_iter().find(|v| {
            v.anonymous
                && v.container.as_deref() == Some(container)
                && v.target.as_deref() == Some(target)
        });
        if let Some(info) = owned {
            self.activate(&info)?;
            return Ok((info.name, info.mountpoint));
        }
        let mut bytes = [0u8; 32];
        rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
            .map_err(|e| Error::io(&self.root, e.into()))?;
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let labels = BTreeMap::from([
            ("com.docker.compose.project".to_string(), stack.to_string()),
            ("com.docker.volume.anonymous".to_string(), String::new()),
        ]);
        let path = self.create_owned(
            &name,
            Some(stack),
            VolumeKind::Local,
            labels,
            true,
            Some((container, target)),
        )?;
        Ok((name, path))
    }

    /// Anonymous volumes recorded for `container`.
    fn anonymous_of(&self, container: &str) -> Result<Vec<VolumeInfo>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|v| v.anonymous && v.container.as_deref() == Some(container))
            .collect())
    }

    /// After `container` was (re)created using volumes `used`: remove the anonymous
    /// volumes it had at mount points it no longer has, as Compose removes them with
    /// the container it replaces. Returns their names.
    pub fn drop_anonymous_except(&self, container: &str, used: &[String]) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        for info in self.anonymous_of(container)? {
            if !used.contains(&info.name) {
                self.remove(&info.name)?;
                dropped.push(info.name);
            }
        }
        Ok(dropped)
    }

    /// `container` is gone for good (`down`, `rm`, scaled down): delete its anonymous
    /// volumes when `remove` (`down -v`, `rm -v`), else keep them as dangling volumes
    /// that no later container takes (`volume prune` removes them). Returns their
    /// names.
    pub fn release_anonymous(&self, container: &str, remove: bool) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for mut info in self.anonymous_of(container)? {
            if remove {
                self.remove(&info.name)?;
            } else {
                info.container = None;
                info.target = None;
                self.save(&info)?;
            }
            out.push(info.name);
        }
        Ok(out)
    }

    /// Mount the tmpfs of a tmpfs volume if it is not mounted (e.g. after a reboot).
    fn activate(&self, info: &VolumeInfo) -> Result<()> {
        let VolumeKind::Tmpfs { options } = &info.kind else {
            return Ok(());
        };
        if is_mountpoint(&info.mountpoint)? {
            return Ok(());
        }
        let data = std::ffi::CString::new(options.as_str())
            .map_err(|_| Error::Invalid("tmpfs options contain NUL".into()))?;
        rustix::mount::mount(
            "tmpfs",
            &info.mountpoint,
            "tmpfs",
            rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
            data.as_c_str(),
        )
        .map_err(|e| Error::Mount {
            what: format!("tmpfs volume {}", info.name),
            target: info.mountpoint.clone(),
            source: e.into(),
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeInfo>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !valid_name(&name) {
                continue;
            }
            if let Some(info) = self.get(&name)? {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Mark volumes as used by `holder` (a container id); replaces its earlier list.
    /// Holding none leaves no file (most containers have no volume: no write,
    /// no two flushes per create).
    pub fn hold(&self, holder: &str, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return self.release(holder);
        }
        check_name(holder)?;
        let p = self.root.join(".holds").join(holder);
        crate::state::write_json_durable(&p, &names).map_err(|e| Error::io(&p, e))
    }

    /// Drop `holder`'s holds; none is fine.
    pub fn release(&self, holder: &str) -> Result<()> {
        check_name(holder)?;
        let p = self.root.join(".holds").join(holder);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(&p, e)),
            _ => Ok(()),
        }
    }

    /// The volumes `holder` uses (none when it holds nothing).
    pub fn held_by(&self, holder: &str) -> Result<Vec<String>> {
        check_name(holder)?;
        let p = self.root.join(".holds").join(holder);
        Ok(crate::state::read_json(&p)
            .map_err(|e| Error::io(&p, e))?
            .unwrap_or_default())
    }

    fn held(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let dir = self.root.join(".holds");
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let holder = entry.file_name().to_string_lossy().into_owned();
            if holder.starts_with('.') {
                continue;
            }
            let names: Vec<String> = crate::state::read_json(&entry.path())
                .map_err(|e| Error::io(&entry.path(), e))?
                .unwrap_or_default();
            for n in names {
                out.entry(n).or_default().push(holder.clone());
            }
        }
        Ok(out)
    }

    /// `stack volume rm`: delete a volume and its data; refused while a container
    /// uses it. A missing volume counts as removed.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let Some(info) = self.get(name)? else {
            return Ok(false);
        };
        if let Some(holders) = self.held()?.get(name) {
            return Err(Error::Invalid(format!(
                "volume {name} is in use by {}",
                holders.join(", ")
            )));
        }
        if matches!(info.kind, VolumeKind::Tmpfs { .. }) {
            super::unmount_rootfs(&info.mountpoint)?;
        }
        // Bind volumes keep their device: it is the user's directory, not ours.
        let dir = self.root.join(name);
        fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(true)
    }

    /// `down -v`: remove the stack's own volumes (those it created: named ones in
    /// `declared` that are not external, and its anonymous ones). An external
    /// volume is never removed, even when this stack once created it.
    pub fn remove_for_stack(
        &self,
        stack: &str,
        declared: &[(String, VolumeSpec)],
    ) -> Result<Vec<String>> {
        let external: BTreeSet<String> = declared
            .iter()
            .filter(|(_, s)| s.external)
            .map(|(n, s)| volume_name(stack, n, s))
            .collect();
        let own: BTreeSet<String> = declared
            .iter()
            .filter(|(_, s)| !s.external)
            .map(|(n, s)| volume_name(stack, n, s))
            .collect();
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for info in self.list()? {
            let ours = info.stack.as_deref() == Some(stack)
                && (own.contains(&info.name) || info.anonymous);
            if !ours || external.contains(&info.name) {
                continue;
            }
            match self.remove(&info.name) {
                Ok(_) => removed.push(info.name),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() {
            Ok(removed)
        } else {
            Err(Error::Invalid(errors.join("; ")))
        }
    }

    /// `stack volume prune`: remove volumes no container holds. Only anonymous ones
    /// unless `all`, as Docker 23+ does.
    pub fn prune(&self, all: bool) -> Result<Vec<String>> {
        let held = self.held()?;
        let mut removed = Vec::new();
        for info in self.list()? {
            if held.contains_key(&info.name) || !(all || info.anonymous) {
                continue;
            }
            self.remove(&info.name)?;
            removed.push(info.name);
        }
        Ok(removed)
    }

    /// Docker's copy-up: on first use, when the volume is empty, fill it with what the
    /// image has at `container_path` (resolved inside `rootfs`, the mounted root, so a
    /// symlink in the image cannot point the copy at the host). Returns whether
    /// anything was copied. `nocopy` only marks the volume as initialised.
    pub fn populate(
        &self,
        name: &str,
        rootfs: &Path,
        container_path: &str,
        nocopy: bool,
    ) -> Result<bool> {
        let mut info = self
            .get(name)?
            .ok_or_else(|| Error::Invalid(format!("no volume {name}")))?;
        if info.initialized {
            return Ok(false);
        }
        let mut copied = false;
        if !nocopy && is_empty_dir(&info.mountpoint)? {
            copied = copy_from_root(rootfs, container_path, &info.mountpoint)?;
        }
        info.initialized = true;
        self.save(&info)?;
        Ok(copied)
    }
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    Ok(fs::read_dir(p)
        .map_err(|e| Error::io(p, e))?
        .next()
        .is_none())
}

fn is_mountpoint(p: &Path) -> Result<bool> {
    let st = rustix::fs::statx(
        rustix::fs::CWD,
        p,
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::MNT_ID,
    )
    .map_err(|e| Error::io(p, e.into()))?;
    let parent = p.parent().unwrap_or(Path::new("/"));
    let pst = rustix::fs::statx(
        rustix::fs::CWD,
        parent,
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::MNT_ID,
    )
    .map_err(|e| Error::io(parent, e.into()))?;
    Ok(st.stx_mnt_id != pst.stx_mnt_id)
}

/// Copy `<rootfs>/<container_path>` (resolved with RESOLVE_IN_ROOT) into `dest`.
fn copy_from_root(rootfs: &Path, container_path: &str, dest: &Path) -> Result<bool> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(rootfs, e.into()))?;
    let rel = container_path.trim_start_matches('/');
    let src = match rustix::fs::openat2(
        &root,
        if rel.is_empty() { "." } else { rel },
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(false),
        Err(e) => return Err(Error::io(&rootfs.join(rel), e.into())),
    };
    let dst = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(dest, e.into()))?;
    copy::copy_tree(src.as_fd(), dst.as_fd()).map_err(|e| Error::io(dest, e))?;
    // The volume root takes the owner and mode of the image's directory.
    let st = rustix::fs::fstat(&src).map_err(|e| Error::io(dest, e.into()))?;
    rustix::fs::fchown(
        &dst,
        Some(rustix::process::Uid::from_raw(st.st_uid)),
        Some(rustix::process::Gid::from_raw(st.st_gid)),
    )
    .map_err(|e| Error::io(dest, e.into()))?;
    rustix::fs::fchmod(&dst, Mode::from_raw_mode(st.st_mode & 0o7777))
        .map_err(|e| Error::io(dest, e.into()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_compose() {
        let spec = VolumeSpec::default();
        assert_eq!(volume_name("web", "data", &spec), "web_data");
        let named = VolumeSpec {
            name: Some("shared".into()),
            ..Default::default()
        };
        assert_eq!(volume_name("web", "data", &named), "shared");
        let ext = VolumeSpec {
            external: true,
            ..Default::default()
        };
        assert_eq!(volume_name("web", "data", &ext), "data");
        assert!(!valid_name("../x") && !valid_name("a") && valid_name("web_data"));
    }

    #[test]
    fn driver_opts_kinds() {
        let mut spec = VolumeSpec::default();
        assert_eq!(kind_of(&spec).unwrap(), VolumeKind::Local);
        spec.driver_opts = [("type", "none"), ("o", "bind"), ("device", "/srv")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            kind_of(&spec).unwrap(),
            VolumeKind::Bind {
                device: "/srv".into()
            }
        );
        spec.driver_opts = [("type", "nfs")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(kind_of(&spec).is_err());
    }

    #[test]
    fn ensure_list_remove_and_down_v_spares_external() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::open(tmp.path()).unwrap();
        let own = VolumeSpec::default();
        let ext = VolumeSpec {
            external: true,
            ..Default::default()
        };
        assert!(
            vols.ensure("s", "shared", &ext).is_err(),
            "external volumes must exist"
        );
        vols.create("shared", None, VolumeKind::Local, BTreeMap::new(), false)
            .unwrap();
        let p = vols.ensure("s", "data", &own).unwrap();
        fs::write(p.join("f"), "x").unwrap();
        assert_eq!(vols.ensure("s", "data", &own).unwrap(), p);
        let shared = vols.ensure("s", "shared", &ext).unwrap();
        let (anon, _) = vols.anonymous("s", "s-app-1", "/cache").unwrap();
        assert_eq!(vols.list().unwrap().len(), 3);
        vols.hold("c1", &["s_data".to_string()]).unwrap();
        assert_eq!(vols.held_by("c1").unwrap(), ["s_data"]);
        assert!(vols.remove("s_data").is_err(), "in use");
        vols.hold("c1", &[]).unwrap();
        assert!(
            vols.held_by("c1").unwrap().is_empty(),
            "holding none drops the list"
        );
        assert!(
            !tmp.path().join("volumes/.holds/c1").exists(),
            "and leaves no file"
        );
        vols.hold("c1", &["s_data".to_string()]).unwrap();
        vols.release("c1").unwrap();
        assert!(vols.held_by("c1").unwrap().is_empty());
        let declared = vec![("data".to_string(), own), ("shared".to_string(), ext)];
        let mut removed = vols.remove_for_stack("s", &declared).unwrap();
        removed.sort();
        let mut want = vec![anon, "s_data".to_string()];
        want.sort();
        assert_eq!(removed, want);
        assert!(
            shared.is_dir(),
            "down -v must never delete an external volume"
        );
        assert!(!p.exists());
    }

    #[test]
    fn anonymous_volumes_follow_their_container_as_in_compose() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::open(tmp.path()).unwrap();
        let (a, pa) = vols.anonymous("s", "s-app-1", "/cache").unwrap();
        let (b, _) = vols.anonymous("s", "s-app-1", "/tmp/x").unwrap();
        assert_eq!(a.len(), 64);
        fs::write(pa.join("kept"), "1").unwrap();
        // Recreated: the same volume comes back at the same target.
        assert_eq!(vols.anonymous("s", "s-app-1", "/cache").unwrap().0, a);
        assert_ne!(vols.anonymous("s", "s-app-2", "/cache").unwrap().0, a);
        // The new config has no /tmp/x any more: that volume goes.
        assert_eq!(
            vols.drop_anonymous_except("s-app-1", std::slice::from_ref(&a))
                .unwrap(),
            vec![b.clone()]
        );
        assert!(vols.get(&b).unwrap().is_none());
        // `down`: kept, but a new container of the same name starts afresh.
        assert_eq!(
            vols.release_anonymous("s-app-1", false).unwrap(),
            vec![a.clone()]
        );
        assert!(pa.join("kept").exists());
        assert_ne!(vols.anonymous("s", "s-app-1", "/cache").unwrap().0, a);
        // `down -v`: removed.
        vols.release_anonymous("s-app-1", true).unwrap();
        assert_eq!(vols.prune(false).unwrap().len(), 2, "the dangling ones");
    }
}
