//! Writing blobs whose digest is learnt while reading (archive members) or that
//! arrive in chunks (downloads).
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use super::digest::HashingReader;
use super::store::sync_dir;
use super::{Digest, Error, Result, Store};

impl Store {
    /// Copy a stream of unknown digest into the blob store; returns its digest and
    /// size. Content-addressed, so whatever the bytes are, the name is right.
    ///
    /// Not fsync'd: these are archive members (large, uncompressed docker-archive
    /// layers) and every use verifies them again (a layer's diff_id while it is
    /// unpacked, JSON on every read, `save` while it copies), so a crash that loses
    /// their data is detected, never trusted; flushing them would double the I/O of
    /// an import.
    pub(crate) fn put_stream(&self, src: &mut dyn Read) -> Result<(Digest, u64)> {
        let tmp = self.tmp_path("blob");
        let result = (|| {
            let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut reader = HashingReader::new(src);
            io::copy(&mut reader, &mut file).map_err(|e| Error::io(&tmp, e))?;
            let (digest, size) = reader.finish().map_err(|e| Error::io(&tmp, e))?;
            if self.has_blob(&digest) {
                let _ = fs::remove_file(&tmp);
                return Ok((digest, size));
            }
            let dest = self.blob_path(&digest);
            fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// A blob being written (e.g. downloaded in chunks): hashed as it grows, visible in
/// the store only after [`BlobWriter::commit`] verified it. Dropped uncommitted, it
/// leaves nothing behind.
pub(crate) struct BlobWriter {
    tmp: PathBuf,
    file: Option<File>,
    hasher: sha2::Sha256,
    count: u64,
}

impl BlobWriter {
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        use sha2::Digest as _;
        use std::io::Write as _;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::io(&self.tmp, io::Error::other("blob writer closed")))?;
        file.write_all(data).map_err(|e| Error::io(&self.tmp, e))?;
        self.hasher.update(data);
        self.count += data.len() as u64;
        Ok(())
    }

    /// Start over (the server ignored a range request and sent everything).
    pub fn reset(&mut self) -> Result<()> {
        use sha2::Digest as _;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::io(&self.tmp, io::Error::other("blob writer closed")))?;
        file.set_len(0).map_err(|e| Error::io(&self.tmp, e))?;
        io::Seek::seek(file, io::SeekFrom::Start(0)).map_err(|e| Error::io(&self.tmp, e))?;
        self.hasher = sha2::Sha256::new();
        self.count = 0;
        Ok(())
    }

    /// Digest of what was written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    /// Verify size and digest, then move the blob into place.
    pub fn commit(mut self, store: &Store, expected: &Digest, size: u64, what: &str) -> Result<()> {
        if self.count != size {
            return Err(Error::SizeMismatch {
                what: what.to_string(),
                expected: size,
                actual: self.count,
            });
        }
        let actual = self.digest();
        if actual != *expected {
            return Err(Error::DigestMismatch {
                what: what.to_string(),
                expected: expected.clone(),
                actual,
            });
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::io(&self.tmp, io::Error::other("blob writer closed")))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        let dest = store.blob_path(expected);
        fs::rename(&self.tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        sync_dir(dest.parent().unwrap_or(store.root()))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Store {
    pub(crate) fn blob_writer(&self) -> Result<BlobWriter> {
        use sha2::Digest as _;
        let tmp = self.tmp_path("download");
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(BlobWriter {
            tmp,
            file: Some(file),
            hasher: sha2::Sha256::new(),
            count: 0,
        })
    }
}
