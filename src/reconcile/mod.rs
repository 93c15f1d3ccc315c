//! The reconciler: observe what exists, diff it against the model by config hash,
//! plan, execute. Level-triggered: every call re-observes everything, so a rerun
//! after a failure or a crash continues from wherever things are.
pub mod container;
pub mod desired;
mod execute;
mod mounts;
pub mod networking;
pub mod ocispec;
pub mod oneoff;
pub mod plan;
pub mod rollout;
pub mod stacks;
pub mod standby;

use std::path::Path;

pub use execute::{DownOptions, Event, UpOptions, UpReport, down, observe_plan, up};

use crate::image;
use crate::network;
use crate::runtime::Runtime;
use crate::state::Roots;
use crate::storage;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error(transparent)]
    Storage(#[from] storage::Error),
    #[error(transparent)]
    Network(#[from] network::Error),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error(transparent)]
    Spec(#[from] ocispec::Error),
    #[error(transparent)]
    Supervisor(#[from] crate::supervisor::control::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    /// A `depends_on` condition that cannot be met (the failed step names the service).
    #[error("{reason}")]
    Dependency { service: String, reason: String },
}

/// Handles on everything a reconcile touches, for one state root.
pub struct Ctx {
    pub roots: Roots,
    pub runtime: Runtime,
    pub images: image::Store,
    pub volumes: storage::Volumes,
    pub net: network::Manager,
}

impl Ctx {
    pub fn open(roots: Roots) -> Result<Ctx, Error> {
        // Each holds a directory per container (see `state::make_top_dir`).
        for dir in [roots.lib.join("containers"), runtime_dir(&roots.run)] {
            crate::state::make_top_dir(&dir).map_err(|source| Error::Io {
                what: dir.display().to_string(),
                source,
            })?;
        }
        Ok(Ctx {
            runtime: Runtime::new(runtime_dir(&roots.run)),
            images: image::Store::open(&roots.lib)?,
            volumes: storage::Volumes::open(&roots.lib)?,
            net: network::Manager::open(&roots)?,
            roots,
        })
    }
}

/// Where the runtime keeps its per-container state under a volatile root.
pub fn runtime_dir(run: &Path) -> std::path::PathBuf {
    run.join("runtime")
}
