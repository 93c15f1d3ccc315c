//! `stack oci ...`: the runtime with runc's command line, for containerd
//! (`ctr run --runc-binary`), podman `--runtime` and scripts.
//!
//! `--root` (the global option) is the runtime state directory here, as for runc
//! (default /run/stack/runtime).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use nix::sys::signal::Signal;

use crate::runtime::{CreateOptions, Runtime};

#[derive(Args, Debug)]
pub struct OciArgs {
    /// Write errors to this file (runc's --log; containerd reads it).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// systemd cgroup driver: cgroupsPath is slice:prefix:name; a transient
    /// scope is registered where systemd is PID 1 (else made in cgroupfs).
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility; has no effect (use --log-level debug).
    #[arg(long)]
    pub debug: bool,
    #[command(subcommand)]
    pub command: OciCommand,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    /// Bundle directory holding config.json (default: current directory).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (process.terminal).
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Pass N extra fds (3..3+N) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility: stack never creates a session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
}

#[derive(Subcommand, Debug)]
pub enum OciCommand {
    /// Create a container, stopped before the user's program.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start; in the foreground wait and exit with its status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start instead of waiting.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Run a process in a running container.
    Exec(super::oci_exec::ExecArgs),
    /// Print the runtime-spec state JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the init, or with --all to every process.
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container (and with --force, kill it first).
    Delete {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Change a container's resources: --resources FILE (or - for stdin) holds
    /// OCI linux.resources JSON, as containerd passes it.
    Update {
        id: String,
        #[arg(short, long, value_name = "FILE")]
        resources: PathBuf,
    },
    /// Freeze all processes of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Processes of a container (host pids).
    Ps {
        id: String,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Print the runtime features JSON (runtime-spec features.md).
    Features,
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
}

pub fn run(args: OciArgs, root: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let log = args.log.clone();
    let json = args.log_format == "json";
    let result = dispatch(args, root);
    if let (Err(e), Some(path)) = (&result, &log) {
        write_log(path, json, &format!("{e:#}"));
    }
    result
}

/// runc writes its errors to --log; containerd shows that text to the user.
fn write_log(path: &Path, json: bool, msg: &str) {
    let line = if json {
        serde_json::json!({"level": "error", "msg": msg}).to_string()
    } else {
        format!("error: {msg}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn dispatch(args: OciArgs, root: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let mut rt = Runtime::new(root.unwrap_or_else(|| PathBuf::from(Runtime::DEFAULT_STATE_DIR)));
    if args.systemd_cgroup {
        rt = rt.with_systemd_cgroup(crate::cgroup::systemd::SystemdDriver::default());
    }
    match args.command {
        OciCommand::Create(c) => {
            let spec = read_spec(&c.bundle)?;
            check_terminal(&c, &spec, false)?;
            rt.create_from_spec(&c.id, &spec, &c.bundle, create_options(&c))
                .with_context(|| format!("creating container {}", c.id))?;
        }
        OciCommand::Start { id } => rt.start(&id)?,
        OciCommand::Run {
            create,
            detach,
            keep,
        } => return run_container(&rt, &create, detach, keep),
        OciCommand::Exec(a) => return super::oci_exec::run(&rt, a),
        OciCommand::State { id } => println!("{}", serde_json::to_string_pretty(&rt.state(&id)?)?),
        OciCommand::Kill { id, signal, all } => rt.kill(&id, parse_signal(&signal)?, all)?,
        OciCommand::Delete { id, force } => {
            if !force && !rt.state_dir().join(&id).exists() {
                bail!("container {id} does not exist");
            }
            rt.delete(&id, force)?;
        }
        OciCommand::List { format, quiet } => list(&rt, &format, quiet)?,
        OciCommand::Update { id, resources } => {
            let text = if resources == Path::new("-") {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read_to_string(&resources)
                    .with_context(|| format!("reading {}", resources.display()))?
            };
            let res: oci_spec::runtime::LinuxResources =
                serde_json::from_str(&text).context("parsing linux.resources JSON")?;
            rt.update(&id, &res)?;
        }
        OciCommand::Pause { id } => rt.pause(&id)?,
        OciCommand::Resume { id } => rt.resume(&id)?,
        OciCommand::Ps { id, format } => {
            let pids = rt.pids(&id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                println!("PID");
                for p in pids {
                    println!("{p}");
                }
            }
        }
        OciCommand::Features => println!(
            "{}",
            serde_json::to_string_pretty(&super::oci_info::features())?
        ),
        OciCommand::Spec { bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} already exists; remove it first", path.display());
            }
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&super::oci_info::default_spec())?,
            )
            .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The CLI has nobody to hand a pty master to without --console-socket.
fn check_terminal(
    c: &CreateArgs,
    spec: &oci_spec::runtime::Spec,
    foreground: bool,
) -> anyhow::Result<()> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && c.console_socket.is_none() && !foreground {
        bail!(
            "process.terminal is true: pass --console-socket, run in the foreground, or set \"terminal\": false in config.json"
        );
    }
    Ok(())
}

fn read_spec(bundle: &Path) -> anyhow::Result<oci_spec::runtime::Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

fn create_options(c: &CreateArgs) -> CreateOptions {
    CreateOptions {
        stdio: None,
        console_socket: c.console_socket.clone(),
        pid_file: c.pid_file.clone(),
        preserve_fds: c.preserve_fds,
        no_pivot: c.no_pivot,
    }
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> anyhow::Result<()> {
    let states = rt.list()?;
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
    } else if format == "json" {
        println!("{}", serde_json::to_string(&states)?);
    } else {
        println!(
            "{:<24} {:<8} {:<10} {:<40} CREATED",
            "ID", "PID", "STATUS", "BUNDLE"
        );
        for s in &states {
            println!(
                "{:<24} {:<8} {:<10} {:<40} {}",
                s.id,
                s.pid,
                s.status,
                s.bundle.display(),
                s.created
            );
        }
    }
    Ok(())
}

/// `TERM`, `SIGTERM` or `15`.
pub fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("unknown signal {n}"));
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<Signal>()
        .with_context(|| format!("unknown signal {s:?}"))
}

static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// create + start; in the foreground forward signals, wait, delete, and exit with
/// the container's status (128 + signal when killed, like a shell).
fn run_container(
    rt: &Runtime,
    c: &CreateArgs,
    detach: bool,
    keep: bool,
) -> anyhow::Result<ExitCode> {
    let spec = read_spec(&c.bundle)?;
    check_terminal(c, &spec, !detach)?;
    let mut container = rt
        .run_from_spec(&c.id, &spec, &c.bundle, create_options(c))
        .with_context(|| format!("running container {}", c.id))?;
    if detach {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(master) = container.pty_master.take() {
        super::oci_tty::proxy(master)?;
    }
    CHILD.store(container.pid, std::sync::atomic::Ordering::Relaxed);
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(forward),
            nix::sys::signal::SaFlags::SA_RESTART,
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only calls kill(2), which is async-signal-safe.
        unsafe { nix::sys::signal::sigaction(sig, &action) }?;
    }
    let code = wait_exit(container.pid)?;
    if !keep {
        rt.delete(&c.id, true)?;
    }
    Ok(ExitCode::from(code))
}

pub(super) fn wait_exit(pid: i32) -> anyhow::Result<u8> {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(u8::try_from(code & 0xff).unwrap_or(1)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128u8.saturating_add(sig as u8)),
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).context("waiting for the container"),
        }
    }
}
