//! `wait`: block until containers have stopped for good, then report how each
//! ended. A container that its restart policy will start again (state
//! `restarting`) has not stopped; one with `restart = "always"` never does.
use std::time::{Duration, Instant};

use super::{Error, containers};
use crate::state::Roots;
use crate::supervisor::control::{self, Observed};
use crate::supervisor::record::State;

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exit {
    pub name: String,
    pub service: String,
    pub state: State,
    /// `None` when it never ran (created, then removed or its monitor gone).
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
}

impl Exit {
    fn of(o: &Observed) -> Self {
        Exit {
            name: o.spec.name.clone(),
            service: o.spec.service.clone(),
            state: o.status.state,
            exit_code: o.status.exit_code,
            oom_killed: o.status.oom_killed,
        }
    }
}

/// How often the records are read while waiting: container exits are rare
/// events, and a record read is one small file per container.
const POLL: Duration = Duration::from_millis(50);

/// Wait until every container of `services` (all when empty) has stopped, for
/// at most `timeout` (forever when `None`).
pub fn wait(
    roots: &Roots,
    stack: &str,
    services: &[String],
    timeout: Option<Duration>,
) -> Result<Vec<Exit>, Error> {
    let started = Instant::now();
    let mut last: Vec<Observed> = containers(roots, stack, services)?;
    loop {
        let now = control::observe(&roots.lib, Some(stack))?;
        // A container removed meanwhile (`down`) ended as last seen.
        for o in &mut last {
            if let Some(fresh) = now.iter().find(|n| n.spec.name == o.spec.name) {
                *o = fresh.clone();
            } else {
                o.monitor_alive = false;
            }
        }
        let running: Vec<String> = last
            .iter()
            .filter(|o| o.is_up())
            .map(|o| o.spec.name.clone())
            .collect();
        if running.is_empty() {
            return Ok(last.iter().map(Exit::of).collect());
        }
        if let Some(limit) = timeout
            && started.elapsed() >= limit
        {
            return Err(Error::Timeout {
                waited: limit,
                running,
            });
        }
        std::thread::sleep(POLL);
    }
}
