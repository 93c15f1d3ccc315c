//! Which files the daemon watches, and what a change to one of them means.
//!
//! Editors save by writing a new file and renaming it over the old one (vim,
//! most IDEs), and deployment tools swap symlinks: so the watches are on the
//! parent directories (inotify, non-recursive), of the path as given and of
//! the file it resolves to, and events are matched by file name. Every match
//! becomes a [`Change`] for the engine, which debounces and reconciles.
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc::UnboundedSender;

/// What changed, for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A file of this stack (a stack file, its .env, an env_file, a secret or
    /// config file) was written, replaced or removed.
    Stack(String),
    /// A stack file in a stacks directory appeared, changed or went away.
    StacksDirEntry(PathBuf),
}

pub struct Watcher {
    inotify: Mutex<notify::INotifyWatcher>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Watched file (as given and resolved) -> the stacks that read it.
    files: HashMap<PathBuf, BTreeSet<String>>,
    /// Stack -> the files watched for it.
    stacks: HashMap<String, BTreeSet<PathBuf>>,
    /// Directories with an inotify watch, and why: files in them, or a stacks
    /// directory (every stack file in it counts).
    dirs: HashMap<PathBuf, usize>,
    stacks_dirs: BTreeSet<PathBuf>,
}

/// Stack files of a stacks directory.
pub fn is_stack_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("toml" | "yaml" | "yml")
    ) && !path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

impl Watcher {
    pub fn new(changes: UnboundedSender<Change>) -> notify::Result<Watcher> {
        let state: Arc<Mutex<State>> = Arc::default();
        let seen = state.clone();
        let inotify = notify::INotifyWatcher::new(
            move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let state = lock(&seen);
                for path in &event.paths {
                    for change in state.changes(path) {
                        let _ = changes.send(change);
                    }
                }
            },
            notify::Config::default(),
        )?;
        Ok(Watcher {
            inotify: Mutex::new(inotify),
            state,
        })
    }

    /// Watch `files` for `stack` (replacing what was watched for it).
    pub fn set(&self, stack: &str, files: impl IntoIterator<Item = PathBuf>) {
        let wanted: BTreeSet<PathBuf> = files.into_iter().flat_map(both_names).collect();
        let mut state = lock(&self.state);
        let old = state.stacks.remove(stack).unwrap_or_default();
        for f in old.difference(&wanted) {
            self.unwatch_file(&mut state, f, stack);
        }
        for f in wanted.difference(&old) {
            self.watch_file(&mut state, f, stack);
        }
        state.stacks.insert(stack.to_string(), wanted);
    }

    /// Stop watching the files of `stack`.
    pub fn remove(&self, stack: &str) {
        self.set(stack, Vec::new());
        lock(&self.state).stacks.remove(stack);
    }

    /// Watch a stacks directory: every stack file in it is a stack.
    pub fn watch_stacks_dir(&self, dir: &Path) {
        let mut state = lock(&self.state);
        if state.stacks_dirs.insert(dir.to_path_buf()) {
            self.watch_dir(&mut state, dir);
        }
    }

    fn watch_file(&self, state: &mut State, file: &Path, stack: &str) {
        state
            .files
            .entry(file.to_path_buf())
            .or_default()
            .insert(stack.to_string());
        if let Some(dir) = file.parent() {
            self.watch_dir(state, dir);
        }
    }

    fn unwatch_file(&self, state: &mut State, file: &Path, stack: &str) {
        if let Some(stacks) = state.files.get_mut(file) {
            stacks.remove(stack);
            if stacks.is_empty() {
                state.files.remove(file);
            }
        }
        let Some(dir) = file.parent() else { return };
        let n = state.dirs.get(dir).copied().unwrap_or(0);
        if n <= 1 && !state.stacks_dirs.contains(dir) {
            state.dirs.remove(dir);
            let _ = lock(&self.inotify).unwatch(dir);
        } else {
            state.dirs.insert(dir.to_path_buf(), n - 1);
        }
    }

    fn watch_dir(&self, state: &mut State, dir: &Path) {
        let n = state.dirs.entry(dir.to_path_buf()).or_insert(0);
        *n += 1;
        if *n == 1
            && let Err(e) = lock(&self.inotify).watch(dir, RecursiveMode::NonRecursive)
        {
            // A directory that does not exist yet (an env_file to come) is
            // not watched; the stack's next reconcile tries again.
            tracing::debug!(dir = %dir.display(), error = %e, "cannot watch");
        }
    }
}

impl State {
    fn changes(&self, path: &Path) -> Vec<Change> {
        let mut out: Vec<Change> = self
            .files
            .get(path)
            .into_iter()
            .flatten()
            .map(|s| Change::Stack(s.clone()))
            .collect();
        if path.parent().is_some_and(|d| self.stacks_dirs.contains(d)) && is_stack_file(path) {
            out.push(Change::StacksDirEntry(path.to_path_buf()));
        }
        out
    }
}

/// A file's path as given and, when different, the path it resolves to now
/// (a symlink, or a symlinked directory on the way).
fn both_names(file: PathBuf) -> Vec<PathBuf> {
    match std::fs::canonicalize(&file) {
        Ok(real) if real != file => vec![file, real],
        _ => vec![file],
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change>) -> Option<Change> {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < until {
            if let Ok(c) = rx.try_recv() {
                return Some(c);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change>) {
        std::thread::sleep(Duration::from_millis(100));
        while rx.try_recv().is_ok() {}
    }

    #[test]
    fn writes_renames_and_symlink_targets_are_seen_and_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let w = Watcher::new(tx).unwrap();
        let file = dir.path().join("stack.toml");
        std::fs::write(&file, "a").unwrap();
        let real_dir = dir.path().join("real");
        std::fs::create_dir(&real_dir).unwrap();
        std::fs::write(real_dir.join("env"), "X=1").unwrap();
        let link = dir.path().join("env");
        std::os::unix::fs::symlink(real_dir.join("env"), &link).unwrap();
        w.set("s", [file.clone(), link.clone()]);
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        std::fs::write(&file, "b").unwrap();
        assert_eq!(
            next(&mut rx),
            Some(Change::Stack("s".into())),
            "in-place write"
        );
        drain(&mut rx);
        // vim's way: write elsewhere, rename over.
        let tmp = dir.path().join(".stack.toml.swp");
        std::fs::write(&tmp, "c").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(
            next(&mut rx),
            Some(Change::Stack("s".into())),
            "rename over"
        );
        drain(&mut rx);
        std::fs::write(real_dir.join("env"), "X=2").unwrap();
        assert_eq!(
            next(&mut rx),
            Some(Change::Stack("s".into())),
            "symlink target"
        );
        drain(&mut rx);
        w.remove("s");
        std::fs::write(&file, "d").unwrap();
        assert_eq!(next(&mut rx), None, "no longer watched");
    }

    #[test]
    fn a_stacks_directory_reports_its_stack_files() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let w = Watcher::new(tx).unwrap();
        w.watch_stacks_dir(dir.path());
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let f = dir.path().join("app.toml");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(next(&mut rx), Some(Change::StacksDirEntry(f.clone())));
        drain(&mut rx);
        std::fs::remove_file(&f).unwrap();
        assert_eq!(next(&mut rx), Some(Change::StacksDirEntry(f)));
    }
}
