//! Test helpers: a service as the loader makes it.
use super::{LoadOptions, load_text};
use crate::model::Service;

/// Service `s` of a stack file whose service table is `body` (TOML, after
/// `image = "busybox"`).
pub fn service(body: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let opts = LoadOptions {
        files: vec![dir.path().join("stack.toml")],
        working_dir: dir.path().to_path_buf(),
        environment: Some(Default::default()),
        ..Default::default()
    };
    let text = format!("name = \"t\"\n[services.s]\nimage = \"busybox\"\n{body}");
    let loaded = load_text(&opts, &text).unwrap_or_else(|d| panic!("{d}"));
    loaded.stack.services["s"].clone()
}
