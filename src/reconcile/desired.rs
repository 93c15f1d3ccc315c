//! What the file asks for, container by container.
use std::collections::{BTreeMap, BTreeSet};

use super::plan::Want;
use crate::model::{NetworkMode, Service, Stack};

/// `<stack>-<service>-<n>`, or the service's `container_name` (one replica only).
pub fn container_name(stack: &Stack, svc: &Service, index: u32) -> String {
    match &svc.container_name {
        Some(name) if index == 1 => name.clone(),
        _ => format!("{}-{}-{}", stack.name, svc.name, index),
    }
}

/// The services to act on: those named (and everything they depend on), or all.
pub fn selected(stack: &Stack, named: &[String]) -> BTreeSet<String> {
    if named.is_empty() {
        return stack.services.keys().cloned().collect();
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = named.to_vec();
    while let Some(name) = todo.pop() {
        if let Some(svc) = stack.services.get(&name)
            && out.insert(name.clone())
        {
            todo.extend(svc.depends_on.keys().cloned());
            if let NetworkMode::Service(other) = &svc.network_mode {
                todo.push(other.clone());
            }
        }
    }
    out
}

/// One [`Want`] per replica of each selected service.
pub fn wants(
    stack: &Stack,
    selected: &BTreeSet<String>,
    scale: &BTreeMap<String, u32>,
) -> Vec<Want> {
    let mut out = Vec::new();
    for svc in stack
        .services
        .values()
        .filter(|s| selected.contains(&s.name))
    {
        let replicas = scale.get(&svc.name).copied().unwrap_or(svc.replicas);
        let hash = svc.config_hash(stack);
        let config = serde_json::to_value(svc).unwrap_or_default();
        let mut recreate_with: Vec<String> = svc
            .depends_on
            .iter()
            .filter(|(_, d)| d.restart)
            .map(|(name, _)| name.clone())
            .collect();
        if let NetworkMode::Service(other) = &svc.network_mode {
            recreate_with.push(other.clone());
        }
        for index in 1..=replicas {
            out.push(Want {
                name: container_name(stack, svc, index),
                service: svc.name.clone(),
                index,
                hash: hash.clone(),
                config: config.clone(),
                recreate_with: recreate_with.clone(),
                run_id: None,
            });
        }
    }
    out
}

/// Services in start order: each after everything it depends on, grouped in
/// levels whose members may start concurrently.
pub fn levels(stack: &Stack, selected: &BTreeSet<String>) -> Vec<Vec<String>> {
    let deps = |svc: &Service| -> Vec<String> {
        let mut d: Vec<String> = svc
            .depends_on
            .keys()
            .filter(|k| selected.contains(*k))
            .cloned()
            .collect();
        if let NetworkMode::Service(other) = &svc.network_mode {
            d.push(other.clone());
        }
        d
    };
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut levels = Vec::new();
    while done.len() < selected.len() {
        let level: Vec<String> = selected
            .iter()
            .filter(|s| !done.contains(*s))
            .filter(|s| {
                stack
                    .services
                    .get(*s)
                    .is_none_or(|svc| deps(svc).iter().all(|d| done.contains(d)))
            })
            .cloned()
            .collect();
        if level.is_empty() {
            // The loader rejects cycles; never loop forever on one anyway.
            levels.push(
                selected
                    .iter()
                    .filter(|s| !done.contains(*s))
                    .cloned()
                    .collect(),
            );
            break;
        }
        done.extend(level.iter().cloned());
        levels.push(level);
    }
    levels
}
