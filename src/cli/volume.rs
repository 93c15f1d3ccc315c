//! `stack volume ls|inspect|create|rm|prune`.
use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::GlobalOpts;
use super::images::Format;
use crate::state::Roots;
use crate::storage::{VolumeKind, Volumes};

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// List volumes.
    Ls {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Only show names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Create a volume by hand (e.g. for `external: true`).
    Create { name: String },
    /// Remove volumes and their data.
    Rm {
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove volumes no container uses (anonymous ones unless --all).
    Prune {
        #[arg(short, long)]
        all: bool,
    },
}

fn open(global: &GlobalOpts) -> anyhow::Result<Volumes> {
    let roots = Roots::new(global.root.as_deref());
    Volumes::open(&roots.lib)
        .with_context(|| format!("opening volumes under {}", roots.lib.display()))
}

pub fn run(global: &GlobalOpts, cmd: VolumeCommand) -> anyhow::Result<ExitCode> {
    let vols = open(global)?;
    match cmd {
        VolumeCommand::Ls { format, quiet } => {
            let list = vols.list()?;
            if quiet {
                list.iter().for_each(|v| println!("{}", v.name));
            } else if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let mut t = comfy_table::Table::new();
                t.load_style(comfy_table::presets::NOTHING);
                t.set_header(["DRIVER", "VOLUME NAME", "STACK"]);
                for v in &list {
                    t.add_row([
                        v.driver.as_str(),
                        v.name.as_str(),
                        v.stack.as_deref().unwrap_or(""),
                    ]);
                }
                for column in t.column_iter_mut() {
                    column.set_padding((0, 3));
                }
                println!("{}", t.trim_fmt());
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            for name in &names {
                out.push(
                    vols.get(name)?
                        .with_context(|| format!("no such volume: {name}"))?,
                );
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCommand::Create { name } => {
            vols.create(&name, None, VolumeKind::Local, BTreeMap::new(), false)?;
            println!("{name}");
        }
        VolumeCommand::Rm { names } => {
            let mut failed = false;
            for name in &names {
                match vols.remove(name) {
                    Ok(true) => println!("{name}"),
                    Ok(false) => {
                        eprintln!("error: no such volume: {name}");
                        failed = true;
                    }
                    Err(e) => {
                        eprintln!("error: {name}: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        VolumeCommand::Prune { all } => {
            let removed = vols.prune(all)?;
            for name in &removed {
                println!("Deleted: {name}");
            }
            println!("Removed {} volumes", removed.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
