//! `stack images`, `stack image ...`, `stack load`, `stack rmi`.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::GlobalOpts;
use crate::image::{ImageSummary, Store};
use crate::state::Roots;

/// Output format of listing verbs.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Shown under `stack image import`, `stack load` and `stack pull`.
pub const LIMITS_HELP: &str = "Unpacking is capped against decompression bombs: per layer 32 GiB \
and 2000000 entries, per image 64 GiB and 8000000 entries (tar metadata members: 1 MiB each). \
Change the caps with STACK_IMAGE_LIMITS, e.g. \
STACK_IMAGE_LIMITS=layer-size=100G,image-size=200G,layer-entries=5000000,image-entries=20000000";

#[derive(Args, Debug)]
#[command(after_help = LIMITS_HELP)]
pub struct ImportArgs {
    /// An OCI image layout directory, an OCI archive or a `docker save` archive.
    #[arg(value_name = "FILE|DIR")]
    pub path: PathBuf,
    /// Which tag of an OCI layout or archive to import (default: its only image).
    #[arg(long, value_name = "TAG")]
    pub select: Option<String>,
    /// Also name the imported image REF.
    #[arg(short, long, value_name = "REF")]
    pub tag: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Image names or IDs.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Remove an image by ID even when it has several names.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only unnamed ones.
    #[arg(short, long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Import an image from an OCI layout, OCI archive or docker archive.
    Import(ImportArgs),
    /// List images (same as `stack images`).
    Ls(ListArgs),
    /// Show images' configuration and layers as JSON.
    Inspect {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Write images to an OCI archive.
    Save {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
        /// The archive to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Remove images (same as `stack rmi`).
    Rm(RmiArgs),
    /// Remove unused images and content.
    Prune(PruneArgs),
    /// Give an image another name.
    Tag { image: String, name: String },
}

/// Store handle for the state root chosen on the command line.
pub fn open_store(global: &GlobalOpts) -> anyhow::Result<Store> {
    let roots = Roots::new(global.root.as_deref());
    Store::open(&roots.lib)
        .with_context(|| format!("opening the image store under {}", roots.lib.display()))
}

pub fn image(global: &GlobalOpts, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ImageCommand::Import(args) => import(global, args),
        ImageCommand::Ls(args) => list(global, args),
        ImageCommand::Inspect { images } => inspect(global, &images),
        ImageCommand::Save { images, output } => {
            let store = open_store(global)?;
            let refs: Vec<&str> = images.iter().map(String::as_str).collect();
            store
                .save_oci_archive(&refs, &output)
                .with_context(|| format!("saving to {}", output.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        ImageCommand::Rm(args) => rmi(global, args),
        ImageCommand::Prune(args) => prune(global, args),
        ImageCommand::Tag { image, name } => {
            let store = open_store(global)?;
            let found = store.resolve(&image)?;
            let id = found.id.context("not a stored image")?;
            store.tag(&id, &name)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `stack rmi`: every image is tried; the exit code says whether all went.
pub fn rmi(global: &GlobalOpts, args: RmiArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let mut failed = false;
    for image in &args.images {
        match store.remove(image, args.force) {
            Ok(report) => {
                for name in &report.untagged {
                    println!("Untagged: {name}");
                }
                for id in &report.images {
                    println!("Deleted: {id}");
                }
            }
            Err(e) => {
                eprintln!("error: {image}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn prune(global: &GlobalOpts, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let report = store.prune(args.all)?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for id in &report.images {
        println!("Deleted: {id}");
    }
    println!(
        "Removed {} images, {} blobs, {} layers. Total reclaimed space: {}",
        report.images.len(),
        report.blobs_removed,
        report.layers_removed,
        human_size(report.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}

fn inspect(global: &GlobalOpts, images: &[String]) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let summaries = store.list()?;
    let mut out = Vec::new();
    for reference in images {
        let image = store.resolve(reference)?;
        let id = image.id.clone().context("not a stored image")?;
        let summary = summaries
            .iter()
            .find(|s| s.id == id)
            .context("image vanished")?;
        // Docker's HEALTHCHECK is not an OCI config field: put it back where
        // `docker image inspect` shows it.
        let mut config = serde_json::to_value(image.config.config())?;
        if let (Some(h), Some(c)) = (&image.healthcheck, config.as_object_mut()) {
            c.insert("Healthcheck".into(), serde_json::to_value(h)?);
        }
        out.push(serde_json::json!({
            "Id": summary.config_digest,
            "Digest": id,
            "RepoTags": image.names,
            "Created": image.config.created(),
            "Architecture": image.config.architecture().to_string(),
            "Os": image.config.os().to_string(),
            "Config": config,
            "RootFS": image.config.rootfs(),
            "Size": summary.size,
            "Layers": image.layers,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

pub fn import(global: &GlobalOpts, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let ids = store
        .import_path(&args.path, args.select.as_deref())
        .with_context(|| format!("importing {}", args.path.display()))?;
    for id in &ids {
        if let Some(tag) = &args.tag {
            store.tag(id, tag)?;
        }
        let image = store.image(id)?;
        let names = if image.names.is_empty() {
            "<none>".to_string()
        } else {
            image.names.join(", ")
        };
        println!("Loaded image {names} ({id})");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(global: &GlobalOpts, args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let images = store.list()?;
    if args.quiet {
        for i in &images {
            println!("{}", i.config_digest.short());
        }
    } else if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&images)?);
    } else {
        print!("{}", table(&images, crate::image::now_secs()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Docker's columns: one row per name, `<none>` for an unnamed image.
fn table(images: &[ImageSummary], now: u64) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    for i in images {
        let created = i
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .map_or("N/A".to_string(), |t| ago(now, t));
        let rows: Vec<(String, String)> = if i.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.names.iter().map(|n| split_name(n)).collect()
        };
        for (repo, tag) in rows {
            t.add_row([
                repo,
                tag,
                i.config_digest.short().to_string(),
                created.clone(),
                human_size(i.size),
            ]);
        }
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 3));
    }
    let mut s = t.trim_fmt();
    s.push('\n');
    s
}

fn split_name(full: &str) -> (String, String) {
    match full.parse::<crate::image::Reference>() {
        Ok(r) => (
            r.familiar_name(),
            r.tag
                .clone()
                .unwrap_or_else(|| r.digest.as_ref().map_or("<none>".into(), |d| d.to_string())),
        ),
        Err(_) => (full.to_string(), "<none>".into()),
    }
}

/// Sizes as `docker images` shows them: decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        let digits = if v >= 100.0 {
            0
        } else if v >= 10.0 {
            1
        } else {
            2
        };
        format!("{v:.digits$}{}", UNITS[unit])
    }
}

/// "3 days ago", as Docker prints creation times.
pub fn ago(now: u64, then: u64) -> String {
    let d = now.saturating_sub(then);
    let (n, unit) = match d {
        0..60 => return "Less than a minute ago".into(),
        60..3600 => (d / 60, "minute"),
        3600..86_400 => (d / 3600, "hour"),
        86_400..1_209_600 => (d / 86_400, "day"),
        1_209_600..5_184_000 => (d / 604_800, "week"),
        5_184_000..63_072_000 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-01T00:00:00Z`,
/// fractions and offsets allowed).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_help_states_the_defaults() {
        let d = crate::image::Limits::default();
        for part in [
            format!(
                "per layer {} GiB and {} entries",
                d.layer_size >> 30,
                d.layer_entries
            ),
            format!(
                "per image {} GiB and {} entries",
                d.image_size >> 30,
                d.image_entries
            ),
            format!("{} MiB each", crate::image::MAX_TAR_METADATA >> 20),
        ] {
            assert!(
                LIMITS_HELP.contains(&part),
                "{part:?} not in {LIMITS_HELP:?}"
            );
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_982_256), "1.98MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(1_230_000_000), "1.23GB");
    }

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(
            parse_rfc3339("2024-01-01T01:00:00.123+01:00"),
            Some(1_704_067_200)
        );
        assert_eq!(parse_rfc3339("junk"), None);
        assert_eq!(ago(100, 100), "Less than a minute ago");
        assert_eq!(ago(3 * 86_400, 0), "3 days ago");
        assert_eq!(ago(2 * 31_536_000, 0), "2 years ago");
    }
}
