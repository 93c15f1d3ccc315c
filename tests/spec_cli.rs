//! The `config`, `validate` and `schema` verbs as a user runs them. No root.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stack(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::stack_bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("run stack")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_exits_0_when_valid_and_1_with_all_errors() {
    let web = repo().join("examples/stacks/web");
    let ok = stack(&web, &["validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("valid (3 services"), "{}", stdout(&ok));

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: x\n    imgae: y\n  b:\n    image: x\n    restart: sometimes\n",
    )
    .expect("write");
    let bad = stack(dir.path(), &["validate"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(err.contains("compose.yaml:4:5"), "{err}");
    assert!(err.contains("compose.yaml:7:14"), "{err}");
    assert!(err.contains("2 errors in stack file"), "{err}");

    let json = stack(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json errors");
    assert_eq!(v[0]["line"], 4);
    assert_eq!(v[0]["column"], 5);
    assert_eq!(v[0]["file"], "compose.yaml");
}

#[test]
fn config_formats_parse_back_and_agree() {
    let dir = repo().join("examples/stacks/limits");
    let json = stack(&dir, &["config", "--format", "json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let from_json: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
    let toml_out = stack(&dir, &["config", "--format", "toml"]);
    let from_toml: serde_json::Value = toml::from_str(&stdout(&toml_out)).expect("toml");
    let yaml_out = stack(&dir, &["config", "--format", "yaml"]);
    let from_yaml: serde_json::Value = serde_saphyr::from_str(&stdout(&yaml_out)).expect("yaml");
    assert_eq!(from_json, from_toml);
    assert_eq!(from_json, from_yaml);
    assert_eq!(
        from_json["services"]["capped"]["resources"]["memory"],
        32 << 20
    );
    assert_eq!(from_json["services"]["deployed"]["replicas"], 2);
    assert_eq!(from_json["services"]["capped"]["restart"], "on-failure:5");
}

#[test]
fn config_services_and_hash() {
    let dir = repo().join("examples/stacks/compose");
    let names = stack(&dir, &["config", "--services"]);
    assert_eq!(stdout(&names), "app\ncache\n");
    let names = stack(&dir, &["--profile", "debug", "config", "--services"]);
    assert_eq!(stdout(&names), "app\ncache\ndebug\n");
    let named = stack(&dir, &["config", "--services", "debug"]);
    assert_eq!(stdout(&named), "app\ncache\ndebug\n");
    let hashes = stack(&dir, &["config", "--hash"]);
    let text = stdout(&hashes);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines.iter().all(|l| l
            .split(' ')
            .nth(1)
            .is_some_and(|h| h.starts_with("v1:") && h.len() == 67)),
        "{text}"
    );
    // Same files, same hashes.
    assert_eq!(stdout(&stack(&dir, &["config", "--hash"])), text);
}

#[test]
fn compat_report_lists_unsupported_keys_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("compose.yaml"),
        "version: '3'\nservices:\n  a:\n    image: x\n    build: .\n",
    )
    .expect("write");
    let out = stack(dir.path(), &["validate", "--compat"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("services.*.build") && l.contains("unsupported")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("services.*.image") && l.contains("implemented")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("version") && l.contains("ignored")),
        "{text}"
    );
    let ok = stack(
        &repo().join("examples/stacks/compose"),
        &["validate", "--compat"],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
}

#[test]
fn schema_is_json_schema_draft_07() {
    let out = stack(&repo(), &["schema"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(v["properties"]["services"].is_object());
    assert!(v["definitions"]["RawService"]["properties"]["healthcheck"].is_object());
}
