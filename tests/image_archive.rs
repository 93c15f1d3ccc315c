//! Archive import and export round trips, rmi and GC (needs root for layer owners).
mod common;
mod image_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use image_support::{Member::*, layer, sha256, write_layout};
use stack::image::{Error, Store};

fn tmp() -> tempfile::TempDir {
    common::require_root();
    tempfile::tempdir().unwrap()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

/// A `docker save`-style archive written by hand: legacy `<id>/layer.tar` members,
/// the first layer referenced through a symlink (as old Docker versions wrote for
/// repeated layers).
fn docker_archive(path: &Path, layers: &[Vec<u8>], tag: &str) {
    let mut b = tar::Builder::new(Vec::new());
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"{}\"", sha256(l)))
        .collect();
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Env\":[\"A=1\"],\"Healthcheck\":{{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":2000000000,\"Retries\":3}}}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
        diff_ids.join(",")
    );
    let config_name = format!("{}.json", &sha256(config.as_bytes())[7..]);
    let add = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&mut b, &config_name, config.as_bytes());
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        add(&mut b, &name, l);
        names.push(format!("\"{name}\""));
    }
    // A duplicate reference to layer 0 through a symlink.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "dup/layer.tar", "../layer0/layer.tar")
        .unwrap();
    names[0] = "\"dup/layer.tar\"".into();
    let manifest = format!(
        "[{{\"Config\":\"{config_name}\",\"RepoTags\":[\"{tag}\"],\"Layers\":[{}]}}]",
        names.join(",")
    );
    add(&mut b, "manifest.json", manifest.as_bytes());
    fs::write(path, b.into_inner().unwrap()).unwrap();
}

#[test]
fn docker_archive_import() {
    let t = tmp();
    let l0 = layer(&[Dir("etc"), File("etc/hostname", b"box\n")]);
    let l1 = layer(&[File("etc/.wh.hostname", b""), File("hello", b"hi")]);
    let archive = t.path().join("saved.tar");
    docker_archive(&archive, &[l0, l1], "example.org/team/app:2.0");
    // Compressed as `docker save | gzip` writes it.
    let gz = t.path().join("saved.tar.gz");
    fs::write(&gz, image_support::gzip(&fs::read(&archive).unwrap())).unwrap();
    let store = Store::open(&t.path().join("lib")).unwrap();
    let id = store.import_docker_archive(&gz).unwrap();
    let image = store.resolve("example.org/team/app:2.0").unwrap();
    assert_eq!(image.id, Some(id));
    assert_eq!(image.layers.len(), 2);
    assert_eq!(fs::read(image.layers[1].join("hello")).unwrap(), b"hi");
    let env = image.config.config().as_ref().and_then(|c| c.env().clone());
    assert_eq!(env, Some(vec!["A=1".to_string()]));
    let hc = image
        .healthcheck
        .expect("healthcheck from the image config");
    assert_eq!(hc.test, vec!["CMD-SHELL", "true"]);
    assert_eq!((hc.interval, hc.retries), (Some(2_000_000_000), Some(3)));
    // `docker images` shows the config digest as the image ID.
    let config_hex = image.config_digest.unwrap();
    assert!(store.resolve(&config_hex.hex()[..12]).is_ok());
}

#[test]
fn skopeo_archives_import() {
    let t = tmp();
    let layout = common::busybox_oci_layout(t.path());
    let docker = t.path().join("docker.tar");
    let oci = t.path().join("oci.tar");
    let src = format!("oci:{}:latest", layout.display());
    for (dest, what) in [
        (
            format!("docker-archive:{}:busybox:1.0", docker.display()),
            &docker,
        ),
        (format!("oci-archive:{}:v1", oci.display()), &oci),
    ] {
        let out = Command::new("skopeo")
            .args(["copy", "-q", &src, &dest])
            .output()
            .expect("skopeo is needed for this test (apt-get install skopeo)");
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(what.is_file());
    }
    let store = Store::open(&t.path().join("lib")).unwrap();
    let ids = store.import_path(&docker, None).unwrap();
    let image = store.resolve("busybox:1.0").unwrap();
    assert_eq!(image.id.as_ref(), ids.first());
    assert!(image.layers[0].join("bin/busybox").is_file());
    let id = store.import_path(&oci, Some("v1")).unwrap();
    let image = store.resolve("localhost/oci:v1").unwrap();
    assert_eq!(image.id.as_ref(), id.first());
}

#[test]
fn save_and_import_round_trip() {
    let t = tmp();
    let layout = common::busybox_oci_layout(t.path());
    let a = Store::open(&t.path().join("a")).unwrap();
    let id = a.import_oci_layout(&layout, Some("latest")).unwrap();
    a.tag(&id, "registry.example:5000/bb:v2").unwrap();
    let archive = t.path().join("out.tar");
    a.save_oci_archive(&["registry.example:5000/bb:v2"], &archive)
        .unwrap();
    let b = Store::open(&t.path().join("b")).unwrap();
    let again = b.import_path(&archive, None).unwrap();
    assert_eq!(again, vec![id.clone()]);
    assert_eq!(
        b.resolve("registry.example:5000/bb:v2").unwrap().id,
        Some(id)
    );
    // Other tools read it too.
    let out = Command::new("skopeo")
        .args(["inspect", &format!("oci-archive:{}", archive.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two images sharing their bottom layer.
fn two_images(t: &Path) -> (Store, PathBuf) {
    let shared = layer(&[File("shared", &[7u8; 100_000])]);
    let only_a = layer(&[File("a", &[1u8; 50_000])]);
    let only_b = layer(&[File("b", &[2u8; 30_000])]);
    let (la, lb) = (t.join("la"), t.join("lb"));
    write_layout(&la, &[shared.clone(), only_a], "a");
    write_layout(&lb, &[shared, only_b], "b");
    let lib = t.join("lib");
    let store = Store::open(&lib).unwrap();
    store.import_oci_layout(&la, None).unwrap();
    store.import_oci_layout(&lb, None).unwrap();
    (store, lib)
}

#[test]
fn rmi_keeps_shared_layers_and_refuses_held_images() {
    let t = tmp();
    let (store, _) = two_images(t.path());
    let layers = store.root().join("layers");
    assert_eq!(count(&layers), 3);
    let b = store.resolve("localhost/lb:b").unwrap().id.unwrap();
    store.hold(&b, "container-1").unwrap();
    assert!(matches!(
        store.remove("localhost/lb:b", false),
        Err(Error::InUse { .. })
    ));
    store.release("container-1").unwrap();
    // ensure + hold in one step, as a container start does.
    let src = stack::image::Source::OciLayout {
        path: t.path().join("la"),
        tag: None,
    };
    let held = store.ensure_held(&src, "container-2").unwrap();
    assert!(matches!(
        store.remove("localhost/la:a", false),
        Err(Error::InUse { .. })
    ));
    assert!(
        store
            .holds()
            .unwrap()
            .contains(&(held.id.unwrap(), "container-2".to_string()))
    );
    store.release("container-2").unwrap();

    let report = store.remove("localhost/la:a", false).unwrap();
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.layers_removed, 1, "only the unshared layer goes");
    assert_eq!(count(&layers), 2);
    assert!(
        store
            .resolve("localhost/lb:b")
            .unwrap()
            .layers
            .iter()
            .all(|l| l.is_dir())
    );
    // Blobs left: b's manifest, config and two layers.
    assert_eq!(count(&store.root().join("blobs/sha256")), 4);
}

#[test]
fn prune_removes_unused_content_and_keeps_held_images() {
    let t = tmp();
    let (store, _) = two_images(t.path());
    let a = store.resolve("localhost/la:a").unwrap().id.unwrap();
    // Nothing is dangling: a plain prune removes no image.
    assert!(store.prune(false).unwrap().images.is_empty());
    store.hold(&a, "c1").unwrap();
    let report = store.prune(true).unwrap();
    assert_eq!(report.images.len(), 1, "only the unheld image goes");
    assert!(report.bytes_freed >= 30_000, "freed {}", report.bytes_freed);
    assert!(store.resolve("localhost/la:a").is_ok());
    assert!(store.resolve("localhost/lb:b").unwrap_err().is_not_found());
    store.release("c1").unwrap();
    let report = store.prune(true).unwrap();
    assert_eq!(report.images, vec![a]);
    assert_eq!(count(&store.root().join("blobs/sha256")), 0);
    assert_eq!(count(&store.root().join("layers")), 0);
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn cli_load_images_rmi_prune() {
    let t = tmp();
    let layout = common::busybox_oci_layout(t.path());
    let root = t.path().join("root");
    let stack = |args: &[&str]| {
        let out = Command::new(common::stack_bin())
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = stack(&["load", layout.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("localhost/busybox:latest"), "{out}");
    let (ok, out, _) = stack(&["images", "--format", "json"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["names"][0], "localhost/busybox:latest");
    let (ok, out, _) = stack(&["images"]);
    assert!(
        ok && out.contains("localhost/busybox") && out.contains("latest") && out.contains("MB"),
        "{out}"
    );
    let (ok, out, _) = stack(&["image", "inspect", "busybox"]);
    assert!(ok);
    let inspect: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");
    let (ok, _, err) = stack(&["rmi", "nosuch"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, out, err) = stack(&["rmi", "busybox"]);
    assert!(ok, "{err}");
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let (ok, out, _) = stack(&["image", "prune", "--format", "json"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 0);
    assert_eq!(count(&root.join("lib/images/blobs/sha256")), 0);
}
