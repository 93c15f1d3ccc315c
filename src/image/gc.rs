//! Removing images and collecting garbage, and the holds that protect images
//! containers use.
//!
//! Guarantees: an image with a hold (`holds/<holder>` naming its manifest digest) is
//! never removed; content is only deleted when no remaining image record refers to
//! it; GC takes the content lock exclusively, so it never runs while an import or
//! pull (which hold it shared) has written blobs or layers not yet committed.
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::Path;

use serde::Serialize;

use super::store::Db;
use super::{Digest, Error, ImageId, Reference, Result, Store};

/// What a removal or prune did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct PruneReport {
    /// Images whose records were removed.
    pub images: Vec<ImageId>,
    /// References removed (untagged).
    pub untagged: Vec<String>,
    pub blobs_removed: usize,
    pub layers_removed: usize,
    /// Bytes of blobs plus unpacked layer content freed.
    pub bytes_freed: u64,
}

fn valid_holder(holder: &str) -> Result<()> {
    let ok = !holder.is_empty()
        && holder.len() <= 200
        && holder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !holder.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "holder name {holder:?} (use letters, digits, - _ .)"
        )))
    }
}

impl Store {
    /// Lock that orders imports (shared) against GC (exclusive). Released when the
    /// returned file is dropped.
    pub(crate) fn content_lock(&self, exclusive: bool) -> Result<File> {
        let path = self.root().join("content.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let op = if exclusive {
            rustix::fs::FlockOperation::LockExclusive
        } else {
            rustix::fs::FlockOperation::LockShared
        };
        rustix::fs::flock(&file, op).map_err(|e| Error::io(&path, e.into()))?;
        Ok(file)
    }

    /// Record that `holder` (a container id) uses image `id`; prune and rmi then keep
    /// it. Replaces an earlier hold of the same holder.
    pub fn hold(&self, id: &ImageId, holder: &str) -> Result<()> {
        valid_holder(holder)?;
        let path = self.root().join("holds").join(holder);
        crate::state::write_durable(&path, id.to_string().as_bytes())
            .map_err(|e| Error::io(&path, e))
    }

    /// [`Store::ensure`] and [`Store::hold`] as one step: the content lock is held
    /// (shared) across both, so a concurrent prune cannot remove the image between
    /// them. Linux flock(2) grants a second shared lock while the first is held, so
    /// the import inside does not wait on itself.
    pub fn ensure_held(&self, source: &super::Source, holder: &str) -> Result<super::Image> {
        valid_holder(holder)?;
        let _content = self.content_lock(false)?;
        let image = self.ensure(source)?;
        if let Some(id) = &image.id {
            self.hold(id, holder)?;
        }
        Ok(image)
    }

    /// Drop `holder`'s hold; a missing hold counts as released.
    pub fn release(&self, holder: &str) -> Result<()> {
        valid_holder(holder)?;
        let path = self.root().join("holds").join(holder);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
            _ => Ok(()),
        }
    }

    /// Holders of each held image.
    pub fn holds(&self) -> Result<Vec<(ImageId, String)>> {
        let dir = self.root().join("holds");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // a temp file of an atomic write
            }
            let text = fs::read_to_string(entry.path()).map_err(|e| Error::io(&entry.path(), e))?;
            match text.trim().parse::<Digest>() {
                Ok(d) => out.push((ImageId(d), name)),
                Err(_) => tracing::warn!(holder = name, "ignoring unreadable hold"),
            }
        }
        Ok(out)
    }

    fn holders_of(&self, id: &ImageId) -> Result<Vec<String>> {
        Ok(self
            .holds()?
            .into_iter()
            .filter(|(i, _)| i == id)
            .map(|(_, h)| h)
            .collect())
    }

    /// `stack rmi`: remove a name; when it was the image's last name (or `reference`
    /// is an ID), remove the image and free its unshared content. Held images are
    /// refused. `force` removes an image by ID even when it has several names.
    pub fn remove(&self, reference: &str, force: bool) -> Result<PruneReport> {
        let _content = self.content_lock(true)?;
        let image = self.resolve(reference)?;
        let Some(id) = image.id else {
            return Err(Error::NotFound(reference.to_string()));
        };
        let by_name = reference
            .parse::<Reference>()
            .ok()
            .map(|r| r.full())
            .filter(|n| image.names.contains(n))
            .or_else(|| {
                let local = format!("localhost/{reference}")
                    .parse::<Reference>()
                    .ok()?
                    .full();
                image.names.contains(&local).then_some(local)
            });
        let mut report = PruneReport::default();
        if let Some(name) = &by_name
            && image.names.len() > 1
        {
            self.update_db(|db| {
                db.refs.remove(name);
                Ok(())
            })?;
            report.untagged.push(name.clone());
            return Ok(report);
        }
        if by_name.is_none() && image.names.len() > 1 && !force {
            return Err(Error::Unsupported(format!(
                "image {} has several names ({}); remove them one by one or use --force",
                id,
                image.names.join(", ")
            )));
        }
        let holders = self.holders_of(&id)?;
        if !holders.is_empty() {
            return Err(Error::InUse {
                image: reference.to_string(),
                holders: holders.join(", "),
            });
        }
        self.update_db(|db| {
            db.refs.retain(|_, d| *d != id.0);
            db.images.remove(&id.0);
            Ok(())
        })?;
        report.untagged = image.names;
        report.images.push(id);
        self.collect(&mut report)?;
        Ok(report)
    }

    /// `stack image prune`: remove unnamed images (every image with `all`) that no
    /// container holds, then all content no image refers to, and stale temp files.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let _content = self.content_lock(true)?;
        let held: BTreeSet<Digest> = self.holds()?.into_iter().map(|(i, _)| i.0).collect();
        let mut report = PruneReport::default();
        self.update_db(|db| {
            let named: BTreeSet<Digest> = db.refs.values().cloned().collect();
            let doomed: Vec<Digest> = db
                .images
                .keys()
                .filter(|d| !held.contains(*d) && (all || !named.contains(*d)))
                .cloned()
                .collect();
            for d in doomed {
                let names = db.names_of(&d);
                db.refs.retain(|_, v| *v != d);
                db.images.remove(&d);
                report.untagged.extend(names);
                report.images.push(ImageId(d));
            }
            Ok(())
        })?;
        self.collect(&mut report)?;
        Ok(report)
    }

    /// Delete blobs and layers no image record refers to (caller holds the content
    /// lock exclusively), and temp files of processes that are gone.
    fn collect(&self, report: &mut PruneReport) -> Result<()> {
        let mut db = self.db()?;
        let (blobs, layers) = referenced(&db);
        let blob_dir = self.root().join("blobs/sha256");
        for entry in fs::read_dir(&blob_dir).map_err(|e| Error::io(&blob_dir, e))? {
            let entry = entry.map_err(|e| Error::io(&blob_dir, e))?;
            let keep = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .is_some_and(|d| blobs.contains(&d));
            if !keep {
                let size = entry.metadata().map_or(0, |m| m.len());
                remove_path(&entry.path())?;
                report.blobs_removed += 1;
                report.bytes_freed += size;
            }
        }
        let layer_dir = self.root().join("layers");
        let mut gone = Vec::new();
        for entry in fs::read_dir(&layer_dir).map_err(|e| Error::io(&layer_dir, e))? {
            let entry = entry.map_err(|e| Error::io(&layer_dir, e))?;
            let digest = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok());
            if digest.as_ref().is_some_and(|d| layers.contains(d)) {
                continue;
            }
            remove_path(&entry.path())?;
            report.layers_removed += 1;
            if let Some(d) = digest {
                report.bytes_freed += db.layers.get(&d).map_or(0, |l| l.size);
                gone.push(d);
            }
        }
        if !gone.is_empty() {
            self.update_db(|fresh| {
                for d in &gone {
                    fresh.layers.remove(d);
                }
                Ok(())
            })?;
            for d in &gone {
                db.layers.remove(d);
            }
        }
        self.clean_tmp()
    }

    /// Remove temp entries whose creating process no longer runs.
    fn clean_tmp(&self) -> Result<()> {
        let tmp = self.root().join("tmp");
        for entry in fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
            let entry = entry.map_err(|e| Error::io(&tmp, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| {
                p == std::process::id() || Path::new(&format!("/proc/{p}")).exists()
            });
            if !alive {
                remove_path(&entry.path())?;
            }
        }
        Ok(())
    }
}

fn referenced(db: &Db) -> (BTreeSet<Digest>, BTreeSet<Digest>) {
    let mut blobs = BTreeSet::new();
    let mut layers = BTreeSet::new();
    for (manifest, r) in &db.images {
        blobs.insert(manifest.clone());
        blobs.insert(r.config.clone());
        for l in &r.layers {
            blobs.insert(l.blob.clone());
            layers.insert(l.diff_id.clone());
        }
        blobs.extend(r.parents.iter().cloned());
    }
    (blobs, layers)
}

/// Remove a file or a whole tree; already gone is fine.
fn remove_path(path: &Path) -> Result<()> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}
