//! Decompression bombs: caps on the size and entry count a layer and an image may
//! unpack to, with crafted layers (needs root: layer owners).
mod common;
mod image_support;

use std::fs;
use std::io::{Read as _, Write};
use std::path::Path;
use std::process::Command;

use image_support::{Member::*, gzip, layer, write_layout};
use stack::image::{Error, Limits, Store, unpack_layer, unpack_layer_with};

fn limit_hit(r: Result<stack::image::Unpacked, Error>) -> &'static str {
    match r {
        Err(Error::TooLarge(x)) => x.limit,
        other => panic!("expected a limit to be hit, got {other:?}"),
    }
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |d| d.count())
}

fn gnu_header(name: &str) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A gzip stream of one tar header announcing a file of `size` bytes, followed by
/// only a few bytes of it: a header is all a bomb needs.
fn announced_file(size: u64) -> Vec<u8> {
    let mut h = gnu_header("huge");
    h.set_size(size);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[0u8; 4096]);
    gzip(&tar)
}

#[test]
fn a_header_announcing_40_gib_is_refused_under_the_defaults_before_writing() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let bomb = announced_file(40 << 30);
    assert!(
        bomb.len() < 200,
        "the crafted layer is tiny: {}",
        bomb.len()
    );
    let r = unpack_layer(&bomb[..], t.path(), None);
    assert_eq!(limit_hit(r), "layer size");
    assert_eq!(count(t.path()), 0, "nothing was written");
}

#[test]
fn a_gzip_bomb_of_zeros_stops_at_the_layer_size() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    // 64 MiB of zeros in a few dozen kilobytes of gzip.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = gnu_header("zeros");
    h.set_size(64 << 20);
    tar.append_data(&mut h, "zeros", std::io::repeat(0).take(64 << 20))
        .unwrap();
    let bomb = gzip(&tar.into_inner().unwrap());
    assert!(bomb.len() < 1 << 20);
    let limits = Limits {
        layer_size: 16 << 20,
        ..Limits::default()
    };
    let r = unpack_layer_with(&bomb[..], t.path(), None, &limits);
    assert_eq!(limit_hit(r), "layer size");
    let written = fs::metadata(t.path().join("zeros")).map_or(0, |m| m.len());
    assert_eq!(written, 0, "the file was refused at its header");
}

#[test]
fn a_sparse_file_is_charged_with_its_holes() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    // A GNU sparse member: 1 TiB long, one 512-byte block of data at its end.
    let mut h = gnu_header("sparse");
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(512);
    {
        let gnu = h.as_gnu_mut().unwrap();
        let real: u64 = 1 << 40;
        gnu.realsize = base256(real);
        gnu.sparse[0].offset = base256(real - 512);
        gnu.sparse[0].numbytes = base256(512);
    }
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[b'x'; 512]);
    tar.extend_from_slice(&[0u8; 1024]);
    let r = unpack_layer(&gzip(&tar)[..], t.path(), None);
    assert_eq!(limit_hit(r), "layer size");
    assert_eq!(count(t.path()), 0);
}

/// A 12-byte tar number field in the base-256 form (1 TiB needs more than 11
/// octal digits).
fn base256(n: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[0] = 0x80;
    out[4..].copy_from_slice(&n.to_be_bytes());
    out
}

#[test]
fn too_many_entries_in_a_layer() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let members: Vec<_> = names.iter().map(|n| File(n, b"")).collect();
    let limits = Limits {
        layer_entries: 20,
        ..Limits::default()
    };
    let r = unpack_layer_with(&layer(&members)[..], t.path(), None, &limits);
    assert_eq!(limit_hit(r), "layer entries");
}

#[test]
fn a_huge_pax_header_is_refused_without_buffering_it() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    // A PAX header member claiming 4 GiB (the tar parser would read it all into
    // memory), backed by a stream of zeros.
    let mut h = tar::Header::new_ustar();
    h.set_path("././@PaxHeader").unwrap();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(4 << 30);
    h.set_cksum();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(h.as_bytes()).unwrap();
    enc.write_all(&vec![b'9'; 8 << 20]).unwrap();
    let bomb = enc.finish().unwrap();
    let r = unpack_layer(&bomb[..], t.path(), None);
    assert_eq!(limit_hit(r), "tar metadata member");
}

#[test]
fn the_image_cap_adds_up_its_layers_and_nothing_is_recorded() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    let a = vec![7u8; 600 << 10];
    let b = vec![9u8; 600 << 10];
    write_layout(
        &layout,
        &[layer(&[File("a", &a)]), layer(&[File("b", &b)])],
        "two",
    );
    let limits = Limits {
        layer_size: 1 << 20,
        image_size: 1 << 20,
        ..Limits::default()
    };
    let store = Store::open(&t.path().join("lib"))
        .unwrap()
        .with_limits(limits);
    let err = store.import_oci_layout(&layout, Some("two")).unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeds the image size limit of 1 MiB"),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty(), "no image was recorded");
    assert_eq!(
        count(&store.root().join("tmp")),
        0,
        "no unpack left in tmp/"
    );
    // Under the defaults the same image imports.
    let store = Store::open(&t.path().join("lib")).unwrap();
    store.import_oci_layout(&layout, Some("two")).unwrap();
}

#[test]
fn cli_import_names_the_limit_and_how_to_raise_it() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    let big = vec![1u8; 2 << 20];
    write_layout(&layout, &[layer(&[File("big", &big)])], "big");
    let run = |limits: &str| {
        Command::new(common::stack_bin())
            .arg("--root")
            .arg(t.path().join("root"))
            .args(["image", "import"])
            .arg(&layout)
            .env("STACK_IMAGE_LIMITS", limits)
            .output()
            .unwrap()
    };
    let out = run("layer-size=1M");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("layer size limit of 1 MiB") && err.contains("STACK_IMAGE_LIMITS=layer-size="),
        "{err}"
    );
    let out = run("layer-size=one");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("STACK_IMAGE_LIMITS") && err.contains("not a number"),
        "{err}"
    );
    let out = run("layer-size=4M");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
