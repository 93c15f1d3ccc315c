//! The TOML entry point: any text as `stack.toml` must load or fail with
//! diagnostics, never panic; rendering the diagnostics must not panic either.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let opts = stack::spec::LoadOptions {
            files: vec!["stack.toml".into()],
            working_dir: "/nonexistent-stack-fuzz".into(),
            environment: Some(Default::default()),
            ..Default::default()
        };
        if let Err(d) = stack::spec::load_text(&opts, text) {
            let _ = d.to_string();
        }
    }
});
