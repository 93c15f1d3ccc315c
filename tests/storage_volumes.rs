//! Named volumes (copy-up, tmpfs volumes), bind sources and secrets on a real
//! kernel (needs root: mounts and chown).
mod common;
mod image_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use image_support::{Member::*, layer};
use stack::image::unpack_layer;
use stack::storage::{self, BindSpec, SecretFile, VolumeSpec, Volumes};

struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = storage::unmount_rootfs(&self.0);
    }
}

/// A mounted two-layer root with /app content and a planted `/data -> /etc` link.
fn rootfs(t: &Path) -> (PathBuf, Mounted) {
    let l0 = t.join("l0");
    let l1 = t.join("l1");
    fs::create_dir_all(&l0).unwrap();
    fs::create_dir_all(&l1).unwrap();
    unpack_layer(
        &layer(&[
            Dir("app"),
            FileMeta("app/seed", b"seed", 0o640, 1000, 1000, 1_000_000),
            Dir("etc"),
            File("etc/inside", b"i"),
        ])[..],
        &l0,
        None,
    )
    .unwrap();
    unpack_layer(
        &layer(&[Symlink("data", "/etc"), File("app/more", b"m")])[..],
        &l1,
        None,
    )
    .unwrap();
    let target = t.join("rootfs");
    fs::create_dir_all(&target).unwrap();
    let plan = storage::rootfs_plan(&t.join("c"), &[l0, l1], false);
    fs::create_dir_all(t.join("c")).unwrap();
    storage::mount_rootfs(&plan, &target).unwrap();
    (target.clone(), Mounted(target))
}

#[test]
fn copy_up_fills_an_empty_volume_once() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (root, _m) = rootfs(t.path());
    let vols = Volumes::open(&t.path().join("lib")).unwrap();
    let path = vols
        .ensure("st", "appdata", &VolumeSpec::default())
        .unwrap();
    assert!(vols.populate("st_appdata", &root, "/app", false).unwrap());
    let seed = fs::metadata(path.join("seed")).unwrap();
    assert_eq!((seed.uid(), seed.mode() & 0o777), (1000, 0o640));
    assert_eq!(fs::read(path.join("more")).unwrap(), b"m");
    // Second use: data written meanwhile stays, nothing is copied again.
    fs::remove_file(path.join("more")).unwrap();
    assert!(!vols.populate("st_appdata", &root, "/app", false).unwrap());
    assert!(!path.join("more").exists());
    // Survives `down` + `up`: the same directory comes back.
    assert_eq!(
        vols.ensure("st", "appdata", &VolumeSpec::default())
            .unwrap(),
        path
    );
    assert!(path.join("seed").exists());
}

#[test]
fn copy_up_follows_image_symlinks_inside_the_root_only() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (root, _m) = rootfs(t.path());
    let vols = Volumes::open(&t.path().join("lib")).unwrap();
    let path = vols.ensure("st", "d", &VolumeSpec::default()).unwrap();
    // /data -> /etc in the image: the copy must come from the image's /etc.
    assert!(vols.populate("st_d", &root, "/data", false).unwrap());
    assert!(path.join("inside").is_file());
    assert!(!path.join("passwd").exists(), "copied the host's /etc");
    let other = vols.ensure("st", "n", &VolumeSpec::default()).unwrap();
    assert!(
        !vols.populate("st_n", &root, "/app", true).unwrap(),
        "nocopy copies nothing"
    );
    assert_eq!(fs::read_dir(other).unwrap().count(), 0);
}

#[test]
fn tmpfs_volume_enforces_its_size() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let vols = Volumes::open(&t.path().join("lib")).unwrap();
    let spec = VolumeSpec {
        driver_opts: BTreeMap::from([
            ("type".to_string(), "tmpfs".to_string()),
            ("device".into(), "tmpfs".into()),
            ("o".into(), "size=1m".into()),
        ]),
        ..Default::default()
    };
    let path = vols.ensure("st", "scratch", &spec).unwrap();
    let _m = Mounted(path.clone());
    fs::write(path.join("small"), vec![0u8; 100_000]).unwrap();
    let err = fs::write(path.join("big"), vec![0u8; 2_000_000]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    assert!(vols.remove("st_scratch").unwrap());
    assert!(!path.exists());
}

#[test]
fn missing_bind_source_is_created_owned_by_the_service_user() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let spec = BindSpec {
        source: "state/cache".into(),
        target: "/cache".into(),
        create_host_path: true,
        ..Default::default()
    };
    let m = storage::bind_mount(&spec, t.path(), Some((1234, 4321))).unwrap();
    for d in ["state", "state/cache"] {
        let meta = fs::metadata(t.path().join(d)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 4321), "{d}");
    }
    assert_eq!(
        m.source,
        fs::canonicalize(t.path().join("state/cache")).unwrap()
    );
    assert_eq!(
        fs::metadata(t.path()).unwrap().uid(),
        0,
        "existing parents keep their owner"
    );
}

#[test]
fn secrets_are_private_copies_with_the_requested_owner() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("db_password");
    fs::write(&secret, "hunter2").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o400)).unwrap();
    let dir = t.path().join("run/secrets");
    let mounts = storage::materialise_secrets(
        &dir,
        &[SecretFile {
            source: secret.clone(),
            target: "/run/secrets/db_password".into(),
            uid: 1000,
            gid: 1000,
            mode: 0o440,
        }],
    )
    .unwrap();
    let _m = Mounted(dir.clone());
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].destination, "/run/secrets/db_password");
    let copy = &mounts[0].source;
    let meta = fs::metadata(copy).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (1000, 1000, 0o440)
    );
    assert_eq!(fs::read_to_string(copy).unwrap(), "hunter2");
    assert_eq!(
        fs::metadata(&dir).unwrap().mode() & 0o777,
        0o700,
        "other users cannot enter the secrets dir"
    );
    assert_eq!(
        fs::write(dir.join("new"), "x").unwrap_err().raw_os_error(),
        Some(libc::EROFS)
    );
    assert_eq!(
        fs::metadata(&secret).unwrap().mode() & 0o777,
        0o400,
        "host file untouched"
    );
    // Again (a restart): the old tmpfs is replaced, not stacked.
    fs::write(&secret, "changed").unwrap();
    let again = storage::materialise_secrets(
        &dir,
        &[SecretFile {
            source: secret.clone(),
            target: "/run/secrets/db_password".into(),
            uid: 0,
            gid: 0,
            mode: 0o400,
        }],
    )
    .unwrap();
    assert_eq!(fs::read_to_string(&again[0].source).unwrap(), "changed");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        mounts
            .lines()
            .filter(|l| l.contains(dir.to_str().unwrap()))
            .count(),
        1,
        "secrets tmpfs stacked"
    );
    storage::unmaterialise_secrets(&dir).unwrap();
    assert!(!dir.exists());
}

#[test]
fn selinux_relabel_options_are_a_note_where_selinux_is_absent() {
    let t = common::stack::TestStack::new(
        r#"
[services.app]
image = "{IMAGE}"
init = true
command = ["sh", "-c", "cat /short/f /long/f; sleep 3600"]
volumes = ["./src:/short:z", { type = "bind", source = "./src", target = "/long", bind = { selinux = "Z" } }]
"#,
    );
    fs::create_dir(t.dir.path().join("src")).unwrap();
    fs::write(t.dir.path().join("src/f"), "bound\n").unwrap();
    let out = t.run(&["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if Path::new("/sys/fs/selinux/enforce").exists() {
        assert!(!out.status.success() && err.contains("relabeling"), "{err}");
        return;
    }
    assert!(out.status.success(), "{err}");
    let notes: Vec<&str> = err.lines().filter(|l| l.contains("SELinux")).collect();
    assert_eq!(notes.len(), 2, "one line per option: {err}");
    assert!(notes.iter().all(|l| l.contains("ignored")), "{notes:?}");
    t.wait_for(10, "both binds read", || {
        t.ok(&["logs", "--no-color"]).matches("bound").count() == 2
    });
    t.down_and_check();
}
