//! `inspect`: everything about a stack's containers, as JSON documents.
use serde_json::json;

use crate::network::Manager;
use crate::reconcile::container::cgroup_of;
use crate::reconcile::ocispec;
use crate::state::{self, Roots};
use crate::supervisor::control::{self, Observed};
use crate::supervisor::record::ContainerPaths;

/// One document per container of `stack`.
pub fn documents(roots: &Roots, stack: &str) -> Result<Vec<serde_json::Value>, control::Error> {
    let net = Manager::open(roots).ok();
    let all = control::observe(&roots.lib, Some(stack))?;
    Ok(all
        .iter()
        .map(|o| document(roots, net.as_ref(), o))
        .collect())
}

fn document(roots: &Roots, net: Option<&Manager>, o: &Observed) -> serde_json::Value {
    let paths = ContainerPaths::new(&roots.lib, &o.spec.name);
    let oci: Option<serde_json::Value> = state::read_json(&paths.bundle().join("config.json"))
        .ok()
        .flatten();
    let health: Option<serde_json::Value> = state::read_json(&paths.health_log()).ok().flatten();
    let annotations = oci.as_ref().and_then(|s| s["annotations"].as_object());
    let labels: serde_json::Map<String, serde_json::Value> = annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| !ocispec::OWN_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let exposed: Vec<&str> = annotations
        .and_then(|a| a.get(ocispec::EXPOSED_PORTS))
        .and_then(|v| v.as_str())
        .map(|s| s.split(',').collect())
        .unwrap_or_default();
    json!({
        "id": o.spec.id(),
        "name": o.spec.name,
        "stack": o.spec.stack,
        "service": o.spec.service,
        "index": o.spec.index,
        "created": humantime::format_rfc3339_seconds(o.spec.created).to_string(),
        "config_hash": o.spec.config_hash,
        "config": o.spec.config,
        "state": {
            "status": o.status.state,
            "running": o.is_up(),
            "pid": o.status.pid,
            "exit_code": o.status.exit_code,
            "oom_killed": o.status.oom_killed,
            "restarts": o.status.restarts,
            "error": o.status.error,
            "health": o.status.health,
            "health_log": health,
            "monitor_pid": o.status.monitor_pid.filter(|_| o.monitor_alive),
        },
        "cgroup": cgroup_of(&o.spec),
        "networks": net.and_then(|n| n.endpoints(&o.spec.name).ok()),
        "ports": net.and_then(|n| n.published(&o.spec.name).ok()),
        "labels": labels,
        "exposed_ports": exposed,
        "mounts": oci.as_ref().map(|s| s["mounts"].clone()),
        "oci_spec": oci,
        "log_driver": o.spec.log_driver,
        "log_path": paths.log(),
    })
}
