//! A service's volumes, binds, tmpfs, secrets and configs as OCI mounts, with the
//! host side (named volumes, secret tmpfs) made ready.
use std::collections::BTreeMap;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Error;
use crate::model::{
    FileMount, FileObject, FileSource, Mount, MountKind, Service, Stack, Volume, VolumeDriver,
};
use crate::storage::{self, BindSpec, SecretFile, TmpfsSpec, VolumeSpec, Volumes};
use crate::supervisor::record::ContainerPaths;

/// The storage crate's view of a declared volume.
pub fn volume_spec(v: &Volume) -> VolumeSpec {
    let mut driver_opts = BTreeMap::new();
    match &v.driver {
        VolumeDriver::Local => {}
        VolumeDriver::Bind { device } => {
            driver_opts.insert("type".into(), "none".into());
            driver_opts.insert("o".into(), "bind".into());
            driver_opts.insert("device".into(), device.display().to_string());
        }
        VolumeDriver::Tmpfs { size, mode } => {
            driver_opts.insert("type".into(), "tmpfs".into());
            driver_opts.insert("device".into(), "tmpfs".into());
            let mut o: Vec<String> = Vec::new();
            o.extend(size.map(|s| format!("size={s}")));
            o.extend(mode.map(|m| format!("mode={m:o}")));
            if !o.is_empty() {
                driver_opts.insert("o".into(), o.join(","));
            }
        }
    }
    VolumeSpec {
        name: Some(v.name.clone()),
        external: v.external,
        driver: None,
        driver_opts,
        labels: v.labels.clone(),
    }
}

fn oci(m: storage::Mount) -> Value {
    json!({ "destination": m.destination, "type": m.kind, "source": m.source, "options": m.options })
}

/// Where a service's container gets its volumes: the volume store, the stack, the
/// container's name and mounted root, and the image's `Volumes`.
pub struct Site<'a> {
    pub volumes: &'a Volumes,
    pub stack: &'a Stack,
    pub container: &'a str,
    /// The mounted root filesystem (copy-up reads from it).
    pub rootfs: &'a Path,
    /// The image config's `Volumes` paths.
    pub image_volumes: &'a [String],
}

/// The service's `volumes:` and `tmpfs`, plus an anonymous volume for each of the
/// image's `Volumes` that no mount of the service covers (Docker's rule), parents
/// before children.
fn wanted_mounts(svc: &Service, image_volumes: &[String]) -> Vec<Mount> {
    let mut all = svc.volumes.clone();
    for path in image_volumes {
        let Some(target) = clean_target(path) else {
            tracing::warn!(
                service = svc.name,
                path,
                "ignoring an image VOLUME that is not an absolute path below /"
            );
            continue;
        };
        if all
            .iter()
            .any(|m| clean_target(&m.target).as_deref() == Some(&target))
        {
            continue;
        }
        all.push(Mount {
            target,
            read_only: false,
            kind: MountKind::Volume {
                source: None,
                nocopy: false,
                subpath: None,
            },
        });
    }
    // A parent path sorts before the paths below it, so it is mounted first.
    all.sort_by(|a, b| a.target.cmp(&b.target));
    all
}

/// `/data/` -> `/data`; `None` for relative paths, `..` and `/` itself.
fn clean_target(path: &str) -> Option<String> {
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
        return None;
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    (!parts.is_empty()).then(|| format!("/{}", parts.join("/")))
}

/// Mounts of `svc`'s volumes (see [`wanted_mounts`]); named volumes are created on
/// first use, and empty ones filled from the image. Returns the mounts and the
/// names of the volumes used (to hold them against pruning).
pub fn service_mounts(
    site: &Site,
    svc: &Service,
    owner: (u32, u32),
) -> Result<(Vec<Value>, Vec<String>), Error> {
    let Site {
        volumes,
        stack,
        container,
        rootfs,
        image_volumes,
    } = *site;
    let mut out = Vec::new();
    let mut used = Vec::new();
    for m in &wanted_mounts(svc, image_volumes) {
        let mount = match &m.kind {
            MountKind::Bind {
                source,
                create_host_path,
                propagation,
            } => {
                let spec = BindSpec {
                    source: source.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    create_host_path: *create_host_path,
                    propagation: propagation.clone(),
                };
                storage::bind_mount(&spec, &stack.project_dir, Some(owner))?
            }
            MountKind::Volume {
                source,
                nocopy,
                subpath,
            } => {
                let (name, mut dir) = match source {
                    Some(key) => {
                        let decl = stack.volumes.get(key).ok_or_else(|| {
                            Error::Invalid(format!("volume {key} is not declared"))
                        })?;
                        let spec = volume_spec(decl);
                        let dir = volumes.ensure(&stack.name, key, &spec)?;
                        (storage::volume_name(&stack.name, key, &spec), dir)
                    }
                    None => volumes.anonymous(&stack.name, container, &m.target)?,
                };
                volumes.populate(&name, rootfs, &m.target, *nocopy)?;
                if let Some(sub) = subpath {
                    dir = safe_subpath(&dir, sub)?;
                }
                used.push(name);
                storage::volume_mount(&dir, &m.target, m.read_only)?
            }
            MountKind::Tmpfs { size, mode } => storage::tmpfs_mount(&TmpfsSpec {
                target: m.target.clone(),
                size: *size,
                mode: *mode,
                read_only: m.read_only,
            })?,
        };
        out.push(oci(mount));
    }
    Ok((out, used))
}

/// `volume.subpath`: a directory inside the volume, never outside it.
fn safe_subpath(dir: &Path, sub: &str) -> Result<PathBuf, Error> {
    let p = Path::new(sub);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::Invalid(format!(
            "volume subpath {sub:?} must be relative, without '..'"
        )));
    }
    let full = dir.join(p);
    let real = full.canonicalize().map_err(|e| Error::Io {
        what: format!("volume subpath {}", full.display()),
        source: e,
    })?;
    if !real.starts_with(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())) {
        return Err(Error::Invalid(format!(
            "volume subpath {sub:?} leaves the volume"
        )));
    }
    Ok(real)
}

/// Secrets and configs on a private tmpfs of this container (`dir`), so the
/// host file may stay 0400 root and no other container can read them. What
/// was copied is recorded ([`ContainerPaths::files_plan`]) for a start after
/// a reboot, which wipes the tmpfs: file sources are read again from the
/// host; inline `content:` and values from the environment of `up` (gone by
/// then) are kept in `files-src/`, root-only (0700), as the stack file holds
/// the former on disk anyway.
pub fn file_mounts(
    stack: &Stack,
    svc: &Service,
    dir: &Path,
    owner: (u32, u32),
) -> Result<Vec<Value>, Error> {
    let wanted: Vec<(&FileMount, &FileObject, u32)> = svc
        .secrets
        .iter()
        .map(|m| (m, stack.secrets.get(&m.source), 0o444))
        .chain(
            svc.configs
                .iter()
                .map(|m| (m, stack.configs.get(&m.source), 0o444)),
        )
        .map(|(m, obj, mode)| {
            obj.map(|o| (m, o, mode)).ok_or_else(|| {
                Error::Invalid(format!("secret or config {} is not declared", m.source))
            })
        })
        .collect::<Result<_, _>>()?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let staging = dir.join("files-src");
    std::fs::create_dir_all(&staging)
        .and_then(|()| std::fs::set_permissions(&staging, Permissions::from_mode(0o700)))
        .map_err(|e| Error::Io {
            what: staging.display().to_string(),
            source: e,
        })?;
    let mut files = Vec::new();
    for (i, (m, obj, mode)) in wanted.into_iter().enumerate() {
        let source = match &obj.source {
            FileSource::File(p) => p.clone(),
            FileSource::Environment(value) | FileSource::Content(value) => {
                let p = staging.join(i.to_string());
                crate::state::write_atomic(&p, value.as_bytes()).map_err(|e| Error::Io {
                    what: p.display().to_string(),
                    source: e,
                })?;
                p
            }
        };
        files.push(SecretFile {
            source,
            target: m.target.clone(),
            uid: m.uid.unwrap_or(owner.0),
            gid: m.gid.unwrap_or(owner.1),
            mode: m.mode.unwrap_or(mode),
        });
    }
    let plan = ContainerPaths {
        dir: dir.to_path_buf(),
    }
    .files_plan();
    crate::state::write_json(&plan, &files).map_err(|e| Error::Io {
        what: plan.display().to_string(),
        source: e,
    })?;
    let mounts = storage::materialise_secrets(&dir.join("files"), &files)?;
    Ok(mounts.into_iter().map(oci).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testing::service;

    #[test]
    fn image_volumes_become_anonymous_unless_a_mount_covers_them() {
        let svc = service("volumes = [\"/srv/b:/data\", { type = \"tmpfs\", target = \"/tmp\" }]");
        let image = [
            "/data/".to_string(),
            "/var/cache".into(),
            "/tmp".into(),
            "rel".into(),
            "/".into(),
            "/a/../b".into(),
        ];
        let got: Vec<(String, bool)> = wanted_mounts(&svc, &image)
            .into_iter()
            .map(|m| {
                let anon = matches!(m.kind, MountKind::Volume { source: None, .. });
                (m.target, anon)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/data".to_string(), false),
                ("/tmp".to_string(), false),
                ("/var/cache".to_string(), true),
            ]
        );
    }

    #[test]
    fn targets_are_cleaned() {
        assert_eq!(clean_target("/a//b/./c/").as_deref(), Some("/a/b/c"));
        assert_eq!(clean_target("/"), None);
        assert_eq!(clean_target("a/b"), None);
        assert_eq!(clean_target("/a/../etc"), None);
    }
}
