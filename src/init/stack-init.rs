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

use core::arch::naked_asm;

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const WRITE: usize = 1;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const FORK: usize = 57;
    pub const EXECVE: usize = 59;
    pub const EXIT_GROUP: usize = 231;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const RT_SIGTIMEDWAIT: usize = 128;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const WRITE: usize = 64;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const CLONE: usize = 220;
    pub const EXECVE: usize = 221;
    pub const EXIT_GROUP: usize = 94;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const RT_SIGTIMEDWAIT: usize = 137;
}

#[cfg(target_arch = "x86_64")]
unsafe fn syscall(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid syscall number and arguments.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b,
            in("rdx") c, in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn syscall(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid syscall number and arguments.
    unsafe {
        core::arch::asm!("svc 0", in("x8") n, inlateout("x0") a as isize => ret, in("x1") b,
            in("x2") c, in("x3") d, options(nostack));
    }
    ret
}

const SIGCHLD: usize = 17;
const SIG_SETMASK: usize = 2;
const WNOHANG: usize = 1;

fn exit(code: i32) -> ! {
    // SAFETY: exit_group never returns.
    unsafe { syscall(nr::EXIT_GROUP, code as usize, 0, 0, 0) };
    loop {}
}

fn say(msg: &[u8]) {
    // SAFETY: writes `msg` to stderr.
    unsafe { syscall(nr::WRITE, 2, msg.as_ptr() as usize, msg.len(), 0) };
}

fn set_mask(set: &u64) {
    // SAFETY: `set` is a valid 8-byte kernel sigset.
    unsafe { syscall(nr::RT_SIGPROCMASK, SIG_SETMASK, set as *const u64 as usize, 0, 8) };
}

fn fork() -> isize {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: fork takes no arguments.
    return unsafe { syscall(nr::FORK, 0, 0, 0, 0) };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: clone(SIGCHLD) with no new stack is fork.
    return unsafe { syscall(nr::CLONE, SIGCHLD, 0, 0, 0) };
}

/// A NUL-terminated C string as bytes (without the NUL).
unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: the kernel passes NUL-terminated strings. Volatile: the loop must
    // not become a call to strlen, which does not exist here.
    while unsafe { core::ptr::read_volatile(p.add(n)) } != 0 {
        n += 1;
    }
    // SAFETY: `n` bytes from `p` are readable.
    unsafe { core::slice::from_raw_parts(p, n) }
}

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

/// Entry from `_start` with the initial stack pointer (argc, argv..., 0, envp...).
unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: the System V process entry stack layout.
    let argc = unsafe { *sp };
    let argv = unsafe { sp.add(1) } as *const *const u8;
    let envp = unsafe { argv.add(argc + 1) };
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
            // SAFETY: forwarding a signal to our child.
            unsafe { syscall(nr::KILL, child as usize, sig as usize, 0, 0) };
            continue;
        }
        loop {
            let mut status: i32 = 0;
            // SAFETY: `status` is a valid out-pointer.
            let pid = unsafe { syscall(nr::WAIT4, usize::MAX, &mut status as *mut i32 as usize, WNOHANG, 0) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                let sig = status & 0x7f;
                exit(if sig == 0 { (status >> 8) & 0xff } else { 128 + sig });
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    naked_asm!("mov rdi, rsp", "and rsp, -16", "call {}", "ud2", sym start)
}

#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    naked_asm!("mov x0, sp", "and sp, x0, #-16", "bl {}", "brk #0", sym start)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(101)
}

/// The precompiled `core` refers to it; with panic=abort nothing unwinds.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

// The compiler may emit calls to these; there is no libc to provide them.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller guarantees `n` writable bytes; volatile keeps this
        // loop from being turned back into a memset call.
        unsafe { core::ptr::write_volatile(dst.add(i), c as u8) };
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: as for memset.
        unsafe { core::ptr::write_volatile(dst.add(i), *src.add(i)) };
    }
    dst
}
