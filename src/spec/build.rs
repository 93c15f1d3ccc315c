//! Reading the tables of the merged document into the model: services
//! (after profile selection), networks, volumes, secrets, configs and the
//! stack-wide resources.
use std::collections::BTreeMap;
use std::path::Path;

use super::ctx::Ctx;
use super::de::from_node;
use super::diag::Diagnostic;
use super::interp::Vars;
use super::load::Loader;
use super::node::{Kind, Node};
use super::raw::{RawFileObject, RawNetwork, RawResources, RawService, RawVolume};
use super::source::Span;
use super::{objects, profiles, resources, service};
use crate::model::{Network, Stack};

const TOP_LEVEL: [&str; 9] = [
    "version",
    "name",
    "services",
    "networks",
    "volumes",
    "secrets",
    "configs",
    "resources",
    "watch",
];

/// Reads every table of the merged tree into the model.
pub fn build(
    loader: &mut Loader,
    root: &Node,
    name: &str,
    project_dir: &Path,
    vars: &Vars,
    enabled: &[String],
    requested: &[String],
) -> Option<(Stack, Vec<String>)> {
    for e in root.entries().unwrap_or_default() {
        if !TOP_LEVEL.contains(&e.key.as_str()) {
            let d = Diagnostic::new(e.key_span, format!("unknown top-level key `{}`", e.key));
            loader
                .errors
                .push(match super::diag::did_you_mean(&e.key, TOP_LEVEL) {
                    Some(h) => d.with_help(h),
                    None => d.with_help(format!("known keys: {}", TOP_LEVEL.join(", "))),
                });
        }
    }
    if let Some(n) = root.get("name")
        && n.as_str().is_none()
    {
        loader.errors.push(Diagnostic::new(
            n.span,
            format!("`name` must be a string, found {}", n.type_name()),
        ));
    }
    let raw_services: Vec<(String, &Node, RawService)> = read_table(
        &mut LoaderRef {
            errors: &mut loader.errors,
        },
        root,
        "services",
    );
    let mut selection_input = BTreeMap::new();
    for (n, _, raw) in &raw_services {
        let deps = raw
            .depends_on
            .iter()
            .flat_map(|d| d.items.iter())
            .map(|(d, v)| {
                (
                    d.clone(),
                    v.as_ref().and_then(|v| v.required).unwrap_or(true),
                )
            })
            .collect();
        selection_input.insert(
            n.clone(),
            profiles::ServiceProfiles {
                profiles: raw.profiles.clone().unwrap_or_default(),
                depends_on: deps,
            },
        );
    }
    let selection = match profiles::select(&selection_input, enabled, requested) {
        Ok(s) => s,
        Err(errs) => {
            for e in errs {
                let span = match &e {
                    profiles::ProfileError::DisabledDependency {
                        service,
                        dependency,
                        ..
                    } => root.span_at(&["services", service, "depends_on", dependency]),
                    profiles::ProfileError::UnknownService(_) => Span::NONE,
                };
                loader.errors.push(Diagnostic::new(span, e.to_string()));
            }
            return None;
        }
    };

    let mut stack = Stack {
        name: name.to_string(),
        project_dir: project_dir.to_path_buf(),
        services: BTreeMap::new(),
        networks: BTreeMap::new(),
        volumes: BTreeMap::new(),
        secrets: BTreeMap::new(),
        configs: BTreeMap::new(),
        resources: Default::default(),
        watch: false,
    };
    let errors = &mut loader.errors;
    let warnings = &mut loader.warnings;
    let inputs = &mut loader.inputs;
    macro_rules! with_ctx {
        ($node:expr, $what:expr, |$c:ident| $body:expr) => {{
            let mut $c = Ctx {
                node: $node,
                what: $what,
                project: name,
                base: project_dir,
                vars,
                errors: &mut *errors,
                warnings: &mut *warnings,
                inputs: &mut *inputs,
            };
            $body
        }};
    }
    for (n, node, raw) in raw_services {
        if selection.active.contains(&n) {
            let svc = with_ctx!(&node, format!("service `{n}`"), |c| service::convert(
                &mut c, &n, raw
            ));
            stack.services.insert(n, svc);
        }
    }
    // An optional dependency that is not part of this load is dropped.
    for svc in stack.services.values_mut() {
        let active = &selection.active;
        svc.depends_on
            .retain(|d, dep| dep.required || active.contains(d));
    }
    for (n, node, raw) in
        read_table::<Option<RawNetwork>>(&mut LoaderRef { errors }, root, "networks")
    {
        let net = with_ctx!(&node, format!("network `{n}`"), |c| objects::network(
            &mut c, &n, raw
        ));
        stack.networks.insert(n, net);
    }
    // Compose creates `default` only when a service is on it.
    let uses_default = stack
        .services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default && !stack.networks.contains_key("default") {
        stack
            .networks
            .insert("default".into(), default_network(name));
    }
    for (n, node, raw) in
        read_table::<Option<RawVolume>>(&mut LoaderRef { errors }, root, "volumes")
    {
        let vol = with_ctx!(&node, format!("volume `{n}`"), |c| objects::volume(
            &mut c, &n, raw
        ));
        stack.volumes.insert(n, vol);
    }
    for (key, is_config) in [("secrets", false), ("configs", true)] {
        for (n, node, raw) in read_table::<RawFileObject>(&mut LoaderRef { errors }, root, key) {
            let what = format!("{} `{n}`", &key[..key.len() - 1]);
            if let Some(obj) = with_ctx!(&node, what, |c| objects::file_object(
                &mut c, &n, is_config, raw
            )) {
                if is_config {
                    stack.configs.insert(n, obj);
                } else {
                    stack.secrets.insert(n, obj);
                }
            }
        }
    }
    if let Some(node) = root.get("resources") {
        match from_node::<RawResources>(node) {
            Ok(raw) => {
                stack.resources =
                    with_ctx!(node, "stack resources".to_string(), |c| resources::stack(
                        &mut c,
                        Some(&raw)
                    ));
            }
            Err(e) => {
                let mut d = e.into_diagnostic(node.span);
                d.message = format!("resources: {}", d.message);
                errors.push(d);
            }
        }
    }
    if let Some(node) = root.get("watch") {
        match from_node::<bool>(node) {
            Ok(flag) => stack.watch = flag,
            Err(e) => {
                let mut d = e.into_diagnostic(node.span);
                d.message = format!("watch: {}", d.message);
                errors.push(d);
            }
        }
    }
    Some((stack, selection.targeted.into_iter().collect()))
}

fn default_network(project: &str) -> Network {
    Network {
        name: format!("{project}_default"),
        external: false,
        internal: false,
        enable_ipv6: false,
        ipam: Vec::new(),
        labels: BTreeMap::new(),
        mtu: None,
        bridge_name: None,
    }
}

/// The error list, borrowed apart from the sources.
pub struct LoaderRef<'a> {
    pub errors: &'a mut Vec<Diagnostic>,
}

/// Reads each entry of a top-level table separately, so that one bad entry
/// does not hide the errors of the others. Within an entry, a key whose
/// value fails to deserialize is reported and dropped, and the entry is read
/// again, so that every bad key of a service is reported in one run.
fn read_table<'a, T: serde::de::DeserializeOwned>(
    loader: &mut LoaderRef<'_>,
    root: &'a Node,
    key: &str,
) -> Vec<(String, &'a Node, T)> {
    let mut out = Vec::new();
    let Some(table) = root.get(key) else {
        return out;
    };
    let Some(entries) = table.entries() else {
        if !matches!(table.kind, Kind::Null) {
            loader.errors.push(Diagnostic::new(
                table.span,
                format!("`{key}` must be a table, found {}", table.type_name()),
            ));
        }
        return out;
    };
    let singular = &key[..key.len() - 1];
    for e in entries {
        if let Ok(v) = from_node::<T>(&e.value) {
            out.push((e.key.clone(), &e.value, v));
            continue;
        }
        // Slow path, only for an entry with errors. Bounded: each round
        // removes one key.
        let mut node = e.value.clone();
        for _ in 0..64 {
            match from_node::<T>(&node) {
                Ok(v) => {
                    out.push((e.key.clone(), &e.value, v));
                    break;
                }
                Err(err) => {
                    let span = err.span.unwrap_or(node.span);
                    let mut d = err.into_diagnostic(node.span);
                    d.message = format!("{singular} `{}`: {}", e.key, d.message);
                    loader.errors.push(d);
                    if !remove_key_containing(&mut node, span) {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Drops the entry of a mapping whose key or value contains `span`.
fn remove_key_containing(node: &mut Node, span: Span) -> bool {
    let inside = |outer: Span| {
        outer.file == span.file
            && outer.start <= span.start
            && span.end <= outer.end.max(outer.start + 1)
    };
    let Some(entries) = node.entries_mut() else {
        return false;
    };
    match entries
        .iter()
        .position(|e| inside(e.key_span) || inside(e.value.span))
    {
        Some(i) => {
            entries.remove(i);
            true
        }
        None => false,
    }
}
