//! Running this very program again: monitors, the daemon, the `[::1]` proxy.
//!
//! Why not just `std::env::current_exe()`: it reads the `/proc/self/exe` link,
//! which says `/usr/bin/stack (deleted)` once the file was replaced (an
//! upgrade, a rebuild) while the daemon runs, and every container start would
//! then fail with ENOENT until the daemon restarts. So the installed path is
//! used while it still is the running file (processes keep their usual name in
//! `ps` and `top`); once it was replaced, `/proc/self/exe` itself, which runs
//! the inode this process runs, so a monitor always speaks the same protocol
//! as the daemon that started it. The daemon's restart moves to the new binary.
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

const PROC_SELF_EXE: &str = "/proc/self/exe";

/// A command that runs the binary this process runs.
pub fn command() -> Command {
    Command::new(path())
}

/// The path that executes the binary this process runs, now.
pub fn path() -> PathBuf {
    let same_file = |p: &PathBuf| {
        let (Ok(a), Ok(b)) = (std::fs::metadata(p), std::fs::metadata(PROC_SELF_EXE)) else {
            return false;
        };
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    };
    match std::env::current_exe() {
        Ok(p) if same_file(&p) => p,
        _ => PathBuf::from(PROC_SELF_EXE),
    }
}
