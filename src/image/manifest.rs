//! Manifests, indexes and descriptors (OCI image spec and Docker v2 schema 2), and
//! the import of one image from any source of blobs into the store.
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use super::limits::ImageBudget;
use super::store::{ImageRecord, LayerInfo, LayerRef, MAX_JSON_BLOB, now_secs};
use super::{Digest, Error, ImageId, Result, Store};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The annotation an OCI layout uses for a tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor, parsed leniently; the digest is validated (it becomes a
/// file name in the blob store).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index or a Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An image manifest (OCI or Docker v2 schema 2: same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine, in OCI names.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(String::from),
        }
    }

    /// Parse `linux/arm64/v8` (Compose's `platform:`).
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(Error::Unsupported(format!(
                "platform {s:?}: expected os/arch[/variant]"
            ))),
        }
    }

    /// Whether an index entry's platform fits this one (variant only checked when
    /// both name one; arm64 images rarely carry `v8`).
    fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// An image whose content is in the store, ready to be committed (named).
pub(crate) struct Imported {
    pub id: ImageId,
    pub record: ImageRecord,
    /// (diff_id, unpacked size and entries) per layer.
    pub layer_sizes: Vec<(Digest, LayerInfo)>,
}

/// Where blobs come from during an import (a layout directory, a staged archive,
/// a registry).
pub trait BlobSource: Sync {
    /// A stream of the blob's bytes; the store verifies digest and size.
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;
    /// For error messages.
    fn describe(&self) -> String;
}

fn parse_json<T: serde::de::DeserializeOwned>(data: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(data).map_err(|source| Error::Json {
        what: what.to_string(),
        source,
    })
}

/// Pick the manifest for `platform` from an index.
pub fn select_platform<'a>(
    index: &'a Index,
    platform: &Platform,
    what: &str,
) -> Result<&'a Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| !is_index(&d.media_type))
        .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
        .or_else(|| {
            // A single manifest without platform information is taken as is.
            let plain: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| d.platform.is_none())
                .collect();
            (plain.len() == 1 && index.manifests.len() == 1).then(|| plain[0])
        })
        .ok_or_else(|| {
            let have: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect();
            Error::NotFound(format!(
                "{what}: no image for platform {platform} (available: {})",
                have.join(", ")
            ))
        })
}

impl Store {
    /// Copy a small JSON blob into the store (verified) and return its bytes.
    pub(crate) fn fetch_json(
        &self,
        src: &dyn BlobSource,
        desc: &Descriptor,
        what: &str,
    ) -> Result<Vec<u8>> {
        if desc.size > MAX_JSON_BLOB {
            return Err(Error::Unsupported(format!(
                "{what} of {} bytes is too large",
                desc.size
            )));
        }
        if !self.has_blob(&desc.digest) {
            let mut r = src.open_blob(desc)?;
            self.put_blob(&mut r, &desc.digest, Some(desc.size), what)?;
        }
        self.read_blob(&desc.digest)
    }

    /// Import the image `desc` points at (following an index to `platform`) from
    /// `src`: blobs verified into the store, layers unpacked (within the store's
    /// limits for one image). Returns the id and the record to commit; nothing is
    /// named yet.
    pub(crate) fn import_from(
        &self,
        src: &dyn BlobSource,
        desc: &Descriptor,
        platform: &Platform,
    ) -> Result<Imported> {
        let mut desc = desc.clone();
        let mut parents = Vec::new();
        let data = loop {
            let data = self.fetch_json(src, &desc, "image manifest")?;
            // Follow indexes (also ones listed without a media type) to a manifest.
            let index = if is_index(&desc.media_type) {
                Some(parse_json::<Index>(&data, "image index")?)
            } else if desc.media_type.is_empty() {
                parse_json::<Index>(&data, "image index")
                    .ok()
                    .filter(|i| !i.manifests.is_empty())
            } else {
                None
            };
            let Some(index) = index else { break data };
            if parents.len() >= 4 {
                return Err(Error::Unsupported(format!(
                    "{}: image indexes nested too deep",
                    src.describe()
                )));
            }
            parents.push(desc.digest.clone());
            desc = select_platform(&index, platform, &src.describe())?.clone();
        };
        let manifest: Manifest = parse_json(&data, "image manifest")?;
        let config_data = self.fetch_json(src, &manifest.config, "image config")?;
        let config: ImageConfiguration = parse_json(&config_data, "image config")?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::Unsupported(format!(
                "{}: manifest has {} layers but the config lists {} diff_ids",
                src.describe(),
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let diff_ids: Vec<Digest> = diff_ids.iter().map(|d| d.parse()).collect::<Result<_>>()?;
        let layers: Vec<LayerRef> = manifest
            .layers
            .iter()
            .zip(&diff_ids)
            .map(|(l, d)| LayerRef {
                blob: l.digest.clone(),
                diff_id: d.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            })
            .collect();
        let sizes = self.fetch_layers(src, &manifest.layers, &layers, &self.image_budget())?;
        let record = ImageRecord {
            config: manifest.config.digest.clone(),
            config_size: manifest.config.size,
            media_type: manifest
                .media_type
                .clone()
                .unwrap_or_else(|| desc.media_type.clone()),
            manifest_size: desc.size,
            layers,
            created: config.created().clone(),
            added: now_secs(),
            platform: format!("{}/{}", config.os(), config.architecture()),
            parents,
        };
        Ok(Imported {
            id: ImageId(desc.digest.clone()),
            record,
            layer_sizes: sizes,
        })
    }

    /// Copy and unpack every layer, several at a time.
    fn fetch_layers(
        &self,
        src: &dyn BlobSource,
        descs: &[Descriptor],
        layers: &[LayerRef],
        budget: &ImageBudget,
    ) -> Result<Vec<(Digest, LayerInfo)>> {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        let mut sizes = Vec::with_capacity(layers.len());
        for chunk in descs.iter().zip(layers).collect::<Vec<_>>().chunks(workers) {
            let results: Vec<Result<(Digest, LayerInfo)>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(desc, layer)| {
                        s.spawn(move || self.fetch_layer(src, desc, layer, budget))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::Unsupported("layer worker panicked".into()))
                        })
                    })
                    .collect()
            });
            for r in results {
                sizes.push(r?);
            }
        }
        Ok(sizes)
    }

    fn fetch_layer(
        &self,
        src: &dyn BlobSource,
        desc: &Descriptor,
        layer: &LayerRef,
        budget: &ImageBudget,
    ) -> Result<(Digest, LayerInfo)> {
        if !self.has_blob(&layer.blob) {
            let mut r = src.open_blob(desc)?;
            self.put_blob(
                &mut r,
                &layer.blob,
                Some(desc.size),
                &format!("layer {}", layer.blob),
            )?;
        }
        let (_, info) = self.ensure_layer(&layer.blob, &layer.diff_id, budget)?;
        Ok((layer.diff_id.clone(), info))
    }
}
