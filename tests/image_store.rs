//! The image store: OCI layout import from examples/images/build.sh, resolution,
//! idempotence, corrupted blobs, and a real root filesystem from it (needs root).
mod common;
mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use stack::image::{Error, Source, Store};
use stack::storage;

struct Fixture {
    tmp: tempfile::TempDir,
    layout: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        common::require_root();
        let tmp = tempfile::tempdir().unwrap();
        let layout = common::busybox_oci_layout(tmp.path());
        Fixture { tmp, layout }
    }
    fn lib(&self) -> PathBuf {
        self.tmp.path().join("lib")
    }
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = storage::unmount_rootfs(&self.0);
    }
}

#[test]
fn imports_the_example_busybox_layout() {
    let fx = Fixture::new();
    let store = Store::open(&fx.lib()).unwrap();
    let id = store.import_oci_layout(&fx.layout, Some("latest")).unwrap();
    for name in [
        "localhost/busybox:latest",
        "busybox",
        &id.to_string(),
        &id.0.hex()[..12],
    ] {
        let image = store
            .resolve(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(image.id.as_ref(), Some(&id));
    }
    let image = store.image(&id).unwrap();
    assert_eq!(image.layers.len(), 1);
    assert!(image.layers[0].join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(image.layers[0].join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let cmd = image.config.config().as_ref().and_then(|c| c.cmd().clone());
    assert_eq!(cmd, Some(vec!["sh".to_string()]));
    assert_eq!(image.names, vec!["localhost/busybox:latest".to_string()]);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        list[0].size > 1_000_000,
        "busybox is about 2 MB, got {}",
        list[0].size
    );

    // Importing again is a no-op returning the same image.
    let again = store.import_oci_layout(&fx.layout, None).unwrap();
    assert_eq!(again, id);
    assert_eq!(store.list().unwrap().len(), 1);

    // A stack file's `image = "oci:PATH:latest"` goes through `ensure`.
    let src = Source::parse(
        &format!("oci:{}:latest", fx.layout.display()),
        Path::new("/"),
    );
    assert_eq!(store.ensure(&src).unwrap().id, Some(id));
    assert!(store.resolve("nosuch:tag").unwrap_err().is_not_found());
    assert!(
        store
            .import_oci_layout(&fx.layout, Some("v9"))
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn corrupted_layer_blob_is_rejected_and_nothing_is_recorded() {
    let fx = Fixture::new();
    let index = fs::read_to_string(fx.layout.join("index.json")).unwrap();
    assert!(index.contains("sha256:"));
    // Flip a byte in the largest blob (the layer).
    let blobs = fx.layout.join("blobs/sha256");
    let layer = fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = fs::read(&layer).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&layer, &data).unwrap();

    let store = Store::open(&fx.lib()).unwrap();
    let err = store
        .import_oci_layout(&fx.layout, Some("latest"))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store.list().unwrap().is_empty());
    let images = store.root();
    assert_eq!(fs::read_dir(images.join("layers")).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(images.join("tmp")).unwrap().count(),
        0,
        "temp files left behind"
    );
    let layer_hex = layer.file_name().unwrap();
    assert!(!images.join("blobs/sha256").join(layer_hex).exists());
}

#[test]
fn busybox_runs_from_the_overlay_rootfs() {
    let fx = Fixture::new();
    let store = Store::open(&fx.lib()).unwrap();
    let id = store.import_oci_layout(&fx.layout, Some("latest")).unwrap();
    let image = store.image(&id).unwrap();
    let cdir = fx.tmp.path().join("container");
    let target = fx.tmp.path().join("rootfs");
    fs::create_dir_all(&cdir).unwrap();
    fs::create_dir_all(&target).unwrap();
    let plan = storage::rootfs_plan(&cdir, &image.layers, false);
    storage::mount_rootfs(&plan, &target).unwrap();
    let _guard = Mounted(target.clone());
    let out = Command::new("chroot")
        .arg(&target)
        .args([
            "/bin/sh",
            "-c",
            "echo hello > /tmp/x && cat /tmp/x && ls /bin/busybox",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n/bin/busybox\n"
    );
    // The write went to the container's upper dir, not into the shared layer.
    assert!(cdir.join("upper/tmp/x").is_file());
    assert!(!image.layers[0].join("tmp/x").exists());
}
