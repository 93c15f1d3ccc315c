//! The daemon's one owner of state: every API call, file change and signal
//! becomes a call here. Operations on one stack are serialised (a lock per
//! stack name); different stacks proceed concurrently. Each operation writes
//! its progress as [`Line`]s to the caller's channel and finishes even when the
//! caller goes away.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::proto::{ContainersRequest, DownRequest, Line, RmRequest, UpRequest};
use super::watch::{Change, Watcher};
use crate::reconcile::plan::Action;
use crate::reconcile::stacks::{StackRecord, claim};
use crate::reconcile::{self, Ctx, Event};
use crate::spec;
use crate::state::Roots;
use crate::supervisor::control::{self, Observed};
use crate::supervisor::events::{self, Action as EventAction};
use crate::supervisor::watch::Supervisor;

pub type Out = UnboundedSender<Line>;

pub struct Engine {
    pub roots: Roots,
    pub(super) ctx: Ctx,
    pub supervisor: Supervisor,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Operations in flight (for the idle check).
    pub(super) busy: AtomicUsize,
    /// The files of watched stacks (see `follow.rs`).
    pub(super) watcher: Option<Watcher>,
    /// Watched stacks with a reconcile scheduled: true when a change came in
    /// after it started (it runs again).
    pub(super) pending: Mutex<HashMap<String, bool>>,
    /// How many times each watched stack's files were read (see StackInfo).
    pub(super) loads: Mutex<HashMap<String, u64>>,
    /// Wakes the standby task (see `standby.rs`): a container was started,
    /// or an `up` ended.
    pub(super) standby: Arc<tokio::sync::Notify>,
}

impl Engine {
    /// The engine of a state root, and the changes its watcher reports (for
    /// [`Engine::follow`]).
    pub fn open(
        roots: Roots,
        rt: tokio::runtime::Handle,
    ) -> Result<(Arc<Engine>, UnboundedReceiver<Change>), reconcile::Error> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let watcher = Watcher::new(tx)
            .map_err(|e| tracing::warn!(error = %e, "file watching is not available"))
            .ok();
        let ctx = Ctx::open(roots.clone())?;
        let (removals, ended) = tokio::sync::mpsc::unbounded_channel();
        // Bridges, addresses and the table as the state has them, before the
        // resolver listens on the gateways: a reboot (or a crash) took them.
        if let Err(e) = ctx.net.recover() {
            tracing::warn!(error = %e, "cannot restore the networks from their state");
        }
        let standby = Arc::new(tokio::sync::Notify::new());
        let engine = Arc::new(Engine {
            ctx: with_resolver(ctx, &rt),
            supervisor: Supervisor::new(roots.clone(), rt.clone(), removals, standby.clone()),
            roots,
            locks: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            watcher,
            pending: Mutex::new(HashMap::new()),
            loads: Mutex::new(HashMap::new()),
            standby,
        });
        rt.spawn(engine.clone().remove_ended(ended));
        rt.spawn(engine.clone().serve_standby());
        Ok((engine, rx))
    }

    /// Nothing to supervise and nothing in flight: no container and no stack
    /// on record.
    pub fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
            && StackRecord::all(&self.roots).is_empty()
            && std::fs::read_dir(self.roots.lib.join("containers"))
                .map(|mut d| d.next().is_none())
                .unwrap_or(true)
    }

    pub(super) async fn lock(&self, stack: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.stack_lock(stack).lock_owned().await
    }

    /// The stack's lock when no operation holds it.
    pub(super) fn try_lock(&self, stack: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.stack_lock(stack).try_lock_owned().ok()
    }

    fn stack_lock(&self, stack: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stack.to_string())
            .or_default()
            .clone()
    }

    /// Run `f` (blocking work on the stack `name`) with the stack locked and
    /// the engine marked busy.
    pub(super) async fn with_stack<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        f: impl FnOnce(&Arc<Engine>) -> T + Send + 'static,
    ) -> T {
        let _busy = Busy::new(&self.busy);
        let _guard = self.lock(name).await;
        let me = self.clone();
        blocking(move || f(&me)).await
    }

    /// `up`: load the files as the caller would, record the stack, reconcile.
    pub async fn up(self: &Arc<Self>, req: UpRequest, out: Out) {
        let _busy = Busy::new(&self.busy);
        let load = req.load.clone();
        let loaded = match blocking(move || spec::load(&load)).await {
            Ok(l) => l,
            Err(d) => {
                let _ = out.send(Line::Error {
                    message: d.to_string(),
                });
                return;
            }
        };
        for w in &loaded.warnings {
            let _ = out.send(Line::Warning {
                message: w.to_string(),
            });
        }
        let name = loaded.stack.name.clone();
        self.with_stack(&name, move |me| {
            let watch = req.watch || loaded.stack.watch;
            let record = StackRecord::of(&loaded, Some(&req.load), watch);
            me.apply(&loaded, record, &req.options, &out);
        })
        .await
    }

    /// Record a loaded stack, reconcile it, and watch its files when asked:
    /// what `up`, a file change and a stacks directory entry all come to.
    /// Blocking; the caller holds the stack's lock.
    pub(super) fn apply(
        &self,
        loaded: &spec::Loaded,
        record: StackRecord,
        options: &reconcile::UpOptions,
        out: &Out,
    ) {
        let stack = &loaded.stack;
        if let Err(e) = claim(&self.roots, &record) {
            let _ = out.send(Line::Error {
                message: e.to_string(),
            });
            return;
        }
        let no_start = options.plan.no_start;
        let progress = |e: Event| {
            self.hook(&e, no_start);
            self.record(&stack.name, &e, no_start);
            let _ = out.send(Line::Progress { event: e });
        };
        match reconcile::up(&self.ctx, stack, options, &progress) {
            Ok(report) => {
                let _ = out.send(Line::Done {
                    nothing_to_do: report.plan.is_empty(),
                    orphans: report.plan.orphans,
                    failed: report.failed,
                });
            }
            Err(e) => {
                let _ = out.send(Line::Error {
                    message: crate::supervisor::error_chain(&e),
                });
            }
        }
        // A container it left on standby is served once it is ready.
        self.standby.notify_one();
        if let Some(w) = &self.watcher {
            if record.watch {
                w.set(&stack.name, record.inputs.iter().cloned());
            } else {
                w.remove(&stack.name);
            }
        }
    }

    /// Keep the supervisor in step with the reconciler: a container about to
    /// be replaced or removed is no longer watched; a started one is, and one
    /// a failed replacement left running.
    pub(super) fn hook(&self, e: &Event, no_start: bool) {
        match e {
            Event::Begin(a @ (Action::Recreate { .. } | Action::Remove { .. })) => {
                self.supervisor.forget(a.name())
            }
            Event::Done(a @ (Action::Create { .. } | Action::Recreate { .. })) if !no_start => {
                self.supervisor.watch(a.name())
            }
            Event::Done(a @ Action::Start { .. }) => self.supervisor.watch(a.name()),
            // A start-first update that rolled back kept the old container
            // running (a container that is gone ends its task at once).
            Event::Failed(a @ Action::Recreate { .. }, _) => self.supervisor.watch(a.name()),
            _ => {}
        }
    }

    /// The events of a finished step: create (and start), start, destroy.
    pub(super) fn record(&self, stack: &str, e: &Event, no_start: bool) {
        let Event::Done(a) = e else { return };
        let actions: &[EventAction] = match a {
            Action::Create { .. } | Action::Recreate { .. } if no_start => &[EventAction::Create],
            Action::Create { .. } | Action::Recreate { .. } => {
                &[EventAction::Create, EventAction::Start]
            }
            Action::Start { .. } => &[EventAction::Start],
            Action::Remove { .. } => &[EventAction::Destroy],
        };
        for &action in actions {
            let ev = events::Event::new(action, stack, a.service(), a.name());
            events::emit(&self.roots.lib, &ev);
        }
    }

    /// `down`: stop and remove everything of the stack, then forget it.
    pub async fn down(self: &Arc<Self>, name: String, req: DownRequest, out: Out) {
        let loaded = match req.load.clone() {
            Some(load) => match blocking(move || spec::load(&load)).await {
                Ok(l) => Some(l),
                Err(d) => {
                    let _ = out.send(Line::Error {
                        message: d.to_string(),
                    });
                    return;
                }
            },
            None => None,
        };
        self.with_stack(&name.clone(), move |me| {
            if let Ok(observed) = control::observe(&me.roots.lib, Some(&name)) {
                for o in &observed {
                    me.supervisor.forget(&o.spec.name);
                }
            }
            let mut opts = req.options.clone();
            opts.remove_orphans |= loaded.is_none();
            let progress = |e: Event| {
                me.record(&name, &e, false);
                let _ = out.send(Line::Progress { event: e });
            };
            let stack = loaded.as_ref().map(|l| &l.stack);
            let errors = reconcile::down(&me.ctx, &name, stack, &opts, &progress);
            let left = control::observe(&me.roots.lib, Some(&name)).map(|o| o.len());
            if errors.is_empty() && left.is_ok_and(|n| n == 0) {
                StackRecord::remove(&me.roots, &name);
                if let Some(w) = &me.watcher {
                    w.remove(&name);
                }
            }
            let _ = out.send(Line::Done {
                failed: errors
                    .iter()
                    .map(|e| (name.clone(), crate::supervisor::error_chain(e)))
                    .collect(),
                orphans: Vec::new(),
                nothing_to_do: false,
            });
        })
        .await
    }

    /// `stop`: every selected container that runs (or waits for a restart).
    pub async fn stop(self: &Arc<Self>, stack: String, req: ContainersRequest, out: Out) {
        let _busy = Busy::new(&self.busy);
        let Some(picked) = self.pick(&stack, &req.services, &out).await else {
            return;
        };
        self.stop_all(&picked, req.timeout, &out).await;
        done(&out, Vec::new());
    }

    async fn stop_all(&self, picked: &[Observed], timeout: Option<u64>, out: &Out) {
        let stops = picked.iter().filter(|o| o.is_up()).map(|o| async move {
            let grace = timeout.map_or(o.spec.stop_grace, Duration::from_secs);
            container_line(out, &o.spec.name, "Stopping", None);
            let result = self.supervisor.stop(&o.spec.name, grace).await;
            let error = result.err().map(|e| e.to_string());
            if error.is_none() {
                emit(&self.roots, o, EventAction::Stop, None);
            }
            container_line(out, &o.spec.name, "Stopped", error);
        });
        futures_util::future::join_all(stops).await;
    }

    /// `start`: every selected container that does not run.
    pub async fn start(self: &Arc<Self>, stack: String, req: ContainersRequest, out: Out) {
        let _busy = Busy::new(&self.busy);
        let Some(picked) = self.pick(&stack, &req.services, &out).await else {
            return;
        };
        let failed = self.start_all(&picked, &out).await;
        done(&out, failed);
    }

    async fn start_all(&self, picked: &[Observed], out: &Out) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        // A one-off container of `stack run` that ended is done, as in Compose.
        for o in picked.iter().filter(|o| o.spec.run_id.is_none()) {
            match self.supervisor.start(&o.spec.name).await {
                Ok(false) => {}
                Ok(true) => {
                    emit(&self.roots, o, EventAction::Start, None);
                    container_line(out, &o.spec.name, "Started", None);
                }
                Err(e) => {
                    container_line(out, &o.spec.name, "Error", Some(e.to_string()));
                    failed.push((o.spec.name.clone(), e.to_string()));
                }
            }
        }
        failed
    }

    /// `restart`: stop, then start, every selected container.
    pub async fn restart(self: &Arc<Self>, stack: String, req: ContainersRequest, out: Out) {
        let _busy = Busy::new(&self.busy);
        let Some(picked) = self.pick(&stack, &req.services, &out).await else {
            return;
        };
        self.stop_all(&picked, req.timeout, &out).await;
        let Some(picked) = self.pick(&stack, &req.services, &out).await else {
            return;
        };
        let failed = self.start_all(&picked, &out).await;
        done(&out, failed);
    }

    /// `kill`: signal every selected running container. SIGKILL and the stop
    /// signal count as a stop by the user (no restart), as in Docker.
    pub async fn kill(self: &Arc<Self>, stack: String, req: ContainersRequest, out: Out) {
        let _busy = Busy::new(&self.busy);
        let text = req.signal.clone().unwrap_or_else(|| "SIGKILL".into());
        let Some(sig) = reconcile::container::parse_signal(&text) else {
            let _ = out.send(Line::Error {
                message: format!("unknown signal {text}"),
            });
            return;
        };
        let Some(picked) = self.pick(&stack, &req.services, &out).await else {
            return;
        };
        let mut failed = Vec::new();
        for o in picked.iter().filter(|o| o.is_up()) {
            match control::signal(&self.roots, o, sig) {
                Ok(()) => {
                    emit(&self.roots, o, EventAction::Kill, Some(sig));
                    container_line(&out, &o.spec.name, &format!("Killed ({sig})"), None);
                }
                Err(e) => failed.push((o.spec.name.clone(), e.to_string())),
            }
        }
        done(&out, failed);
    }

    /// `rm`: remove stopped containers (with `force`, running ones too). The
    /// ones that go are no longer supervised first.
    pub async fn rm(
        self: &Arc<Self>,
        stack: String,
        req: RmRequest,
    ) -> Result<Vec<crate::ops::rm::Removed>, String> {
        self.with_stack(&stack.clone(), move |me| {
            let picked = crate::ops::rm::picked(&me.roots, &stack, &req.services, &req.options)
                .map_err(|e| e.to_string())?;
            for o in picked.iter().filter(|o| req.options.force || !o.is_up()) {
                me.supervisor.forget(&o.spec.name);
            }
            let removed = crate::ops::rm::rm(&me.roots, &stack, &req.services, &req.options)
                .map_err(|e| format!("{e:#}"));
            // rm worked on its own handles: catch the resolver up.
            let _ = me.ctx.net.refresh_dns();
            removed
        })
        .await
    }

    /// The containers of `stack` for `services` (all when empty); an unknown
    /// service is an error line.
    async fn pick(&self, stack: &str, services: &[String], out: &Out) -> Option<Vec<Observed>> {
        let (lib, owned) = (self.roots.lib.clone(), stack.to_string());
        let all = match blocking(move || control::observe(&lib, Some(&owned))).await {
            Ok(all) => all,
            Err(e) => {
                let _ = out.send(Line::Error {
                    message: e.to_string(),
                });
                return None;
            }
        };
        if let Some(s) = services
            .iter()
            .find(|s| !all.iter().any(|o| &o.spec.service == *s))
        {
            let _ = out.send(Line::Error {
                message: format!("no container of service {s} in stack {stack}"),
            });
            return None;
        }
        Some(
            all.into_iter()
                .filter(|o| services.is_empty() || services.contains(&o.spec.service))
                .collect(),
        )
    }
}

fn emit(roots: &Roots, o: &Observed, action: EventAction, sig: Option<Signal>) {
    let mut e = events::Event::new(action, &o.spec.stack, &o.spec.service, &o.spec.name);
    e.detail = sig.map(|s| s.to_string());
    events::emit(&roots.lib, &e);
}

fn container_line(out: &Out, name: &str, verb: &str, error: Option<String>) {
    let _ = out.send(Line::Container {
        name: name.into(),
        verb: verb.into(),
        error,
    });
}

fn done(out: &Out, failed: Vec<(String, String)>) {
    let _ = out.send(Line::Done {
        failed,
        orphans: Vec::new(),
        nothing_to_do: false,
    });
}

/// Host the embedded DNS resolver of the root's networks in the daemon:
/// containers then resolve their peers by name (and get the gateway as their
/// nameserver). Without it (another process hosts it, or it cannot start)
/// names come from /etc/hosts as before.
fn with_resolver(mut ctx: Ctx, rt: &tokio::runtime::Handle) -> Ctx {
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let dns = crate::network::DnsServer::new(
        rt.clone(),
        crate::network::DnsServer::upstreams_from_resolv_conf(&resolv),
    );
    let plain = ctx.net.clone();
    ctx.net = match std::mem::replace(&mut ctx.net, plain).with_dns(dns) {
        Ok(net) => net,
        Err(e) => {
            tracing::warn!(error = %e, "no embedded DNS: names come from /etc/hosts");
            ctx.net
        }
    };
    ctx
}

/// Counts an operation in flight for as long as it lives.
pub(super) struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    pub(super) fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Run blocking work off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
