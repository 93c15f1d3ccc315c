//! Image references, normalised as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`, `ghcr.io/o/r@sha256:...` keeps its digest.
use std::fmt;
use std::str::FromStr;

use super::{Digest, Error};

/// Registry host images without a host part come from.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A fully qualified reference: registry, repository, and a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// `registry/repository:tag` (or `@digest`), the key references are stored under.
    pub fn full(&self) -> String {
        self.to_string()
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form people type: `busybox` for Docker Hub's official images.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(short) => short.to_string(),
                None => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn invalid(reference: &str, reason: &str) -> Error {
    Error::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    }
}

fn valid_path_component(c: &str) -> bool {
    // distribution/reference: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    !c.is_empty()
        && c.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    // [\w][\w.-]{0,127}
    !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference, Error> {
        if s.is_empty() || s.len() > 4096 {
            return Err(invalid(s, "empty or too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before that
        // is a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(invalid(
                s,
                "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((host, repo))
                if host.contains(['.', ':'])
                    || host == "localhost"
                    || host.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (host.to_string(), repo.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !repository.split('/').all(valid_path_component) {
            return Err(invalid(
                s,
                "repository names are lowercase letters, digits and . _ - separated by /",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        s.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("user/app:1.2"), "docker.io/user/app:1.2");
        assert_eq!(full("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(full("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b:v1");
        assert_eq!(full("localhost/busybox:latest"), "localhost/busybox:latest");
        let d = Digest::of(b"x");
        assert_eq!(
            full(&format!("ghcr.io/o/r@{d}")),
            format!("ghcr.io/o/r@{d}")
        );
        assert_eq!(
            "busybox".parse::<Reference>().unwrap().familiar_name(),
            "busybox"
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "UPPER", "a:b:c", "a@sha256:00", "a/-b", "a:"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
    }
}
