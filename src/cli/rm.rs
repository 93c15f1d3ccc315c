//! `stack rm`: remove the stack's stopped containers.
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalOpts;
use super::output::ListFormat;
use crate::daemon::proto::RmRequest;
use crate::ops::OutcomeKind;
use crate::ops::rm::{Removed, RmOptions};

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Also remove running containers, stopping them first (stop signal, grace
    /// period, then SIGKILL). `-f` after `rm` means this, not `--file`.
    #[arg(long, short = 's', visible_alias = "stop")]
    pub force: bool,
    /// Also remove the anonymous volumes of the removed containers (named volumes
    /// stay: `stack down -v` removes those).
    #[arg(short, long)]
    pub volumes: bool,
    /// Seconds to wait for a running container to stop before killing it
    /// (default: the service's stop_grace_period).
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only these services.
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: RmArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let opts = RmOptions {
        force: args.force,
        volumes: args.volumes,
        timeout: args.timeout.map(Duration::from_secs),
        containers: Vec::new(),
    };
    let req = RmRequest {
        services: args.services,
        options: opts,
    };
    let client = crate::daemon::autostart::client(&project.roots)?;
    let removed: Vec<Removed> = match client.post(&format!("/v1/stacks/{}/rm", project.name), &req)
    {
        Ok(r) => r,
        Err(crate::daemon::client::Error::Status { body, .. }) => anyhow::bail!("{body}"),
        Err(e) => return Err(e.into()),
    };
    if args.format == ListFormat::Table {
        if removed
            .iter()
            .all(|r| !matches!(r.outcome.result, OutcomeKind::Done | OutcomeKind::Failed(_)))
        {
            eprintln!("No stopped containers");
        }
        for r in &removed {
            for v in &r.volumes {
                eprintln!(" Volume {v}  Removed");
            }
        }
    }
    super::pause::report(args.format, &removed, "Removed")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command, normalize_args};

    #[test]
    fn dash_f_after_rm_is_force() {
        let args = ["stack", "-f", "x.toml", "rm", "-f", "-v", "web"].map(Into::into);
        let cli = Cli::parse_from(normalize_args(args));
        assert_eq!(cli.global.files, [std::path::PathBuf::from("x.toml")]);
        let Command::Rm(rm) = cli.command else {
            panic!("not rm")
        };
        assert!(rm.force && rm.volumes);
        assert_eq!(rm.services, ["web"]);
        let args = ["stack", "logs", "-f"].map(Into::into);
        assert!(matches!(
            Cli::parse_from(normalize_args(args)).command,
            Command::Logs(_)
        ));
    }
}
