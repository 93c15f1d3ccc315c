//! `stack pause` / `stack unpause`: freeze and thaw the stack's running
//! containers (cgroup freezer).
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use super::output::ListFormat;
use crate::ops::{Outcome, OutcomeKind, pause};

#[derive(Args, Debug)]
pub struct PauseArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only these services.
    pub services: Vec<String>,
}

pub fn pause(global: &GlobalOpts, args: PauseArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let outcomes = pause::pause(&project.roots, &project.name, &args.services)?;
    report(args.format, &outcomes, "Paused")
}

pub fn unpause(global: &GlobalOpts, args: PauseArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let outcomes = pause::unpause(&project.roots, &project.name, &args.services)?;
    report(args.format, &outcomes, "Unpaused")
}

/// Progress lines as `up`/`stop` print them (stderr), or the outcomes as JSON;
/// exit code 1 when one failed.
pub fn report<T: serde::Serialize + AsRef<Outcome>>(
    format: ListFormat,
    items: &[T],
    done: &str,
) -> anyhow::Result<ExitCode> {
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string_pretty(items)?);
    } else {
        for o in items.iter().map(AsRef::as_ref) {
            match &o.result {
                OutcomeKind::Done => eprintln!(" Container {}  {done}", o.name),
                OutcomeKind::Skipped(why) => eprintln!(" Container {}  Skipped: {why}", o.name),
                OutcomeKind::Failed(e) => eprintln!(" Container {}  Error: {e}", o.name),
            }
        }
    }
    let failed = items.iter().any(|o| o.as_ref().failed());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
