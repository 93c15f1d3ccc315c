//! The daemon's API types, shared by the server and the CLI's client.
//!
//! Requests are JSON bodies; answers are JSON, or for long operations (up,
//! down, stop, ...) a stream of [`Line`]s, one JSON object per line, ending
//! with [`Line::Done`] (or [`Line::Error`]).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::reconcile::{DownOptions, Event, UpOptions};
use crate::spec::LoadOptions;

/// `POST /v1/stacks/up`: make the host match the files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpRequest {
    /// What to load, with the caller's environment for interpolation and the
    /// caller's working directory (absolute).
    pub load: LoadOptions,
    pub options: UpOptions,
    /// Keep watching the files and reconcile on every change.
    #[serde(default)]
    pub watch: bool,
}

/// `POST /v1/stacks/run`: a one-off container of a service (`stack run`),
/// created once the service's dependencies are up (`up` of them, unless
/// `no_deps`); started and supervised with `detach`, else left for the
/// caller to start attached to its own stdio.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    pub load: LoadOptions,
    pub service: String,
    /// The container's name and short id, chosen by the caller.
    pub name: String,
    pub run_id: String,
    pub overrides: crate::reconcile::oneoff::Overrides,
    #[serde(default)]
    pub no_deps: bool,
    #[serde(default)]
    pub detach: bool,
    /// With `detach`: the supervisor removes the container once it ended
    /// (`run -d --rm`).
    #[serde(default)]
    pub rm: bool,
}

/// `POST /v1/stacks/{name}/down`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DownRequest {
    /// The files, when the caller has them: services no longer in them count
    /// as orphans (kept without `remove_orphans`); None = everything goes.
    #[serde(default)]
    pub load: Option<LoadOptions>,
    pub options: DownOptions,
}

/// `POST /v1/stacks/{name}/{stop,start,restart,kill}`: act on existing
/// containers of some services (all when empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainersRequest {
    #[serde(default)]
    pub services: Vec<String>,
    /// stop/restart: grace period in seconds (default: each service's).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// kill: the signal (name or number).
    #[serde(default)]
    pub signal: Option<String>,
}

/// `POST /v1/stacks/{name}/rm`: remove containers (answer: the outcomes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RmRequest {
    #[serde(default)]
    pub services: Vec<String>,
    pub options: crate::ops::rm::RmOptions,
}

impl RmRequest {
    /// `rm -f -v NAME`: a one-off container, running or not, with its
    /// anonymous volumes.
    pub fn force_one(name: &str) -> RmRequest {
        RmRequest {
            services: Vec::new(),
            options: crate::ops::rm::RmOptions {
                force: true,
                volumes: true,
                timeout: None,
                containers: vec![name.to_string()],
            },
        }
    }
}

/// One line of a streamed answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// A step of the plan began, finished, failed or was skipped.
    Progress {
        event: Event,
    },
    /// A container was acted on (stop, start, kill): `verb` as Compose prints it.
    Container {
        name: String,
        verb: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Warning {
        message: String,
    },
    /// The operation could not run at all (an invalid file, an unknown stack);
    /// `message` is already rendered for people.
    Error {
        message: String,
    },
    /// The end: what failed (`what`, `why`), what the plan left alone.
    Done {
        #[serde(default)]
        failed: Vec<(String, String)>,
        #[serde(default)]
        orphans: Vec<String>,
        #[serde(default)]
        nothing_to_do: bool,
    },
}

/// `GET /v1/stacks/{name}`: what the daemon knows of one stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackInfo {
    pub name: String,
    /// The daemon follows its files.
    pub watch: bool,
    /// A file-driven reconcile is scheduled or running.
    pub pending: bool,
    /// How many times this daemon has read the stack's files after a change:
    /// a client that edits a file waits until it grows and `pending` is false.
    #[serde(default)]
    pub loads: u64,
    pub file_error: Option<crate::reconcile::stacks::FileError>,
}

/// `GET /v1/version`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    pub version: String,
    pub pid: u32,
    /// Stacks the daemon keeps (watched files), by name.
    pub watched: BTreeMap<String, Vec<std::path::PathBuf>>,
}
