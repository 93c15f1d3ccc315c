//! `images`: the images a stack's containers run, as the store knows them.
use std::collections::BTreeMap;

use super::{Error, containers};
use crate::image::{ImageSummary, Store};
use crate::state::Roots;

/// One container's image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StackImage {
    pub container: String,
    pub service: String,
    /// The service's image as the file gives it, resolved (`oci:/abs/path:TAG`,
    /// `docker.io/library/busybox:1.36`, `rootfs:/abs/dir`, ...).
    pub image: String,
    /// The stored image the container holds (manifest digest); `None` for a
    /// `rootfs` directory, which is not in the store.
    pub id: Option<String>,
    /// The image config's digest: what `docker images` shows as IMAGE ID.
    pub config_digest: Option<String>,
    /// The store's names of that image.
    pub names: Vec<String>,
    /// Bytes of unpacked content over all layers.
    pub size: Option<u64>,
}

/// The images of the containers of `services` (all when empty), by container.
pub fn images(roots: &Roots, stack: &str, services: &[String]) -> Result<Vec<StackImage>, Error> {
    let picked = containers(roots, stack, services)?;
    let store = Store::open(&roots.lib)?;
    let held: BTreeMap<String, String> = store
        .holds()?
        .into_iter()
        .map(|(id, holder)| (holder, id.to_string()))
        .collect();
    let summaries: BTreeMap<String, ImageSummary> = store
        .list()?
        .into_iter()
        .map(|s| (s.id.to_string(), s))
        .collect();
    Ok(picked
        .iter()
        .map(|o| {
            let id = held.get(&o.spec.name).cloned();
            let summary = id.as_ref().and_then(|id| summaries.get(id));
            StackImage {
                container: o.spec.name.clone(),
                service: o.spec.service.clone(),
                image: reference(&o.spec.config.value()),
                config_digest: summary.map(|s| s.config_digest.to_string()),
                names: summary.map(|s| s.names.clone()).unwrap_or_default(),
                size: summary.map(|s| s.size),
                id,
            }
        })
        .collect())
}

/// The service's image as its normalized config records it (`model::ImageSource`
/// is stored as the text a user writes).
fn reference(config: &serde_json::Value) -> String {
    match &config["image"] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_from_config() {
        let c = serde_json::json!({"image": "oci:/x:latest"});
        assert_eq!(reference(&c), "oci:/x:latest");
        let c = serde_json::json!({"image": "rootfs:/srv/root"});
        assert_eq!(reference(&c), "rootfs:/srv/root");
    }
}
