//! Registry credentials from the files Docker and podman write:
//! `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). Only inline
//! `auths` entries are read; credential helpers (`credsStore`) are not run.
use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

fn files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_RUNTIME_DIR") {
        out.push(PathBuf::from(p).join("containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(p) => out.push(PathBuf::from(p).join("config.json")),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                out.push(PathBuf::from(home).join(".docker/config.json"));
            }
        }
    }
    out
}

/// Keys a registry may be stored under (Docker Hub has historic spellings).
fn keys(registry: &str) -> Vec<String> {
    if registry == "docker.io" {
        return [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
}

fn decode(entry: &AuthEntry) -> Option<(String, String)> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Some((u.clone(), p.clone()));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_ref()?.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Username and password for `registry` (`host[:port]`), from the first file that
/// has them.
pub fn credentials_for(registry: &str) -> Option<(String, String)> {
    for file in files() {
        let Ok(data) = std::fs::read(&file) else {
            continue;
        };
        let Ok(parsed) = serde_json::from_slice::<AuthFile>(&data) else {
            tracing::warn!(file = %file.display(), "ignoring unreadable auth file");
            continue;
        };
        for key in keys(registry) {
            let found = parsed.auths.iter().find(|(k, _)| {
                k.trim_end_matches('/') == key.trim_end_matches('/')
                    || k.strip_prefix("https://")
                        .is_some_and(|h| h.split('/').next() == Some(registry))
            });
            if let Some(creds) = found.and_then(|(_, e)| decode(e)) {
                return Some(creds);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_docker_auth_entries() {
        let entry = AuthEntry {
            auth: Some(base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et")),
            ..Default::default()
        };
        assert_eq!(decode(&entry), Some(("alice".into(), "s3cr:et".into())));
        assert!(keys("docker.io").contains(&"https://index.docker.io/v1/".to_string()));
    }
}
