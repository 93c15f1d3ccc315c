//! Layer unpacking against hostile and tricky tarballs (needs root: owners,
//! device nodes and trusted.* xattrs).
mod common;
mod image_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use image_support::{Member::*, gzip, layer, sha256};
use stack::image::{Digest, Error, unpack_layer};

/// A test area: `dest` is the layer, `outside` sits beside it and must stay empty.
struct Area {
    _tmp: tempfile::TempDir,
    dest: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn area() -> Area {
    common::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("a/b/layer");
    let outside = tmp.path().join("a/outside");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&outside).unwrap();
    Area {
        _tmp: tmp,
        dest,
        outside,
    }
}

fn assert_nothing_outside(a: &Area) {
    assert_eq!(
        fs::read_dir(&a.outside).unwrap().count(),
        0,
        "something was written outside the layer"
    );
    let top = a.dest.parent().unwrap().parent().unwrap();
    let names: Vec<_> = fs::read_dir(top)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "unexpected files next to the layer: {names:?}"
    );
}

fn unsafe_entry(r: Result<stack::image::Unpacked, Error>) -> String {
    match r {
        Err(Error::UnsafeEntry { entry, reason }) => format!("{entry}: {reason}"),
        other => panic!("expected an unsafe-entry rejection, got {other:?}"),
    }
}

#[test]
fn rejects_path_traversal() {
    let a = area();
    let tar = layer(&[File("ok", b"1"), File("../../outside/evil", b"x")]);
    let msg = unsafe_entry(unpack_layer(&tar[..], &a.dest, None));
    assert!(msg.contains(".."), "{msg}");
    assert_nothing_outside(&a);
}

#[test]
fn rejects_absolute_names() {
    let a = area();
    let evil = format!("{}/evil", a.outside.display());
    let tar = layer(&[File(&evil, b"x")]);
    let msg = unsafe_entry(unpack_layer(&tar[..], &a.dest, None));
    assert!(msg.contains("absolute"), "{msg}");
    assert_nothing_outside(&a);
}

#[test]
fn rejects_relative_symlink_that_escapes() {
    let a = area();
    let tar = layer(&[Symlink("up", "../../outside")]);
    let msg = unsafe_entry(unpack_layer(&tar[..], &a.dest, None));
    assert!(msg.contains("escapes"), "{msg}");
    assert_nothing_outside(&a);
}

#[test]
fn writes_through_a_planted_absolute_symlink_stay_inside() {
    let a = area();
    // `link -> <outside>` is a legal absolute symlink, but following it during the
    // unpack must resolve inside the layer, never on the host.
    let target = a.outside.display().to_string();
    let tar = layer(&[Symlink("link", &target), File("link/pwned", b"x")]);
    let err = unpack_layer(&tar[..], &a.dest, None).unwrap_err();
    assert!(err.to_string().contains("not in this layer"), "{err}");
    assert_nothing_outside(&a);
    // When the target exists inside the layer, the write lands there.
    let b = area();
    let target = b.outside.display().to_string();
    let inner = target.trim_start_matches('/');
    let tar = layer(&[
        Dir(inner),
        Symlink("link", &target),
        File("link/pwned", b"x"),
        Symlink("root", "/"),
        File("root/etc-evil", b"y"),
    ]);
    unpack_layer(&tar[..], &b.dest, None).unwrap();
    assert_nothing_outside(&b);
    assert!(b.dest.join(inner).join("pwned").is_file());
    assert!(b.dest.join("etc-evil").is_file());
    assert!(!Path::new("/etc-evil").exists());
}

#[test]
fn rejects_hard_links_that_escape() {
    let a = area();
    fs::write(a.outside.join("secret"), "s").unwrap();
    let tar = layer(&[HardLink("hl", "../../outside/secret")]);
    unsafe_entry(unpack_layer(&tar[..], &a.dest, None));
    let tar = layer(&[HardLink("hl", "/etc/passwd")]);
    unsafe_entry(unpack_layer(&tar[..], &a.dest, None));
    // Through a planted symlink: resolved inside the layer, where nothing is.
    let links_before = fs::metadata("/etc/passwd").unwrap().nlink();
    let tar = layer(&[Symlink("etc", "/etc"), HardLink("hl", "etc/passwd")]);
    assert!(unpack_layer(&tar[..], &a.dest, None).is_err());
    assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), links_before);
    assert_eq!(fs::metadata(a.outside.join("secret")).unwrap().nlink(), 1);
    fs::remove_file(a.outside.join("secret")).unwrap();
    assert_nothing_outside(&a);
}

#[test]
fn rejects_block_devices_allows_dev_null() {
    let a = area();
    let tar = layer(&[Block("sda", 8, 0)]);
    let msg = unsafe_entry(unpack_layer(&tar[..], &a.dest, None));
    assert!(msg.contains("block device"), "{msg}");
    let tar = layer(&[Char("mem", 1, 1)]);
    unsafe_entry(unpack_layer(&tar[..], &a.dest, None));
    let tar = layer(&[Dir("dev"), Char("dev/null", 1, 3)]);
    unpack_layer(&tar[..], &a.dest, None).unwrap();
    let m = fs::symlink_metadata(a.dest.join("dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), libc::makedev(1, 3));
}

#[test]
fn whiteouts_become_overlay_form() {
    let a = area();
    let tar = layer(&[
        Dir("d"),
        File("d/.wh..wh..opq", b""),
        File(".wh.gone", b""),
        File("d/keep", b"k"),
    ]);
    unpack_layer(&tar[..], &a.dest, None).unwrap();
    let m = fs::symlink_metadata(a.dest.join("gone")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(a.dest.join("d"), "trusted.overlay.opaque", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!a.dest.join("d/.wh..wh..opq").exists());
    assert!(!a.dest.join(".wh.gone").exists());
}

#[test]
fn keeps_owners_modes_times_xattrs_and_hard_links() {
    let a = area();
    let tar = layer(&[
        Dir("bin"),
        FileMeta("bin/suid", b"#!", 0o4755, 1234, 5678, 1_500_000_000),
        HardLink("bin/again", "bin/suid"),
        PaxFile(
            "cap",
            vec![
                ("SCHILY.xattr.user.note", b"hello"),
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ],
            b"c",
        ),
        Symlink("sh", "/bin/busybox"),
    ]);
    let out = unpack_layer(&tar[..], &a.dest, Some(&sha256(&tar).parse().unwrap())).unwrap();
    assert_eq!(out.tar_size, tar.len() as u64);
    let m = fs::metadata(a.dest.join("bin/suid")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(m.mtime(), 1_500_000_000);
    assert_eq!(
        fs::metadata(a.dest.join("bin/again")).unwrap().ino(),
        m.ino()
    );
    let mut buf = [0u8; 16];
    let n = rustix::fs::getxattr(a.dest.join("cap"), "user.note", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert!(
        rustix::fs::getxattr(a.dest.join("cap"), "trusted.overlay.redirect", &mut buf[..]).is_err(),
        "overlay xattrs from an image must be dropped"
    );
    assert_eq!(
        fs::read_link(a.dest.join("sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::metadata(a.dest.join("bin")).unwrap().mtime(),
        1_600_000_000,
        "directory mtime set after its children"
    );
}

#[test]
fn compressed_layers_and_diff_id_check() {
    let a = area();
    let tar = layer(&[File("f", b"data")]);
    let diff_id: Digest = sha256(&tar).parse().unwrap();
    unpack_layer(&gzip(&tar)[..], &a.dest, Some(&diff_id)).unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let b = tempfile::tempdir().unwrap();
    unpack_layer(&zst[..], b.path(), Some(&diff_id)).unwrap();
    assert_eq!(fs::read(b.path().join("f")).unwrap(), b"data");
    let c = tempfile::tempdir().unwrap();
    let wrong = Digest::of(b"something else");
    assert!(matches!(
        unpack_layer(&tar[..], c.path(), Some(&wrong)),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn later_entries_replace_earlier_ones() {
    let a = area();
    let tar = layer(&[
        Dir("x"),
        File("x/inner", b"1"),
        File("x", b"now a file"),
        Symlink("y", "x"),
        Dir("y"),
    ]);
    unpack_layer(&tar[..], &a.dest, None).unwrap();
    assert_eq!(fs::read(a.dest.join("x")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(a.dest.join("y")).unwrap().is_dir());
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn component() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["a", "b", "..", ".", "", "c.d", "outside"])
    }

    fn path() -> impl Strategy<Value = String> {
        (any::<bool>(), prop::collection::vec(component(), 1..4)).prop_map(|(abs, parts)| {
            let joined = parts.join("/");
            if abs { format!("/{joined}") } else { joined }
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        File(String),
        Dir(String),
        Symlink(String, String),
        HardLink(String, String),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            path().prop_map(Op::File),
            path().prop_map(Op::Dir),
            (path(), path()).prop_map(|(a, b)| Op::Symlink(a, b)),
            (path(), path()).prop_map(|(a, b)| Op::HardLink(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

        /// Whatever the entries, nothing is written beside the layer directory.
        #[test]
        fn random_layers_never_write_outside(ops in prop::collection::vec(op(), 1..12)) {
            let a = area();
            let host: Vec<&str> = ["/a", "/b", "/outside", "/c.d"].into_iter().filter(|p| !Path::new(p).exists()).collect();
            let names: Vec<(String, String)> = ops
                .iter()
                .map(|o| match o {
                    Op::File(p) | Op::Dir(p) => (p.clone(), String::new()),
                    Op::Symlink(p, t) | Op::HardLink(p, t) => (p.clone(), t.clone()),
                })
                .collect();
            let members: Vec<image_support::Member<'_>> = ops
                .iter()
                .zip(&names)
                .filter(|(_, (p, _))| !p.is_empty())
                .map(|(o, (p, t))| match o {
                    Op::File(_) => File(p, b"x"),
                    Op::Dir(_) => Dir(p),
                    Op::Symlink(..) => Symlink(p, t),
                    Op::HardLink(..) => HardLink(p, t),
                })
                .collect();
            let tar = layer(&members);
            let _ = unpack_layer(&tar[..], &a.dest, None);
            assert_nothing_outside(&a);
            for p in host {
                prop_assert!(!Path::new(p).exists(), "{} was created on the host", p);
            }
        }
    }
}
