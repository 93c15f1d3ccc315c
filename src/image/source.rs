//! Where a service's image comes from, and making sure it is in the store.
use std::path::{Path, PathBuf};

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
    /// Pull when the store does not have the reference (Compose's default).
    #[default]
    Missing,
    /// Never pull: a missing image is an error.
    Never,
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
        let pull = match policy {
            PullPolicy::Always => true,
            PullPolicy::Never => false,
            PullPolicy::Missing => match self.resolve(reference) {
                Ok(image) => return Ok(image),
                Err(e) if e.is_not_found() => true,
                Err(e) => return Err(e),
            },
        };
        if pull {
            let id = self.pull(reference, opts)?;
            return self.image(&id);
        }
        self.ensure(source)
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
