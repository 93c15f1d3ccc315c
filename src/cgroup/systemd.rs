//! The systemd cgroup driver (`stack oci --systemd-cgroup`): systemd-style
//! `cgroupsPath` and, where systemd is PID 1, a transient unit per container.
//!
//! `cgroupsPath` is `slice:prefix:name` (runc's format). The container's unit is
//! `<prefix>-<name>.scope` (or `<name>` itself when it ends in `.slice`) in
//! `slice` (default `system.slice`), and its cgroup is the slice path expanded
//! the systemd way (`a-b.slice` -> `a.slice/a-b.slice`, systemd.slice(5)) plus
//! the unit: `a.slice/a-b.slice/prefix-name.scope`.
//!
//! Where systemd runs (`/run/systemd/system` exists, sd_booted(3)), the scope is
//! registered with StartTransientUnit over D-Bus ([`super::dbus`]) with the
//! init's pid and `Delegate=yes`, so systemd neither moves nor re-limits what we
//! write below it; we then write the limits and the pid to the same directories
//! in cgroupfs as the cgroupfs driver does (idempotent where systemd already
//! did it, and it covers v1 hierarchies systemd does not manage). Elsewhere
//! (this host: PID 1 is not systemd) the same paths are made in cgroupfs
//! directly, which a log line says.
use std::path::{Path, PathBuf};

use super::{Error, Result};

pub use super::dbus::{start_unit, stop_unit};

/// How to reach systemd. The defaults are the real ones; tests point both at a
/// private bus and a temp dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdDriver {
    /// systemd's runtime directory: it runs when `<run_dir>/system` is a directory.
    pub run_dir: PathBuf,
    /// D-Bus address of the bus systemd is on; `None` is the system bus.
    pub bus: Option<String>,
}

impl Default for SystemdDriver {
    fn default() -> Self {
        SystemdDriver {
            run_dir: PathBuf::from("/run/systemd"),
            bus: None,
        }
    }
}

impl SystemdDriver {
    /// sd_booted(3): systemd is PID 1 (the check systemd's own tools use).
    pub fn systemd_running(&self) -> bool {
        self.run_dir.join("system").is_dir()
    }
}

/// A container's systemd unit and the cgroup path it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `prefix-name.scope`, or a `.slice` name.
    pub name: String,
    /// The slice the unit goes into (`system.slice` when empty).
    pub slice: String,
    /// The cgroup, relative to the hierarchy root.
    pub path: PathBuf,
}

impl Unit {
    /// A scope holds processes; a slice only groups units (no PIDs property).
    pub fn is_scope(&self) -> bool {
        self.name.ends_with(".scope")
    }
}

const DEFAULT_SLICE: &str = "system.slice";

/// Parse `slice:prefix:name` (`None`: `system.slice:stack-oci:<id>`).
pub fn unit(cgroups_path: Option<&str>, id: &str) -> Result<Unit> {
    let text = cgroups_path.unwrap_or_default();
    let (slice, prefix, name) = match text.split(':').collect::<Vec<_>>()[..] {
        [""] => ("", "stack-oci", id),
        [slice, prefix, name] => (slice, prefix, name),
        _ => {
            return Err(bad(
                text,
                "expected slice:prefix:name, e.g. system.slice:stack:web-1",
            ));
        }
    };
    if name.is_empty() || name.contains('/') {
        return Err(bad(text, "the name must be non-empty and without '/'"));
    }
    if prefix.contains('/') {
        return Err(bad(text, "the prefix must not contain '/'"));
    }
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let name = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let mut path = expand_slice(slice)?;
    if name.ends_with(".slice") {
        // A slice unit lives at its own expanded path (runc: the parent is implied).
        path = expand_slice(&name)?;
    } else {
        path.push(&name);
    }
    Ok(Unit {
        name,
        slice: slice.to_string(),
        path,
    })
}

/// systemd.slice(5): `a-b-c.slice` is `a.slice/a-b.slice/a-b-c.slice`; `-.slice`
/// is the root (the empty relative path).
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(bad(slice, "a slice name ends in .slice"));
    };
    if stem.contains('/') {
        return Err(bad(slice, "a slice name has no '/'"));
    }
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            // "-a.slice", "a--b.slice", "a-.slice" and ".slice" are not units.
            return Err(bad(slice, "empty component between '-'"));
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
        prefix.push('-');
    }
    Ok(path)
}

fn bad(what: &str, hint: &str) -> Error {
    Error::Unsupported {
        what: format!("systemd cgroupsPath {what:?}"),
        hint: hint.to_string(),
    }
}

/// The log line for a host without systemd (see the module docs).
pub fn note_cgroupfs_fallback(driver: &SystemdDriver, path: &Path) {
    tracing::warn!(
        "systemd is not running ({} is missing): creating {} directly in cgroupfs instead of a transient unit",
        driver.run_dir.join("system").display(),
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_the_systemd_way() {
        let p = |s| expand_slice(s).unwrap();
        assert_eq!(p("a.slice"), Path::new("a.slice"));
        assert_eq!(p("a-b.slice"), Path::new("a.slice/a-b.slice"));
        assert_eq!(
            p("machine-pod-x.slice"),
            Path::new("machine.slice/machine-pod.slice/machine-pod-x.slice")
        );
        assert_eq!(p("-.slice"), Path::new(""));
        for bad in [
            "a",
            ".slice",
            "-a.slice",
            "a--b.slice",
            "a-.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_paths_become_units() {
        let u = unit(Some("stack-web.slice:stack:web-1"), "id").unwrap();
        assert_eq!(u.name, "stack-web-1.scope");
        assert_eq!(u.slice, "stack-web.slice");
        assert_eq!(
            u.path,
            Path::new("stack.slice/stack-web.slice/stack-web-1.scope")
        );
        assert!(u.is_scope());
        let u = unit(Some(":runc:abc"), "id").unwrap();
        assert_eq!(u.path, Path::new("system.slice/runc-abc.scope"));
        let u = unit(None, "c1").unwrap();
        assert_eq!(u.path, Path::new("system.slice/stack-oci-c1.scope"));
        let u = unit(Some("-.slice::c1"), "id").unwrap();
        assert_eq!(
            (u.name.as_str(), u.path.as_path()),
            ("c1.scope", Path::new("c1.scope"))
        );
        let u = unit(Some("kubepods.slice:x:kubepods-pod1.slice"), "id").unwrap();
        assert!(!u.is_scope());
        assert_eq!(u.path, Path::new("kubepods.slice/kubepods-pod1.slice"));
        for bad in [
            "/a/b",
            "a:b",
            "a.slice:p:",
            "a.slice:p:x/y",
            "bad:p:n",
            "a:b:c:d",
        ] {
            assert!(unit(Some(bad), "id").is_err(), "{bad}");
        }
    }

    #[test]
    fn systemd_runs_when_its_system_dir_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let d = SystemdDriver {
            run_dir: tmp.path().into(),
            bus: None,
        };
        assert!(!d.systemd_running());
        std::fs::create_dir(tmp.path().join("system")).unwrap();
        assert!(d.systemd_running());
        assert_eq!(SystemdDriver::default().run_dir, Path::new("/run/systemd"));
    }
}
