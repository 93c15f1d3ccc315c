//! `pause` / `unpause`: freeze and thaw every process of running containers with
//! the cgroup freezer (the runtime's `pause`/`resume`). A frozen container keeps
//! its memory, sockets and pid; its monitor keeps running and sees no exit.
use super::{Error, Outcome, OutcomeKind, containers, runtime};
use crate::runtime::{Error as RuntimeError, Status};
use crate::state::Roots;
use crate::supervisor::error_chain;

/// Freeze the running containers of `services` (all when empty).
pub fn pause(roots: &Roots, stack: &str, services: &[String]) -> Result<Vec<Outcome>, Error> {
    each(roots, stack, services, true)
}

/// Thaw the paused containers of `services` (all when empty).
pub fn unpause(roots: &Roots, stack: &str, services: &[String]) -> Result<Vec<Outcome>, Error> {
    each(roots, stack, services, false)
}

/// Whether container `name` is frozen now.
pub fn is_paused(roots: &Roots, name: &str) -> bool {
    runtime(roots)
        .state(name)
        .is_ok_and(|s| s.status == Status::Paused)
}

fn each(
    roots: &Roots,
    stack: &str,
    services: &[String],
    freeze: bool,
) -> Result<Vec<Outcome>, Error> {
    let rt = runtime(roots);
    Ok(containers(roots, stack, services)?
        .iter()
        .map(|o| {
            // A container between restarts has no runtime container to freeze.
            let status = match rt.state(&o.spec.name) {
                Ok(s) if o.is_up() => s.status,
                Ok(_) | Err(RuntimeError::NotFound(_)) => Status::Stopped,
                Err(e) => return Outcome::new(o, OutcomeKind::Failed(error_chain(&e))),
            };
            let result = match (status, freeze) {
                (Status::Running | Status::Created, true) => rt.pause(&o.spec.name),
                (Status::Paused, false) => rt.resume(&o.spec.name),
                (Status::Paused, true) => return skipped(o, "already paused"),
                (Status::Running | Status::Created, false) => return skipped(o, "not paused"),
                (Status::Stopped | Status::Creating, _) => return skipped(o, "not running"),
            };
            match result {
                Ok(()) => Outcome::new(o, OutcomeKind::Done),
                Err(e) => Outcome::new(o, OutcomeKind::Failed(error_chain(&e))),
            }
        })
        .collect())
}

fn skipped(o: &crate::supervisor::control::Observed, why: &str) -> Outcome {
    Outcome::new(o, OutcomeKind::Skipped(why.to_string()))
}
