//! Builds `stack-init` (src/init/stack-init.rs), the static PID 1 for
//! `init: true` containers, with the same rustc as the crate: freestanding, no
//! libc, a few KiB. The `stack` binary embeds it.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/init/stack-init.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("stack-init");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
        ])
        .args(["-C", "relocation-model=static", "-C", "strip=symbols"])
        .args([
            "-C",
            "link-arg=-nostartfiles",
            "-C",
            "link-arg=-nostdlib",
            "-C",
            "link-arg=-static",
        ])
        .arg(src)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("running rustc for stack-init");
    assert!(status.success(), "building {src} failed");
}
