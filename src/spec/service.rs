//! One service: [`RawService`] -> [`model::Service`], every default applied.
use std::collections::BTreeMap;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::{RawBackoff, RawHealthcheck, RawService};
use super::shapes::{Command, KeyValues, ShortOrLong};
use super::{
    envfile, image_ref, paths, resources, service_mounts, service_net, service_sec, shellwords,
};
use crate::model::{
    Dependency, DependencyCondition, Healthcheck, HealthcheckTimings, ImageHealthcheck,
    ImageSource, LogDriver, Logging, OnUnhealthy, PullPolicy, RestartBackoff, Service,
};
use crate::supervisor::backoff::BackoffConfig as BackoffDefaults;

const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

pub fn convert(ctx: &mut Ctx<'_>, name: &str, raw: RawService) -> Service {
    let image = image(ctx, &raw);
    let mut environment = env_files(ctx, &raw);
    environment.extend(key_values(
        ctx,
        "environment",
        raw.environment.as_ref(),
        true,
    ));
    let (replicas, restart, resources) = resources::service(ctx, &raw);
    let network_mode = service_net::network_mode(ctx, raw.network_mode.as_deref());
    let networks = service_net::networks(ctx, &network_mode, raw.networks.as_ref());
    let labels = key_values(ctx, "labels", raw.labels.as_ref(), false);
    let sysctls = key_values(ctx, "sysctls", raw.sysctls.as_ref(), false);
    let container_name = raw.container_name.clone();
    let depends_on = depends_on(ctx, &raw);
    let logging = logging(ctx, &raw);
    let (healthcheck, image_healthcheck) = match raw.healthcheck.as_ref() {
        Some(h) => healthcheck(ctx, h),
        None => (None, ImageHealthcheck::Inherit),
    };
    if container_name.is_some() && replicas > 1 {
        ctx.err(
            &["container_name"],
            format!("container_name cannot be used with {replicas} replicas: names must be unique"),
        );
    }
    Service {
        name: name.to_string(),
        image,
        entrypoint: raw
            .entrypoint
            .as_ref()
            .and_then(|c| command(ctx, "entrypoint", c)),
        command: raw
            .command
            .as_ref()
            .and_then(|c| command(ctx, "command", c)),
        environment,
        working_dir: raw.working_dir,
        user: raw.user,
        group_add: raw.group_add.unwrap_or_default(),
        hostname: raw.hostname,
        domainname: raw.domainname,
        restart,
        restart_backoff: raw
            .restart_backoff
            .as_ref()
            .and_then(|b| restart_backoff(ctx, b)),
        replicas,
        update_config: resources::update_config(
            ctx,
            raw.deploy.as_ref().and_then(|d| d.update_config.as_ref()),
        ),
        resources,
        ulimits: service_sec::ulimits(ctx, raw.ulimits.as_ref()),
        oom_score_adj: raw.oom_score_adj.and_then(|v| {
            if (-1000..=1000).contains(&v) {
                Some(v)
            } else {
                ctx.err(
                    &["oom_score_adj"],
                    format!("oom_score_adj {v} is outside -1000..1000"),
                );
                None
            }
        }),
        cap_add: service_sec::capabilities(ctx, "cap_add", raw.cap_add.as_deref()),
        cap_drop: service_sec::capabilities(ctx, "cap_drop", raw.cap_drop.as_deref()),
        privileged: raw.privileged.unwrap_or(false),
        read_only: raw.read_only.unwrap_or(false),
        security: service_sec::security_opts(ctx, raw.security_opt.as_deref()),
        userns_mode: raw.userns_mode,
        init: raw.init.unwrap_or(false),
        stop_signal: raw
            .stop_signal
            .as_deref()
            .and_then(|s| service_sec::signal(ctx, s)),
        stop_grace_period: ctx
            .duration(&["stop_grace_period"], &raw.stop_grace_period)
            .unwrap_or(DEFAULT_STOP_GRACE),
        depends_on,
        healthcheck,
        image_healthcheck,
        on_unhealthy: raw
            .healthcheck
            .as_ref()
            .map_or(OnUnhealthy::None, |h| on_unhealthy(ctx, h)),
        tty: raw.tty.unwrap_or(false),
        stdin_open: raw.stdin_open.unwrap_or(false),
        network_mode,
        networks,
        ports: service_net::ports(ctx, raw.ports.as_deref()),
        expose: service_net::expose(ctx, raw.expose.as_deref()),
        volumes: service_mounts::mounts(ctx, raw.volumes.as_deref(), raw.tmpfs.as_ref()),
        labels,
        logging,
        profiles: raw.profiles.unwrap_or_default(),
        extra_hosts: service_net::extra_hosts(ctx, raw.extra_hosts.as_ref()),
        dns: service_net::dns(ctx, raw.dns.as_ref()),
        dns_search: raw.dns_search.map(|d| d.0).unwrap_or_default(),
        dns_opt: raw.dns_opt.unwrap_or_default(),
        sysctls,
        devices: service_mounts::devices(ctx, raw.devices.as_deref()),
        shm_size: ctx.size(&["shm_size"], &raw.shm_size),
        ipc: raw.ipc,
        pid: raw.pid,
        uts: raw.uts,
        cgroup_parent: raw.cgroup_parent,
        container_name,
        platform: platform(ctx, raw.platform),
        pull_policy: pull_policy(ctx, raw.pull_policy.as_deref()),
        secrets: service_mounts::file_mounts(ctx, "secrets", raw.secrets.as_deref()),
        configs: service_mounts::file_mounts(ctx, "configs", raw.configs.as_deref()),
    }
}

fn image(ctx: &mut Ctx<'_>, raw: &RawService) -> ImageSource {
    let placeholder = ImageSource::Registry(String::new());
    match (&raw.image, &raw.rootfs) {
        (Some(_), Some(_)) => {
            ctx.err(&["rootfs"], "set either `image` or `rootfs`, not both");
            placeholder
        }
        (None, None) => {
            ctx.err_help(
                &[],
                "no `image` or `rootfs`",
                "set `image` (a registry reference or oci:PATH[:TAG]) or `rootfs` (a directory)",
            );
            placeholder
        }
        (None, Some(dir)) => ImageSource::Rootfs(paths::absolute(ctx.base, dir)),
        (Some(text), None) => match image_ref::parse_image(text, ctx.base) {
            Ok(i) => i,
            Err(e) => {
                ctx.err(&["image"], e);
                placeholder
            }
        },
    }
}

/// Compose splits a string command into words (no shell); a list is used as is.
fn command(ctx: &mut Ctx<'_>, key: &str, c: &Command) -> Option<Vec<String>> {
    match c {
        Command::Exec(v) => Some(v.clone()),
        Command::Shell(s) => match shellwords::split(s) {
            Ok(words) => Some(words),
            Err(e) => {
                ctx.err(&[key], e);
                None
            }
        },
    }
}

/// `KEY=VALUE` pairs; a key without a value comes from the environment
/// (and is left out when unset there) when `from_env`, else is empty.
pub fn key_values(
    ctx: &mut Ctx<'_>,
    key: &str,
    kv: Option<&KeyValues>,
    from_env: bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in kv.map(|kv| kv.items.as_slice()).unwrap_or_default() {
        if k.is_empty() {
            ctx.err(&[key], "empty name");
            continue;
        }
        match (v, from_env) {
            (Some(v), _) => {
                out.insert(k.clone(), v.clone());
            }
            (None, true) => {
                if let Some(v) = ctx.vars.get(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
            (None, false) => {
                out.insert(k.clone(), String::new());
            }
        }
    }
    out
}

fn env_files(ctx: &mut Ctx<'_>, raw: &RawService) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(files) = &raw.env_file else {
        return out;
    };
    for (i, f) in files.0.iter().enumerate() {
        let idx = i.to_string();
        let (path, required) = match f {
            ShortOrLong::Short(p) => (p.as_str(), true),
            ShortOrLong::Long(l) => {
                if l.format.as_deref().is_some_and(|f| f != "dotenv") {
                    ctx.err(
                        &["env_file", &idx, "format"],
                        "only the `dotenv` env_file format is supported",
                    );
                }
                (l.path.as_str(), l.required.unwrap_or(true))
            }
        };
        let abs = paths::absolute(ctx.base, path);
        ctx.inputs.push(abs.clone());
        let text = match std::fs::read_to_string(&abs) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                ctx.err(
                    &["env_file", &idx],
                    format!("cannot read env_file {}: {e}", abs.display()),
                );
                continue;
            }
        };
        match envfile::parse(&text, ctx.vars) {
            Ok(pairs) => out.extend(pairs),
            Err((line, e)) => ctx.err(
                &["env_file", &idx],
                format!("{}:{line}: {e}", abs.display()),
            ),
        }
    }
    out
}

fn depends_on(ctx: &mut Ctx<'_>, raw: &RawService) -> BTreeMap<String, Dependency> {
    let mut out = BTreeMap::new();
    for (name, dep) in raw.depends_on.iter().flat_map(|d| d.items.iter()) {
        let condition = match dep.as_ref().and_then(|d| d.condition.as_deref()) {
            None | Some("service_started") => DependencyCondition::ServiceStarted,
            Some("service_healthy") => DependencyCondition::ServiceHealthy,
            Some("service_completed_successfully") => {
                DependencyCondition::ServiceCompletedSuccessfully
            }
            Some(other) => {
                ctx.err(
                    &["depends_on", name, "condition"],
                    format!("unknown condition `{other}`: expected service_started, service_healthy or service_completed_successfully"),
                );
                DependencyCondition::ServiceStarted
            }
        };
        out.insert(
            name.clone(),
            Dependency {
                condition,
                restart: dep.as_ref().and_then(|d| d.restart).unwrap_or(false),
                required: dep.as_ref().and_then(|d| d.required).unwrap_or(true),
            },
        );
    }
    out
}

/// `restart_backoff`, defaults filled in; None (with an error) when invalid.
fn restart_backoff(ctx: &mut Ctx<'_>, b: &RawBackoff) -> Option<RestartBackoff> {
    let d = BackoffDefaults::default();
    let out = RestartBackoff {
        initial: ctx
            .duration(&["restart_backoff", "initial"], &b.initial)
            .unwrap_or(d.initial),
        max: ctx
            .duration(&["restart_backoff", "max"], &b.max)
            .unwrap_or(d.max),
        multiplier: b.multiplier.unwrap_or(d.multiplier),
        reset_after: ctx
            .duration(&["restart_backoff", "reset_after"], &b.reset_after)
            .unwrap_or(d.reset_after),
    };
    if !(out.multiplier >= 1.0 && out.multiplier.is_finite()) {
        ctx.err(
            &["restart_backoff", "multiplier"],
            format!(
                "restart_backoff.multiplier must be a number >= 1, not {}",
                out.multiplier
            ),
        );
        return None;
    }
    if out.max < out.initial {
        ctx.err(
            &["restart_backoff", "max"],
            format!(
                "restart_backoff.max ({:?}) is shorter than initial ({:?})",
                out.max, out.initial
            ),
        );
        return None;
    }
    Some(out)
}

fn on_unhealthy(ctx: &mut Ctx<'_>, h: &RawHealthcheck) -> OnUnhealthy {
    match h.on_unhealthy.as_deref() {
        None | Some("none") => OnUnhealthy::None,
        Some("restart") => OnUnhealthy::Restart,
        Some("stop") => OnUnhealthy::Stop,
        Some(other) => {
            ctx.err_help(
                &["healthcheck", "on_unhealthy"],
                format!("healthcheck.on_unhealthy `{other}` is not known"),
                "expected \"restart\", \"stop\" or \"none\"",
            );
            OnUnhealthy::None
        }
    }
}

/// The service's own check, or what to do with the image's: a `healthcheck`
/// without `test` keeps the image's test (with the timings it gives), as Docker
/// merges them.
fn healthcheck(ctx: &mut Ctx<'_>, h: &RawHealthcheck) -> (Option<Healthcheck>, ImageHealthcheck) {
    if h.disable == Some(true) {
        return (None, ImageHealthcheck::Disabled);
    }
    let timings = HealthcheckTimings {
        interval: ctx.duration(&["healthcheck", "interval"], &h.interval),
        timeout: ctx.duration(&["healthcheck", "timeout"], &h.timeout),
        retries: h.retries,
        start_period: ctx.duration(&["healthcheck", "start_period"], &h.start_period),
        start_interval: ctx.duration(&["healthcheck", "start_interval"], &h.start_interval),
    };
    let test = match &h.test {
        Some(Command::Shell(s)) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        Some(Command::Exec(v)) => match v.first().map(String::as_str) {
            Some("NONE") => return (None, ImageHealthcheck::Disabled),
            Some("CMD") if v.len() > 1 => v[1..].to_vec(),
            Some("CMD-SHELL") if v.len() > 1 => {
                vec!["/bin/sh".into(), "-c".into(), v[1..].join(" ")]
            }
            _ => {
                ctx.err_help(
                    &["healthcheck", "test"],
                    "healthcheck test must start with CMD, CMD-SHELL or NONE, followed by the command",
                    "e.g. [\"CMD\", \"wget\", \"-q\", \"http://localhost/\"] or a shell string",
                );
                return (None, ImageHealthcheck::Inherit);
            }
        },
        None if timings == HealthcheckTimings::default() => {
            return (None, ImageHealthcheck::Inherit);
        }
        None => return (None, ImageHealthcheck::Retimed(timings)),
    };
    let own = Healthcheck {
        test,
        interval: timings.interval.unwrap_or(Healthcheck::DEFAULT_INTERVAL),
        timeout: timings.timeout.unwrap_or(Healthcheck::DEFAULT_TIMEOUT),
        retries: timings.retries.unwrap_or(Healthcheck::DEFAULT_RETRIES),
        start_period: timings
            .start_period
            .unwrap_or(Healthcheck::DEFAULT_START_PERIOD),
        start_interval: timings
            .start_interval
            .unwrap_or(Healthcheck::DEFAULT_START_INTERVAL),
    };
    (Some(own), ImageHealthcheck::Inherit)
}

fn logging(ctx: &mut Ctx<'_>, raw: &RawService) -> Logging {
    let mut out = Logging {
        driver: LogDriver::JsonFile,
        max_size: None,
        max_file: None,
        tag: None,
    };
    let Some(l) = &raw.logging else {
        return out;
    };
    out.driver = match l.driver.as_deref() {
        None | Some("json-file") => LogDriver::JsonFile,
        Some("local") => LogDriver::Local,
        Some("none") => LogDriver::None,
        Some("journald") => LogDriver::Journald,
        Some(other) => {
            ctx.err(
                &["logging", "driver"],
                format!("logging driver `{other}` is not supported: expected json-file, local, none or journald"),
            );
            LogDriver::JsonFile
        }
    };
    for (k, v) in l.options.iter().flatten() {
        match k.as_str() {
            "max-size" => out.max_size = ctx.size(&["logging", "options", k], &Some(v.clone())),
            "max-file" => {
                out.max_file = ctx.parse(&["logging", "options", k], &v.0, "a number of files")
            }
            "tag" => out.tag = log_tag(ctx, &v.0),
            _ => ctx.err_key(
                &["logging", "options", k],
                format!(
                    "logging option `{k}` is not supported: expected max-size, max-file or tag"
                ),
            ),
        }
    }
    out
}

/// `logging.options.tag`, its markers checked now so that a typo fails the
/// load with the option's position instead of reaching the journal.
fn log_tag(ctx: &mut Ctx<'_>, template: &str) -> Option<String> {
    match crate::model::log_tag::check(template) {
        Ok(()) => Some(template.to_string()),
        Err(e) => {
            ctx.err(
                &["logging", "options", "tag"],
                format!("logging option `tag`: {e}"),
            );
            None
        }
    }
}

fn pull_policy(ctx: &mut Ctx<'_>, p: Option<&str>) -> PullPolicy {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let every = |ctx: &mut Ctx<'_>, d: &str| match super::units::parse_duration(d) {
        Ok(d) if !d.is_zero() => PullPolicy::Every(d),
        Ok(_) => PullPolicy::Always,
        Err(e) => {
            ctx.err(&["pull_policy"], format!("pull_policy `every_{d}`: {e}"));
            PullPolicy::Missing
        }
    };
    match p {
        None | Some("missing") | Some("if_not_present") => PullPolicy::Missing,
        Some("always") => PullPolicy::Always,
        Some("never") => PullPolicy::Never,
        Some("daily") => PullPolicy::Every(DAY),
        Some("weekly") => PullPolicy::Every(7 * DAY),
        Some(other) if other.starts_with("every_") => every(ctx, &other["every_".len()..]),
        Some("build") => {
            ctx.err_help(
                &["pull_policy"],
                "pull_policy `build` needs `build:`, and stack does not build images",
                "build the image elsewhere (e.g. `buildah bud` or `docker build`), then \
                 `stack image import` it or reference its OCI layout with image: oci:PATH:TAG, \
                 and drop pull_policy or set it to `never`",
            );
            PullPolicy::Missing
        }
        Some(other) => {
            ctx.err(
                &["pull_policy"],
                format!(
                    "pull_policy `{other}` is not supported: expected missing, always, never, daily, weekly or every_<duration> (e.g. every_12h)"
                ),
            );
            PullPolicy::Missing
        }
    }
}

/// `platform: os/arch[/variant]`, as an image index lists it.
fn platform(ctx: &mut Ctx<'_>, p: Option<String>) -> Option<String> {
    let p = p?;
    let parts: Vec<&str> = p.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|s| s.is_empty()) {
        ctx.err_help(
            &["platform"],
            format!("platform `{p}` is not os/arch[/variant]"),
            "e.g. linux/amd64, linux/arm64 or linux/arm/v7",
        );
        return None;
    }
    Some(p)
}
