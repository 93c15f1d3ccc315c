//! Starting a daemon for a state root on demand (`stack up` with none
//! running): `stack daemon --exit-when-idle` in the background, detached from
//! the terminal, its log in `<run>/daemon.log`, waited for through the
//! sd_notify protocol on a datagram socket of our own (READY=1), as systemd
//! would wait for it.
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::client::Client;
use crate::state::Roots;

/// How long a starting daemon may take before we give up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the daemon: {0}")]
    Spawn(std::io::Error),
    #[error("the daemon did not get ready within {secs} s; see {log}")]
    NotReady { secs: u64, log: String },
}

/// A client of the root's daemon, starting one when none answers.
pub fn client(roots: &Roots) -> Result<Client, Error> {
    if let Some(c) = Client::connect(roots) {
        return Ok(c);
    }
    start(roots)?;
    let until = Instant::now() + READY_TIMEOUT;
    // Another CLI may have started it at the same time: ours then exited on
    // the lock and theirs answers.
    loop {
        if let Some(c) = Client::connect(roots) {
            return Ok(c);
        }
        if Instant::now() > until {
            return Err(not_ready(roots));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn not_ready(roots: &Roots) -> Error {
    Error::NotReady {
        secs: READY_TIMEOUT.as_secs(),
        log: roots.run.join("daemon.log").display().to_string(),
    }
}

/// Spawn the daemon and wait until it says READY=1 or exits.
fn start(roots: &Roots) -> Result<(), Error> {
    std::fs::create_dir_all(&roots.run).map_err(Error::Spawn)?;
    let notify = roots
        .run
        .join(format!("notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&notify);
    let sock = UnixDatagram::bind(&notify).map_err(Error::Spawn)?;
    let result = spawn_and_wait(roots, &notify, &sock);
    let _ = std::fs::remove_file(&notify);
    result
}

/// Past this size, the next daemon started on demand begins a new log and
/// keeps the last one as `daemon.log.1` (<run> is usually a tmpfs: RAM).
const LOG_CAP: u64 = 8 << 20;

fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_CAP) {
        std::fs::rename(path, path.with_extension("log.1"))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

fn spawn_and_wait(
    roots: &Roots,
    notify: &std::path::Path,
    sock: &UnixDatagram,
) -> Result<(), Error> {
    let log = open_log(&roots.run.join("daemon.log")).map_err(Error::Spawn)?;
    let mut cmd = crate::self_exe::command();
    cmd.env_remove("STACK_ROOT").env("NOTIFY_SOCKET", notify);
    if let Some(root) = &roots.custom {
        cmd.arg("--root").arg(root);
    }
    cmd.args(["daemon", "--exit-when-idle"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(Error::Spawn)?)
        .stderr(log)
        .current_dir("/");
    // SAFETY: setsid and close_range are async-signal-safe. The daemon leaves
    // our session so a Ctrl-C in this terminal never reaches it, and it keeps
    // none of the descriptors our caller let us inherit (a pty, a pipe whose
    // reader would otherwise wait for the daemon's end).
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            crate::runtime::close_range_cloexec(3).map_err(std::io::Error::from_raw_os_error)
        });
    }
    let mut child = cmd.spawn().map_err(Error::Spawn)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(Error::Spawn)?;
    let until = Instant::now() + READY_TIMEOUT;
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        if let Ok(n) = sock.recv(&mut buf)
            && String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
        {
            return Ok(());
        }
        // It exited: another daemon holds the lock (the caller connects to
        // that one), or it failed (its log says why).
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(());
        }
    }
    Err(not_ready(roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_past_its_cap_is_kept_as_dot_1_and_a_new_one_begins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        std::fs::write(&path, b"small").unwrap();
        drop(open_log(&path).unwrap());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"small",
            "kept below the cap"
        );
        std::fs::File::create(&path)
            .unwrap()
            .set_len(LOG_CAP + 1)
            .unwrap();
        drop(open_log(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let old = dir.path().join("daemon.log.1");
        assert_eq!(std::fs::metadata(old).unwrap().len(), LOG_CAP + 1);
    }
}
