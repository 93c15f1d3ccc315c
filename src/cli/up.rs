//! `stack up`: make the host match the file, then (in the foreground) stream the
//! logs until Ctrl-C, which stops the stack.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::GlobalOpts;
use super::project::{claim, load};
use crate::reconcile::plan::{Action, Options};
use crate::reconcile::{self, Ctx, Event, UpOptions};

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Detached: return once everything is started; containers keep running.
    #[arg(short, long)]
    pub detach: bool,
    /// Recreate containers even when their configuration did not change.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Never recreate existing containers.
    #[arg(long)]
    pub no_recreate: bool,
    /// Create containers without starting them.
    #[arg(long)]
    pub no_start: bool,
    /// Remove containers of services that are no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replicas of a service: SERVICE=N (repeatable).
    #[arg(long, value_name = "SERVICE=N", value_parser = parse_scale)]
    pub scale: Vec<(String, u32)>,
    /// Seconds to wait for containers to stop when they are replaced.
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
}

fn parse_scale(s: &str) -> Result<(String, u32), String> {
    let (svc, n) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected SERVICE=N"))?;
    let n = n
        .parse()
        .map_err(|_| format!("`{s}`: N must be a number"))?;
    Ok((svc.to_string(), n))
}

pub fn up_options(args: &UpArgs) -> UpOptions {
    UpOptions {
        plan: Options {
            force_recreate: args.force_recreate,
            no_recreate: args.no_recreate,
            no_start: args.no_start,
            remove_orphans: args.remove_orphans,
        },
        services: args.services.clone(),
        scale: args.scale.iter().cloned().collect::<BTreeMap<_, _>>(),
        timeout: args.timeout.map(Duration::from_secs),
    }
}

/// One line per step, as Compose prints them.
pub fn print_event(e: Event) {
    let (what, verb, done) = match &e {
        Event::Begin(a) => (a, verb(a).0, None),
        Event::Done(a) => (a, verb(a).1, Some(String::new())),
        Event::Failed(a, why) => (a, "Error", Some(format!(": {why}"))),
        Event::Skipped(a, why) => (a, "Skipped", Some(format!(": {why}"))),
    };
    match done {
        None => eprintln!(" Container {}  {verb}", what.name()),
        Some(tail) => eprintln!(" Container {}  {verb}{tail}", what.name()),
    }
}

fn verb(a: &Action) -> (&'static str, &'static str) {
    match a {
        Action::Create { .. } => ("Creating", "Started"),
        Action::Recreate { .. } => ("Recreating", "Started"),
        Action::Start { .. } => ("Starting", "Started"),
        Action::Remove { .. } => ("Removing", "Removed"),
    }
}

pub fn run(global: &GlobalOpts, args: UpArgs) -> anyhow::Result<ExitCode> {
    let (loaded, roots) = load(global, &args.services)?;
    let stack = &loaded.stack;
    for s in &args.services {
        if !stack.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let opts = up_options(&args);
    let ctx = Ctx::open(roots.clone()).context("cannot open the state root")?;
    if args.dry_run {
        let plan = reconcile::observe_plan(&ctx, stack, &opts)?;
        print_plan(&plan);
        return Ok(ExitCode::SUCCESS);
    }
    claim(&roots, stack, &loaded.files)?;
    let report = reconcile::up(&ctx, stack, &opts, &print_event)?;
    if report.plan.is_empty() {
        eprintln!("Stack {} is up to date: nothing to do.", stack.name);
    }
    for o in &report.plan.orphans {
        eprintln!(
            "warning: {o} belongs to a service no longer in the file; `stack up --remove-orphans` removes it"
        );
    }
    if !report.failed.is_empty() {
        for (what, why) in &report.failed {
            eprintln!("error: {what}: {why}");
        }
        return Ok(ExitCode::FAILURE);
    }
    if args.detach || args.no_start {
        return Ok(ExitCode::SUCCESS);
    }
    attach(global, &ctx, stack)
}

pub fn print_plan(plan: &reconcile::plan::Plan) {
    if plan.is_empty() {
        println!("nothing to do");
    }
    for a in &plan.actions {
        println!("{a}");
    }
    for o in &plan.orphans {
        println!("orphan {o} (kept; --remove-orphans removes it)");
    }
}

/// Foreground: stream logs until Ctrl-C, then stop the stack (a second Ctrl-C
/// kills it instead of waiting for the grace periods).
fn attach(global: &GlobalOpts, ctx: &Ctx, stack: &crate::model::Stack) -> anyhow::Result<ExitCode> {
    let interrupts = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let n = interrupts.clone();
        // SAFETY: the handler only touches an atomic counter (async-signal-safe).
        unsafe {
            signal_hook::low_level::register(sig, move || {
                n.fetch_add(1, Ordering::SeqCst);
            })
        }?;
    }
    let follow = super::logs::LogsArgs::follow_all(!std::io::stdout().is_terminal());
    let stop_at = interrupts.clone();
    let global_for_logs = GlobalOpts {
        project_name: Some(stack.name.clone()),
        ..global.clone()
    };
    std::thread::spawn(move || {
        super::logs::run_until(&global_for_logs, follow, &|| {
            stop_at.load(Ordering::SeqCst) > 0
        })
    });
    while interrupts.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
    let names: Vec<String> =
        crate::supervisor::control::observe(&ctx.roots.lib, Some(&stack.name))?
            .into_iter()
            .map(|o| o.spec.name)
            .collect();
    std::thread::scope(|s| {
        for name in &names {
            let interrupts = interrupts.clone();
            s.spawn(move || {
                let grace = stack
                    .services
                    .values()
                    .map(|s| s.stop_grace_period)
                    .max()
                    .unwrap_or(Duration::from_secs(10));
                let force = || interrupts.load(Ordering::SeqCst) > 1;
                crate::supervisor::control::stop_with(&ctx.roots, name, grace, &force)
            });
        }
    });
    Ok(ExitCode::SUCCESS)
}
