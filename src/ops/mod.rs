//! Operations on the existing containers of a stack, as data: `top`, `stats`,
//! `pause`/`unpause`, `rm`, `images` and `wait`.
//!
//! Each operation takes the state roots, the stack's name and the services to
//! act on (all when empty), and returns serialisable values; rendering them as
//! tables or JSON is the caller's job (`cli/`), so the daemon's API can serve the
//! same data. Nothing here reads the stack file: what exists is what the state
//! root records.
pub mod images;
pub mod inspect;
pub mod logs;
pub mod ls;
pub mod pause;
pub mod ps;
pub mod rm;
pub mod stats;
pub mod top;
pub mod wait;

use crate::state::Roots;
use crate::supervisor::control::{self, Observed};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stack {stack} has no container of service {service}{}", known_services(.known))]
    UnknownService {
        stack: String,
        service: String,
        known: Vec<String>,
    },
    #[error("stack {stack} has no containers on this state root; bring it up first (stack up -d)")]
    NoContainers { stack: String },
    #[error("gave up after {waited:?}: still running: {}", .running.join(", "))]
    Timeout {
        waited: std::time::Duration,
        running: Vec<String>,
    },
    #[error(transparent)]
    Observe(#[from] control::Error),
    /// The cause follows in the error's chain (printed by the CLI with `{:#}`).
    #[error("{name}")]
    Cgroup {
        name: String,
        source: crate::cgroup::Error,
    },
    #[error("reading {}", .path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Reconcile(#[from] crate::reconcile::Error),
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    #[error("{0}")]
    Query(String),
}

fn known_services(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!(" (it has containers of: {})", known.join(", "))
    }
}

/// The containers of `stack` (of `services` only, when not empty), by name.
/// A named service without any container is an error that lists those there are.
pub fn containers(roots: &Roots, stack: &str, services: &[String]) -> Result<Vec<Observed>, Error> {
    let all = control::observe(&roots.lib, Some(stack))?;
    if all.is_empty() {
        return Err(Error::NoContainers {
            stack: stack.to_string(),
        });
    }
    let mut known: Vec<String> = all.iter().map(|o| o.spec.service.clone()).collect();
    known.sort();
    known.dedup();
    if let Some(missing) = services.iter().find(|s| !known.contains(s)) {
        return Err(Error::UnknownService {
            stack: stack.to_string(),
            service: missing.clone(),
            known,
        });
    }
    Ok(all
        .into_iter()
        .filter(|o| services.is_empty() || services.contains(&o.spec.service))
        .collect())
}

/// What happened to one container in a verb that acts on several (pause, rm):
/// done, skipped with the reason, or failed with the error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub name: String,
    pub service: String,
    #[serde(flatten)]
    pub result: OutcomeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", content = "reason", rename_all = "lowercase")]
pub enum OutcomeKind {
    Done,
    Skipped(String),
    Failed(String),
}

impl Outcome {
    fn new(o: &Observed, result: OutcomeKind) -> Self {
        Outcome {
            name: o.spec.name.clone(),
            service: o.spec.service.clone(),
            result,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self.result, OutcomeKind::Failed(_))
    }
}

impl AsRef<Outcome> for Outcome {
    fn as_ref(&self) -> &Outcome {
        self
    }
}

/// The runtime handle of a state root (container ids are container names).
fn runtime(roots: &Roots) -> crate::runtime::Runtime {
    crate::runtime::Runtime::new(crate::reconcile::runtime_dir(&roots.run))
}

/// The cgroup of a container as the reconciler placed it, on this host's hierarchy.
fn cgroup(o: &Observed) -> Result<crate::cgroup::Cgroup, Error> {
    let path = crate::reconcile::container::cgroup_of(&o.spec);
    crate::cgroup::Cgroup::open(path).map_err(|source| Error::Cgroup {
        name: o.spec.name.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_json_shape() {
        let o = Outcome {
            name: "s-web-1".into(),
            service: "web".into(),
            result: OutcomeKind::Skipped("not running".into()),
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"name": "s-web-1", "service": "web", "result": "skipped", "reason": "not running"})
        );
        let done = Outcome {
            result: OutcomeKind::Done,
            ..o
        };
        assert_eq!(serde_json::to_value(&done).unwrap()["result"], "done");
    }

    #[test]
    fn unknown_service_lists_the_known_ones() {
        let e = Error::UnknownService {
            stack: "s".into(),
            service: "wbe".into(),
            known: vec!["db".into(), "web".into()],
        };
        assert_eq!(
            e.to_string(),
            "stack s has no container of service wbe (it has containers of: db, web)"
        );
    }
}
