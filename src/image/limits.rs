//! Caps on what a layer and an image may unpack to, against decompression bombs: a
//! few kilobytes of gzip or zstd can expand to terabytes of zeros or millions of
//! empty files, and a tar header alone can announce an entry of any size.
//!
//! Defaults ([`Limits::default`]), per layer: 32 GiB unpacked and 2,000,000 entries;
//! per image (all its layers together): 64 GiB and 8,000,000 entries. `STACK_IMAGE_LIMITS`
//! changes them, e.g. `layer-size=100G,image-size=200G,layer-entries=5000000`.
//!
//! What counts:
//! - size: the bytes of file content an entry writes, charged from the size its header
//!   announces before anything is written (so a sparse or truncated bomb is refused at
//!   its header), and the uncompressed tar stream of a layer (what is hashed);
//! - entries: every member of the tar stream;
//! - tar metadata members (PAX headers, GNU long names) are read into memory by the tar
//!   parser, so each is capped at 1 MiB, as Go's archive/tar does
//!   (`maxSpecialFileSize`): [`TarGuard`] follows the stream's block structure and
//!   refuses a larger one before the parser buffers it.
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Error, Result};

/// Largest PAX header or GNU long name/link member accepted.
pub const MAX_TAR_METADATA: u64 = 1 << 20;

const BLOCK: usize = 512;

/// The caps; see the module documentation for what counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one layer may unpack to.
    pub layer_size: u64,
    /// Tar members in one layer.
    pub layer_entries: u64,
    /// Bytes all layers of one image may unpack to.
    pub image_size: u64,
    /// Tar members over all layers of one image.
    pub image_entries: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            layer_size: 32 << 30,
            layer_entries: 2_000_000,
            image_size: 64 << 30,
            image_entries: 8_000_000,
        }
    }
}

/// The environment variable that overrides the defaults.
pub const LIMITS_ENV: &str = "STACK_IMAGE_LIMITS";

impl Limits {
    /// The defaults with `STACK_IMAGE_LIMITS` applied.
    pub fn from_env() -> Result<Limits> {
        match std::env::var(LIMITS_ENV) {
            Ok(s) => Limits::default().with(&s),
            Err(_) => Ok(Limits::default()),
        }
    }

    /// Apply `key=value,...` (`layer-size`, `layer-entries`, `image-size`,
    /// `image-entries`; sizes take K, M, G or T, powers of 1024).
    pub fn with(mut self, spec: &str) -> Result<Limits> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |why: &str| {
                Error::Unsupported(format!(
                    "{LIMITS_ENV}: {item:?}: {why} (expected e.g. layer-size=64G,image-entries=10000000)"
                ))
            };
            let (key, value) = item.split_once('=').ok_or_else(|| bad("no '='"))?;
            let slot = match key.trim() {
                "layer-size" => &mut self.layer_size,
                "layer-entries" => &mut self.layer_entries,
                "image-size" => &mut self.image_size,
                "image-entries" => &mut self.image_entries,
                _ => return Err(bad("unknown key")),
            };
            let sized = key.ends_with("-size");
            *slot = parse_amount(value.trim(), sized).ok_or_else(|| bad("not a number"))?;
        }
        Ok(self)
    }
}

fn parse_amount(s: &str, sized: bool) -> Option<u64> {
    let (digits, shift) = match s.char_indices().last()? {
        (i, c) if sized && c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// `32 GiB`, `1 MiB`, `1000 bytes`: limits are set in powers of 1024.
fn binary_size(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// Which cap was hit; carried inside `io::Error`s through the tar parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// e.g. "layer size", "image entries", "tar metadata member".
    pub limit: &'static str,
    pub max: u64,
    /// The `STACK_IMAGE_LIMITS` key that raises it, if any.
    pub key: Option<&'static str>,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.limit.ends_with("entries") {
            self.max.to_string()
        } else {
            binary_size(self.max)
        };
        write!(
            f,
            "unpacking exceeds the {} limit of {max} (a decompression bomb, or a very large image",
            self.limit
        )?;
        match self.key {
            Some(key) => write!(f, ": if it is genuine, raise it with {LIMITS_ENV}={key}=N)"),
            None => write!(f, ")"),
        }
    }
}

impl std::error::Error for Exceeded {}

impl Exceeded {
    fn io(self) -> io::Error {
        io::Error::other(self)
    }
}

/// The [`Exceeded`] inside an I/O error, if that is what it is.
pub fn exceeded(e: &io::Error) -> Option<Exceeded> {
    e.get_ref()?.downcast_ref::<Exceeded>().cloned()
}

/// What all layers of one image have used so far (shared by concurrent unpacks).
#[derive(Debug)]
pub struct ImageBudget {
    limits: Limits,
    bytes: AtomicU64,
    entries: AtomicU64,
}

impl ImageBudget {
    pub fn new(limits: Limits) -> ImageBudget {
        ImageBudget {
            limits,
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    /// Count a layer that is already unpacked.
    pub fn charge_existing(&self, bytes: u64, entries: u64) -> Result<(), Exceeded> {
        self.charge_bytes(bytes)?;
        self.charge_entries(entries)
    }

    fn charge_bytes(&self, n: u64) -> Result<(), Exceeded> {
        let now = self.bytes.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if now > self.limits.image_size {
            return Err(Exceeded {
                limit: "image size",
                max: self.limits.image_size,
                key: Some("image-size"),
            });
        }
        Ok(())
    }

    fn charge_entries(&self, n: u64) -> Result<(), Exceeded> {
        let now = self
            .entries
            .fetch_add(n, Ordering::Relaxed)
            .saturating_add(n);
        if now > self.limits.image_entries {
            return Err(Exceeded {
                limit: "image entries",
                max: self.limits.image_entries,
                key: Some("image-entries"),
            });
        }
        Ok(())
    }
}

/// What one layer has used so far, also charged to its image.
#[derive(Debug)]
pub struct LayerBudget<'a> {
    image: &'a ImageBudget,
    bytes: u64,
    entries: u64,
}

impl<'a> LayerBudget<'a> {
    pub fn new(image: &'a ImageBudget) -> LayerBudget<'a> {
        LayerBudget {
            image,
            bytes: 0,
            entries: 0,
        }
    }

    /// One more tar member.
    pub fn entry(&mut self) -> Result<(), Exceeded> {
        self.entries += 1;
        if self.entries > self.image.limits.layer_entries {
            return Err(Exceeded {
                limit: "layer entries",
                max: self.image.limits.layer_entries,
                key: Some("layer-entries"),
            });
        }
        self.image.charge_entries(1)
    }

    /// `n` more bytes of content, charged before they are written.
    pub fn bytes(&mut self, n: u64) -> Result<(), Exceeded> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.image.limits.layer_size {
            return Err(Exceeded {
                limit: "layer size",
                max: self.image.limits.layer_size,
                key: Some("layer-size"),
            });
        }
        self.image.charge_bytes(n)
    }

    /// The cap on this layer's uncompressed stream.
    pub fn layer_size(&self) -> u64 {
        self.image.limits.layer_size
    }

    /// Bytes and entries so far.
    pub fn used(&self) -> (u64, u64) {
        (self.bytes, self.entries)
    }
}

/// Sits between the decompressor and the tar parser: caps the uncompressed stream
/// at `limit` bytes, and follows the tar block structure (headers, PAX sizes, GNU
/// sparse extension blocks) to refuse a metadata member over [`MAX_TAR_METADATA`]
/// before the parser reads it into memory.
///
/// It mirrors how the `tar` crate walks a stream: a PAX `size` record replaces the
/// size of the next member that is not itself metadata; the stream ends at the first
/// all-zero header, after which bytes are only counted (the rest is hashed, not
/// parsed).
pub struct TarGuard<R> {
    inner: R,
    limit: u64,
    total: u64,
    block: [u8; BLOCK],
    filled: usize,
    /// Data bytes (with padding) of the current member still to pass.
    skip: u64,
    /// The next block is a GNU sparse extension block; then `sparse_data` follows.
    in_sparse_ext: bool,
    sparse_data: u64,
    /// The records of a PAX header being read (for its `size` record), and their
    /// length.
    pax: Option<(Vec<u8>, u64)>,
    pending_size: Option<u64>,
    ended: bool,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R, limit: u64) -> TarGuard<R> {
        TarGuard {
            inner,
            limit,
            total: 0,
            block: [0; BLOCK],
            filled: 0,
            skip: 0,
            in_sparse_ext: false,
            sparse_data: 0,
            pax: None,
            pending_size: None,
            ended: false,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() && !self.ended {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
                if let Some((pax, size)) = &mut self.pax {
                    // The records only, not the padding after them.
                    let room = usize::try_from(*size)
                        .unwrap_or(0)
                        .saturating_sub(pax.len());
                    pax.extend_from_slice(&bytes[..n.min(room)]);
                }
                self.skip -= n as u64;
                bytes = &bytes[n..];
                if self.skip == 0
                    && let Some((pax, _)) = self.pax.take()
                {
                    self.pending_size = pax_size(&pax);
                }
                continue;
            }
            let n = (BLOCK - self.filled).min(bytes.len());
            self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled < BLOCK {
                break;
            }
            self.filled = 0;
            if self.in_sparse_ext {
                // GNU sparse extension block: `isextended` at offset 504.
                if self.block[504] == 0 {
                    self.in_sparse_ext = false;
                    self.skip = padded(self.sparse_data)?;
                }
                continue;
            }
            self.header()?;
        }
        Ok(())
    }

    fn header(&mut self) -> io::Result<()> {
        if self.block.iter().all(|b| *b == 0) {
            self.ended = true;
            return Ok(());
        }
        let h = tar::Header::from_byte_slice(&self.block);
        let kind = h.entry_type();
        let recognized = h.as_gnu().is_some() || h.as_ustar().is_some();
        let metadata = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let mut size = h.entry_size()?;
        if !(metadata && recognized) {
            // The parser hands a pending PAX record set to this member.
            if let Some(p) = self.pending_size.take().filter(|_| !metadata) {
                size = p;
            }
        }
        if metadata && recognized && size > MAX_TAR_METADATA {
            return Err(Exceeded {
                limit: "tar metadata member",
                max: MAX_TAR_METADATA,
                key: None,
            }
            .io());
        }
        if recognized && kind.is_pax_local_extensions() {
            // At most MAX_TAR_METADATA, checked above.
            self.pax = Some((Vec::with_capacity(usize::try_from(size).unwrap_or(0)), size));
        }
        let sparse_ext = kind.is_gnu_sparse() && h.as_gnu().is_some_and(|g| g.is_extended());
        if sparse_ext {
            self.in_sparse_ext = true;
            self.sparse_data = size;
        } else {
            self.skip = padded(size)?;
            if self.skip == 0
                && let Some((pax, _)) = self.pax.take()
            {
                self.pending_size = pax_size(&pax);
            }
        }
        Ok(())
    }
}

fn padded(size: u64) -> io::Result<u64> {
    size.checked_add(BLOCK as u64 - 1)
        .map(|s| s & !(BLOCK as u64 - 1))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "tar member size overflows"))
}

/// The `size` record of a PAX header, read as the `tar` crate reads it (the first
/// malformed record ends the search).
fn pax_size(data: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.ok()?;
        if ext.key() == Ok("size") {
            return ext.value().ok()?.parse().ok();
        }
    }
    None
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > self.limit {
            return Err(Exceeded {
                limit: "layer size",
                max: self.limit,
                key: Some("layer-size"),
            }
            .io());
        }
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(data: &[u8], chunk: usize, limit: u64) -> io::Result<u64> {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        io::copy(
            &mut TarGuard::new(Chunked(data, chunk), limit),
            &mut io::sink(),
        )
    }

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }

    #[test]
    fn ordinary_archives_pass_in_any_chunking() {
        let long = "d/".repeat(80) + "f";
        let data = archive(|b| {
            file(b, "a", b"hello");
            file(b, &long, &[7u8; 1000]);
            b.append_pax_extensions([("SCHILY.xattr.user.x", &b"1"[..])])
                .unwrap();
            file(b, "x", &[1u8; 513]);
        });
        for chunk in [1, 7, 512, 4096] {
            assert_eq!(drain(&data, chunk, u64::MAX).unwrap(), data.len() as u64);
        }
    }

    #[test]
    fn a_huge_pax_header_is_refused_before_it_is_buffered() {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(8 << 30);
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend_from_slice(&[0u8; 4096]);
        let err = drain(&data, 4096, u64::MAX).unwrap_err();
        assert_eq!(exceeded(&err).unwrap().limit, "tar metadata member");
    }

    #[test]
    fn a_pax_size_record_moves_the_next_header() {
        // The PAX size (600) overrides the header's (0): a guard ignoring it would
        // read the member's data as the next header.
        let mut data = archive(|b| {
            b.append_pax_extensions([("size", &b"600"[..])]).unwrap();
        });
        let mut h = tar::Header::new_ustar();
        h.set_path("f").unwrap();
        h.set_size(0);
        h.set_cksum();
        data.extend_from_slice(h.as_bytes());
        // 600 bytes padded to 1024, made of what looks like a huge GNU long name.
        let mut fake = tar::Header::new_gnu();
        fake.set_entry_type(tar::EntryType::GNULongName);
        fake.set_size(8 << 30);
        fake.set_cksum();
        data.extend_from_slice(fake.as_bytes());
        data.extend_from_slice(&[0u8; 512]);
        data.extend_from_slice(&[0u8; 1024]);
        assert!(drain(&data, 100, u64::MAX).is_ok());
    }

    #[test]
    fn the_stream_is_capped() {
        let data = archive(|b| file(b, "a", &[0u8; 10_000]));
        let err = drain(&data, 4096, 5000).unwrap_err();
        assert_eq!(exceeded(&err).unwrap().limit, "layer size");
    }

    #[test]
    fn limits_parse() {
        let l = Limits::default()
            .with("layer-size=1K, image-entries=5,image-size=2g")
            .unwrap();
        assert_eq!(
            (l.layer_size, l.image_entries, l.image_size),
            (1024, 5, 2 << 30)
        );
        assert!(Limits::default().with("layer-size=1X").is_err());
        assert!(Limits::default().with("layer-entries=1K").is_err());
        assert!(Limits::default().with("size=1").is_err());
    }

    #[test]
    fn budgets_add_up_over_layers() {
        let image = ImageBudget::new(Limits {
            layer_size: 10,
            layer_entries: 2,
            image_size: 15,
            image_entries: 2,
        });
        let mut a = LayerBudget::new(&image);
        a.bytes(8).unwrap();
        assert_eq!(a.bytes(3).unwrap_err().limit, "layer size");
        let mut b = LayerBudget::new(&image);
        assert_eq!(b.bytes(8).unwrap_err().limit, "image size");
        a.entry().unwrap();
        a.entry().unwrap();
        assert_eq!(a.entry().unwrap_err().limit, "layer entries");
        let mut c = LayerBudget::new(&image);
        assert_eq!(c.entry().unwrap_err().limit, "image entries");
    }
}
