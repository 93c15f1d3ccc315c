//! `stack schema`: print the JSON Schema of the stack file.
use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct SchemaArgs {}

pub fn run(_args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    print!("{}", crate::spec::schema::json_schema_text());
    Ok(ExitCode::SUCCESS)
}
