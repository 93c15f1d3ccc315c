//! `stack validate`: check the stack files; exit 0 when valid, 1 when not.
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::GlobalOpts;
use crate::spec::compat::{self, KeyStatus, Status};
use crate::spec::{self, LoadOptions};

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ValidateFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// List every key of the files as implemented, ignored or unsupported
    /// (with the reason); exits 1 when any key is unsupported or unknown.
    #[arg(long)]
    pub compat: bool,
    /// Print the full support matrix of `stack` (no file is read).
    #[arg(long, conflicts_with = "compat")]
    pub matrix: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
}

pub fn run(global: &GlobalOpts, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    if args.matrix {
        print_keys(&compat::matrix(), args.format)?;
        return Ok(ExitCode::SUCCESS);
    }
    let opts = LoadOptions::from_global(global, Vec::new());
    if args.compat {
        return match spec::compat_report(&opts) {
            Ok(keys) => {
                print_keys(&keys, args.format)?;
                let bad = keys
                    .iter()
                    .any(|k| matches!(k.status, Status::Unsupported | Status::Unknown));
                Ok(if bad {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                })
            }
            Err(diags) => report_errors(&diags, args.format),
        };
    }
    match spec::load(&opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            if args.format == ValidateFormat::Json {
                println!("[]");
            } else {
                let files: Vec<String> = loaded
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                println!(
                    "{}: valid ({} services, {} networks, {} volumes) — stack `{}`",
                    files.join(", "),
                    loaded.stack.services.len(),
                    loaded.stack.networks.len(),
                    loaded.stack.volumes.len(),
                    loaded.stack.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => report_errors(&diags, args.format),
    }
}

fn report_errors(diags: &spec::Diagnostics, format: ValidateFormat) -> anyhow::Result<ExitCode> {
    if format == ValidateFormat::Json {
        println!("{}", serde_json::to_string_pretty(&diags.located())?);
    } else {
        eprintln!("{diags}");
    }
    Ok(ExitCode::FAILURE)
}

fn print_keys(keys: &[KeyStatus], format: ValidateFormat) -> anyhow::Result<()> {
    match format {
        ValidateFormat::Json => println!("{}", serde_json::to_string_pretty(keys)?),
        ValidateFormat::Markdown => print!("{}", compat::keys_markdown(keys)),
        ValidateFormat::Text => {
            let width = keys.iter().map(|k| k.key.len()).max().unwrap_or(0);
            for k in keys {
                let status = serde_json::to_value(&k.status)?;
                let status = status.as_str().unwrap_or_default().to_string();
                println!("{:width$}  {:11}  {}", k.key, status, k.note);
            }
        }
    }
    Ok(())
}
