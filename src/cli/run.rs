//! `stack run SERVICE [COMMAND...]`: a one-off container of a service on the
//! stack's networks, named `<stack>-<service>-run-<id>`, in the foreground
//! with the caller's stdio (a pty when stdin is a terminal), its exit code
//! passed through; `-d` leaves it running and prints its name (with `--rm`
//! the daemon removes it once it ended).
//!
//! Flow: the daemon brings the dependencies up (unless `--no-deps`) and
//! creates the container (`POST /v1/stacks/run`, see `daemon::oneoff`) ->
//! here: start it with `stack __monitor`, as every container, its stdio being
//! ours -> forward signals while it runs -> its exit from exit.json -> with
//! `--rm`, the daemon removes it and its anonymous volumes (`rm`).
//!
//! Why the start of an attached run is here and not in the daemon: the
//! caller's terminal or pipes must become the container's stdio (or receive
//! its pty master), and descriptors do not travel over the daemon's HTTP API.
//! Its records are those of any container, so `ps`, `logs`, `stop`, `kill`
//! and `down` treat it like the others. The daemon does not supervise an
//! attached run (this process waits for it and records its end; it has no
//! restart policy); a detached one it starts and supervises itself.
use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;

use super::project::load;
use super::{GlobalOpts, remote};
use crate::daemon::autostart;
use crate::daemon::proto::{RmRequest, RunRequest};
use crate::ops::OutcomeKind;
use crate::ops::rm::Removed;
use crate::reconcile::oneoff::Overrides;
use crate::spec::LoadOptions;
use crate::state::Roots;
use crate::supervisor::control::{self, Attach};
use crate::supervisor::events::{self, Action};
use crate::supervisor::record::{ContainerPaths, ContainerStatus, ExitRecord};

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: the container's (128+N when signal N ended it). \
    Ctrl-C and SIGTERM are passed to the container; a second one kills it. \
    Without a terminal on stdin, stdin is attached only with -i."
)]
pub struct RunArgs {
    /// Detached: start the container, print its name and return.
    #[arg(short, long, conflicts_with = "interactive")]
    pub detach: bool,
    /// Remove the container and its anonymous volumes once it exited (with
    /// -d: the daemon does, when it exits or is stopped).
    #[arg(long)]
    pub rm: bool,
    /// Attach stdin even without a terminal (no pty).
    #[arg(short, long)]
    pub interactive: bool,
    /// No pseudo-terminal (the default when stdin is not a terminal).
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Environment variable KEY=VALUE, or KEY to pass ours (repeatable).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Override the entrypoint (split like a shell command line).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Run as this user: name, uid, or uid:gid.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Container name (default `<stack>-<service>-run-<id>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Do not start the services this one depends on.
    #[arg(long)]
    pub no_deps: bool,
    /// Publish the service's ports (off by default, as in Compose).
    #[arg(long)]
    pub service_ports: bool,
    /// The service.
    pub service: String,
    /// Command and arguments (default: the service's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: RunArgs) -> anyhow::Result<ExitCode> {
    let (loaded, roots) = load(global, std::slice::from_ref(&args.service))?;
    let stack = &loaded.stack;
    let Some(base) = stack.services.get(&args.service) else {
        bail!(
            "no such service: {} (stack {} has: {})",
            args.service,
            stack.name,
            stack
                .services
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let tty = match args.detach {
        // Nobody is attached: the service's own setting, logged by the monitor.
        true => base.tty,
        false => !args.no_tty && std::io::stdin().is_terminal(),
    };
    let run_id = short_id()?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-run-{run_id}", stack.name, base.name));
    let mut load = LoadOptions::from_global(global, vec![args.service.clone()]);
    // The daemon interpolates with our environment, as we just did.
    load.environment = Some(std::env::vars().collect());
    let req = RunRequest {
        load,
        service: args.service.clone(),
        name: name.clone(),
        run_id,
        overrides: overrides(&args, tty)?,
        no_deps: args.no_deps,
        detach: args.detach,
        rm: args.rm,
    };
    let created = remote::call(&roots, "/v1/stacks/run", &req)?;
    if created.code != ExitCode::SUCCESS {
        return Ok(created.code);
    }
    if args.detach {
        println!("{name}");
        return Ok(ExitCode::SUCCESS);
    }
    let event = |action, exit_code| {
        let mut e = events::Event::new(action, &stack.name, &base.name, &name);
        e.exit_code = exit_code;
        events::emit(&roots.lib, &e);
    };
    let stdin = tty || args.interactive;
    let result = foreground(&roots, &name, tty, stdin, &|| event(Action::Start, None));
    if let Ok(exit) = &result {
        event(Action::Die, Some(exit.exit_code));
    }
    if args.rm {
        remove(&roots, &stack.name, &name);
    }
    Ok(ExitCode::from(
        u8::try_from(result?.exit_code).unwrap_or(u8::MAX),
    ))
}

/// What the command line changes in the service.
fn overrides(args: &RunArgs, tty: bool) -> anyhow::Result<Overrides> {
    let entrypoint = match &args.entrypoint {
        Some(e) => Some(shlex::split(e).ok_or_else(|| {
            anyhow!("--entrypoint {e:?}: unbalanced quotes or a trailing backslash")
        })?),
        None => None,
    };
    let environment = args
        .env
        .iter()
        .filter_map(|kv| match kv.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            // `-e KEY`: ours, or nothing when we have none (as Compose).
            None => std::env::var(kv).ok().map(|v| (kv.clone(), v)),
        })
        .collect();
    Ok(Overrides {
        command: (!args.command.is_empty()).then(|| args.command.clone()),
        entrypoint,
        environment,
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        service_ports: args.service_ports,
        tty,
        stdin_open: tty || args.interactive,
    })
}

/// 12 hex digits, as Compose's short ids.
fn short_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 6];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
        .context("getrandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Remove the container, its network address and anonymous volumes, through
/// the daemon; errors are printed (the run's own outcome is what the caller
/// gets).
fn remove(roots: &Roots, stack: &str, name: &str) {
    let req = RmRequest::force_one(name);
    let post = || -> anyhow::Result<Vec<Removed>> {
        let client = autostart::client(roots)?;
        Ok(client.post(&format!("/v1/stacks/{stack}/rm"), &req)?)
    };
    match post() {
        Ok(removed) => {
            for r in removed {
                if let OutcomeKind::Failed(why) = r.outcome.result {
                    eprintln!("error: removing {name}: {why}");
                }
            }
        }
        Err(e) => eprintln!("error: removing {name}: {e:#}"),
    }
}

/// Start the container attached to our stdio (or a pty) and wait for its exit.
fn foreground(
    roots: &Roots,
    name: &str,
    tty: bool,
    stdin: bool,
    started: &dyn Fn(),
) -> anyhow::Result<ExitRecord> {
    // Registered before the start, so that no signal in between kills us.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH])?;
    let handle = signals.handle();
    let master = if tty {
        Some(start_with_pty(roots, name)?)
    } else {
        control::spawn_attached(
            roots,
            name,
            &Attach {
                stdio: Some(our_stdio(stdin)?),
                console_socket: None,
            },
        )?;
        None
    };
    started();
    let resize = master.as_ref().map(|m| m.try_clone()).transpose()?;
    if let Some(m) = &resize {
        copy_window_size(m);
    }
    let forwarder = {
        let (roots, name) = (roots.clone(), name.to_string());
        std::thread::spawn(move || {
            let mut stops = 0;
            for sig in signals.forever() {
                match (sig, &resize) {
                    (SIGWINCH, Some(m)) => copy_window_size(m),
                    (SIGWINCH, None) => {}
                    (sig, _) => {
                        stops += 1;
                        forward(&roots, &name, if stops > 1 { libc::SIGKILL } else { sig });
                    }
                }
            }
        })
    };
    let proxied = master.map(super::oci_tty::proxy).transpose();
    let exit = wait_exit(roots, name);
    handle.close();
    let _ = forwarder.join();
    proxied?;
    exit
}

/// Copies of our stdin (or /dev/null), stdout and stderr for the container.
fn our_stdio(stdin: bool) -> anyhow::Result<[OwnedFd; 3]> {
    let input: OwnedFd = match stdin {
        true => std::io::stdin().as_fd().try_clone_to_owned()?,
        false => std::fs::File::open("/dev/null")?.into(),
    };
    Ok([
        input,
        std::io::stdout().as_fd().try_clone_to_owned()?,
        std::io::stderr().as_fd().try_clone_to_owned()?,
    ])
}

/// Start the container with a pty and receive its master over a console
/// socket (the runtime sends it during the create).
fn start_with_pty(roots: &Roots, name: &str) -> anyhow::Result<OwnedFd> {
    let path = roots
        .run
        .join(format!("console-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("console socket {}", path.display()))?;
    let attach = Attach {
        stdio: None,
        console_socket: Some(path.clone()),
    };
    let started = control::spawn_attached(roots, name, &attach);
    let _ = std::fs::remove_file(&path);
    started?;
    // The runtime connected and sent the master before the start reported ok.
    listener.set_nonblocking(true)?;
    let (conn, _) = listener
        .accept()
        .context("the runtime sent no pty master")?;
    receive_fd(&conn)
}

fn receive_fd(conn: &std::os::unix::net::UnixStream) -> anyhow::Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    bail!("the console socket message carried no descriptor")
}

/// Give the container's terminal the size of ours.
fn copy_window_size(master: &OwnedFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills `ws`; TIOCSWINSZ reads it; both fds are open.
    unsafe {
        if libc::ioctl(std::io::stdin().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Send `sig` to the container's init, if it still runs.
fn forward(roots: &Roots, name: &str, sig: i32) {
    let status = ContainerStatus::read(&ContainerPaths::new(&roots.lib, name)).unwrap_or_default();
    if let (Some(pid), true, Ok(sig)) = (
        status.pid,
        control::monitor_alive(&status),
        Signal::try_from(sig),
    ) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Wait until the container's monitor exited; its exit record, folded into
/// the status (no supervisor watches a run container).
fn wait_exit(roots: &Roots, name: &str) -> anyhow::Result<ExitRecord> {
    let paths = ContainerPaths::new(&roots.lib, name);
    let status = ContainerStatus::read(&paths)?;
    if let Some(pid) = status.monitor_pid
        && let Ok(pidfd) = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).context("monitor pid")?,
            rustix::process::PidfdFlags::empty(),
        )
        // Opened, then checked: the pidfd names the process we recorded.
        && control::monitor_alive(&status)
    {
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        loop {
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => break,
            }
        }
    }
    let Some(o) = control::observe_one(&roots.lib, name)? else {
        bail!("{name} was removed while it ran");
    };
    let Some(exit) = o.exit else {
        bail!(
            "the monitor of {name} ended without recording an exit; see {}",
            paths.dir.join("monitor.log").display()
        );
    };
    if o.exit_unnoticed {
        o.status.write(&paths)?;
    }
    Ok(exit)
}
