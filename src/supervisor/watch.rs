//! Supervision in a long-running process (the daemon): one task per container
//! that waits for its monitor to exit, applies the restart policy with
//! backoff, and runs its healthcheck while it runs.
//!
//! Flow of a task: observe the container -> running: wait on the monitor's
//! pidfd, probing health meanwhile -> ended (exit.json, or a monitor that
//! vanished): release the runtime's leftovers, record the end and the events,
//! then either restart after the backoff delay or finish -> `restarting` found
//! on disk (a daemon restarted during a backoff): start it now.
//!
//! Guarantees: level-triggered: every step re-reads the records, so a task
//! started by adoption after a crash continues wherever the container is. A
//! stop by the user is never undone: it is recorded by the monitor
//! (`stop_requested`) or, for a container between restarts, by [`Supervisor::stop`],
//! which ends the task first. Caveat: a task is aborted (`forget`) before the
//! reconciler removes or replaces its container, so it never writes into a
//! removed container's directory.
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use super::backoff::Backoff;
use super::control::{self, Observed};
use super::events::{self, Action, Event};
use super::health::Tracker;
use super::record::{ContainerPaths, ContainerStatus, Health, State, should_restart};
use crate::runtime::Runtime;
use crate::state::Roots;

/// The supervisor of one state root. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    roots: Roots,
    runtime: Runtime,
    /// Tasks are spawned from the reconciler's threads too, outside the runtime.
    rt: tokio::runtime::Handle,
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl Supervisor {
    pub fn new(roots: Roots, rt: tokio::runtime::Handle) -> Supervisor {
        let runtime = Runtime::new(crate::reconcile::runtime_dir(&roots.run));
        Supervisor {
            inner: Arc::new(Inner {
                roots,
                runtime,
                rt,
                tasks: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn roots(&self) -> &Roots {
        &self.inner.roots
    }

    /// Watch every container of the root that needs it (adoption): running
    /// ones, ended runs whose policy was not applied yet, pending restarts.
    pub fn adopt(&self) -> Result<usize, control::Error> {
        let observed = control::observe(&self.inner.roots.lib, None)?;
        let mut n = 0;
        for o in observed.iter().filter(|o| needs_watching(o)) {
            self.watch(&o.spec.name);
            n += 1;
        }
        Ok(n)
    }

    /// (Re)start the task of container `name`: after it was started, and when
    /// anything else may have changed it.
    pub fn watch(&self, name: &str) {
        let sup = self.clone();
        let owned = name.to_string();
        let mut tasks = self.lock();
        if let Some(old) = tasks.remove(name) {
            old.abort();
        }
        let handle = self.inner.rt.spawn(async move { sup.run(&owned).await });
        tasks.insert(name.to_string(), handle.abort_handle());
    }

    /// Stop watching `name` (before it is removed or replaced).
    pub fn forget(&self, name: &str) {
        if let Some(old) = self.lock().remove(name) {
            old.abort();
        }
    }

    /// Stop container `name` for good (until started again): the task ends
    /// first, so nothing restarts it; a container between restarts is marked
    /// stopped. True when it was running.
    pub async fn stop(&self, name: &str, grace: Duration) -> Result<bool, control::Error> {
        self.forget(name);
        let roots = self.inner.roots.clone();
        let runtime = self.inner.runtime.clone();
        let owned = name.to_string();
        blocking(move || {
            let was = control::stop(&roots, &owned, grace)?;
            let _ = runtime.delete(&owned, true);
            let paths = ContainerPaths::new(&roots.lib, &owned);
            if let Some(o) = control::observe_one(&roots.lib, &owned)? {
                let mut status = o.status;
                if matches!(status.state, State::Restarting | State::Running) {
                    status.state = State::Stopped;
                    status.pid = None;
                }
                write_if_exists(&paths, &status);
            }
            Ok(was)
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::AbortHandle>> {
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The task of one container; ends when the container is gone or ended
    /// for good.
    async fn run(&self, name: &str) {
        let mut backoff: Option<Backoff> = None;
        loop {
            let lib = self.inner.roots.lib.clone();
            let owned = name.to_string();
            let Ok(Some(o)) = blocking(move || control::observe_one(&lib, &owned)).await else {
                break;
            };
            let backoff = backoff.get_or_insert_with(|| Backoff::new(o.spec.backoff));
            let next = if o.monitor_alive && o.status.state == State::Running {
                self.while_running(&o).await;
                continue;
            } else if o.status.state == State::Restarting {
                Some(Duration::ZERO)
            } else if o.exit_unnoticed || o.status.state == State::Running {
                self.ended(&o, backoff).await
            } else {
                None
            };
            match next {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    self.restart(&o).await;
                }
                None => break,
            }
        }
        let mut tasks = self.lock();
        if tasks.get(name).is_some_and(|h| h.id() == tokio::task::id()) {
            tasks.remove(name);
        }
    }

    /// Wait for the monitor of a running container to exit, running its
    /// healthcheck meanwhile.
    async fn while_running(&self, o: &Observed) {
        let Some(exited) = monitor_exit(&o.status) else {
            return;
        };
        let Some(config) = o.spec.healthcheck.clone() else {
            exited.await;
            return;
        };
        let mut tracker = Tracker::new(config, Instant::now());
        let mut next = tokio::time::Instant::now() + tracker.delay(Instant::now());
        tokio::pin!(exited);
        loop {
            tokio::select! {
                _ = &mut exited => return,
                _ = tokio::time::sleep_until(next) => {
                    let probe = super::probe::run(&self.inner.runtime, &o.spec.name, &tracker.config).await;
                    let changed = tracker.record(probe, Instant::now());
                    next = tokio::time::Instant::now() + tracker.delay(Instant::now());
                    self.health_changed(o, &tracker, changed).await;
                }
            }
        }
    }

    async fn health_changed(&self, o: &Observed, tracker: &Tracker, changed: Option<Health>) {
        let paths = ContainerPaths::new(&self.inner.roots.lib, &o.spec.name);
        let log = tracker.log.clone();
        let lib = self.inner.roots.lib.clone();
        let spec = o.spec.clone();
        blocking(move || {
            let _ = crate::state::write_json(&paths.health_log(), &log);
            let Some(state) = changed else { return };
            let mut status = ContainerStatus::read(&paths).unwrap_or_default();
            if status.state != State::Running {
                return;
            }
            status.health = Some(state);
            write_if_exists(&paths, &status);
            let mut e = Event::new(Action::HealthStatus, &spec.stack, &spec.service, &spec.name);
            e.health = Some(health_name(state).into());
            events::emit(&lib, &e);
        })
        .await;
    }

    /// A run ended: clean up, record it, and say whether (after how long) to
    /// restart.
    async fn ended(&self, o: &Observed, backoff: &mut Backoff) -> Option<Duration> {
        let roots = self.inner.roots.clone();
        let runtime = self.inner.runtime.clone();
        let o = o.clone();
        let (status, restart) = blocking(move || {
            let paths = ContainerPaths::new(&roots.lib, &o.spec.name);
            // Whatever is left of the run (a vanished monitor leaves its
            // container running without anyone holding its output).
            let _ = runtime.kill(&o.spec.name, nix::sys::signal::Signal::SIGKILL, true);
            let _ = runtime.delete(&o.spec.name, true);
            let mut status = o.status.clone();
            let (code, stopped) = match &o.exit {
                Some(exit) if o.exit_unnoticed => (Some(exit.exit_code), exit.stop_requested),
                _ => {
                    status.state = State::Exited;
                    status.pid = None;
                    status.error = Some("the monitor process vanished".into());
                    (None, false)
                }
            };
            let mut die = Event::new(Action::Die, &o.spec.stack, &o.spec.service, &o.spec.name);
            die.exit_code = code;
            events::emit(&roots.lib, &die);
            if status.oom_killed {
                let oom = Event::new(Action::Oom, &o.spec.stack, &o.spec.service, &o.spec.name);
                events::emit(&roots.lib, &oom);
            }
            let restart = !stopped
                && match code {
                    Some(code) => should_restart(o.spec.restart, code, status.restarts),
                    // A host reboot or a killed monitor: like Docker, only the
                    // policies that restart regardless of the exit bring it back.
                    None => matches!(
                        o.spec.restart,
                        super::record::Restart::Always | super::record::Restart::UnlessStopped
                    ),
                };
            if restart {
                status.state = State::Restarting;
                status.restarts += 1;
            }
            write_if_exists(&paths, &status);
            (status, restart)
        })
        .await;
        if !restart {
            return None;
        }
        let uptime = match (status.started_at, status.finished_at) {
            (Some(s), Some(f)) => Duration::from_secs(f.saturating_sub(s)),
            _ => Duration::ZERO,
        };
        Some(backoff.after_run(uptime))
    }

    async fn restart(&self, o: &Observed) {
        let roots = self.inner.roots.clone();
        let spec = o.spec.clone();
        blocking(move || {
            let mut e = Event::new(Action::Restart, &spec.stack, &spec.service, &spec.name);
            if let Err(err) = control::spawn_monitor(&roots, &spec.name) {
                e.detail = Some(err.to_string());
            }
            events::emit(&roots.lib, &e);
        })
        .await;
    }
}

fn needs_watching(o: &Observed) -> bool {
    o.status.state == State::Restarting || o.exit_unnoticed || o.status.state == State::Running
}

pub fn health_name(h: Health) -> &'static str {
    match h {
        Health::Starting => "starting",
        Health::Healthy => "healthy",
        Health::Unhealthy => "unhealthy",
    }
}

/// Write the status unless the container was removed meanwhile (its spec is
/// gone): a write would recreate its directory.
fn write_if_exists(paths: &ContainerPaths, status: &ContainerStatus) {
    if paths.spec().exists()
        && let Err(e) = status.write(paths)
    {
        tracing::warn!(dir = %paths.dir.display(), error = %e, "cannot write the container status");
    }
}

/// Resolves when the recorded monitor process exits; None when it is not
/// running (any more) or cannot be watched.
fn monitor_exit(status: &ContainerStatus) -> Option<impl std::future::Future<Output = ()>> {
    let pid = status.monitor_pid?;
    let fd = pidfd(pid)?;
    // The pid may have been reused between the record and pidfd_open.
    if !control::monitor_alive(status) {
        return None;
    }
    let fd = readable(fd).ok()?;
    Some(async move {
        let _ = fd.readable().await;
    })
}

/// A pidfd (or any pollable fd) registered with the reactor for readability.
pub(super) fn readable(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd owns its descriptor, which stays open and the same
    // until the AsyncFd drops it.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

pub(super) fn pidfd(pid: i32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

/// Run blocking file and process work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
