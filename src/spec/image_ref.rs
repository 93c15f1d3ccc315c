//! Image references as written in `image:`, resolved as Docker resolves them.
use std::path::Path;

use crate::model::ImageSource;

/// Parses `image` (registry reference or local transport). Local paths are
/// made absolute against `base`; they need not exist yet.
pub fn parse_image(text: &str, base: &Path) -> Result<ImageSource, String> {
    let abs = |p: &str| -> Result<std::path::PathBuf, String> {
        if p.is_empty() {
            return Err(format!("image `{text}` names no path"));
        }
        Ok(super::paths::absolute(base, p))
    };
    if let Some(rest) = text.strip_prefix("oci:") {
        let (path, tag) = crate::model::split_layout_tag(rest);
        return Ok(ImageSource::OciLayout {
            path: abs(path)?,
            tag: tag.map(str::to_string),
        });
    }
    if let Some(rest) = text.strip_prefix("oci-archive:") {
        return Ok(ImageSource::OciArchive(abs(rest)?));
    }
    if let Some(rest) = text.strip_prefix("docker-archive:") {
        return Ok(ImageSource::DockerArchive(abs(rest)?));
    }
    for transport in ["docker://", "containers-storage:", "dir:", "docker-daemon:"] {
        if text.starts_with(transport) {
            return Err(format!(
                "image transport `{transport}` is not supported: use a registry reference, oci:PATH[:TAG], oci-archive:PATH, docker-archive:PATH or rootfs"
            ));
        }
    }
    normalize_reference(text).map(ImageSource::Registry)
}

/// `busybox` -> `docker.io/library/busybox:latest`; keeps explicit
/// registries, tags and `@sha256:` digests.
pub fn normalize_reference(text: &str) -> Result<String, String> {
    let bad = |why: &str| format!("invalid image reference `{text}`: {why}");
    if text.is_empty() {
        return Err(bad("empty"));
    }
    let (name_tag, digest) = match text.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (text, None),
    };
    if let Some(d) = digest {
        let hex = d
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("digest must be sha256:<64 hex digits>"))?;
        if hex.len() != 64
            || !hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            return Err(bad("digest must be sha256:<64 lowercase hex digits>"));
        }
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        let valid = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(bad(
                "tag must be letters, digits, `_`, `.`, `-` (at most 128)",
            ));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let has_registry = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    let registry = if has_registry {
        parts.remove(0)
    } else {
        "docker.io"
    };
    if let Some((_, port)) = registry.split_once(':')
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad("registry port must be a number"));
    }
    if registry == "docker.io" && parts.len() == 1 {
        parts.insert(0, "library");
    }
    for p in &parts {
        let valid = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && p.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return Err(bad(
                "repository names are lower-case letters, digits and `._-`",
            ));
        }
    }
    let mut out = format!("{registry}/{}", parts.join("/"));
    match (tag, digest) {
        (Some(t), _) => out.push_str(&format!(":{t}")),
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn resolves_like_docker() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        let cases = [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            ("busybox:1.36", "docker.io/library/busybox:1.36".into()),
            ("user/app", "docker.io/user/app:latest".into()),
            (
                "docker.io/library/busybox:1.36",
                "docker.io/library/busybox:1.36".into(),
            ),
            ("ghcr.io/o/r/x:v1", "ghcr.io/o/r/x:v1".into()),
            ("localhost:5000/x", "localhost:5000/x:latest".into()),
            (
                &*format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                &*format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                normalize_reference(text).as_deref(),
                Ok(want.as_str()),
                "{text}"
            );
        }
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "x@sha256:abc",
            "x@md5:aa",
            "a//b",
            "x:t/a",
        ] {
            assert!(normalize_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_transports_resolve_paths() {
        let base = Path::new("/srv/stacks/hello");
        assert_eq!(
            parse_image("oci:../../images/busybox:latest", base),
            Ok(ImageSource::OciLayout {
                path: PathBuf::from("/srv/images/busybox"),
                tag: Some("latest".into())
            })
        );
        assert_eq!(
            parse_image("oci-archive:img.tar", base),
            Ok(ImageSource::OciArchive(PathBuf::from(
                "/srv/stacks/hello/img.tar"
            )))
        );
        assert_eq!(
            parse_image("docker-archive:/x.tar", base),
            Ok(ImageSource::DockerArchive(PathBuf::from("/x.tar")))
        );
        assert!(parse_image("docker://busybox", base).is_err());
    }
}
