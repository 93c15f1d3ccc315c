//! Carrying out a plan: removals first, then services level by level in
//! `depends_on` order, the containers of one level concurrently. A failed step
//! skips its dependents, leaves what runs running, and is reported.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::container::{self, AnonVolumes, stack_slice};
use super::desired::{levels, selected, wants};
use super::plan::{self, Action, Have, Plan};
use super::{Ctx, Error, networking, rollout, standby};
use crate::cgroup::Cgroup;
use crate::model::{DependencyCondition, Stack};
use crate::supervisor::control::{self, Observed};
use crate::supervisor::record::{ContainerPaths, ContainerSpec, ContainerStatus, State};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UpOptions {
    pub plan: plan::Options,
    /// Only these services (and their dependencies).
    pub services: Vec<String>,
    /// `--scale SVC=N`.
    pub scale: BTreeMap<String, u32>,
    /// Grace period for containers that are stopped on the way.
    pub timeout: Option<Duration>,
}

/// Progress of one step, for the CLI to print.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "phase", content = "step", rename_all = "snake_case")]
pub enum Event {
    Begin(Action),
    Done(Action),
    Failed(Action, String),
    Skipped(Action, String),
}

#[derive(Debug, Default)]
pub struct UpReport {
    pub plan: Plan,
    /// Steps that failed, with why; their dependents were skipped.
    pub failed: Vec<(String, String)>,
}

/// What `up` would do, without doing anything.
pub fn observe_plan(ctx: &Ctx, stack: &Stack, opts: &UpOptions) -> Result<Plan, Error> {
    let sel = selected(stack, &opts.services);
    let want = wants(stack, &sel, &opts.scale);
    let observed = control::observe(&ctx.roots.lib, Some(&stack.name))?;
    let have: Vec<Have> = observed
        .iter()
        // One-off containers of `stack run` are none of the service's replicas.
        .filter(|o| o.spec.run_id.is_none())
        // With services named, the others of the file are left alone entirely.
        .filter(|o| {
            opts.services.is_empty()
                || sel.contains(&o.spec.service)
                || !stack.services.contains_key(&o.spec.service)
        })
        .map(have_of)
        .collect();
    Ok(plan::plan(&want, &have, opts.plan))
}

fn have_of(o: &Observed) -> Have {
    Have {
        name: o.spec.name.clone(),
        service: o.spec.service.clone(),
        index: o.spec.index,
        hash: o.spec.config_hash.clone(),
        config: o.spec.config.clone(),
        running: o.is_up(),
    }
}

/// Make the host match `stack`.
pub fn up(
    ctx: &Ctx,
    stack: &Stack,
    opts: &UpOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<UpReport, Error> {
    for e in container::remove_half_done(ctx, &stack.name) {
        // Retried by the next up (and by the create of a wanted name).
        tracing::warn!(stack = %stack.name, error = %e, "cannot remove a half-created container");
    }
    let plan = observe_plan(ctx, stack, opts)?;
    standby::serve_ready(ctx, &stack.name);
    let mut report = UpReport {
        plan: plan.clone(),
        failed: Vec::new(),
    };
    if plan.is_empty() {
        return Ok(report);
    }
    prepare(ctx, stack)?;
    let serving = &standby::serving_at_start(ctx, stack)?;
    let timeout = opts.timeout;
    let failed: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let removals: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Remove { .. }))
        .collect();
    std::thread::scope(|s| {
        for action in removals {
            let failed = &failed;
            s.spawn(move || {
                progress(Event::Begin(action.clone()));
                let grace = timeout.unwrap_or(Duration::from_secs(10));
                match container::remove(ctx, action.name(), grace, AnonVolumes::Release)
                    .into_iter()
                    .next()
                {
                    None => progress(Event::Done(action.clone())),
                    Some(e) => {
                        progress(Event::Failed(action.clone(), e.to_string()));
                        failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((action.name().to_string(), e.to_string()));
                    }
                }
            });
        }
    });
    let sel = selected(stack, &opts.services);
    let want: BTreeMap<String, plan::Want> = wants(stack, &sel, &opts.scale)
        .into_iter()
        .map(|w| (w.name.clone(), w))
        .collect();
    let want = &want;
    let images = &Images::default();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    for level in levels(stack, &sel) {
        let level_failed: Mutex<Vec<String>> = Mutex::new(Vec::new());
        // Peers for /etc/hosts as of this level; refresh_hosts completes them.
        let peers = stack_containers(ctx, stack);
        let peers = &peers;
        std::thread::scope(|s| {
            for service in &level {
                let svc = &stack.services[service];
                let actions: Vec<&Action> = plan
                    .actions
                    .iter()
                    .filter(|a| a.service() == service && !matches!(a, Action::Remove { .. }))
                    .collect();
                if actions.is_empty() {
                    continue;
                }
                if let Some(dep) = svc.depends_on.keys().find(|d| broken.contains(*d)) {
                    for a in actions {
                        progress(Event::Skipped(
                            a.clone(),
                            format!("dependency {dep} failed"),
                        ));
                    }
                    level_failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(service.clone());
                    continue;
                }
                let (failed, level_failed) = (&failed, &level_failed);
                s.spawn(move || {
                    // A dependency not met skips the steps; an image that cannot be
                    // had fails them.
                    let ready = match wait_for_dependencies(ctx, stack, service) {
                        Ok(()) => image_for(ctx, images, svc, &actions).map_err(|e| (e, true)),
                        Err(e) => Err((e, false)),
                    };
                    let image = match ready {
                        Ok(image) => image,
                        Err((e, fail)) => {
                            for a in &actions {
                                let (a, why) = ((*a).clone(), e.to_string());
                                progress(if fail {
                                    Event::Failed(a, why)
                                } else {
                                    Event::Skipped(a, why)
                                });
                            }
                            failed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((service.clone(), e.to_string()));
                            level_failed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(service.clone());
                            return;
                        }
                    };
                    let image = image.as_ref();
                    std::thread::scope(|s2| {
                        for action in actions {
                            s2.spawn(move || {
                                progress(Event::Begin(action.clone()));
                                let step = Step {
                                    want: want.get(action.name()),
                                    peers,
                                    image,
                                    progress,
                                    serving,
                                };
                                match apply(ctx, stack, action, &step, opts) {
                                    Ok(Reported::Yes) => {}
                                    Ok(Reported::No) => progress(Event::Done(action.clone())),
                                    Err(e) => {
                                        progress(Event::Failed(action.clone(), e.to_string()));
                                        failed
                                            .lock()
                                            .unwrap_or_else(|p| p.into_inner())
                                            .push((action.name().to_string(), e.to_string()));
                                        level_failed
                                            .lock()
                                            .unwrap_or_else(|p| p.into_inner())
                                            .push(service.clone());
                                    }
                                }
                            });
                        }
                    });
                });
            }
        });
        broken.extend(level_failed.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    refresh_hosts(ctx, stack);
    report.failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(report)
}

/// What every container of the stack lives in: its cgroup slice (with the
/// stack-wide resources) and its networks.
pub(super) fn prepare(ctx: &Ctx, stack: &Stack) -> Result<(), Error> {
    let slice = Cgroup::open(stack_slice(&stack.name))?;
    slice.create()?;
    slice.apply(
        &serde_json::from_value(super::ocispec::resources(&stack.resources, &stack.name)?)
            .map_err(|e| Error::Invalid(format!("stack resources: {e}")))?,
    )?;
    networking::ensure_networks(&ctx.net, stack)?;
    Ok(())
}

/// The image of `svc` when one of `actions` creates a container (pulled as its
/// `pull_policy` says, once for all its replicas and for every service of
/// this `up` that names it the same way).
fn image_for(
    ctx: &Ctx,
    images: &Images,
    svc: &crate::model::Service,
    actions: &[&Action],
) -> Result<Option<crate::image::Image>, Error> {
    let creates = actions
        .iter()
        .any(|a| matches!(a, Action::Create { .. } | Action::Recreate { .. }));
    creates.then(|| images.get(ctx, svc)).transpose()
}

/// The images an `up` has resolved: services that name an image the same
/// way (source, platform, pull policy) share one resolution, so twenty
/// services of one image import its layout (or pull it) once, not twenty
/// times. A resolution that fails is not kept: each service reports it.
#[derive(Default)]
struct Images {
    cells: Mutex<Vec<(ImageKey, ImageCell)>>,
}

/// One key's resolution, once made.
type ImageCell = Arc<Mutex<Option<crate::image::Image>>>;

type ImageKey = (
    crate::model::ImageSource,
    Option<String>,
    crate::model::PullPolicy,
);

impl Images {
    fn get(&self, ctx: &Ctx, svc: &crate::model::Service) -> Result<crate::image::Image, Error> {
        let key = (svc.image.clone(), svc.platform.clone(), svc.pull_policy);
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
            match cells.iter().find(|(k, _)| *k == key) {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell = Arc::default();
                    cells.push((key, Arc::clone(&cell)));
                    cell
                }
            }
        };
        // Held while resolving: the others of this key wait for the result.
        let mut image = cell.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(image) = image.as_ref() {
            return Ok(image.clone());
        }
        let resolved = container::service_image(ctx, svc)?;
        *image = Some(resolved.clone());
        Ok(resolved)
    }
}

/// What one create/recreate/start step works with besides its action.
struct Step<'a> {
    want: Option<&'a plan::Want>,
    peers: &'a [String],
    /// The service's image, for creations.
    image: Option<&'a crate::image::Image>,
    progress: &'a (dyn Fn(Event) + Sync),
    /// The sharing groups that served as the `up` began (standby.rs).
    serving: &'a BTreeSet<String>,
}

/// Whether a step reported its own completion (a start-first update reports
/// the new container as soon as it runs, so that it is supervised while it
/// gets ready).
enum Reported {
    Yes,
    No,
}

/// One create/recreate/start step.
fn apply(
    ctx: &Ctx,
    stack: &Stack,
    action: &Action,
    step: &Step<'_>,
    opts: &UpOptions,
) -> Result<Reported, Error> {
    match action {
        Action::Create { name, service } | Action::Recreate { name, service, .. } => {
            let svc = &stack.services[service];
            let image = step
                .image
                .ok_or_else(|| Error::Invalid(format!("{name}: no image resolved")))?;
            let want = step
                .want
                .ok_or_else(|| Error::Invalid(format!("{name} is not in the plan")))?;
            let grace = opts.timeout.unwrap_or(svc.stop_grace_period);
            let recreate = matches!(action, Action::Recreate { .. });
            if recreate && !opts.plan.no_start && rollout::applies(ctx, svc, name) {
                let replace = rollout::Replace {
                    stack,
                    svc,
                    peers: step.peers,
                    image,
                    grace,
                    progress: step.progress,
                };
                rollout::start_first(ctx, &replace, action, want)?;
                return Ok(Reported::Yes);
            }
            if recreate
                && let Some(e) = container::remove(ctx, name, grace, AnonVolumes::Keep)
                    .into_iter()
                    .next()
            {
                return Err(e);
            }
            // Next to replicas that serve, a new one waits for traffic
            // until it is ready (standby.rs).
            let standby = standby::wanted(ctx, stack, svc, name, step.serving)?;
            container::create(ctx, stack, svc, want, step.peers, image, standby)?;
            if opts.plan.no_start {
                return Ok(Reported::No);
            }
            control::spawn_monitor(&ctx.roots, name)?;
            if standby {
                return serve_when_ready(ctx, svc, action, step);
            }
            Ok(Reported::No)
        }
        Action::Start { name, service } => {
            control::spawn_monitor(&ctx.roots, name)?;
            if let Some(svc) = stack.services.get(service)
                && ctx.net.is_standby(name)?
            {
                return serve_when_ready(ctx, svc, action, step);
            }
            Ok(Reported::No)
        }
        Action::Remove { name, .. } => {
            let grace = opts.timeout.unwrap_or(Duration::from_secs(10));
            match container::remove(ctx, name, grace, AnonVolumes::Release)
                .into_iter()
                .next()
            {
                None => Ok(Reported::No),
                Some(e) => Err(e),
            }
        }
    }
}

/// Report the started standby container of `action` (so that it is
/// supervised, its healthcheck run, while it gets ready), then serve it once
/// it is ready.
fn serve_when_ready(
    ctx: &Ctx,
    svc: &crate::model::Service,
    action: &Action,
    step: &Step<'_>,
) -> Result<Reported, Error> {
    (step.progress)(Event::Done(action.clone()));
    standby::serve_when_ready(ctx, svc, action.name())?;
    Ok(Reported::Yes)
}

pub(super) fn stack_containers(ctx: &Ctx, stack: &Stack) -> Vec<String> {
    control::observe(&ctx.roots.lib, Some(&stack.name))
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.spec.name)
        .collect()
}

/// Every container's /etc/hosts lists the peers on its networks as they are now.
fn refresh_hosts(ctx: &Ctx, stack: &Stack) {
    let observed = control::observe(&ctx.roots.lib, Some(&stack.name)).unwrap_or_default();
    let names: Vec<String> = observed.iter().map(|o| o.spec.name.clone()).collect();
    let all = networking::endpoints_of(&ctx.net, &names);
    let dns = ctx.net.dns_hosted();
    for o in &observed {
        let Some(svc) = stack.services.get(&o.spec.service) else {
            continue;
        };
        let Some(endpoints) = all.get(&o.spec.name).filter(|e| !e.is_empty()) else {
            continue;
        };
        let hostname = svc.hostname.clone().unwrap_or_else(|| o.spec.name.clone());
        let peers = match dns {
            true => Vec::new(), // names come from the resolver
            false => networking::peers(&o.spec.name, endpoints, &all),
        };
        let text = networking::hosts_text(svc, &hostname, endpoints, &peers);
        let path = ContainerPaths::new(&ctx.roots.lib, &o.spec.name)
            .dir
            .join("etc/hosts");
        let _ = networking::rewrite_in_place(&path, &text);
    }
}

/// Block until every dependency of `service` meets its `depends_on` condition.
pub(super) fn wait_for_dependencies(ctx: &Ctx, stack: &Stack, service: &str) -> Result<(), Error> {
    let svc = &stack.services[service];
    for (dep, d) in &svc.depends_on {
        let fail = |reason: String| Error::Dependency {
            service: service.to_string(),
            reason,
        };
        let Some(dep_svc) = stack.services.get(dep) else {
            if d.required {
                return Err(fail(format!("dependency {dep} is not in the stack")));
            }
            continue;
        };
        let names: Vec<String> = (1..=dep_svc.replicas)
            .map(|i| super::desired::container_name(stack, dep_svc, i))
            .collect();
        for name in names {
            let paths = ContainerPaths::new(&ctx.roots.lib, &name);
            let started = Instant::now();
            loop {
                let st = ContainerStatus::read(&paths).unwrap_or_default();
                let met = match d.condition {
                    DependencyCondition::ServiceStarted => {
                        matches!(st.state, State::Running | State::Restarting | State::Exited)
                    }
                    DependencyCondition::ServiceCompletedSuccessfully => {
                        match (st.state, st.exit_code) {
                            (State::Exited, Some(0)) => true,
                            (State::Exited | State::Stopped, Some(code)) => {
                                return Err(fail(format!(
                                    "dependency {name} exited with code {code}"
                                )));
                            }
                            _ => false,
                        }
                    }
                    DependencyCondition::ServiceHealthy => match st.health {
                        Some(crate::supervisor::record::Health::Healthy) => true,
                        Some(crate::supervisor::record::Health::Unhealthy) => {
                            return Err(fail(format!("dependency {name} is unhealthy")));
                        }
                        // The service's own check or its image's: what the
                        // container was created with.
                        _ if ContainerSpec::read(&paths)
                            .ok()
                            .flatten()
                            .is_none_or(|spec| spec.healthcheck.is_none()) =>
                        {
                            return Err(fail(format!(
                                "dependency {dep} has no healthcheck (condition service_healthy)"
                            )));
                        }
                        _ => false,
                    },
                };
                if met {
                    break;
                }
                if matches!(st.state, State::Exited | State::Stopped)
                    && d.condition != DependencyCondition::ServiceCompletedSuccessfully
                {
                    return Err(fail(format!("dependency {name} is not running")));
                }
                if started.elapsed() > Duration::from_secs(3600) {
                    return Err(fail(format!("gave up waiting for {name}")));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DownOptions {
    pub remove_orphans: bool,
    pub volumes: bool,
    pub timeout: Option<Duration>,
}

/// Stop and remove a stack's containers, networks and slice (and with
/// `volumes`, its own volumes). Goes on past failures; returns them all.
///
/// Order: every container is stopped (concurrently, each with its grace
/// period) while the network still works; then, when the whole stack goes, its
/// networks are removed in one step (not one interface at a time) while each
/// container's cgroups, mounts and records are removed.
pub fn down(
    ctx: &Ctx,
    name: &str,
    stack: Option<&Stack>,
    opts: &DownOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Vec<Error> {
    let observed = match control::observe(&ctx.roots.lib, Some(name)) {
        Ok(o) => o,
        Err(e) => return vec![e.into()],
    };
    let in_file = |svc: &str| stack.is_none_or(|s| s.services.contains_key(svc));
    let (going, staying): (Vec<&Observed>, Vec<&Observed>) = observed
        .iter()
        .partition(|o| opts.remove_orphans || in_file(&o.spec.service));
    let whole = staying.is_empty();
    let grace = opts.timeout.unwrap_or(Duration::from_secs(10));
    let action = |o: &Observed| Action::Remove {
        name: o.spec.name.clone(),
        service: o.spec.service.clone(),
        reason: "down".into(),
    };
    let errors: Mutex<Vec<(String, Error)>> = Mutex::new(Vec::new());
    let record = |name: &str, errs: Vec<Error>| {
        errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(errs.into_iter().map(|e| (name.to_string(), e)));
    };
    record(name, container::remove_half_done(ctx, name));
    std::thread::scope(|s| {
        for o in &going {
            s.spawn(|| {
                progress(Event::Begin(action(o)));
                record(&o.spec.name, container::stop(ctx, &o.spec.name, grace));
            });
        }
    });
    // With the whole stack going, its bridges and veths go in one request
    // (remove_stack) while the containers are dismantled, their namespaces
    // with them: a namespace dropped first would have the kernel delete its
    // veth in its own cleanup, which holds rtnl and delays that request.
    let network = if whole {
        container::Network::GoneWithTheStack
    } else {
        container::Network::Detach
    };
    std::thread::scope(|s| {
        // The bridge's deletion waits for the kernel (RCU grace periods) and
        // the ruleset is one `nft` run: both overlap with the containers'
        // unmounts and removals, which no longer need the network (their
        // namespaces are gone). A crash in between is repaired by the next
        // `down`: with no container left, the stack's networks still go.
        if whole {
            s.spawn(|| {
                if let Err(e) = ctx.net.remove_stack(name) {
                    record(name, vec![e.into()]);
                }
            });
        }
        for o in &going {
            s.spawn(|| {
                let anon = if opts.volumes {
                    AnonVolumes::Remove
                } else {
                    AnonVolumes::Release
                };
                let errs = container::dismantle(ctx, &o.spec.name, network, anon);
                let failed = errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .find(|(n, _)| *n == o.spec.name)
                    .map(|(_, e)| e.to_string());
                match errs.first().map(ToString::to_string).or(failed) {
                    None => progress(Event::Done(action(o))),
                    Some(e) => progress(Event::Failed(action(o), e)),
                }
                record(&o.spec.name, errs);
            });
        }
    });
    let mut errors: Vec<Error> = errors
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    if whole {
        match Cgroup::open(stack_slice(name)).and_then(|c| c.remove()) {
            Err(e) if !e.is_not_found() => errors.push(e.into()),
            _ => {}
        }
        // The parent slice is shared by every stack: rmdir (never a recursive
        // removal, which would take other stacks' empty slices with it) only
        // succeeds once it is empty.
        if let Ok(parent) = Cgroup::open("stack.slice") {
            for dir in parent.dirs() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        if opts.volumes {
            let declared: Vec<(String, crate::storage::VolumeSpec)> = stack
                .map(|s| {
                    s.volumes
                        .iter()
                        .map(|(k, v)| (k.clone(), super::mounts::volume_spec(v)))
                        .collect()
                })
                .unwrap_or_default();
            if let Err(e) = ctx.volumes.remove_for_stack(name, &declared) {
                errors.push(e.into());
            }
        }
    }
    errors
}
