//! `stack pull REF...`: progress bars on a terminal, plain lines otherwise.
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::GlobalOpts;
use super::images::{LIMITS_HELP, human_size, open_store};
use crate::image::{Digest, Platform, PullEvent, PullOptions};

#[derive(Args, Debug)]
#[command(after_help = LIMITS_HELP)]
pub struct PullArgs {
    /// Image references (`busybox`, `127.0.0.1:5000/app:1`, `name@sha256:...`).
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
    /// Platform to pull from a multi-platform image (`linux/arm64`).
    #[arg(long)]
    pub platform: Option<String>,
    /// Allow plain HTTP to the registry (loopback registries always may).
    #[arg(long)]
    pub insecure: bool,
    /// Registries (`host:port`) that may be reached over plain HTTP.
    #[arg(
        long,
        env = "STACK_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub insecure_registries: Vec<String>,
    /// Print one line per layer instead of progress bars.
    #[arg(short, long)]
    pub quiet: bool,
}

fn lines() -> Arc<dyn Fn(PullEvent) + Send + Sync> {
    Arc::new(|event| match event {
        PullEvent::Exists(d) => eprintln!("{}: already exists", d.short()),
        PullEvent::Downloaded(d) => eprintln!("{}: downloaded", d.short()),
        PullEvent::Unpacked(d) => eprintln!("{}: unpacked", d.short()),
        PullEvent::Start(..) | PullEvent::Progress(..) => {}
    })
}

fn bars() -> Arc<dyn Fn(PullEvent) + Send + Sync> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bars: Mutex<HashMap<Digest, ProgressBar>> = Mutex::new(HashMap::new());
    Arc::new(move |event| {
        let Ok(mut bars) = bars.lock() else { return };
        match event {
            PullEvent::Start(d, size) => {
                let bar = multi.add(ProgressBar::new(size));
                bar.set_style(style.clone());
                bar.set_prefix(d.short().to_string());
                bars.insert(d, bar);
            }
            PullEvent::Progress(d, n) => {
                if let Some(b) = bars.get(&d) {
                    b.inc(n);
                }
            }
            PullEvent::Downloaded(d) => {
                if let Some(b) = bars.get(&d) {
                    b.set_message("verified, unpacking");
                }
            }
            PullEvent::Unpacked(d) => {
                if let Some(b) = bars.get(&d) {
                    b.finish_with_message("done");
                }
            }
            PullEvent::Exists(d) => {
                let _ = multi.println(format!("{}: already exists", d.short()));
            }
        }
    })
}

pub fn run(global: &GlobalOpts, args: PullArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let progress = if args.quiet || !std::io::stderr().is_terminal() {
        lines()
    } else {
        bars()
    };
    let opts = PullOptions {
        platform,
        insecure: args.insecure,
        credentials: None,
        progress: Some(progress),
    };
    let mut failed = false;
    for reference in &args.references {
        let registry = reference
            .parse::<crate::image::Reference>()
            .map(|r| r.registry)
            .unwrap_or_default();
        let opts = PullOptions {
            insecure: args.insecure || args.insecure_registries.contains(&registry),
            ..opts.clone()
        };
        match store.pull(reference, &opts) {
            Ok(id) => {
                let size = store
                    .list()?
                    .into_iter()
                    .find(|s| s.id == id)
                    .map_or(0, |s| s.size);
                println!("{reference}: pulled {id} ({})", human_size(size));
            }
            Err(e) => {
                eprintln!("error: pulling {reference}: {e}");
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
