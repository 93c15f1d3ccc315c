//! Layer unpacking: one (gzip, zstd or plain) tar stream into one directory,
//! entry by entry, hostile-input safe, with whiteouts converted to overlayfs form.
//!
//! Guarantees: an entry whose name is absolute or contains `..`, a relative symlink
//! whose target climbs above the layer root, a hard link to anything outside the
//! layer, and a device node other than the harmless character devices are rejected
//! with an error naming the entry. Nothing is ever written outside `dest` (see
//! `unpack_fs` for how). The uncompressed stream is hashed while it is read and must
//! match the layer's `diff_id`. Size and entry caps (`limits`) stop decompression
//! bombs before they fill the disk or the memory.
//!
//! Whiteouts (OCI image spec, "Representing Changes"): `.wh.NAME` becomes a 0/0
//! character device NAME; `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
//! directory (overlayfs(5), "whiteouts and opaque directories").
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::{Component, Path};

use rustix::fs::FileType;

use super::Error;
use super::digest::{Digest, HashingReader};
use super::limits::{self, ImageBudget, LayerBudget, Limits, TarGuard};
use super::unpack_fs::{self as fs, LayerRoot, Meta};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Character devices an image may carry: null, zero, full, random, urandom, tty,
/// console, ptmx, and 0/0 (an already-converted whiteout).
const SAFE_CHAR_DEVICES: &[(u32, u32)] = &[
    (0, 0),
    (1, 3),
    (1, 5),
    (1, 7),
    (1, 8),
    (1, 9),
    (5, 0),
    (5, 1),
    (5, 2),
];

/// What unpacking measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Uncompressed tar size in bytes.
    pub tar_size: u64,
    /// Bytes of regular file content written.
    pub content_size: u64,
    /// Tar members.
    pub entries: u64,
}

/// Unpack `blob` into the existing, empty directory `dest`. `expected` is the
/// layer's diff_id from the image config; a mismatch is an error (the caller then
/// discards `dest`). The default [`Limits`] apply.
pub fn unpack_layer<R: Read>(
    blob: R,
    dest: &Path,
    expected: Option<&Digest>,
) -> Result<Unpacked, Error> {
    unpack_layer_with(blob, dest, expected, &Limits::default())
}

/// [`unpack_layer`] under other limits.
pub fn unpack_layer_with<R: Read>(
    blob: R,
    dest: &Path,
    expected: Option<&Digest>,
    limits: &Limits,
) -> Result<Unpacked, Error> {
    let image = ImageBudget::new(*limits);
    unpack_within(blob, dest, expected, &mut LayerBudget::new(&image))
}

/// Unpack, charging sizes and entries to `budget` (and through it to its image).
pub(crate) fn unpack_within<R: Read>(
    blob: R,
    dest: &Path,
    expected: Option<&Digest>,
    budget: &mut LayerBudget<'_>,
) -> Result<Unpacked, Error> {
    let stream = decompress(BufReader::with_capacity(1 << 17, blob)).map_err(read_err)?;
    // The guard sits under the hasher, so the drain after the end of the archive
    // (hashed for the diff_id) is capped too.
    let guard = TarGuard::new(
        BufReader::with_capacity(1 << 17, stream),
        budget.layer_size(),
    );
    let hashing = HashingReader::new(guard);
    let mut archive = tar::Archive::new(hashing);
    let mut root = LayerRoot::open(dest).map_err(|e| Error::io(dest, e))?;
    let mut content_size = 0;
    let mut buf = vec![0u8; 1 << 17];
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        budget.entry().map_err(Error::TooLarge)?;
        content_size += unpack_entry(&mut root, &mut entry, &mut buf, budget)?;
    }
    root.finish().map_err(|e| Error::io(dest, e))?;
    let (diff_id, tar_size) = archive.into_inner().finish().map_err(read_err)?;
    if let Some(expected) = expected
        && *expected != diff_id
    {
        return Err(Error::DigestMismatch {
            what: "layer content (diff_id)".into(),
            expected: expected.clone(),
            actual: diff_id,
        });
    }
    Ok(Unpacked {
        diff_id,
        tar_size,
        content_size,
        entries: budget.used().1,
    })
}

/// An error reading the stream: a limit the guard hit, or the stream itself.
fn read_err(e: io::Error) -> Error {
    match limits::exceeded(&e) {
        Some(x) => Error::TooLarge(x),
        None => Error::LayerRead(e),
    }
}

/// Detect the compression from the magic bytes, not the media type: registries and
/// tools mislabel layers often enough.
pub(crate) fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(r)?))
    } else {
        Ok(Box::new(r))
    }
}

/// Validate an entry name: relative, no `..`; `.` and empty components dropped.
fn clean_path(raw: &Path) -> Result<Vec<&OsStr>, String> {
    let mut out = Vec::new();
    for comp in raw.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
        }
    }
    Ok(out)
}

/// A relative symlink must not climb above the layer root from where it sits.
/// Absolute targets are fine: they are resolved inside the container's root.
fn check_symlink_target(entry: &[&OsStr], target: &Path) -> Result<(), String> {
    if target.is_absolute() {
        return Ok(());
    }
    let mut depth = entry.len().saturating_sub(1) as i64;
    for comp in target.components() {
        match comp {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(format!(
                "symlink target {} escapes the layer",
                target.display()
            ));
        }
    }
    Ok(())
}

fn reject(entry: &Path, reason: impl Into<String>) -> Error {
    Error::UnsafeEntry {
        entry: entry.display().to_string(),
        reason: reason.into(),
    }
}

fn entry_err(entry: &Path, source: io::Error) -> Error {
    if let Some(x) = limits::exceeded(&source) {
        return Error::TooLarge(x);
    }
    Error::Entry {
        entry: entry.display().to_string(),
        source,
    }
}

fn unpack_entry<R: Read>(
    root: &mut LayerRoot,
    entry: &mut tar::Entry<'_, R>,
    buf: &mut [u8],
    budget: &mut LayerBudget<'_>,
) -> Result<u64, Error> {
    let raw = entry.path().map_err(read_err)?.into_owned();
    let meta = read_meta(entry).map_err(|e| entry_err(&raw, e))?;
    let comps = clean_path(&raw).map_err(|r| reject(&raw, r))?;
    let kind = entry.header().entry_type();
    let Some((name, parents)) = comps.split_last() else {
        // The layer root itself ("./"): its owner and mode belong to the container
        // root, which the runtime sets; nothing to write.
        return if kind.is_dir() {
            Ok(0)
        } else {
            Err(reject(&raw, "non-directory entry at the root"))
        };
    };
    let name = *name;
    if let Some(target) = name.to_str().and_then(|n| n.strip_prefix(WHITEOUT_PREFIX)) {
        return whiteout(root, &raw, parents, target).map(|()| 0);
    }
    let err = |e| entry_err(&raw, e);
    match kind {
        tar::EntryType::Directory => {
            let dir = root.dir(parents).map_err(err)?;
            if fs::ensure_dir(dir, name).map_err(err)? {
                root.invalidate();
            }
            let dir = root.dir(parents).map_err(err)?;
            fs::apply_meta_at(dir, name, &meta, FileType::Directory).map_err(err)?;
            root.defer_dir_time(&comps, meta);
            Ok(0)
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            // Charged at the size the header announces (for a sparse file, the size
            // with its holes), before a byte is written.
            budget.bytes(entry.size()).map_err(Error::TooLarge)?;
            write_file(root, parents, name, &meta, entry, buf).map_err(err)
        }
        // PAX global headers carry defaults for later members (comments, times);
        // nothing here needs them.
        tar::EntryType::XGlobalHeader => Ok(0),
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(read_err)?
                .ok_or_else(|| reject(&raw, "symlink without a target"))?
                .into_owned();
            check_symlink_target(&comps, &target).map_err(|r| reject(&raw, r))?;
            let dir = root.dir(parents).map_err(err)?;
            fs::remove_at(dir, name).map_err(err)?;
            rustix::fs::symlinkat(&target, dir, name).map_err(|e| err(e.into()))?;
            fs::apply_meta_at(dir, name, &meta, FileType::Symlink).map_err(err)?;
            root.invalidate();
            Ok(0)
        }
        tar::EntryType::Link => hard_link(root, &raw, parents, name, entry).map(|()| 0),
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            device(root, &raw, parents, name, &meta, entry.header()).map(|()| 0)
        }
        other => Err(reject(
            &raw,
            format!("unsupported tar entry type {other:?}"),
        )),
    }
}

fn write_file<R: Read>(
    root: &mut LayerRoot,
    parents: &[&OsStr],
    name: &OsStr,
    meta: &Meta,
    entry: &mut R,
    buf: &mut [u8],
) -> io::Result<u64> {
    let dir = root.dir(parents)?;
    if fs::remove_at(dir, name)? {
        root.invalidate();
    }
    let dir = root.dir(parents)?;
    let fd = fs::create_file(dir, name)?;
    let mut file = std::fs::File::from(fd);
    let mut written = 0u64;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        file.write_all(&buf[..n])?;
        written += n as u64;
    }
    fs::apply_meta_fd(file.as_fd(), meta)?;
    Ok(written)
}

fn whiteout(
    root: &mut LayerRoot,
    raw: &Path,
    parents: &[&OsStr],
    target: &str,
) -> Result<(), Error> {
    let err = |e| entry_err(raw, e);
    if format!("{WHITEOUT_PREFIX}{target}") == OPAQUE_MARKER {
        let dir = root.dir(parents).map_err(err)?;
        return fs::set_xattr_dir(dir, "trusted.overlay.opaque", b"y").map_err(err);
    }
    if target.starts_with(".wh.") {
        // Other `.wh..wh.*` names are AUFS bookkeeping (e.g. `.wh..wh.plnk`): skip.
        return Ok(());
    }
    if target.is_empty() || target == "." || target == ".." {
        return Err(reject(raw, "whiteout of an invalid name"));
    }
    let dir = root.dir(parents).map_err(err)?;
    fs::remove_at(dir, OsStr::new(target)).map_err(err)?;
    fs::make_node(dir, OsStr::new(target), FileType::CharacterDevice, 0, 0, 0).map_err(err)?;
    root.invalidate();
    Ok(())
}

fn hard_link<R: Read>(
    root: &mut LayerRoot,
    raw: &Path,
    parents: &[&OsStr],
    name: &OsStr,
    entry: &tar::Entry<'_, R>,
) -> Result<(), Error> {
    let err = |e| entry_err(raw, e);
    let target = entry
        .link_name()
        .map_err(read_err)?
        .ok_or_else(|| reject(raw, "hard link without a target"))?
        .into_owned();
    let tcomps = clean_path(&target).map_err(|r| reject(raw, format!("hard link target: {r}")))?;
    let Some((tname, tparents)) = tcomps.split_last() else {
        return Err(reject(raw, "hard link to the layer root"));
    };
    let mut here: Vec<&OsStr> = parents.to_vec();
    here.push(name);
    if here == tcomps {
        return Err(reject(raw, "hard link to itself"));
    }
    // The target must already exist inside this layer: the parent is resolved in
    // the root and linkat(2) without AT_SYMLINK_FOLLOW never follows the final name.
    let tdir = root.existing_dir(tparents).map_err(err)?;
    if fs::kind_at(tdir.as_fd(), tname).map_err(err)?.is_none() {
        return Err(reject(
            raw,
            format!("hard link target {} is not in this layer", target.display()),
        ));
    }
    let dir = root.dir(parents).map_err(err)?;
    fs::remove_at(dir, name).map_err(err)?;
    rustix::fs::linkat(&tdir, *tname, dir, name, rustix::fs::AtFlags::empty())
        .map_err(|e| err(e.into()))?;
    root.invalidate();
    Ok(())
}

fn device(
    root: &mut LayerRoot,
    raw: &Path,
    parents: &[&OsStr],
    name: &OsStr,
    meta: &Meta,
    header: &tar::Header,
) -> Result<(), Error> {
    let err = |e| entry_err(raw, e);
    let major = header.device_major().map_err(err)?.unwrap_or(0);
    let minor = header.device_minor().map_err(err)?.unwrap_or(0);
    let ty = match header.entry_type() {
        tar::EntryType::Fifo => FileType::Fifo,
        tar::EntryType::Char if SAFE_CHAR_DEVICES.contains(&(major, minor)) => {
            FileType::CharacterDevice
        }
        tar::EntryType::Char => {
            return Err(reject(
                raw,
                format!("character device {major}:{minor} is not allowed in an image"),
            ));
        }
        _ => {
            return Err(reject(
                raw,
                format!("block device {major}:{minor} is not allowed in an image"),
            ));
        }
    };
    let dir = root.dir(parents).map_err(err)?;
    if fs::remove_at(dir, name).map_err(err)? {
        root.invalidate();
    }
    let dir = root.dir(parents).map_err(err)?;
    fs::make_node(dir, name, ty, meta.mode, major, minor).map_err(err)?;
    fs::apply_meta_at(dir, name, meta, ty).map_err(err)
}

/// Owner, mode, mtime and xattrs from the header and its PAX records (which carry
/// large ids, sub-second times and `SCHILY.xattr.*`).
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        uid: id32(h.uid()?)?,
        gid: id32(h.gid()?)?,
        mode: h.mode()?,
        mtime: i64::try_from(h.mtime()?).unwrap_or(0),
        mtime_nsec: 0,
        xattrs: Vec::new(),
    };
    let Some(pax) = entry.pax_extensions()? else {
        return Ok(meta);
    };
    for ext in pax {
        let ext = ext?;
        let Ok(key) = ext.key() else { continue };
        let value = ext.value_bytes();
        match key {
            "uid" => meta.uid = id32(parse_num(value)?)?,
            "gid" => meta.gid = id32(parse_num(value)?)?,
            "mtime" => (meta.mtime, meta.mtime_nsec) = parse_time(value)?,
            _ => {
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if is_overlay_xattr(name) {
                        // Never let an image set overlayfs's own attributes (redirect,
                        // metacopy, opaque): they would steer lookups in other layers.
                        tracing::warn!(xattr = name, "ignoring overlay xattr in layer");
                        continue;
                    }
                    meta.xattrs.push((OsString::from(name), value.to_vec()));
                }
            }
        }
    }
    Ok(meta)
}

fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

fn id32(v: u64) -> io::Result<u32> {
    u32::try_from(v).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("uid/gid {v} out of range"),
        )
    })
}

fn parse_num(v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad number in PAX header"))
}

fn parse_time(v: &[u8]) -> io::Result<(i64, u32)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad mtime in PAX header");
    let s = std::str::from_utf8(v).map_err(|_| bad())?.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let digits: String = frac.chars().take(9).collect();
    let nsec = if digits.is_empty() {
        0
    } else {
        let n: u32 = digits.parse().map_err(|_| bad())?;
        n * 10u32.pow(9 - u32::try_from(digits.len()).map_err(|_| bad())?)
    };
    Ok((secs, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_rules() {
        assert_eq!(
            clean_path(Path::new("./a/b/")).unwrap(),
            vec![OsStr::new("a"), OsStr::new("b")]
        );
        assert!(clean_path(Path::new("/etc/passwd")).is_err());
        assert!(clean_path(Path::new("a/../../b")).is_err());
        assert!(clean_path(Path::new("./")).unwrap().is_empty());
    }

    #[test]
    fn symlink_escape_rules() {
        let at = [OsStr::new("a"), OsStr::new("link")];
        assert!(check_symlink_target(&at, Path::new("../b")).is_ok());
        assert!(check_symlink_target(&at, Path::new("../../etc")).is_err());
        assert!(check_symlink_target(&at, Path::new("/etc/passwd")).is_ok());
        assert!(check_symlink_target(&at, Path::new("x/../../..")).is_err());
    }

    #[test]
    fn pax_time() {
        assert_eq!(parse_time(b"12.5").unwrap(), (12, 500_000_000));
        assert_eq!(parse_time(b"7").unwrap(), (7, 0));
        assert!(parse_time(b"x").is_err());
    }
}
