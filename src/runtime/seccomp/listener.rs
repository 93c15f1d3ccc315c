//! Seccomp user notification: the listener fd goes to the seccomp agent.
//!
//! Protocol (runtime-spec config-linux.md "The Container Process State", as
//! runc speaks it): connect a SOCK_STREAM unix socket to `listenerPath` and send
//! one message whose payload is the containerProcessState JSON and whose
//! SCM_RIGHTS carry the fds named in its `fds` array (here only "seccompFd").
//! The agent then answers the notified syscalls on that fd
//! (SECCOMP_IOCTL_NOTIF_RECV/SEND); our copy is closed after sending.
//!
//! Guarantees: the agent has the fd before `create` (or `run`, `exec`) returns;
//! the init waits meanwhile only in syscalls the filter notifies.
//! Caveat: syscalls the init makes between loading the filter and execve go to
//! the agent too when they are notified (as with runc).
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use serde::Serialize;

use crate::runtime::{Error, Result, State};

/// config-linux.md: containerProcessState.
#[derive(Debug, Serialize)]
struct ContainerProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: &'a State,
}

/// Send `fd` (the listener of process `pid`) with the state to the agent.
pub(crate) fn send(
    listener_path: &Path,
    metadata: Option<&str>,
    pid: i32,
    state: &State,
    fd: OwnedFd,
) -> Result<()> {
    let msg = ContainerProcessState {
        oci_version: &state.oci_version,
        fds: ["seccompFd"],
        pid,
        metadata,
        state,
    };
    let json = serde_json::to_vec(&msg).map_err(|source| Error::Config {
        path: listener_path.into(),
        source,
    })?;
    let sock =
        std::os::unix::net::UnixStream::connect(listener_path).map_err(|source| Error::Io {
            op: "connecting to the seccomp agent (linux.seccomp.listenerPath)",
            path: listener_path.into(),
            source,
        })?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(&json)];
    let sent = nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|source| Error::Sys {
        op: "sending the seccomp listener fd to the agent",
        source,
    })?;
    if sent != json.len() {
        return Err(Error::Sys {
            op: "sending the seccomp listener fd to the agent (short write)",
            source: nix::Error::EMSGSIZE,
        });
    }
    Ok(())
}
