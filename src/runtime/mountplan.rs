//! config.json `mounts` -> [`MountPlan`]s (parsed and checked in the parent).
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::Error;
use super::idmap::UsernsSource;
use super::mountopts;
use super::mountopts::Idmap;
use super::plan::{IdmapPlan, MountKind, MountPlan, cstr, root_path};

pub(crate) fn mount(m: &Mount, bundle: &Path, has_netns: bool) -> Result<MountPlan, Error> {
    let what = format!("mounts[{}]", m.destination().display());
    if !m.destination().is_absolute() {
        return Err(Error::Invalid {
            field: what,
            reason: "destination must be absolute".into(),
        });
    }
    let opts = mountopts::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "" });
    let dest = root_path(m.destination(), &what)?;
    let data = if opts.data.is_empty() {
        None
    } else {
        Some(cstr(opts.data.join(","), &what)?)
    };
    let (kind, dest_is_dir) = if opts.bind || typ == "bind" || typ == "rbind" {
        let src = m.source().as_ref().ok_or_else(|| Error::Invalid {
            field: what.clone(),
            reason: "bind mount without source".into(),
        })?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let meta = std::fs::metadata(&src).map_err(|source| Error::Io {
            op: "bind mount source",
            path: src.clone(),
            source,
        })?;
        let recursive = opts.recursive || typ == "rbind";
        (
            MountKind::Bind {
                source: cstr(&src, &what)?,
                recursive,
            },
            meta.is_dir(),
        )
    } else {
        let fstype = match typ {
            "" => {
                return Err(Error::Invalid {
                    field: what,
                    reason: "mount type missing".into(),
                });
            }
            t => t.to_string(),
        };
        let source = m
            .source()
            .as_ref()
            .map_or_else(|| fstype.clone(), |s| s.display().to_string());
        (
            MountKind::Fs {
                fstype: cstr(&fstype, &what)?,
                source: cstr(source, &what)?,
                data,
            },
            true,
        )
    };
    let sysfs_fallback = !has_netns
        && matches!(&kind, MountKind::Fs { fstype, .. } if fstype.as_bytes() == b"sysfs");
    Ok(MountPlan {
        dest,
        dest_is_dir,
        kind,
        flags: opts.flags,
        propagation: opts.propagation,
        rec: opts.rec,
        sysfs_fallback,
    })
}

/// The idmapped-mount part of `m`, if it is one: the `idmap`/`ridmap` option or
/// mount-level uidMappings/gidMappings (which alone mean `idmap`, as in runc).
/// Without mappings of its own the mount uses the container's user namespace.
pub(crate) fn idmap(
    m: &Mount,
    mp: &MountPlan,
    container: Option<&UsernsSource>,
) -> Result<Option<IdmapPlan>, Error> {
    let what = format!("mounts[{}]", m.destination().display());
    let opts = mountopts::parse(m.options().as_deref().unwrap_or_default())?;
    let lines = |v: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        v.as_ref().map(|m| {
            m.iter()
                .map(|e| format!("{} {} {}\n", e.container_id(), e.host_id(), e.size()))
                .collect::<String>()
        })
    };
    let (uid, gid) = (lines(m.uid_mappings()), lines(m.gid_mappings()));
    if opts.idmap.is_none() && uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    let MountKind::Bind { source, recursive } = &mp.kind else {
        return Err(Error::Invalid {
            field: what,
            reason: "idmapped mounts must be bind mounts (type \"bind\" or option \"rbind\")"
                .into(),
        });
    };
    let userns = match (uid, gid) {
        (Some(uid), Some(gid)) if !uid.is_empty() && !gid.is_empty() => {
            for list in [m.uid_mappings(), m.gid_mappings()].into_iter().flatten() {
                if list.iter().any(|e| e.size() == 0) || list.len() > 340 {
                    return Err(Error::Invalid {
                        field: what,
                        reason: "invalid mapping (size 0 or more than 340 lines)".into(),
                    });
                }
            }
            UsernsSource::Maps { uid, gid }
        }
        (None, None) => container.cloned().ok_or_else(|| Error::Invalid {
            field: what.clone(),
            reason: "idmap without uidMappings/gidMappings needs a user namespace in the \
                     container (linux.namespaces with mappings, or a path)"
                .into(),
        })?,
        _ => {
            return Err(Error::Invalid {
                field: what,
                reason: "uidMappings and gidMappings must both be given and non-empty".into(),
            });
        }
    };
    Ok(Some(IdmapPlan {
        source: source.clone(),
        dest: mp.dest.display.clone(),
        recursive_tree: *recursive,
        recursive_idmap: opts.idmap == Some(Idmap::Recursive),
        userns,
    }))
}

/// The mount point of the mount that holds `path` (longest matching mount
/// point in /proc/self/mountinfo).
pub(crate) fn mount_point_of(path: &Path) -> Result<PathBuf, Error> {
    let info = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(info).map_err(|source| Error::Io {
        op: "reading",
        path: info.into(),
        source,
    })?;
    let best = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|mp| PathBuf::from(mp.replace("\\040", " ")))
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len());
    Ok(best.unwrap_or_else(|| PathBuf::from("/")))
}

/// Take the cgroup mounts out of the ordered list when nothing depends on their
/// position (no later mount and no masked/read-only path nested with them):
/// they must wait until the init is in its cgroup (after GO), so the init does
/// every other mount, device and path first, overlapping the parent's making
/// of the cgroup.
pub(crate) fn defer_cgroup_mounts(
    mounts: &mut Vec<MountPlan>,
    cgroup_dests: &[PathBuf],
    protected: &[PathBuf],
) -> Vec<MountPlan> {
    let is_cg = |m: &MountPlan| {
        cgroup_dests
            .iter()
            .any(|d| Path::new(&m.dest.display).starts_with(d))
    };
    let related = |d: &Path| {
        cgroup_dests
            .iter()
            .any(|c| d.starts_with(c) || c.starts_with(d))
    };
    // Only mounts that came after the first cgroup mount change order.
    let first = mounts.iter().position(is_cg).unwrap_or(mounts.len());
    let nested = mounts[first..]
        .iter()
        .filter(|m| !is_cg(m))
        .any(|m| related(Path::new(&m.dest.display)))
        || protected
            .iter()
            .any(|p| cgroup_dests.iter().any(|c| p.starts_with(c)));
    if nested || first == mounts.len() {
        return Vec::new();
    }
    let (cg, rest): (Vec<_>, Vec<_>) = std::mem::take(mounts).into_iter().partition(|m| is_cg(m));
    *mounts = rest;
    cg
}
