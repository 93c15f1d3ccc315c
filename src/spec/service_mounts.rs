//! Filesystem side of a service: volumes (short and long syntax), tmpfs,
//! devices, secrets and configs.
use std::path::{Path, PathBuf};

use super::ctx::Ctx;
use super::paths;
use super::raw::{RawDevice, RawFileMount, RawMount};
use super::shapes::{OneOrMany, Scalar, ShortOrLong};
use crate::model::{Device, FileMount, Mount, MountKind};

const PROPAGATION: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

pub fn mounts(
    ctx: &mut Ctx<'_>,
    volumes: Option<&[ShortOrLong<RawMount>]>,
    tmpfs: Option<&OneOrMany>,
) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for (i, v) in volumes.unwrap_or_default().iter().enumerate() {
        let idx = i.to_string();
        let path = ["volumes", idx.as_str()];
        let parsed = match v {
            ShortOrLong::Short(s) => short_volume(ctx, s),
            ShortOrLong::Long(l) => long_volume(ctx, &path, l),
        };
        match parsed {
            Ok(m) => push_unique(ctx, &path, &mut out, m),
            Err(e) => ctx.err_help(
                &path,
                e,
                "volumes are SOURCE:TARGET[:ro|rw], TARGET, or a table with type/source/target",
            ),
        }
    }
    for (i, t) in tmpfs
        .map(|t| t.0.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let idx = i.to_string();
        let path = ["tmpfs", idx.as_str()];
        let (target, opts) = t.split_once(':').unwrap_or((t, ""));
        let (mut size, mut mode) = (None, None);
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            match opt.split_once('=') {
                Some(("size", v)) => size = ctx.size(&path, &Some(Scalar::text(v))),
                Some(("mode", v)) => mode = ctx.octal_mode(&path, &Some(Scalar::text(v))),
                _ => ctx.err(
                    &path,
                    format!("tmpfs option `{opt}` is not supported: expected size= or mode="),
                ),
            }
        }
        let m = Mount {
            target: target.to_string(),
            read_only: false,
            kind: MountKind::Tmpfs { size, mode },
        };
        push_unique(ctx, &path, &mut out, m);
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

fn push_unique(ctx: &mut Ctx<'_>, path: &[&str], out: &mut Vec<Mount>, m: Mount) {
    if !m.target.starts_with('/') {
        ctx.err(
            path,
            format!("mount target `{}` must be an absolute path", m.target),
        );
    } else if out.iter().any(|o| o.target == m.target) {
        ctx.err(path, format!("two mounts at `{}`", m.target));
    } else {
        out.push(m);
    }
}

/// `z`/`Z`: relabel the bind source for SELinux, which stack does not do. Where
/// SELinux is not enabled there is nothing to relabel: accepted with a note.
fn relabel(ctx: &mut Ctx<'_>, option: &str) -> Result<(), String> {
    let note = relabel_note(option, Path::new("/sys/fs/selinux/enforce").exists())?;
    ctx.warn(note);
    Ok(())
}

/// The note (SELinux absent) or the error (SELinux enabled) for `option`.
fn relabel_note(option: &str, selinux_enabled: bool) -> Result<String, String> {
    if selinux_enabled {
        return Err(format!(
            "volume option `{option}` asks for SELinux relabeling, which stack does not support, \
             and SELinux is enabled on this host: drop `{option}` and label the host path \
             yourself (e.g. chcon -Rt container_file_t PATH)"
        ));
    }
    Ok(format!(
        "volume option `{option}` ignored: SELinux is not enabled on this host, nothing to relabel"
    ))
}

/// A short-syntax source is a path when it starts with `/`, `.` or `~`.
fn is_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

fn short_volume(ctx: &mut Ctx<'_>, s: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [src, t] => (Some(*src), *t, ""),
        [src, t, o] => (Some(*src), *t, *o),
        _ => return Err(format!("invalid volume `{s}`: too many `:`")),
    };
    let mut read_only = false;
    let mut nocopy = false;
    let mut propagation = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => nocopy = true,
            "z" | "Z" => relabel(ctx, o)?,
            p if PROPAGATION.contains(&p) => propagation = Some(p.to_string()),
            other => return Err(format!("unknown volume option `{other}` in `{s}`")),
        }
    }
    let kind = match source {
        None => MountKind::Volume {
            source: None,
            nocopy,
            subpath: None,
        },
        Some(src) if is_path(src) => MountKind::Bind {
            source: paths::absolute(ctx.base, src),
            // The short syntax creates a missing host directory (Docker legacy).
            create_host_path: true,
            propagation,
        },
        Some(src) => MountKind::Volume {
            source: Some(src.to_string()),
            nocopy,
            subpath: None,
        },
    };
    Ok(Mount {
        target: target.to_string(),
        read_only,
        kind,
    })
}

fn long_volume(ctx: &mut Ctx<'_>, path: &[&str], l: &RawMount) -> Result<Mount, String> {
    let kind = match l.kind.as_str() {
        "bind" => {
            let src = l.source.as_deref().ok_or("a bind mount needs `source`")?;
            let propagation = l.bind.as_ref().and_then(|b| b.propagation.clone());
            if let Some(p) = &propagation
                && !PROPAGATION.contains(&p.as_str())
            {
                return Err(format!("unknown propagation `{p}`"));
            }
            match l.bind.as_ref().and_then(|b| b.selinux.as_deref()) {
                None => {}
                Some(o @ ("z" | "Z")) => relabel(ctx, o)?,
                Some(o) => return Err(format!("bind.selinux `{o}` must be z or Z")),
            }
            MountKind::Bind {
                source: paths::absolute(ctx.base, src),
                create_host_path: l
                    .bind
                    .as_ref()
                    .and_then(|b| b.create_host_path)
                    .unwrap_or(false),
                propagation,
            }
        }
        "volume" => MountKind::Volume {
            source: l.source.clone().filter(|s| !s.is_empty()),
            nocopy: l.volume.as_ref().and_then(|v| v.nocopy).unwrap_or(false),
            subpath: l.volume.as_ref().and_then(|v| v.subpath.clone()),
        },
        "tmpfs" => {
            if l.source.is_some() {
                return Err("a tmpfs mount has no `source`".into());
            }
            let t = l.tmpfs.as_ref();
            let mut p: Vec<&str> = path.to_vec();
            p.push("tmpfs");
            MountKind::Tmpfs {
                size: ctx.size(
                    &[p.as_slice(), &["size"]].concat(),
                    &t.and_then(|t| t.size.clone()),
                ),
                mode: ctx.octal_mode(
                    &[p.as_slice(), &["mode"]].concat(),
                    &t.and_then(|t| t.mode.clone()),
                ),
            }
        }
        other => {
            return Err(format!(
                "mount type `{other}` is not supported: expected bind, volume or tmpfs"
            ));
        }
    };
    Ok(Mount {
        target: l.target.clone(),
        read_only: l.read_only.unwrap_or(false),
        kind,
    })
}

pub fn devices(ctx: &mut Ctx<'_>, raw: Option<&[ShortOrLong<RawDevice>]>) -> Vec<Device> {
    let mut out = Vec::new();
    for (i, d) in raw.unwrap_or_default().iter().enumerate() {
        let (host, container, perms) = match d {
            ShortOrLong::Short(s) => {
                let mut it = s.splitn(3, ':');
                let host = it.next().unwrap_or_default().to_string();
                (
                    host.clone(),
                    it.next().map_or(host, str::to_string),
                    it.next().map(str::to_string),
                )
            }
            ShortOrLong::Long(l) => (
                l.source.clone(),
                l.target.clone().unwrap_or_else(|| l.source.clone()),
                l.permissions.clone(),
            ),
        };
        let permissions = perms.unwrap_or_else(|| "rwm".into());
        if !host.starts_with('/') || !container.starts_with('/') {
            ctx.err(
                &["devices", &i.to_string()],
                "device paths must be absolute",
            );
        } else if permissions.is_empty() || !permissions.chars().all(|c| "rwm".contains(c)) {
            ctx.err(
                &["devices", &i.to_string()],
                format!("device permissions `{permissions}`: expected some of rwm"),
            );
        } else {
            out.push(Device {
                host: PathBuf::from(host),
                container: PathBuf::from(container),
                permissions,
            });
        }
    }
    out
}

/// Service-level `secrets:` / `configs:` references.
pub fn file_mounts(
    ctx: &mut Ctx<'_>,
    key: &str,
    raw: Option<&[ShortOrLong<RawFileMount>]>,
) -> Vec<FileMount> {
    let mut out = Vec::new();
    for (i, f) in raw.unwrap_or_default().iter().enumerate() {
        let idx = i.to_string();
        let (source, target, uid, gid, mode) = match f {
            ShortOrLong::Short(s) => (s.clone(), None, None, None, None),
            ShortOrLong::Long(l) => (
                l.source.clone(),
                l.target.clone(),
                l.uid
                    .as_ref()
                    .and_then(|u| ctx.parse::<u32>(&[key, &idx, "uid"], &u.0, "a numeric uid")),
                l.gid
                    .as_ref()
                    .and_then(|g| ctx.parse::<u32>(&[key, &idx, "gid"], &g.0, "a numeric gid")),
                ctx.octal_mode(&[key, &idx, "mode"], &l.mode),
            ),
        };
        // Secrets live under /run/secrets unless an absolute target is given;
        // configs default to /<name> (Compose).
        let target = match (key, target) {
            (_, Some(t)) if t.starts_with('/') => t,
            ("secrets", Some(t)) => format!("/run/secrets/{t}"),
            ("secrets", None) => format!("/run/secrets/{source}"),
            (_, Some(t)) => format!("/{t}"),
            (_, None) => format!("/{source}"),
        };
        out.push(FileMount {
            source,
            target,
            uid,
            gid,
            mode,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relabel_options_are_a_note_without_selinux_and_an_error_with_it() {
        let note = relabel_note("z", false).unwrap();
        assert!(note.contains("SELinux is not enabled") && !note.contains('\n'));
        let err = relabel_note("Z", true).unwrap_err();
        assert!(
            err.contains("not support") && err.contains("chcon"),
            "{err}"
        );
    }
}
