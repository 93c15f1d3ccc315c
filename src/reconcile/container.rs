//! Creating and removing one container on disk and on the host: image, root
//! filesystem, mounts, network, OCI bundle, records. Creation undoes itself on
//! failure; removal goes on past failures and reports them all.
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;

use super::plan::Want;
use super::{Ctx, Error, mounts, networking, ocispec};
use crate::image;
use crate::model::{ImageSource, LogDriver, PullPolicy, Service, Stack};
use crate::storage;
use crate::supervisor::backoff::BackoffConfig;
use crate::supervisor::logs::LogLimits;
use crate::supervisor::record::{ContainerPaths, ContainerSpec};

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

pub fn stack_slice(stack: &str) -> String {
    format!("stack.slice/{stack}.slice")
}

/// Create container `want` of `svc` from `image` ([`service_image`]), not started.
/// On error nothing of it is left.
pub fn create(
    ctx: &Ctx,
    stack: &Stack,
    svc: &Service,
    want: &Want,
    peers: &[String],
    image: &image::Image,
) -> Result<(), Error> {
    let paths = ContainerPaths::new(&ctx.roots.lib, &want.name);
    if paths.dir.exists() {
        // A create that crashed half-way, or a removal that did: finish it.
        let errors = remove(ctx, &want.name, Duration::from_secs(1));
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
    }
    let result = build(ctx, stack, svc, want, &paths, peers, image);
    if result.is_err() {
        let _ = remove(ctx, &want.name, Duration::from_secs(1));
    }
    result
}

fn build(
    ctx: &Ctx,
    stack: &Stack,
    svc: &Service,
    want: &Want,
    paths: &ContainerPaths,
    peers: &[String],
    image: &image::Image,
) -> Result<(), Error> {
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
    storage::mount_rootfs(
        &storage::rootfs_plan(&paths.dir, &image.layers, svc.read_only),
        &rootfs,
    )?;
    let config = image.config.config().clone();
    let inputs_base = ocispec::Inputs {
        stack: &stack.name,
        container: &want.name,
        rootfs: &rootfs,
        image: config.as_ref(),
        cgroups_path: cgroups_path(&stack.name, &svc.name, want.index),
        netns: ocispec::NetNs::Host,
        mounts: Vec::new(),
    };
    let owner = ocispec::owner(svc, &inputs_base)?;
    let (mut oci_mounts, used_volumes) =
        mounts::service_mounts(&ctx.volumes, stack, svc, &rootfs, owner)?;
    ctx.volumes.hold(&want.name, &used_volumes)?;
    oci_mounts.extend(mounts::file_mounts(stack, svc, &paths.dir, owner)?);
    if svc.init {
        let init = crate::supervisor::init::install(&ctx.roots.lib).map_err(io(&ctx.roots.lib))?;
        oci_mounts.push(serde_json::json!({
            "destination": crate::supervisor::init::CONTAINER_PATH, "type": "bind", "source": init,
            "options": ["bind", "ro", "nosuid", "nodev"],
        }));
    }
    let wired = networking::wire(&ctx.net, &ctx.roots.run, stack, svc, &want.name)?;
    let hostname = svc.hostname.clone().unwrap_or_else(|| want.name.clone());
    let peer_entries = networking::peers(
        &want.name,
        &wired.endpoints,
        &networking::endpoints_of(&ctx.net, peers),
    );
    let hosts = networking::hosts_text(svc, &hostname, &wired.endpoints, &peer_entries);
    oci_mounts.extend(networking::etc_files(&paths.dir, svc, &hostname, hosts)?);
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
    record(&stack.name, svc, want, config.as_ref())
        .write(paths)
        .map_err(io(&paths.spec()))
}

/// The record the monitor runs from. Written last: its presence marks a
/// complete container.
fn record(
    stack: &str,
    svc: &Service,
    want: &Want,
    image: Option<&oci_spec::image::Config>,
) -> ContainerSpec {
    let stop_signal = svc
        .stop_signal
        .as_deref()
        .or_else(|| image.and_then(|c| c.stop_signal().as_deref()))
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
    ContainerSpec {
        name: want.name.clone(),
        stack: stack.to_string(),
        service: want.service.clone(),
        index: want.index,
        config_hash: want.hash.clone(),
        config: want.config.clone(),
        created: SystemTime::now(),
        restart: svc.restart,
        backoff: BackoffConfig::default(),
        stop_signal: stop_signal as i32,
        stop_grace: svc.stop_grace_period,
        log_max_size: limits.max_size,
        log_max_files: limits.max_files,
        healthcheck: svc.healthcheck.clone(),
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

/// Stop and remove container `name`: processes, network, mounts, records.
/// Everything is attempted; already-gone parts count as done.
pub fn remove(ctx: &Ctx, name: &str, timeout: Duration) -> Vec<Error> {
    let mut errors = stop(ctx, name, timeout);
    errors.extend(dismantle(ctx, name, Network::Detach));
    errors
}

/// Stop the container's processes (gracefully, then by force).
pub fn stop(ctx: &Ctx, name: &str, timeout: Duration) -> Vec<Error> {
    let mut errors = Vec::new();
    if let Err(e) = crate::supervisor::control::stop(&ctx.roots, name, timeout) {
        errors.push(e.into());
    }
    // The monitor may have died: make sure no process of the container is left.
    if let Err(e) = ctx.runtime.delete(name, true) {
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

/// Remove what a stopped container leaves: network, mounts, holds, records.
pub fn dismantle(ctx: &Ctx, name: &str, network: Network) -> Vec<Error> {
    let mut errors = Vec::new();
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
