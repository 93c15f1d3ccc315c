//! The supervisor keeps what the plan started running: a small monitor process per
//! container holds its pipes, writes its logs, records its exit, and applies its
//! restart policy with backoff.
pub mod backoff;
pub mod control;
pub mod health;
pub mod init;
pub mod launcher;
pub mod logs;
pub mod monitor;
pub mod record;

/// Start time of a live process in clock ticks since boot (`/proc/<pid>/stat`
/// field 22): a pid plus its start time names a process across pid reuse.
/// `None` for a process that is gone or a zombie (exited, not yet reaped by a
/// parent that may be slow to do so, such as PID 1).
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}
