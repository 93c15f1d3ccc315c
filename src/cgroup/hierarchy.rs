//! Which cgroup hierarchies the host mounts, read from /proc/self/mountinfo.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Error, Result};

/// The cgroup mounts of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Pure cgroup v2 (unified): one tree.
    V2 { root: PathBuf },
    /// cgroup v1: controller name -> mount point (co-mounted controllers such as
    /// `cpu,cpuacct` map to the same directory). `unified` is the cgroup2 mount of
    /// a hybrid host (`/sys/fs/cgroup/unified`), if any.
    V1 {
        controllers: BTreeMap<String, PathBuf>,
        unified: Option<PathBuf>,
    },
}

impl Hierarchy {
    /// The hierarchy of this host, read once per process (the cgroup mounts of
    /// a host do not change while it runs containers; mountinfo is large).
    pub fn detect() -> Result<Self> {
        static CACHE: std::sync::OnceLock<Hierarchy> = std::sync::OnceLock::new();
        if let Some(h) = CACHE.get() {
            return Ok(h.clone());
        }
        let h = Self::detect_uncached()?;
        Ok(CACHE.get_or_init(|| h).clone())
    }

    /// [`Hierarchy::detect`] without the per-process cache.
    pub fn detect_uncached() -> Result<Self> {
        let path = std::path::Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?;
        Self::from_mountinfo(&text)
    }

    /// Parse mountinfo text (proc(5)): v1 controllers from the super options of
    /// `cgroup` mounts, the first `cgroup2` mount as the unified tree. Named v1
    /// hierarchies (`name=systemd`) carry no controller and are ignored.
    pub fn from_mountinfo(text: &str) -> Result<Self> {
        let mut controllers = BTreeMap::new();
        let mut unified = None;
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = pre.split_whitespace().nth(4);
            let mut post = post.split_whitespace();
            let (fstype, _source, opts) = (post.next(), post.next(), post.next().unwrap_or(""));
            let Some(mp) = mount_point.map(unescape) else {
                continue;
            };
            match fstype {
                Some("cgroup2") if unified.is_none() => unified = Some(mp),
                Some("cgroup") => {
                    for opt in opts.split(',') {
                        if is_controller(opt) {
                            controllers
                                .entry(opt.to_string())
                                .or_insert_with(|| mp.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        match (controllers.is_empty(), unified) {
            (true, Some(root)) => Ok(Hierarchy::V2 { root }),
            (true, None) => Err(Error::NoHierarchy),
            (false, unified) => Ok(Hierarchy::V1 {
                controllers,
                unified,
            }),
        }
    }

    /// Every distinct hierarchy root (v1 mounts, then the unified mount).
    pub fn roots(&self) -> Vec<PathBuf> {
        match self {
            Hierarchy::V2 { root } => vec![root.clone()],
            Hierarchy::V1 {
                controllers,
                unified,
            } => {
                let mut out: Vec<PathBuf> = Vec::new();
                for p in controllers.values().chain(unified.iter()) {
                    if !out.contains(p) {
                        out.push(p.clone());
                    }
                }
                out
            }
        }
    }

    /// True on a host with v1 controllers and a cgroup2 mount.
    pub fn is_hybrid(&self) -> bool {
        matches!(
            self,
            Hierarchy::V1 {
                unified: Some(_),
                ..
            }
        )
    }
}

const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

fn is_controller(opt: &str) -> bool {
    V1_CONTROLLERS.contains(&opt)
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}
