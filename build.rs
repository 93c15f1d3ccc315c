//! Builds the two freestanding helpers the `stack` binary embeds, with the same
//! rustc as the crate: no libc, static, a few KiB each.
//! - `stack-init` (src/init/stack-init.rs): the PID 1 of `init: true` containers.
//! - `stack-monitor` (src/init/stack-monitor.rs): the process beside every
//!   running container (its parent, its output, its exit record).
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/init/rt.rs");
    println!("cargo:rerun-if-changed=src/init/journal.rs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for name in ["stack-init", "stack-monitor"] {
        freestanding(&format!("src/init/{name}.rs"), &out_dir.join(name));
    }
}

fn freestanding(src: &str, out: &PathBuf) {
    println!("cargo:rerun-if-changed={src}");
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
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("running rustc for {src}: {e}"));
    assert!(status.success(), "building {src} failed");
}
