//! `POST /v1/stacks/run`: one-off containers (`stack run`) in the daemon, so
//! that they are created with the daemon's network handles (its resolver
//! learns their names, and serves the networks it had to create for them)
//! under the stack's lock, like every other change to a stack.
//!
//! Flow: load the files -> (unless `no_deps`) `up` of the service's
//! dependencies, its progress streamed as `up`'s -> create the container
//! (`reconcile::oneoff`) -> with `detach`, start and supervise it (with `rm`
//! too, its record says `auto_remove` and the supervisor hands it to
//! [`Engine::remove_ended`] once it ended). Without `detach` the caller
//! starts it attached to its own stdio (descriptors do not travel over HTTP)
//! and removes it through `rm` when asked to.
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use super::engine::{Busy, Engine, Out, blocking};
use super::proto::{Line, RmRequest, RunRequest};
use crate::model::{NetworkMode, Service, Stack};
use crate::ops::OutcomeKind;
use crate::reconcile::stacks::{StackRecord, claim};
use crate::reconcile::{self, Event, UpOptions, oneoff};
use crate::spec;
use crate::supervisor::control;
use crate::supervisor::events::{self, Action as EventAction};
use crate::supervisor::record::{ContainerPaths, ContainerSpec};

impl Engine {
    pub async fn run(self: &Arc<Self>, req: RunRequest, out: Out) {
        let _busy = Busy::new(&self.busy);
        let load = req.load.clone();
        let loaded = match blocking(move || spec::load(&load)).await {
            Ok(l) => l,
            Err(d) => return error(&out, d.to_string()),
        };
        let name = loaded.stack.name.clone();
        self.with_stack(&name, move |me| {
            if let Err(message) = me.one_off(&loaded, &req, &out) {
                error(&out, message);
            }
        })
        .await
    }

    /// Blocking; the caller holds the stack's lock.
    fn one_off(&self, loaded: &spec::Loaded, req: &RunRequest, out: &Out) -> Result<(), String> {
        let stack = &loaded.stack;
        let base = stack
            .services
            .get(&req.service)
            .ok_or_else(|| format!("no such service: {}", req.service))?;
        // `down` finds the stack by its record; `up`'s own stays as it is.
        if StackRecord::read(&self.roots, &stack.name)
            .ok()
            .flatten()
            .is_none()
        {
            claim(
                &self.roots,
                &StackRecord::of(loaded, Some(&req.load), false),
            )
            .map_err(|e| e.to_string())?;
        }
        let deps = dependencies(stack, base);
        if !req.no_deps && !deps.is_empty() {
            let failed = self.up_dependencies(stack, deps, out)?;
            if !failed.is_empty() {
                let _ = out.send(Line::Done {
                    failed,
                    orphans: Vec::new(),
                    nothing_to_do: false,
                });
                return Ok(());
            }
        }
        let svc = oneoff::service(base, &req.overrides);
        let wait_deps = !req.no_deps;
        let auto_remove = req.detach && req.rm;
        oneoff::create(
            &self.ctx,
            stack,
            &svc,
            &req.name,
            &req.run_id,
            wait_deps,
            auto_remove,
        )
        .map_err(|e| crate::supervisor::error_chain(&e))?;
        let event = |action| {
            let e = events::Event::new(action, &stack.name, &svc.name, &req.name);
            events::emit(&self.roots.lib, &e);
        };
        event(EventAction::Create);
        let verb = if req.detach {
            if let Err(e) = control::spawn_monitor(&self.roots, &req.name) {
                let _ = undo_create(self, &req.name);
                return Err(e.to_string());
            }
            self.supervisor.watch(&req.name);
            event(EventAction::Start);
            "Started"
        } else {
            "Created"
        };
        let _ = out.send(Line::Container {
            name: req.name.clone(),
            verb: verb.into(),
            error: None,
        });
        let _ = out.send(Line::Done {
            failed: Vec::new(),
            orphans: Vec::new(),
            nothing_to_do: false,
        });
        Ok(())
    }

    /// `up` of `deps` (and what they depend on); the steps that failed.
    fn up_dependencies(
        &self,
        stack: &Stack,
        deps: Vec<String>,
        out: &Out,
    ) -> Result<Vec<(String, String)>, String> {
        let progress = |e: Event| {
            self.hook(&e, false);
            self.record(&stack.name, &e, false);
            let _ = out.send(Line::Progress { event: e });
        };
        let opts = UpOptions {
            services: deps,
            ..Default::default()
        };
        reconcile::up(&self.ctx, stack, &opts, &progress)
            .map(|report| report.failed)
            .map_err(|e| crate::supervisor::error_chain(&e))
    }
}

/// The services `svc` needs running: its `depends_on` (those in the stack)
/// and the one whose network it shares.
fn dependencies(stack: &Stack, svc: &Service) -> Vec<String> {
    let mut deps: Vec<String> = svc
        .depends_on
        .keys()
        .filter(|d| stack.services.contains_key(*d))
        .cloned()
        .collect();
    if let NetworkMode::Service(other) = &svc.network_mode {
        deps.push(other.clone());
    }
    deps
}

/// Undo a create whose start failed.
fn undo_create(engine: &Engine, name: &str) -> Vec<reconcile::Error> {
    let grace = std::time::Duration::from_secs(1);
    reconcile::container::remove(
        &engine.ctx,
        name,
        grace,
        reconcile::container::AnonVolumes::Remove,
    )
}

impl Engine {
    /// Remove the `auto_remove` containers the supervisor reports ended, as
    /// `rm -f -v` of each would (its address, netns, cgroup, anonymous
    /// volumes), under its stack's lock. Runs for the daemon's life.
    pub(super) async fn remove_ended(self: Arc<Self>, mut names: UnboundedReceiver<String>) {
        while let Some(name) = names.recv().await {
            let lib = self.roots.lib.clone();
            let owned = name.clone();
            let spec =
                blocking(move || ContainerSpec::read(&ContainerPaths::new(&lib, &owned))).await;
            // Gone already: removed by the user, or reported twice.
            let Ok(Some(spec)) = spec else { continue };
            let req = RmRequest::force_one(&name);
            // rm records the destroy event.
            let failed: Vec<String> = match self.rm(spec.stack.clone(), req).await {
                Ok(removed) => removed
                    .into_iter()
                    .filter_map(|r| match r.outcome.result {
                        OutcomeKind::Failed(why) => Some(why),
                        OutcomeKind::Done | OutcomeKind::Skipped(_) => None,
                    })
                    .collect(),
                Err(e) => vec![e],
            };
            for why in failed {
                tracing::warn!(container = %name, error = %why, "cannot remove an ended --rm container");
                let mut e =
                    events::Event::new(EventAction::Warning, &spec.stack, &spec.service, &name);
                e.detail = Some(format!(
                    "removing the ended --rm container: {why}; remove it with `stack rm -f {name}`"
                ));
                events::emit(&self.roots.lib, &e);
            }
        }
    }
}

fn error(out: &Out, message: String) {
    let _ = out.send(Line::Error { message });
}
