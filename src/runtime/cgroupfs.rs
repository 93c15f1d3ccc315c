//! The `cgroup` mount type inside the container.
//!
//! On a cgroup v2 host the container gets a cgroup2 mount. On a v1 or hybrid
//! host it gets the v1 layout its tools expect (the JVM and systemd read
//! `/sys/fs/cgroup/memory/...`): a tmpfs with one directory per host hierarchy,
//! each a fresh cgroup mount of the same controllers (inside the container's
//! cgroup namespace, which shows the container's cgroup as the root), or, with
//! no cgroup namespace, a bind mount of the container's own cgroup directory —
//! as runc does. The unified tree of a hybrid host appears as `unified`.
use std::path::Path;

use super::Error;
use super::mountopts::MountOpts;
use super::plan::{MountKind, MountPlan, cstr, root_path};
use crate::cgroup::Hierarchy;

/// The mounts for one `cgroup` entry of config.json.
pub(crate) fn plan(
    dest: &Path,
    opts: &MountOpts,
    cgroupns: bool,
    cgroup_path: &Path,
) -> Result<Vec<MountPlan>, Error> {
    let what = format!("mounts[{}]", dest.display());
    let hierarchy = Hierarchy::detect()?;
    let Hierarchy::V1 {
        controllers,
        unified,
    } = hierarchy
    else {
        return Ok(vec![fs(dest, "cgroup2", None, opts.flags, &what)?]);
    };
    // One entry per distinct mount point: (dir name, controllers it carries).
    let mut trees: Vec<(String, Vec<String>, std::path::PathBuf)> = Vec::new();
    for (name, mp) in &controllers {
        match trees.iter_mut().find(|t| &t.2 == mp) {
            Some(t) => t.1.push(name.clone()),
            None => {
                let dir = mp
                    .file_name()
                    .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
                trees.push((dir, vec![name.clone()], mp.clone()));
            }
        }
    }
    let base = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let mut out = vec![fs(dest, "tmpfs", Some("mode=755"), base, &what)?];
    for (dir, ctrls, host_mp) in &trees {
        let sub = dest.join(dir);
        out.push(if cgroupns {
            fs(
                &sub,
                "cgroup",
                Some(&ctrls.join(",")),
                opts.flags | base,
                &what,
            )?
        } else {
            bind(&sub, &host_mp.join(cgroup_path), opts.flags | base, &what)?
        });
    }
    if let Some(u) = unified {
        let sub = dest.join("unified");
        out.push(if cgroupns {
            fs(&sub, "cgroup2", None, opts.flags | base, &what)?
        } else {
            bind(&sub, &u.join(cgroup_path), opts.flags | base, &what)?
        });
    }
    if opts.flags & libc::MS_RDONLY != 0 {
        out.push(MountPlan {
            dest: root_path(dest, &what)?,
            dest_is_dir: true,
            kind: MountKind::Remount,
            flags: base | libc::MS_RDONLY,
            propagation: Vec::new(),
            rec: None,
            sysfs_fallback: false,
        });
    }
    Ok(out)
}

fn fs(
    dest: &Path,
    fstype: &str,
    data: Option<&str>,
    flags: libc::c_ulong,
    what: &str,
) -> Result<MountPlan, Error> {
    Ok(MountPlan {
        dest: root_path(dest, what)?,
        dest_is_dir: true,
        kind: MountKind::Fs {
            fstype: cstr(fstype, what)?,
            source: cstr(if fstype == "tmpfs" { "tmpfs" } else { "cgroup" }, what)?,
            data: data.map(|d| cstr(d, what)).transpose()?,
        },
        flags,
        propagation: Vec::new(),
        rec: None,
        sysfs_fallback: false,
    })
}

fn bind(dest: &Path, source: &Path, flags: libc::c_ulong, what: &str) -> Result<MountPlan, Error> {
    Ok(MountPlan {
        dest: root_path(dest, what)?,
        dest_is_dir: true,
        kind: MountKind::Bind {
            source: cstr(source, what)?,
            recursive: false,
        },
        flags,
        propagation: Vec::new(),
        rec: None,
        sysfs_fallback: false,
    })
}
