//! Parsing never panics: bounded random-input runs in the normal test
//! suite (the cargo-fuzz targets in fuzz/ run the same entry points for
//! longer). Inputs: arbitrary text, and random edits of real stack files.
use std::path::PathBuf;

use proptest::prelude::*;
use stack::spec::{self, LoadOptions};

fn opts(file: &str) -> LoadOptions {
    LoadOptions {
        files: vec![PathBuf::from(file)],
        working_dir: PathBuf::from("/nonexistent-stack-proptest"),
        environment: Some([("HOST_VAR".to_string(), "x".to_string())].into()),
        ..LoadOptions::default()
    }
}

/// Loads `text` as `file`; rendering any diagnostics must not panic either.
fn load(file: &str, text: &str) {
    if let Err(d) = spec::load_text(&opts(file), text) {
        assert!(
            !d.items.is_empty(),
            "an error result carries at least one diagnostic"
        );
        let _ = d.to_string();
        let _ = d.located();
    }
}

fn seeds() -> Vec<(&'static str, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("seed file");
    vec![
        ("stack.toml", read("tests/data/full/stack.toml")),
        ("compose.yaml", read("tests/data/full/compose.yaml")),
        ("stack.toml", read("examples/stacks/web/stack.toml")),
        ("compose.yaml", read("examples/stacks/compose/compose.yaml")),
    ]
}

/// Syntax characters of TOML, YAML and interpolation, to make edits that
/// reach deep into the parsers rather than only breaking the first line.
const SYNTAX: &[char] = &[
    '[', ']', '{', '}', ':', ',', '"', '\'', '-', '#', '&', '*', '!', '<', '$', '\n', ' ', '=',
    '.', '|', '>', '?', '0', '9', 'é',
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, char),
    DuplicateLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), prop::sample::select(SYNTAX)).prop_map(|(a, c)| Edit::Insert(a, c)),
        any::<usize>().prop_map(Edit::DuplicateLine),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        if chars.is_empty() {
            break;
        }
        match *e {
            Edit::Delete(at, n) => {
                let at = at % chars.len();
                let end = (at + n).min(chars.len());
                chars.drain(at..end);
            }
            Edit::Insert(at, c) => {
                let at = at % (chars.len() + 1);
                chars.insert(at, c);
            }
            Edit::DuplicateLine(n) => {
                let text: String = chars.iter().collect();
                let lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let i = n % lines.len();
                let mut out: Vec<&str> = lines.clone();
                out.insert(i, lines[i]);
                chars = out.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn edited_stack_files_never_panic(seed in 0usize..4, edits in prop::collection::vec(edit(), 1..8)) {
        let seeds = seeds();
        let (name, text) = &seeds[seed % seeds.len()];
        load(name, &apply(text, &edits));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}", yaml in any::<bool>()) {
        load(if yaml { "compose.yaml" } else { "stack.toml" }, &text);
    }

    #[test]
    fn interpolation_never_panics(text in "[$a-z{}:?+\\-_ ]{0,60}") {
        let doc = format!("services:\n  web:\n    image: \"busybox\"\n    command: {:?}\n", text);
        load("compose.yaml", &doc);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    load("compose.yaml", &"[".repeat(100_000));
    load(
        "compose.yaml",
        &format!("a: {}1{}", "[".repeat(300), "]".repeat(300)),
    );
    load(
        "stack.toml",
        &format!("a = {}1{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    load(
        "stack.toml",
        &format!("[{}]\n", vec!["a"; 20_000].join(".")),
    );
}
