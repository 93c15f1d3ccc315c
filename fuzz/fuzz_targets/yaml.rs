//! The YAML entry point: any text as a YAML stack file (anchors, merge keys,
//! tags, interpolation) must load or fail with diagnostics, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let opts = stack::spec::LoadOptions {
            files: vec!["stack.yaml".into()],
            working_dir: "/nonexistent-stack-fuzz".into(),
            environment: Some([("TAG".to_string(), "1".to_string())].into()),
            ..Default::default()
        };
        if let Err(d) = stack::spec::load_text(&opts, text) {
            let _ = d.to_string();
        }
    }
});
