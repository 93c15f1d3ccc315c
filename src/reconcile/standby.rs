//! Standby replicas: a new container of a service whose other replicas serve
//! its published ports (a scale-up, or the new one of a stop-first recreate
//! while the others still run) reserves the ports without traffic and joins
//! the kernel's spread over the replicas (the numgen map of the ruleset) only
//! once it is ready. Without this a client's connection could land on a
//! replica that does not listen yet and be refused.
//!
//! Ready: healthy when the container has a healthcheck; otherwise running and
//! listening on every published port inside its network namespace (a
//! listening TCP socket, a bound UDP one), as `/proc/<init>/net/{tcp,tcp6,
//! udp,udp6}` show. Why the socket table and not a test connection: it costs
//! one file read, enters no namespace (setns from a multi-threaded process
//! needs a thread of its own), and the application sees nothing. A listening
//! socket accepts connections: the kernel completes the handshake into its
//! backlog before the server calls accept.
//!
//! Start-first updates (rollout.rs) wait for the same readiness before they
//! move the ports.
//!
//! Level-triggered: a container left on standby (it was not ready in time,
//! the `up` waiting for it died, the daemon was restarted, the supervisor
//! restarted it) is served once it is ready ([`serve_ready`]) by the
//! daemon, which polls [`survey`] while one may still get ready
//! (src/daemon/standby.rs), and by the next `up` of its stack.
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::networking::sharing_group;
use super::rollout::TEMP_INDEX;
use super::{Ctx, Error};
use crate::model::{Healthcheck, NetworkMode, Port, Protocol, Service, Stack};
use crate::network::{Proto, Standby};
use crate::supervisor::record::{ContainerPaths, ContainerSpec, ContainerStatus, Health, State};

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(50);

/// Without a healthcheck or `update_config.monitor`: how long a new
/// container may take to run and listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The sharing groups of `stack` that serve traffic, as an `up` begins.
pub fn serving_at_start(ctx: &Ctx, stack: &Stack) -> Result<BTreeSet<String>, Error> {
    Ok(ctx.net.serving_groups(&stack.name)?)
}

/// Whether a new container `name` of `svc` should start on standby: it
/// publishes ports, and another replica serves them now and one did when
/// the `up` began (`serving`, from [`serving_at_start`]). When none serves,
/// holding the ports back keeps no connection from failing; the first `up`
/// of a service never waits (its replicas, created at once, would otherwise
/// wait on each other by chance).
pub fn wanted(
    ctx: &Ctx,
    stack: &Stack,
    svc: &Service,
    name: &str,
    serving: &BTreeSet<String>,
) -> Result<bool, Error> {
    let group = sharing_group(stack, svc);
    if svc.ports.is_empty() || svc.network_mode != NetworkMode::Bridge || !serving.contains(&group)
    {
        return Ok(false);
    }
    Ok(ctx.net.group_serves(&group, name)?)
}

/// Wait until the standby `name` of `svc` is ready, then send it traffic.
/// When it does not get ready it stays on standby: the error says why.
pub fn serve_when_ready(ctx: &Ctx, svc: &Service, name: &str) -> Result<(), Error> {
    match wait_ready(ctx, svc, name) {
        Ok(()) => Ok(ctx.net.serve(name)?),
        Err(why) => Err(Error::Invalid(format!(
            "{name} runs but did not get ready ({why}): it gets no traffic on its published ports until it is (the daemon serves it then)"
        ))),
    }
}

/// Serve every container of `stack` left on standby that is ready now.
/// Best effort: one whose serving fails is tried again whenever the daemon
/// looks again (a start, an `up`). The caller holds the stack's lock.
pub fn serve_ready(ctx: &Ctx, stack: &str) {
    let all = match ctx.net.standby_of(Some(stack)) {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(stack, error = %e, "cannot read the containers on standby");
            return;
        }
    };
    for s in all.iter().filter(|s| check(ctx, s) == Check::Ready) {
        if let Err(e) = ctx.net.serve(&s.container) {
            tracing::warn!(container = %s.container, error = %e, "cannot serve a ready container on standby");
        }
    }
}

/// The containers on standby, as [`survey`] found them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// Stacks with a container on standby that is ready now.
    pub ready: BTreeSet<String>,
    /// Whether a container on standby may still get ready (it runs, or
    /// waits for a restart). One that ended or never started may only after
    /// a start, which looks again.
    pub waiting: bool,
}

/// Look at every container on standby, without serving any (no lock
/// needed): what the daemon polls while some wait.
pub fn survey(ctx: &Ctx) -> Survey {
    let mut survey = Survey::default();
    for s in ctx.net.standby_of(None).unwrap_or_default() {
        match check(ctx, &s) {
            Check::Ready => {
                survey.ready.insert(s.stack);
            }
            Check::Waiting => survey.waiting = true,
            Check::Not => {}
        }
    }
    survey
}

#[derive(Debug, PartialEq, Eq)]
enum Check {
    Ready,
    /// Not ready yet, but up: it may get ready by itself.
    Waiting,
    /// Not for us: ended, not started, or the new container of a start-first
    /// update (which moves the ports itself).
    Not,
}

/// Where the standby container `s` is, judged by its own records and the
/// ports it reserved (not a stack file: the daemon has none at hand).
fn check(ctx: &Ctx, s: &Standby) -> Check {
    let paths = ContainerPaths::new(&ctx.roots.lib, &s.container);
    let Some(spec) = ContainerSpec::read(&paths).ok().flatten() else {
        return Check::Not;
    };
    if spec.index >= TEMP_INDEX {
        return Check::Not;
    }
    let targets: Vec<(u16, Proto)> = s
        .ports
        .iter()
        .map(|p| (p.container_port, p.proto))
        .collect();
    let st = ContainerStatus::read(&paths).unwrap_or_default();
    match readiness(&st, spec.healthcheck.is_some(), &targets) {
        (true, _) => Check::Ready,
        _ if matches!(st.state, State::Running | State::Restarting) => Check::Waiting,
        _ => Check::Not,
    }
}

/// Until `name` is ready (see the module doc); why not.
pub fn wait_ready(ctx: &Ctx, svc: &Service, name: &str) -> Result<(), String> {
    let paths = ContainerPaths::new(&ctx.roots.lib, name);
    // The service's healthcheck or its image's: what the container got.
    let check = ContainerSpec::read(&paths)
        .ok()
        .flatten()
        .and_then(|s| s.healthcheck);
    let limit = svc
        .update_config
        .monitor
        .unwrap_or_else(|| check.as_ref().map_or(START_TIMEOUT, health_time));
    let targets = targets(&svc.ports);
    let until = Instant::now() + limit;
    loop {
        let st = ContainerStatus::read(&paths).unwrap_or_default();
        match readiness(&st, check.is_some(), &targets) {
            (true, _) => return Ok(()),
            (false, Some(never)) => return Err(never),
            (false, None) => {}
        }
        if Instant::now() >= until {
            return Err(format!(
                "not ready after {}",
                humantime::format_duration(limit)
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// The container side of `ports` that can be checked (SCTP cannot: the
/// socket tables have no SCTP, and it is not published).
fn targets(ports: &[Port]) -> Vec<(u16, Proto)> {
    ports
        .iter()
        .filter_map(|p| match p.protocol {
            Protocol::Tcp => Some((p.target, Proto::Tcp)),
            Protocol::Udp => Some((p.target, Proto::Udp)),
            Protocol::Sctp => None,
        })
        .collect()
}

/// (ready now, why it never will be) of a container in status `st`.
fn readiness(
    st: &ContainerStatus,
    checked: bool,
    ports: &[(u16, Proto)],
) -> (bool, Option<String>) {
    match (st.state, st.health) {
        (_, Some(Health::Unhealthy)) => (false, Some("unhealthy".into())),
        (State::Exited | State::Stopped, _) => {
            let code = st.exit_code.map_or("?".into(), |c| c.to_string());
            (false, Some(format!("exited with code {code}")))
        }
        (State::Running, Some(Health::Healthy)) => (true, None),
        (State::Running, _) if !checked => {
            let listens = st
                .pid
                .is_some_and(|pid| listening(Path::new("/proc"), pid, ports));
            (listens, None)
        }
        _ => (false, None),
    }
}

/// Whether the network namespace of process `pid` has a socket for every
/// port of `ports` (their container side): listening for TCP, bound for
/// UDP. `proc` is where procfs is mounted (a temp dir in tests).
fn listening(proc: &Path, pid: i32, ports: &[(u16, Proto)]) -> bool {
    let table = |name: &str| -> Vec<(u16, u8)> {
        ["", "6"]
            .iter()
            .filter_map(|v6| {
                std::fs::read_to_string(proc.join(format!("{pid}/net/{name}{v6}"))).ok()
            })
            .flat_map(|text| sockets(&text))
            .collect()
    };
    let wants = |p: Proto| ports.iter().any(|(_, q)| *q == p);
    let tcp = if wants(Proto::Tcp) {
        table("tcp")
    } else {
        Vec::new()
    };
    let udp = if wants(Proto::Udp) {
        table("udp")
    } else {
        Vec::new()
    };
    // TCP_LISTEN is state 0x0A in include/net/tcp_states.h.
    const LISTEN: u8 = 0x0A;
    ports.iter().all(|&(port, proto)| match proto {
        Proto::Tcp => tcp.contains(&(port, LISTEN)),
        Proto::Udp => udp.iter().any(|(p, _)| *p == port),
    })
}

/// (local port, state) of every socket in a `/proc/net/{tcp,udp}[6]` table:
/// `sl local_address rem_address st ...`, addresses as `HEXADDR:HEXPORT`.
fn sockets(text: &str) -> Vec<(u16, u8)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace().skip(1);
            let local = cols.next()?;
            let state = cols.nth(1)?;
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            Some((port, u8::from_str_radix(state, 16).ok()?))
        })
        .collect()
}

/// The longest a healthcheck takes to report healthy: the start period, then
/// every try with its timeout (Docker's rules), and one interval of slack.
fn health_time(h: &Healthcheck) -> Duration {
    let tries = h.retries.max(1) + 1;
    h.start_period + (h.interval + h.timeout) * tries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_time_covers_the_start_period_and_every_try() {
        let h = Healthcheck {
            test: vec!["true".into()],
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            retries: 3,
            start_period: Duration::from_secs(5),
            start_interval: Duration::from_secs(1),
        };
        assert_eq!(health_time(&h), Duration::from_secs(5 + 3 * 4));
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4 2 0 0
";

    #[test]
    fn sctp_is_not_checked() {
        let sctp = Port {
            host_ip: None,
            published: Some(8000),
            target: 80,
            protocol: Protocol::Sctp,
        };
        let tcp = Port {
            protocol: Protocol::Tcp,
            ..sctp.clone()
        };
        assert_eq!(targets(&[sctp, tcp]), [(80, Proto::Tcp)]);
    }

    #[test]
    fn listening_reads_the_namespace_socket_tables() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("42/net");
        std::fs::create_dir_all(&net).unwrap();
        for (name, text) in [("tcp", TCP), ("tcp6", TCP6), ("udp", UDP)] {
            std::fs::write(net.join(name), text).unwrap();
        }
        let ok = |ports: &[(u16, Proto)]| listening(dir.path(), 42, ports);
        assert!(ok(&[(80, Proto::Tcp)]), "listening on 0.0.0.0:80");
        assert!(ok(&[(8081, Proto::Tcp)]), "listening on [::]:8081");
        assert!(
            !ok(&[(8080, Proto::Tcp)]),
            "8080 is a connection, not a listener"
        );
        assert!(ok(&[(53, Proto::Udp)]));
        assert!(!ok(&[(80, Proto::Udp)]));
        assert!(!ok(&[(80, Proto::Tcp), (81, Proto::Tcp)]), "every port");
        assert!(ok(&[]), "nothing published: nothing to wait for");
        assert!(
            !listening(dir.path(), 7, &[(80, Proto::Tcp)]),
            "no such process"
        );
    }
}
