//! The store itself: blobs, unpacked layers, and the record database.
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use super::digest::HashingReader;
use super::limits::{ImageBudget, LayerBudget, Limits};
use super::manifest::Imported;
use super::{Digest, Error, Reference, Result, unpack};

/// Largest manifest, index or config accepted (they are read into memory).
pub(crate) const MAX_JSON_BLOB: u64 = 8 << 20;

/// An image in the store: the digest of its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageId(pub Digest);

impl std::fmt::Display for ImageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a container needs of an image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `None` for a `rootfs = PATH` directory, which is not in the store.
    pub id: Option<ImageId>,
    /// Digest of the config blob (what `docker images` calls the image ID).
    pub config_digest: Option<Digest>,
    pub config: ImageConfiguration,
    /// Unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// References naming this image (full form).
    pub names: Vec<String>,
    /// Docker's `Healthcheck` (not part of the OCI config, so not in `config`).
    pub healthcheck: Option<Healthcheck>,
}

/// The image's HEALTHCHECK (Docker config extension); durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub interval: Option<u64>,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub start_period: Option<u64>,
    #[serde(default)]
    pub start_interval: Option<u64>,
    #[serde(default)]
    pub retries: Option<u32>,
}

fn healthcheck_of(config: &[u8]) -> Option<Healthcheck> {
    #[derive(Deserialize)]
    struct Outer {
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Inner {
        healthcheck: Option<Healthcheck>,
    }
    serde_json::from_slice::<Outer>(config)
        .ok()?
        .config?
        .healthcheck
}

/// One row of `stack images`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub id: ImageId,
    pub config_digest: Digest,
    pub names: Vec<String>,
    pub created: Option<String>,
    /// Unix seconds when the image entered this store.
    pub added: u64,
    /// Bytes of unpacked file content over all layers.
    pub size: u64,
    pub layers: usize,
    pub platform: String,
}

/// A layer of an image as recorded in the database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerRef {
    pub blob: Digest,
    pub diff_id: Digest,
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub config: Digest,
    pub config_size: u64,
    pub media_type: String,
    pub manifest_size: u64,
    pub layers: Vec<LayerRef>,
    pub created: Option<String>,
    pub added: u64,
    pub platform: String,
    /// Indexes followed to reach the manifest (kept so the image can be saved or
    /// pushed as it came).
    #[serde(default)]
    pub parents: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct LayerInfo {
    /// Bytes of regular-file content.
    pub size: u64,
    /// Tar members (0 for layers unpacked before this was recorded).
    #[serde(default)]
    pub entries: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Db {
    /// Full reference -> manifest digest.
    #[serde(default)]
    pub refs: BTreeMap<String, Digest>,
    #[serde(default)]
    pub images: BTreeMap<Digest, ImageRecord>,
    #[serde(default)]
    pub layers: BTreeMap<Digest, LayerInfo>,
    /// Full reference -> Unix seconds of its last successful pull (for
    /// `pull_policy: daily` and the like); kept only for references that exist.
    #[serde(default)]
    pub pulled: BTreeMap<String, u64>,
}

impl Db {
    pub fn names_of(&self, id: &Digest) -> Vec<String> {
        self.refs
            .iter()
            .filter(|(_, d)| *d == id)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

/// Handle on the store under `<lib_root>/images`. Cheap; holds no open files.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    limits: Limits,
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Store {
    /// Open (creating if needed) the store under `<lib_root>/images/`, with the
    /// unpack limits of `STACK_IMAGE_LIMITS` (or the defaults).
    pub fn open(lib_root: &Path) -> Result<Store> {
        let root = lib_root.join("images");
        for dir in ["blobs/sha256", "layers", "tmp", "holds"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        Ok(Store {
            root,
            limits: Limits::from_env()?,
        })
    }

    /// The same store, unpacking under `limits`.
    pub fn with_limits(self, limits: Limits) -> Store {
        Store { limits, ..self }
    }

    /// A fresh budget for importing one image.
    pub(crate) fn image_budget(&self) -> ImageBudget {
        ImageBudget::new(self.limits)
    }

    /// `<lib_root>/images`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub(crate) fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub(crate) fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A fresh path under tmp/ (not created).
    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        // `<what>-<pid>-<n>`: `clean_tmp` reads the pid.
        self.root
            .join("tmp")
            .join(format!("{what}-{}", crate::state::unique_suffix()))
    }

    /// Copy `src` into the blob store, verifying size (when known) and digest before
    /// the blob becomes visible. Present blobs are not copied again.
    pub(crate) fn put_blob(
        &self,
        src: &mut dyn Read,
        digest: &Digest,
        size: Option<u64>,
        what: &str,
    ) -> Result<()> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let tmp = self.tmp_path("blob");
        let result = self.write_verified(src, &tmp, digest, size, what);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_verified(
        &self,
        src: &mut dyn Read,
        tmp: &Path,
        digest: &Digest,
        size: Option<u64>,
        what: &str,
    ) -> Result<()> {
        let mut file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        // Read one byte past the announced size, so an oversized blob is caught
        // without reading an endless stream.
        let limit = size.map_or(u64::MAX, |s| s.saturating_add(1));
        let mut reader = HashingReader::new(src.take(limit));
        io::copy(&mut reader, &mut file).map_err(|e| Error::io(tmp, e))?;
        let (actual, count) = reader.finish().map_err(|e| Error::io(tmp, e))?;
        if let Some(expected) = size
            && expected != count
        {
            return Err(Error::SizeMismatch {
                what: what.to_string(),
                expected,
                actual: count,
            });
        }
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: what.to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        file.sync_all().map_err(|e| Error::io(tmp, e))?;
        let dest = self.blob_path(digest);
        fs::rename(tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        sync_dir(dest.parent().unwrap_or(&self.root))
    }

    /// Store generated content (a manifest or config this store wrote itself).
    pub(crate) fn put_bytes(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        self.put_blob(
            &mut &data[..],
            &digest,
            Some(data.len() as u64),
            "generated blob",
        )?;
        Ok(digest)
    }

    /// Read a small blob (manifest, index, config) and check it again: cheap, and it
    /// catches on-disk corruption before the JSON is trusted.
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(MAX_JSON_BLOB + 1).read_to_end(&mut data))
            .map_err(|e| Error::io(&path, e))?;
        let actual = Digest::of(&data);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Unpack a stored layer blob once; returns its directory and what it holds.
    /// The unpack happens in tmp/ and is renamed into place after syncfs(2), so a
    /// present layer directory is always complete. Its size and entries are
    /// charged to `budget` (the image's), also when it was unpacked before.
    pub(crate) fn ensure_layer(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        budget: &ImageBudget,
    ) -> Result<(PathBuf, LayerInfo)> {
        let dest = self.layer_path(diff_id);
        if dest.is_dir() {
            let info = self.db()?.layers.get(diff_id).cloned().unwrap_or_default();
            budget
                .charge_existing(info.size, info.entries)
                .map_err(|e| Error::Layer {
                    layer: blob.clone(),
                    source: Box::new(Error::TooLarge(e)),
                })?;
            return Ok((dest, info));
        }
        let tmp = self.tmp_path("layer");
        let result = self.unpack_into(blob, diff_id, &tmp, &mut LayerBudget::new(budget));
        let unpacked = match result {
            Ok(u) => u,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                // A stored blob that does not unpack to its diff_id is damaged (e.g.
                // lost in a crash): drop it so the next import or pull fetches it again.
                if matches!(e, Error::DigestMismatch { .. }) {
                    let _ = fs::remove_file(self.blob_path(blob));
                }
                return Err(Error::Layer {
                    layer: blob.clone(),
                    source: Box::new(e),
                });
            }
        };
        match fs::rename(&tmp, &dest) {
            Ok(()) => sync_dir(&self.root.join("layers"))?,
            // Another process unpacked the same layer meanwhile: theirs is as good.
            Err(e) if dest.is_dir() => {
                tracing::debug!(error = %e, "layer appeared concurrently");
                let _ = fs::remove_dir_all(&tmp);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(Error::io(&dest, e));
            }
        }
        // Record the size now: a later import finds the layer present and reads it
        // from here (GC drops the entry with the layer).
        let info = LayerInfo {
            size: unpacked.content_size,
            entries: unpacked.entries,
        };
        self.update_db(|db| {
            db.layers.insert(diff_id.clone(), info.clone());
            Ok(())
        })?;
        Ok((dest, info))
    }

    fn unpack_into(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        tmp: &Path,
        budget: &mut LayerBudget<'_>,
    ) -> Result<unpack::Unpacked> {
        fs::create_dir(tmp).map_err(|e| Error::io(tmp, e))?;
        // The layer root is the container's `/` when it is the top layer: 0755.
        fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| Error::io(tmp, e))?;
        let path = self.blob_path(blob);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let unpacked = unpack::unpack_within(file, tmp, Some(diff_id), budget)?;
        let dir = File::open(tmp).map_err(|e| Error::io(tmp, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| Error::io(tmp, e.into()))?;
        Ok(unpacked)
    }

    pub(crate) fn db(&self) -> Result<Db> {
        let path = self.root.join("db.json");
        crate::state::read_json::<Db>(&path)
            .map(Option::unwrap_or_default)
            .map_err(|e| Error::io(&path, e))
    }

    /// Read-modify-write of db.json under an exclusive flock(2) on `lock`.
    pub(crate) fn update_db<T>(&self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        let lock_path = self.root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&lock_path, e.into()))?;
        let mut db = self.db()?;
        let out = f(&mut db)?;
        let Db { refs, pulled, .. } = &mut db;
        pulled.retain(|r, _| refs.contains_key(r));
        let path = self.root.join("db.json");
        crate::state::write_json_durable(&path, &db).map_err(|e| Error::io(&path, e))?;
        Ok(out)
        // `lock` closes here, releasing the flock.
    }

    /// Record an imported image and point `names` at it. Called last in an import,
    /// after every blob and layer is in place.
    pub(crate) fn commit(&self, imported: Imported, names: &[Reference]) -> Result<ImageId> {
        let Imported {
            id,
            mut record,
            layer_sizes,
        } = imported;
        // Re-importing an unchanged image (every `up` of an `oci:` image) writes nothing.
        let db = self.db()?;
        let known = db.images.contains_key(&id.0)
            && names.iter().all(|n| db.refs.get(&n.full()) == Some(&id.0))
            && layer_sizes.iter().all(|(d, _)| db.layers.contains_key(d));
        if known {
            return Ok(id);
        }
        self.update_db(|db| {
            for (diff_id, info) in &layer_sizes {
                db.layers.insert(diff_id.clone(), info.clone());
            }
            // Re-importing keeps the first arrival time.
            if let Some(old) = db.images.get(&id.0) {
                record.added = old.added;
            }
            db.images.insert(id.0.clone(), record);
            for name in names {
                db.refs.insert(name.full(), id.0.clone());
            }
            Ok(())
        })?;
        Ok(id)
    }

    /// Note that `reference` was pulled just now.
    pub(crate) fn mark_pulled(&self, reference: &Reference) -> Result<()> {
        self.update_db(|db| {
            db.pulled.insert(reference.full(), now_secs());
            Ok(())
        })
    }

    /// Unix seconds when the image `reference` names was last pulled, or when it
    /// entered the store if it never was (imported, loaded).
    pub fn last_refreshed(&self, reference: &str) -> Result<u64> {
        let db = self.db()?;
        let id = find(&db, reference)?;
        let added = db.images.get(&id.0).map_or(0, |r| r.added);
        let pulled = reference
            .parse::<Reference>()
            .ok()
            .and_then(|r| db.pulled.get(&r.full()).copied())
            .unwrap_or(0);
        Ok(added.max(pulled))
    }

    /// Point another reference at an image.
    pub fn tag(&self, id: &ImageId, name: &str) -> Result<()> {
        let reference: Reference = name.parse()?;
        self.update_db(|db| {
            if !db.images.contains_key(&id.0) {
                return Err(Error::NotFound(id.to_string()));
            }
            db.refs.insert(reference.full(), id.0.clone());
            Ok(())
        })
    }

    /// Find an image by reference (`busybox`, `localhost/x:1`, `name@sha256:...`),
    /// by full digest, or by an unambiguous prefix of its ID or config digest.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let db = self.db()?;
        let id = find(&db, reference)?;
        self.image_from(&db, &id)
    }

    /// The image with this manifest digest.
    pub fn image(&self, id: &ImageId) -> Result<Image> {
        self.image_from(&self.db()?, id)
    }

    fn image_from(&self, db: &Db, id: &ImageId) -> Result<Image> {
        let record = db
            .images
            .get(&id.0)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let data = self.read_blob(&record.config)?;
        let config = serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: format!("image config {}", record.config),
            source,
        })?;
        let mut layers = Vec::with_capacity(record.layers.len());
        for layer in &record.layers {
            let path = self.layer_path(&layer.diff_id);
            if !path.is_dir() {
                return Err(Error::NotFound(format!(
                    "{id} (layer {} is missing; import or pull the image again)",
                    layer.diff_id
                )));
            }
            layers.push(path);
        }
        Ok(Image {
            id: Some(id.clone()),
            config_digest: Some(record.config.clone()),
            config,
            layers,
            names: db.names_of(&id.0),
            healthcheck: healthcheck_of(&data),
        })
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let db = self.db()?;
        let mut out: Vec<ImageSummary> = db
            .images
            .iter()
            .map(|(digest, r)| ImageSummary {
                id: ImageId(digest.clone()),
                config_digest: r.config.clone(),
                names: db.names_of(digest),
                created: r.created.clone(),
                added: r.added,
                size: r
                    .layers
                    .iter()
                    .map(|l| db.layers.get(&l.diff_id).map_or(0, |i| i.size))
                    .sum(),
                layers: r.layers.len(),
                platform: r.platform.clone(),
            })
            .collect();
        out.sort_by(|a, b| b.added.cmp(&a.added).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }
}

/// Resolve a user's string to a manifest digest.
fn find(db: &Db, s: &str) -> Result<ImageId> {
    // A full digest: manifest or config.
    if let Ok(d) = s.parse::<Digest>() {
        return by_prefix(db, d.hex(), s);
    }
    if let Ok(reference) = s.parse::<Reference>() {
        if let Some(d) = &reference.digest
            && db.images.contains_key(d)
        {
            return Ok(ImageId(d.clone()));
        }
        if let Some(d) = db.refs.get(&reference.full()) {
            return Ok(ImageId(d.clone()));
        }
    }
    // `localhost/NAME:TAG` images may be asked for without the host, like podman.
    if let Ok(reference) = format!("localhost/{s}").parse::<Reference>()
        && let Some(d) = db.refs.get(&reference.full())
    {
        return Ok(ImageId(d.clone()));
    }
    if s.len() >= 4
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return by_prefix(db, s, s);
    }
    Err(Error::NotFound(s.to_string()))
}

fn by_prefix(db: &Db, prefix: &str, asked: &str) -> Result<ImageId> {
    let mut hits = db
        .images
        .iter()
        .filter(|(d, r)| d.hex().starts_with(prefix) || r.config.hex().starts_with(prefix))
        .map(|(d, _)| d.clone());
    match (hits.next(), hits.next()) {
        (Some(d), None) => Ok(ImageId(d)),
        (Some(_), Some(_)) => Err(Error::Ambiguous(asked.to_string())),
        (None, _) => Err(Error::NotFound(asked.to_string())),
    }
}

/// fsync a directory so a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    crate::state::sync_dir(dir).map_err(|e| Error::io(dir, e))
}
