//! `stack wait`: block until the stack's containers stop; print their exit codes.
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalOpts;
use super::output::{ListFormat, print_rows, table};
use crate::ops::wait::wait;

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 when every container exited with code 0, 1 otherwise \
    (or on timeout). A container whose restart policy starts it again has not stopped; \
    with restart = \"always\", wait returns only after `stack stop` or `down`."
)]
pub struct WaitArgs {
    /// Give up after this many seconds (default: wait as long as it takes).
    #[arg(short, long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only these services.
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let exits = wait(
        &project.roots,
        &project.name,
        &args.services,
        args.timeout.map(Duration::from_secs),
    )?;
    print_rows(args.format, &exits, |exits| {
        let mut t = table(["NAME", "SERVICE", "EXIT CODE"]);
        for e in exits {
            let code = match (e.exit_code, e.oom_killed) {
                (Some(c), true) => format!("{c} (OOMKilled)"),
                (Some(c), false) => c.to_string(),
                (None, _) => "none (never ran)".into(),
            };
            t.add_row([e.name.clone(), e.service.clone(), code]);
        }
        t
    })?;
    Ok(if exits.iter().all(|e| e.exit_code == Some(0)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
