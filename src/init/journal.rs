//! The journald sink of `stack-monitor` (`logging.driver: journald`): each
//! output record becomes one journal entry with the fields Docker's journald
//! driver sets, sent over journald's native protocol.
//!
//! Protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL): one datagram per entry to
//! the journal's `AF_UNIX` datagram socket, each field `KEY=value\n`, or
//! `KEY\n` + the value's length (u64, little endian) + value + `\n` when the
//! value holds a newline. An entry too big for a datagram (`EMSGSIZE`,
//! `ENOBUFS`) is written to a sealed memfd whose descriptor is sent instead
//! (`SCM_RIGHTS`, no payload).
//!
//! Fields: MESSAGE (the line without its newline), PRIORITY (6 stdout, 3
//! stderr), CONTAINER_NAME, CONTAINER_ID (12 hex digits), CONTAINER_ID_FULL,
//! CONTAINER_TAG and SYSLOG_IDENTIFIER (`logging.options.tag`, else the short
//! id, Docker's default tag),
//! IMAGE_NAME, SYSLOG_TIMESTAMP. A line longer than a record (16 KiB) comes in
//! pieces, as from Docker: CONTAINER_PARTIAL_ID (one per line),
//! CONTAINER_PARTIAL_ORDINAL (from 1), CONTAINER_PARTIAL_LAST, and
//! CONTAINER_PARTIAL_MESSAGE=true on every piece but the last.
//!
//! Caveat: a send that fails (journald gone, or blocked for [`SEND_TIMEOUT`])
//! returns false and the caller stores the record in the json-file log; the
//! journal is tried again [`RETRY_AFTER`] later, so a stuck journald slows the
//! container's output by at most one timeout per retry.
use crate::rt::{CLOCK_MONOTONIC, EINTR, c_path, clock_ns, close, syscall, write_all};

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const SOCKET: usize = 41;
    pub const SENDMSG: usize = 46;
    pub const SETSOCKOPT: usize = 54;
    pub const FCNTL: usize = 72;
    pub const GETRANDOM: usize = 318;
    pub const MEMFD_CREATE: usize = 319;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const FCNTL: usize = 25;
    pub const SOCKET: usize = 198;
    pub const SETSOCKOPT: usize = 208;
    pub const SENDMSG: usize = 211;
    pub const GETRANDOM: usize = 278;
    pub const MEMFD_CREATE: usize = 279;
}

const AF_UNIX: usize = 1;
const SOCK_DGRAM: usize = 2;
const SOCK_CLOEXEC: usize = 0o2000000;
const SOL_SOCKET: usize = 1;
const SO_SNDTIMEO: usize = 21;
const MSG_NOSIGNAL: usize = 0x4000;
const SCM_RIGHTS: i32 = 1;
const EMSGSIZE: isize = 90;
const ENOBUFS: isize = 105;
const MFD_CLOEXEC: usize = 1;
const MFD_ALLOW_SEALING: usize = 2;
const F_ADD_SEALS: usize = 1033;
/// F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE: journald refuses
/// a memfd that could still change under it.
const ALL_SEALS: usize = 1 | 2 | 4 | 8;

const MS: u64 = 1_000_000;
/// How long one send may block on a full journal socket.
const SEND_TIMEOUT: u64 = 1000 * MS;
/// After a failed send, records go to the json-file log for this long.
const RETRY_AFTER: u64 = 1000 * MS;

/// Room for one entry: a record (sent as it is, unescaped) and the fields.
const ENTRY: usize = crate::MAX_RECORD + FIXED + 1024;
/// The fixed fields: a name, two ids, the tag twice (at most `MAX_TAG` bytes)
/// and the image (cut at 256 bytes).
const FIXED: usize = 2048;

#[repr(C)]
struct SockAddrUn {
    family: u16,
    path: [u8; 108],
}

#[repr(C)]
struct IoVec {
    base: *const u8,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *const SockAddrUn,
    name_len: u32,
    iov: *const IoVec,
    iov_len: usize,
    control: *const u8,
    control_len: usize,
    flags: i32,
}

/// The pieces of one over-long line on one stream.
#[derive(Clone, Copy)]
struct Partial {
    /// 0: no line in pieces; else the ordinal of the next piece.
    next: u64,
    id: [u8; 64],
}

pub struct Journal {
    fd: i32,
    addr: SockAddrUn,
    addr_len: u32,
    /// The fields every entry carries (name, ids, tag, image).
    fixed: [u8; FIXED],
    fixed_len: usize,
    entry: [u8; ENTRY],
    partial: [Partial; 2],
    /// CLOCK_MONOTONIC before which no send is tried (after a failure).
    down_until: u64,
}

impl Journal {
    /// A sink sending to the socket at `path` for container `name`, `id` (64
    /// hex digits), image `image`, tag `tag` (empty: the short id); None
    /// when no socket can be made or the fields do not fit.
    pub fn new(path: &[u8], name: &[u8], id: &[u8], image: &[u8], tag: &[u8]) -> Option<Journal> {
        let mut addr = SockAddrUn { family: AF_UNIX as u16, path: [0; 108] };
        c_path(path, &mut addr.path)?;
        // SAFETY: socket(2) has no memory arguments.
        let fd = unsafe { syscall(nr::SOCKET, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0) } as i32;
        if fd < 0 {
            return None;
        }
        let timeout = [(SEND_TIMEOUT / 1_000_000_000) as i64, (SEND_TIMEOUT % 1_000_000_000 / 1000) as i64];
        set_send_timeout(fd, &timeout);
        let mut j = Journal {
            fd,
            addr,
            addr_len: (2 + path.len() + 1) as u32,
            fixed: [0; FIXED],
            fixed_len: 0,
            entry: [0; ENTRY],
            partial: [Partial { next: 0, id: [0; 64] }; 2],
            down_until: 0,
        };
        let short = &id[..id.len().min(12)];
        let tag = if tag.is_empty() { short } else { tag };
        let mut n = 0;
        for (key, value) in [
            (&b"CONTAINER_NAME"[..], name),
            (b"CONTAINER_ID", short),
            (b"CONTAINER_ID_FULL", id),
            (b"CONTAINER_TAG", tag),
            (b"SYSLOG_IDENTIFIER", tag),
            (b"IMAGE_NAME", &image[..image.len().min(256)]),
        ] {
            n = field(&mut j.fixed, n, key, value)?;
        }
        j.fixed_len = n;
        Some(j)
    }

    /// Send one record of `stream` (0 stdout, 1 stderr): a line with its
    /// newline, a full record without one (a piece of a longer line), or the
    /// unterminated end of the stream. False when it did not reach the journal.
    pub fn send(&mut self, stream: usize, text: &[u8], time_ns: u64) -> bool {
        let Some(n) = self.encode(stream, text, time_ns) else {
            return false;
        };
        let now = clock_ns(CLOCK_MONOTONIC);
        if now < self.down_until {
            return false;
        }
        let sent = match self.send_datagram(n) {
            Sent::Yes => true,
            Sent::TooBig => self.send_memfd(n),
            Sent::No => false,
        };
        if !sent {
            self.down_until = now + RETRY_AFTER;
        }
        sent
    }

    /// The entry for `text` in `self.entry`; its length.
    fn encode(&mut self, stream: usize, text: &[u8], time_ns: u64) -> Option<usize> {
        let (message, piece) = match text.strip_suffix(b"\n") {
            Some(line) => (line, false),
            None => (text, text.len() == crate::MAX_RECORD),
        };
        let e = &mut self.entry;
        let mut n = field(e, 0, b"MESSAGE", message)?;
        n = field(e, n, b"PRIORITY", if stream == 0 { b"6" } else { b"3" })?;
        n = put(e, n, &self.fixed[..self.fixed_len])?;
        let mut stamp = [0u8; 40];
        let len = crate::rfc3339(&mut stamp, 0, time_ns);
        n = field(e, n, b"SYSLOG_TIMESTAMP", &stamp[..len])?;
        let p = &mut self.partial[stream.min(1)];
        if p.next == 0 && !piece {
            return Some(n);
        }
        if p.next == 0 {
            p.id = random_id();
            p.next = 1;
        }
        let mut ordinal = [0u8; 20];
        let digits = decimal(p.next, &mut ordinal);
        n = field(e, n, b"CONTAINER_PARTIAL_ID", &p.id)?;
        n = field(e, n, b"CONTAINER_PARTIAL_ORDINAL", digits)?;
        n = field(e, n, b"CONTAINER_PARTIAL_LAST", if piece { b"false" } else { b"true" })?;
        if piece {
            n = field(e, n, b"CONTAINER_PARTIAL_MESSAGE", b"true")?;
            p.next += 1;
        } else {
            p.next = 0;
        }
        Some(n)
    }

    fn send_datagram(&self, n: usize) -> Sent {
        let iov = IoVec { base: self.entry.as_ptr(), len: n };
        let msg = MsgHdr {
            name: &self.addr,
            name_len: self.addr_len,
            iov: &iov,
            iov_len: 1,
            control: core::ptr::null(),
            control_len: 0,
            flags: 0,
        };
        match sendmsg(self.fd, &msg) {
            r if r >= 0 => Sent::Yes,
            r if r == -EMSGSIZE || r == -ENOBUFS => Sent::TooBig,
            _ => Sent::No,
        }
    }

    /// The entry in a sealed memfd, its descriptor sent in place of a payload.
    fn send_memfd(&self, n: usize) -> bool {
        let name = b"journal-entry\0";
        // SAFETY: a NUL-terminated name; no other memory arguments.
        let fd = unsafe {
            syscall(nr::MEMFD_CREATE, name.as_ptr() as usize, MFD_CLOEXEC | MFD_ALLOW_SEALING, 0, 0)
        } as i32;
        if fd < 0 {
            return false;
        }
        // SAFETY: fcntl(F_ADD_SEALS) on our own descriptor.
        let sealed = write_all(fd, &self.entry[..n])
            && unsafe { syscall(nr::FCNTL, fd as usize, F_ADD_SEALS, ALL_SEALS, 0) } == 0;
        // struct cmsghdr { size_t len; int level; int type; } + one int,
        // padded to CMSG_SPACE(4) = 24 bytes; u64s keep it aligned.
        let mut control = [0u64; 3];
        control[0] = 16 + 4;
        control[1] = (SOL_SOCKET as u64) | ((SCM_RIGHTS as u64) << 32);
        control[2] = fd as u32 as u64;
        let msg = MsgHdr {
            name: &self.addr,
            name_len: self.addr_len,
            iov: core::ptr::null(),
            iov_len: 0,
            control: control.as_ptr() as *const u8,
            control_len: 24,
            flags: 0,
        };
        let sent = sealed && sendmsg(self.fd, &msg) >= 0;
        close(fd);
        sent
    }
}

enum Sent {
    Yes,
    TooBig,
    No,
}

fn sendmsg(fd: i32, msg: &MsgHdr) -> isize {
    loop {
        // SAFETY: `msg` and everything it points to live for the call.
        let r = unsafe { syscall(nr::SENDMSG, fd as usize, msg as *const MsgHdr as usize, MSG_NOSIGNAL, 0) };
        if r != -EINTR {
            return r;
        }
    }
}

fn set_send_timeout(fd: i32, timeval: &[i64; 2]) {
    // SAFETY: `timeval` is a valid struct timeval for the call. Best effort:
    // without it a send blocks until journald reads.
    unsafe {
        setsockopt(fd, timeval.as_ptr() as usize, 16);
    }
}

/// setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, value, len): five arguments.
///
/// # Safety
/// `value` points to `len` readable bytes.
#[cfg(target_arch = "x86_64")]
unsafe fn setsockopt(fd: i32, value: usize, len: usize) -> isize {
    let ret: isize;
    // SAFETY: as the caller promises; r8 carries the fifth argument.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") nr::SETSOCKOPT as isize => ret,
            in("rdi") fd as usize, in("rsi") SOL_SOCKET, in("rdx") SO_SNDTIMEO, in("r10") value,
            in("r8") len, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, value, len): five arguments.
///
/// # Safety
/// `value` points to `len` readable bytes.
#[cfg(target_arch = "aarch64")]
unsafe fn setsockopt(fd: i32, value: usize, len: usize) -> isize {
    let ret: isize;
    // SAFETY: as the caller promises; x4 carries the fifth argument.
    unsafe {
        core::arch::asm!("svc 0", in("x8") nr::SETSOCKOPT, inlateout("x0") fd as isize => ret,
            in("x1") SOL_SOCKET, in("x2") SO_SNDTIMEO, in("x3") value, in("x4") len,
            options(nostack));
    }
    ret
}

/// One field at `out[at..]`: `KEY=value\n`, or the binary form when `value`
/// holds a newline. None when it does not fit.
fn field(out: &mut [u8], at: usize, key: &[u8], value: &[u8]) -> Option<usize> {
    if !value.contains(&b'\n') {
        let n = put(out, at, key)?;
        let n = put(out, n, b"=")?;
        let n = put(out, n, value)?;
        return put(out, n, b"\n");
    }
    let n = put(out, at, key)?;
    let n = put(out, n, b"\n")?;
    let n = put(out, n, &(value.len() as u64).to_le_bytes())?;
    let n = put(out, n, value)?;
    put(out, n, b"\n")
}

fn put(out: &mut [u8], at: usize, s: &[u8]) -> Option<usize> {
    out.get_mut(at..at + s.len())?.copy_from_slice(s);
    Some(at + s.len())
}

fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// 64 random hex digits (Docker's partial ids have this shape); from the
/// clock when getrandom fails.
fn random_id() -> [u8; 64] {
    let mut raw = [0u8; 32];
    // SAFETY: `raw` is writable for its length; flags 0.
    let got = unsafe { syscall(nr::GETRANDOM, raw.as_mut_ptr() as usize, raw.len(), 0, 0) };
    if got != raw.len() as isize {
        let t = clock_ns(CLOCK_MONOTONIC).to_le_bytes();
        for (i, b) in raw.iter_mut().enumerate() {
            *b = t[i % 8] ^ (i as u8);
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 64];
    for (i, b) in raw.iter().enumerate() {
        id[2 * i] = HEX[(b >> 4) as usize];
        id[2 * i + 1] = HEX[(b & 15) as usize];
    }
    id
}
