//! `stack config`: print the normalized, interpolated, merged model.
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::GlobalOpts;
use crate::spec::{self, LoadOptions};

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum ConfigFormat {
    #[default]
    Toml,
    Yaml,
    Json,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Toml)]
    pub format: ConfigFormat,
    /// Print only the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Print each service's config hash (`NAME HASH`), one per line.
    #[arg(long)]
    pub hash: bool,
    /// Only these services (and what they depend on).
    pub service: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = match spec::load(&LoadOptions::from_global(global, args.service.clone())) {
        Ok(l) => l,
        Err(diags) => {
            eprintln!("{diags}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let mut stack = loaded.stack;
    stack.services.retain(|n, _| loaded.targeted.contains(n));
    if args.services {
        for name in stack.services.keys() {
            println!("{name}");
        }
    } else if args.hash {
        for (name, svc) in &stack.services {
            println!("{name} {}", svc.config_hash(&stack));
        }
    } else {
        print!("{}", render(&stack, args.format)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The model in the chosen format, without empty members.
pub fn render(stack: &crate::model::Stack, format: ConfigFormat) -> anyhow::Result<String> {
    let value = prune(serde_json::to_value(stack)?);
    Ok(match format {
        ConfigFormat::Json => serde_json::to_string_pretty(&value)? + "\n",
        ConfigFormat::Toml => toml::to_string_pretty(&value)?,
        ConfigFormat::Yaml => serde_saphyr::to_string(&value)?,
    })
}

/// Drops nulls, empty lists and empty tables, except the per-network
/// settings of a service (`networks.front = {}` still says "joins front").
fn prune(v: Value) -> Value {
    prune_in(v, false)
}

fn prune_in(v: Value, keep_empty: bool) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let keep = k == "networks";
                    (k, prune_in(v, keep))
                })
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => keep_empty || !o.is_empty(),
                    _ => true,
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|i| prune_in(i, false)).collect())
        }
        other => other,
    }
}
