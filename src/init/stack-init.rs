//! `stack-init`: the PID 1 of containers with `init: true`.
//!
//! A tiny static program (no libc, raw syscalls, a few KiB) bind-mounted
//! read-only into the container at /sbin/stack-init, like Docker's docker-init
//! (tini). It starts the service's command as its only child, forwards every
//! signal it receives to it, reaps every zombie of the container, and exits with
//! the child's status (128+N when a signal killed it).
//!
//! It is built by build.rs with the host's rustc as a freestanding binary
//! (`-nostartfiles -nostdlib -static`): it must run in images without a libc,
//! such as busybox-static ones. Why not the `stack` binary itself: it is
//! dynamically linked, large, and must never be mapped into a container
//! (CVE-2019-5736).
#![no_std]
#![no_main]

#[path = "rt.rs"]
mod rt;

use rt::{SIGCHLD, cstr, exit, fork, kill, nr, say, set_mask, syscall, wait_nohang};

/// execve `argv[0]`, searching PATH when it has no '/'. Returns only on failure.
unsafe fn exec(argv: *const *const u8, envp: *const *const u8) {
    // SAFETY: argv and envp are the kernel's NULL-terminated arrays.
    let prog = unsafe { cstr(*argv) };
    if prog.contains(&b'/') {
        // SAFETY: as above.
        unsafe { syscall(nr::EXECVE, *argv as usize, argv as usize, envp as usize, 0) };
        return;
    }
    let mut path: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let mut e = envp;
    // SAFETY: walking the NULL-terminated envp.
    while unsafe { !(*e).is_null() } {
        let kv = unsafe { cstr(*e) };
        if kv.starts_with(b"PATH=") {
            path = &kv[5..];
        }
        e = unsafe { e.add(1) };
    }
    let mut buf = [0u8; 4096];
    for dir in path.split(|&c| c == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        if dir.len() + prog.len() + 2 > buf.len() {
            continue;
        }
        let mut n = 0;
        for &c in dir.iter().chain(b"/").chain(prog.iter()) {
            buf[n] = c;
            n += 1;
        }
        buf[n] = 0;
        // SAFETY: `buf` is NUL-terminated; argv/envp are the kernel's.
        unsafe { syscall(nr::EXECVE, buf.as_ptr() as usize, argv as usize, envp as usize, 0) };
    }
}

/// Called by `rt` with the kernel's argc, argv and envp.
unsafe fn main(argc: usize, argv: *const *const u8, envp: *const *const u8) -> i32 {
    // Our own args: stack-init [--] CMD ARGS...
    let mut first = 1;
    if argc > 1 && unsafe { cstr(*argv.add(1)) } == b"--" {
        first = 2;
    }
    if argc <= first {
        say(b"stack-init: usage: stack-init [--] COMMAND [ARG...]\n");
        exit(2);
    }
    let all: u64 = !0;
    set_mask(&all);
    let child = fork();
    if child < 0 {
        say(b"stack-init: fork failed\n");
        exit(1);
    }
    if child == 0 {
        set_mask(&0);
        // SAFETY: argv[first..] is NULL-terminated.
        unsafe { exec(argv.add(first), envp) };
        say(b"stack-init: cannot execute the command\n");
        exit(127);
    }
    loop {
        // SAFETY: a valid sigset; no siginfo, no timeout.
        let sig = unsafe { syscall(nr::RT_SIGTIMEDWAIT, &all as *const u64 as usize, 0, 0, 8) };
        if sig <= 0 {
            continue;
        }
        if sig as usize != SIGCHLD {
            // Forwarding a signal to our child.
            kill(child as i32, sig as usize);
            continue;
        }
        loop {
            let (pid, code) = wait_nohang(-1);
            if pid <= 0 {
                break;
            }
            if pid == child {
                exit(code);
            }
        }
    }
}
