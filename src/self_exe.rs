//! Running this very program again: monitors, the daemon, the `[::1]` proxy.
//!
//! Why not `std::env::current_exe()`: it reads the `/proc/self/exe` link, which
//! says `/usr/bin/stack (deleted)` once the file was replaced (an upgrade, a
//! rebuild) while the daemon runs, and every container start would then fail
//! with ENOENT until the daemon restarts. Executing `/proc/self/exe` itself
//! runs the inode this process runs, replaced or not, so a monitor always
//! speaks the same protocol as the daemon that started it; the daemon's
//! restart is what moves to the new binary.
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PROC_SELF_EXE: &str = "/proc/self/exe";

/// A command that runs the binary this process runs, with the installed path
/// as argv[0] (what `ps` shows).
pub fn command() -> Command {
    let mut cmd = Command::new(PROC_SELF_EXE);
    std::os::unix::process::CommandExt::arg0(&mut cmd, arg0());
    cmd
}

/// The path to execute this program with (for code that builds its own
/// Command later, in this process).
pub fn path() -> &'static Path {
    Path::new(PROC_SELF_EXE)
}

fn arg0() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|p| {
            let s = p.to_string_lossy();
            PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s).to_string())
        })
        .unwrap_or_else(|| PathBuf::from("stack"))
}
