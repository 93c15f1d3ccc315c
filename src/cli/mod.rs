//! The command line: global options, one file per verb group, dispatch.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod oci;
mod oci_exec;
mod oci_info;
mod oci_tty;

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
    /// The OCI runtime with runc's command line (create, start, run, state, kill, delete, ...).
    Oci(oci::OciArgs),
}

/// Logs go to stderr; the daemon switches to journald when started by systemd.
pub fn init_logging(global: &GlobalOpts) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Oci(args) => oci::run(args, cli.global.root),
    }
}
