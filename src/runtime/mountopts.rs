//! OCI mount options -> mount(2) flags, propagation and fs data (mount(8) names).
use libc::c_ulong;

use super::Error;

/// Parsed options of one mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MountOpts {
    /// Flags for the mount call itself (MS_RDONLY, MS_NOSUID, ...).
    pub flags: c_ulong,
    /// Flags that were explicitly cleared (`rw`, `suid`, ...); kept to know when
    /// a bind mount needs a remount.
    pub cleared: c_ulong,
    /// Propagation changes applied after the mount (MS_SHARED, MS_PRIVATE | MS_REC, ...).
    pub propagation: Vec<c_ulong>,
    pub bind: bool,
    pub recursive: bool,
    /// Recursive attributes (`rro`, `rnosuid`, ...): MOUNT_ATTR_* bits set and
    /// cleared with mount_setattr(AT_RECURSIVE) on the mount and every submount.
    pub rec: Option<RecAttr>,
    /// `idmap` / `ridmap`: an idmapped bind mount (ridmap: every submount too).
    pub idmap: Option<Idmap>,
    /// Everything else, passed to the filesystem as `data`.
    pub data: Vec<String>,
}

/// MOUNT_ATTR_* bits for mount_setattr(2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecAttr {
    pub set: u64,
    pub clr: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idmap {
    /// Only the mount itself (`idmap`).
    Top,
    /// The mount and all its submounts (`ridmap`).
    Recursive,
}

/// runc's recursive options: name -> (MOUNT_ATTR bit, set (true) or clear).
const REC_FLAGS: &[(&str, u64, bool)] = &[
    ("rro", libc::MOUNT_ATTR_RDONLY, true),
    ("rrw", libc::MOUNT_ATTR_RDONLY, false),
    ("rnosuid", libc::MOUNT_ATTR_NOSUID, true),
    ("rsuid", libc::MOUNT_ATTR_NOSUID, false),
    ("rnodev", libc::MOUNT_ATTR_NODEV, true),
    ("rdev", libc::MOUNT_ATTR_NODEV, false),
    ("rnoexec", libc::MOUNT_ATTR_NOEXEC, true),
    ("rexec", libc::MOUNT_ATTR_NOEXEC, false),
    ("rnodiratime", libc::MOUNT_ATTR_NODIRATIME, true),
    ("rdiratime", libc::MOUNT_ATTR_NODIRATIME, false),
    ("rnosymfollow", libc::MOUNT_ATTR_NOSYMFOLLOW, true),
    ("rsymfollow", libc::MOUNT_ATTR_NOSYMFOLLOW, false),
];

/// The access-time options pick one mode of the MOUNT_ATTR__ATIME field (an
/// enum, not bits: mount_setattr(2) wants the whole field in attr_clr). The
/// negative ones mean "not that mode", i.e. the kernel default relatime, except
/// `rnorelatime`, which is strict atime updates as mount(8)'s norelatime.
const REC_ATIME: &[(&str, u64)] = &[
    ("rnoatime", libc::MOUNT_ATTR_NOATIME),
    ("ratime", libc::MOUNT_ATTR_RELATIME),
    ("rstrictatime", libc::MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", libc::MOUNT_ATTR_RELATIME),
    ("rrelatime", libc::MOUNT_ATTR_RELATIME),
    ("rnorelatime", libc::MOUNT_ATTR_STRICTATIME),
];

/// The recursive option `opt`, applied to `rec` (a later option wins).
fn rec_option(rec: &mut Option<RecAttr>, opt: &str) -> bool {
    if let Some((_, bit, set)) = REC_FLAGS.iter().find(|(n, _, _)| *n == opt) {
        let r = rec.get_or_insert_default();
        if *set {
            r.set |= bit;
            r.clr &= !bit;
        } else {
            r.clr |= bit;
            r.set &= !bit;
        }
        return true;
    }
    if let Some((_, mode)) = REC_ATIME.iter().find(|(n, _)| *n == opt) {
        let r = rec.get_or_insert_default();
        r.clr |= libc::MOUNT_ATTR__ATIME;
        r.set = (r.set & !libc::MOUNT_ATTR__ATIME) | mode;
        return true;
    }
    false
}

/// Every mount option name this runtime accepts (for `features`).
pub(crate) fn recursive_option_names() -> impl Iterator<Item = &'static str> {
    REC_FLAGS
        .iter()
        .map(|f| f.0)
        .chain(REC_ATIME.iter().map(|f| f.0))
}

pub(crate) fn parse(options: &[String]) -> Result<MountOpts, Error> {
    let mut o = MountOpts::default();
    for opt in options {
        if rec_option(&mut o.rec, opt) {
            continue;
        }
        let (set, clear): (c_ulong, c_ulong) = match opt.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "silent" => (libc::MS_SILENT, 0),
            "loud" => (0, libc::MS_SILENT),
            "defaults" | "remount" => (0, 0),
            "bind" => {
                o.bind = true;
                (0, 0)
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                (0, 0)
            }
            "private" => prop(&mut o, libc::MS_PRIVATE),
            "rprivate" => prop(&mut o, libc::MS_PRIVATE | libc::MS_REC),
            "shared" => prop(&mut o, libc::MS_SHARED),
            "rshared" => prop(&mut o, libc::MS_SHARED | libc::MS_REC),
            "slave" => prop(&mut o, libc::MS_SLAVE),
            "rslave" => prop(&mut o, libc::MS_SLAVE | libc::MS_REC),
            "unbindable" => prop(&mut o, libc::MS_UNBINDABLE),
            "runbindable" => prop(&mut o, libc::MS_UNBINDABLE | libc::MS_REC),
            "idmap" => {
                o.idmap = Some(Idmap::Top);
                (0, 0)
            }
            "ridmap" => {
                o.idmap = Some(Idmap::Recursive);
                (0, 0)
            }
            "tmpcopyup" | "copy-symlink" | "src-nofollow" | "dst-nofollow" => {
                return Err(Error::Unsupported {
                    what: format!("mount option {opt:?}"),
                    hint: "remove the option from config.json".into(),
                });
            }
            other => {
                o.data.push(other.to_string());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.cleared = (o.cleared | clear) & !set;
    }
    Ok(o)
}

fn prop(o: &mut MountOpts, flags: c_ulong) -> (c_ulong, c_ulong) {
    o.propagation.push(flags);
    (0, 0)
}

/// Root filesystem propagation (`linux.rootfsPropagation`); runc's default is rslave
/// so that host unmounts reach the container without container mounts leaking out.
pub(crate) fn rootfs_propagation(value: Option<&str>) -> Result<c_ulong, Error> {
    Ok(match value.unwrap_or("rslave") {
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        other => {
            return Err(Error::Invalid {
                field: "linux.rootfsPropagation".into(),
                reason: format!("unknown mode {other:?}"),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOpts {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data_are_split() {
        let o = p(&["nosuid", "noexec", "mode=755", "size=65536k", "ro"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_RDONLY);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins_and_rbind_is_recursive() {
        let o = p(&["ro", "rw", "rbind", "rprivate"]);
        assert_eq!(o.flags & libc::MS_RDONLY, 0);
        assert!(o.bind && o.recursive);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn recursive_attributes_later_wins_and_atime_is_one_field() {
        let o = p(&["rbind", "rro", "rnosuid", "rrw", "rnoatime", "rstrictatime"]);
        let r = o.rec.unwrap();
        assert_eq!(
            r.set,
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_STRICTATIME
        );
        assert_eq!(r.clr, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR__ATIME);
        assert_eq!(o.flags, 0, "recursive options are not mount(2) flags");
        assert!(o.data.is_empty());
        let r = p(&["rnoexec", "rexec", "ratime"]).rec.unwrap();
        assert_eq!(r.set, 0);
        assert_eq!(r.clr, libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR__ATIME);
        assert_eq!(p(&["ro"]).rec, None);
    }

    #[test]
    fn idmap_options() {
        assert_eq!(p(&["rbind", "idmap"]).idmap, Some(Idmap::Top));
        assert_eq!(p(&["ridmap"]).idmap, Some(Idmap::Recursive));
    }

    #[test]
    fn unsupported_options_are_errors() {
        assert!(parse(&["tmpcopyup".to_string()]).is_err());
        assert!(rootfs_propagation(Some("bogus")).is_err());
    }
}
