//! The image store: content-addressed blobs, image references, unpacked layers.
//!
//! On-disk layout under `<lib>/images/` (`state::Roots.lib`):
//!
//! ```text
//! blobs/sha256/<hex>   manifests, configs and (compressed) layers; a file appears here
//!                      only after its digest and size were verified (temp, fsync, rename)
//! layers/<diff-hex>/   one unpacked layer, keyed by its uncompressed digest, shared by
//!                      every image that has it; built under tmp/ and renamed into place,
//!                      so a present directory is always complete
//! db.json              references (name:tag -> manifest digest) and image records,
//!                      replaced atomically while holding `lock`
//! holds/<holder>       manifest digests a container uses; GC never removes those
//! tmp/                 downloads and unpacks in progress (removed by prune)
//! ```
//!
//! Flow: import (OCI layout, OCI archive, docker archive) or pull -> blobs verified into
//! `blobs/` -> each layer unpacked once into `layers/` -> the record is committed to
//! `db.json` last, so a crash before that leaves only unreferenced content for GC.
mod archive;
mod auth;
mod blobs;
mod digest;
mod gc;
mod layout;
mod limits;
mod manifest;
mod reference;
mod registry;
mod save;
mod source;
mod store;
mod unpack;
mod unpack_fs;

use std::io;
use std::path::{Path, PathBuf};

pub use digest::Digest;
pub use gc::PruneReport;
pub use limits::{Exceeded, LIMITS_ENV, Limits, MAX_TAR_METADATA};
pub use manifest::Platform;
pub use reference::Reference;
pub use registry::{PullEvent, PullOptions};
pub use source::{PullPolicy, Source};
pub use store::{Healthcheck, Image, ImageId, ImageSummary, Store, now_secs};
pub use unpack::{Unpacked, unpack_layer, unpack_layer_with};

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid digest {0:?} (expected sha256:<64 lowercase hex>)")]
    InvalidDigest(String),
    #[error("{what}: digest is {actual}, expected {expected} (corrupt or tampered content)")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size is {actual} bytes, expected {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("unsafe layer entry {entry:?}: {reason}; nothing was written outside the layer")]
    UnsafeEntry { entry: String, reason: String },
    #[error("layer entry {entry:?}: {source}")]
    Entry { entry: String, source: io::Error },
    #[error("reading layer: {0}")]
    LayerRead(io::Error),
    /// A size or entry cap was hit (see `limits`).
    #[error("{0}")]
    TooLarge(Exceeded),
    #[error("layer {layer}: {source}")]
    Layer { layer: Digest, source: Box<Error> },
    #[error("{}: {reason}", path.display())]
    BadArchive { path: PathBuf, reason: String },
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("image {0:?} not found in the store (stack images lists what is there)")]
    NotFound(String),
    #[error("image reference {0:?} is ambiguous; give more of the ID")]
    Ambiguous(String),
    #[error("image {image} is in use by {holders}; stop and remove those containers first")]
    InUse { image: String, holders: String },
    #[error("registry: {0}")]
    Registry(String),
    #[error("credential helper {helper:?} (named in {}) for {registry}: {reason}", file.display())]
    CredentialHelper {
        helper: String,
        file: PathBuf,
        registry: String,
        reason: String,
    },
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The reference names no image in the store.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
