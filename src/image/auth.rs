//! Registry credentials from the files Docker and podman write:
//! `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), first match wins.
//!
//! Within one file, as Docker does: a credential helper named for the registry in
//! `credHelpers`, else the default helper `credsStore`, is asked with
//! `docker-credential-<name> get` (the server on stdin, `{"Username", "Secret"}` JSON
//! on stdout); when a helper applies, the file's inline `auths` entry is not used.
//! Without a helper, the inline `auths` entry (`auth` = base64 `user:password`, or
//! `username`/`password`) is.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::{Error, Result};

/// How long a credential helper may take (it may be waiting on a keyring).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
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

/// Whether a key of `auths` or `credHelpers` names `registry`.
fn key_matches(key: &str, registry: &str) -> bool {
    keys(registry)
        .iter()
        .any(|k| key.trim_end_matches('/') == k.trim_end_matches('/'))
        || key
            .strip_prefix("https://")
            .is_some_and(|h| h.split('/').next() == Some(registry))
}

/// What Docker passes to a helper: the hub's legacy URL, else the host.
fn server_url(registry: &str) -> &str {
    if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
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
/// has them. A helper that fails (other than "not found") is an error: pulling
/// anonymously instead would hide why a private image is refused.
pub fn credentials_for(registry: &str) -> Result<Option<(String, String)>> {
    for file in files() {
        let Ok(data) = std::fs::read(&file) else {
            continue;
        };
        let Ok(parsed) = serde_json::from_slice::<AuthFile>(&data) else {
            tracing::warn!(file = %file.display(), "ignoring unreadable auth file");
            continue;
        };
        if let Some(found) = from_file(&parsed, &file, registry)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn from_file(parsed: &AuthFile, file: &Path, registry: &str) -> Result<Option<(String, String)>> {
    let helper = parsed
        .cred_helpers
        .iter()
        .find(|(k, _)| key_matches(k, registry))
        .map(|(_, h)| h)
        .or(parsed.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        return run_helper(helper, server_url(registry)).map_err(|reason| {
            Error::CredentialHelper {
                helper: helper.clone(),
                file: file.to_path_buf(),
                registry: registry.to_string(),
                reason,
            }
        });
    }
    Ok(parsed
        .auths
        .iter()
        .filter(|(k, _)| key_matches(k, registry))
        .find_map(|(_, e)| decode(e)))
}

/// `docker-credential-<helper> get` with `server` on stdin. `Ok(None)` when the
/// helper has nothing for it.
fn run_helper(helper: &str, server: &str) -> Result<Option<(String, String)>, String> {
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!("{helper:?} is not a helper name"));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run {program}: {e} (install it, or remove it from the file)")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is answered by its exit status.
        let _ = stdin.write_all(server.as_bytes());
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{program} did not answer within {HELPER_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if !status.success() {
        // docker-credential-helpers' ErrCredentialsNotFound.
        if out.contains("credentials not found") {
            return Ok(None);
        }
        let said = if out.trim().is_empty() { err } else { out };
        return Err(format!("{program} get failed ({status}): {}", said.trim()));
    }
    parse_helper_output(&out).map(Some)
}

fn parse_helper_output(out: &str) -> Result<(String, String), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_str(out.trim())
        .map_err(|e| format!("unexpected answer (want {{\"Username\", \"Secret\"}} JSON): {e}"))?;
    if answer.username == "<token>" {
        return Err(
            "it returned an identity token, which stack does not support; \
                    store a username and password (or an access token as the password)"
                .into(),
        );
    }
    Ok((answer.username, answer.secret))
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

    #[test]
    fn helpers_win_over_inline_auths_as_in_docker() {
        let parsed: AuthFile = serde_json::from_str(
            r#"{"auths":{"r.example":{"auth":"YTpi"}},"credHelpers":{"r.example":"no-such-helper-x"},"credsStore":"other"}"#,
        )
        .unwrap();
        let err = from_file(&parsed, Path::new("/c.json"), "r.example").unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-no-such-helper-x"),
            "{err}"
        );
        let inline: AuthFile =
            serde_json::from_str(r#"{"auths":{"https://r.example/v2/":{"auth":"YTpi"}}}"#).unwrap();
        assert_eq!(
            from_file(&inline, Path::new("/c.json"), "r.example").unwrap(),
            Some(("a".into(), "b".into()))
        );
        assert!(run_helper("../x", "h").is_err());
    }

    #[test]
    fn helper_answers() {
        assert_eq!(
            parse_helper_output(r#"{"ServerURL":"h","Username":"u","Secret":"s"}"#).unwrap(),
            ("u".into(), "s".into())
        );
        assert!(parse_helper_output(r#"{"Username":"<token>","Secret":"t"}"#).is_err());
        assert!(parse_helper_output("nope").is_err());
    }
}
