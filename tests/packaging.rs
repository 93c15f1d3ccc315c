//! The Debian package and the systemd units in packaging/.
//!
//! The .deb is built once per run from the debug binary the test suite already
//! has (`cargo deb --no-build --profile dev`: a release build would take minutes),
//! then checked with `dpkg-deb`, extracted into a throwaway root and run from
//! there. Root: the unit check mounts an overlay in a private mount namespace.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::require_root;

const CARGO_DEB: &str = "cargo-deb 3.8.0";

struct Package {
    /// Holds the .deb and the extracted root; removed at exit with the process's temp dirs.
    _dir: tempfile::TempDir,
    deb: PathBuf,
    root: PathBuf,
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build the .deb once and extract it into a fresh root.
fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let version = Command::new(&cargo).args(["deb", "--version"]).output();
        let found = version.as_ref().map(text).unwrap_or_default();
        assert!(
            found.trim() == CARGO_DEB,
            "this test needs {CARGO_DEB} (found {found:?}); .ci/setup installs it: \
             cargo install cargo-deb --locked --version 3.8.0"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        run(Command::new(&cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "deb",
                "--no-build",
                "--profile",
                "dev",
                "--fast",
                "--offline",
            ])
            .arg("-o")
            .arg(&out));
        let deb = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .expect("cargo deb wrote no .deb");
        let root = dir.path().join("root");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
        Package {
            _dir: dir,
            deb,
            root,
        }
    })
}

#[test]
fn deb_holds_binary_units_and_docs() {
    let p = package();
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&p.deb));
    let has = |path: &str, mode: &str| {
        listing
            .lines()
            .any(|l| l.starts_with(mode) && l.ends_with(&format!(" ./{path}")))
    };
    for (path, mode) in [
        ("usr/bin/stack", "-rwxr-xr-x"),
        ("usr/lib/systemd/system/stack.service", "-rw-r--r--"),
        ("usr/lib/systemd/system/stack.socket", "-rw-r--r--"),
        ("usr/lib/systemd/system/stack-ro.socket", "-rw-r--r--"),
        ("usr/lib/tmpfiles.d/stack.conf", "-rw-r--r--"),
        ("usr/lib/sysusers.d/stack.conf", "-rw-r--r--"),
        ("etc/stack/stacks.d/", "drwxr-xr-x"),
        ("etc/stack/stacks.d/README", "-rw-r--r--"),
        ("usr/share/doc/stack/README.md", "-rw-r--r--"),
        ("usr/share/doc/stack/stack-file.md", "-rw-r--r--"),
        ("usr/share/doc/stack/examples/hello.toml", "-rw-r--r--"),
        ("usr/share/doc/stack/copyright", "-rw-r--r--"),
    ] {
        assert!(has(path, mode), "{path} ({mode}) missing in:\n{listing}");
    }
    // Every file is root's.
    for l in listing.lines() {
        assert!(l.contains(" 0/0 "), "not owned by root: {l}");
    }
    let field = |name: &str| run(Command::new("dpkg-deb").arg("-f").arg(&p.deb).arg(name));
    assert_eq!(field("Package").trim(), "stack");
    assert_eq!(
        field("Version").trim(),
        format!("{}-1", env!("CARGO_PKG_VERSION"))
    );
    let depends = field("Depends");
    for dep in ["nftables", "libseccomp2", "iproute2", "libc6"] {
        assert!(
            depends.split(", ").any(|d| d.starts_with(dep)),
            "Depends lacks {dep}: {depends}"
        );
    }
}

#[test]
fn deb_maintainer_scripts_create_groups_and_directories() {
    let p = package();
    let ctl = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&p.deb)
        .arg(ctl.path()));
    let read = |f: &str| std::fs::read_to_string(ctl.path().join(f)).unwrap();
    let postinst = read("postinst");
    assert!(postinst.contains("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} stack.conf"));
    assert!(postinst.contains("--create stack.conf"));
    assert!(postinst.contains("deb-systemd-helper enable stack.service"));
    assert!(!postinst.contains("#DEBHELPER#"), "token left in postinst");
    assert_eq!(read("conffiles").trim(), "/etc/stack/stacks.d/README");
    // What the postinst does, applied to the throwaway root.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    run(Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(p.root.join("usr/lib/sysusers.d/stack.conf")));
    let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    for g in ["stack", "stack-ro"] {
        assert!(
            group.lines().any(|l| l.starts_with(&format!("{g}:x:"))),
            "no group {g} in:\n{group}"
        );
    }
    run(Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(p.root.join("usr/lib/tmpfiles.d/stack.conf")));
    use std::os::unix::fs::PermissionsExt;
    for (dir, mode) in [
        ("run/stack", 0o711),
        ("var/lib/stack", 0o711),
        ("etc/stack/stacks.d", 0o755),
    ] {
        let meta = std::fs::metadata(root.path().join(dir))
            .unwrap_or_else(|e| panic!("{dir} not created: {e}"));
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "mode of {dir}");
    }
}

#[test]
fn installed_binary_runs_and_validates_the_example() {
    let p = package();
    let bin = p.root.join("usr/bin/stack");
    let version = run(Command::new(&bin).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("stack {}", env!("CARGO_PKG_VERSION"))
    );
    let example = p.root.join("usr/share/doc/stack/examples/hello.toml");
    let out = run(Command::new(&bin).arg("validate").arg("-f").arg(&example));
    assert!(out.contains("valid"), "{out}");
}

/// `systemd-analyze verify` on `units`, with `/usr/bin` showing the package's
/// binary too (an overlay in a private mount namespace, gone when `unshare`
/// exits): the installed unit files are checked as they are, ExecStart included.
/// It exits 0 on warnings, so what it prints is the result.
fn verify(units: &[PathBuf]) -> String {
    let bin = package().root.join("usr/bin");
    let script = format!(
        "mount --make-rprivate / && mount -t overlay overlay -o lowerdir={}:/usr/bin /usr/bin \
         && exec systemd-analyze verify \"$@\"",
        bin.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script, "verify"])
        .args(units)
        .output()
        .unwrap();
    text(&out)
}

fn unit(name: &str) -> PathBuf {
    package().root.join("usr/lib/systemd/system").join(name)
}

#[test]
fn units_pass_systemd_analyze_verify() {
    require_root();
    let units = [
        unit("stack.service"),
        unit("stack.socket"),
        unit("stack-ro.socket"),
    ];
    let out = verify(&units);
    assert!(out.is_empty(), "systemd-analyze verify printed:\n{out}");
    // The check can fail: the same service with a misspelt key is reported.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("stack.service");
    let body = std::fs::read_to_string(unit("stack.service")).unwrap();
    std::fs::write(&bad, body.replace("KillMode=process", "KilMode=process")).unwrap();
    let out = verify(&[bad]);
    assert!(out.contains("KilMode"), "a bad key went unnoticed: {out:?}");
}

/// The values of `key` in a unit file (comments skipped).
fn settings(unit: &Path, key: &str) -> Vec<String> {
    std::fs::read_to_string(unit)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

#[test]
fn service_keeps_containers_across_daemon_restarts() {
    let service = unit("stack.service");
    let get = |key: &str| settings(&service, key);
    // What live-restore depends on.
    assert_eq!(get("KillMode"), ["process"]);
    assert_eq!(get("Delegate"), ["yes"]);
    assert_eq!(get("Type"), ["notify"]);
    assert_eq!(get("ExecStart"), ["/usr/bin/stack daemon"]);
    assert_eq!(get("Restart"), ["on-failure"]);
    assert_eq!(get("Also"), ["stack.socket", "stack-ro.socket"]);
    // Hardening that would reach every container (see the unit's comments).
    for key in [
        "NoNewPrivileges",
        "ProtectSystem",
        "PrivateTmp",
        "PrivateMounts",
        "SystemCallFilter",
        "CapabilityBoundingSet",
        "RuntimeDirectory",
    ] {
        assert!(get(key).is_empty(), "{key} must not be set");
    }
    for (socket, path, group, name) in [
        ("stack.socket", "/run/stack/stack.sock", "stack", "api"),
        (
            "stack-ro.socket",
            "/run/stack/stack-ro.sock",
            "stack-ro",
            "api-ro",
        ),
    ] {
        let u = unit(socket);
        assert_eq!(settings(&u, "ListenStream"), [path], "{socket}");
        assert_eq!(settings(&u, "SocketMode"), ["0660"], "{socket}");
        assert_eq!(settings(&u, "SocketGroup"), [group], "{socket}");
        assert_eq!(settings(&u, "FileDescriptorName"), [name], "{socket}");
    }
    assert_eq!(
        settings(&unit("stack-ro.socket"), "Service"),
        ["stack.service"]
    );
}
