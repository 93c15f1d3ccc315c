//! Layer tarballs for the image and storage tests, written header by header so
//! that hostile names (`..`, absolute paths) can be produced on purpose.
#![allow(dead_code)]
use std::io::Write;

use sha2::{Digest as _, Sha256};

/// One tar member.
pub enum Member<'a> {
    File(&'a str, &'a [u8]),
    /// name, data, mode, uid, gid, mtime
    FileMeta(&'a str, &'a [u8], u32, u64, u64, u64),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Block(&'a str, u32, u32),
    /// name and PAX records, then a file with `data`
    PaxFile(&'a str, Vec<(&'a str, &'a [u8])>, &'a [u8]),
}

fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().expect("gnu header");
        assert!(name.len() < gnu.name.len(), "test names must be short");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

fn set_link(h: &mut tar::Header, target: &str) {
    let gnu = h.as_gnu_mut().expect("gnu header");
    gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
}

/// An uncompressed layer tarball.
pub fn layer(members: &[Member<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        match m {
            Member::File(name, data) => {
                let mut h = header(name, tar::EntryType::Regular, data.len() as u64, 0o644);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Member::FileMeta(name, data, mode, uid, gid, mtime) => {
                let mut h = header(name, tar::EntryType::Regular, data.len() as u64, *mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_mtime(*mtime);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Member::Dir(name) => {
                let mut h = header(name, tar::EntryType::Directory, 0, 0o755);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Member::Symlink(name, target) | Member::HardLink(name, target) => {
                let kind = if matches!(m, Member::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(name, kind, 0, 0o777);
                set_link(&mut h, target);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Member::Char(name, major, minor) | Member::Block(name, major, minor) => {
                let kind = if matches!(m, Member::Char(..)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = header(name, kind, 0, 0o666);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            Member::PaxFile(name, records, data) => {
                b.append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
                    .unwrap();
                let mut h = header(name, tar::EntryType::Regular, data.len() as u64, 0o644);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::from("sha256:");
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Write a multi-layer OCI layout (gzip layers) for `layers` (bottom first), tagged
/// `tag`. Returns the manifest digest.
pub fn write_layout(dir: &std::path::Path, layers: &[Vec<u8>], tag: &str) -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    write_layout_arch(dir, layers, tag, arch)
}

/// [`write_layout`] for another architecture; also returns nothing else. The blobs
/// accumulate in `dir`, index.json names only this image.
pub fn write_layout_arch(
    dir: &std::path::Path,
    layers: &[Vec<u8>],
    tag: &str,
    arch: &str,
) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        (d, data.len())
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(format!("\"{}\"", sha256(l)));
        let (d, n) = put(&gzip(l));
        descs.push(format!("{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"{d}\",\"size\":{n}}}"));
    }
    let config = format!(
        "{{\"architecture\":\"{arch}\",\"os\":\"linux\",\"config\":{{\"Cmd\":[\"sh\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
        diff_ids.join(",")
    );
    let (cd, cn) = put(config.as_bytes());
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{cd}\",\"size\":{cn}}},\"layers\":[{}]}}",
        descs.join(",")
    );
    let (md, mn) = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
    std::fs::write(
        dir.join("index.json"),
        format!(
            "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{md}\",\"size\":{mn},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"{tag}\"}}}}]}}"
        ),
    )
    .unwrap();
    md
}

/// Copy the OCI layout `src` (one image, e.g. the busybox example) to `dest` as an
/// image tagged `tag` with `extra` layers (uncompressed tars) on top and the keys of
/// `config` (an object of Docker/OCI image config fields: `Volumes`, `Healthcheck`,
/// `Labels`, ...) set in its config. Returns the new manifest digest.
pub fn derive_layout(
    src: &std::path::Path,
    dest: &std::path::Path,
    tag: &str,
    extra: &[Vec<u8>],
    config: serde_json::Value,
) -> String {
    let blobs = dest.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for e in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), blobs.join(e.file_name())).unwrap();
    }
    let read = |d: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(blobs.join(&d[7..])).unwrap()).unwrap()
    };
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        (d, data.len())
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("index.json")).unwrap()).unwrap();
    let mut manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let mut cfg = read(manifest["config"]["digest"].as_str().unwrap());
    for l in extra {
        let (d, n) = put(&gzip(l));
        manifest["layers"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n,
            }));
        cfg["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(sha256(l).into());
    }
    for (k, v) in config.as_object().unwrap() {
        cfg["config"][k] = v.clone();
    }
    let (cd, cn) = put(&serde_json::to_vec(&cfg).unwrap());
    manifest["config"]["digest"] = cd.into();
    manifest["config"]["size"] = cn.into();
    let (md, mn) = put(&serde_json::to_vec(&manifest).unwrap());
    std::fs::write(
        dest.join("oci-layout"),
        "{\"imageLayoutVersion\":\"1.0.0\"}",
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dest.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    md
}

/// An OCI layout whose `multi` tag is an index of an amd64 and an arm64 image.
pub fn multi_arch_layout(dir: &std::path::Path) -> std::path::PathBuf {
    let layout = dir.join("multi");
    let blob_size = |d: &str| {
        std::fs::metadata(layout.join("blobs/sha256").join(&d[7..]))
            .unwrap()
            .len()
    };
    let amd = write_layout_arch(
        &layout,
        &[layer(&[Member::File("arch", b"amd64")])],
        "amd",
        "amd64",
    );
    let arm = write_layout_arch(
        &layout,
        &[layer(&[Member::File("arch", b"arm64")])],
        "arm",
        "arm64",
    );
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let index = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[\
         {{\"mediaType\":\"{mt}\",\"digest\":\"{amd}\",\"size\":{},\"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\"}}}},\
         {{\"mediaType\":\"{mt}\",\"digest\":\"{arm}\",\"size\":{},\"platform\":{{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}}}]}}",
        blob_size(&amd),
        blob_size(&arm)
    );
    let digest = sha256(index.as_bytes());
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), &index).unwrap();
    std::fs::write(
        layout.join("index.json"),
        format!(
            "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"{digest}\",\"size\":{},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"multi\"}}}}]}}",
            index.len()
        ),
    )
    .unwrap();
    layout
}
