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
