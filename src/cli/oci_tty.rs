//! Foreground terminal for `stack oci run` / `exec --tty` without
//! --console-socket: the pty master is proxied to our stdin/stdout, with our
//! terminal (if any) in raw mode while the container runs.
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, Termios};

/// Restores the terminal mode on drop.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// Copy stdin -> master and master -> stdout until the container side closes
/// (EIO/HUP on the master once every slave fd is gone).
pub fn proxy(master: OwnedFd) -> anyhow::Result<()> {
    let _raw = RawMode::enter();
    let stdin = std::io::stdin();
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let master_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ev = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if master_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => return Ok(()),
                Ok(n) => write_all(std::io::stdout().as_fd().as_raw_fd(), &buf[..n])?,
                Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if stdin_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(&stdin, &mut buf) {
                // Our stdin ended: send EOF (^D) to the terminal, keep reading output.
                Ok(0) => {
                    stdin_open = false;
                    let _ = write_all(master.as_raw_fd(), &[4]);
                }
                Ok(n) => write_all(master.as_raw_fd(), &buf[..n])?,
                Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
}

fn write_all(fd: std::os::fd::RawFd, mut data: &[u8]) -> anyhow::Result<()> {
    // SAFETY: fd is open for the duration of the call (stdout or our master).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
