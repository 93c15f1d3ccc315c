//! `stack images`: the images the stack's containers run (as `docker compose
//! images`); without a stack, every image in the store (as `stack image ls`).
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use super::images::{self, human_size};
use super::output::{ListFormat, print_rows, table};
use crate::ops::images::images;

#[derive(Args, Debug)]
#[command(
    after_help = "The stack is the one named by -p or -f, or by a stack file \
    (stack.toml, compose.yaml, ...) in the current directory. Without any, this lists \
    the whole image store, as `stack image ls` always does."
)]
pub struct ImagesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these services (of the stack).
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: ImagesArgs) -> anyhow::Result<ExitCode> {
    if !names_a_stack(global) {
        anyhow::ensure!(
            args.services.is_empty(),
            "services given but no stack: name it with -p NAME or -f FILE"
        );
        let format = match args.format {
            ListFormat::Table => images::Format::Table,
            ListFormat::Json => images::Format::Json,
        };
        return images::list(
            global,
            images::ListArgs {
                format,
                quiet: args.quiet,
            },
        );
    }
    let project = super::project::resolve(global)?;
    let rows = images(&project.roots, &project.name, &args.services)?;
    if args.quiet {
        let mut ids: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.config_digest.as_deref())
            .map(short)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.iter().for_each(|id| println!("{id}"));
        return Ok(ExitCode::SUCCESS);
    }
    print_rows(args.format, &rows, |rows| {
        let mut t = table(["CONTAINER", "SERVICE", "IMAGE", "IMAGE ID", "SIZE"]);
        for r in rows {
            t.add_row([
                r.container.clone(),
                r.service.clone(),
                r.image.clone(),
                r.config_digest.as_deref().map_or("-", short).to_string(),
                r.size.map_or_else(|| "-".into(), human_size),
            ]);
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `-p`, `-f`, or a default stack file in the working directory.
fn names_a_stack(global: &GlobalOpts) -> bool {
    global.project_name.is_some()
        || !global.files.is_empty()
        || crate::spec::load::DEFAULT_FILES
            .iter()
            .any(|f| std::path::Path::new(f).is_file())
}

/// The 12 hex digits `docker images` shows of a `sha256:` digest.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_ids() {
        assert_eq!(super::short("sha256:912fe08207ebdaee38c3"), "912fe08207eb");
        assert_eq!(super::short("abc"), "abc");
    }
}
