//! `stack up --wait`: poll the containers until every one is ready, or until
//! the timeout, when what is not ready makes the exit status non-zero.
//!
//! Ready: running and, with a healthcheck, healthy; or exited with code 0 (a
//! one-shot service that did its job). With a timeout, nothing fails before
//! it: a crashed container may still come back by its restart policy. Without
//! one, a container that ended for good (not restarting) with a non-zero code
//! fails at once, since waiting longer cannot change it.
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::remote;
use crate::ops::ps::Row;
use crate::state::Roots;
use crate::supervisor::record::{Health, State};

const POLL: Duration = Duration::from_millis(100);

pub fn until_ready(
    roots: &Roots,
    stack: &str,
    services: &[String],
    timeout: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let rows = rows(roots, stack, services)?;
        let waiting: Vec<&Row> = rows.iter().filter(|r| !ready(r)).collect();
        if waiting.is_empty() {
            eprintln!("Stack {stack}: every service is ready.");
            return Ok(ExitCode::SUCCESS);
        }
        let failed: Vec<&&Row> = waiting.iter().filter(|r| ended_badly(r)).collect();
        let give_up = match deadline {
            Some(d) => Instant::now() >= d,
            None => !failed.is_empty(),
        };
        if give_up {
            for r in &waiting {
                eprintln!("error: {} is not ready: {}", r.name, describe(r));
            }
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(POLL);
    }
}

fn rows(roots: &Roots, stack: &str, services: &[String]) -> anyhow::Result<Vec<Row>> {
    let path = format!("/v1/stacks/{stack}/ps");
    let rows: Vec<Row> = remote::read(roots, &path, || Ok(crate::ops::ps::rows(roots, stack)?))?;
    Ok(rows
        .into_iter()
        .filter(|r| services.is_empty() || services.contains(&r.service))
        .collect())
}

fn ready(r: &Row) -> bool {
    match r.state {
        State::Running => !r.paused && matches!(r.health, None | Some(Health::Healthy)),
        State::Exited => r.exit_code == Some(0),
        _ => false,
    }
}

fn ended_badly(r: &Row) -> bool {
    matches!(r.state, State::Exited | State::Stopped | State::Created) && !ready(r)
}

fn describe(r: &Row) -> String {
    match (r.state, r.health) {
        (State::Running, Some(Health::Starting)) => {
            "running, its healthcheck has not passed yet".into()
        }
        (State::Running, Some(Health::Unhealthy)) => "running but unhealthy".into(),
        _ => r.status.clone(),
    }
}
