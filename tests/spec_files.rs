//! The checked-in artifacts that are generated from the code (schema,
//! README support matrix, `stack config` goldens) and the examples.
//! No root needed. Set UPDATE_GOLDEN=1 to rewrite the goldens.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use stack::spec::{self, LoadOptions, compat, schema};

/// Equality with a short message: the first differing line, not two pages.
fn assert_same(actual: &str, expected: &str, what: &str) {
    if actual == expected {
        return;
    }
    let line = actual
        .lines()
        .zip(expected.lines())
        .position(|(a, e)| a != e)
        .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
    panic!(
        "{what}\nfirst difference at line {}:\n  actual:   {:?}\n  expected: {:?}",
        line + 1,
        actual.lines().nth(line),
        expected.lines().nth(line)
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_schema_matches_stack_schema() {
    let file = repo().join("schema/stack.schema.json");
    let checked_in = std::fs::read_to_string(&file).expect("schema/stack.schema.json exists");
    let out = Command::new(common::stack_bin())
        .arg("schema")
        .output()
        .expect("run stack schema");
    assert!(out.status.success());
    assert_same(
        &String::from_utf8_lossy(&out.stdout),
        &checked_in,
        "schema/stack.schema.json is stale: run `stack schema > schema/stack.schema.json`",
    );
    assert_same(
        &schema::json_schema_text(),
        &checked_in,
        "library and binary disagree",
    );
}

#[test]
fn readme_support_matrix_is_generated() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md exists");
    let begin = "<!-- compat:begin -->\n";
    let end = "<!-- compat:end -->";
    let start = readme
        .find(begin)
        .expect("README has <!-- compat:begin -->")
        + begin.len();
    let stop = readme[start..]
        .find(end)
        .expect("README has <!-- compat:end -->")
        + start;
    assert_same(
        &compat::matrix_markdown(),
        &readme[start..stop],
        "README support matrix is stale: replace it with `stack validate --matrix --format markdown`",
    );
}

fn example_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/stacks"))
        .expect("examples/stacks")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_validates_and_has_a_readme() {
    let dirs = example_dirs();
    for want in ["hello", "web", "limits", "compose"] {
        assert!(
            dirs.iter().any(|d| d.ends_with(want)),
            "examples/stacks/{want} is missing"
        );
    }
    for dir in dirs {
        assert!(
            dir.join("README.md").is_file(),
            "{} has no README.md",
            dir.display()
        );
        let opts = LoadOptions {
            working_dir: dir.clone(),
            environment: Some(Default::default()),
            ..LoadOptions::default()
        };
        match spec::load(&opts) {
            Ok(loaded) => {
                assert!(!loaded.stack.services.is_empty(), "{}", dir.display());
                assert!(
                    loaded.warnings.is_empty(),
                    "{}: {:?}",
                    dir.display(),
                    loaded.warnings
                );
            }
            Err(d) => panic!("{} does not validate:\n{d}", dir.display()),
        }
    }
}

/// Runs `stack config` in `dir` with an empty environment; paths under the
/// repository are printed as `$REPO`.
fn config_output(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(common::stack_bin())
        .args(args)
        .arg("config")
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run stack config");
    assert!(
        out.status.success(),
        "stack config in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace(&repo().display().to_string(), "$REPO")
}

fn check_golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_same(
        actual,
        &expected,
        &format!(
            "`stack config` output changed for {name}; if intended, rerun with UPDATE_GOLDEN=1"
        ),
    );
}

#[test]
fn config_output_goldens() {
    for ex in ["hello", "web", "limits", "compose"] {
        let dir = repo().join("examples/stacks").join(ex);
        check_golden(&format!("{ex}.toml"), &config_output(&dir, &[], &[]));
    }
    let compose = repo().join("examples/stacks/compose");
    check_golden(
        "compose-debug.yaml",
        &config_output(&compose, &["--profile", "debug"], &[("APP_PORT", "9090")]),
    );
    let full = repo().join("tests/data/full");
    check_golden(
        "full.toml",
        &config_output(&full, &[], &[("HOST_VAR", "hv")]),
    );
}

#[test]
fn both_syntaxes_of_the_full_file_give_one_model() {
    let dir = repo().join("tests/data/full");
    let load = |file: &str| {
        let opts = LoadOptions {
            files: vec![PathBuf::from(file)],
            working_dir: dir.clone(),
            environment: Some([("HOST_VAR".to_string(), "hv".to_string())].into()),
            ..LoadOptions::default()
        };
        spec::load(&opts).unwrap_or_else(|d| panic!("{file}:\n{d}"))
    };
    let toml = load("stack.toml");
    let yaml = load("compose.yaml");
    assert_eq!(toml.stack, yaml.stack);
    for (name, svc) in &toml.stack.services {
        assert_eq!(
            svc.config_hash(&toml.stack),
            yaml.stack.services[name].config_hash(&yaml.stack)
        );
    }
}
