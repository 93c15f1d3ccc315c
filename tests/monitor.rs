//! stack-monitor, the process beside every container, on plain processes:
//! the test forks a process that forks the "container" with the pipes and
//! then execs the monitor, so the monitor is its parent as in production.
//! No root needed.
mod common;

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use serde_json::Value;

fn monitor() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        stack::supervisor::helpers::install_monitor(&common::process_temp_dir("stack-monitor-test"))
            .unwrap()
    })
}

struct Run {
    dir: tempfile::TempDir,
    pid: i32,
}

/// Options of one run: `stop_signal grace_ms max_size max_files oom_file oom_before`.
struct Opts {
    grace_ms: u64,
    max_size: u64,
    max_files: u64,
    oom: Option<(&'static str, u64)>,
    /// The journal socket (with name `c-1`, a fixed id and image `img`).
    journal: Option<PathBuf>,
    /// The rendered log tag; empty for none.
    tag: &'static str,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            grace_ms: 2000,
            max_size: 1 << 30,
            max_files: 3,
            oom: None,
            journal: None,
            tag: "",
        }
    }
}

/// Fork the monitor, which forks the "container" (`sh -c script` on the
/// pipes) and then execs stack-monitor with its pid: the same shape as
/// `stack __monitor`. Everything is prepared before fork; the children only
/// call fork, dup2, close and execv (async-signal-safe).
fn start(script: &str, opts: Opts) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    for fd in [&out_r, &err_r] {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    }
    let oom_file = match opts.oom {
        Some((text, _)) => {
            let p = dir.path().join("memory.events");
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        }
        None => "-".into(),
    };
    let c = |s: &str| CString::new(s).unwrap();
    let sh = [c("/bin/sh"), c("-c"), c(script)];
    let sh_argv: Vec<*const libc::c_char> = sh
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let program = c(&monitor().display().to_string());
    let mut args = vec![
        c("stack-monitor"),
        c("0000000000"),
        c("15"),
        c(&opts.grace_ms.to_string()),
        c(&opts.max_size.to_string()),
        c(&opts.max_files.to_string()),
        c(&oom_file),
        c(&opts.oom.map_or(0, |(_, before)| before).to_string()),
        c(opts.tag),
    ];
    if let Some(socket) = &opts.journal {
        let id = "ab".repeat(32);
        args.extend([c(&socket.display().to_string()), c("c-1"), c(&id), c("img")]);
    }
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let pid_slot = args[1].as_ptr() as *mut u8;
    let cwd = c(&dir.path().display().to_string());
    let fds = [
        out_r.as_raw_fd(),
        err_r.as_raw_fd(),
        out_w.as_raw_fd(),
        err_w.as_raw_fd(),
    ];
    // SAFETY: see the function's doc; all memory used after fork exists already.
    let monitor_pid = unsafe { libc::fork() };
    assert!(monitor_pid >= 0);
    if monitor_pid == 0 {
        // SAFETY: async-signal-safe calls only, on memory prepared before fork.
        unsafe {
            let container = libc::fork();
            if container == 0 {
                libc::dup2(fds[2], 1);
                libc::dup2(fds[3], 2);
                libc::execv(sh_argv[0], sh_argv.as_ptr());
                libc::_exit(127);
            }
            write_pid(pid_slot, container);
            // The pipes become fd 3 and 4, through copies above 10.
            let high = [
                libc::fcntl(fds[0], libc::F_DUPFD_CLOEXEC, 10),
                libc::fcntl(fds[1], libc::F_DUPFD_CLOEXEC, 10),
            ];
            libc::dup2(high[0], 3);
            libc::dup2(high[1], 4);
            libc::chdir(cwd.as_ptr());
            libc::execv(program.as_ptr(), argv.as_ptr());
            libc::_exit(126);
        }
    }
    drop((out_r, err_r, out_w, err_w));
    Run {
        dir,
        pid: monitor_pid,
    }
}

/// The pid in decimal, right-aligned with leading zeros, into the 10-byte slot.
unsafe fn write_pid(slot: *mut u8, pid: i32) {
    let mut v = pid as u32;
    for i in (0..10).rev() {
        // SAFETY: the slot is the 10 digits of a CString made for it.
        unsafe { *slot.add(i) = b'0' + (v % 10) as u8 };
        v /= 10;
    }
}

impl Run {
    fn wait(self) -> Finished {
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None).unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(self.pid), 0),
            "the monitor failed"
        );
        Finished { dir: self.dir }
    }

    fn wait_for_log(&self, what: &str) {
        for _ in 0..200 {
            if std::fs::read_to_string(self.dir.path().join("container.log"))
                .is_ok_and(|s| s.contains(what))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{what} never appeared in the log");
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        common::signal(self.pid, sig).unwrap();
    }
}

struct Finished {
    dir: tempfile::TempDir,
}

impl Finished {
    fn exit(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("exit.json")).unwrap())
            .unwrap()
    }

    /// (stream, text) of every record, oldest file first.
    fn records(&self) -> Vec<(String, String)> {
        let log = self.dir.path().join("container.log");
        stack::supervisor::logs::read_all(&log)
            .unwrap()
            .into_iter()
            .map(|r| {
                let stream = serde_json::to_value(r.stream).unwrap();
                (stream.as_str().unwrap().to_string(), r.log)
            })
            .collect()
    }

    fn texts(&self, stream: &str) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, t)| t)
            .collect()
    }
}

#[test]
fn a_burst_of_100k_lines_arrives_whole_and_in_order_per_stream() {
    let f = start("seq 1 100000; seq 1 50000 >&2", Opts::default()).wait();
    let want = |n: usize| (1..=n).map(|i| format!("{i}\n")).collect::<Vec<_>>();
    assert_eq!(f.texts("stdout"), want(100_000));
    assert_eq!(f.texts("stderr"), want(50_000));
    assert_eq!(f.exit()["exit_code"], 0);
    assert_eq!(f.exit()["stop_requested"], false);
}

#[test]
fn the_exit_code_is_recorded_and_output_without_newline_is_kept() {
    let f = start("echo out; printf 'no newline'; exit 3", Opts::default()).wait();
    assert_eq!(f.texts("stdout"), ["out\n", "no newline"]);
    let exit = f.exit();
    assert_eq!(
        (exit["exit_code"].as_i64(), exit["oom_killed"].as_bool()),
        (Some(3), Some(false))
    );
    assert!(exit["finished_at"].as_u64().unwrap() > 1_700_000_000);
}

#[test]
fn rotation_keeps_max_files_complete_and_in_order() {
    let opts = Opts {
        max_size: 3000,
        max_files: 3,
        ..Default::default()
    };
    let f = start("seq 1 2000", opts).wait();
    let log = f.dir.path().join("container.log");
    let files = stack::supervisor::logs::files_oldest_first(&log);
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        assert!(std::fs::metadata(file).unwrap().len() <= 3000);
    }
    let got = f.texts("stdout");
    assert_eq!(got.last().unwrap(), "2000\n");
    let first: usize = got[0].trim().parse().unwrap();
    assert!(first > 1, "the oldest lines were dropped");
    let want: Vec<String> = (first..=2000).map(|i| format!("{i}\n")).collect();
    assert_eq!(got, want);
}

#[test]
fn long_lines_are_split_and_any_bytes_become_valid_json() {
    let f = start(
        r#"head -c 40000 /dev/zero | tr '\0' x; echo; printf '"q" \\ \t \001 \377 é\n'"#,
        Opts::default(),
    )
    .wait();
    let got = f.texts("stdout");
    assert_eq!(
        got.len(),
        4,
        "16 KiB records: {:?}",
        got.iter().map(String::len).collect::<Vec<_>>()
    );
    assert_eq!(got[..3].concat(), "x".repeat(40000) + "\n");
    assert_eq!(got[3], "\"q\" \\ \t \u{1} \u{fffd} é\n");
}

#[test]
fn a_tag_goes_into_attrs_of_every_record_escaped_as_json() {
    let opts = Opts {
        tag: "web \"1\" \\ \t é",
        ..Default::default()
    };
    let f = start("echo one; echo two >&2", opts).wait();
    let text = std::fs::read_to_string(f.dir.path().join("container.log")).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    for r in &records {
        assert_eq!(r["attrs"]["tag"], "web \"1\" \\ \t é", "{text}");
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["attrs", "log", "stream", "time"], "{text}");
    }
    // Docker's order: log, stream, attrs, time.
    assert!(
        text.lines().all(|l| l.contains("\",\"attrs\":{\"tag\":")),
        "{text}"
    );
    assert_eq!(f.texts("stdout"), ["one\n"]);
    assert_eq!(f.texts("stderr"), ["two\n"]);
}

#[test]
fn a_stop_sends_the_stop_signal_and_is_recorded() {
    let run = start(
        "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done",
        Opts::default(),
    );
    run.wait_for_log("up");
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let f = run.wait();
    assert_eq!(f.texts("stdout"), ["up\n", "bye\n"]);
    assert_eq!(f.exit()["exit_code"], 0);
    assert_eq!(f.exit()["stop_requested"], true);
}

#[test]
fn a_process_ignoring_the_stop_signal_is_killed_after_the_grace_period() {
    let opts = Opts {
        grace_ms: 300,
        ..Default::default()
    };
    let run = start("trap '' TERM; echo up; while :; do sleep 0.05; done", opts);
    run.wait_for_log("up");
    let asked = std::time::Instant::now();
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let f = run.wait();
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "not before the grace period"
    );
    assert_eq!(f.exit()["exit_code"], 137);
}

#[test]
fn the_stoppers_grace_period_overrides_the_default() {
    let run = start(
        "trap '' TERM; echo up; while :; do sleep 0.05; done",
        Opts::default(),
    );
    run.wait_for_log("up");
    std::fs::write(run.dir.path().join("stop-request"), "100").unwrap();
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let f = run.wait();
    assert_eq!(f.exit()["exit_code"], 137);
    assert!(
        !f.dir.path().join("stop-request").exists(),
        "the request is consumed"
    );
}

#[test]
fn a_kill_marked_as_a_stop_counts_as_one() {
    let run = start("echo up; exec sleep 60", Opts::default());
    run.wait_for_log("up");
    std::fs::write(run.dir.path().join("stop-request"), "0").unwrap();
    let out = std::process::Command::new("pkill")
        .args(["-KILL", "-P", &run.pid.to_string()])
        .status()
        .unwrap();
    assert!(out.success());
    let f = run.wait();
    assert_eq!(
        (
            f.exit()["exit_code"].as_i64(),
            f.exit()["stop_requested"].as_bool()
        ),
        (Some(137), Some(true))
    );
}

#[test]
fn an_oom_kill_counted_during_the_run_is_reported() {
    let opts = Opts {
        oom: Some(("oom 1\noom_kill 2\n", 1)),
        ..Default::default()
    };
    assert_eq!(start("exit 137", opts).wait().exit()["oom_killed"], true);
    let opts = Opts {
        oom: Some(("oom 1\noom_kill 2\n", 2)),
        ..Default::default()
    };
    assert_eq!(start("exit 137", opts).wait().exit()["oom_killed"], false);
}

#[test]
fn logging_off_writes_no_log() {
    let opts = Opts {
        max_size: 0,
        ..Default::default()
    };
    let f = start("echo x", opts).wait();
    assert!(!f.dir.path().join("container.log").exists());
    assert_eq!(f.exit()["exit_code"], 0);
}

#[test]
fn journal_records_go_to_the_file_once_the_journal_is_gone() {
    use std::os::unix::net::UnixDatagram;
    let side = tempfile::tempdir().unwrap();
    let socket = side.path().join("journal.sock");
    let go = side.path().join("go");
    let journal = UnixDatagram::bind(&socket).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let script = format!(
        "echo one; while [ ! -e {} ]; do sleep 0.05; done; echo two; printf tail",
        go.display()
    );
    let run = start(
        &script,
        Opts {
            journal: Some(socket.clone()),
            ..Opts::default()
        },
    );
    let mut buf = vec![0u8; 64 * 1024];
    let n = journal.recv(&mut buf).expect("an entry for `one`");
    let entry = String::from_utf8_lossy(&buf[..n]).into_owned();
    let fields: Vec<&str> = entry.lines().collect();
    for want in [
        "MESSAGE=one",
        "PRIORITY=6",
        "CONTAINER_NAME=c-1",
        "CONTAINER_ID=abababababab",
        "IMAGE_NAME=img",
    ] {
        assert!(fields.contains(&want), "{want} in {entry:?}");
    }
    // the journal goes away: what follows is kept in container.log
    drop(journal);
    std::fs::remove_file(&socket).unwrap();
    std::fs::write(&go, "").unwrap();
    let done = run.wait();
    assert_eq!(done.texts("stdout"), ["two\n", "tail"]);
}
