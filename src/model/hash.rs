//! The per-service config hash: what the reconciler compares to decide
//! whether a container must be recreated.
//!
//! Guarantees:
//! - Changes exactly when a container of the service would need recreating:
//!   every field that reaches the container is included, plus the content
//!   digests of the secrets/configs it mounts and the definitions of the
//!   networks and volumes it uses. Excluded: `replicas` (scaling adds or
//!   removes containers without recreating the others), `update_config` (how
//!   to replace them), `depends_on` (start order only), `profiles` and `pull_policy`.
//! - Independent of key order in the file (maps are sorted; the canonical
//!   JSON below sorts object keys).
//! - Stable across releases: fields whose value is null, false, an empty list
//!   or an empty map are left out, so adding a new optional field later does
//!   not change the hash of existing services. A change of the encoding bumps
//!   [`HASH_VERSION`]; the golden test in this file fails when it drifts.
use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{MountKind, Service, Stack};

/// Prefix of every hash; bump only with a migration note.
pub const HASH_VERSION: &str = "v1";

/// Service fields that never reach a container (and so never recreate one).
pub const EXCLUDED: [&str; 6] = [
    "name",
    "replicas",
    "update_config",
    "depends_on",
    "profiles",
    "pull_policy",
];

impl Service {
    /// `"v1:<sha256 hex>"` over the canonical form of everything that affects
    /// this service's containers.
    pub fn config_hash(&self, stack: &Stack) -> String {
        let mut input = BTreeMap::new();
        let mut service = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut service {
            for key in EXCLUDED {
                map.remove(key);
            }
        }
        input.insert("service", service);
        let networks: BTreeMap<&str, Value> = self
            .networks
            .keys()
            .filter_map(|n| stack.networks.get(n).map(|def| (n.as_str(), to_value(def))))
            .collect();
        input.insert("networks", to_value(&networks));
        let volumes: BTreeMap<&str, Value> = self
            .volumes
            .iter()
            .filter_map(|m| match &m.kind {
                MountKind::Volume {
                    source: Some(name), ..
                } => stack
                    .volumes
                    .get(name)
                    .map(|v| (name.as_str(), to_value(v))),
                _ => None,
            })
            .collect();
        input.insert("volumes", to_value(&volumes));
        let digests = |mounts: &[super::FileMount], defs: &BTreeMap<String, super::FileObject>| {
            mounts
                .iter()
                .filter_map(|m| {
                    defs.get(&m.source)
                        .map(|d| (m.source.clone(), Value::String(d.digest.clone())))
                })
                .collect::<BTreeMap<String, Value>>()
        };
        input.insert("secrets", to_value(&digests(&self.secrets, &stack.secrets)));
        input.insert("configs", to_value(&digests(&self.configs, &stack.configs)));
        let mut canonical = String::new();
        write_canonical(&prune(to_value(&input)), &mut canonical);
        let digest = Sha256::digest(canonical.as_bytes());
        format!("{HASH_VERSION}:{}", hex(&digest))
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Drops null / false / [] / {} members of objects, recursively.
fn prune(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// JSON with object keys sorted and no whitespace, whatever serde_json's
/// map ordering feature is.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::model::*;

    /// A service with most fields set, built by hand so that the golden hash
    /// does not depend on where the repository is checked out.
    fn sample() -> (Stack, Service) {
        let svc = Service {
            name: "web".into(),
            image: ImageSource::Registry("docker.io/library/busybox:1.36".into()),
            entrypoint: None,
            command: Some(vec!["httpd".into(), "-f".into()]),
            environment: BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]),
            working_dir: Some("/srv".into()),
            user: None,
            group_add: Vec::new(),
            hostname: None,
            domainname: None,
            restart: RestartPolicy::OnFailure {
                max_retries: Some(3),
            },
            restart_backoff: None,
            replicas: 1,
            update_config: Default::default(),
            resources: Resources {
                memory: Some(64 << 20),
                cpus: Some(0.5),
                pids: Some(20),
                ..Resources::default()
            },
            ulimits: BTreeMap::new(),
            oom_score_adj: None,
            cap_add: vec!["CAP_NET_ADMIN".into()],
            cap_drop: Vec::new(),
            privileged: false,
            read_only: true,
            security: SecurityOpts::default(),
            userns_mode: None,
            init: true,
            stop_signal: None,
            stop_grace_period: Duration::from_secs(10),
            depends_on: BTreeMap::new(),
            healthcheck: Some(Healthcheck {
                test: vec!["true".into()],
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(30),
                retries: 3,
                start_period: Duration::ZERO,
                start_interval: Duration::from_secs(5),
            }),
            image_healthcheck: ImageHealthcheck::Inherit,
            on_unhealthy: Default::default(),
            tty: false,
            stdin_open: false,
            network_mode: NetworkMode::Bridge,
            networks: BTreeMap::from([("front".into(), ServiceNetwork::default())]),
            ports: vec![Port {
                host_ip: Some("127.0.0.1".parse().expect("ip")),
                published: Some(8080),
                target: 80,
                protocol: Protocol::Tcp,
            }],
            expose: Vec::new(),
            volumes: vec![Mount {
                target: "/data".into(),
                read_only: false,
                kind: MountKind::Volume {
                    source: Some("data".into()),
                    nocopy: false,
                    subpath: None,
                },
            }],
            labels: BTreeMap::new(),
            logging: Logging {
                driver: LogDriver::JsonFile,
                max_size: None,
                max_file: None,
                tag: None,
            },
            profiles: Vec::new(),
            extra_hosts: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_opt: Vec::new(),
            sysctls: BTreeMap::new(),
            devices: Vec::new(),
            shm_size: None,
            ipc: None,
            pid: None,
            uts: None,
            cgroup_parent: None,
            container_name: None,
            platform: None,
            pull_policy: PullPolicy::Missing,
            secrets: vec![FileMount {
                source: "token".into(),
                target: "/run/secrets/token".into(),
                uid: None,
                gid: None,
                mode: None,
            }],
            configs: Vec::new(),
        };
        let stack = Stack {
            watch: false,
            name: "demo".into(),
            project_dir: PathBuf::from("/srv/demo"),
            services: BTreeMap::from([("web".into(), svc.clone())]),
            networks: BTreeMap::from([(
                "front".into(),
                Network {
                    name: "demo_front".into(),
                    external: false,
                    internal: false,
                    enable_ipv6: false,
                    ipam: Vec::new(),
                    labels: BTreeMap::new(),
                    mtu: None,
                    bridge_name: None,
                },
            )]),
            volumes: BTreeMap::from([(
                "data".into(),
                Volume {
                    name: "demo_data".into(),
                    external: false,
                    labels: BTreeMap::new(),
                    driver: VolumeDriver::Local,
                },
            )]),
            secrets: BTreeMap::from([(
                "token".into(),
                FileObject {
                    name: "demo_token".into(),
                    source: FileSource::File("/srv/demo/token".into()),
                    digest: "sha256:00".into(),
                },
            )]),
            configs: BTreeMap::new(),
            resources: Resources::default(),
        };
        (stack, svc)
    }

    /// Fails when the hash encoding drifts: upgrading `stack` must not
    /// recreate unchanged containers. If this fails, the change is a
    /// compatibility break: bump HASH_VERSION and say so in the release notes.
    #[test]
    fn golden_hash() {
        let (stack, svc) = sample();
        assert_eq!(
            svc.config_hash(&stack),
            "v1:4213d0b428bccc2a5417c844bfafcacfa097fc8e400edb90cf138ff89a7df01f"
        );
    }

    #[test]
    fn scaling_and_ordering_do_not_change_the_hash() {
        let (stack, svc) = sample();
        let base = svc.config_hash(&stack);
        let mut scaled = svc.clone();
        scaled.replicas = 5;
        scaled.profiles = vec!["x".into()];
        scaled.pull_policy = PullPolicy::Always;
        scaled.depends_on.insert(
            "db".into(),
            Dependency {
                condition: DependencyCondition::ServiceHealthy,
                restart: false,
                required: true,
            },
        );
        assert_eq!(scaled.config_hash(&stack), base);
    }

    #[test]
    fn what_reaches_the_container_changes_the_hash() {
        let (stack, svc) = sample();
        let base = svc.config_hash(&stack);
        let mut changed: Vec<(&str, String)> = Vec::new();
        let mut s = svc.clone();
        s.environment.insert("A".into(), "9".into());
        changed.push(("environment", s.config_hash(&stack)));
        let mut s = svc.clone();
        s.resources.memory = Some(1);
        changed.push(("memory", s.config_hash(&stack)));
        let mut s = svc.clone();
        s.restart = RestartPolicy::Always;
        changed.push(("restart", s.config_hash(&stack)));
        let mut s = svc.clone();
        s.networks
            .get_mut("front")
            .expect("front")
            .aliases
            .push("w".into());
        changed.push(("aliases", s.config_hash(&stack)));
        let mut st = stack.clone();
        st.networks.get_mut("front").expect("front").internal = true;
        changed.push(("network definition", svc.config_hash(&st)));
        let mut st = stack.clone();
        st.secrets.get_mut("token").expect("token").digest = "sha256:01".into();
        changed.push(("secret content", svc.config_hash(&st)));
        let mut st = stack.clone();
        st.volumes.get_mut("data").expect("data").driver = VolumeDriver::Tmpfs {
            size: None,
            mode: None,
        };
        changed.push(("volume driver", svc.config_hash(&st)));
        for (what, hash) in changed {
            assert_ne!(hash, base, "{what} must change the hash");
            assert!(hash.starts_with("v1:"));
        }
        // Networks the service does not join do not matter.
        let mut st = stack.clone();
        st.networks.insert(
            "other".into(),
            st.networks.get("front").cloned().expect("front"),
        );
        assert_eq!(svc.config_hash(&st), base);
    }
}
