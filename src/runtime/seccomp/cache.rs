//! A cache of compiled seccomp filters, so that a container start does not
//! compile the same profile again.
//!
//! Why: libseccomp builds Docker's default profile (~370 syscall names, each
//! resolved by name per architecture) in about 15 ms of CPU per container, the
//! largest single cost of `stack up` (measured with `perf`; bench/RESULTS.md).
//! Every container of a stack has the same profile, and a healthcheck `exec`
//! compiles it again every interval.
//!
//! Layout: `<runtime state dir>/.seccomp/<key>` (ids cannot start with '.', so
//! `list` never takes it for a container), mode 0700 like the state dir's
//! contents. The key is a SHA-256 over everything the compiled program depends
//! on: the `linux.seccomp` section as JSON, the libseccomp version, the kernel
//! (release and build, as libseccomp probes the kernel's API), the machine
//! architecture and the identity of the running `stack` binary (its inode,
//! size and mtime: a rebuilt or upgraded binary never reads an older entry).
//!
//! Guarantees: an entry is used only when it verifies: a header, a SHA-256 of
//! its body, a program of 1..=4096 instructions. Anything else (absent, torn
//! by a crash, truncated, from another version) is compiled afresh and
//! rewritten. Entries are written to a temp file and renamed, without fsync:
//! the cache is rebuilt from config.json whenever an entry is missing or does
//! not verify, so it needs no durability. The directory holds at most
//! [`MAX_ENTRIES`] files; past that it is emptied before the next write.
//!
//! Caveat: the cache trusts its directory as much as the state dir itself
//! (both are root's; whoever can write there can also rewrite a container's
//! config.json).
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use super::Compiled;

const MAGIC: &[u8; 8] = b"STKSECC1";
const HEADER: usize = MAGIC.len() + 32;
/// flags (u32 LE) and listener (u8) before the program.
const FIXED: usize = 5;
const MAX_ENTRIES: usize = 32;

/// The cache directory of a runtime state dir.
pub(crate) fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join(".seccomp")
}

/// The compiled filter for `s`, from the cache in `dir` when it has a verified
/// entry, else from `compile` (and then stored). Cache failures only cost the
/// compilation: they are never an error.
pub(crate) fn get_or_compile(
    dir: &Path,
    s: &LinuxSeccomp,
    compile: impl FnOnce() -> Result<Compiled, super::Error>,
) -> Result<Compiled, super::Error> {
    let Some(key) = key(s) else {
        return compile();
    };
    let path = dir.join(&key);
    if let Some(c) = std::fs::read(&path).ok().and_then(|b| decode(&b)) {
        return Ok(c);
    }
    let compiled = compile()?;
    let _ = store(dir, &key, &compiled);
    Ok(compiled)
}

fn key(s: &LinuxSeccomp) -> Option<String> {
    let json = serde_json::to_vec(s).ok()?;
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let lib = libseccomp::ScmpVersion::current().ok()?;
    let kernel = |f: &str| std::fs::read(format!("/proc/sys/kernel/{f}")).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(MAGIC);
    for part in [
        &exe.dev().to_le_bytes()[..],
        &exe.ino().to_le_bytes(),
        &exe.size().to_le_bytes(),
        &exe.mtime().to_le_bytes(),
        &exe.mtime_nsec().to_le_bytes(),
        format!("{}.{}.{}", lib.major, lib.minor, lib.micro).as_bytes(),
        &kernel("osrelease"),
        &kernel("version"),
        std::env::consts::ARCH.as_bytes(),
        &json,
    ] {
        // Length-prefixed, so no two different inputs hash alike.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    Some(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(c: &Compiled) -> Vec<u8> {
    let mut body = Vec::with_capacity(FIXED + c.prog.len() * 8);
    body.extend_from_slice(&c.flags.to_le_bytes());
    body.push(u8::from(c.listener));
    for f in &c.prog {
        body.extend_from_slice(&f.code.to_le_bytes());
        body.push(f.jt);
        body.push(f.jf);
        body.extend_from_slice(&f.k.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&Sha256::digest(&body));
    out.extend_from_slice(&body);
    out
}

fn decode(bytes: &[u8]) -> Option<Compiled> {
    let (head, body) = bytes.split_at_checked(HEADER)?;
    if &head[..MAGIC.len()] != MAGIC || Sha256::digest(body).as_slice() != &head[MAGIC.len()..] {
        return None;
    }
    let (fixed, prog) = body.split_at_checked(FIXED)?;
    let n = prog.len() / 8;
    if !prog.len().is_multiple_of(8) || n == 0 || n > 4096 {
        return None;
    }
    let prog = prog
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(Compiled {
        prog,
        flags: u32::from_le_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]),
        listener: fixed[4] != 0,
    })
}

fn store(dir: &Path, key: &str, c: &Compiled) -> std::io::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let entries: Vec<_> = entries.flatten().collect();
            if entries.len() >= MAX_ENTRIES {
                for e in entries {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?,
    }
    // Unique per process: monitors starting at once compile the same profile.
    let tmp = dir.join(format!(".{key}.{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&encode(c)))
        .and_then(|()| std::fs::rename(&tmp, dir.join(key)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> LinuxSeccomp {
        serde_json::from_str(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        )
        .unwrap()
    }

    fn compiled(prog_len: usize) -> Compiled {
        Compiled {
            prog: (0..prog_len)
                .map(|i| libc::sock_filter {
                    code: i as u16,
                    jt: 1,
                    jf: 2,
                    k: 0xdead_0000 + i as u32,
                })
                .collect(),
            flags: 4,
            listener: true,
        }
    }

    fn same(a: &Compiled, b: &Compiled) -> bool {
        let raw = |c: &Compiled| -> Vec<(u16, u8, u8, u32)> {
            c.prog.iter().map(|f| (f.code, f.jt, f.jf, f.k)).collect()
        };
        raw(a) == raw(b) && a.flags == b.flags && a.listener == b.listener
    }

    #[test]
    fn entries_round_trip_and_damage_is_refused() {
        let c = compiled(7);
        let bytes = encode(&c);
        assert!(same(&decode(&bytes).unwrap(), &c));
        for cut in [0, 10, HEADER, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_none(), "truncated at {cut}");
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(
            decode(&flipped).is_none(),
            "a changed byte fails the digest"
        );
        assert!(decode(&encode(&compiled(0))).is_none(), "empty program");
    }

    #[test]
    fn a_second_lookup_does_not_compile_and_a_bad_entry_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(".seccomp");
        let s = profile();
        let first = get_or_compile(&cache, &s, || Ok(compiled(3))).unwrap();
        let again = get_or_compile(&cache, &s, || panic!("compiled twice")).unwrap();
        assert!(same(&first, &again));
        let mode = std::fs::metadata(&cache).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A torn entry (a crash mid-write) is compiled afresh and rewritten.
        let entry = cache.join(key(&s).unwrap());
        std::fs::write(&entry, &encode(&compiled(3))[..20]).unwrap();
        let fresh = get_or_compile(&cache, &s, || Ok(compiled(5))).unwrap();
        assert_eq!(fresh.prog.len(), 5);
        assert!(same(
            &decode(&std::fs::read(&entry).unwrap()).unwrap(),
            &fresh
        ));
    }

    #[test]
    fn different_profiles_have_different_keys_and_the_directory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(".seccomp");
        let mut keys = std::collections::BTreeSet::new();
        for errno in 0..(MAX_ENTRIES as u32 + 5) {
            let mut s = profile();
            let mut rules = s.syscalls().clone().unwrap();
            rules[0].set_errno_ret(Some(errno));
            s.set_syscalls(Some(rules));
            keys.insert(key(&s).unwrap());
            get_or_compile(&cache, &s, || Ok(compiled(2))).unwrap();
        }
        assert_eq!(keys.len(), MAX_ENTRIES + 5);
        assert!(std::fs::read_dir(&cache).unwrap().count() <= MAX_ENTRIES);
    }

    #[test]
    fn a_compile_error_is_returned_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join(".seccomp");
        let err = get_or_compile(&cache, &profile(), || Err(super::super::err("bad")));
        assert!(err.is_err());
        assert!(!cache.exists() || std::fs::read_dir(&cache).unwrap().count() == 0);
    }
}
