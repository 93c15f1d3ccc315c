//! Where a service's image comes from, and making sure it is in the store.
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::image::ImageConfiguration;

use super::{Error, Image, Result, Store};

/// The origin of a container's root filesystem (mirrors `model::ImageSource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A registry reference, `busybox` or `ghcr.io/o/r:tag`.
    Registry(String),
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    OciLayout { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH`: a tar of an OCI image layout.
    OciArchive(PathBuf),
    /// `docker-archive:PATH`: `docker save` output.
    DockerArchive(PathBuf),
    /// `rootfs = PATH`: a plain directory used as the only (read-only) layer.
    Rootfs(PathBuf),
}

impl Source {
    /// Parse an `image =` string; relative paths are taken from `base` (the stack
    /// file's directory).
    pub fn parse(s: &str, base: &Path) -> Source {
        let path = |p: &str| base.join(p);
        if let Some(rest) = s.strip_prefix("oci:") {
            // The tag is after the last ':' when that part has no '/'.
            return match rest.rsplit_once(':') {
                Some((p, tag)) if !tag.contains('/') && !tag.is_empty() => Source::OciLayout {
                    path: path(p),
                    tag: Some(tag.to_string()),
                },
                _ => Source::OciLayout {
                    path: path(rest),
                    tag: None,
                },
            };
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            return Source::OciArchive(path(rest));
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Source::DockerArchive(path(rest));
        }
        Source::Registry(s.strip_prefix("docker://").unwrap_or(s).to_string())
    }
}

/// Compose's `pull_policy` for registry images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull every time.
    Always,
    /// Pull when the store does not have the reference (Compose's default), or has
    /// it for another platform than the one asked for.
    #[default]
    Missing,
    /// Never pull: a missing image is an error.
    Never,
    /// Pull when the reference was last pulled (or imported) longer ago than this:
    /// `daily`, `weekly`, `every_<duration>`.
    Every(Duration),
}

impl Store {
    /// [`Store::ensure`], pulling registry images as `policy` says; `opts.platform`
    /// also picks the image of a multi-platform OCI layout.
    pub fn ensure_with(
        &self,
        source: &Source,
        policy: PullPolicy,
        opts: &super::PullOptions,
    ) -> Result<Image> {
        let reference = match source {
            Source::Registry(reference) => reference,
            Source::OciLayout { path, tag } if opts.platform.is_some() => {
                let platform = opts.platform.clone().unwrap_or_else(super::Platform::host);
                let id = self.import_oci_layout_for(path, tag.as_deref(), &platform)?;
                return self.image(&id);
            }
            _ => return self.ensure(source),
        };
        let have = match self.resolve(reference) {
            Ok(image) => Some(image),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let pull = match (&have, policy) {
            (_, PullPolicy::Always) => true,
            (None, PullPolicy::Never) => {
                return Err(Error::NotFound(format!(
                    "{reference} (pull_policy is never: run `stack pull {reference}` first)"
                )));
            }
            (Some(_), PullPolicy::Never) => false,
            (None, _) => true,
            (Some(image), PullPolicy::Missing) => opts
                .platform
                .as_ref()
                .is_some_and(|p| !image_is_for(image, p)),
            (Some(_), PullPolicy::Every(age)) => {
                let last = self.last_refreshed(reference)?;
                super::now_secs().saturating_sub(last) >= age.as_secs()
            }
        };
        match (pull, have) {
            (false, Some(image)) => Ok(image),
            _ => {
                let id = self.pull(reference, opts)?;
                self.image(&id)
            }
        }
    }

    /// Make the image of `source` available and return it. Local layouts and archives
    /// are (re)imported, which costs only reading their index when the blobs are
    /// already stored; registry images must be in the store (`stack pull`).
    pub fn ensure(&self, source: &Source) -> Result<Image> {
        match source {
            Source::Registry(reference) => self.resolve(reference).map_err(|e| match e {
                Error::NotFound(r) => Error::NotFound(format!("{r} (run `stack pull {r}`)")),
                e => e,
            }),
            Source::OciLayout { path, tag } => {
                let id = self.import_oci_layout(path, tag.as_deref())?;
                self.image(&id)
            }
            Source::OciArchive(path) => {
                let id = self.import_oci_archive(path, None)?;
                self.image(&id)
            }
            Source::DockerArchive(path) => {
                let id = self.import_docker_archive(path)?;
                self.image(&id)
            }
            Source::Rootfs(path) => rootfs_image(path),
        }
    }
}

/// Whether a stored image was built for `platform` (variant compared only when
/// both name one).
fn image_is_for(image: &Image, platform: &super::Platform) -> bool {
    let c = &image.config;
    c.os().to_string() == platform.os
        && c.architecture().to_string() == platform.architecture
        && match (c.variant(), &platform.variant) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

fn rootfs_image(path: &Path) -> Result<Image> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::other("rootfs is not a directory"),
        ));
    }
    Ok(Image {
        id: None,
        config_digest: None,
        config: ImageConfiguration::default(),
        layers: vec![path.to_path_buf()],
        names: Vec::new(),
        healthcheck: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_strings() {
        let base = Path::new("/s");
        assert_eq!(
            Source::parse("oci:../../images/busybox:latest", base),
            Source::OciLayout {
                path: PathBuf::from("/s/../../images/busybox"),
                tag: Some("latest".into())
            }
        );
        assert_eq!(
            Source::parse("oci:/abs/dir", base),
            Source::OciLayout {
                path: PathBuf::from("/abs/dir"),
                tag: None
            }
        );
        assert_eq!(
            Source::parse("busybox:1", base),
            Source::Registry("busybox:1".into())
        );
        assert_eq!(
            Source::parse("docker-archive:x.tar", base),
            Source::DockerArchive(PathBuf::from("/s/x.tar"))
        );
    }
}
