//! The load pipeline: find files, read, parse, interpolate, merge, refuse
//! unsupported keys, read typed tables, select profiles, convert, validate.
//! Errors are collected at each stage; a stage that cannot go on without
//! the previous one stops the load with everything found so far.
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Diagnostics};
use super::interp::Vars;
use super::node::{Kind, Node};
use super::source::{SourceMap, Span};
use super::{
    LoadOptions, Loaded, compat, envfile, interp, merge, paths, toml_src, validate, yaml_src,
};

/// Default file names, in the order they are looked for.
pub const DEFAULT_FILES: [&str; 5] = [
    "stack.toml",
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What the stages share.
pub struct Loader {
    pub sources: SourceMap,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<String>,
    /// Files besides the stack files whose content the result depends on
    /// (.env, env_file, secret and config files), read or looked for.
    pub inputs: Vec<PathBuf>,
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
        // Watched even when missing: creating it changes the interpolation.
        loader.inputs.push(dot.clone());
        if dot.is_file() { vec![dot] } else { Vec::new() }
    } else {
        opts.env_files
            .iter()
            .map(|f| paths::normalize(&opts.working_dir.join(f)))
            .collect()
    };
    loader.inputs.extend(env_files.iter().cloned());
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
        inputs: Vec::new(),
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
            normalize_project(&opts.default_name.clone().unwrap_or_else(|| {
                project_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            }))
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
    let stack = super::build::build(
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
    let mut inputs = loader.inputs;
    inputs.sort();
    inputs.dedup();
    Ok(Loaded {
        stack,
        files,
        warnings: loader.warnings,
        targeted,
        inputs,
    })
}
