//! `stack oci` on the real kernel (root required): personality, recursive mount
//! attributes, idmapped mounts and seccomp user notification.
#[path = "oci_bundle/mod.rs"]
mod bundle;
mod common;

use bundle::{Bundle, ok, text};
use serde_json::json;

#[test]
fn personality_linux32_and_flags_apply_to_init_and_exec() {
    let mut b = Bundle::new(&["sh", "-c", "uname -m; cat /proc/self/personality; sleep 30"]);
    b.config["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let out = b.oci(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "uname -m; cat /proc/self/personality",
    ]);
    ok(&out);
    assert_eq!(text(&out.stdout), "i686\n00040008\n", "exec'd process");
    ok(&b.oci(&["delete", "--force", &b.id]));

    // The init itself, in the foreground; and the default is the host's.
    b.config["process"]["args"] = json!(["sh", "-c", "uname -m; cat /proc/self/personality"]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "i686\n00040008\n");
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("personality");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{}\n00000000\n", std::env::consts::ARCH));

    b.config["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NOPE"]});
    let out = b.verb("create");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("NOPE"), "{}", text(&out.stderr));
}

/// `rro` makes a submount of the bind read-only too; plain `ro` does not (the
/// control that shows the test can fail). The submount exists only in a private
/// mount namespace that `stack` runs in (`unshare -m`), so the host is unchanged.
#[test]
fn recursive_read_only_reaches_submounts() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "for f in /data/top /data/sub/x; do touch $f 2>/dev/null && echo rw || echo ro; done; \
         grep ' /data/sub ' /proc/self/mountinfo | cut -d' ' -f6",
    ]);
    let src = b.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let sub = src.join("sub");
    let wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs stack-rro-test \"$0\" && exec \"$@\"",
        sub.to_str().unwrap(),
    ];
    let run = |b: &Bundle| {
        let out = b.oci_wrapped(
            &wrapper,
            &["run", "--bundle", b.path().to_str().unwrap(), &b.id],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let mount = |opts: serde_json::Value| json!([{"destination": "/data", "type": "bind", "source": src, "options": opts}]);
    let base = b.config["mounts"].as_array().unwrap().clone();
    let with = |b: &mut Bundle, opts| {
        let mut m = base.clone();
        m.extend(mount(opts).as_array().unwrap().iter().cloned());
        b.config["mounts"] = json!(m);
    };
    with(&mut b, json!(["rbind", "ro"]));
    assert_eq!(run(&b).lines().take(2).collect::<Vec<_>>(), ["ro", "rw"]);
    with(
        &mut b,
        json!(["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"]),
    );
    let out = run(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["ro", "ro"], "{out}");
    let opts: Vec<&str> = lines[2].split(',').collect();
    for o in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        assert!(opts.contains(&o), "submount options {opts:?} lack {o}");
    }
    assert!(!src.join("top").exists() && !sub.join("x").exists());
}

/// A source directory on the host's ext4 (/tmp) with files owned by 0 and 1000.
fn owned_source(b: &Bundle) -> std::path::PathBuf {
    let src = b.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    std::fs::write(src.join("b"), "b").unwrap();
    std::os::unix::fs::chown(src.join("b"), Some(1000), Some(1000)).unwrap();
    src
}

fn add_mount(b: &mut Bundle, m: serde_json::Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

#[test]
fn idmapped_mount_with_its_own_mapping_shows_remapped_owners() {
    let mut b = Bundle::new(&["sh", "-c", "stat -c %u:%g /data/a /data/b /plain/a"]);
    let src = owned_source(&b);
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 65536}],
               "gidMappings": [{"containerID": 0, "hostID": 5678, "size": 65536}]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1234:5678\n2234:6678\n0:0\n");
}

/// `idmap` without mappings of its own: the container's user namespace mapping,
/// so host root's files are root's inside (instead of nobody), and files the
/// container writes are owned by host root on disk.
#[test]
fn idmap_uses_the_containers_user_namespace() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "stat -c %u:%g /data/a /data/b /plain/a; touch /data/new && echo wrote",
    ]);
    let src = owned_source(&b);
    // Host root owns the rootfs: unmapped, so the container cannot mkdir there.
    for d in ["data", "plain"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
    }
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0:0\n1000:1000\n65534:65534\nwrote\n");
    let meta = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(src.join("new")).unwrap());
    assert_eq!(
        meta, 0,
        "written as container root = host root through the idmap"
    );
}

/// The kernel's refusal is a clear create error and leaves nothing behind.
#[test]
fn idmapped_mount_of_an_unsupported_filesystem_is_a_clear_error() {
    let mut b = Bundle::new(&["true"]);
    add_mount(
        &mut b,
        json!({"destination": "/k", "type": "bind", "source": "/sys/kernel", "options": ["bind", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}],
               "gidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}]}),
    );
    let out = b.verb("create");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("idmapped mount of /sys/kernel") && err.contains("does not support"),
        "{err}"
    );
    assert!(!b.root.path().join(&b.id).exists(), "no state dir left");
    assert!(
        b.cgroup_dirs().iter().all(|d| !d.exists()),
        "no cgroup left"
    );

    // Not a bind mount, and half a mapping: refused before anything happens.
    b.config["mounts"].as_array_mut().unwrap().pop();
    add_mount(
        &mut b,
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
    );
    let err = text(&b.verb("create").stderr);
    assert!(err.contains("must be bind mounts"), "{err}");
    b.config["mounts"].as_array_mut().unwrap().pop();
    add_mount(
        &mut b,
        json!({"destination": "/t", "type": "bind", "source": "/tmp", "options": ["rbind"],
               "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
    );
    let err = text(&b.verb("create").stderr);
    assert!(err.contains("must both be given"), "{err}");
}
