//! `stack`: a declarative, file-driven container supervisor for Linux.
//!
//! Dependencies point one way: `cli -> reconcile/daemon -> supervisor ->
//! runtime/image/storage/network/cgroup -> state` (see DESIGN.md).
pub mod cgroup;
pub mod cli;
pub mod daemon;
pub mod image;
pub mod model;
pub mod network;
pub mod ops;
pub mod reconcile;
pub mod runtime;
pub mod self_exe;
pub mod spec;
pub mod state;
pub mod storage;
pub mod supervisor;
