//! The stack file as written: one serde + schemars type per table, with the
//! Compose key names. `schema/stack.schema.json` is generated from these
//! types, and the loader reads each service/network/volume into them
//! separately so that errors in one do not hide errors in another.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::shapes::{Command, KeyValues, ListOrMap, OneOrMany, Scalar, ShortOrLong};

/// A stack file (TOML, YAML, or a Compose file).
// Only the schema is generated from this type; the loader reads each table
// on its own.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "stack file", extend("patternProperties" = {"^x-": {}}))]
pub struct RawFile {
    /// Compose's `version`: accepted and ignored.
    pub version: Option<Scalar>,
    /// Stack (project) name; default: the directory name.
    pub name: Option<String>,
    pub services: Option<BTreeMap<String, RawService>>,
    pub networks: Option<BTreeMap<String, Option<RawNetwork>>>,
    pub volumes: Option<BTreeMap<String, Option<RawVolume>>>,
    pub secrets: Option<BTreeMap<String, RawFileObject>>,
    pub configs: Option<BTreeMap<String, RawFileObject>>,
    /// Limits for the whole stack's cgroup slice.
    pub resources: Option<RawResources>,
    /// The daemon reconciles the stack whenever its files (and their .env,
    /// env_file, secret and config files) change (a `stack` extension).
    pub watch: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("patternProperties" = {"^x-": {}}))]
pub struct RawService {
    /// Registry reference, or `oci:PATH[:TAG]`, `oci-archive:PATH`, `docker-archive:PATH`.
    pub image: Option<String>,
    /// An unpacked root filesystem directory (instead of `image`).
    pub rootfs: Option<String>,
    pub command: Option<Command>,
    pub entrypoint: Option<Command>,
    pub environment: Option<KeyValues>,
    pub env_file: Option<ShortOrLongList<RawEnvFile>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub group_add: Option<Vec<String>>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub ports: Option<Vec<ShortOrLong<RawPort>>>,
    pub expose: Option<Vec<Scalar>>,
    pub volumes: Option<Vec<ShortOrLong<RawMount>>>,
    pub tmpfs: Option<OneOrMany>,
    pub networks: Option<ListOrMap<RawServiceNetwork>>,
    pub network_mode: Option<String>,
    pub depends_on: Option<ListOrMap<RawDependency>>,
    pub healthcheck: Option<RawHealthcheck>,
    pub restart: Option<String>,
    /// Delays between restarts (a `stack` extension): `initial` (default
    /// 100ms), `max` (30s), `multiplier` (2), `reset_after` (10s: a run this
    /// long resets the delay to `initial`).
    pub restart_backoff: Option<RawBackoff>,
    pub deploy: Option<RawDeploy>,
    pub scale: Option<u32>,
    pub mem_limit: Option<Scalar>,
    pub mem_reservation: Option<Scalar>,
    pub memswap_limit: Option<Scalar>,
    pub mem_swappiness: Option<u8>,
    pub cpus: Option<Scalar>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_config: Option<RawBlkio>,
    pub ulimits: Option<BTreeMap<String, ShortOrLong<RawUlimit>>>,
    pub oom_score_adj: Option<i32>,
    pub oom_kill_disable: Option<bool>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub privileged: Option<bool>,
    pub read_only: Option<bool>,
    pub security_opt: Option<Vec<String>>,
    pub userns_mode: Option<String>,
    pub init: Option<bool>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<Scalar>,
    pub labels: Option<KeyValues>,
    pub logging: Option<RawLogging>,
    pub profiles: Option<Vec<String>>,
    pub extra_hosts: Option<KeyValues>,
    pub dns: Option<OneOrMany>,
    pub dns_search: Option<OneOrMany>,
    pub dns_opt: Option<Vec<String>>,
    pub sysctls: Option<KeyValues>,
    pub devices: Option<Vec<ShortOrLong<RawDevice>>>,
    pub shm_size: Option<Scalar>,
    pub tty: Option<bool>,
    pub stdin_open: Option<bool>,
    pub ipc: Option<String>,
    pub pid: Option<String>,
    pub uts: Option<String>,
    pub cgroup_parent: Option<String>,
    pub container_name: Option<String>,
    /// `os/arch[/variant]` picked from a multi-platform image (registry or OCI layout).
    pub platform: Option<String>,
    /// missing (default), always, never, daily, weekly or every_<duration>; `build` is refused.
    pub pull_policy: Option<String>,
    pub secrets: Option<Vec<ShortOrLong<RawFileMount>>>,
    pub configs: Option<Vec<ShortOrLong<RawFileMount>>>,
}

/// `env_file`: a path, or a list of paths / `{path, required}` tables.
pub type ShortOrLongList<L> = super::shapes::OneOrManyOf<L>;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvFile {
    pub path: String,
    /// Default true: a missing file is an error.
    pub required: Option<bool>,
    /// Only `raw` is not supported; default `dotenv` syntax.
    pub format: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPort {
    pub target: Scalar,
    pub published: Option<Scalar>,
    pub host_ip: Option<String>,
    /// tcp (default), udp or sctp.
    pub protocol: Option<String>,
    /// Only `host` is meaningful on one machine (`ingress` is accepted as host).
    pub mode: Option<String>,
    #[allow(dead_code, reason = "accepted and ignored: compat::IGNORED")]
    pub name: Option<String>,
    #[allow(dead_code, reason = "accepted and ignored: compat::IGNORED")]
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMount {
    /// bind, volume or tmpfs.
    #[serde(rename = "type")]
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    pub read_only: Option<bool>,
    pub bind: Option<RawBindOptions>,
    pub volume: Option<RawVolumeOptions>,
    pub tmpfs: Option<RawTmpfsOptions>,
    /// Accepted and ignored (a macOS Docker Desktop setting).
    #[allow(dead_code, reason = "accepted and ignored: compat::IGNORED")]
    pub consistency: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBindOptions {
    pub propagation: Option<String>,
    pub create_host_path: Option<bool>,
    /// `z` or `Z` (SELinux relabeling): accepted with a note where SELinux is not enabled, refused where it is.
    pub selinux: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVolumeOptions {
    pub nocopy: Option<bool>,
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTmpfsOptions {
    pub size: Option<Scalar>,
    /// Octal file mode, e.g. `1777` (YAML `0o1777`, TOML `"1777"`).
    pub mode: Option<Scalar>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServiceNetwork {
    pub aliases: Option<Vec<String>>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDependency {
    /// service_started (default), service_healthy, service_completed_successfully.
    pub condition: Option<String>,
    pub restart: Option<bool>,
    /// Default true.
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]`, `["NONE"]`, or a shell string.
    pub test: Option<Command>,
    pub interval: Option<Scalar>,
    pub timeout: Option<Scalar>,
    pub retries: Option<u32>,
    pub start_period: Option<Scalar>,
    pub start_interval: Option<Scalar>,
    pub disable: Option<bool>,
    /// What the supervisor does once the container is unhealthy (a `stack`
    /// extension): `restart` it (with the restart backoff), `stop` it, or
    /// `none` (the default, as Compose).
    pub on_unhealthy: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    pub initial: Option<Scalar>,
    pub max: Option<Scalar>,
    pub multiplier: Option<f64>,
    pub reset_after: Option<Scalar>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDeploy {
    pub replicas: Option<u32>,
    pub resources: Option<RawDeployResources>,
    pub restart_policy: Option<RawRestartPolicy>,
    #[allow(dead_code, reason = "accepted and ignored: compat::IGNORED")]
    pub labels: Option<KeyValues>,
    /// Only `replicated` (the default) is meaningful on one host.
    pub mode: Option<String>,
    pub update_config: Option<RawUpdateConfig>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpdateConfig {
    /// `stop-first` (default) or `start-first`.
    pub order: Option<String>,
    /// `rollback` (default) or `continue`, for start-first updates.
    pub failure_action: Option<String>,
    /// How long the new container of a start-first update, or a new replica
    /// next to serving ones, may take to get ready (default: its
    /// healthcheck's start period and tries; 30 s without a healthcheck).
    pub monitor: Option<Scalar>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDeployResources {
    pub limits: Option<RawLimits>,
    pub reservations: Option<RawReservations>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub cpus: Option<Scalar>,
    pub memory: Option<Scalar>,
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReservations {
    pub memory: Option<Scalar>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRestartPolicy {
    /// none, on-failure or any (default).
    pub condition: Option<String>,
    pub max_attempts: Option<u32>,
    /// Accepted with a warning: `stack` restarts with exponential backoff.
    pub delay: Option<Scalar>,
    /// Accepted with a warning: `stack` restarts with exponential backoff.
    pub window: Option<Scalar>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBlkio {
    pub weight: Option<u16>,
    pub weight_device: Option<Vec<RawDeviceWeight>>,
    pub device_read_bps: Option<Vec<RawDeviceRate>>,
    pub device_write_bps: Option<Vec<RawDeviceRate>>,
    pub device_read_iops: Option<Vec<RawDeviceRate>>,
    pub device_write_iops: Option<Vec<RawDeviceRate>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDeviceWeight {
    pub path: String,
    pub weight: u16,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDeviceRate {
    pub path: String,
    /// Bytes (with unit, e.g. `10mb`) or operations per second.
    pub rate: Scalar,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUlimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    /// json-file (default), local, none or journald (Docker's journal fields;
    /// falls back to json-file without a journal).
    pub driver: Option<String>,
    /// `max-size`, `max-file` and `tag` (a template with Docker's markers
    /// `{{.ID}}`, `{{.FullID}}`, `{{.Name}}`, `{{.ImageName}}`, `{{.DaemonName}}`).
    pub options: Option<BTreeMap<String, Scalar>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub source: String,
    pub target: Option<String>,
    pub permissions: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFileMount {
    pub source: String,
    pub target: Option<String>,
    pub uid: Option<Scalar>,
    pub gid: Option<Scalar>,
    pub mode: Option<Scalar>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("patternProperties" = {"^x-": {}}))]
pub struct RawNetwork {
    /// Only `bridge` (the default).
    pub driver: Option<String>,
    /// `com.docker.network.driver.mtu`, `com.docker.network.bridge.name` (or `mtu`, `bridge`).
    pub driver_opts: Option<BTreeMap<String, Scalar>>,
    pub internal: Option<bool>,
    pub external: Option<bool>,
    pub name: Option<String>,
    pub ipam: Option<RawIpam>,
    pub enable_ipv6: Option<bool>,
    pub labels: Option<KeyValues>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIpam {
    /// Only `default`.
    pub driver: Option<String>,
    pub config: Option<Vec<RawIpamConfig>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIpamConfig {
    pub subnet: String,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("patternProperties" = {"^x-": {}}))]
pub struct RawVolume {
    /// Only `local` (the default).
    pub driver: Option<String>,
    /// `type=none,o=bind,device=PATH` or `type=tmpfs,device=tmpfs,o=size=...`.
    pub driver_opts: Option<BTreeMap<String, Scalar>>,
    pub external: Option<bool>,
    pub name: Option<String>,
    pub labels: Option<KeyValues>,
}

/// A top-level secret or config: exactly one of `file`, `environment`, `content`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("patternProperties" = {"^x-": {}}))]
pub struct RawFileObject {
    pub file: Option<String>,
    pub environment: Option<String>,
    /// Configs only.
    pub content: Option<String>,
    pub name: Option<String>,
}

/// The stack-wide `[resources]` table.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    pub memory: Option<Scalar>,
    pub memory_reservation: Option<Scalar>,
    pub memory_swap: Option<Scalar>,
    pub cpus: Option<Scalar>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset: Option<String>,
    pub pids: Option<i64>,
    pub blkio_config: Option<RawBlkio>,
}
