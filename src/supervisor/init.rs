//! The `init: true` PID 1 (src/init/stack-init.rs, built by build.rs), installed
//! once per state root and bind-mounted read-only into containers.
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The static `stack-init` binary.
pub const STACK_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stack-init"));

/// Where containers find it.
pub const CONTAINER_PATH: &str = "/sbin/stack-init";

/// Install `stack-init` under `<lib>/init/` (named by its digest, so an upgrade of
/// `stack` never changes a file a running container has mounted) and return its path.
pub fn install(lib: &Path) -> io::Result<PathBuf> {
    let digest = Sha256::digest(STACK_INIT);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let path = lib.join("init").join(format!("stack-init-{hex}"));
    if !path.exists() {
        crate::state::write_atomic(&path, STACK_INIT)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555))?;
    }
    Ok(path)
}
