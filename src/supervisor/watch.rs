//! Supervision in a long-running process (the daemon): one task per container
//! that waits for its monitor to exit, applies the restart policy with
//! backoff, and runs its healthcheck while it runs.
//!
//! Flow of a task, one [`Step`] at a time: running -> wait on the monitor's
//! pidfd, probing health meanwhile; ended (exit.json, or a monitor that
//! vanished) -> release the runtime's leftovers, record the end and the
//! events, then finish or mark it `restarting` and sleep the backoff delay;
//! `restarting` -> start it. A container whose healthcheck turns unhealthy
//! is restarted (its stop signal, then SIGKILL after its grace period; the
//! `unhealthy` health recorded at its end makes `ended` restart it whatever
//! the policy) or stopped for good, as its `on_unhealthy` says.
//!
//! Guarantees: one actor per container at a time. Every decision is taken
//! under the container's lock and on a fresh reading of its records, by the
//! task as by [`Supervisor::start`], [`Supervisor::stop`] and
//! [`Supervisor::forget`]; so a start or a stop by the user, or the reconciler
//! replacing the container, never races a restart. Level-triggered: a task
//! started by adoption after a crash continues wherever the container is. A
//! stop by the user is never undone: the monitor records it
//! (`stop_requested`), or `stop` marks a container between restarts stopped.
//!
//! A container with `auto_remove` (`stack run -d --rm`) is handed to the
//! removal channel once it ended for good (exited without a restart, or
//! stopped): its owner (the daemon) removes it with its network address and
//! anonymous volumes under the stack's lock, as `rm` does. Adoption hands over
//! the ones whose removal a dead daemon missed.
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use super::backoff::{Backoff, BackoffConfig};
use super::control::{self, Observed};
use super::events::{self, Action, Event};
use super::health::Tracker;
use super::record::{ContainerPaths, ContainerStatus, Health, Restart, State, should_restart};
use crate::model::OnUnhealthy;
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
    /// One lock per container, held for every decision about it.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Where the names of ended `auto_remove` containers go.
    removals: tokio::sync::mpsc::UnboundedSender<String>,
    /// Notified whenever a container is watched or restarted (the daemon's
    /// standby task looks whether one of them waits for traffic).
    started: Arc<tokio::sync::Notify>,
}

/// What a task does next.
enum Step {
    /// The container runs: wait for its monitor.
    Wait(Box<Observed>),
    /// It ended and restarts after the backoff delay for a run this long.
    Backoff {
        uptime: Duration,
        config: BackoffConfig,
    },
    /// It waits for a restart (found so after a daemon restart): start it.
    Launch,
    /// Nothing more to supervise.
    Done,
}

impl Supervisor {
    /// `removals` receives the names of `auto_remove` containers that ended
    /// for good, for their removal; `started` is notified whenever a
    /// container is watched (adopted, started) or restarted.
    pub fn new(
        roots: Roots,
        rt: tokio::runtime::Handle,
        removals: tokio::sync::mpsc::UnboundedSender<String>,
        started: Arc<tokio::sync::Notify>,
    ) -> Supervisor {
        let runtime = Runtime::new(crate::reconcile::runtime_dir(&roots.run));
        Supervisor {
            inner: Arc::new(Inner {
                roots,
                runtime,
                rt,
                tasks: Mutex::new(HashMap::new()),
                locks: Mutex::new(HashMap::new()),
                removals,
                started,
            }),
        }
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

    /// (Re)start the task of container `name`.
    pub fn watch(&self, name: &str) {
        let sup = self.clone();
        let owned = name.to_string();
        let mut tasks = self.tasks();
        if let Some(old) = tasks.remove(name) {
            old.abort();
        }
        let handle = self.inner.rt.spawn(async move { sup.run(&owned).await });
        tasks.insert(name.to_string(), handle.abort_handle());
        self.inner.started.notify_one();
    }

    /// Stop supervising `name` (before it is removed or replaced); returns
    /// once no decision about it is in progress. Blocking.
    pub fn forget(&self, name: &str) {
        if let Some(old) = self.tasks().remove(name) {
            old.abort();
        }
        drop(lock(&self.container_lock(name)));
    }

    /// Start container `name` unless it runs or waits for a restart, and
    /// supervise it. True when it was started.
    pub async fn start(&self, name: &str) -> Result<bool, control::Error> {
        let roots = self.inner.roots.clone();
        let started = self
            .locked(name, move |name| {
                let o = control::observe_one(&roots.lib, name)?;
                if o.is_none_or(|o| o.is_up()) {
                    return Ok(false);
                }
                control::spawn_monitor(&roots, name).map(|()| true)
            })
            .await?;
        if started {
            self.watch(name);
        }
        Ok(started)
    }

    /// Stop container `name` for good (until started again): its task ends
    /// first, so nothing restarts it; a container between restarts is marked
    /// stopped. True when it was running.
    pub async fn stop(&self, name: &str, grace: Duration) -> Result<bool, control::Error> {
        if let Some(old) = self.tasks().remove(name) {
            old.abort();
        }
        let me = self.clone();
        self.locked(name, move |name| me.stop_locked(name, grace))
            .await
    }

    /// [`Supervisor::stop`] once its task is out of the way (under the lock).
    fn stop_locked(&self, name: &str, grace: Duration) -> Result<bool, control::Error> {
        let roots = &self.inner.roots;
        let was = control::stop(roots, name, grace)?;
        let _ = self.inner.runtime.delete(name, true);
        if let Some(o) = control::observe_one(&roots.lib, name)? {
            let mut status = o.status.clone();
            if matches!(status.state, State::Restarting | State::Running) {
                status.state = State::Stopped;
                status.pid = None;
            }
            write_if_exists(&ContainerPaths::new(&roots.lib, name), &status);
            self.remove_if_auto(&o);
        }
        Ok(was)
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::AbortHandle>> {
        lock(&self.inner.tasks)
    }

    fn container_lock(&self, name: &str) -> Arc<Mutex<()>> {
        lock(&self.inner.locks)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Run `f` off the async workers with the container's lock held.
    async fn locked<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&str) -> T + Send + 'static,
    ) -> T {
        let mutex = self.container_lock(name);
        let name = name.to_string();
        blocking(move || {
            let _held = lock(&mutex);
            f(&name)
        })
        .await
    }

    /// [`Supervisor::locked`] for the task of `name`: `f` runs only while the
    /// calling task is still the container's. A `forget`, `stop` or `watch`
    /// aborts the old task, but not the blocking part it may have queued
    /// already, which would otherwise restart a container that `down` is
    /// removing. None: the task is stale and ends.
    async fn task_locked<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&str) -> T + Send + 'static,
    ) -> Option<T> {
        let me = tokio::task::try_id();
        let sup = self.clone();
        self.locked(name, move |name| {
            let current = sup.tasks().get(name).map(|h| h.id());
            (me.is_some() && current == me).then(|| f(name))
        })
        .await
    }

    /// The task of one container; ends when the container is gone or ended
    /// for good.
    async fn run(&self, name: &str) {
        let mut backoff: Option<Backoff> = None;
        // Set by a start that failed: decided without a fresh reading.
        let mut next: Option<Step> = None;
        loop {
            let step = match next.take() {
                Some(step) => step,
                None => {
                    let me = self.clone();
                    match self.task_locked(name, move |name| me.step(name)).await {
                        Some(step) => step,
                        None => return,
                    }
                }
            };
            match step {
                Step::Wait(o) => {
                    backoff.get_or_insert_with(|| Backoff::new(o.spec.backoff));
                    self.while_running(&o).await;
                }
                Step::Backoff { uptime, config } => {
                    // A run that ended before the task saw it running gets
                    // its backoff here (with the service's settings).
                    let delay = backoff
                        .get_or_insert_with(|| Backoff::new(config))
                        .after_run(uptime);
                    tokio::time::sleep(delay).await;
                    let me = self.clone();
                    let launched =
                        self.task_locked(name, move |name| me.launch_if_restarting(name));
                    let Some(launched) = launched.await else {
                        return;
                    };
                    next = launched;
                }
                Step::Launch => {
                    let me = self.clone();
                    let launched =
                        self.task_locked(name, move |name| me.launch_if_restarting(name));
                    let Some(launched) = launched.await else {
                        return;
                    };
                    next = launched;
                }
                Step::Done => break,
            }
        }
        let mut tasks = self.tasks();
        if tasks.get(name).is_some_and(|h| h.id() == tokio::task::id()) {
            tasks.remove(name);
        }
    }

    /// Decide the next step from the records (under the container's lock).
    fn step(&self, name: &str) -> Step {
        let Ok(Some(o)) = control::observe_one(&self.inner.roots.lib, name) else {
            return Step::Done;
        };
        if o.exit_unnoticed {
            return self.ended(&o);
        }
        match o.status.state {
            State::Running if o.monitor_alive => Step::Wait(Box::new(o)),
            State::Running => self.ended(&o),
            State::Restarting => Step::Launch,
            State::Exited | State::Stopped => {
                self.remove_if_auto(&o);
                Step::Done
            }
            State::Created => Step::Done,
        }
    }

    /// Hand an ended `auto_remove` container over for removal.
    fn remove_if_auto(&self, o: &Observed) {
        if o.spec.auto_remove {
            let _ = self.inner.removals.send(o.spec.name.clone());
        }
    }

    /// A run ended: clean up, record it, and decide on a restart.
    fn ended(&self, o: &Observed) -> Step {
        let lib = &self.inner.roots.lib;
        let paths = ContainerPaths::new(lib, &o.spec.name);
        // Whatever is left of the run (a vanished monitor leaves its
        // container running without anyone holding its output).
        let _ = self
            .inner
            .runtime
            .kill(&o.spec.name, nix::sys::signal::Signal::SIGKILL, true);
        let _ = self.inner.runtime.delete(&o.spec.name, true);
        let mut status = o.status.clone();
        let (code, stopped) = match &o.exit {
            Some(exit) if o.exit_unnoticed => {
                status.ended(exit);
                (Some(exit.exit_code), exit.stop_requested)
            }
            _ => {
                status.state = State::Exited;
                status.pid = None;
                status.error = Some("the monitor process vanished".into());
                (None, false)
            }
        };
        let mut die = Event::new(Action::Die, &o.spec.stack, &o.spec.service, &o.spec.name);
        die.exit_code = code;
        events::emit(lib, &die);
        if status.oom_killed {
            let oom = Event::new(Action::Oom, &o.spec.stack, &o.spec.service, &o.spec.name);
            events::emit(lib, &oom);
        }
        let restart = !stopped
            && (o.unhealthy_restart
                || match code {
                    Some(code) => should_restart(o.spec.restart, code, status.restarts),
                    // A host reboot or a killed monitor: like Docker, only the
                    // policies that restart regardless of the exit bring it back.
                    None => matches!(o.spec.restart, Restart::Always | Restart::UnlessStopped),
                });
        if restart {
            status.state = State::Restarting;
            status.restarts += 1;
        }
        write_if_exists(&paths, &status);
        if !restart {
            self.remove_if_auto(o);
            return Step::Done;
        }
        let uptime = match (status.started_at, status.finished_at) {
            (Some(s), Some(f)) => Duration::from_secs(f.saturating_sub(s)),
            _ => Duration::ZERO,
        };
        Step::Backoff {
            uptime,
            config: o.spec.backoff,
        }
    }

    /// Start a container that still waits for its restart (under the lock:
    /// a stop in the meantime wins). A start that fails (a bind mount's
    /// source gone, an entrypoint missing, a transient error) counts as a
    /// failed run: another restart after the backoff when the policy wants
    /// one (returned), as after an exit; else it stays exited with the error.
    fn launch_if_restarting(&self, name: &str) -> Option<Step> {
        let roots = &self.inner.roots;
        let Ok(Some(o)) = control::observe_one(&roots.lib, name) else {
            return None;
        };
        if o.status.state != State::Restarting {
            return None;
        }
        let mut e = Event::new(Action::Restart, &o.spec.stack, &o.spec.service, name);
        let failed = control::spawn_monitor(roots, name).err();
        e.detail = failed.as_ref().map(ToString::to_string);
        events::emit(&roots.lib, &e);
        if failed.is_none() {
            self.inner.started.notify_one();
        }
        let err = failed?;
        tracing::warn!(container = %name, error = %err, "a restart failed to start");
        // The monitor recorded the failure (exited, with the error) unless
        // it could not even be spawned.
        let paths = ContainerPaths::new(&roots.lib, name);
        let mut status = ContainerStatus::read(&paths).unwrap_or(o.status);
        status.pid = None;
        status.error = Some(err.to_string());
        let again = should_restart(o.spec.restart, START_FAILED, status.restarts);
        if again {
            status.state = State::Restarting;
            status.restarts += 1;
        } else {
            status.state = State::Exited;
        }
        write_if_exists(&paths, &status);
        again.then_some(Step::Backoff {
            uptime: Duration::ZERO,
            config: o.spec.backoff,
        })
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
                    if self.paused(&o.spec.name) {
                        // As Docker: no probes while paused (they would fail).
                        next = tokio::time::Instant::now() + tracker.delay(Instant::now());
                        continue;
                    }
                    let probe = super::probe::run(&self.inner.runtime, &o.spec.name, &tracker.config).await;
                    let changed = tracker.record(probe, Instant::now());
                    next = tokio::time::Instant::now() + tracker.delay(Instant::now());
                    self.health_changed(o, &tracker, changed).await;
                    if changed == Some(Health::Unhealthy) && !o.spec.on_unhealthy.is_none() {
                        self.act_on_unhealthy(o, &mut exited).await;
                        return;
                    }
                }
            }
        }
    }

    /// `on_unhealthy`: stop the container for good, or end this run so that
    /// [`Supervisor::ended`] restarts it (it sees the recorded `unhealthy`).
    async fn act_on_unhealthy(
        &self,
        o: &Observed,
        exited: &mut (impl Future<Output = ()> + Unpin),
    ) {
        let spec = &o.spec;
        let lib = &self.inner.roots.lib;
        let what = match spec.on_unhealthy {
            OnUnhealthy::Stop => "stop",
            _ => "restart",
        };
        let mut e = Event::new(Action::Kill, &spec.stack, &spec.service, &spec.name);
        e.detail = Some(format!("unhealthy: on_unhealthy = {what}"));
        events::emit(lib, &e);
        if spec.on_unhealthy == OnUnhealthy::Stop {
            let (me, grace) = (self.clone(), spec.stop_grace);
            let stopped = self.task_locked(&spec.name, move |name| me.stop_locked(name, grace));
            if let Some(Err(err)) = stopped.await {
                tracing::warn!(container = %spec.name, error = %err, "cannot stop an unhealthy container");
            }
            return;
        }
        let signal = nix::sys::signal::Signal::try_from(spec.stop_signal)
            .unwrap_or(nix::sys::signal::Signal::SIGTERM);
        // Under the lock, as every decision: not after a stop by the user.
        let runtime = self.inner.runtime.clone();
        let killed = self.task_locked(&spec.name, move |name| {
            let _ = runtime.kill(name, signal, true);
        });
        if killed.await.is_none() {
            return;
        }
        if tokio::time::timeout(spec.stop_grace, &mut *exited)
            .await
            .is_err()
        {
            let _ = self
                .inner
                .runtime
                .kill(&spec.name, nix::sys::signal::Signal::SIGKILL, true);
            exited.await;
        }
    }

    fn paused(&self, name: &str) -> bool {
        self.inner
            .runtime
            .state(name)
            .is_ok_and(|s| s.status == crate::runtime::Status::Paused)
    }

    async fn health_changed(&self, o: &Observed, tracker: &Tracker, changed: Option<Health>) {
        let lib = self.inner.roots.lib.clone();
        let log = tracker.log.clone();
        let spec = o.spec.clone();
        self.task_locked(&o.spec.name, move |name| {
            let paths = ContainerPaths::new(&lib, name);
            let _ = crate::state::write_json(&paths.health_log(), &log);
            let Some(state) = changed else { return };
            let mut status = ContainerStatus::read(&paths).unwrap_or_default();
            if status.state != State::Running {
                return;
            }
            status.health = Some(state);
            write_if_exists(&paths, &status);
            let mut e = Event::new(Action::HealthStatus, &spec.stack, &spec.service, name);
            e.health = Some(health_name(state).into());
            events::emit(&lib, &e);
        })
        .await;
    }
}

/// The exit code a start that failed counts as for the restart policy
/// (`on-failure` retries it): the shell's "command cannot be executed".
const START_FAILED: i32 = 126;

fn needs_watching(o: &Observed) -> bool {
    matches!(o.status.state, State::Restarting | State::Running)
        || o.exit_unnoticed
        || (o.spec.auto_remove && matches!(o.status.state, State::Exited | State::Stopped))
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run blocking file and process work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
