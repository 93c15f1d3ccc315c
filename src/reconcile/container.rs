//! Creating and removing one container on disk and on the host: image, root
//! filesystem, mounts, network, OCI bundle, records. Creation undoes itself on
//! failure; removal goes on past failures and reports them all.
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;

use super::plan::Want;
use super::{Ctx, Error, mounts, networking, ocispec};
use crate::image;
use crate::model::log_tag::{self, TagFields};
use crate::model::{
    Healthcheck, HealthcheckTimings, ImageHealthcheck, ImageSource, LogDriver, PullPolicy, Service,
    Stack,
};
use crate::network::{Manager, sandbox};
use crate::state::Roots;
use crate::storage;
use crate::supervisor::logs::LogLimits;
use crate::supervisor::record::{ContainerPaths, ContainerSpec, RecordedConfig};

/// The image store's view of a service's image.
pub fn image_source(src: &ImageSource) -> image::Source {
    match src {
        ImageSource::Registry(r) => image::Source::Registry(r.clone()),
        ImageSource::OciLayout { path, tag } => image::Source::OciLayout {
            path: path.clone(),
            tag: tag.clone(),
        },
        ImageSource::OciArchive(p) => image::Source::OciArchive(p.clone()),
        ImageSource::DockerArchive(p) => image::Source::DockerArchive(p.clone()),
        ImageSource::Rootfs(p) => image::Source::Rootfs(p.clone()),
    }
}

/// The image store's view of `pull_policy`.
fn pull_policy(p: PullPolicy) -> image::PullPolicy {
    match p {
        PullPolicy::Missing => image::PullPolicy::Missing,
        PullPolicy::Always => image::PullPolicy::Always,
        PullPolicy::Never => image::PullPolicy::Never,
        PullPolicy::Every(d) => image::PullPolicy::Every(d),
    }
}

/// Make `svc`'s image available as its `pull_policy` and `platform` say. Called
/// once per service and `up`, before any of its containers is replaced, so a
/// failed pull leaves the running ones alone.
pub fn service_image(ctx: &Ctx, svc: &Service) -> Result<image::Image, Error> {
    let opts = image::PullOptions {
        platform: svc
            .platform
            .as_deref()
            .map(image::Platform::parse)
            .transpose()?,
        ..Default::default()
    };
    Ok(ctx.images.ensure_with(
        &image_source(&svc.image),
        pull_policy(svc.pull_policy),
        &opts,
    )?)
}

/// `stack.slice/<stack>.slice/<service>-<n>` on every hierarchy.
pub fn cgroups_path(stack: &str, service: &str, index: u32) -> String {
    format!("{}/{service}-{index}", stack_slice(stack))
}

/// `stack.slice/<stack>.slice/<service>-run-<id>`: a one-off container of `stack run`.
pub fn run_cgroups_path(stack: &str, service: &str, run_id: &str) -> String {
    format!("{}/{service}-run-{run_id}", stack_slice(stack))
}

/// The cgroup of a recorded container.
pub fn cgroup_of(spec: &ContainerSpec) -> String {
    match &spec.run_id {
        Some(id) => run_cgroups_path(&spec.stack, &spec.service, id),
        None => cgroups_path(&spec.stack, &spec.service, spec.index),
    }
}

pub fn stack_slice(stack: &str) -> String {
    format!("stack.slice/{stack}.slice")
}

/// Create container `want` of `svc` from `image` ([`service_image`]), not started.
/// On error nothing of it is left. A `standby` container gets no traffic on
/// its published ports until they move to it (`Manager::move_ports`).
pub fn create(
    ctx: &Ctx,
    stack: &Stack,
    svc: &Service,
    want: &Want,
    peers: &[String],
    image: &image::Image,
    standby: bool,
) -> Result<(), Error> {
    let paths = ContainerPaths::new(&ctx.roots.lib, &want.name);
    if paths.dir.exists() {
        // A create that crashed half-way, or a removal that did: finish it.
        let errors = remove(ctx, &want.name, Duration::from_secs(1), AnonVolumes::Keep);
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
    }
    // Intent first: a crash from here on leaves a directory with rootfs.json
    // naming its stack and without spec.json, for `half_done` to find.
    let record = RootfsRecord {
        stack: stack.name.clone(),
        plan: rootfs_plan(ctx, svc, &paths, image)?,
    };
    let record_path = paths.rootfs_plan();
    std::fs::create_dir_all(&paths.dir)
        .and_then(|()| crate::state::write_json_durable(&record_path, &record))
        .map_err(|source| Error::Io {
            what: record_path.display().to_string(),
            source,
        })?;
    let result = build(ctx, stack, svc, want, peers, image, &record.plan, standby);
    if result.is_err() {
        let _ = remove(ctx, &want.name, Duration::from_secs(1), AnonVolumes::Keep);
    }
    result
}

/// rootfs.json: how the container's root filesystem is mounted, for a start
/// after a reboot (see `revive`), which has no image at hand. Written first:
/// with the stack's name, it is also the mark of a create in progress.
#[derive(serde::Serialize, serde::Deserialize)]
struct RootfsRecord {
    /// Empty in the records of older versions, which wrote spec.json with it.
    #[serde(default)]
    stack: String,
    #[serde(flatten)]
    plan: storage::RootfsPlan,
}

fn rootfs_plan(
    ctx: &Ctx,
    svc: &Service,
    paths: &ContainerPaths,
    image: &image::Image,
) -> Result<storage::RootfsPlan, Error> {
    let plan = storage::rootfs_plan(&paths.dir, &image.layers, svc.read_only);
    let top = storage::mount_point_layer(
        &ctx.roots.lib.join("mountpoints"),
        &image.layers,
        &mount_points(svc),
    )?;
    Ok(match top {
        Some(top) => plan.under(top),
        None => plan,
    })
}

/// Containers of `stack` whose create a crash interrupted (a directory with
/// its rootfs.json and without spec.json): no one else sees them, so `up` and
/// `down` remove them with [`remove`] (mounts, network, holds, directory).
pub fn half_done(lib: &Path, stack: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(lib.join("containers")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let paths = ContainerPaths { dir: e.path() };
            let record: RootfsRecord = crate::state::read_json(&paths.rootfs_plan()).ok()??;
            (record.stack == stack && !paths.spec().exists())
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Remove every container of `stack` that [`half_done`] finds; the errors.
pub fn remove_half_done(ctx: &Ctx, stack: &str) -> Vec<Error> {
    half_done(&ctx.roots.lib, stack)
        .iter()
        .flat_map(|name| {
            tracing::info!(container = %name, "removing what a crashed create left");
            remove(ctx, name, Duration::from_secs(1), AnonVolumes::Release)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn build(
    ctx: &Ctx,
    stack: &Stack,
    svc: &Service,
    want: &Want,
    peers: &[String],
    image: &image::Image,
    plan: &storage::RootfsPlan,
    standby: bool,
) -> Result<(), Error> {
    let paths = &ContainerPaths::new(&ctx.roots.lib, &want.name);
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| Error::Io { what, source }
    };
    let rootfs = paths.bundle().join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(io(&rootfs))?;
    if let Some(id) = &image.id {
        ctx.images.hold(id, &want.name)?;
        // Held now: a prune that ran since `service_image` would show here.
        ctx.images.image(id)?;
    }
    storage::mount_rootfs(plan, &rootfs)?;
    let config = image.config.config().clone();
    let user = ocispec::user(svc, &rootfs, config.as_ref())?;
    let owner = (user.0, user.1);
    let inputs_base = ocispec::Inputs {
        stack: &stack.name,
        container: &want.name,
        rootfs: &rootfs,
        image: config.as_ref(),
        cgroups_path: match &want.run_id {
            Some(id) => run_cgroups_path(&stack.name, &svc.name, id),
            None => cgroups_path(&stack.name, &svc.name, want.index),
        },
        netns: ocispec::NetNs::Host,
        mounts: Vec::new(),
        user,
    };
    let image_volumes: Vec<String> = config
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default();
    let site = mounts::Site {
        volumes: &ctx.volumes,
        stack,
        container: &want.name,
        rootfs: &rootfs,
        image_volumes: &image_volumes,
    };
    let mut oci_mounts = volume_mounts(ctx, &site, svc, owner)?;
    oci_mounts.extend(mounts::file_mounts(stack, svc, &paths.dir, owner)?);
    if svc.init {
        let init =
            crate::supervisor::helpers::install_init(&ctx.roots.lib).map_err(io(&ctx.roots.lib))?;
        oci_mounts.push(serde_json::json!({
            "destination": crate::supervisor::helpers::CONTAINER_PATH, "type": "bind", "source": init,
            "options": ["bind", "ro", "nosuid", "nodev"],
        }));
    }
    let one_off = want.run_id.is_some();
    let wired = networking::wire(
        &ctx.net,
        &ctx.roots.run,
        stack,
        svc,
        &want.name,
        standby,
        one_off,
    )?;
    let hostname = svc.hostname.clone().unwrap_or_else(|| want.name.clone());
    // With a resolver hosted, peers come from DNS (never stale), not /etc/hosts.
    let peer_entries = match wired.resolver {
        Some(_) => Vec::new(),
        None => networking::peers(
            &want.name,
            &wired.endpoints,
            &networking::endpoints_of(&ctx.net, peers),
        ),
    };
    let hosts = networking::hosts_text(svc, &hostname, &wired.endpoints, &peer_entries);
    oci_mounts.extend(networking::etc_files(
        &paths.dir,
        svc,
        &hostname,
        hosts,
        wired.resolver,
    )?);
    let netns = match wired.netns {
        Some(path) => ocispec::NetNs::Join(path),
        None => ocispec::NetNs::Host,
    };
    let inputs = ocispec::Inputs {
        netns,
        mounts: oci_mounts,
        ..inputs_base
    };
    let spec = ocispec::build(svc, &inputs)?;
    let config_path = paths.bundle().join("config.json");
    crate::state::write_json(&config_path, &spec).map_err(io(&config_path))?;
    // What the spec refers to is durable before it (see state.rs): after a
    // power loss the container exists whole, or is half-created.
    for dir in [paths.bundle(), paths.dir.join("etc")] {
        if dir.is_dir() {
            crate::state::sync_dir(&dir).map_err(io(&dir))?;
        }
    }
    record(&stack.name, svc, want, image)
        .write(paths)
        .map_err(io(&paths.spec()))
}

/// The files every container of `svc` has bind-mounted (relative to its
/// root): its /etc files and init.
fn mount_points(svc: &Service) -> Vec<&'static str> {
    let mut files = vec!["etc/hosts", "etc/hostname", "etc/resolv.conf"];
    if svc.init {
        files.push(crate::supervisor::helpers::CONTAINER_PATH.trim_start_matches('/'));
    }
    files
}

/// Make sure what a run of container `name` needs from the host exists, and
/// rebuild what does not: a reboot takes the root filesystem's mount and the
/// network namespace with its interfaces (and the bridges and the nftables
/// table with them, and the `[::1]` proxy), and the tmpfs of its secrets and
/// configs. The rebuilt ones are the same: the recorded rootfs plan and
/// secret files, the addresses and published ports from the network state.
/// Level-triggered and cheap when nothing is missing (a few statx and a
/// statfs): the monitor calls it before every start. Cgroups are the
/// runtime's (it creates them).
pub fn revive(roots: &Roots, name: &str) -> Result<(), Error> {
    let paths = ContainerPaths::new(&roots.lib, name);
    let rootfs = paths.bundle().join("rootfs");
    if !is_mount_root(&rootfs) {
        let record: RootfsRecord = crate::state::read_json(&paths.rootfs_plan())
            .map_err(|source| Error::Io {
                what: paths.rootfs_plan().display().to_string(),
                source,
            })?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the root filesystem of {name} is not mounted (after a reboot?) and its \
                     container predates the record of how to mount it; recreate it with \
                     `stack up --force-recreate`"
                ))
            })?;
        storage::mount_rootfs(&record.plan, &rootfs)?;
    }
    // Secrets and configs live in a tmpfs: copied again from what create
    // recorded (`mounts::file_mounts`), to the paths config.json binds.
    let files = paths.dir.join("files");
    if files.is_dir() && !is_mount_root(&files) {
        let plan: Vec<storage::SecretFile> = crate::state::read_json(&paths.files_plan())
            .map_err(|source| Error::Io {
                what: paths.files_plan().display().to_string(),
                source,
            })?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the secrets and configs of {name} were kept in memory and are gone (after \
                     a reboot?) and its container predates the record of them; recreate it: \
                     `stack up --force-recreate`"
                ))
            })?;
        storage::materialise_secrets(&files, &plan)?;
    }
    let own = sandbox::path(&roots.run, name);
    if sandbox::is_namespace(&own) {
        return Ok(());
    }
    match joined_netns(&paths)? {
        Some(path) if path == own => revive_netns(roots, name, &own),
        Some(path) if !sandbox::is_namespace(&path) => Err(Error::Invalid(format!(
            "{name} joins the network namespace {}, which does not exist: start the container \
             it belongs to first",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A new namespace for `name` with its recorded interfaces; none on failure
/// (a namespace left without them would pass for a complete one).
fn revive_netns(roots: &Roots, name: &str, path: &Path) -> Result<(), Error> {
    sandbox::create(path).map_err(|source| Error::Io {
        what: format!("network namespace {}", path.display()),
        source,
    })?;
    if let Err(e) = Manager::open(roots).and_then(|net| net.revive(name, path)) {
        let _ = sandbox::remove(path);
        return Err(e.into());
    }
    Ok(())
}

/// The network namespace the container's OCI config joins (None: the host's).
fn joined_netns(paths: &ContainerPaths) -> Result<Option<std::path::PathBuf>, Error> {
    let path = paths.bundle().join("config.json");
    let config: serde_json::Value = crate::state::read_json(&path)
        .map_err(|source| Error::Io {
            what: path.display().to_string(),
            source,
        })?
        .unwrap_or_default();
    let namespaces = config["linux"]["namespaces"].as_array().cloned();
    Ok(namespaces
        .unwrap_or_default()
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .map(std::path::PathBuf::from))
}

/// Whether `path` is the root of a mount (a bind mount of a directory of the
/// same file system has the same device, so st_dev tells only on kernels
/// older than 5.8, which do not report STATX_ATTR_MOUNT_ROOT).
fn is_mount_root(path: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, statx};
    let stat = |p: &Path| {
        statx(
            rustix::fs::CWD,
            p,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS,
        )
    };
    let Ok(st) = stat(path) else {
        return false;
    };
    if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
        return st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
    }
    let parent = path.parent().map(stat);
    parent.is_some_and(|p| {
        p.is_ok_and(|p| (p.stx_dev_major, p.stx_dev_minor) != (st.stx_dev_major, st.stx_dev_minor))
    })
}

/// The container's volume mounts; the volumes are held for it, and anonymous
/// volumes an earlier container of this name had at mount points it no longer
/// has are removed (Compose removes them with the container it replaces).
fn volume_mounts(
    ctx: &Ctx,
    site: &mounts::Site,
    svc: &Service,
    owner: (u32, u32),
) -> Result<Vec<serde_json::Value>, Error> {
    let (oci_mounts, used) = mounts::service_mounts(site, svc, owner)?;
    ctx.volumes.hold(site.container, &used)?;
    ctx.volumes.drop_anonymous_except(site.container, &used)?;
    Ok(oci_mounts)
}

/// The healthcheck the monitor runs: the service's own; else the image's
/// HEALTHCHECK unless the file disables it, with the file's timings over the
/// image's over Docker's defaults (Docker merges them the same way).
fn healthcheck(svc: &Service, image: Option<&image::Healthcheck>) -> Option<Healthcheck> {
    if let Some(own) = &svc.healthcheck {
        return Some(own.clone());
    }
    let timings = match &svc.image_healthcheck {
        ImageHealthcheck::Disabled => return None,
        ImageHealthcheck::Inherit => HealthcheckTimings::default(),
        ImageHealthcheck::Retimed(t) => t.clone(),
    };
    let image = image?;
    let test = match image.test.split_first() {
        Some((kind, args)) if kind == "CMD" && !args.is_empty() => args.to_vec(),
        Some((kind, args)) if kind == "CMD-SHELL" && !args.is_empty() => {
            vec!["/bin/sh".into(), "-c".into(), args.join(" ")]
        }
        // NONE, empty, or an unknown form: no check.
        _ => return None,
    };
    // Zero means "not set" in Docker's image config.
    let ns = |v: Option<u64>| v.filter(|n| *n > 0).map(Duration::from_nanos);
    Some(Healthcheck {
        test,
        interval: timings
            .interval
            .or(ns(image.interval))
            .unwrap_or(Healthcheck::DEFAULT_INTERVAL),
        timeout: timings
            .timeout
            .or(ns(image.timeout))
            .unwrap_or(Healthcheck::DEFAULT_TIMEOUT),
        retries: timings
            .retries
            .or(image.retries.filter(|r| *r > 0))
            .unwrap_or(Healthcheck::DEFAULT_RETRIES),
        start_period: timings
            .start_period
            .or(ns(image.start_period))
            .unwrap_or(Healthcheck::DEFAULT_START_PERIOD),
        start_interval: timings
            .start_interval
            .or(ns(image.start_interval))
            .unwrap_or(Healthcheck::DEFAULT_START_INTERVAL),
    })
}

/// The record the monitor runs from. Written last: its presence marks a
/// complete container.
fn record(stack: &str, svc: &Service, want: &Want, image: &image::Image) -> ContainerSpec {
    let config = image.config.config().as_ref();
    let stop_signal = svc
        .stop_signal
        .as_deref()
        .or_else(|| config.and_then(|c| c.stop_signal().as_deref()))
        .and_then(parse_signal)
        .unwrap_or(Signal::SIGTERM);
    let limits = match svc.logging.driver {
        LogDriver::None => LogLimits {
            max_size: 0,
            max_files: 1,
        },
        _ => {
            let d = LogLimits::default();
            LogLimits {
                max_size: svc.logging.max_size.unwrap_or(d.max_size),
                max_files: svc.logging.max_file.unwrap_or(d.max_files),
            }
        }
    };
    let id = crate::supervisor::record::new_id(&want.name);
    let log_tag = svc.logging.tag.as_deref().map(|t| {
        let fields = TagFields {
            name: &want.name,
            full_id: &id,
            image: want.config["image"].as_str().unwrap_or_default(),
        };
        log_tag::render(t, &fields)
    });
    ContainerSpec {
        name: want.name.clone(),
        stack: stack.to_string(),
        service: want.service.clone(),
        index: want.index,
        config_hash: want.hash.clone(),
        config: RecordedConfig::new(&want.config),
        created: SystemTime::now(),
        restart: svc.restart,
        backoff: svc.restart_backoff.map(Into::into).unwrap_or_default(),
        on_unhealthy: svc.on_unhealthy,
        stop_signal: stop_signal as i32,
        stop_grace: svc.stop_grace_period,
        log_max_size: limits.max_size,
        log_max_files: limits.max_files,
        log_driver: svc.logging.driver,
        log_tag,
        id,
        healthcheck: healthcheck(svc, image.healthcheck.as_ref()),
        tty: svc.tty,
        run_id: want.run_id.clone(),
        auto_remove: false,
    }
}

/// "SIGTERM", "TERM" or "15".
pub fn parse_signal(s: &str) -> Option<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let up = s.to_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse().ok()
}

/// What removing a container does with its anonymous volumes (Compose's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonVolumes {
    /// Keep them for the container that replaces it (a recreate).
    Keep,
    /// It is gone for good (`down`, `rm`, scaled down): they stay as dangling
    /// volumes that no later container takes.
    Release,
    /// Delete them with it (`down -v`, `rm -v`).
    Remove,
}

/// Stop and remove container `name`: processes, network, mounts, records.
/// Everything is attempted; already-gone parts count as done.
pub fn remove(ctx: &Ctx, name: &str, timeout: Duration, anon: AnonVolumes) -> Vec<Error> {
    let mut errors = Vec::new();
    // New connections go to the other replicas before this one stops (a
    // scale-down loses none); the open ones finish within the grace period.
    match ctx.net.publishes(name) {
        Ok(true) => errors.extend(ctx.net.unpublish(name).err().map(Error::from)),
        Ok(false) => {}
        Err(e) => errors.push(e.into()),
    }
    errors.extend(stop(ctx, name, timeout));
    errors.extend(dismantle(ctx, name, Network::Detach, anon));
    errors
}

/// Stop the container's processes (gracefully, then by force). Its cgroup
/// and runtime state stay for [`dismantle`]: removing a cgroup waits on the
/// kernel (on v1, once per hierarchy), and `down` changes no network until
/// every container of the stack has stopped.
pub fn stop(ctx: &Ctx, name: &str, timeout: Duration) -> Vec<Error> {
    let mut errors = Vec::new();
    if let Err(e) = crate::supervisor::control::stop(&ctx.roots, name, timeout) {
        errors.push(e.into());
    }
    // The monitor may have died: make sure no process of the container is left.
    let stopped = matches!(
        ctx.runtime.state(name),
        Ok(crate::runtime::State {
            status: crate::runtime::Status::Stopped,
            ..
        }) | Err(crate::runtime::Error::NotFound(_))
    );
    if !stopped && let Err(e) = ctx.runtime.delete(name, true) {
        errors.push(e.into());
    }
    errors
}

/// What [`dismantle`] does with the container's interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Detach them (and unpublish its ports) one by one.
    Detach,
    /// The caller removes the stack's networks with everything on them at once.
    GoneWithTheStack,
}

/// Remove what a stopped container leaves: network, mounts, holds, records, and
/// its anonymous volumes as `anon` says.
pub fn dismantle(ctx: &Ctx, name: &str, network: Network, anon: AnonVolumes) -> Vec<Error> {
    let mut errors = Vec::new();
    // Its cgroup and runtime state (the processes are gone: see `stop`).
    if let Err(e) = ctx.runtime.delete(name, true) {
        errors.push(e.into());
    }
    let paths = ContainerPaths::new(&ctx.roots.lib, name);
    match network {
        Network::Detach => errors.extend(networking::unwire(&ctx.net, &ctx.roots.run, name)),
        Network::GoneWithTheStack => errors.extend(networking::remove_netns(&ctx.roots.run, name)),
    }
    let files = paths.dir.join("files");
    if files.exists()
        && let Err(e) = storage::unmaterialise_secrets(&files)
    {
        errors.push(e.into());
    }
    let rootfs = paths.bundle().join("rootfs");
    if let Err(e) = storage::unmount_rootfs(&rootfs) {
        errors.push(e.into());
    }
    if let Err(e) = ctx.images.release(name) {
        errors.push(e.into());
    }
    if let Err(e) = ctx.volumes.release(name) {
        errors.push(e.into());
    }
    let anon = match anon {
        AnonVolumes::Keep => Ok(Vec::new()),
        AnonVolumes::Release => ctx.volumes.release_anonymous(name, false),
        AnonVolumes::Remove => ctx.volumes.release_anonymous(name, true),
    };
    if let Err(e) = anon {
        errors.push(e.into());
    }
    if errors.is_empty()
        && let Err(e) = std::fs::remove_dir_all(&paths.dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        errors.push(Error::Io {
            what: paths.dir.display().to_string(),
            source: e,
        });
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testing::service;

    fn image_check() -> image::Healthcheck {
        image::Healthcheck {
            test: vec!["CMD-SHELL".into(), "wget -q localhost".into()],
            interval: Some(2_000_000_000),
            timeout: Some(0),
            retries: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn a_mount_root_is_told_from_a_plain_directory() {
        assert!(is_mount_root(Path::new("/")));
        assert!(is_mount_root(Path::new("/proc")));
        assert!(!is_mount_root(Path::new("/proc/self/fd")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_root(dir.path()));
        assert!(!is_mount_root(&dir.path().join("missing")));
    }

    #[test]
    fn the_images_healthcheck_is_used_merged_or_disabled_as_in_docker() {
        let img = image_check();
        let inherited = healthcheck(&service(""), Some(&img)).unwrap();
        assert_eq!(inherited.test, ["/bin/sh", "-c", "wget -q localhost"]);
        assert_eq!(
            (inherited.interval, inherited.timeout, inherited.retries),
            (Duration::from_secs(2), Healthcheck::DEFAULT_TIMEOUT, 7),
            "the image's timings, zero meaning Docker's default"
        );
        let retimed = healthcheck(
            &service("[services.s.healthcheck]\ninterval = \"9s\""),
            Some(&img),
        )
        .unwrap();
        assert_eq!(
            (retimed.test.len(), retimed.interval, retimed.retries),
            (3, Duration::from_secs(9), 7)
        );
        for off in ["disable = true", "test = [\"NONE\"]"] {
            let svc = service(&format!("[services.s.healthcheck]\n{off}"));
            assert_eq!(healthcheck(&svc, Some(&img)), None, "{off}");
        }
        let own = service("[services.s.healthcheck]\ntest = [\"CMD\", \"true\"]");
        assert_eq!(healthcheck(&own, Some(&img)).unwrap().test, ["true"]);
        assert_eq!(healthcheck(&service(""), None), None);
        let none = image::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(healthcheck(&service(""), Some(&none)), None);
    }
}
