//! Static documents of `stack oci`: the features JSON and the default spec.
use serde_json::{Value, json};

/// runtime-spec features.md.
pub fn features() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": [],
        "mountOptions": [
            "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync", "async", "dirsync",
            "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
            "strictatime", "nostrictatime", "bind", "rbind", "private", "rprivate", "shared", "rshared",
            "slave", "rslave", "unbindable", "runbindable", "silent", "loud", "defaults"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": crate::runtime::capability_names(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": { "org.opencontainers.runtime-spec.features.runtime": "stack" }
    })
}

/// A config.json like `runc spec` writes: sh in a terminal, default mounts,
/// namespaces, masked and read-only paths.
pub fn default_spec() -> oci_spec::runtime::Spec {
    oci_spec::runtime::Spec::default()
}
