//! One service's container as an OCI runtime spec: Docker's defaults (namespaces,
//! mounts, capabilities, masked paths) plus what the service and its image say.
//! Built as JSON and checked by deserializing into `oci_spec` types, so the
//! template reads like the config.json it produces.
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::{LinuxSeccomp, Spec};
use serde_json::{Value, json};

use crate::model::{Resources, Seccomp, Service};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "service {service}: no command to run (the image has no Cmd or Entrypoint; set `command`)"
    )]
    NoCommand { service: String },
    #[error("service {service}: user `{user}` is not in the image's {file}")]
    UnknownUser {
        service: String,
        user: String,
        file: &'static str,
    },
    #[error("service {service}: {path}: {source}")]
    File {
        service: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("service {service}: unknown capability `{cap}`")]
    Capability { service: String, cap: String },
    #[error("service {service}: invalid OCI spec: {source}")]
    Invalid {
        service: String,
        source: serde_json::Error,
    },
}

/// Docker's default capability set.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where the container's namespaces come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNs {
    /// A fresh namespace (bridge networking attaches to it, or only `lo` for `none`).
    New,
    /// The host's.
    Host,
    /// Join an existing one (`network_mode: service:X`).
    Join(PathBuf),
}

/// Everything besides the service that shapes its container.
pub struct Inputs<'a> {
    pub stack: &'a str,
    pub container: &'a str,
    pub rootfs: &'a Path,
    pub image: Option<&'a ImageConfig>,
    pub cgroups_path: String,
    pub netns: NetNs,
    /// Volume, bind, tmpfs, secret and network-file mounts, already resolved.
    pub mounts: Vec<Value>,
    /// uid, gid and the `group_add` gids, from [`user`].
    pub user: (u32, u32, Vec<u32>),
}

pub fn build(svc: &Service, inp: &Inputs) -> Result<Spec, Error> {
    let (uid, gid, extra_gids) = &inp.user;
    let caps = capabilities(svc)?;
    let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "cgroup"})];
    for (kind, mode) in [("pid", &svc.pid), ("ipc", &svc.ipc), ("uts", &svc.uts)] {
        if mode.as_deref() != Some("host") {
            namespaces.push(json!({ "type": kind }));
        }
    }
    match &inp.netns {
        NetNs::New => namespaces.push(json!({"type": "network"})),
        NetNs::Join(path) => namespaces.push(json!({"type": "network", "path": path})),
        NetNs::Host => {}
    }
    let mut mounts = default_mounts(svc);
    mounts.extend(inp.mounts.iter().cloned());
    let hostname = svc
        .hostname
        .clone()
        .unwrap_or_else(|| inp.container.to_string());
    let spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": svc.tty,
            "user": { "uid": uid, "gid": gid, "additionalGids": extra_gids },
            "args": with_init(svc, args(svc, inp.image)?),
            "env": env(svc, inp.image, &hostname),
            "cwd": svc.working_dir.clone().or_else(|| inp.image.and_then(|c| c.working_dir().clone())).filter(|s| !s.is_empty()).unwrap_or_else(|| "/".into()),
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
            "rlimits": svc.ulimits.iter().map(|(name, u)| json!({"type": format!("RLIMIT_{}", name.to_uppercase()), "soft": u.soft, "hard": u.hard})).collect::<Vec<_>>(),
            "noNewPrivileges": svc.security.no_new_privileges,
            "oomScoreAdj": svc.oom_score_adj,
        },
        "root": { "path": inp.rootfs, "readonly": svc.read_only },
        "hostname": hostname,
        "domainname": svc.domainname,
        "mounts": mounts,
        "annotations": annotations(svc, inp),
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": inp.cgroups_path,
            "resources": container_resources(svc)?,
            "sysctl": svc.sysctls,
            "devices": devices(svc)?,
            "maskedPaths": if svc.privileged { vec![] } else { MASKED.to_vec() },
            "readonlyPaths": if svc.privileged { vec![] } else { READONLY.to_vec() },
        },
    });
    let mut spec: Spec =
        serde_json::from_value(strip_nulls(spec)).map_err(|source| Error::Invalid {
            service: svc.name.clone(),
            source,
        })?;
    // Set on the struct, not through the JSON above: the profile is most of
    // the spec, and a trip through `Value` costs as much as the rest.
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(seccomp(svc, &caps)?);
    }
    Ok(spec)
}

/// Keys of the container's annotations that `stack` sets (every other key is a label).
pub const OWN_ANNOTATIONS: [&str; 4] = [
    "stack.stack",
    "stack.container",
    "stack.service",
    EXPOSED_PORTS,
];

/// Annotation listing the container's exposed ports, `80/tcp,53/udp`.
pub const EXPOSED_PORTS: &str = "stack.exposed_ports";

/// The image's labels under the service's (which win), then what `stack` records:
/// the names, and the exposed ports (the image's `ExposedPorts`, `expose` and the
/// targets of `ports`, as Docker lists them).
fn annotations(svc: &Service, inp: &Inputs) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = inp
        .image
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    out.extend(svc.labels.clone());
    out.insert("stack.stack".into(), inp.stack.into());
    out.insert("stack.container".into(), inp.container.into());
    out.insert("stack.service".into(), svc.name.clone());
    let ports = exposed_ports(svc, inp.image);
    if !ports.is_empty() {
        out.insert(EXPOSED_PORTS.into(), ports.join(","));
    }
    out
}

/// `port/proto` strings, sorted by port.
fn exposed_ports(svc: &Service, image: Option<&ImageConfig>) -> Vec<String> {
    let mut ports: std::collections::BTreeSet<(u16, String)> = image
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((port.parse().ok()?, proto.to_lowercase()))
        })
        .collect();
    let proto = |p: crate::model::Protocol| {
        match p {
            crate::model::Protocol::Tcp => "tcp",
            crate::model::Protocol::Udp => "udp",
            crate::model::Protocol::Sctp => "sctp",
        }
        .to_string()
    };
    ports.extend(svc.expose.iter().map(|e| (e.port, proto(e.protocol))));
    ports.extend(svc.ports.iter().map(|p| (p.target, proto(p.protocol))));
    ports
        .into_iter()
        .map(|(port, proto)| format!("{port}/{proto}"))
        .collect()
}

/// `null`s stand for "not set": drop them so optional OCI fields stay absent.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Docker's default profile (widened for the granted capabilities), a profile
/// file from `security_opt: seccomp=PATH`, or none for `seccomp=unconfined` and
/// privileged containers.
fn seccomp(svc: &Service, caps: &[String]) -> Result<Option<LinuxSeccomp>, Error> {
    let invalid = |source| Error::Invalid {
        service: svc.name.clone(),
        source,
    };
    match &svc.security.seccomp {
        _ if svc.privileged => Ok(None),
        Some(Seccomp::Unconfined) => Ok(None),
        None => Ok(Some(crate::runtime::default_seccomp_profile(caps))),
        Some(Seccomp::Profile(path)) => {
            let text = std::fs::read(path).map_err(|source| Error::File {
                service: svc.name.clone(),
                path: path.clone(),
                source,
            })?;
            serde_json::from_slice(&text).map(Some).map_err(invalid)
        }
    }
}

/// Compose's rule: a service `entrypoint` replaces the image's and drops its Cmd;
/// a service `command` replaces the image's Cmd.
fn args(svc: &Service, image: Option<&ImageConfig>) -> Result<Vec<String>, Error> {
    let (entry, cmd) = match &svc.entrypoint {
        Some(e) => (e.clone(), svc.command.clone().unwrap_or_default()),
        None => (
            image
                .and_then(|c| c.entrypoint().clone())
                .unwrap_or_default(),
            svc.command
                .clone()
                .or_else(|| image.and_then(|c| c.cmd().clone()))
                .unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entry.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::NoCommand {
            service: svc.name.clone(),
        });
    }
    Ok(args)
}

/// `init: true`: stack-init runs as PID 1 and starts the command.
fn with_init(svc: &Service, args: Vec<String>) -> Vec<String> {
    if !svc.init {
        return args;
    }
    let mut out = vec![
        crate::supervisor::helpers::CONTAINER_PATH.to_string(),
        "--".to_string(),
    ];
    out.extend(args);
    out
}

fn env(svc: &Service, image: Option<&ImageConfig>, hostname: &str) -> Vec<String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    vars.insert("HOSTNAME".into(), hostname.into());
    for kv in image.and_then(|c| c.env().clone()).unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            vars.insert(k.into(), v.into());
        }
    }
    vars.extend(svc.environment.clone());
    vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The service's `user` (else the image's) resolved in the container's root:
/// uid, gid and the `group_add` gids. The uid and gid also own the bind
/// sources and secret files the container gets.
pub fn user(
    svc: &Service,
    rootfs: &Path,
    image: Option<&ImageConfig>,
) -> Result<(u32, u32, Vec<u32>), Error> {
    let spec = svc
        .user
        .clone()
        .or_else(|| image.and_then(|c| c.user().clone()))
        .unwrap_or_default();
    resolve_user(&spec, &svc.group_add, rootfs, &svc.name)
}

/// `uid[:gid]` or names looked up in the root's /etc/passwd and /etc/group (as
/// `user:` and `exec -u` take them): uid, gid and the `group_add` gids.
pub fn resolve_user(
    spec: &str,
    group_add: &[String],
    rootfs: &Path,
    service: &str,
) -> Result<(u32, u32, Vec<u32>), Error> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (spec.to_string(), None),
    };
    let unknown = |user: &str, file| Error::UnknownUser {
        service: service.to_string(),
        user: user.into(),
        file,
    };
    let passwd = read_db(rootfs, "etc/passwd");
    let (uid, primary) = if u.is_empty() {
        (0, 0)
    } else if let Ok(uid) = u.parse::<u32>() {
        (
            uid,
            lookup(&passwd, 2, |f| f[2] == u)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(0),
        )
    } else {
        let f = lookup(&passwd, 3, |f| f[0] == u).ok_or_else(|| unknown(&u, "/etc/passwd"))?;
        (
            f[2].parse().map_err(|_| unknown(&u, "/etc/passwd"))?,
            f[3].parse().unwrap_or(0),
        )
    };
    let group = read_db(rootfs, "etc/group");
    let gid_of = |g: &str| -> Result<u32, Error> {
        g.parse::<u32>().or_else(|_| {
            lookup(&group, 2, |f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| unknown(g, "/etc/group"))
        })
    };
    let gid = match g {
        Some(g) => gid_of(&g)?,
        None => primary,
    };
    let extra = group_add
        .iter()
        .map(|g| gid_of(g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((uid, gid, extra))
}

/// Read a colon-separated database of the image. The path is resolved inside the
/// rootfs: a symlink out of it reads as empty rather than a host file.
fn read_db(rootfs: &Path, rel: &str) -> String {
    let path = rootfs.join(rel);
    match (path.canonicalize(), rootfs.canonicalize()) {
        (Ok(real), Ok(root)) if real.starts_with(&root) => {
            std::fs::read_to_string(real).unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn lookup(db: &str, min_fields: usize, pred: impl Fn(&[&str]) -> bool) -> Option<Vec<&str>> {
    db.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > min_fields && pred(f))
}

fn capabilities(svc: &Service) -> Result<Vec<String>, Error> {
    if svc.privileged {
        return Ok(crate::runtime::capability_names());
    }
    let norm = |c: &String| -> Result<String, Error> {
        let up = c.to_uppercase();
        let name = if up.starts_with("CAP_") || up == "ALL" {
            up
        } else {
            format!("CAP_{up}")
        };
        if name == "ALL" || crate::runtime::CAPABILITY_NAMES.contains(&&name["CAP_".len()..]) {
            Ok(name)
        } else {
            Err(Error::Capability {
                service: svc.name.clone(),
                cap: c.clone(),
            })
        }
    };
    let add = svc
        .cap_add
        .iter()
        .map(norm)
        .collect::<Result<Vec<_>, _>>()?;
    let drop = svc
        .cap_drop
        .iter()
        .map(norm)
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        vec![]
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if add.iter().any(|c| c == "ALL") {
        caps = crate::runtime::capability_names();
    } else {
        caps.extend(add);
    }
    caps.retain(|c| !drop.contains(c));
    caps.sort();
    caps.dedup();
    Ok(caps)
}

fn default_mounts(svc: &Service) -> Vec<Value> {
    let shm = format!("size={}k", svc.shm_size.unwrap_or(64 * 1024 * 1024) / 1024);
    let sys_opts = if svc.privileged {
        vec!["nosuid", "noexec", "nodev"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", shm]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ]
}

/// Limits of a container or a stack slice, in OCI form.
pub fn resources(r: &Resources, owner: &str) -> Result<Value, Error> {
    let period = r.cpu_period.unwrap_or(100_000);
    let quota = r
        .cpu_quota
        .or_else(|| r.cpus.map(|c| (c * period as f64).round() as i64));
    let dev = |path: &Path| -> Result<(i64, i64), Error> {
        let meta = std::fs::metadata(path).map_err(|source| Error::File {
            service: owner.into(),
            path: path.into(),
            source,
        })?;
        let rdev = meta.rdev();
        Ok((
            nix::sys::stat::major(rdev) as i64,
            nix::sys::stat::minor(rdev) as i64,
        ))
    };
    let rates = |list: &[crate::model::DeviceRate]| -> Result<Vec<Value>, Error> {
        list.iter()
            .map(|d| dev(&d.path).map(|(ma, mi)| json!({"major": ma, "minor": mi, "rate": d.rate})))
            .collect()
    };
    let b = &r.blkio;
    let weights = b
        .weight_device
        .iter()
        .map(|d| dev(&d.path).map(|(ma, mi)| json!({"major": ma, "minor": mi, "weight": d.weight})))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "memory": {
            "limit": r.memory,
            "reservation": r.memory_reservation,
            "swap": r.memory_swap,
            "swappiness": r.memory_swappiness,
            "disableOOMKiller": r.oom_kill_disable.then_some(true),
        },
        "cpu": {
            "shares": r.cpu_shares,
            "quota": quota,
            "period": quota.map(|_| period),
            "cpus": r.cpuset,
        },
        "pids": r.pids.map(|limit| json!({"limit": limit})),
        "blockIO": {
            "weight": b.weight,
            "weightDevice": weights,
            "throttleReadBpsDevice": rates(&b.device_read_bps)?,
            "throttleWriteBpsDevice": rates(&b.device_write_bps)?,
            "throttleReadIOPSDevice": rates(&b.device_read_iops)?,
            "throttleWriteIOPSDevice": rates(&b.device_write_iops)?,
        },
    }))
}

/// The container's limits plus its device allowlist (Docker's defaults and the
/// service's `devices`); privileged containers may use every device.
fn container_resources(svc: &Service) -> Result<Value, Error> {
    let mut res = resources(&svc.resources, &svc.name)?;
    let mut rules = vec![json!({"allow": svc.privileged, "access": "rwm"})];
    if !svc.privileged {
        for (kind, major, minor, access) in DEFAULT_DEVICE_RULES {
            rules.push(json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}));
        }
        for d in devices(svc)? {
            let access = svc
                .devices
                .iter()
                .find(|x| Some(x.container.as_path()) == d["path"].as_str().map(Path::new))
                .map_or("rwm".to_string(), |x| x.permissions.clone());
            rules.push(json!({"allow": true, "type": d["type"], "major": d["major"], "minor": d["minor"], "access": access}));
        }
    }
    res["devices"] = Value::Array(rules);
    Ok(res)
}

/// Docker's default device cgroup rules: mknod of anything, and the standard
/// character devices (null, zero, full, random, urandom, tty, console, ptmx, pts).
const DEFAULT_DEVICE_RULES: [(&str, Option<i64>, Option<i64>, &str); 11] = [
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", Some(1), Some(3), "rwm"),
    ("c", Some(1), Some(5), "rwm"),
    ("c", Some(1), Some(7), "rwm"),
    ("c", Some(1), Some(8), "rwm"),
    ("c", Some(1), Some(9), "rwm"),
    ("c", Some(5), Some(0), "rwm"),
    ("c", Some(5), Some(1), "rwm"),
    ("c", Some(5), Some(2), "rwm"),
    ("c", Some(136), None, "rwm"),
];

fn devices(svc: &Service) -> Result<Vec<Value>, Error> {
    svc.devices
        .iter()
        .map(|d| {
            let meta = std::fs::metadata(&d.host).map_err(|source| Error::File {
                service: svc.name.clone(),
                path: d.host.clone(),
                source,
            })?;
            let kind = if std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
                "b"
            } else {
                "c"
            };
            let rdev = meta.rdev();
            Ok(json!({
                "path": d.container, "type": kind,
                "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
                "fileMode": meta.mode() & 0o777, "uid": 0, "gid": 0,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testing::service;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.set_entrypoint(Some(entrypoint.iter().map(|s| s.to_string()).collect()));
        c.set_cmd(Some(cmd.iter().map(|s| s.to_string()).collect()));
        c
    }

    #[test]
    fn command_and_entrypoint_follow_compose() {
        let img = image(&["/entry"], &["default", "args"]);
        assert_eq!(
            args(&service(""), Some(&img)).unwrap(),
            ["/entry", "default", "args"]
        );
        assert_eq!(
            args(&service("command = [\"x\"]"), Some(&img)).unwrap(),
            ["/entry", "x"]
        );
        assert_eq!(
            args(&service("entrypoint = [\"/other\"]"), Some(&img)).unwrap(),
            ["/other"],
            "a new entrypoint drops the image's Cmd"
        );
        assert!(matches!(
            args(&service(""), None),
            Err(Error::NoCommand { .. })
        ));
    }

    #[test]
    fn labels_merge_over_the_images_and_exposed_ports_are_recorded() {
        let svc = service(
            "labels = { tier = \"web\", \"stack.stack\" = \"spoof\" }\nexpose = [\"9000\"]\nports = [\"8080\", \"127.0.0.1:53:53/udp\"]",
        );
        let mut img = ImageConfig::default();
        img.set_labels(Some(
            [("tier", "base"), ("vendor", "acme")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        img.set_exposed_ports(Some(vec!["80/tcp".into(), "8080".into()]));
        let root = tempfile::tempdir().unwrap();
        let inp = Inputs {
            stack: "t",
            container: "t-s-1",
            rootfs: root.path(),
            image: Some(&img),
            cgroups_path: String::new(),
            netns: NetNs::New,
            mounts: vec![],
            user: (0, 0, vec![]),
        };
        let a = annotations(&svc, &inp);
        assert_eq!(a["tier"], "web", "the service's label wins");
        assert_eq!(a["vendor"], "acme");
        assert_eq!(
            a["stack.stack"], "t",
            "a label cannot spoof stack's own keys"
        );
        assert_eq!(a[EXPOSED_PORTS], "53/udp,80/tcp,8080/tcp,9000/tcp");
    }

    #[test]
    fn capabilities_start_from_dockers_set() {
        let caps = capabilities(&service(
            "cap_add = [\"NET_ADMIN\"]\ncap_drop = [\"CAP_MKNOD\"]",
        ))
        .unwrap();
        assert!(
            caps.contains(&"CAP_NET_ADMIN".to_string()) && caps.contains(&"CAP_CHOWN".to_string())
        );
        assert!(
            !caps.contains(&"CAP_MKNOD".to_string())
                && !caps.contains(&"CAP_SYS_ADMIN".to_string())
        );
        let none = capabilities(&service("cap_drop = [\"ALL\"]\ncap_add = [\"KILL\"]")).unwrap();
        assert_eq!(none, ["CAP_KILL"]);
        assert_eq!(
            capabilities(&service("privileged = true")).unwrap().len(),
            crate::runtime::CAPABILITY_NAMES.len()
        );
    }

    #[test]
    fn users_are_looked_up_in_the_image_and_never_outside_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "app:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "staff:x:50:\n").unwrap();
        let inputs = |svc: &Service| user(svc, root.path(), None);
        assert_eq!(
            inputs(&service("user = \"app\"")).unwrap(),
            (1000, 1001, vec![])
        );
        assert_eq!(
            inputs(&service("user = \"app:staff\"\ngroup_add = [\"7\"]")).unwrap(),
            (1000, 50, vec![7])
        );
        assert!(matches!(
            inputs(&service("user = \"nobody\"")),
            Err(Error::UnknownUser { .. })
        ));
        std::fs::remove_file(root.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("etc/passwd")).unwrap();
        assert!(
            inputs(&service("user = \"root\"")).is_err(),
            "the host's /etc/passwd is not read through a symlink"
        );
    }
}
