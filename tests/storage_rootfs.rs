//! Overlay root filesystems over real layers: whiteouts, opaque directories,
//! read-only roots, and more layers than fit in mount(2)'s one-page data (root).
mod common;
mod image_support;

use std::fs;
use std::path::{Path, PathBuf};

use image_support::{Member::*, layer};
use stack::image::unpack_layer;
use stack::storage::{self, RootfsPlan};

struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = storage::unmount_rootfs(&self.0);
    }
}

fn unpack(dir: &Path, name: &str, tar: &[u8]) -> PathBuf {
    let dest = dir.join(name);
    fs::create_dir_all(&dest).unwrap();
    unpack_layer(tar, &dest, None).unwrap();
    dest
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    common::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let cdir = tmp.path().join("c");
    let target = tmp.path().join("rootfs");
    fs::create_dir_all(&cdir).unwrap();
    fs::create_dir_all(&target).unwrap();
    (tmp, cdir, target)
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_content() {
    let (tmp, cdir, target) = setup();
    let bottom = unpack(
        tmp.path(),
        "l0",
        &layer(&[
            File("deleted", b"1"),
            Dir("opaque"),
            File("opaque/old", b"o"),
            Dir("kept"),
            File("kept/a", b"a"),
        ]),
    );
    let top = unpack(
        tmp.path(),
        "l1",
        &layer(&[
            File(".wh.deleted", b""),
            Dir("opaque"),
            File("opaque/.wh..wh..opq", b""),
            File("opaque/new", b"n"),
            File("kept/b", b"b"),
        ]),
    );
    let plan = storage::rootfs_plan(&cdir, &[bottom, top], false);
    storage::mount_rootfs(&plan, &target).unwrap();
    let _m = Mounted(target.clone());
    assert!(
        !target.join("deleted").exists(),
        "a file deleted in an upper layer is visible"
    );
    let names = |d: &str| {
        let mut v: Vec<String> = fs::read_dir(target.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("opaque"), vec!["new"]);
    assert_eq!(names("kept"), vec!["a", "b"]);
    fs::write(target.join("kept/c"), "c").unwrap();
    assert!(cdir.join("upper/kept/c").is_file());
}

#[test]
fn read_only_roots_refuse_writes() {
    let (tmp, cdir, target) = setup();
    let l0 = unpack(tmp.path(), "l0", &layer(&[File("a", b"1")]));
    let l1 = unpack(tmp.path(), "l1", &layer(&[File("b", b"2")]));
    let plan = storage::rootfs_plan(&cdir, &[l0.clone(), l1], true);
    assert!(matches!(&plan, RootfsPlan::Overlay { upper: None, .. }));
    storage::mount_rootfs(&plan, &target).unwrap();
    {
        let _m = Mounted(target.clone());
        let err = fs::write(target.join("c"), "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        assert!(target.join("a").exists() && target.join("b").exists());
    }
    // One layer read-only: a read-only bind (overlayfs needs two lowers without upper).
    let plan = storage::rootfs_plan(&cdir, &[l0], true);
    storage::mount_rootfs(&plan, &target).unwrap();
    let _m = Mounted(target.clone());
    assert_eq!(
        fs::write(target.join("c"), "x").unwrap_err().raw_os_error(),
        Some(libc::EROFS)
    );
    assert!(target.join("a").exists());
}

#[test]
fn many_layers_beyond_the_mount_data_page() {
    let (tmp, cdir, target) = setup();
    // Long directory names make 120 layers far exceed 4096 bytes of lowerdir=.
    let base = tmp
        .path()
        .join("layers-with-a-rather-long-directory-name-to-overflow-the-page");
    let mut layers = Vec::new();
    for i in 0..120 {
        let name = format!("{i:03}-{}", "x".repeat(40));
        layers.push(unpack(
            &base,
            &name,
            &layer(&[
                File(&format!("f{i}"), b"x"),
                File("top", format!("{i}").as_bytes()),
            ]),
        ));
    }
    let plan = storage::rootfs_plan(&cdir, &layers, false);
    assert_eq!(
        plan.mount_data(),
        None,
        "the test must exceed the page limit"
    );
    storage::mount_rootfs(&plan, &target).unwrap();
    let _m = Mounted(target.clone());
    for i in 0..120 {
        assert!(
            target.join(format!("f{i}")).exists(),
            "file of layer {i} missing"
        );
    }
    assert_eq!(
        fs::read_to_string(target.join("top")).unwrap(),
        "119",
        "the last layer must be on top"
    );
}

#[test]
fn unmount_is_idempotent_and_dirs_are_removed() {
    let (tmp, cdir, target) = setup();
    let l0 = unpack(tmp.path(), "l0", &layer(&[File("a", b"1")]));
    let plan = storage::rootfs_plan(&cdir, &[l0], false);
    storage::mount_rootfs(&plan, &target).unwrap();
    fs::write(target.join("w"), "x").unwrap();
    storage::unmount_rootfs(&target).unwrap();
    storage::unmount_rootfs(&target).unwrap();
    assert!(!target.join("a").exists());
    storage::remove_rootfs_dirs(&cdir).unwrap();
    assert!(!cdir.join("upper").exists() && !cdir.join("work").exists());
    storage::remove_rootfs_dirs(&cdir).unwrap();
}
