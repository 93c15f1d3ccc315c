//! Stacks kept in step with their files: `up --watch`, `watch = true` in the
//! file, and every stack file of a stacks directory (like Quadlet's unit
//! directories).
//!
//! Flow: a change of a watched file (see `watch.rs`) -> debounce per stack ->
//! with the stack locked, load the files as recorded -> invalid: nothing
//! changes, the error (file:line:col) goes to the log, `stack events` and
//! `stack ls`; valid: reconcile exactly like `up` (services removed from the
//! file go too). A stacks directory file that appears is brought up; one that
//! goes away is brought down.
//!
//! Guarantees: a reconcile always works on a whole file as it is at that
//! moment, never on a mix; changes during a reconcile run it once more after.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::engine::{Engine, blocking};
use super::proto::{DownRequest, Line, StackInfo};
use super::watch::{Change, is_stack_file};
use crate::reconcile::UpOptions;
use crate::reconcile::stacks::{FileError, StackRecord, StackStatus};
use crate::spec::{self, LoadOptions};
use crate::supervisor::events::{self, Action, Event};

/// How long a watched file must stay quiet before it is read: editors and
/// tools write a file in a few steps within milliseconds.
const DEBOUNCE: Duration = Duration::from_millis(30);

impl Engine {
    /// Turn file changes into reconciles, for as long as the daemon runs.
    pub async fn follow(self: Arc<Self>, mut changes: UnboundedReceiver<Change>) {
        while let Some(change) = changes.recv().await {
            match change {
                Change::Stack(name) => self.changed(name),
                Change::StacksDirEntry(path) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.stacks_dir_entry(&path).await });
                }
            }
        }
    }

    /// After a start: watch the files of every watched stack and catch up
    /// with what changed while no daemon ran; bring up the stacks of the
    /// stacks directory.
    pub async fn resume_watching(self: &Arc<Self>, stacks_dir: Option<PathBuf>) {
        for record in StackRecord::all(&self.roots)
            .into_iter()
            .filter(|r| r.watch)
        {
            if let Some(w) = &self.watcher {
                w.set(&record.name, record.inputs.iter().cloned());
            }
            let gone = record.source.as_ref().is_some_and(|s| !s.exists());
            if gone {
                self.stacks_dir_entry(record.source.as_deref().unwrap_or(Path::new("")))
                    .await;
            } else {
                self.changed(record.name);
            }
        }
        let Some(dir) = stacks_dir else { return };
        if let Some(w) = &self.watcher {
            let _ = std::fs::create_dir_all(&dir);
            w.watch_stacks_dir(&dir);
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_stack_file(p) && p.is_file())
            .collect();
        files.sort();
        for f in files {
            self.stacks_dir_entry(&f).await;
        }
    }

    /// What the daemon knows of stack `name`; None when there is no such stack.
    pub fn stack_info(&self, name: &str) -> Option<StackInfo> {
        let record = StackRecord::read(&self.roots, name).ok().flatten()?;
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name);
        let loads = self.loads.lock().unwrap_or_else(|p| p.into_inner());
        Some(StackInfo {
            name: record.name,
            watch: record.watch,
            pending,
            loads: loads.get(name).copied().unwrap_or(0),
            file_error: StackStatus::read(&self.roots, name).file_error,
        })
    }

    /// Schedule a reconcile of a watched stack (debounced, merged with the
    /// one pending).
    pub fn changed(self: &Arc<Self>, name: String) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(again) = pending.get_mut(&name) {
                *again = true;
                return;
            }
            pending.insert(name.clone(), false);
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(DEBOUNCE).await;
                me.set_pending(&name, false);
                me.reconcile_files(&name).await;
                let mut pending = me.pending.lock().unwrap_or_else(|p| p.into_inner());
                if pending.get(&name) != Some(&true) {
                    pending.remove(&name);
                    return;
                }
            }
        });
    }

    fn set_pending(&self, name: &str, again: bool) {
        if let Some(v) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(name)
        {
            *v = again;
        }
    }

    /// Load a watched stack's files as recorded and reconcile, or keep
    /// everything and report why they do not load.
    async fn reconcile_files(self: &Arc<Self>, name: &str) {
        let owned = name.to_string();
        self.with_stack(name, move |me| {
            let Ok(Some(record)) = StackRecord::read(&me.roots, &owned) else {
                return;
            };
            let Some(load) = record.load.clone().filter(|_| record.watch) else {
                return;
            };
            let loaded = spec::load(&load);
            *me.loads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(owned.clone())
                .or_default() += 1;
            match loaded {
                Err(d) => me.file_invalid(&owned, d.to_string()),
                Ok(loaded) if loaded.stack.name != owned => me.file_invalid(
                    &owned,
                    format!(
                        "the files now name the stack `{}`; this stack is `{owned}` (rename it back, or `stack down -p {owned}`)",
                        loaded.stack.name
                    ),
                ),
                Ok(loaded) => {
                    me.file_valid(&owned);
                    let mut next = StackRecord::of(&loaded, Some(&load), true);
                    next.source = record.source.clone();
                    me.apply(&loaded, next, &watched_up(), &log_lines(&owned));
                }
            }
        })
        .await;
    }

    /// A stack file of the stacks directory appeared, changed or went away.
    async fn stacks_dir_entry(self: &Arc<Self>, path: &Path) {
        let known = StackRecord::all(&self.roots)
            .into_iter()
            .find(|r| r.source.as_deref() == Some(path));
        if !path.is_file() {
            if let Some(r) = known {
                tracing::info!(stack = %r.name, file = %path.display(), "stack file removed: bringing the stack down");
                let (out, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let down = DownRequest::default();
                let me = self.clone();
                let name = r.name.clone();
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
                me.down(name, down, out).await;
            }
            return;
        }
        let load = stacks_dir_load(path);
        let probe = load.clone();
        let loaded = match blocking(move || spec::load(&probe)).await {
            Ok(l) => l,
            Err(d) => {
                let name = known
                    .map(|r| r.name)
                    .unwrap_or_else(|| stem(path).to_string());
                let (me, message) = (self.clone(), d.to_string());
                blocking(move || me.file_invalid(&name, message)).await;
                return;
            }
        };
        let name = loaded.stack.name.clone();
        if let Some(old) = known.filter(|r| r.name != name) {
            // Renamed in the file: the old stack goes, the new one comes.
            let (out, mut rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            self.down(old.name, DownRequest::default(), out).await;
        }
        let owned = name.clone();
        let source = path.to_path_buf();
        self.with_stack(&name, move |me| {
            let mut record = StackRecord::of(&loaded, Some(&load), true);
            record.source = Some(source);
            me.file_valid(&owned);
            me.apply(&loaded, record, &watched_up(), &log_lines(&owned));
        })
        .await;
    }

    /// The files do not load: keep what runs, say so once per new error.
    fn file_invalid(&self, name: &str, message: String) {
        let mut status = StackStatus::read(&self.roots, name);
        if status
            .file_error
            .as_ref()
            .is_some_and(|e| e.message == message)
        {
            return;
        }
        tracing::error!(
            stack = name,
            "the stack's files are invalid; it runs on as it was:\n{message}"
        );
        let since = status
            .file_error
            .as_ref()
            .map(|e| e.since)
            .unwrap_or_else(crate::supervisor::record::now_secs);
        status.file_error = Some(FileError {
            since,
            message: message.clone(),
        });
        if let Err(e) = status.write(&self.roots, name) {
            tracing::warn!(stack = name, error = %e, "cannot record the file error");
        }
        let mut e = Event::new(Action::FileInvalid, name, "", "");
        e.detail = Some(message);
        events::emit(&self.roots.lib, &e);
    }

    fn file_valid(&self, name: &str) {
        let mut status = StackStatus::read(&self.roots, name);
        if status.file_error.take().is_some() {
            tracing::info!(stack = name, "the stack's files are valid again");
            let _ = status.write(&self.roots, name);
        }
    }
}

/// How a watched stack is reconciled: as `up -d`, except that the file is
/// the whole truth (services no longer in it are removed).
fn watched_up() -> UpOptions {
    let mut opts = UpOptions::default();
    opts.plan.remove_orphans = true;
    opts
}

/// Where the progress of a file-driven reconcile goes: the daemon's log.
fn log_lines(stack: &str) -> super::engine::Out {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Line>();
    let stack = stack.to_string();
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            match line {
                Line::Progress { event } => tracing::info!(stack = %stack, ?event, "reconcile"),
                Line::Error { message } => tracing::error!(stack = %stack, "{message}"),
                Line::Done { failed, .. } if !failed.is_empty() => {
                    tracing::error!(stack = %stack, ?failed, "reconcile failed")
                }
                _ => {}
            }
        }
    });
    tx
}

/// A stacks directory file is loaded on its own, from its directory, named
/// by its `name` or else by its file name; interpolation uses the daemon's
/// environment.
fn stacks_dir_load(path: &Path) -> LoadOptions {
    LoadOptions {
        files: vec![path.to_path_buf()],
        working_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        default_name: Some(stem(path).to_string()),
        ..Default::default()
    }
}

fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("stack")
}
