//! The freestanding runtime shared by `stack-init` and `stack-monitor`: raw
//! syscalls, the process entry, and the few symbols the compiler expects from a
//! libc. Both programs are built by build.rs without libc (`-nostartfiles
//! -nostdlib -static`) and include this file with `#[path]`.
#![allow(dead_code)]

use core::arch::naked_asm;

#[cfg(target_arch = "x86_64")]
pub mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const LSEEK: usize = 8;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const FORK: usize = 57;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const FSYNC: usize = 74;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const CLOCK_GETTIME: usize = 228;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const UNLINKAT: usize = 263;
    pub const PPOLL: usize = 271;
    pub const SIGNALFD4: usize = 289;
    pub const RENAMEAT2: usize = 316;
}

#[cfg(target_arch = "aarch64")]
pub mod nr {
    pub const READ: usize = 63;
    pub const WRITE: usize = 64;
    pub const CLOSE: usize = 57;
    pub const LSEEK: usize = 62;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const CLONE: usize = 220;
    pub const EXECVE: usize = 221;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const FSYNC: usize = 82;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const CLOCK_GETTIME: usize = 113;
    pub const EXIT_GROUP: usize = 94;
    pub const OPENAT: usize = 56;
    pub const UNLINKAT: usize = 35;
    pub const PPOLL: usize = 73;
    pub const SIGNALFD4: usize = 74;
    pub const RENAMEAT2: usize = 276;
}

#[cfg(target_arch = "x86_64")]
pub unsafe fn syscall(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid syscall number and arguments.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b,
            in("rdx") c, in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "aarch64")]
pub unsafe fn syscall(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid syscall number and arguments.
    unsafe {
        core::arch::asm!("svc 0", in("x8") n, inlateout("x0") a as isize => ret, in("x1") b,
            in("x2") c, in("x3") d, options(nostack));
    }
    ret
}

pub const SIGINT: usize = 2;
pub const SIGKILL: usize = 9;
pub const SIGTERM: usize = 15;
pub const SIGCHLD: usize = 17;
pub const SIG_SETMASK: usize = 2;
pub const WNOHANG: usize = 1;
pub const ECHILD: isize = 10;
pub const EINTR: isize = 4;
pub const EAGAIN: isize = 11;
pub const AT_FDCWD: usize = -100isize as usize;

pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group never returns.
    unsafe { syscall(nr::EXIT_GROUP, code as usize, 0, 0, 0) };
    loop {}
}

pub fn write(fd: i32, buf: &[u8]) -> isize {
    // SAFETY: `buf` is readable for its length.
    unsafe { syscall(nr::WRITE, fd as usize, buf.as_ptr() as usize, buf.len(), 0) }
}

/// Write all of `buf`, retrying short writes and EINTR; false on error.
pub fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        let n = write(fd, buf);
        if n == -EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

pub fn read(fd: i32, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is writable for its length.
    unsafe { syscall(nr::READ, fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0) }
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { syscall(nr::CLOSE, fd as usize, 0, 0, 0) };
}

pub fn say(msg: &[u8]) {
    write(2, msg);
}

pub fn kill(pid: i32, sig: usize) -> isize {
    // SAFETY: sending a signal has no memory effects.
    unsafe { syscall(nr::KILL, pid as usize, sig, 0, 0) }
}

pub fn set_mask(set: &u64) {
    // SAFETY: `set` is a valid 8-byte kernel sigset.
    unsafe { syscall(nr::RT_SIGPROCMASK, SIG_SETMASK, set as *const u64 as usize, 0, 8) };
}

/// `wait4(pid, WNOHANG)`: `(pid, shell-style exit code)`; pid 0 when children
/// exist but none has exited, negative errno otherwise.
pub fn wait_nohang(pid: isize) -> (isize, i32) {
    let mut status: i32 = 0;
    // SAFETY: `status` is a valid out-pointer.
    let got = unsafe {
        syscall(nr::WAIT4, pid as usize, &mut status as *mut i32 as usize, WNOHANG, 0)
    };
    let sig = status & 0x7f;
    (got, if sig == 0 { (status >> 8) & 0xff } else { 128 + sig })
}

pub fn fork() -> isize {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: fork takes no arguments.
    return unsafe { syscall(nr::FORK, 0, 0, 0, 0) };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: clone(SIGCHLD) with no new stack is fork.
    return unsafe { syscall(nr::CLONE, SIGCHLD, 0, 0, 0) };
}

/// `clock_gettime(clock)` in nanoseconds.
pub fn clock_ns(clock: usize) -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: `ts` is a valid struct timespec out-pointer.
    unsafe { syscall(nr::CLOCK_GETTIME, clock, ts.as_mut_ptr() as usize, 0, 0) };
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

pub const CLOCK_REALTIME: usize = 0;
pub const CLOCK_MONOTONIC: usize = 1;

/// A NUL-terminated C string as bytes (without the NUL).
///
/// # Safety
/// `p` points to a NUL-terminated string.
pub unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: the caller passes a NUL-terminated string. Volatile: the loop must
    // not become a call to strlen, which does not exist here.
    while unsafe { core::ptr::read_volatile(p.add(n)) } != 0 {
        n += 1;
    }
    // SAFETY: `n` bytes from `p` are readable.
    unsafe { core::slice::from_raw_parts(p, n) }
}

/// A path for the kernel: `s` copied into `buf` with a NUL; None when too long.
pub fn c_path<'a>(s: &[u8], buf: &'a mut [u8]) -> Option<&'a [u8]> {
    if s.len() + 1 > buf.len() || s.contains(&0) {
        return None;
    }
    buf[..s.len()].copy_from_slice(s);
    buf[s.len()] = 0;
    Some(&buf[..=s.len()])
}

/// A decimal number; None unless all digits.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as u64;
    }
    Some(n)
}

/// Entry from `_start` with the initial stack pointer (argc, argv..., 0, envp...);
/// each program defines `main(argc, argv, envp)`.
unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: the System V process entry stack layout.
    let argc = unsafe { *sp };
    let argv = unsafe { sp.add(1) } as *const *const u8;
    let envp = unsafe { argv.add(argc + 1) };
    // SAFETY: as above; `main` is the program's entry.
    exit(unsafe { crate::main(argc, argv, envp) })
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

// The compiler may emit calls to these; there is no libc to provide them. The
// loops use volatile accesses so they are not turned back into such calls.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller guarantees `n` writable bytes.
        unsafe { core::ptr::write_volatile(dst.add(i), c as u8) };
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller guarantees `n` readable and writable bytes.
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) {
        // SAFETY: forward copy is safe when dst is below src.
        return unsafe { memcpy(dst, src, n) };
    }
    for i in (0..n).rev() {
        // SAFETY: as for memcpy, copied backwards for overlap.
        unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller guarantees `n` readable bytes at both.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
