//! Resource usage and OOM counters, the same shape on v1 and v2.
use serde::Serialize;

/// A snapshot of a cgroup's usage. `None`: the controller is not available.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub memory: Option<MemoryStats>,
    pub pids: Option<PidsStats>,
    pub cpu: Option<CpuStats>,
    pub blkio: Option<BlkioStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// Bytes charged now (v2 memory.current, v1 memory.usage_in_bytes).
    pub usage: u64,
    /// Limit in bytes; `None` = unlimited.
    pub limit: Option<u64>,
    /// Anonymous memory (v2 `anon`, v1 `total_rss`).
    pub anon: u64,
    /// Page cache (v2 `file`, v1 `total_cache`).
    pub file: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` = unlimited.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    /// Total CPU time in microseconds.
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlkioStats {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// OOM observations of a memory cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OomEvents {
    /// Times the limit was hit and reclaim failed (v2 `oom`; v1: 0, not counted).
    pub oom: u64,
    /// Processes killed by the OOM killer (v2 `oom_kill`, v1 `oom_kill` of memory.oom_control).
    pub oom_kill: u64,
    /// v1 with the OOM killer disabled: tasks are paused waiting for memory.
    pub under_oom: bool,
}

/// Convert a limit read from cgroupfs: "max" / the v1 "unlimited" value -> None.
pub(super) fn limit(v: Option<u64>) -> Option<u64> {
    // v1 reports "unlimited" as PAGE_COUNTER_MAX * PAGE_SIZE, just below i64::MAX.
    v.filter(|&v| v < 0x7FFF_FFFF_FFFF_0000)
}
