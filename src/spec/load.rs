//! The load pipeline: find files, read, parse, interpolate, merge, refuse
//! unsupported keys, read typed tables, select profiles, convert, validate.
//! Errors are collected at each stage; a stage that cannot go on without
//! the previous one stops the load with everything found so far.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ctx::Ctx;
use super::de::from_node;
use super::diag::{Diagnostic, Diagnostics};
use super::interp::Vars;
use super::node::{Kind, Node};
use super::raw::{RawFileObject, RawNetwork, RawResources, RawService, RawVolume};
use super::source::{SourceMap, Span};
use super::{
    LoadOptions, Loaded, compat, envfile, interp, merge, objects, paths, profiles, resources,
    service, toml_src, validate, yaml_src,
};
use crate::model::{Network, Stack};

/// Default file names, in the order they are looked for.
pub const DEFAULT_FILES: [&str; 5] = [
    "stack.toml",
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

const TOP_LEVEL: [&str; 8] = [
    "version",
    "name",
    "services",
    "networks",
    "volumes",
    "secrets",
    "configs",
    "resources",
];

/// What the stages share.
pub struct Loader {
    pub sources: SourceMap,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<String>,
}

impl Loader {
    fn fail(self) -> Diagnostics {
        Diagnostics {
            sources: self.sources,
            items: self.errors,
        }
    }
}

/// The files to read: `-f` files (relative to the working dir) or the
/// first default name found, plus its `.override` companion as Compose does.
pub fn find_files(opts: &LoadOptions) -> Result<Vec<PathBuf>, String> {
    if !opts.files.is_empty() {
        return Ok(opts
            .files
            .iter()
            .map(|f| paths::normalize(&opts.working_dir.join(f)))
            .collect());
    }
    for name in DEFAULT_FILES {
        let path = opts.working_dir.join(name);
        if path.is_file() {
            let mut files = vec![paths::normalize(&path)];
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let over = opts.working_dir.join(format!("{stem}.override.{ext}"));
            if over.is_file() {
                files.push(paths::normalize(&over));
            }
            return Ok(files);
        }
    }
    Err(format!(
        "no stack file in {}: looked for {}; use -f FILE",
        opts.working_dir.display(),
        DEFAULT_FILES.join(", ")
    ))
}

/// Variables for interpolation: `.env` beside the first file (or the
/// `--env-file` files instead), overridden by the process environment.
fn variables(opts: &LoadOptions, project_dir: &Path, loader: &mut Loader) -> Vars {
    let process: Vars = match &opts.environment {
        Some(env) => env.clone(),
        None => std::env::vars().collect(),
    };
    let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
        let dot = project_dir.join(".env");
        if dot.is_file() { vec![dot] } else { Vec::new() }
    } else {
        opts.env_files
            .iter()
            .map(|f| paths::normalize(&opts.working_dir.join(f)))
            .collect()
    };
    let mut vars = Vars::new();
    for f in env_files {
        match std::fs::read_to_string(&f) {
            Ok(text) => match envfile::parse(&text, &process) {
                Ok(pairs) => vars.extend(pairs),
                Err((line, e)) => loader.errors.push(Diagnostic::new(
                    Span::NONE,
                    format!("{}:{line}: {e}", f.display()),
                )),
            },
            Err(e) => loader.errors.push(Diagnostic::new(
                Span::NONE,
                format!("cannot read env file {}: {e}", f.display()),
            )),
        }
    }
    vars.extend(process);
    vars
}

fn parse_file(path: &Path, display: &Path, text: String, loader: &mut Loader) -> Option<Node> {
    let id = loader.sources.add(display, text);
    let text = loader
        .sources
        .get(id)
        .map(|f| f.text.as_str())
        .unwrap_or_default();
    let parsed = if path.extension().is_some_and(|e| e == "toml") {
        toml_src::parse(text, id)
    } else {
        yaml_src::parse(text, id)
    };
    match parsed {
        Ok(node) if matches!(node.kind, Kind::Map(_) | Kind::Null) => Some(match node.kind {
            Kind::Null => Node::map(node.span, Vec::new()),
            _ => node,
        }),
        Ok(node) => {
            loader.errors.push(Diagnostic::new(
                node.span,
                "a stack file must be a table (mapping) at the top",
            ));
            None
        }
        Err(errs) => {
            loader.errors.extend(errs);
            None
        }
    }
}

/// Compose's project name normalization of a directory name.
fn normalize_project(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect::<String>()
        .trim_start_matches(['_', '-'])
        .to_string()
}

/// The stages up to the merged document: files, variables, parse,
/// interpolation, merge. `None` when errors were recorded.
pub struct Document {
    pub files: Vec<PathBuf>,
    pub project_dir: PathBuf,
    pub vars: Vars,
    pub root: Node,
}

/// `inline` replaces reading the first file: the text of a stack file that
/// did not come from disk (fuzzing, an API request).
pub fn read_document(
    opts: &LoadOptions,
    loader: &mut Loader,
    inline: Option<&str>,
) -> Option<Document> {
    let files = match find_files(opts) {
        Ok(f) => f,
        Err(_) if inline.is_some() => vec![opts.working_dir.join("stack.toml")],
        Err(e) => {
            loader.errors.push(Diagnostic::new(Span::NONE, e));
            return None;
        }
    };
    let project_dir = files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| opts.working_dir.clone());
    let vars = variables(opts, &project_dir, loader);
    let mut merged: Option<Node> = None;
    for (i, f) in files.iter().enumerate() {
        let display = f.strip_prefix(&opts.working_dir).unwrap_or(f);
        let text = match inline.filter(|_| i == 0) {
            Some(t) => t.to_string(),
            None => match std::fs::read_to_string(f) {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!("cannot read {}: {e}", f.display());
                    loader.errors.push(Diagnostic::new(Span::NONE, msg));
                    continue;
                }
            },
        };
        let Some(mut node) = parse_file(f, display, text, loader) else {
            continue;
        };
        let unset = interp::interpolate_tree(&mut node, &vars, &mut loader.errors);
        loader.warnings.extend(unset);
        merged = Some(match merged {
            None => {
                merge::apply_resets(&mut node);
                node
            }
            Some(base) => merge::merge_files(base, node),
        });
    }
    let root = merged.filter(|_| loader.errors.is_empty())?;
    Some(Document {
        files,
        project_dir,
        vars,
        root,
    })
}

pub fn new_loader() -> Loader {
    Loader {
        sources: SourceMap::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
    }
}

/// `stack validate --compat`: every key of the merged files with its status.
pub fn compat_report(opts: &LoadOptions) -> Result<Vec<compat::KeyStatus>, Diagnostics> {
    let mut loader = new_loader();
    match read_document(opts, &mut loader, None) {
        Some(doc) => Ok(compat::report(&doc.root)),
        None => Err(loader.fail()),
    }
}

pub fn load(opts: &LoadOptions, inline: Option<&str>) -> Result<Loaded, Diagnostics> {
    let mut loader = new_loader();
    let Some(Document {
        files,
        project_dir,
        vars,
        mut root,
    }) = read_document(opts, &mut loader, inline)
    else {
        return Err(loader.fail());
    };
    compat::strip_unsupported(&mut root, &mut loader.errors);
    root.strip_extensions();
    // Compose allows `x-` keys inside services, networks, volumes, ... too.
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        if let Some(entries) = root.get_mut(section).and_then(Node::entries_mut) {
            entries.iter_mut().for_each(|e| e.value.strip_extensions());
        }
    }

    let name = opts
        .project_name
        .clone()
        .or_else(|| {
            vars.get("COMPOSE_PROJECT_NAME")
                .cloned()
                .filter(|n| !n.is_empty())
        })
        .or_else(|| root.get("name").and_then(Node::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            normalize_project(
                &project_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
            )
        });
    let enabled: Vec<String> = if opts.profiles.is_empty() {
        vars.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.profiles.clone()
    };
    let stack = build(
        &mut loader,
        &root,
        &name,
        &project_dir,
        &vars,
        &enabled,
        &opts.services,
    );
    let Some((stack, targeted)) = stack else {
        return Err(loader.fail());
    };
    // Cross-checks run even after conversion errors: every table was read
    // (bad keys dropped), so what they report is real.
    validate::check(&stack, &root, &mut loader.errors);
    if !loader.errors.is_empty() {
        return Err(loader.fail());
    }
    loader.warnings.dedup();
    Ok(Loaded {
        stack,
        files,
        warnings: loader.warnings,
        targeted,
    })
}

/// Reads every table of the merged tree into the model.
fn build(
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
    let raw_services: Vec<(String, Node, RawService)> = read_table(
        &mut LoaderRef {
            errors: &mut loader.errors,
            warnings: &mut loader.warnings,
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
    };
    let errors = &mut loader.errors;
    let warnings = &mut loader.warnings;
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
        read_table::<Option<RawNetwork>>(&mut LoaderRef { errors, warnings }, root, "networks")
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
        read_table::<Option<RawVolume>>(&mut LoaderRef { errors, warnings }, root, "volumes")
    {
        let vol = with_ctx!(&node, format!("volume `{n}`"), |c| objects::volume(
            &mut c, &n, raw
        ));
        stack.volumes.insert(n, vol);
    }
    for (key, is_config) in [("secrets", false), ("configs", true)] {
        for (n, node, raw) in
            read_table::<RawFileObject>(&mut LoaderRef { errors, warnings }, root, key)
        {
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

/// The error and warning lists, borrowed apart from the sources.
pub struct LoaderRef<'a> {
    pub errors: &'a mut Vec<Diagnostic>,
    pub warnings: &'a mut Vec<String>,
}

/// Reads each entry of a top-level table separately, so that one bad entry
/// does not hide the errors of the others. Within an entry, a key whose
/// value fails to deserialize is reported and dropped, and the entry is read
/// again, so that every bad key of a service is reported in one run.
fn read_table<T: serde::de::DeserializeOwned>(
    loader: &mut LoaderRef<'_>,
    root: &Node,
    key: &str,
) -> Vec<(String, Node, T)> {
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
        let mut node = e.value.clone();
        // Bounded: each round removes one key.
        for _ in 0..64 {
            match from_node::<T>(&node) {
                Ok(v) => {
                    out.push((e.key.clone(), e.value.clone(), v));
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
