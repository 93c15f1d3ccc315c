//! Stack files -> [`crate::model::Stack`].
//!
//! Flow: find the files (`-f`, else `stack.toml`, `compose.yaml`, ...),
//! parse each into a span-carrying `node::Node` tree (TOML or YAML),
//! interpolate `${VAR}` from the environment and `.env`, merge the files
//! by Compose's rules, refuse unsupported keys, read each table into the
//! serde types of `raw`, select services by profile, convert them into
//! the normalized [`crate::model`], and validate cross-references.
//!
//! Guarantees: nothing changes on the host here; every error carries
//! `file:line:col` (see [`diag::Diagnostics`]); all errors of a stage are
//! reported together.
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::GlobalOpts;
use crate::model::Stack;

pub use diag::{Diagnostic, Diagnostics, Located};

/// What to load.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadOptions {
    /// `-f` files, relative to `working_dir`; empty = look for the defaults.
    pub files: Vec<PathBuf>,
    /// `-p`; default `COMPOSE_PROJECT_NAME`, the file's `name`, the directory name.
    pub project_name: Option<String>,
    /// `--profile`; default `COMPOSE_PROFILES` from the environment or `.env`.
    pub profiles: Vec<String>,
    /// `--env-file`, replacing `.env` beside the first file.
    pub env_files: Vec<PathBuf>,
    pub working_dir: PathBuf,
    /// Services named on the command line (they and their dependencies are
    /// included whatever their profiles).
    pub services: Vec<String>,
    /// The environment for interpolation; `None` = this process's.
    pub environment: Option<BTreeMap<String, String>>,
    /// The stack's name when neither `-p` nor the file gives one (instead of
    /// the directory's name): a stacks.d file's own name.
    #[serde(default)]
    pub default_name: Option<String>,
}

impl LoadOptions {
    /// From the global command-line options, in the current directory.
    pub fn from_global(global: &GlobalOpts, services: Vec<String>) -> LoadOptions {
        LoadOptions {
            files: global.files.clone(),
            project_name: global.project_name.clone(),
            profiles: global
                .profiles
                .iter()
                .filter(|p| !p.is_empty())
                .cloned()
                .collect(),
            env_files: global.env_files.clone(),
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            services,
            environment: None,
            default_name: None,
        }
    }
}

/// A loaded stack.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Every service enabled by profiles or named on the command line.
    pub stack: Stack,
    /// The files read, absolute, in merge order.
    pub files: Vec<PathBuf>,
    /// Things accepted that the user should know about (unset variables,
    /// options without effect).
    pub warnings: Vec<String>,
    /// The services a verb should act on: those named on the command line
    /// and their dependencies, or all of `stack.services` when none were named.
    pub targeted: Vec<String>,
    /// Other files the model depends on (.env, env_file, secret and config
    /// files), absolute: what a watcher must watch besides `files`.
    pub inputs: Vec<PathBuf>,
}

/// Reads, merges, validates and normalizes the stack files.
pub fn load(opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    load::load(opts, None)
}

/// Like [`load`], but the first file's text is `text` instead of what is on
/// disk (its name, `opts.files[0]` or `stack.toml`, still picks TOML or
/// YAML, and its directory is the project directory).
pub fn load_text(opts: &LoadOptions, text: &str) -> Result<Loaded, Diagnostics> {
    load::load(opts, Some(text))
}

/// The stack files `load` would read (absolute), without reading them.
pub fn find_files(opts: &LoadOptions) -> Result<Vec<PathBuf>, String> {
    load::find_files(opts)
}

/// Every key of the merged files with its support status (`--compat`).
pub fn compat_report(opts: &LoadOptions) -> Result<Vec<compat::KeyStatus>, Diagnostics> {
    load::compat_report(opts)
}

pub(crate) mod build;
pub mod compat;
pub(crate) mod ctx;
pub(crate) mod de;
pub mod diag;
pub(crate) mod envfile;
pub(crate) mod image_ref;
pub(crate) mod interp;
pub(crate) mod load;
pub(crate) mod merge;
pub(crate) mod node;
pub(crate) mod objects;
pub(crate) mod paths;
pub mod profiles;
pub(crate) mod raw;
pub(crate) mod resources;
pub mod schema;
pub(crate) mod service;
pub(crate) mod service_mounts;
pub(crate) mod service_net;
pub(crate) mod service_sec;
pub(crate) mod shapes;
pub(crate) mod shellwords;
pub mod source;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod toml_src;
pub mod units;
pub(crate) mod validate;
pub(crate) mod yaml_src;
