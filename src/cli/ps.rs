//! `stack ps`: the containers of a stack.
use std::process::ExitCode;

use clap::Args;

use super::output::{ListFormat, print_rows, table};
use super::{GlobalOpts, remote};
pub use crate::ops::ps::{Row, status_text};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show stopped containers too.
    #[arg(short, long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only print container names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these services.
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: PsArgs) -> anyhow::Result<ExitCode> {
    let project = super::project::resolve(global)?;
    let path = format!("/v1/stacks/{}/ps", project.name);
    let rows: Vec<Row> = remote::read(&project.roots, &path, || {
        Ok(crate::ops::ps::rows(&project.roots, &project.name)?)
    })?;
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| args.all || r.up)
        .filter(|r| args.services.is_empty() || args.services.contains(&r.service))
        .collect();
    if args.quiet {
        rows.iter().for_each(|r| println!("{}", r.name));
        return Ok(ExitCode::SUCCESS);
    }
    print_rows(args.format, &rows, |rows| {
        let mut t = table(["NAME", "SERVICE", "STATUS", "PORTS"]);
        for r in rows {
            let status = match r.health {
                Some(h) => format!(
                    "{} ({})",
                    r.status,
                    serde_json::to_value(h)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("")
                ),
                None => r.status.clone(),
            };
            t.add_row([
                r.name.clone(),
                r.service.clone(),
                status,
                r.ports.join(", "),
            ]);
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}
