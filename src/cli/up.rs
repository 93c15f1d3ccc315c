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

use super::project::load;
use super::{GlobalOpts, remote};
use crate::daemon::proto::{ContainersRequest, UpRequest};
use crate::reconcile::plan::Options;
use crate::reconcile::{self, Ctx, UpOptions};
use crate::spec::LoadOptions;

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
    /// Keep watching the files (and their .env and env_files): the daemon
    /// reconciles on every change.
    #[arg(long)]
    pub watch: bool,
    /// Detached, then wait until every service runs (and is healthy, when it
    /// has a healthcheck) or, for one-shot services, exited 0.
    #[arg(long, conflicts_with_all = ["no_start", "dry_run"])]
    pub wait: bool,
    /// With --wait: give up after this many seconds; the exit status is
    /// non-zero exactly when a service is not ready then.
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub wait_timeout: Option<u64>,
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

pub fn run(global: &GlobalOpts, args: UpArgs) -> anyhow::Result<ExitCode> {
    let (loaded, roots) = load(global, &args.services)?;
    let stack = &loaded.stack;
    for s in &args.services {
        if !stack.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let opts = up_options(&args);
    if args.dry_run {
        let ctx = Ctx::open(roots.clone()).context("cannot open the state root")?;
        let plan = reconcile::observe_plan(&ctx, stack, &opts)?;
        print_plan(&plan);
        return Ok(ExitCode::SUCCESS);
    }
    let mut load = LoadOptions::from_global(global, args.services.clone());
    // The daemon interpolates with our environment, as we just did.
    load.environment = Some(std::env::vars().collect());
    let req = UpRequest {
        load,
        options: opts,
        watch: args.watch,
    };
    let outcome = remote::call(&roots, "/v1/stacks/up", &req)?;
    if outcome.nothing_to_do {
        eprintln!("Stack {} is up to date: nothing to do.", stack.name);
    }
    for o in &outcome.orphans {
        eprintln!(
            "warning: {o} belongs to a service no longer in the file; `stack up --remove-orphans` removes it"
        );
    }
    if outcome.code != ExitCode::SUCCESS || args.no_start {
        return Ok(outcome.code);
    }
    // --wait implies -d (as Compose); both together wait too.
    if args.wait {
        let timeout = args.wait_timeout.map(Duration::from_secs);
        return super::up_wait::until_ready(&roots, &stack.name, &args.services, timeout);
    }
    if args.detach {
        return Ok(outcome.code);
    }
    attach(global, &roots, stack)
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
fn attach(
    global: &GlobalOpts,
    roots: &crate::state::Roots,
    stack: &crate::model::Stack,
) -> anyhow::Result<ExitCode> {
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
    let stop = format!("/v1/stacks/{}/stop", stack.name);
    let kill = format!("/v1/stacks/{}/kill", stack.name);
    std::thread::scope(|s| {
        let stopping = s.spawn(|| remote::call(roots, &stop, &ContainersRequest::default()));
        while !stopping.is_finished() {
            if interrupts.load(Ordering::SeqCst) > 1 {
                let _ = remote::call(roots, &kill, &ContainersRequest::default());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stopping
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("stopping failed")))
            .map(|o| o.code)
    })
}
