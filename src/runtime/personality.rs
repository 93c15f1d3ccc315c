//! `linux.personality` -> the personality(2) value the init sets before execve.
//!
//! The domain is `LINUX` (PER_LINUX, 0) or `LINUX32` (PER_LINUX32, 8: `uname -m`
//! then says i686 on x86_64). `flags` takes the flag names of
//! `<sys/personality.h>`; the runtime-spec defines none yet, so these are the
//! kernel's own names (runc ignores flags with a warning; we apply them or refuse
//! an unknown one — never drop it silently). The value survives execve; the
//! kernel clears the setuid-unsafe flags (PER_CLEAR_ON_SETID) for setuid programs.
use libc::c_ulong;
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

use super::Error;

/// `<sys/personality.h>` flag names and values.
const FLAGS: &[(&str, c_ulong)] = &[
    ("UNAME26", 0x0020000),
    ("ADDR_NO_RANDOMIZE", 0x0040000),
    ("FDPIC_FUNCPTRS", 0x0080000),
    ("MMAP_PAGE_ZERO", 0x0100000),
    ("ADDR_COMPAT_LAYOUT", 0x0200000),
    ("READ_IMPLIES_EXEC", 0x0400000),
    ("ADDR_LIMIT_32BIT", 0x0800000),
    ("SHORT_INODE", 0x1000000),
    ("WHOLE_SECONDS", 0x2000000),
    ("STICKY_TIMEOUTS", 0x4000000),
    ("ADDR_LIMIT_3GB", 0x8000000),
];

pub(crate) fn value(p: &LinuxPersonality) -> Result<c_ulong, Error> {
    let mut v: c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    for f in p.flags().iter().flatten() {
        let name = f.strip_prefix("PER_").unwrap_or(f);
        let Some((_, bit)) = FLAGS.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = FLAGS.iter().map(|(n, _)| *n).collect();
            return Err(Error::Invalid {
                field: "linux.personality.flags".into(),
                reason: format!("unknown flag {f:?}; known: {}", known.join(", ")),
            });
        };
        v |= bit;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(json: &str) -> Result<c_ulong, Error> {
        value(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn domains_and_flags() {
        assert_eq!(p(r#"{"domain": "LINUX"}"#).unwrap(), 0);
        assert_eq!(p(r#"{"domain": "LINUX32"}"#).unwrap(), 8);
        assert_eq!(
            p(r#"{"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE", "UNAME26"]}"#).unwrap(),
            0x0060008
        );
        let e = p(r#"{"domain": "LINUX", "flags": ["BOGUS"]}"#).unwrap_err();
        assert!(e.to_string().contains("flags"), "{e}");
    }
}
