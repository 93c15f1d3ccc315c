//! `ps`: the containers of a stack with their state as people read it.
use serde::{Deserialize, Serialize};

use crate::reconcile::rollout;
use crate::state::Roots;
use crate::supervisor::control::{self, Observed};
use crate::supervisor::record::State;

/// One row of `ps`, also its JSON shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub service: String,
    pub state: State,
    /// Running from the user's point of view (or about to be restarted).
    pub up: bool,
    pub status: String,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Frozen by `stack pause`.
    pub paused: bool,
    pub restarts: u32,
    pub created: String,
    pub health: Option<crate::supervisor::record::Health>,
    /// `127.0.0.1:32768->80/tcp`
    pub ports: Vec<String>,
    /// A start-first update of it was rolled back: it still runs the
    /// previous config (the status says so too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<crate::reconcile::rollout::RolledBack>,
}

/// "running", "exited (3)", "exited (137, OOMKilled)", "restarting (2)", "dead"
/// (the monitor is gone while the record says running).
pub fn status_text(o: &Observed) -> String {
    let s = &o.status;
    let exit = || match (s.exit_code, s.oom_killed) {
        (Some(c), true) => format!("{c}, OOMKilled"),
        (Some(c), false) => c.to_string(),
        (None, _) => "?".into(),
    };
    match s.state {
        State::Running | State::Created if !o.monitor_alive => "dead (monitor gone)".into(),
        State::Running => format!("up {}", since(s.started_at)),
        State::Created => "created".into(),
        State::Restarting => format!("restarting ({}), last exit {}", s.restarts, exit()),
        State::Exited => format!("exited ({}) {} ago", exit(), since(s.finished_at)),
        State::Stopped => format!("stopped ({}) {} ago", exit(), since(s.finished_at)),
    }
}

/// Every container of `stack`, as `ps -a` shows them.
pub fn rows(roots: &Roots, stack: &str) -> Result<Vec<Row>, control::Error> {
    let observed = control::observe(&roots.lib, Some(stack))?;
    let net = crate::network::Manager::open(roots).ok();
    Ok(observed
        .iter()
        .map(|o| {
            (
                o,
                o.is_up() && crate::ops::pause::is_paused(roots, &o.spec.name),
            )
        })
        .map(|(o, paused)| (o, paused, rollout::rolled_back(&roots.lib, &o.spec.name)))
        .map(|(o, paused, rolled_back)| Row {
            name: o.spec.name.clone(),
            service: o.spec.service.clone(),
            state: o.status.state,
            up: o.is_up(),
            status: status_text(o)
                + if paused { " (paused)" } else { "" }
                + if rolled_back.is_some() {
                    " (rolled-back)"
                } else {
                    ""
                },
            rolled_back,
            paused,
            pid: o.status.pid.filter(|_| o.is_up()),
            exit_code: o.status.exit_code,
            oom_killed: o.status.oom_killed,
            restarts: o.status.restarts,
            created: humantime::format_rfc3339_seconds(o.spec.created).to_string(),
            health: o.status.health,
            ports: net
                .as_ref()
                .and_then(|n| n.published(&o.spec.name).ok())
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}->{}/{}",
                        p.host_addr(),
                        p.host_port,
                        p.container_port,
                        p.proto.as_str()
                    )
                })
                .collect(),
        })
        .collect())
}

/// Time since `secs` (seconds since the epoch) in its largest unit: "5s", "3m", "2days".
pub fn since(secs: Option<u64>) -> String {
    let Some(then) = secs else {
        return String::new();
    };
    let now = crate::supervisor::record::now_secs();
    let d = std::time::Duration::from_secs(now.saturating_sub(then));
    let text = humantime::format_duration(d).to_string();
    text.split_whitespace().next().unwrap_or("0s").to_string()
}
