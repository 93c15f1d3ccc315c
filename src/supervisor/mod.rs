//! The supervisor keeps what the plan started running. Beside every running
//! container a tiny `stack-monitor` process (its init's parent) holds the
//! output pipes, writes the log and records the exit, so no line or exit code
//! depends on a long-running process; the daemon's supervisor applies restart
//! policies with backoff and runs healthchecks.
pub mod backoff;
pub mod control;
pub mod events;
pub mod health;
pub mod helpers;
pub mod launch;
pub mod logs;
mod probe;
pub mod record;
pub mod spawner;
pub mod watch;

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

/// An error with its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
