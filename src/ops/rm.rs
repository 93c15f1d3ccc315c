//! `rm`: remove stopped containers of a stack (with `force`, running ones too,
//! stopped first), and with `volumes` the anonymous volumes they used. Networks,
//! named volumes and the stack's record stay: that is `down`'s job. Each
//! container removed is a `destroy` event, as in Docker.
use std::time::Duration;

use super::{Error, Outcome, OutcomeKind, containers};
use crate::reconcile::{Ctx, container};
use crate::state::Roots;
use crate::supervisor::control::Observed;
use crate::supervisor::error_chain;
use crate::supervisor::events::{self, Action};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RmOptions {
    /// Also remove running containers, stopping them first.
    pub force: bool,
    /// Also remove the anonymous volumes of the removed containers.
    pub volumes: bool,
    /// Grace period of the stop (default: each service's `stop_grace_period`).
    pub timeout: Option<Duration>,
    /// Only these containers, by name (a `stack run --rm` container); empty:
    /// every container of the services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
}

/// One removed (or kept) container and the anonymous volumes that went with it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Removed {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub volumes: Vec<String>,
}

/// Remove the containers of `services` (all when empty). Running containers
/// without `force` are skipped, not an error, as `docker compose rm` does.
pub fn rm(
    roots: &Roots,
    stack: &str,
    services: &[String],
    opts: &RmOptions,
) -> Result<Vec<Removed>, Error> {
    let picked = picked(roots, stack, services, opts)?;
    let ctx = Ctx::open(roots.clone())?;
    // Concurrently, as `down` does: each stop may wait out a grace period.
    Ok(std::thread::scope(|s| {
        let handles: Vec<_> = picked
            .iter()
            .map(|o| s.spawn(|| remove_one(&ctx, o, opts)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    }))
}

/// The containers [`rm`] acts on.
pub fn picked(
    roots: &Roots,
    stack: &str,
    services: &[String],
    opts: &RmOptions,
) -> Result<Vec<Observed>, Error> {
    let mut picked = containers(roots, stack, services)?;
    if !opts.containers.is_empty() {
        picked.retain(|o| opts.containers.contains(&o.spec.name));
    }
    Ok(picked)
}

impl AsRef<Outcome> for Removed {
    fn as_ref(&self) -> &Outcome {
        &self.outcome
    }
}

fn remove_one(ctx: &Ctx, o: &Observed, opts: &RmOptions) -> Removed {
    if o.is_up() && !opts.force {
        return Removed {
            outcome: Outcome::new(
                o,
                OutcomeKind::Skipped("running: stop it first (stack stop) or use --force".into()),
            ),
            volumes: Vec::new(),
        };
    }
    // Read before the removal drops the holds.
    let held = match ctx.volumes.held_by(&o.spec.name) {
        Ok(h) => h,
        Err(e) => return failed(o, &e),
    };
    // A frozen container cannot act on its stop signal: thaw it, so the stop
    // is graceful rather than a SIGKILL after the grace period.
    let _ = ctx.runtime.resume(&o.spec.name);
    let grace = opts.timeout.unwrap_or(o.spec.stop_grace);
    // Released: no later container of this name takes its anonymous volumes
    // back; with `volumes` they are deleted below.
    let anon = container::AnonVolumes::Release;
    if let Some(e) = container::remove(ctx, &o.spec.name, grace, anon).first() {
        return failed(o, e);
    }
    let spec = &o.spec;
    let destroy = events::Event::new(Action::Destroy, &spec.stack, &spec.service, &spec.name);
    events::emit(&ctx.roots.lib, &destroy);
    let mut removed = Removed {
        outcome: Outcome::new(o, OutcomeKind::Done),
        volumes: Vec::new(),
    };
    if opts.volumes {
        let mut errors = Vec::new();
        for name in held {
            match anonymous_of(ctx, &name, &o.spec.stack) {
                Ok(false) => {}
                // Refused while another container still uses it.
                Ok(true) => match ctx.volumes.remove(&name) {
                    Ok(_) => removed.volumes.push(name),
                    Err(e) => errors.push(format!("volume {name}: {e}")),
                },
                Err(e) => errors.push(format!("volume {name}: {e}")),
            }
        }
        if !errors.is_empty() {
            removed.outcome.result = OutcomeKind::Failed(format!(
                "removed, but not all its volumes: {}",
                errors.join("; ")
            ));
        }
    }
    removed
}

/// Whether volume `name` is an anonymous volume of `stack` (named volumes are data
/// the file declares: only `down -v` removes them).
fn anonymous_of(ctx: &Ctx, name: &str, stack: &str) -> Result<bool, crate::storage::Error> {
    Ok(ctx
        .volumes
        .get(name)?
        .is_some_and(|v| v.anonymous && v.stack.as_deref() == Some(stack)))
}

fn failed(o: &Observed, e: &dyn std::error::Error) -> Removed {
    Removed {
        outcome: Outcome::new(o, OutcomeKind::Failed(error_chain(e))),
        volumes: Vec::new(),
    }
}
