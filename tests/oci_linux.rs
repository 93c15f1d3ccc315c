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
    b.config["linux"]["personality"] =
        json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let out = b.oci(&["exec", &b.id, "sh", "-c", "uname -m; cat /proc/self/personality"]);
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
    let mount = |opts: serde_json::Value| {
        json!([{"destination": "/data", "type": "bind", "source": src, "options": opts}])
    };
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
