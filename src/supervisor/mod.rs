//! The supervisor keeps what the plan started running: a small monitor process per
//! container holds its pipes, writes its logs, records its exit, and applies its
//! restart policy with backoff.
pub mod backoff;
pub mod control;
pub mod launcher;
pub mod logs;
pub mod monitor;
pub mod record;

/// Start time of a process in clock ticks since boot (`/proc/<pid>/stat` field
/// 22): a pid plus its start time names a process across pid reuse.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}
