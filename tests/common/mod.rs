//! Helpers shared by the integration tests (root, real kernel).
#![allow(dead_code)]
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Fail loudly (never skip) when a root test runs without root.
pub mod http;
pub mod stack;

pub fn require_root() {
    assert!(
        nix_uid_is_root(),
        "this integration test needs root (it runs real containers); run the suite as root"
    );
}

fn nix_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Path of the `stack` binary under test.
pub fn stack_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stack"))
}

/// Make a minimal busybox root filesystem in `dir` from Debian's busybox-static.
pub fn busybox_rootfs(dir: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "install Debian's busybox-static (apt-get install busybox-static)"
    );
    for d in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var", "usr/bin", "usr/sbin",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let out = Command::new(busybox).arg("--list-full").output().unwrap();
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let target = dir.join(applet);
        if applet == "bin/busybox" || target.exists() {
            continue;
        }
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        symlink("/bin/busybox", &target).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// A directory under the temp dir for this test process (`<prefix>-<pid>`),
/// removed when the process exits: statics are never dropped, so an
/// `atexit` handler does it, once for every such directory.
pub fn process_temp_dir(prefix: &str) -> PathBuf {
    use std::sync::Mutex;
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    extern "C" fn remove_all() {
        let dirs = DIRS.lock().map(|d| d.clone()).unwrap_or_default();
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut dirs = DIRS.lock().unwrap();
    if dirs.is_empty() {
        // SAFETY: registers a plain function that only removes files.
        assert_eq!(unsafe { libc::atexit(remove_all) }, 0);
    }
    dirs.push(dir.clone());
    dir
}

/// Send `sig` to process `pid`.
pub fn signal(pid: i32, sig: nix::sys::signal::Signal) -> nix::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Wait up to 20 s for process `pid` to exit; whether it did.
pub fn wait_gone(pid: i32) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// A name unique to this test process, for host objects (cgroups, links, ...).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Build the example busybox OCI image layout (examples/images/build.sh) at `dir`.
pub fn busybox_oci_layout(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/images/build.sh");
    let out = dir.join("busybox");
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "examples/images/build.sh failed");
    out
}
