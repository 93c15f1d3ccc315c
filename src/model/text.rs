//! Text forms of model values, used for `stack config` output and state.
use std::fmt;
use std::path::PathBuf;

use super::{ImageSource, RestartPolicy};

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Registry(r) => f.write_str(r),
            ImageSource::OciLayout { path, tag: None } => write!(f, "oci:{}", path.display()),
            ImageSource::OciLayout {
                path,
                tag: Some(tag),
            } => write!(f, "oci:{}:{tag}", path.display()),
            ImageSource::OciArchive(p) => write!(f, "oci-archive:{}", p.display()),
            ImageSource::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
            ImageSource::Rootfs(p) => write!(f, "rootfs:{}", p.display()),
        }
    }
}

impl From<ImageSource> for String {
    fn from(i: ImageSource) -> String {
        i.to_string()
    }
}

impl TryFrom<String> for ImageSource {
    type Error = String;

    /// Parses the printed form back; paths are taken as they are (already
    /// absolute in printed output).
    fn try_from(s: String) -> Result<ImageSource, String> {
        if let Some(rest) = s.strip_prefix("rootfs:") {
            return Ok(ImageSource::Rootfs(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            return Ok(ImageSource::OciArchive(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Ok(ImageSource::DockerArchive(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = split_layout_tag(rest);
            return Ok(ImageSource::OciLayout {
                path: PathBuf::from(path),
                tag: tag.map(str::to_string),
            });
        }
        if s.is_empty() {
            return Err("empty image reference".to_string());
        }
        Ok(ImageSource::Registry(s))
    }
}

/// `PATH[:TAG]` of the `oci:` transport: the tag is what follows the last
/// `:` after the last `/` (as skopeo reads it).
pub fn split_layout_tag(rest: &str) -> (&str, Option<&str>) {
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&rest[..at], Some(&rest[at + 1..]).filter(|t| !t.is_empty()))
        }
        None => (rest, None),
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl From<RestartPolicy> for String {
    fn from(r: RestartPolicy) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for RestartPolicy {
    type Error = String;

    fn try_from(s: String) -> Result<RestartPolicy, String> {
        s.parse()
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;

    /// Compose's `restart:` values.
    fn from_str(s: &str) -> Result<RestartPolicy, String> {
        match s {
            "no" | "\"no\"" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(|n| RestartPolicy::OnFailure {
                        max_retries: Some(n),
                    })
                    .map_err(|_| format!("invalid retry count in restart policy `{s}`")),
                None => Err(format!(
                    "invalid restart policy `{s}`: expected no, always, on-failure[:N] or unless-stopped"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_text_round_trips() {
        for text in [
            "docker.io/library/busybox:latest",
            "oci:/x/busybox:latest",
            "oci:/x/busybox",
            "oci-archive:/x/a.tar",
            "docker-archive:/x/a.tar",
            "rootfs:/x/root",
        ] {
            let img = ImageSource::try_from(text.to_string()).expect(text);
            assert_eq!(img.to_string(), text);
        }
        assert_eq!(split_layout_tag("../a:b/c:1.0"), ("../a:b/c", Some("1.0")));
    }

    #[test]
    fn restart_text_round_trips() {
        for text in [
            "no",
            "always",
            "on-failure",
            "on-failure:3",
            "unless-stopped",
        ] {
            let r: RestartPolicy = text.parse().expect(text);
            assert_eq!(r.to_string(), text);
        }
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
    }
}
