//! The normalized desired state of a stack: what `spec` produces and the
//! reconciler diffs. Every value is resolved and defaulted: paths are
//! absolute, image references fully qualified, durations and sizes parsed,
//! short syntaxes expanded. Nothing here refers back to the file's syntax.
//!
//! Each service has a versioned config hash ([`Service::config_hash`]) that
//! changes exactly when its containers must be recreated.
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod hash;
pub mod log_tag;
mod text;

pub use text::split_layout_tag;

pub use hash::{EXCLUDED as NOT_HASHED, HASH_VERSION};

/// One stack: the services, networks, volumes, secrets and configs of one
/// project, after interpolation, merging and profile selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    pub name: String,
    /// Directory of the first stack file (relative paths resolve against it).
    pub project_dir: PathBuf,
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
    /// Limits for the whole stack's cgroup slice.
    pub resources: Resources,
    /// The daemon follows the files (`watch = true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub watch: bool,
}

/// Where a service's root filesystem comes from. Printed and stored as the
/// text a user would write (`docker.io/library/busybox:latest`,
/// `oci:/abs/path:latest`, `oci-archive:/abs/x.tar`, `rootfs:/abs/dir`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ImageSource {
    /// A registry reference, fully resolved as Docker does:
    /// `docker.io/library/busybox:latest`, or `...@sha256:<hex>`.
    Registry(String),
    /// `oci:PATH[:TAG]`: an OCI image layout directory.
    OciLayout { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH`: a tar of an OCI image layout.
    OciArchive(PathBuf),
    /// `docker-archive:PATH`: a `docker save` tarball.
    DockerArchive(PathBuf),
    /// `rootfs = "PATH"`: an unpacked root directory, used as is.
    Rootfs(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub image: ImageSource,
    /// `None` keeps the image's entrypoint; string forms are already
    /// wrapped as `["/bin/sh", "-c", s]` as Compose does.
    pub entrypoint: Option<Vec<String>>,
    /// `None` keeps the image's command.
    pub command: Option<Vec<String>>,
    /// `environment` with the contents of every `env_file` merged in
    /// (`environment` wins). Variables given without a value and unset in
    /// the environment are left out, as Compose does.
    pub environment: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub group_add: Vec<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub restart: RestartPolicy,
    /// `restart_backoff` (a `stack` extension); `None` = the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_backoff: Option<RestartBackoff>,
    /// Number of containers (`deploy.replicas` or `scale`; default 1).
    pub replicas: u32,
    /// `deploy.update_config`: how a changed service replaces its containers.
    #[serde(default, skip_serializing_if = "UpdateConfig::is_default")]
    pub update_config: UpdateConfig,
    pub resources: Resources,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub oom_score_adj: Option<i32>,
    /// Normalized to `CAP_*` upper case; `ALL` stays `ALL`.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub security: SecurityOpts,
    pub userns_mode: Option<String>,
    pub init: bool,
    /// Normalized to `SIG*` upper case (e.g. `SIGTERM`); `None` = image default.
    pub stop_signal: Option<String>,
    /// Default 10s.
    #[serde(with = "duration_text")]
    pub stop_grace_period: Duration,
    pub depends_on: BTreeMap<String, Dependency>,
    /// The service's own check (its `healthcheck.test`), with defaults applied.
    pub healthcheck: Option<Healthcheck>,
    /// Without a `test` of its own: what becomes of the image's HEALTHCHECK.
    #[serde(default, skip_serializing_if = "ImageHealthcheck::is_inherit")]
    pub image_healthcheck: ImageHealthcheck,
    /// `healthcheck.on_unhealthy` (a `stack` extension; applies to the
    /// image's check too).
    #[serde(default, skip_serializing_if = "OnUnhealthy::is_none")]
    pub on_unhealthy: OnUnhealthy,
    pub tty: bool,
    pub stdin_open: bool,
    pub network_mode: NetworkMode,
    /// Networks joined (keys of `Stack::networks`), when `network_mode` is
    /// `Bridge`. A service that names none joins `default`.
    pub networks: BTreeMap<String, ServiceNetwork>,
    pub ports: Vec<Port>,
    pub expose: Vec<ExposedPort>,
    /// Binds, named/anonymous volumes and tmpfs mounts (`tmpfs:` folded in),
    /// sorted by target.
    pub volumes: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub logging: Logging,
    pub profiles: Vec<String>,
    pub extra_hosts: Vec<ExtraHost>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opt: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    pub shm_size: Option<u64>,
    pub ipc: Option<String>,
    pub pid: Option<String>,
    pub uts: Option<String>,
    pub cgroup_parent: Option<String>,
    /// Explicit container name (only valid with one replica).
    pub container_name: Option<String>,
    pub platform: Option<String>,
    pub pull_policy: PullPolicy,
    pub secrets: Vec<FileMount>,
    pub configs: Vec<FileMount>,
}

/// Printed as Compose writes it: `no`, `always`, `on-failure[:N]`,
/// `unless-stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum RestartPolicy {
    No,
    Always,
    OnFailure { max_retries: Option<u32> },
    UnlessStopped,
}

/// `deploy.update_config` as far as one host gives it a meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateConfig {
    pub order: UpdateOrder,
    /// What a start-first update does when the new container does not get
    /// ready (healthy, or running without a healthcheck) in time.
    pub failure_action: FailureAction,
    /// How long to wait for the new container to get ready; `None`: as long
    /// as its healthcheck may take to succeed (start period, then every try).
    #[serde(
        default,
        with = "opt_duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub monitor: Option<Duration>,
}

impl UpdateConfig {
    pub fn is_default(&self) -> bool {
        *self == UpdateConfig::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop the old container, then start the new one (Compose's recreate).
    #[default]
    StopFirst,
    /// Start the new one, wait until it is ready, move the published ports
    /// to it, then stop the old one: no request is lost.
    StartFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureAction {
    /// Remove the new container and keep the old one serving (`ps` shows it
    /// as rolled-back).
    #[default]
    Rollback,
    /// Switch to the new container anyway.
    Continue,
}

/// Resource limits of a container, or of the whole stack's slice.
/// Compose's `mem_limit`, `cpus`, `pids_limit` ... and
/// `deploy.resources.limits/reservations` are folded into one value here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<u64>,
    pub memory_reservation: Option<u64>,
    /// Bytes of memory + swap; -1 = unlimited swap.
    pub memory_swap: Option<i64>,
    pub memory_swappiness: Option<u8>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset: Option<String>,
    pub pids: Option<i64>,
    pub blkio: Blkio,
    pub oom_kill_disable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Blkio {
    pub weight: Option<u16>,
    pub weight_device: Vec<DeviceWeight>,
    pub device_read_bps: Vec<DeviceRate>,
    pub device_write_bps: Vec<DeviceRate>,
    pub device_read_iops: Vec<DeviceRate>,
    pub device_write_iops: Vec<DeviceRate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceWeight {
    pub path: PathBuf,
    pub weight: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRate {
    pub path: PathBuf,
    /// Bytes or operations per second.
    pub rate: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecurityOpts {
    /// `None` = the default profile.
    pub seccomp: Option<Seccomp>,
    pub no_new_privileges: bool,
    /// AppArmor profile name; `None` = default.
    pub apparmor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    Unconfined,
    /// A JSON profile, absolute path.
    Profile(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub condition: DependencyCondition,
    /// Restart this service when the dependency is restarted by `stack`.
    pub restart: bool,
    /// When false, a missing or disabled dependency is not an error.
    pub required: bool,
}

/// A resolved healthcheck (absent when disabled or `NONE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// argv to exec in the container: `CMD` as given, `CMD-SHELL` (or a
    /// plain string) as `["/bin/sh", "-c", s]`.
    pub test: Vec<String>,
    #[serde(with = "duration_text")]
    pub interval: Duration,
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    pub retries: u32,
    #[serde(with = "duration_text")]
    pub start_period: Duration,
    #[serde(with = "duration_text")]
    pub start_interval: Duration,
}

impl Healthcheck {
    /// Docker's defaults, for whatever neither the file nor the image sets.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_RETRIES: u32 = 3;
    pub const DEFAULT_START_PERIOD: Duration = Duration::ZERO;
    pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
}

/// What the supervisor does with a container that turned unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnhealthy {
    #[default]
    None,
    /// Stop it and start it again after the restart backoff.
    Restart,
    /// Stop it for good (until started again).
    Stop,
}

impl OnUnhealthy {
    pub fn is_none(&self) -> bool {
        *self == OnUnhealthy::None
    }
}

/// Delays between restarts: `initial`, multiplied by `multiplier` after each
/// restart up to `max`; a run of at least `reset_after` starts over.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RestartBackoff {
    #[serde(with = "duration_text")]
    pub initial: Duration,
    #[serde(with = "duration_text")]
    pub max: Duration,
    pub multiplier: f64,
    #[serde(with = "duration_text")]
    pub reset_after: Duration,
}

/// A service's say over the image's HEALTHCHECK when it has no `test` of its own.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageHealthcheck {
    /// Use it as the image defines it (no `healthcheck` in the file).
    #[default]
    Inherit,
    /// `disable: true` or `test: ["NONE"]`: no healthcheck, whatever the image says.
    Disabled,
    /// Timings without a `test`: the image's test, run with these.
    Retimed(HealthcheckTimings),
}

impl ImageHealthcheck {
    pub fn is_inherit(&self) -> bool {
        *self == ImageHealthcheck::Inherit
    }
}

/// The timings a file gave; `None` = the image's, else Docker's default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthcheckTimings {
    #[serde(default, with = "opt_duration_text")]
    pub interval: Option<Duration>,
    #[serde(default, with = "opt_duration_text")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default, with = "opt_duration_text")]
    pub start_period: Option<Duration>,
    #[serde(default, with = "opt_duration_text")]
    pub start_interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// Join the networks in `Service::networks` (Compose's default).
    Bridge,
    Host,
    None,
    /// Share the network namespace of another service's first container.
    Service(String),
    /// Share the network namespace of a container of this state root, by
    /// name (`container:NAME`, e.g. another stack's `app-web-1`).
    Container(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceNetwork {
    /// Extra DNS names on this network (the service name always resolves).
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
    pub ipv6_address: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// One published port; ranges are expanded to one entry per port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// `None` = all addresses.
    pub host_ip: Option<IpAddr>,
    /// `None` = an ephemeral host port.
    pub published: Option<u16>,
    pub target: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExposedPort {
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum MountKind {
    Bind {
        /// Absolute host path.
        source: PathBuf,
        create_host_path: bool,
        propagation: Option<String>,
    },
    Volume {
        /// Key of `Stack::volumes`; `None` = an anonymous volume.
        source: Option<String>,
        nocopy: bool,
        subpath: Option<String>,
    },
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    pub driver: LogDriver,
    /// `max-size` (bytes) and `max-file`; other options are rejected.
    pub max_size: Option<u64>,
    pub max_file: Option<u32>,
    /// `tag`: the log tag template ([`log_tag`]), checked at load; None =
    /// Docker's default, the 12-digit container id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    #[default]
    JsonFile,
    Local,
    None,
    Journald,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExtraHost {
    pub host: String,
    pub ip: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub host: PathBuf,
    pub container: PathBuf,
    /// Some of `rwm`.
    pub permissions: String,
}

/// When `up` pulls a registry image (Compose's `pull_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Only when the store does not have it (the default; `if_not_present`).
    Missing,
    Always,
    /// Never: a missing image is an error.
    Never,
    /// `daily`, `weekly`, `every_<duration>`: when the last pull of the reference
    /// is older than this (or it was never pulled).
    Every(#[serde(with = "duration_text")] Duration),
}

/// A secret or config mounted into a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMount {
    /// Key of `Stack::secrets` / `Stack::configs`.
    pub source: String,
    /// Absolute path in the container (`/run/secrets/<source>` for secrets,
    /// `/<source>` for configs, when not given).
    pub target: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

/// A top-level secret or config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileObject {
    pub name: String,
    pub source: FileSource,
    /// sha256 of the content, so that an edit recreates the services using it.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// Absolute path of a host file.
    File(PathBuf),
    /// The value of an environment variable at load time.
    Environment(String),
    /// Inline content (configs only).
    Content(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Name on the host (default `<stack>_<key>`); bridges derive from it.
    pub name: String,
    /// Created elsewhere; `stack` attaches but never creates or removes it.
    pub external: bool,
    pub internal: bool,
    pub enable_ipv6: bool,
    pub ipam: Vec<IpamConfig>,
    pub labels: BTreeMap<String, String>,
    pub mtu: Option<u32>,
    /// Explicit bridge interface name (`com.docker.network.bridge.name`).
    pub bridge_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfig {
    /// CIDR, e.g. `10.89.0.0/24`.
    pub subnet: String,
    pub ip_range: Option<String>,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Name on the host (default `<stack>_<key>`).
    pub name: String,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
    pub driver: VolumeDriver,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum VolumeDriver {
    /// A directory under the state root.
    Local,
    /// `driver_opts: {type: none, o: bind, device: PATH}`: a host directory.
    Bind { device: PathBuf },
    /// `driver_opts: {type: tmpfs, device: tmpfs, o: size=...}`.
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
}

impl Service {
    /// `secrets` or `configs` by key name.
    pub fn secrets_or_configs(&self, key: &str) -> &[FileMount] {
        if key == "secrets" {
            &self.secrets
        } else {
            &self.configs
        }
    }
}

/// `Option<Duration>` as Go duration text, or null.
pub mod opt_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| crate::spec::units::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `Duration` as Go-style text (`1m30s`) in `stack config` output and state.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::spec::units::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::spec::units::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
