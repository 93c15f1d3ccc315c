//! Capability names -> bit numbers (linux/capability.h) and the five sets as masks.
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::Error;

/// capabilities(7) without the `CAP_` prefix, indexed by bit number.
pub const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The five capability sets of the process as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// Highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap).
    pub last_cap: u32,
}

/// Number of a capability name with or without the `CAP_` prefix.
pub(crate) fn number(name: &str) -> Option<u32> {
    let n = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES
        .iter()
        .position(|c| *c == n)
        .and_then(|i| u32::try_from(i).ok())
}

/// Name (`CAP_SYS_ADMIN`) of a capability number.
pub(crate) fn name(n: u32) -> Option<String> {
    NAMES.get(n as usize).map(|s| format!("CAP_{s}"))
}

pub(crate) fn all_names() -> Vec<String> {
    (0..NAMES.len()).filter_map(|i| name(i as u32)).collect()
}

fn mask(set: &Option<Capabilities>, last_cap: u32) -> Result<u64, Error> {
    let mut m = 0u64;
    for cap in set.iter().flatten() {
        let text = cap.to_string();
        let n = number(&text).ok_or_else(|| Error::Invalid {
            field: "process.capabilities".into(),
            reason: format!("unknown capability {text}"),
        })?;
        // Capabilities the kernel does not know are skipped, as runc does (warns).
        if n <= last_cap {
            m |= 1 << n;
        } else {
            tracing::warn!(capability = %text, "not supported by this kernel; ignored");
        }
    }
    Ok(m)
}

pub(crate) fn sets(caps: &LinuxCapabilities, last_cap: u32) -> Result<CapSets, Error> {
    Ok(CapSets {
        bounding: mask(caps.bounding(), last_cap)?,
        effective: mask(caps.effective(), last_cap)?,
        permitted: mask(caps.permitted(), last_cap)?,
        inheritable: mask(caps.inheritable(), last_cap)?,
        ambient: mask(caps.ambient(), last_cap)?,
        last_cap,
    })
}

pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}
