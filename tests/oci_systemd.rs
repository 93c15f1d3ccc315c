//! The systemd cgroup driver: against a private dbus-daemon (Debian `dbus-daemon`)
//! with a fake org.freedesktop.systemd1 Manager served by the test, and without
//! systemd (this host), where the same paths are made in cgroupfs. Root required
//! for the containers.
#[path = "oci_bundle/mod.rs"]
mod bundle;
mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bundle::{Bundle, ok, text};
use serde_json::json;
use stack::cgroup::systemd::{self, SystemdDriver};
use stack::runtime::{CreateOptions, Runtime};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};

/// A dbus-daemon of our own (session configuration, a socket in a temp dir),
/// killed on drop.
struct PrivateBus {
    child: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!(
                "--address=unix:path={}",
                dir.path().join("bus").display()
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian package dbus-daemon, see .ci/setup)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        PrivateBus {
            child,
            address: line.trim().to_string(),
            _dir: dir,
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One method call the fake Manager received.
#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    unit: String,
    mode: String,
    props: Vec<(String, OwnedValue)>,
}

impl Call {
    fn prop(&self, name: &str) -> Option<&OwnedValue> {
        self.props.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Answers like systemd: a job path, then JobRemoved for it ("done", or
/// "failed" for units named `fail-*`), emitted before the reply to check that
/// the client watches signals before it calls.
struct FakeManager {
    calls: Arc<Mutex<Vec<Call>>>,
    jobs: u32,
}

impl FakeManager {
    async fn job(
        &mut self,
        emitter: &SignalEmitter<'_>,
        unit: &str,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.jobs += 1;
        let path = format!("/org/freedesktop/systemd1/job/{}", self.jobs);
        let job = ObjectPath::try_from(path.as_str()).unwrap();
        let result = if unit.starts_with("fail-") {
            "failed"
        } else {
            "done"
        };
        Self::job_removed(emitter, self.jobs, job.clone(), unit, result).await?;
        Ok(job.into())
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeManager {
    fn subscribe(&self) {}

    async fn start_transient_unit(
        &mut self,
        name: String,
        mode: String,
        properties: Vec<(String, OwnedValue)>,
        _aux: Vec<(String, Vec<(String, OwnedValue)>)>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.calls.lock().unwrap().push(Call {
            method: "StartTransientUnit",
            unit: name.clone(),
            mode,
            props: properties,
        });
        self.job(&emitter, &name).await
    }

    async fn stop_unit(
        &mut self,
        name: String,
        mode: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.calls.lock().unwrap().push(Call {
            method: "StopUnit",
            unit: name.clone(),
            mode,
            props: Vec::new(),
        });
        self.job(&emitter, &name).await
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// Serve the fake Manager as org.freedesktop.systemd1 on `address` (the
/// connection lives for the test; zbus runs it on its own executor thread).
fn fake_systemd(address: &str) -> (zbus::Connection, Arc<Mutex<Vec<Call>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let manager = FakeManager {
        calls: calls.clone(),
        jobs: 0,
    };
    let conn = async_io::block_on(async {
        zbus::connection::Builder::address(address)
            .unwrap()
            .name("org.freedesktop.systemd1")
            .unwrap()
            .serve_at("/org/freedesktop/systemd1", manager)
            .unwrap()
            .build()
            .await
            .unwrap()
    });
    (conn, calls)
}

fn u32s(v: &OwnedValue) -> Vec<u32> {
    Vec::<u32>::try_from(v.try_clone().unwrap()).unwrap()
}

#[test]
fn start_and_stop_a_scope_over_dbus() {
    let bus = PrivateBus::start();
    let (_conn, calls) = fake_systemd(&bus.address);
    let unit = systemd::unit(Some("stackt-a.slice:stackt:c1"), "c1").unwrap();
    systemd::start_unit(Some(&bus.address), &unit, 4242, "stack container c1").unwrap();
    systemd::stop_unit(Some(&bus.address), &unit.name).unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let start = &calls[0];
    assert_eq!(
        (start.method, start.unit.as_str(), start.mode.as_str()),
        ("StartTransientUnit", "stackt-c1.scope", "replace")
    );
    assert_eq!(u32s(start.prop("PIDs").unwrap()), [4242]);
    assert!(bool::try_from(start.prop("Delegate").unwrap()).unwrap());
    assert_eq!(
        <&str>::try_from(start.prop("Slice").unwrap()).unwrap(),
        "stackt-a.slice"
    );
    assert_eq!(
        (calls[1].method, calls[1].unit.as_str()),
        ("StopUnit", "stackt-c1.scope")
    );

    // A job that does not end "done" is an error that names the unit.
    let bad = systemd::unit(Some("x.slice::fail-1"), "id").unwrap();
    let e = systemd::start_unit(Some(&bus.address), &bad, 1, "x").unwrap_err();
    assert!(
        e.to_string().contains("fail-1.scope") && e.to_string().contains("failed"),
        "{e}"
    );
}

/// The full create path with the systemd driver "on a systemd host": a temp
/// run dir with `system/` stands for /run/systemd, the private bus for the
/// system bus. The init's pid goes to StartTransientUnit, the limits and the
/// pid to the scope's cgroupfs directories, and delete stops the unit.
#[test]
fn create_registers_the_init_in_a_transient_scope() {
    common::require_root();
    let bus = PrivateBus::start();
    let (_conn, calls) = fake_systemd(&bus.address);
    let dir = tempfile::tempdir().unwrap();
    common::busybox_rootfs(&dir.path().join("rootfs"));
    std::fs::create_dir_all(dir.path().join("run/system")).unwrap();
    let rt = Runtime::new(dir.path().join("state")).with_systemd_cgroup(SystemdDriver {
        run_dir: dir.path().join("run"),
        bus: Some(bus.address.clone()),
    });
    let id = common::unique("sd");
    let _slices = RemoveSlices(vec![PathBuf::from("stacktestsd.slice")]);
    let mut spec = oci_spec::runtime::Spec::default();
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(vec!["sleep".into(), "30".into()]));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    let mut linux = spec.linux().clone().unwrap();
    linux.set_cgroups_path(Some(format!("stacktestsd.slice:stackt:{id}").into()));
    linux.set_resources(Some(
        serde_json::from_value(json!({"pids": {"limit": 42}})).unwrap(),
    ));
    spec.set_linux(Some(linux));
    let null = || -> OwnedFdResult { Ok(std::fs::File::open("/dev/null")?.into()) };
    let opts = CreateOptions {
        stdio: Some([null().unwrap(), null().unwrap(), null().unwrap()]),
        ..Default::default()
    };
    let c = rt.create_from_spec(&id, &spec, dir.path(), opts).unwrap();
    let guard = DeleteOnDrop(&rt, id.clone());
    let scope = format!("stackt-{id}.scope");
    {
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].unit, scope);
        assert_eq!(u32s(calls[0].prop("PIDs").unwrap()), [c.pid as u32]);
    }
    assert_eq!(c.cgroup.path(), Path::new("stacktestsd.slice").join(&scope));
    assert_eq!(c.cgroup.pids().unwrap(), [c.pid]);
    let pids_dir = c
        .cgroup
        .dirs()
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"));
    if let Some(d) = pids_dir {
        assert_eq!(
            std::fs::read_to_string(d.join("pids.max")).unwrap().trim(),
            "42"
        );
    }
    drop(guard);
    let calls = calls.lock().unwrap();
    assert_eq!(
        (calls.len(), calls[1].method, calls[1].unit.as_str()),
        (2, "StopUnit", scope.as_str())
    );
    assert!(c.cgroup.dirs().iter().all(|d| !d.exists()));
}

type OwnedFdResult = std::io::Result<std::os::fd::OwnedFd>;

struct DeleteOnDrop<'a>(&'a Runtime, String);

impl Drop for DeleteOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.delete(&self.1, true);
    }
}

/// rmdir the test's slices (deepest first) in every hierarchy: only when empty,
/// so parallel tests that share them are not disturbed.
struct RemoveSlices(Vec<PathBuf>);

impl Drop for RemoveSlices {
    fn drop(&mut self) {
        for slice in self.0.iter().rev() {
            if let Ok(cg) = stack::cgroup::Cgroup::open(slice) {
                for d in cg.dirs() {
                    let _ = std::fs::remove_dir(d);
                }
            }
        }
    }
}

/// Without systemd (this host), `--systemd-cgroup` makes the expanded paths in
/// cgroupfs directly and says so.
#[test]
fn without_systemd_the_paths_are_made_in_cgroupfs() {
    assert!(
        !Path::new("/run/systemd/system").exists(),
        "this test describes a host whose PID 1 is not systemd"
    );
    let mut b = Bundle::new(&["sleep", "30"]);
    let _slices = RemoveSlices(vec![
        PathBuf::from("stacktestfs.slice"),
        PathBuf::from("stacktestfs.slice/stacktestfs-a.slice"),
    ]);
    b.config["linux"]["cgroupsPath"] = json!(format!("stacktestfs-a.slice:stackt:{}", b.id));
    let out = b.oci(&[
        "--systemd-cgroup",
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    ok(&out);
    assert!(
        text(&out.stderr).contains("systemd is not running"),
        "{}",
        text(&out.stderr)
    );
    let rel = format!(
        "stacktestfs.slice/stacktestfs-a.slice/stackt-{}.scope",
        b.id
    );
    let cg = stack::cgroup::Cgroup::open(&rel).unwrap();
    let pid = b.state()["pid"].as_i64().unwrap() as i32;
    assert_eq!(cg.pids().unwrap(), [pid]);
    for d in cg.dirs() {
        assert!(d.is_dir(), "{} exists", d.display());
    }
    ok(&b.oci(&["--systemd-cgroup", "delete", "--force", &b.id]));
    assert!(
        cg.dirs().iter().all(|d| !d.exists()),
        "delete removed the scope"
    );

    // Without the flag a systemd path is refused with the way out.
    let out = b.verb("create");
    assert!(
        text(&out.stderr).contains("--systemd-cgroup"),
        "{}",
        text(&out.stderr)
    );
}
