//! The freestanding helpers built by build.rs and embedded in `stack`:
//! `stack-init` (the PID 1 of `init: true` containers, bind-mounted read-only
//! into them) and `stack-monitor` (the process beside every running container).
//! Each is installed once per state root under `<lib>/init/`, named by its
//! digest, so an upgrade of `stack` never changes a file that a running
//! container has mounted or a running monitor executes.
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The static `stack-init` binary.
pub const STACK_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stack-init"));

/// The static `stack-monitor` binary.
pub const STACK_MONITOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stack-monitor"));

/// Where containers find `stack-init`.
pub const CONTAINER_PATH: &str = "/sbin/stack-init";

/// Install `stack-init` and return its path.
pub fn install_init(lib: &Path) -> io::Result<PathBuf> {
    static FILE: OnceLock<String> = OnceLock::new();
    install(lib, &FILE, "stack-init", STACK_INIT)
}

/// Install `stack-monitor` and return its path.
pub fn install_monitor(lib: &Path) -> io::Result<PathBuf> {
    static FILE: OnceLock<String> = OnceLock::new();
    install(lib, &FILE, "stack-monitor", STACK_MONITOR)
}

/// `file`: the file name, computed once per process (every container start
/// asks for it).
fn install(lib: &Path, file: &OnceLock<String>, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let file = file.get_or_init(|| {
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{name}-{hex}")
    });
    let path = lib.join("init").join(file);
    if !path.exists() {
        crate::state::write_atomic(&path, bytes)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555))?;
    }
    Ok(path)
}
