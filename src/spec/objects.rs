//! Top-level networks, volumes, secrets and configs.
use std::collections::BTreeMap;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::ctx::Ctx;
use super::paths;
use super::raw::{RawFileObject, RawIpamConfig, RawNetwork, RawVolume};
use super::service::key_values;
use super::shapes::Scalar;
use crate::model::{FileObject, FileSource, IpamConfig, Network, Volume, VolumeDriver};

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAMSIZ: usize = 15;

pub fn network(ctx: &mut Ctx<'_>, key: &str, raw: Option<RawNetwork>) -> Network {
    let raw = raw.unwrap_or_default();
    if let Some(d) = raw.driver.as_deref()
        && d != "bridge"
    {
        ctx.err_help(
            &["driver"],
            format!("network driver `{d}` is not supported"),
            "stack creates Linux bridges on this host: use driver \"bridge\" (the default) or network_mode: host",
        );
    }
    let external = raw.external.unwrap_or(false);
    let name = raw.name.clone().unwrap_or_else(|| {
        if external {
            key.to_string()
        } else {
            format!("{}_{key}", ctx.project)
        }
    });
    let (mut mtu, mut bridge_name) = (None, None);
    for (k, v) in raw.driver_opts.iter().flatten() {
        match k.as_str() {
            "com.docker.network.driver.mtu" | "mtu" => {
                mtu = ctx
                    .parse::<u32>(&["driver_opts", k], &v.0, "an MTU like 1500")
                    .filter(|m| (68..=65535).contains(m))
            }
            "com.docker.network.bridge.name" | "bridge" => {
                if v.0.is_empty() || v.0.len() > IFNAMSIZ {
                    ctx.err(
                        &["driver_opts", k],
                        format!("bridge name `{}` must be 1 to 15 bytes", v.0),
                    );
                } else {
                    bridge_name = Some(v.0.clone());
                }
            }
            other => {
                let span = ctx.node.key_span_at(&["driver_opts", k]);
                ctx.errors.push(
                    super::diag::Diagnostic::new(
                        span,
                        format!("{}: network driver option `{other}` is not supported", ctx.what),
                    )
                    .with_help(
                        "supported: com.docker.network.driver.mtu (mtu), com.docker.network.bridge.name (bridge)",
                    ),
                );
            }
        }
    }
    let mut ipam = Vec::new();
    if let Some(i) = &raw.ipam {
        if let Some(d) = i.driver.as_deref()
            && d != "default"
        {
            ctx.err(
                &["ipam", "driver"],
                format!("IPAM driver `{d}` is not supported: only `default`"),
            );
        }
        for (n, c) in i.config.iter().flatten().enumerate() {
            if let Some(c) = ipam_config(ctx, &n.to_string(), c) {
                ipam.push(c);
            }
        }
    }
    let labels = key_values(ctx, "labels", raw.labels.as_ref(), false);
    Network {
        name,
        external,
        internal: raw.internal.unwrap_or(false),
        enable_ipv6: raw.enable_ipv6.unwrap_or(false),
        ipam,
        labels,
        mtu,
        bridge_name,
    }
}

/// `10.0.0.0/24` -> (address, prefix length).
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = text.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

pub fn cidr_contains(net: (IpAddr, u8), ip: IpAddr) -> bool {
    match (net.0, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(net.1)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(net.1)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn ipam_config(ctx: &mut Ctx<'_>, idx: &str, c: &RawIpamConfig) -> Option<IpamConfig> {
    let path = ["ipam", "config", idx];
    let Some(net) = parse_cidr(&c.subnet) else {
        ctx.err(
            &[&path[..], &["subnet"]].concat(),
            format!(
                "invalid subnet `{}`: expected CIDR like 10.89.0.0/24",
                c.subnet
            ),
        );
        return None;
    };
    if let Some(r) = &c.ip_range {
        match parse_cidr(r) {
            Some(range) if cidr_contains(net, range.0) && range.1 >= net.1 => {}
            _ => ctx.err(
                &[&path[..], &["ip_range"]].concat(),
                format!("ip_range `{r}` is not a CIDR inside {}", c.subnet),
            ),
        }
    }
    let gateway = match &c.gateway {
        None => None,
        Some(g) => match g.parse::<IpAddr>() {
            Ok(ip) if cidr_contains(net, ip) => Some(ip),
            _ => {
                ctx.err(
                    &[&path[..], &["gateway"]].concat(),
                    format!("gateway `{g}` is not an address inside {}", c.subnet),
                );
                None
            }
        },
    };
    Some(IpamConfig {
        subnet: c.subnet.clone(),
        ip_range: c.ip_range.clone(),
        gateway,
    })
}

pub fn volume(ctx: &mut Ctx<'_>, key: &str, raw: Option<RawVolume>) -> Volume {
    let raw = raw.unwrap_or_default();
    if let Some(d) = raw.driver.as_deref()
        && d != "local"
    {
        ctx.err(
            &["driver"],
            format!("volume driver `{d}` is not supported: only `local`"),
        );
    }
    let external = raw.external.unwrap_or(false);
    let opts: BTreeMap<&str, &str> = raw
        .driver_opts
        .iter()
        .flatten()
        .map(|(k, Scalar(v, _))| (k.as_str(), v.as_str()))
        .collect();
    let driver = volume_driver(ctx, &opts);
    let labels = key_values(ctx, "labels", raw.labels.as_ref(), false);
    Volume {
        name: raw.name.unwrap_or_else(|| {
            if external {
                key.to_string()
            } else {
                format!("{}_{key}", ctx.project)
            }
        }),
        external,
        labels,
        driver,
    }
}

/// The `local` driver's options, as `mount(8)` would take them.
fn volume_driver(ctx: &mut Ctx<'_>, opts: &BTreeMap<&str, &str>) -> VolumeDriver {
    if opts.is_empty() {
        return VolumeDriver::Local;
    }
    let o = opts.get("o").copied().unwrap_or("");
    let flags: Vec<&str> = o.split(',').filter(|f| !f.is_empty()).collect();
    match (opts.get("type").copied(), opts.get("device").copied()) {
        (Some("none"), Some(device)) if flags.contains(&"bind") || flags.contains(&"rbind") => {
            VolumeDriver::Bind {
                device: paths::absolute(ctx.base, device),
            }
        }
        (Some("tmpfs"), _) => {
            let (mut size, mut mode) = (None, None);
            for f in flags {
                match f.split_once('=') {
                    Some(("size", v)) => {
                        size = ctx.size(&["driver_opts", "o"], &Some(Scalar::text(v)))
                    }
                    Some(("mode", v)) => {
                        mode = ctx.octal_mode(&["driver_opts", "o"], &Some(Scalar::text(v)))
                    }
                    _ => ctx.err(
                        &["driver_opts", "o"],
                        format!("tmpfs option `{f}` is not supported: expected size= or mode="),
                    ),
                }
            }
            VolumeDriver::Tmpfs { size, mode }
        }
        _ => {
            ctx.err_help(
                &["driver_opts"],
                "these volume driver_opts are not supported",
                "use {type: none, o: bind, device: PATH} for a host directory or {type: tmpfs, device: tmpfs, o: \"size=64m\"}",
            );
            VolumeDriver::Local
        }
    }
}

/// A top-level secret or config; its content is hashed now so that an edit
/// recreates the services that use it.
pub fn file_object(
    ctx: &mut Ctx<'_>,
    key: &str,
    is_config: bool,
    raw: RawFileObject,
) -> Option<FileObject> {
    let (source, content) = match (&raw.file, &raw.environment, &raw.content) {
        (Some(f), None, None) => {
            let path = paths::absolute(ctx.base, f);
            ctx.inputs.push(path.clone());
            match std::fs::read(&path) {
                Ok(bytes) => (FileSource::File(path), bytes),
                Err(e) => {
                    ctx.err(&["file"], format!("cannot read {}: {e}", path.display()));
                    return None;
                }
            }
        }
        (None, Some(var), None) => match ctx.vars.get(var) {
            Some(v) => (FileSource::Environment(var.clone()), v.clone().into_bytes()),
            None => {
                ctx.err(
                    &["environment"],
                    format!("environment variable {var} is not set"),
                );
                return None;
            }
        },
        (None, None, Some(c)) if is_config => {
            (FileSource::Content(c.clone()), c.clone().into_bytes())
        }
        (None, None, Some(_)) => {
            ctx.err(&["content"], "`content` is only allowed for configs");
            return None;
        }
        _ => {
            ctx.err(&[], "give exactly one of `file`, `environment`, `content`");
            return None;
        }
    };
    let digest = Sha256::digest(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Some(FileObject {
        name: raw.name.unwrap_or_else(|| format!("{}_{key}", ctx.project)),
        source,
        digest: format!("sha256:{digest}"),
    })
}
