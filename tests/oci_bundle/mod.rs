//! A busybox bundle driven through `stack oci` (shared by the oci_* tests).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::common;

/// A bundle (busybox rootfs + config.json) and a private runtime root; the
/// container is force-deleted on drop, even when the test fails.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub root: tempfile::TempDir,
    pub id: String,
    pub config: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        common::require_root();
        let dir = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        common::busybox_rootfs(&dir.path().join("rootfs"));
        let id = common::unique("oci");
        let out = Command::new(common::stack_bin())
            .args(["oci", "spec", "--bundle"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stack oci spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        config["process"]["args"] = json!(args);
        config["process"]["terminal"] = json!(false);
        config["hostname"] = json!("box");
        config["linux"]["cgroupsPath"] = json!(format!("/stack-test/{id}"));
        Bundle {
            dir,
            root,
            id,
            config,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn write(&self) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Output goes to files, not pipes: a created container keeps the runtime's
    /// stdio open, so reading a pipe to EOF would wait for the container.
    pub fn oci(&self, args: &[&str]) -> Output {
        self.oci_wrapped(&[], args)
    }

    /// [`Bundle::oci`] run as `wrapper... stack --root R oci args...` (e.g.
    /// under `unshare -m` or `nsenter`).
    pub fn oci_wrapped(&self, wrapper: &[&str], args: &[&str]) -> Output {
        self.write();
        // Fresh files per call: a detached container keeps writing to the files
        // of the call that started it.
        static CALL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = CALL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (out, err) = (
            self.dir.path().join(format!("out.{n}")),
            self.dir.path().join(format!("err.{n}")),
        );
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(common::stack_bin());
                c
            }
            None => Command::new(common::stack_bin()),
        };
        let status = cmd
            .arg("--root")
            .arg(self.root.path())
            .arg("oci")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    }

    /// `oci <verb> [--bundle B] <id>` with the test's id.
    pub fn verb(&self, verb: &str) -> Output {
        match verb {
            "create" | "run" => {
                self.oci(&[verb, "--bundle", self.path().to_str().unwrap(), &self.id])
            }
            _ => self.oci(&[verb, &self.id]),
        }
    }

    /// Run in the foreground; returns (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let out = self.verb("run");
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    pub fn state(&self) -> Value {
        let out = self.verb("state");
        assert!(out.status.success(), "state: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The container's cgroup directories on every hierarchy of this host.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        stack::cgroup::Cgroup::open(format!("stack-test/{}", self.id))
            .unwrap()
            .dirs()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new(common::stack_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(["oci", "delete", "--force", &self.id])
            .output();
        // The shared parent cgroup: only rmdir (the last test to finish wins).
        if let Ok(parent) = stack::cgroup::Cgroup::open("stack-test") {
            for dir in parent.dirs() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
