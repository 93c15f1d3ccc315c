//! Import of an OCI image layout directory (image-spec `image-layout.md`).
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::manifest::{BlobSource, Descriptor, Index, Platform, REF_NAME};
use super::{Error, ImageId, Reference, Result, Store};

/// Blobs of a layout directory: `blobs/sha256/<hex>`. The hex comes from a parsed
/// digest, so it cannot name anything outside `blobs/`.
pub(crate) struct LayoutDir {
    pub root: PathBuf,
}

impl BlobSource for LayoutDir {
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let path = self.root.join("blobs/sha256").join(desc.digest.hex());
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Box::new(file))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// Read and check `index.json` and `oci-layout` of a layout directory.
pub(crate) fn read_index(root: &Path) -> Result<Index> {
    let bad = |reason: String| Error::BadArchive {
        path: root.to_path_buf(),
        reason,
    };
    let marker = root.join("oci-layout");
    let layout = std::fs::read(&marker)
        .map_err(|e| bad(format!("not an OCI image layout (oci-layout: {e})")))?;
    let version: serde_json::Value =
        serde_json::from_slice(&layout).map_err(|e| bad(format!("oci-layout: {e}")))?;
    if version.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
        return Err(bad(
            "oci-layout: unsupported imageLayoutVersion (want 1.0.0)".into(),
        ));
    }
    let path = root.join("index.json");
    let mut data = Vec::new();
    File::open(&path)
        .and_then(|f| f.take(super::store::MAX_JSON_BLOB).read_to_end(&mut data))
        .map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&data).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })
}

/// The entry of `index` for `tag` (its `org.opencontainers.image.ref.name`), or the
/// only entry when no tag is asked for.
pub(crate) fn select_tag<'a>(
    index: &'a Index,
    tag: Option<&str>,
    what: &Path,
) -> Result<&'a Descriptor> {
    let tags: Vec<&str> = index
        .manifests
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
        .collect();
    let found = match tag {
        Some(tag) => index.manifests.iter().find(|d| {
            d.annotations.get(REF_NAME).is_some_and(|n| {
                n == tag
                    || n.rsplit_once(':')
                        .is_some_and(|(_, t)| t == tag && !n.ends_with('/'))
            })
        }),
        None if index.manifests.len() == 1 => index.manifests.first(),
        None => None,
    };
    found.ok_or_else(|| {
        Error::NotFound(format!(
            "{}:{} (tags in this layout: {})",
            what.display(),
            tag.unwrap_or(""),
            if tags.is_empty() {
                "none".to_string()
            } else {
                tags.join(", ")
            }
        ))
    })
}

/// The name an image from a layout gets: its ref annotation when that is a full
/// reference, else `localhost/<directory name>:<tag>` (as podman names local images).
pub(crate) fn local_name(root: &Path, desc: &Descriptor, tag: Option<&str>) -> Option<Reference> {
    let annotated = desc.annotations.get(REF_NAME).map(String::as_str);
    if let Some(name) = annotated.filter(|n| n.contains('/'))
        && let Ok(r) = name.parse::<Reference>()
    {
        return Some(r);
    }
    let tag = tag.or(annotated).unwrap_or("latest");
    let base = root
        .canonicalize()
        .ok()?
        .file_name()?
        .to_str()?
        .to_ascii_lowercase();
    format!("localhost/{base}:{tag}").parse().ok()
}

impl Store {
    /// Import the image tagged `tag` (the only one when `None`) from an OCI image
    /// layout directory. It is named `localhost/<dir>:<tag>` unless the layout names
    /// it fully. Blobs already present are not copied again.
    pub fn import_oci_layout(&self, path: &Path, tag: Option<&str>) -> Result<ImageId> {
        let _content = self.content_lock(false)?;
        self.import_layout_locked(path, tag)
    }

    /// [`Store::import_oci_layout`] for another platform than this machine's (a
    /// layout whose tag is a multi-platform index; `platform:` in the stack file).
    pub fn import_oci_layout_for(
        &self,
        path: &Path,
        tag: Option<&str>,
        platform: &Platform,
    ) -> Result<ImageId> {
        let _content = self.content_lock(false)?;
        let index = read_index(path)?;
        let desc = select_tag(&index, tag, path)?;
        let src = LayoutDir {
            root: path.to_path_buf(),
        };
        let imported = self.import_from(&src, desc, platform)?;
        let names: Vec<Reference> = local_name(path, desc, tag).into_iter().collect();
        self.commit(imported, &names)
    }

    pub(crate) fn import_layout_locked(&self, path: &Path, tag: Option<&str>) -> Result<ImageId> {
        let index = read_index(path)?;
        let desc = select_tag(&index, tag, path)?;
        let src = LayoutDir {
            root: path.to_path_buf(),
        };
        let imported = self.import_from(&src, desc, &Platform::host())?;
        let names: Vec<Reference> = local_name(path, desc, tag).into_iter().collect();
        self.commit(imported, &names)
    }
}
