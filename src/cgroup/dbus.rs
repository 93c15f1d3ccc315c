//! systemd's Manager over D-Bus (org.freedesktop.systemd1(5)): start and stop
//! the transient unit of a container.
//!
//! Flow of [`start_unit`]: connect, `Subscribe()` (systemd sends job signals
//! only to subscribers), watch `JobRemoved` *before* the call (a fast job may
//! finish before its reply arrives), `StartTransientUnit(name, "replace",
//! properties, [])`, then wait for the `JobRemoved` of the returned job; its
//! result must be "done". Caveat: the wait is bounded (30 s, runc's bound).
//!
//! zbus runs on its own async-io reactor; [`async_io::block_on`] blocks only the
//! calling thread, so this is safe to call from a thread of a tokio runtime
//! too (no runtime is entered).
use std::time::Duration;

use futures_util::StreamExt;
use zbus::zvariant::{OwnedObjectPath, Value};

use super::systemd::Unit;
use super::{Error, Result};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

fn err(op: &'static str, unit: &str, e: impl std::fmt::Display) -> Error {
    Error::Systemd {
        op,
        unit: unit.to_string(),
        reason: e.to_string(),
    }
}

/// StartTransientUnit for `unit` with `pid` in it (a scope), delegated to us.
pub fn start_unit(bus: Option<&str>, unit: &Unit, pid: i32, description: &str) -> Result<()> {
    let mut props: Vec<(&str, Value<'_>)> = vec![
        ("Description", Value::from(description)),
        ("Delegate", Value::from(true)),
        // Not ordered after basic.target etc.: a container starts now.
        ("DefaultDependencies", Value::from(false)),
        ("MemoryAccounting", Value::from(true)),
        ("CPUAccounting", Value::from(true)),
        ("IOAccounting", Value::from(true)),
        ("TasksAccounting", Value::from(true)),
    ];
    if unit.is_scope() {
        let pid = u32::try_from(pid).map_err(|e| err("StartTransientUnit", &unit.name, e))?;
        props.push(("Slice", Value::from(unit.slice.as_str())));
        props.push(("PIDs", Value::from(vec![pid])));
    }
    let name = unit.name.as_str();
    async_io::block_on(async {
        let m = manager(bus, name).await?;
        let mut jobs = m
            .receive_signal("JobRemoved")
            .await
            .map_err(|e| err("watching JobRemoved", name, e))?;
        let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
        let job: OwnedObjectPath = match m
            .call("StartTransientUnit", &(name, "replace", props, aux))
            .await
        {
            Ok(job) => job,
            // Left over from a container of the same id: reuse it (as runc);
            // the pid is written to its cgroup right after.
            Err(zbus::Error::MethodError(e, _, _)) if e.as_str().ends_with(".UnitExists") => {
                return Ok(());
            }
            Err(e) => return Err(err("StartTransientUnit", name, e)),
        };
        wait_job(&mut jobs, &job, name).await
    })
}

/// StopUnit, waiting for its job; a unit systemd does not know is stopped.
pub fn stop_unit(bus: Option<&str>, name: &str) -> Result<()> {
    async_io::block_on(async {
        let m = manager(bus, name).await?;
        let mut jobs = m
            .receive_signal("JobRemoved")
            .await
            .map_err(|e| err("watching JobRemoved", name, e))?;
        let job: OwnedObjectPath = match m.call("StopUnit", &(name, "replace")).await {
            Ok(job) => job,
            Err(zbus::Error::MethodError(e, _, _)) if e.as_str().ends_with(".NoSuchUnit") => {
                return Ok(());
            }
            Err(e) => return Err(err("StopUnit", name, e)),
        };
        wait_job(&mut jobs, &job, name).await
    })
}

async fn manager(bus: Option<&str>, unit: &str) -> Result<zbus::Proxy<'static>> {
    let conn = match bus {
        Some(addr) => {
            zbus::connection::Builder::address(addr)
                .map_err(|e| err("connecting to D-Bus", unit, e))?
                .build()
                .await
        }
        None => zbus::Connection::system().await,
    }
    .map_err(|e| err("connecting to the system bus", unit, e))?;
    let m = zbus::Proxy::new_owned(conn, DEST, PATH, MANAGER)
        .await
        .map_err(|e| err("opening the systemd Manager", unit, e))?;
    let () = m
        .call("Subscribe", &())
        .await
        .map_err(|e| err("Subscribe", unit, e))?;
    Ok(m)
}

async fn wait_job(
    jobs: &mut zbus::proxy::SignalStream<'_>,
    job: &OwnedObjectPath,
    unit: &str,
) -> Result<()> {
    let done = async {
        while let Some(msg) = jobs.next().await {
            // JobRemoved(u id, o job, s unit, s result)
            let Ok((_, path, _, result)) = msg
                .body()
                .deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if &path == job {
                return Some(result);
            }
        }
        None
    };
    let timeout = async {
        async_io::Timer::after(JOB_TIMEOUT).await;
        None
    };
    match futures_util::future::select(Box::pin(done), Box::pin(timeout))
        .await
        .factor_first()
        .0
    {
        Some(r) if r == "done" => Ok(()),
        Some(r) => Err(err(
            "waiting for the unit's job",
            unit,
            format!("result {r:?}"),
        )),
        None => Err(err(
            "waiting for the unit's job",
            unit,
            format!("no JobRemoved within {JOB_TIMEOUT:?}"),
        )),
    }
}
