//! The default seccomp profile of Docker/Podman, shipped as data.
//!
//! `default.json` is the profile of containers/common (Apache-2.0; Debian's
//! golang-github-containers-common, /usr/share/containers/seccomp.json), which
//! derives from Docker's `profiles/seccomp/default.json` and uses its format:
//! rules carry `includes`/`excludes` on capabilities and architectures, resolved
//! here into a plain OCI `LinuxSeccomp` for one container, as Docker does.
use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Mutex, PoisonError};

const DEFAULT_JSON: &str = include_str!("default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

/// Docker's name for this machine's architecture.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn seccomp_arch_of_native() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "s390x" => "SCMP_ARCH_S390X",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// The default profile for a container whose capability set (bounding, as
/// Docker uses) is `caps` (`CAP_*` names): rules gated on capabilities the
/// container has are included, the "excludes" fallbacks (EPERM) otherwise.
pub fn default_profile(caps: &[String]) -> LinuxSeccomp {
    // Parsing the profile takes ~0.3 ms, and every container of a stack
    // usually has the same capabilities: keep the few results.
    static CACHE: Mutex<Vec<(Vec<String>, LinuxSeccomp)>> = Mutex::new(Vec::new());
    const KEEP: usize = 8;
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, s)) = cache.iter().find(|(c, _)| c == caps) {
        return s.clone();
    }
    let s = resolve(caps);
    if cache.len() == KEEP {
        cache.remove(0);
    }
    cache.push((caps.to_vec(), s.clone()));
    s
}

fn resolve(caps: &[String]) -> LinuxSeccomp {
    let p: Profile = match serde_json::from_str(DEFAULT_JSON) {
        Ok(p) => p,
        // The file is part of the binary and covered by a unit test.
        Err(e) => unreachable!("embedded default seccomp profile is invalid: {e}"),
    };
    let arch = native_arch();
    let has = |c: &String| caps.contains(c);
    let native = seccomp_arch_of_native();
    let architectures: Vec<&String> = p
        .arch_map
        .iter()
        .filter(|m| m.architecture == native)
        .flat_map(|m| std::iter::once(&m.architecture).chain(m.sub_architectures.iter()))
        .collect();
    let mut syscalls = Vec::new();
    for r in &p.syscalls {
        let inc = &r.includes;
        let exc = &r.excludes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue;
        }
        if !inc.caps.is_empty() && !inc.caps.iter().all(has) {
            continue;
        }
        if exc.arches.iter().any(|a| a == arch)
            || (!exc.caps.is_empty() && exc.caps.iter().any(has))
        {
            continue;
        }
        let mut rule = json!({"names": r.names, "action": r.action});
        if let Some(e) = r.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if let Some(args) = r.args.as_ref().filter(|a| !a.is_empty()) {
            rule["args"] = json!(args);
        }
        syscalls.push(rule);
    }
    let doc = json!({
        "defaultAction": p.default_action,
        "defaultErrnoRet": p.default_errno_ret,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    match serde_json::from_value(doc) {
        Ok(s) => s,
        Err(e) => unreachable!("default seccomp profile does not map to the OCI type: {e}"),
    }
}
