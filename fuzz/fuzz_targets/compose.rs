//! The Compose entry point with a second file merged on top: the input is
//! split at the first NUL byte into compose.yaml and an override, which
//! exercises the merge rules and `!reset`/`!override` as well as parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (base, over) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(base), Ok(over)) = (std::str::from_utf8(base), std::str::from_utf8(over)) else {
        return;
    };
    let Ok(dir) = tempfile_dir() else { return };
    if std::fs::write(dir.join("override.yaml"), over).is_err() {
        return;
    }
    let opts = stack::spec::LoadOptions {
        files: vec!["compose.yaml".into(), "override.yaml".into()],
        working_dir: dir.clone(),
        environment: Some([("PORT".to_string(), "8080".to_string())].into()),
        profiles: vec!["debug".into()],
        ..Default::default()
    };
    if let Err(d) = stack::spec::load_text(&opts, base) {
        let _ = d.to_string();
    }
});

/// One scratch directory per fuzzing process.
fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("stack-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
