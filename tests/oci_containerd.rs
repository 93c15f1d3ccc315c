//! containerd (Debian's `containerd` package) drives `stack oci` as its runc
//! binary: `ctr run --runc-binary` through the io.containerd.runc.v2 shim.
//! Root required; needs `apt-get install containerd` (ctr + shim).
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private containerd (own root, state and sockets), stopped on drop.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    /// Namespaces used: the shims create /run/containerd/runc/<ns> for them.
    namespaces: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    fn start() -> Containerd {
        common::require_root();
        assert!(
            Path::new("/usr/bin/containerd").exists() && Path::new("/usr/bin/ctr").exists(),
            "install Debian's containerd package (apt-get install containerd)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/c.sock\"\n[ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n[debug]\n  address = \"{d}/d.sock\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            child,
            dir,
            namespaces: Default::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.dir.path().join("c.sock").exists() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The runc binary containerd calls: `stack oci` with runc's arguments.
        let wrapper = c.dir.path().join("stack-runc");
        let calls = c.dir.path().join("calls.log");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$@\" >> {}\nexec {} oci \"$@\"\n",
                calls.display(),
                common::stack_bin().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        c
    }

    fn ctr(&self, ns: &str, args: &[&str]) -> std::process::Output {
        if !self.namespaces.borrow().iter().any(|n| n == ns) {
            self.namespaces.borrow_mut().push(ns.to_string());
        }
        Command::new("ctr")
            .arg("-a")
            .arg(self.dir.path().join("c.sock"))
            .args(["-n", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Left empty by the shims (a cleanup shim may recreate it late).
        std::thread::sleep(Duration::from_millis(200));
        for ns in self.namespaces.borrow().iter() {
            let _ = std::fs::remove_dir(Path::new("/run/containerd/runc").join(ns));
            // containerd's cgroupsPath is /<namespace>/<id>: the runtime removed
            // the containers' cgroups, the namespace level is ours to remove.
            if let Ok(cg) = stack::cgroup::Cgroup::open(ns) {
                for dir in cg.dirs() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
    }
}

#[test]
fn ctr_runs_containers_through_stack_oci() {
    let c = Containerd::start();
    let rootfs = c.dir.path().join("rootfs");
    common::busybox_rootfs(&rootfs);
    let wrapper = c.dir.path().join("stack-runc");
    let ns = common::unique("ns");
    let (w, r) = (wrapper.to_str().unwrap(), rootfs.to_str().unwrap());
    let id = common::unique("ctr");
    let out = c.ctr(
        &ns,
        &[
            "run",
            "--rm",
            "--runc-binary",
            w,
            "--rootfs",
            r,
            &id,
            "sh",
            "-c",
            "echo hello pid $$; exit 3",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello pid 1");
    let calls = std::fs::read_to_string(c.dir.path().join("calls.log")).unwrap();
    for verb in ["create --bundle", "start", "delete"] {
        assert!(
            calls.lines().any(|l| l.contains(verb) && l.contains(&id)),
            "containerd called `{verb}`: {calls}"
        );
    }
    // A detached task: listed, killed, deleted.
    let id2 = common::unique("ctr");
    let out = c.ctr(
        &ns,
        &[
            "run",
            "-d",
            "--runc-binary",
            w,
            "--rootfs",
            r,
            &id2,
            "sleep",
            "30",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ls = String::from_utf8_lossy(&c.ctr(&ns, &["task", "ls"]).stdout).into_owned();
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&id2) && l.contains("RUNNING")),
        "{ls}"
    );
    assert!(
        c.ctr(&ns, &["task", "kill", "-s", "SIGKILL", &id2])
            .status
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ls = String::from_utf8_lossy(&c.ctr(&ns, &["task", "ls"]).stdout).into_owned();
        if ls
            .lines()
            .any(|l| l.starts_with(&id2) && l.contains("STOPPED"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "task did not stop: {ls}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let del = c.ctr(&ns, &["task", "delete", &id2]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    assert!(c.ctr(&ns, &["container", "delete", &id2]).status.success());
    let state_root = Path::new("/run/containerd/runc").join(&ns);
    assert!(
        !state_root.join(&id2).exists(),
        "stack's state for the task is gone"
    );
}
