//! The command line: global options, one file per verb group, dispatch.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod config;
mod daemon;
pub mod down;
mod events;
pub mod exec;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
mod monitor;
pub mod oci;
mod oci_exec;
mod oci_info;
mod oci_tty;
pub mod output;
pub mod pause;
pub mod project;
mod proxy;
pub mod ps;
pub mod pull;
mod remote;
pub mod rm;
pub mod run;
pub mod schema;
pub mod stack_images;
pub mod stats;
pub mod top;
pub mod up;
mod up_wait;
pub mod validate;
pub mod volume;
pub mod wait;

/// Options every verb understands.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalOpts {
    /// Stack file(s); repeat to merge. Default: stack.toml, else compose.yaml,
    /// compose.yml, docker-compose.yaml, docker-compose.yml in the current directory.
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project (stack) name. Default: the file's `name`, else the directory name.
    #[arg(short = 'p', long = "project-name", global = true, value_name = "NAME")]
    pub project_name: Option<String>,
    /// State root: moves /var/lib/stack and /run/stack under DIR.
    #[arg(long, global = true, env = "STACK_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Enable a profile (repeatable).
    #[arg(
        long = "profile",
        global = true,
        value_name = "NAME",
        env = "STACK_PROFILES",
        value_delimiter = ','
    )]
    pub profiles: Vec<String>,
    /// Extra environment file(s) for interpolation (default: .env beside the file).
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn", env = "STACK_LOG")]
    pub log_level: String,
}

#[derive(Parser, Debug)]
#[command(
    name = "stack",
    version,
    about = "Declarative, file-driven container supervisor"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and start the stack's containers; in the foreground, stream their logs.
    Up(up::UpArgs),
    /// Stop and remove the stack's containers, networks and cgroups.
    Down(down::DownArgs),
    /// List the stack's containers.
    Ps(ps::PsArgs),
    /// Show the output of the stack's containers.
    Logs(logs::LogsArgs),
    /// Start the stack's stopped containers.
    Start(lifecycle::StartArgs),
    /// Stop the stack's containers (they keep their state; `start` resumes them).
    Stop(lifecycle::StopArgs),
    /// Stop and start the stack's containers.
    Restart(lifecycle::StopArgs),
    /// Send a signal to the stack's containers.
    Kill(lifecycle::KillArgs),
    /// Stream what happens to the stack's containers (start, die, health, ...).
    Events(events::EventsArgs),
    /// Run a command in a running container of a service.
    Exec(exec::ExecArgs),
    /// Run a one-off container of a service (its dependencies started
    /// first), attached to this terminal; its exit code is passed through.
    Run(run::RunArgs),
    /// Everything about containers, as JSON.
    Inspect(inspect::InspectArgs),
    /// The host address of a published port.
    Port(inspect::PortArgs),
    /// List the stacks of this state root.
    Ls(inspect::LsArgs),
    /// Show what `up` would do (the plan), changing nothing.
    Plan(up::UpArgs),
    /// Supervise this state root's stacks: restarts, healthchecks, file
    /// watching, the API socket (started by `up` when none runs; packaged as
    /// a systemd unit).
    Daemon(daemon::DaemonArgs),
    /// The processes of the stack's running containers.
    Top(top::TopArgs),
    /// Live CPU, memory, pids, network and block I/O of the running containers.
    Stats(stats::StatsArgs),
    /// Freeze every process of the stack's running containers (cgroup freezer).
    Pause(pause::PauseArgs),
    /// Let paused containers run again.
    Unpause(pause::PauseArgs),
    /// Remove the stack's stopped containers (-f: running ones too).
    Rm(rm::RmArgs),
    /// Wait until the stack's containers stop; print their exit codes.
    Wait(wait::WaitArgs),
    #[command(name = "__monitor", hide = true, about = MONITOR_ABOUT)]
    Monitor(monitor::MonitorArgs),
    #[command(name = "__proxy", hide = true, about = PROXY_ABOUT)]
    Proxy(proxy::ProxyArgs),
    #[command(name = "__spawner", hide = true, about = SPAWNER_ABOUT)]
    Spawner,
    /// Print the normalized, interpolated, merged stack model.
    Config(config::ConfigArgs),
    /// Check the stack files; exit 0 when valid, 1 with every error when not.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of the stack file (for editors: taplo, YAML LSP).
    Schema(schema::SchemaArgs),
    #[command(about = OCI_ABOUT)]
    Oci(oci::OciArgs),
    /// The images of the stack's containers; without a stack, every stored image.
    Images(stack_images::ImagesArgs),
    /// Manage images: import, ls, inspect, save, rm, prune, tag.
    Image {
        #[command(subcommand)]
        command: images::ImageCommand,
    },
    /// Import an image archive or OCI layout (alias of `stack image import`).
    Load(images::ImportArgs),
    /// Remove images (alias of `stack image rm`).
    Rmi(images::RmiArgs),
    /// Pull images from a registry.
    Pull(pull::PullArgs),
    /// Manage named volumes: ls, inspect, create, rm, prune.
    Volume {
        #[command(subcommand)]
        command: volume::VolumeCommand,
    },
}

const OCI_ABOUT: &str =
    "The OCI runtime with runc's command line (create, start, run, state, kill, delete, ...).";
const MONITOR_ABOUT: &str = "The per-container monitor (started by `up`; not for direct use).";
const SPAWNER_ABOUT: &str =
    "The daemon's fork server for monitors (started by the daemon; not for direct use).";
const PROXY_ABOUT: &str =
    "The proxy of a container's `[::1]` ports (started by `up`; not for direct use).";

/// The verbs run once per container start, with a command tree of their own
/// (see `parse`).
#[derive(Parser, Debug)]
#[command(name = "stack", version)]
struct PerContainerCli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: PerContainer,
}

#[derive(Subcommand, Debug)]
enum PerContainer {
    #[command(about = OCI_ABOUT)]
    Oci(oci::OciArgs),
    #[command(name = "__monitor", about = MONITOR_ABOUT)]
    Monitor(monitor::MonitorArgs),
    #[command(name = "__proxy", about = PROXY_ABOUT)]
    Proxy(proxy::ProxyArgs),
}

/// Parse the command line. clap builds the arguments of every verb before it
/// parses: about half a millisecond and 130 fresh heap pages here, more than
/// the rest of `stack oci run` spends in user space. So the verbs that run once
/// per container (`oci`, as containerd calls it, and the monitor and proxy
/// `up` starts) parse with a tree of only themselves; their help and errors
/// read the same.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Cli {
    let args = normalize_args(args);
    if matches!(
        verb(&args).and_then(|v| v.to_str()),
        Some("oci" | "__monitor" | "__proxy")
    ) {
        let PerContainerCli { global, command } = PerContainerCli::parse_from(args);
        let command = match command {
            PerContainer::Oci(a) => Command::Oci(a),
            PerContainer::Monitor(a) => Command::Monitor(a),
            PerContainer::Proxy(a) => Command::Proxy(a),
        };
        return Cli { global, command };
    }
    Cli::parse_from(args)
}

/// The verb: the first argument that is neither a global option nor its value.
fn verb(args: &[std::ffi::OsString]) -> Option<&std::ffi::OsStr> {
    const WITH_VALUE: [&str; 8] = [
        "-f",
        "--file",
        "-p",
        "--project-name",
        "--root",
        "--profile",
        "--env-file",
        "--log-level",
    ];
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let text = a.to_str()?;
        let attached = (text.starts_with("--") && text.contains('='))
            || (!text.starts_with("--") && (text.starts_with("-f") || text.starts_with("-p")));
        if WITH_VALUE.contains(&text) {
            it.next();
        } else if !text.starts_with('-') {
            return Some(a);
        } else if !attached {
            // --help, -V, `--` or a mistake: the whole tree answers.
            return None;
        }
    }
    None
}

/// An error already rendered for people (a stack file's diagnostics with source
/// snippets): printed as it is, without another `error:` prefix.
#[derive(Debug)]
pub struct Rendered(pub String);

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rendered {}

/// For the long-running processes (daemon, proxy, monitor): a peer that goes
/// away in the middle of an answer must not kill them. `main` leaves SIGPIPE at its
/// default for the CLI verbs, and a write to a Unix socket whose peer closed
/// raises it (only TCP sends carry MSG_NOSIGNAL). Children get the default
/// back (std resets it when spawning; the runtime's init resets every signal).
pub(super) fn ignore_sigpipe() {
    // SAFETY: sets a disposition, no handler; before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// After `logs`, `-f` means `--follow`, and after `rm`, `--force` (as in
/// Compose), not the global `--file`: the global option must come before the
/// verb there.
pub fn normalize_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut short_f: Option<&str> = None;
    args.into_iter()
        .map(|a| {
            if let Some(long) = short_f {
                if a == "-f" {
                    return long.into();
                }
            } else {
                short_f = match a.to_str() {
                    Some("logs") => Some("--follow"),
                    Some("rm") => Some("--force"),
                    _ => None,
                };
            }
            a
        })
        .collect()
}

/// Logs go to stderr, or to the journal when systemd connected stderr to it
/// (JOURNAL_STREAM), as for the packaged daemon.
pub fn init_logging(global: &GlobalOpts) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let journald = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match journald {
        Some(layer) => registry.with(layer).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli { global, command } = cli;
    match command {
        Command::Up(args) => up::run(&global, args),
        Command::Down(args) => down::run(&global, args),
        Command::Ps(args) => ps::run(&global, args),
        Command::Logs(args) => logs::run(&global, args),
        Command::Start(args) => lifecycle::start(&global, args),
        Command::Stop(args) => lifecycle::stop(&global, args),
        Command::Restart(args) => lifecycle::restart(&global, args),
        Command::Kill(args) => lifecycle::kill(&global, args),
        Command::Events(args) => events::run(&global, args),
        Command::Exec(args) => exec::run(&global, args),
        Command::Run(args) => run::run(&global, args),
        Command::Inspect(args) => inspect::inspect(&global, args),
        Command::Port(args) => inspect::port(&global, args),
        Command::Ls(args) => inspect::ls(&global, args),
        Command::Plan(args) => up::run(
            &global,
            up::UpArgs {
                dry_run: true,
                ..args
            },
        ),
        Command::Daemon(args) => {
            ignore_sigpipe();
            daemon::run(&global, args)
        }
        Command::Top(args) => top::run(&global, args),
        Command::Stats(args) => stats::run(&global, args),
        Command::Pause(args) => pause::pause(&global, args),
        Command::Unpause(args) => pause::unpause(&global, args),
        Command::Rm(args) => rm::run(&global, args),
        Command::Wait(args) => wait::run(&global, args),
        Command::Monitor(args) => monitor::run(&global, args),
        Command::Spawner => monitor::spawner(&global),
        Command::Proxy(args) => {
            ignore_sigpipe();
            proxy::run(args)
        }
        Command::Config(args) => config::run(&global, &args),
        Command::Validate(args) => validate::run(&global, &args),
        Command::Schema(args) => schema::run(&args),
        Command::Oci(args) => oci::run(args, global.root),
        Command::Images(args) => stack_images::run(&global, args),
        Command::Image { command } => images::image(&global, command),
        Command::Load(args) => images::import(&global, args),
        Command::Rmi(args) => images::rmi(&global, args),
        Command::Pull(args) => pull::run(&global, args),
        Command::Volume { command } => volume::run(&global, command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn args(a: &[&str]) -> Vec<std::ffi::OsString> {
        a.iter().map(Into::into).collect()
    }

    #[test]
    fn the_verb_is_found_past_global_options_and_their_values() {
        let v = |a: &[&str]| verb(&args(a)).map(|v| v.to_string_lossy().into_owned());
        assert_eq!(
            v(&["stack", "--root", "/r", "oci", "run"]).as_deref(),
            Some("oci")
        );
        assert_eq!(
            v(&["stack", "--root=/r", "-fx.toml", "-p", "n", "up"]).as_deref(),
            Some("up")
        );
        assert_eq!(v(&["stack", "-f", "oci", "ps"]).as_deref(), Some("ps"));
        assert_eq!(v(&["stack", "--help", "oci"]), None);
        assert_eq!(v(&["stack", "-V"]), None);
        assert_eq!(v(&["stack"]), None);
    }

    #[test]
    fn per_container_verbs_parse_as_in_the_whole_tree() {
        let cli = parse(args(&[
            "stack", "--root", "/r", "oci", "--log", "/l", "state", "c1",
        ]));
        assert_eq!(cli.global.root.as_deref(), Some(std::path::Path::new("/r")));
        let Command::Oci(oci) = cli.command else {
            panic!("not oci: {:?}", cli.command)
        };
        assert_eq!(oci.log.as_deref(), Some(std::path::Path::new("/l")));
        assert!(matches!(
            parse(args(&["stack", "ps"])).command,
            Command::Ps(_)
        ));
    }

    #[test]
    fn per_container_help_reads_as_in_the_whole_tree() {
        for name in ["oci", "__monitor", "__proxy"] {
            let help = |mut c: clap::Command| {
                c.build();
                c.find_subcommand_mut(name)
                    .unwrap()
                    .render_long_help()
                    .to_string()
            };
            assert_eq!(
                help(PerContainerCli::command()),
                help(Cli::command()),
                "{name}"
            );
        }
        PerContainerCli::command().debug_assert();
    }
}
