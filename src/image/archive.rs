//! Import of OCI archives (a tar of an image layout) and docker archives
//! (`docker save`), streamed once: large members go straight into the blob store
//! under the digest computed while copying, small ones stay in memory.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::manifest::{self, BlobSource, Descriptor, Index, Manifest, Platform};
use super::{Digest, Error, ImageId, Reference, Result, Store, layout};

/// Members up to this size are kept in memory (JSON documents).
const IN_MEMORY: u64 = 1 << 20;

/// An archive after one pass: every member by name.
struct Staged {
    path: PathBuf,
    /// name -> (digest, size); the content is in `small` or in the store.
    members: BTreeMap<String, (Digest, u64)>,
    small: BTreeMap<Digest, Vec<u8>>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadArchive {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Normalise a member name (`./a/b` -> `a/b`); `..` and absolute names are refused.
fn member_name(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

impl Staged {
    fn read(store: &Store, path: &Path) -> Result<Staged> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // `docker save | gzip` output is accepted as `docker load` does.
        let stream = super::unpack::decompress(BufReader::with_capacity(1 << 17, file))
            .map_err(|e| bad(path, format!("reading: {e}")))?;
        let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 17, stream));
        let mut staged = Staged {
            path: path.to_path_buf(),
            members: BTreeMap::new(),
            small: BTreeMap::new(),
        };
        let mut links = Vec::new();
        let read_err = |e| bad(path, format!("reading tar: {e}"));
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let raw = entry.path().map_err(read_err)?.into_owned();
            let name = member_name(&raw)
                .ok_or_else(|| bad(path, format!("member {} has an unsafe name", raw.display())))?;
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let member = if size <= IN_MEMORY {
                        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                        entry.read_to_end(&mut data).map_err(read_err)?;
                        let digest = Digest::of(&data);
                        let len = data.len() as u64;
                        staged.small.insert(digest.clone(), data);
                        (digest, len)
                    } else {
                        store.put_stream(&mut entry)?
                    };
                    staged.members.insert(name, member);
                }
                // Older `docker save` links repeated layers to the first copy.
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(read_err)?
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                        Path::new(&name)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(&target)
                    } else {
                        target
                    };
                    links.push((name, base));
                }
                tar::EntryType::Directory => {}
                other => {
                    return Err(bad(
                        path,
                        format!("member {name} has unexpected type {other:?}"),
                    ));
                }
            }
        }
        for (name, target) in links {
            let target = member_name(&target).and_then(|t| staged.members.get(&t).cloned());
            match target {
                Some(m) => {
                    staged.members.insert(name, m);
                }
                None => return Err(bad(path, format!("link {name} points at no member"))),
            }
        }
        Ok(staged)
    }

    fn small(&self, name: &str) -> Result<&[u8]> {
        let (digest, _) = self
            .members
            .get(name)
            .ok_or_else(|| bad(&self.path, format!("no {name} in the archive")))?;
        self.small
            .get(digest)
            .map(Vec::as_slice)
            .ok_or_else(|| bad(&self.path, format!("{name} is too large")))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        serde_json::from_slice(self.small(name)?).map_err(|source| Error::Json {
            what: format!("{}: {name}", self.path.display()),
            source,
        })
    }

    fn member(&self, name: &str) -> Result<(Digest, u64)> {
        self.members
            .get(name)
            .cloned()
            .ok_or_else(|| bad(&self.path, format!("no {name} in the archive")))
    }
}

/// Blobs of a staged archive: small ones from memory, the rest already stored.
impl BlobSource for Staged {
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        match self.small.get(&desc.digest) {
            Some(data) => Ok(Box::new(&data[..])),
            None => Err(bad(&self.path, format!("blob {} is missing", desc.digest))),
        }
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

fn archive_stem(path: &Path) -> String {
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("image");
    let stem = stem.split('.').next().unwrap_or(stem);
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        "image".into()
    } else {
        clean
    }
}

/// One image of `docker save`'s manifest.json.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Store {
    /// Import an OCI archive (tar of an OCI layout); `tag` picks the image as for
    /// [`Store::import_oci_layout`].
    pub fn import_oci_archive(&self, path: &Path, tag: Option<&str>) -> Result<ImageId> {
        let _content = self.content_lock(false)?;
        let staged = Staged::read(self, path)?;
        self.oci_from(&staged, tag)
    }

    /// Import `docker save` output (every image in it, with its RepoTags). Returns
    /// the first image's id.
    pub fn import_docker_archive(&self, path: &Path) -> Result<ImageId> {
        let _content = self.content_lock(false)?;
        let staged = Staged::read(self, path)?;
        let ids = self.docker_from(&staged)?;
        ids.into_iter()
            .next()
            .ok_or_else(|| bad(path, "manifest.json lists no image"))
    }

    /// Import a directory (OCI layout) or an archive of either kind, telling them
    /// apart by content: `manifest.json` means `docker save` output (Docker 25+
    /// writes an OCI index too, but only manifest.json carries the RepoTags).
    pub fn import_path(&self, path: &Path, tag: Option<&str>) -> Result<Vec<ImageId>> {
        let _content = self.content_lock(false)?;
        if path.is_dir() {
            return Ok(vec![self.import_layout_locked(path, tag)?]);
        }
        let staged = Staged::read(self, path)?;
        if staged.members.contains_key("manifest.json") {
            self.docker_from(&staged)
        } else if staged.members.contains_key("index.json") {
            Ok(vec![self.oci_from(&staged, tag)?])
        } else {
            Err(bad(
                path,
                "neither a docker archive (manifest.json) nor an OCI archive (index.json)",
            ))
        }
    }

    fn oci_from(&self, staged: &Staged, tag: Option<&str>) -> Result<ImageId> {
        let path = &staged.path;
        let index: Index = staged.json("index.json")?;
        let layout_doc: serde_json::Value = staged.json("oci-layout")?;
        if layout_doc
            .get("imageLayoutVersion")
            .and_then(|v| v.as_str())
            != Some("1.0.0")
        {
            return Err(bad(
                path,
                "oci-layout: unsupported imageLayoutVersion (want 1.0.0)",
            ));
        }
        let desc = layout::select_tag(&index, tag, path)?;
        let imported = self.import_from(staged, desc, &Platform::host())?;
        let name = desc
            .annotations
            .get("io.containerd.image.name")
            .and_then(|n| n.parse::<Reference>().ok())
            .or_else(|| {
                desc.annotations
                    .get(manifest::REF_NAME)
                    .filter(|n| n.contains('/'))
                    .and_then(|n| n.parse().ok())
            })
            .or_else(|| {
                let tag = tag
                    .or(desc.annotations.get(manifest::REF_NAME).map(String::as_str))
                    .unwrap_or("latest");
                format!("localhost/{}:{tag}", archive_stem(path))
                    .parse()
                    .ok()
            });
        self.commit(imported, &name.into_iter().collect::<Vec<_>>())
    }

    fn docker_from(&self, staged: &Staged) -> Result<Vec<ImageId>> {
        let entries: Vec<DockerEntry> = staged.json("manifest.json")?;
        entries
            .iter()
            .map(|e| self.import_docker_entry(staged, e))
            .collect()
    }

    fn import_docker_entry(&self, staged: &Staged, entry: &DockerEntry) -> Result<ImageId> {
        let config = staged.small(&entry.config)?;
        let config_digest = self.put_bytes(config)?;
        let mut layers = Vec::with_capacity(entry.layers.len());
        for name in &entry.layers {
            let (digest, size) = staged.member(name)?;
            if let Some(data) = staged.small.get(&digest) {
                self.put_bytes(data)?;
            }
            layers.push(Descriptor {
                media_type: manifest::OCI_LAYER_TAR.into(),
                digest,
                size,
                platform: None,
                annotations: BTreeMap::new(),
            });
        }
        // Describe the image with an OCI manifest of our own; its digest is the id.
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: manifest::OCI_CONFIG.into(),
                digest: config_digest,
                size: config.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers,
        };
        let data = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
            what: "generated manifest".into(),
            source,
        })?;
        let digest = self.put_bytes(&data)?;
        let desc = Descriptor {
            media_type: manifest::OCI_MANIFEST.into(),
            digest,
            size: data.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let imported = self.import_from(staged, &desc, &Platform::host())?;
        let mut names = Vec::new();
        for tag in entry.repo_tags.iter().flatten() {
            names.push(tag.parse::<Reference>()?);
        }
        self.commit(imported, &names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        assert_eq!(
            member_name(Path::new("./blobs/sha256/ab")).as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(member_name(Path::new("a/../b")).as_deref(), Some("b"));
        assert_eq!(member_name(Path::new("../b")), None);
        assert_eq!(member_name(Path::new("/etc/passwd")), None);
    }
}
