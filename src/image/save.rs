//! `stack image save`: images to an OCI archive (a tar of an OCI image layout) that
//! `stack image import`, skopeo (`oci-archive:`) and podman load read back.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::digest::HashingReader;
use super::manifest::{Descriptor, Index, OCI_INDEX, REF_NAME};
use super::{Digest, Error, Reference, Result, Store};

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(kind);
    h
}

impl Store {
    /// Write the images named by `references` to `out` as an OCI archive. Each name
    /// becomes an index entry annotated with its tag (`org.opencontainers.image.ref.name`)
    /// and full name (`io.containerd.image.name`). Written to a temp file and renamed.
    pub fn save_oci_archive(&self, references: &[&str], out: &Path) -> Result<()> {
        let db = self.db()?;
        let mut entries = Vec::new();
        let mut blobs = BTreeSet::new();
        for reference in references {
            let image = self.resolve(reference)?;
            let Some(id) = image.id else { continue };
            let record = db
                .images
                .get(&id.0)
                .ok_or_else(|| Error::NotFound(id.to_string()))?;
            blobs.insert(id.0.clone());
            blobs.insert(record.config.clone());
            blobs.extend(record.layers.iter().map(|l| l.blob.clone()));
            // Name the entry after what was asked for when that is a name.
            let asked = reference
                .parse::<Reference>()
                .ok()
                .map(|r| r.full())
                .filter(|n| image.names.contains(n));
            let name = asked.or_else(|| image.names.first().cloned());
            let mut annotations = BTreeMap::new();
            if let Some(name) = name.as_deref().and_then(|n| n.parse::<Reference>().ok()) {
                annotations.insert("io.containerd.image.name".to_string(), name.full());
                if let Some(tag) = &name.tag {
                    annotations.insert(REF_NAME.to_string(), tag.clone());
                }
            }
            entries.push(Descriptor {
                media_type: record.media_type.clone(),
                digest: id.0.clone(),
                size: record.manifest_size,
                platform: None,
                annotations,
            });
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: entries,
        };
        let tmp = out.with_file_name(format!(
            ".{}.tmp.{}",
            out.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("archive"),
            std::process::id()
        ));
        let result = self
            .write_archive(&tmp, &index, &blobs)
            .and_then(|()| fs::rename(&tmp, out).map_err(|e| Error::io(out, e)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_archive(&self, tmp: &Path, index: &Index, blobs: &BTreeSet<Digest>) -> Result<()> {
        let io_err = |e| Error::io(tmp, e);
        let file = File::create(tmp).map_err(io_err)?;
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
        let mut add = |name: &str, data: &[u8]| {
            let mut h = header(data.len() as u64, 0o644, tar::EntryType::Regular);
            tar.append_data(&mut h, name, data)
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
        let index_json = serde_json::to_vec(index).map_err(|source| Error::Json {
            what: "index.json".into(),
            source,
        })?;
        add("index.json", &index_json).map_err(io_err)?;
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(0, 0o755, tar::EntryType::Directory);
            tar.append_data(&mut h, dir, &[][..]).map_err(io_err)?;
        }
        for digest in blobs {
            let path = self.blob_path(digest);
            let blob = File::open(&path).map_err(|e| Error::io(&path, e))?;
            let size = blob.metadata().map_err(|e| Error::io(&path, e))?.len();
            let mut h = header(size, 0o644, tar::EntryType::Regular);
            // Verified while copied: an archive never carries a damaged blob.
            let mut reader = HashingReader::new(blob);
            tar.append_data(
                &mut h,
                format!("blobs/sha256/{}", digest.hex()),
                &mut reader,
            )
            .map_err(io_err)?;
            let (actual, _) = reader.finish().map_err(io_err)?;
            if actual != *digest {
                return Err(Error::DigestMismatch {
                    what: format!("stored blob {}", path.display()),
                    expected: digest.clone(),
                    actual,
                });
            }
        }
        let mut writer = tar.into_inner().map_err(io_err)?;
        writer.flush().map_err(io_err)?;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(tmp, e.into_error()))?;
        file.sync_all().map_err(io_err)
    }
}
