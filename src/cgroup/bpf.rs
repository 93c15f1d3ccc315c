//! cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program built from
//! the OCI allow/deny list and attached to the cgroup (cgroup-v2.rst "Device
//! controller"; the approach of runc's devicefilter, written here from the
//! kernel ABI in linux/bpf.h).
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` (access_type = access << 16 | type) and returns 1 to allow.
//! OCI semantics: the last matching rule wins, so rules are emitted in reverse
//! and the first match in program order decides; no match denies.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use super::{Error, Result};

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn access_mask(access: &str) -> i32 {
    access.chars().fold(0, |m, c| {
        m | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// Compile the rules. Registers: r2 type, r3 access, r4 major, r5 minor.
pub(super) fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut checks: Vec<Insn> = Vec::new();
        match r.typ().map(|t| t.as_str().to_string()).as_deref() {
            Some("b") => checks.push(insn(JNE_K, 2, 0, 0, DEV_BLOCK)),
            Some("c") | Some("u") => checks.push(insn(JNE_K, 2, 0, 0, DEV_CHAR)),
            _ => {}
        }
        let mask = access_mask(r.access().as_deref().unwrap_or("rwm"));
        if mask != 7 {
            // Every requested access bit must be in the rule: (r3 & mask) == r3.
            checks.push(insn(MOV32_X, 1, 3, 0, 0));
            checks.push(insn(AND32_K, 1, 0, 0, mask));
            checks.push(insn(JNE_X, 1, 3, 0, 0));
        }
        if let Some(major) = r.major().filter(|m| *m >= 0) {
            checks.push(insn(JNE_K, 4, 0, 0, i32::try_from(major).unwrap_or(-1)));
        }
        if let Some(minor) = r.minor().filter(|m| *m >= 0) {
            checks.push(insn(JNE_K, 5, 0, 0, i32::try_from(minor).unwrap_or(-1)));
        }
        // Each failing check jumps past the rest of the checks and the verdict.
        let n = checks.len();
        for (i, c) in checks.iter_mut().enumerate() {
            if c.code == JNE_K || c.code == JNE_X {
                c.off = i16::try_from(n - i - 1 + 2).unwrap_or(i16::MAX);
            }
        }
        p.extend(checks);
        p.push(insn(MOV64_K, 0, 0, 0, i32::from(r.allow())));
        p.push(insn(EXIT, 0, 0, 0, 0));
        // A rule without conditions matches everything: the rest is unreachable
        // (the verifier rejects unreachable instructions).
        if n == 0 {
            return p;
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a live, zero-padded bpf_attr prefix of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// BPF_PROG_LOAD of a cgroup device program, with a verifier log buffer if given.
fn load(prog: &[Insn], log: Option<&mut Vec<u8>>) -> std::io::Result<i64> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..6].copy_from_slice(b"stack\0");
    let (log_level, log_size, log_buf) = match log {
        Some(l) => (
            1,
            u32::try_from(l.len()).unwrap_or(0),
            l.as_mut_ptr() as u64,
        ),
        None => (0, 0, 0),
    };
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(prog.len()).unwrap_or(u32::MAX),
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        prog_name: name,
        ..Default::default()
    };
    bpf(BPF_PROG_LOAD, &load)
}

/// The end of a verifier log (where its error is), up to the first NUL.
fn verifier_tail(log: &[u8]) -> String {
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Load the program for `rules` and attach it to the cgroup directory `dir`.
pub(super) fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = program(rules);
    // Without a verifier log: with one, a log longer than the buffer fails the
    // load with ENOSPC even for a valid program (Linux >= 6.4), which Docker's
    // default device rules reach. The log is fetched only to explain a failure.
    let fd = load(&prog, None).map_err(|source| {
        let mut log = vec![0u8; 64 * 1024];
        let _ = load(&prog, Some(&mut log));
        Error::Write {
            path: dir.into(),
            value: format!(
                "BPF device program (load; verifier: {})",
                verifier_tail(&log)
            ),
            source,
        }
    })?;
    // SAFETY: BPF_PROG_LOAD returned a new fd owned by us.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).unwrap_or(-1)) };
    let cg = std::fs::File::open(dir).map_err(|source| Error::Read {
        path: dir.into(),
        source,
    })?;
    let at = ProgAttach {
        target_fd: u32::try_from(cg.as_raw_fd()).unwrap_or(0),
        attach_bpf_fd: u32::try_from(prog_fd.as_raw_fd()).unwrap_or(0),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &at).map_err(|source| Error::Write {
        path: dir.into(),
        value: "BPF device program (attach)".into(),
        source,
    })?;
    // The attachment holds the program; our fd can go.
    Ok(())
}
