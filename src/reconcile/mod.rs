//! The reconciler: observe what exists, diff it against the model by config hash,
//! plan, execute. Level-triggered: every call re-observes everything.
pub mod ocispec;
pub mod plan;
