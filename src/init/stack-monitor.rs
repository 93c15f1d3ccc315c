//! `stack-monitor`: what stays beside every running container.
//!
//! `stack __monitor` creates and starts the container (its init is our child),
//! then execs this program, which keeps only what must outlive the CLI and the
//! daemon: the parent and subreaper of the container's init, the read ends of
//! its output pipes, and the stop sequence. It writes the output as JSON lines
//! (Docker's json-file shape, rotated by size), waits for the init to exit,
//! records the exit in `exit.json`, and exits. Restarts, healthchecks and
//! events belong to the supervisor in the daemon: a killed daemon loses no
//! output line and no exit code.
//!
//! Why a separate freestanding program (no libc, raw syscalls, like
//! `stack-init`): it runs once per container for the container's whole life,
//! so its memory is paid per container. The `stack` binary costs megabytes per
//! process; this costs a few pages.
//!
//! Usage (cwd is the container's state directory; fd 3 and fd 4 are the
//! stdout and stderr pipes, or fd 3 the master of a `tty: true` container's
//! pty; either may be closed or /dev/null):
//!
//! ```text
//! stack-monitor INIT_PID STOP_SIGNAL GRACE_MS LOG_MAX_SIZE LOG_MAX_FILES OOM_FILE OOM_BEFORE
//!               TAG [JOURNAL_SOCKET CONTAINER_NAME CONTAINER_ID IMAGE_NAME]
//! ```
//!
//! TAG is the rendered `logging.options.tag`, empty for none: each json-file
//! record carries it as `"attrs":{"tag":TAG}` (Docker's json-file shape for
//! the option), and the journal as CONTAINER_TAG and SYSLOG_IDENTIFIER. With
//! the journal arguments (`logging.driver: journald`) the output goes to the
//! journal (journal.rs) instead, and only a record the journal did not take is
//! written to the json-file log.
//!
//! Flow: poll the pipes and a signalfd (TERM/INT = stop, CHLD = reap) ->
//! on stop: STOP_SIGNAL to the init (repeated during its first second: a
//! namespace's init drops signals it has no handler for yet), SIGKILL after the
//! grace period (`stop-request` holds the stopper's, in ms) -> after the init
//! exits: reap the rest, drain the pipes for at most a second -> read the OOM
//! kill counter (OOM_FILE, `-` for none) -> write `exit.json` atomically -> exit.
#![no_std]
#![no_main]

#[path = "rt.rs"]
mod rt;

#[path = "journal.rs"]
mod journal;

use rt::{
    AT_FDCWD, CLOCK_MONOTONIC, CLOCK_REALTIME, ECHILD, EINTR, SIGCHLD, SIGINT, SIGKILL, SIGTERM,
    c_path, clock_ns, close, cstr, kill, nr, parse_u64, read, say, set_mask, syscall,
    wait_nohang, write_all,
};

/// Longest line stored as one record; longer output is split, as Docker does.
const MAX_RECORD: usize = 16 * 1024;
const MS: u64 = 1_000_000;
const RESEND_EVERY: u64 = 100 * MS;
const RESEND_WINDOW: u64 = 1000 * MS;
const DRAIN_FOR: u64 = 1000 * MS;
/// The exit code recorded when the init's status could not be collected.
const LOST: i32 = 255;

const LOG: &[u8] = b"container.log";
/// Longest tag kept (bytes); a longer one is cut. Bounds the record buffer.
const MAX_TAG: usize = 512;

struct Args {
    init: i32,
    stop_signal: usize,
    grace_ms: u64,
    max_size: u64,
    max_files: u64,
    oom_file: &'static [u8],
    oom_before: u64,
    /// Empty for none; at most [`MAX_TAG`] bytes.
    tag: &'static [u8],
    /// (socket, container name, container id, image name)
    journal: Option<[&'static [u8]; 4]>,
}

fn args(argc: usize, argv: *const *const u8) -> Option<Args> {
    if argc != 9 && argc != 13 {
        return None;
    }
    // SAFETY: argv holds argc NUL-terminated strings that live as long as the process.
    let arg = |i: usize| unsafe { cstr(*argv.add(i)) };
    Some(Args {
        init: parse_u64(arg(1)).filter(|&p| p > 0 && p < i32::MAX as u64)? as i32,
        stop_signal: parse_u64(arg(2)).filter(|&s| s > 0 && s < 65)? as usize,
        grace_ms: parse_u64(arg(3))?,
        max_size: parse_u64(arg(4))?,
        max_files: parse_u64(arg(5))?.max(1),
        oom_file: arg(6),
        oom_before: parse_u64(arg(7))?,
        tag: cut(arg(8), MAX_TAG),
        journal: (argc == 13).then(|| [arg(9), arg(10), arg(11), arg(12)]),
    })
}

/// Called by `rt` with the kernel's argc, argv and envp.
unsafe fn main(argc: usize, argv: *const *const u8, _envp: *const *const u8) -> i32 {
    let Some(args) = args(argc, argv) else {
        say(b"stack-monitor: usage: stack-monitor INIT_PID STOP_SIGNAL GRACE_MS LOG_MAX_SIZE LOG_MAX_FILES OOM_FILE OOM_BEFORE TAG [JOURNAL_SOCKET CONTAINER_NAME CONTAINER_ID IMAGE_NAME]\n");
        return 2;
    };
    let all: u64 = !0;
    set_mask(&all);
    let wanted: u64 = (1 << (SIGTERM - 1)) | (1 << (SIGINT - 1)) | (1 << (SIGCHLD - 1));
    // SAFETY: a valid sigset; -1 asks for a new signalfd. 0o4000|0o2000000 = NONBLOCK|CLOEXEC.
    let sigfd = unsafe {
        syscall(nr::SIGNALFD4, usize::MAX, &wanted as *const u64 as usize, 8, 0o4000 | 0o2000000)
    } as i32;
    if sigfd < 0 {
        say(b"stack-monitor: signalfd failed\n");
        return 1;
    }
    let journal = args.journal.and_then(|[socket, name, id, image]| {
        let j = journal::Journal::new(socket, name, id, image, args.tag);
        if j.is_none() {
            say(b"stack-monitor: no journal socket; output goes to container.log\n");
        }
        j
    });
    let mut log = Log::open(args.max_size, args.max_files, args.tag, journal);
    let mut pipes = [Pipe::new(3), Pipe::new(4)];
    let (exit_code, stopped) = supervise(&args, sigfd, &mut pipes, &mut log);
    for (i, p) in pipes.iter_mut().enumerate() {
        p.flush(&mut log, i);
    }
    let oom_killed = oom_kills(args.oom_file).is_some_and(|n| n > args.oom_before);
    if !record_exit(exit_code, oom_killed, stopped) {
        say(b"stack-monitor: cannot write exit.json\n");
        return 1;
    }
    0
}

/// Wait for the init to exit, storing output and running a requested stop.
/// Returns the init's exit code and whether a stop was requested.
fn supervise(args: &Args, sigfd: i32, pipes: &mut [Pipe; 2], log: &mut Log) -> (i32, bool) {
    let begun = clock_ns(CLOCK_MONOTONIC);
    let mut exit_code: Option<i32> = None;
    let mut stopped = false;
    let (mut kill_at, mut resend_at, mut drain_until) = (0u64, 0u64, 0u64);
    let mut children_left = true;
    // The init may have exited before our signalfd existed (its SIGCHLD is then
    // lost): reap once before waiting for the first signal.
    let mut reap_now = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let now = clock_ns(CLOCK_MONOTONIC);
        if let Some(code) = exit_code
            && ((pipes.iter().all(|p| p.fd < 0) && !children_left) || now >= drain_until)
        {
            return (code, stopped);
        }
        let deadline = [kill_at, resend_at, drain_until]
            .into_iter()
            .filter(|&t| t != 0)
            .min();
        poll(sigfd, pipes, deadline.map(|t| t.saturating_sub(now)));
        for (i, p) in pipes.iter_mut().enumerate() {
            p.pump(log, i);
        }
        let (stop, child) = drain_signals(sigfd, &mut buf);
        let now = clock_ns(CLOCK_MONOTONIC);
        if stop && !stopped && exit_code.is_none() {
            stopped = true;
            kill(args.init, args.stop_signal);
            kill_at = now + stop_grace(args.grace_ms) * MS;
            resend_at = now + RESEND_EVERY;
        }
        if resend_at != 0 && now >= resend_at {
            resend_at = if exit_code.is_none() && now < begun + RESEND_WINDOW {
                kill(args.init, args.stop_signal);
                now + RESEND_EVERY
            } else {
                0
            };
        }
        if kill_at != 0 && now >= kill_at {
            kill(args.init, SIGKILL);
            kill_at = 0;
        }
        if reap_now || child || exit_code.is_some() {
            reap_now = false;
            // As the subreaper we reap every process that ends up with us.
            loop {
                let (pid, code) = wait_nohang(-1);
                if pid == 0 || pid == -ECHILD {
                    children_left = pid == 0;
                    if pid == -ECHILD && exit_code.is_none() {
                        // Reaped by someone else before we were exec'd: the
                        // code is lost, the run is over all the same.
                        exit_code = Some(LOST);
                        drain_until = now + DRAIN_FOR;
                    }
                    break;
                }
                if pid < 0 {
                    break;
                }
                if pid == args.init as isize && exit_code.is_none() {
                    exit_code = Some(code);
                    kill_at = 0;
                    drain_until = now + DRAIN_FOR;
                }
            }
        }
    }
}

/// Wait until a descriptor is readable or `timeout_ns` passed (None: forever).
fn poll(sigfd: i32, pipes: &[Pipe; 2], timeout_ns: Option<u64>) {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    const POLLIN: i16 = 1;
    let mut fds = [
        PollFd { fd: sigfd, events: POLLIN, revents: 0 },
        PollFd { fd: pipes[0].fd, events: POLLIN, revents: 0 },
        PollFd { fd: pipes[1].fd, events: POLLIN, revents: 0 },
    ];
    let ts = timeout_ns.map(|t| [(t / 1_000_000_000) as i64, (t % 1_000_000_000) as i64]);
    let ts_ptr = ts.as_ref().map_or(0, |t| t.as_ptr() as usize);
    // SAFETY: `fds` and `ts` are valid for the call; negative fds are ignored by
    // the kernel; a null sigmask keeps ours (everything blocked).
    unsafe { syscall(nr::PPOLL, fds.as_mut_ptr() as usize, fds.len(), ts_ptr, 0) };
}

/// Read every pending signal: (stop requested, child exited).
fn drain_signals(sigfd: i32, buf: &mut [u8]) -> (bool, bool) {
    let (mut stop, mut child) = (false, false);
    loop {
        let n = read(sigfd, &mut buf[..128 * 8]);
        if n == -EINTR {
            continue;
        }
        if n <= 0 {
            return (stop, child);
        }
        // struct signalfd_siginfo is 128 bytes; ssi_signo comes first.
        for info in buf[..n as usize].chunks_exact(128) {
            let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as usize;
            stop |= signo == SIGTERM || signo == SIGINT;
            child |= signo == SIGCHLD;
        }
    }
}

/// The stopper's grace period (`stop-request`, ms), else the file's.
fn stop_grace(default_ms: u64) -> u64 {
    let mut buf = [0u8; 32];
    let n = read_file(b"stop-request", &mut buf);
    let asked = n.and_then(|n| parse_u64(trim(&buf[..n])));
    unlink(b"stop-request");
    asked.unwrap_or(default_ms)
}

/// The `oom_kill N` counter of memory.events (v2) or memory.oom_control (v1).
fn oom_kills(file: &[u8]) -> Option<u64> {
    if file == b"-" {
        return None;
    }
    let mut buf = [0u8; 1024];
    let n = read_file(file, &mut buf)?;
    buf[..n]
        .split(|&c| c == b'\n')
        .find_map(|line| line.strip_prefix(b"oom_kill "))
        .and_then(|v| parse_u64(trim(v)))
}

/// `exit.json`, written to a temp file, synced and renamed into place.
fn record_exit(code: i32, oom_killed: bool, stopped: bool) -> bool {
    let mut out = Buf::<256>::new();
    out.push(b"{\"exit_code\":");
    out.num(code as u64);
    out.push(b",\"oom_killed\":");
    out.push(if oom_killed { b"true" } else { b"false" });
    out.push(b",\"stop_requested\":");
    // A stop that arrived as the init exited on its own still counts.
    let mut probe = [0u8; 1];
    let stopped = stopped || read_file(b"stop-request", &mut probe).is_some();
    unlink(b"stop-request");
    out.push(if stopped { b"true" } else { b"false" });
    out.push(b",\"finished_at\":");
    out.num(clock_ns(CLOCK_REALTIME) / 1_000_000_000);
    out.push(b"}\n");
    let fd = open(b"exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0o644);
    if fd < 0 {
        return false;
    }
    let written = write_all(fd, out.bytes());
    // SAFETY: fsync of our own descriptor.
    let synced = unsafe { syscall(nr::FSYNC, fd as usize, 0, 0, 0) } == 0;
    close(fd);
    written && synced && rename(b"exit.json.tmp", b"exit.json")
}

/// One output pipe and its unterminated line.
struct Pipe {
    fd: i32,
    pending: [u8; MAX_RECORD],
    len: usize,
}

impl Pipe {
    fn new(fd: i32) -> Self {
        Pipe { fd, pending: [0; MAX_RECORD], len: 0 }
    }

    /// Read what is there (non-blocking by poll), store complete lines, keep
    /// the tail; a full buffer without a newline is stored as one record.
    fn pump(&mut self, log: &mut Log, stream: usize) {
        if self.fd < 0 {
            return;
        }
        // One read per wake-up keeps both streams and the signals served.
        let n = read_nonblocking(self.fd, &mut self.pending[self.len..]);
        match n {
            Read::Data(n) => self.len += n,
            Read::Again => return,
            Read::Closed => {
                close(self.fd);
                self.fd = -1;
                return;
            }
        }
        let mut start = 0;
        while let Some(pos) = self.pending[start..self.len].iter().position(|&c| c == b'\n') {
            log.record(stream, &self.pending[start..start + pos + 1]);
            start += pos + 1;
        }
        if start == 0 && self.len == MAX_RECORD {
            log.record(stream, &self.pending[..MAX_RECORD]);
            start = MAX_RECORD;
        }
        self.pending.copy_within(start..self.len, 0);
        self.len -= start;
    }

    /// Store what is left without a newline (the stream ended).
    fn flush(&mut self, log: &mut Log, stream: usize) {
        if self.len > 0 {
            log.record(stream, &self.pending[..self.len]);
            self.len = 0;
        }
    }
}

enum Read {
    Data(usize),
    Again,
    Closed,
}

/// Read what is there: `stack __monitor` made the pipes non-blocking.
fn read_nonblocking(fd: i32, buf: &mut [u8]) -> Read {
    match read(fd, buf) {
        n if n > 0 => Read::Data(n as usize),
        n if n == -EINTR || n == -rt::EAGAIN => Read::Again,
        _ => Read::Closed,
    }
}

/// Room for one record: the text and the tag escaped (at most 6 bytes per
/// byte, `\u00XX`) and the keys around them.
const OUT: usize = (MAX_RECORD + MAX_TAG) * 6 + 160;

/// The container's log file, rotated by size, or the journal.
struct Log {
    fd: i32,
    size: u64,
    max_size: u64,
    max_files: u64,
    tag: &'static [u8],
    out: [u8; OUT],
    journal: Option<journal::Journal>,
}

impl Log {
    /// Append to `container.log`; `max_size == 0` means logging is off. With
    /// a journal, the file is opened when the journal first refuses a record.
    fn open(
        max_size: u64,
        max_files: u64,
        tag: &'static [u8],
        journal: Option<journal::Journal>,
    ) -> Self {
        let out = [0; OUT];
        let mut log = Log { fd: -1, size: 0, max_size, max_files, tag, out, journal };
        if max_size > 0 && log.journal.is_none() {
            log.reopen();
        }
        log
    }

    fn reopen(&mut self) {
        self.fd = open(LOG, O_WRONLY | O_CREAT | O_APPEND, 0o640);
        // SAFETY: lseek on our descriptor (SEEK_END = 2).
        let end = unsafe { syscall(nr::LSEEK, self.fd as usize, 0, 2, 0) };
        self.size = end.max(0) as u64;
    }

    /// `{"log":"...","stream":"stdout","time":"...Z"}\n` with one write, so a
    /// reader never sees half a record from two writers; with a tag,
    /// `"attrs":{"tag":"..."}` before `time`, where Docker puts it.
    fn record(&mut self, stream: usize, text: &[u8]) {
        let now = clock_ns(CLOCK_REALTIME);
        if let Some(j) = &mut self.journal
            && j.send(stream, text, now)
        {
            return;
        }
        if self.max_size == 0 {
            return;
        }
        if self.fd < 0 {
            self.reopen();
        }
        let mut n = put(&mut self.out, 0, b"{\"log\":\"");
        n = escape_json(&mut self.out, n, text);
        let name: &[u8] = if stream == 0 { b"\",\"stream\":\"stdout\"" } else { b"\",\"stream\":\"stderr\"" };
        n = put(&mut self.out, n, name);
        if !self.tag.is_empty() {
            n = put(&mut self.out, n, b",\"attrs\":{\"tag\":\"");
            n = escape_json(&mut self.out, n, self.tag);
            n = put(&mut self.out, n, b"\"}");
        }
        n = put(&mut self.out, n, b",\"time\":\"");
        n = rfc3339(&mut self.out, n, now);
        n = put(&mut self.out, n, b"\"}\n");
        if self.size > 0 && self.size + n as u64 > self.max_size {
            self.rotate();
        }
        if self.fd >= 0 && write_all(self.fd, &self.out[..n]) {
            self.size += n as u64;
        }
    }

    /// container.log -> .1 -> .2 ...; the oldest beyond max_files is dropped.
    fn rotate(&mut self) {
        close(self.fd);
        let keep = self.max_files;
        if keep == 1 {
            unlink(LOG);
        } else {
            let mut a = Buf::<64>::new();
            a.push(LOG);
            a.push(b".");
            a.num(keep - 1);
            unlink(a.bytes());
            for i in (1..keep - 1).rev() {
                let (mut from, mut to) = (Buf::<64>::new(), Buf::<64>::new());
                from.push(LOG);
                from.push(b".");
                from.num(i);
                to.push(LOG);
                to.push(b".");
                to.num(i + 1);
                rename(from.bytes(), to.bytes());
            }
            let mut first = Buf::<64>::new();
            first.push(LOG);
            first.push(b".1");
            rename(LOG, first.bytes());
        }
        self.reopen();
    }
}

/// The first `max` bytes of `s`.
fn cut(s: &'static [u8], max: usize) -> &'static [u8] {
    &s[..s.len().min(max)]
}

fn put(out: &mut [u8], at: usize, s: &[u8]) -> usize {
    out[at..at + s.len()].copy_from_slice(s);
    at + s.len()
}

/// `text` as the inside of a JSON string; invalid UTF-8 becomes U+FFFD, as
/// `String::from_utf8_lossy` does.
fn escape_json(out: &mut [u8], mut at: usize, text: &[u8]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in text.utf8_chunks() {
        for &c in chunk.valid().as_bytes() {
            at = match c {
                b'"' => put(out, at, b"\\\""),
                b'\\' => put(out, at, b"\\\\"),
                b'\n' => put(out, at, b"\\n"),
                b'\r' => put(out, at, b"\\r"),
                b'\t' => put(out, at, b"\\t"),
                0..0x20 | 0x7f => {
                    let e = [b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]];
                    put(out, at, &e)
                }
                _ => put(out, at, &[c]),
            };
        }
        if !chunk.invalid().is_empty() {
            at = put(out, at, "\u{fffd}".as_bytes());
        }
    }
    at
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` for nanoseconds since the epoch (UTC).
fn rfc3339(out: &mut [u8], at: usize, ns: u64) -> usize {
    let secs = ns / 1_000_000_000;
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let tod = secs % 86400;
    let mut b = Buf::<32>::new();
    b.pad(y as u64, 4);
    b.push(b"-");
    b.pad(m as u64, 2);
    b.push(b"-");
    b.pad(d as u64, 2);
    b.push(b"T");
    b.pad(tod / 3600, 2);
    b.push(b":");
    b.pad(tod / 60 % 60, 2);
    b.push(b":");
    b.pad(tod % 60, 2);
    b.push(b".");
    b.pad(ns % 1_000_000_000, 9);
    b.push(b"Z");
    put(out, at, b.bytes())
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// A small fixed-size byte buffer for names and numbers.
struct Buf<const N: usize> {
    b: [u8; N],
    n: usize,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Buf { b: [0; N], n: 0 }
    }
    fn push(&mut self, s: &[u8]) {
        let take = s.len().min(N - self.n);
        self.b[self.n..self.n + take].copy_from_slice(&s[..take]);
        self.n += take;
    }
    fn num(&mut self, v: u64) {
        self.pad(v, 1);
    }
    /// `v` in decimal, zero-padded to at least `width` digits.
    fn pad(&mut self, mut v: u64, width: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        while v > 0 || digits.len() - i < width {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.push(&digits[i..]);
    }
    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &s[..end]
}

const O_WRONLY: usize = 0o1;
const O_CREAT: usize = 0o100;
const O_TRUNC: usize = 0o1000;
const O_APPEND: usize = 0o2000;
const O_CLOEXEC: usize = 0o2000000;

fn open(path: &[u8], flags: usize, mode: usize) -> i32 {
    let mut buf = [0u8; 4096];
    let Some(p) = c_path(path, &mut buf) else {
        return -1;
    };
    // SAFETY: `p` is NUL-terminated.
    let fd = unsafe { syscall(nr::OPENAT, AT_FDCWD, p.as_ptr() as usize, flags | O_CLOEXEC, mode) };
    fd as i32
}

/// Read a small file whole; None when it cannot be read.
fn read_file(path: &[u8], buf: &mut [u8]) -> Option<usize> {
    let fd = open(path, 0, 0);
    if fd < 0 {
        return None;
    }
    let mut n = 0;
    while n < buf.len() {
        let got = read(fd, &mut buf[n..]);
        if got == -EINTR {
            continue;
        }
        if got <= 0 {
            break;
        }
        n += got as usize;
    }
    close(fd);
    Some(n)
}

fn unlink(path: &[u8]) {
    let mut buf = [0u8; 4096];
    if let Some(p) = c_path(path, &mut buf) {
        // SAFETY: `p` is NUL-terminated.
        unsafe { syscall(nr::UNLINKAT, AT_FDCWD, p.as_ptr() as usize, 0, 0) };
    }
}

fn rename(from: &[u8], to: &[u8]) -> bool {
    let (mut a, mut b) = ([0u8; 256], [0u8; 256]);
    let (Some(f), Some(t)) = (c_path(from, &mut a), c_path(to, &mut b)) else {
        return false;
    };
    // renameat2 takes five arguments; flags (the fifth, r8/x4) must be 0.
    rename_at(f.as_ptr(), t.as_ptr()) == 0
}

#[cfg(target_arch = "x86_64")]
fn rename_at(from: *const u8, to: *const u8) -> isize {
    let ret: isize;
    // SAFETY: renameat2(AT_FDCWD, from, AT_FDCWD, to, 0) with NUL-terminated paths.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") nr::RENAMEAT2 as isize => ret,
            in("rdi") AT_FDCWD, in("rsi") from, in("rdx") AT_FDCWD, in("r10") to, in("r8") 0usize,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "aarch64")]
fn rename_at(from: *const u8, to: *const u8) -> isize {
    let ret: isize;
    // SAFETY: renameat2(AT_FDCWD, from, AT_FDCWD, to, 0) with NUL-terminated paths.
    unsafe {
        core::arch::asm!("svc 0", in("x8") nr::RENAMEAT2, inlateout("x0") AT_FDCWD as isize => ret,
            in("x1") from, in("x2") AT_FDCWD, in("x3") to, in("x4") 0usize, options(nostack));
    }
    ret
}
