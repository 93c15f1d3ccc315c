//! Default devices (runtime-spec config-linux.md "Default Devices") and
//! `linux.devices`, planned for a fresh /dev tmpfs.
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::Error;
use super::plan::{DevicePlan, InitPlan, cstr, root_path};

/// (path, major, minor): character devices every container gets, mode 0666.
const DEFAULTS: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("/proc/kcore", "core"),
    ("pts/ptmx", "ptmx"),
];

/// When config.json restricts devices, also allow the nodes the runtime itself
/// creates (default devices, /dev/pts, /dev/console, `linux.devices`) and mknod,
/// as runc does — otherwise the container's own /dev/null would be unusable.
pub(crate) fn with_default_rules(
    res: &LinuxResources,
    devices: Option<&[LinuxDevice]>,
) -> LinuxResources {
    let mut res = res.clone();
    let Some(rules) = res.devices().clone().filter(|r| !r.is_empty()) else {
        return res;
    };
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    let mut out = rules;
    out.push(rule(LinuxDeviceType::C, None, None, "m"));
    out.push(rule(LinuxDeviceType::B, None, None, "m"));
    for (_, major, minor) in DEFAULTS {
        out.push(rule(
            LinuxDeviceType::C,
            Some(i64::from(*major)),
            Some(i64::from(*minor)),
            "rwm",
        ));
    }
    out.push(rule(LinuxDeviceType::C, Some(5), Some(1), "rwm")); // /dev/console
    out.push(rule(LinuxDeviceType::C, Some(5), Some(2), "rwm")); // /dev/ptmx
    out.push(rule(LinuxDeviceType::C, Some(136), None, "rwm")); // /dev/pts/*
    for d in devices.unwrap_or_default() {
        let typ = if d.typ() == LinuxDeviceType::B {
            LinuxDeviceType::B
        } else {
            LinuxDeviceType::C
        };
        out.push(rule(typ, Some(d.major()), Some(d.minor()), "rwm"));
    }
    res.set_devices(Some(out));
    res
}

pub(crate) fn is_default(path: &str) -> bool {
    DEFAULTS.iter().any(|d| d.0 == path)
}

pub(crate) fn plan(plan: &mut InitPlan, extra: &[LinuxDevice]) -> Result<(), Error> {
    for (path, major, minor) in DEFAULTS {
        if extra.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        plan.devices.push(DevicePlan {
            path: root_path(Path::new(path), "default device")?,
            mode: libc::S_IFCHR | 0o666,
            rdev: libc::makedev(*major, *minor),
            uid: 0,
            gid: 0,
            host: cstr(path, "device")?,
        });
    }
    for d in extra {
        plan.devices.push(device(d)?);
    }
    for (target, link) in SYMLINKS {
        plan.dev_symlinks
            .push((cstr(target, "symlink")?, cstr(link, "symlink")?));
    }
    Ok(())
}

fn device(d: &LinuxDevice) -> Result<DevicePlan, Error> {
    let what = format!("linux.devices[{}]", d.path().display());
    if !d.path().starts_with("/dev") {
        return Err(Error::Invalid {
            field: what,
            reason: "device paths must be under /dev".into(),
        });
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::Invalid {
                field: what,
                reason: "type must be c, b, u or p".into(),
            });
        }
    };
    let num = |n: i64| {
        u32::try_from(n).map_err(|_| Error::Invalid {
            field: what.clone(),
            reason: format!("bad device number {n}"),
        })
    };
    Ok(DevicePlan {
        path: root_path(d.path(), &what)?,
        mode: kind | (d.file_mode().unwrap_or(0o666) & 0o7777),
        rdev: libc::makedev(num(d.major())?, num(d.minor())?),
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
        host: cstr(d.path(), &what)?,
    })
}
