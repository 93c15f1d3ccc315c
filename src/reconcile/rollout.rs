//! Start-first updates (`deploy.update_config.order: start-first`): a changed
//! container is replaced without a moment in which nobody serves its ports.
//!
//! Flow, for container `web-1` running the old config:
//! 1. create the new config as `web-<TEMP_INDEX + 1>`, its published ports
//!    reserved but without traffic (standby), and start it;
//! 2. wait until it is ready: healthy, or running and listening on its
//!    published ports when it has no healthcheck (standby.rs);
//! 3. move the ports to it (one nftables transaction: new connections go to
//!    it, open ones stay where they are), then stop and remove `web-1`;
//! 4. the same again from the temporary container to a new `web-1`, so that
//!    names, cgroups and `depends_on` keep pointing at `web-<n>`.
//!
//! Failure (the new container exits, turns unhealthy or is not ready within
//! `monitor`): with `failure_action: rollback` it is removed and the old one
//! keeps serving, marked rolled-back (in `ps`) until a later update replaces
//! it; with `continue` the update goes on regardless.
//!
//! The replicas of a service are replaced at the same time, each on its own:
//! some may roll back while others move on.
//!
//! Caveats: a port published on a random host port gets a new random port
//! (nothing to keep); a fixed `[::1]` port is one proxy's socket and cannot
//! be held twice, so the update fails and rolls back.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::container::{self, AnonVolumes};
use super::desired::container_name;
use super::execute::Event;
use super::plan::{Action, Want};
use super::standby::wait_ready;
use super::{Ctx, Error};
use crate::image::Image;
use crate::model::{FailureAction, Service, Stack, UpdateOrder};
use crate::supervisor::control;
use crate::supervisor::record::ContainerPaths;

/// The temporary container of replica n is `<stack>-<service>-<TEMP_INDEX + n>`.
pub const TEMP_INDEX: u32 = 10_000;

/// Whether replacing container `name` of `svc` is a start-first update: the
/// service asks for one and the old container runs (a stopped one has no
/// traffic to keep).
pub fn applies(ctx: &Ctx, svc: &Service, name: &str) -> bool {
    svc.update_config.order == UpdateOrder::StartFirst
        && control::observe_one(&ctx.roots.lib, name)
            .ok()
            .flatten()
            .is_some_and(|o| o.is_up())
}

/// What a replaced container needs besides its [`Want`].
pub struct Replace<'a> {
    pub stack: &'a Stack,
    pub svc: &'a Service,
    pub peers: &'a [String],
    pub image: &'a Image,
    /// Grace period of the old container's stop.
    pub grace: Duration,
    pub progress: &'a (dyn Fn(Event) + Sync),
}

/// Replace the running container `action` names by `want` as the module doc
/// says. Reports the new container's creation itself (so the supervisor
/// watches it while it gets ready).
pub fn start_first(ctx: &Ctx, r: &Replace<'_>, action: &Action, want: &Want) -> Result<(), Error> {
    let index = TEMP_INDEX + want.index;
    let temp = Want {
        name: container_name(r.stack, r.svc, index),
        index,
        ..want.clone()
    };
    let announce = Action::Create {
        name: temp.name.clone(),
        service: want.service.clone(),
    };
    // The old container's anonymous volumes pass to its successor of the
    // same name; the temporary one's go with it.
    hand_over(ctx, r, &temp, (&want.name, AnonVolumes::Keep), announce)?;
    hand_over(
        ctx,
        r,
        want,
        (&temp.name, AnonVolumes::Remove),
        action.clone(),
    )
}

/// Start `new` on standby, wait until it is ready, move `old`'s ports to it,
/// remove `old`.
fn hand_over(
    ctx: &Ctx,
    r: &Replace<'_>,
    new: &Want,
    (old, old_anon): (&str, AnonVolumes),
    announce: Action,
) -> Result<(), Error> {
    container::create(ctx, r.stack, r.svc, new, r.peers, r.image, true)?;
    if let Err(e) = control::spawn_monitor(&ctx.roots, &new.name) {
        remove(ctx, r, &new.name, AnonVolumes::Remove);
        return Err(e.into());
    }
    (r.progress)(Event::Done(announce));
    if let Err(why) = wait_ready(ctx, r.svc, &new.name) {
        match r.svc.update_config.failure_action {
            FailureAction::Rollback => {
                remove(ctx, r, &new.name, AnonVolumes::Remove);
                mark_rolled_back(&ctx.roots.lib, old, &new.name, &why);
                return Err(Error::Invalid(format!(
                    "{} did not get ready ({why}): rolled back, {old} keeps serving",
                    new.name
                )));
            }
            FailureAction::Continue => {}
        }
    }
    ctx.net.move_ports(old, &new.name)?;
    match remove(ctx, r, old, old_anon) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// Remove container `name`, reported as a step; the first error.
fn remove(ctx: &Ctx, r: &Replace<'_>, name: &str, anon: AnonVolumes) -> Option<Error> {
    let action = Action::Remove {
        name: name.to_string(),
        service: r.svc.name.clone(),
        reason: "replaced (start-first update)".into(),
    };
    (r.progress)(Event::Begin(action.clone()));
    let e = container::remove(ctx, name, r.grace, anon)
        .into_iter()
        .next();
    match &e {
        None => (r.progress)(Event::Done(action)),
        Some(e) => (r.progress)(Event::Failed(action, e.to_string())),
    }
    e
}

/// What `ps` shows of a container kept by a rollback.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RolledBack {
    /// The container that did not get ready (removed).
    pub replacement: String,
    pub reason: String,
    /// Seconds since the epoch.
    pub at: u64,
}

fn marker(lib: &Path, name: &str) -> PathBuf {
    ContainerPaths::new(lib, name).dir.join("rolled-back.json")
}

/// Record on `kept` that an update to it was rolled back. Best effort: the
/// rollback itself is done and reported either way.
fn mark_rolled_back(lib: &Path, kept: &str, replacement: &str, reason: &str) {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rec = RolledBack {
        replacement: replacement.to_string(),
        reason: reason.to_string(),
        at,
    };
    let _ = crate::state::write_json_durable(&marker(lib, kept), &rec);
}

/// The rollback kept container `name` for, if one did. The marker goes with
/// the container when a later update replaces it.
pub fn rolled_back(lib: &Path, name: &str) -> Option<RolledBack> {
    let text = std::fs::read_to_string(marker(lib, name)).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips_and_is_absent_by_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("containers/web-1")).unwrap();
        assert!(rolled_back(dir.path(), "web-1").is_none());
        mark_rolled_back(dir.path(), "web-1", "web-10001", "unhealthy");
        let r = rolled_back(dir.path(), "web-1").unwrap();
        assert_eq!(
            (r.replacement.as_str(), r.reason.as_str()),
            ("web-10001", "unhealthy")
        );
    }
}
