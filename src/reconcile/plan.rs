//! A plan is a set difference between the containers the file asks for and the
//! containers that exist, keyed by name and compared by config hash. Pure: no I/O.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::supervisor::record::RecordedConfig;

/// One container the file asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    pub name: String,
    pub service: String,
    pub index: u32,
    pub hash: String,
    /// The service's normalized config, to explain what changed.
    pub config: serde_json::Value,
    /// Services whose recreation forces this one's (depends_on `restart: true`,
    /// `network_mode: service:X`).
    pub recreate_with: Vec<String>,
    /// A one-off container of `stack run` (its short id); never planned.
    pub run_id: Option<String>,
}

/// One container that exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Have {
    pub name: String,
    pub service: String,
    pub index: u32,
    pub hash: String,
    /// As recorded; parsed only to explain a recreate.
    pub config: RecordedConfig,
    pub running: bool,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Options {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub no_start: bool,
    pub remove_orphans: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Create {
        name: String,
        service: String,
    },
    Recreate {
        name: String,
        service: String,
        reasons: Vec<String>,
    },
    Start {
        name: String,
        service: String,
    },
    Remove {
        name: String,
        service: String,
        reason: String,
    },
}

impl Action {
    pub fn name(&self) -> &str {
        match self {
            Action::Create { name, .. }
            | Action::Recreate { name, .. }
            | Action::Start { name, .. }
            | Action::Remove { name, .. } => name,
        }
    }

    pub fn service(&self) -> &str {
        match self {
            Action::Create { service, .. }
            | Action::Recreate { service, .. }
            | Action::Start { service, .. }
            | Action::Remove { service, .. } => service,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create { name, .. } => write!(f, "create {name}"),
            Action::Recreate { name, reasons, .. } => {
                write!(f, "recreate {name}: {}", reasons.join(", "))
            }
            Action::Start { name, .. } => write!(f, "start {name}"),
            Action::Remove { name, reason, .. } => write!(f, "remove {name}: {reason}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Removals first, then creations and starts.
    pub actions: Vec<Action>,
    /// Containers of services no longer in the file, kept (reported) without
    /// `--remove-orphans`.
    pub orphans: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Compute what to do to turn `have` into `want`.
pub fn plan(want: &[Want], have: &[Have], opts: Options) -> Plan {
    let have_by_name: BTreeMap<&str, &Have> = have.iter().map(|h| (h.name.as_str(), h)).collect();
    let wanted: BTreeSet<&str> = want.iter().map(|w| w.name.as_str()).collect();
    let services: BTreeSet<&str> = want.iter().map(|w| w.service.as_str()).collect();
    let mut plan = Plan::default();

    for h in have.iter().filter(|h| !wanted.contains(h.name.as_str())) {
        if services.contains(h.service.as_str()) {
            let reason = "scaled down".to_string();
            plan.actions.push(Action::Remove {
                name: h.name.clone(),
                service: h.service.clone(),
                reason,
            });
        } else if opts.remove_orphans {
            let reason = "orphan (service not in the file)".to_string();
            plan.actions.push(Action::Remove {
                name: h.name.clone(),
                service: h.service.clone(),
                reason,
            });
        } else {
            plan.orphans.push(h.name.clone());
        }
    }

    let recreated = recreated_services(want, &have_by_name, opts);
    for w in want {
        let (name, service) = (w.name.clone(), w.service.clone());
        match have_by_name.get(w.name.as_str()) {
            None => plan.actions.push(Action::Create { name, service }),
            Some(h) => {
                if let Some(reasons) = recreate_reasons(w, h, &recreated, opts) {
                    plan.actions.push(Action::Recreate {
                        name,
                        service,
                        reasons,
                    });
                } else if !h.running && !opts.no_start {
                    plan.actions.push(Action::Start { name, service });
                }
            }
        }
    }
    plan
}

/// Services with at least one container recreated, closed over `recreate_with`.
fn recreated_services(
    want: &[Want],
    have: &BTreeMap<&str, &Have>,
    opts: Options,
) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = want
        .iter()
        .filter(|w| {
            have.get(w.name.as_str())
                .is_some_and(|h| own_reasons(w, h, opts).is_some())
        })
        .map(|w| w.service.clone())
        .collect();
    loop {
        let before = set.len();
        for w in want {
            if w.recreate_with.iter().any(|s| set.contains(s)) && have.contains_key(w.name.as_str())
            {
                set.insert(w.service.clone());
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

fn own_reasons(w: &Want, h: &Have, opts: Options) -> Option<Vec<String>> {
    if opts.no_recreate {
        return None;
    }
    if opts.force_recreate {
        return Some(vec!["--force-recreate".into()]);
    }
    if w.hash == h.hash {
        return None;
    }
    // A field outside the hash (replicas, depends_on) changed beside the
    // ones that recreate is no reason.
    let mut fields: Vec<String> = changed_fields(&h.config.value(), &w.config)
        .into_iter()
        .filter(|f| !crate::model::NOT_HASHED.contains(&f.split('.').next().unwrap_or_default()))
        .collect();
    if fields.is_empty() {
        fields.push("config hash".into());
    }
    Some(fields.into_iter().map(|f| format!("{f} changed")).collect())
}

fn recreate_reasons(
    w: &Want,
    h: &Have,
    recreated: &BTreeSet<String>,
    opts: Options,
) -> Option<Vec<String>> {
    if let Some(r) = own_reasons(w, h, opts) {
        return Some(r);
    }
    let deps: Vec<String> = w
        .recreate_with
        .iter()
        .filter(|s| recreated.contains(*s))
        .map(|s| format!("dependency {s} recreated"))
        .collect();
    (!deps.is_empty() && !opts.no_recreate).then_some(deps)
}

/// Dotted paths of the leaves that differ between two JSON values
/// (`environment.LOG_LEVEL`, `ports`).
pub fn changed_fields(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("", old, new, &mut out);
    out
}

fn diff_into(
    prefix: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_into(&path, x, y, out),
                    _ => out.push(path),
                }
            }
        }
        (a, b) if a != b => out.push(if prefix.is_empty() {
            "config".into()
        } else {
            prefix.into()
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn want(service: &str, index: u32, hash: &str) -> Want {
        Want {
            name: format!("s-{service}-{index}"),
            service: service.into(),
            index,
            hash: hash.into(),
            config: json!({ "hash": hash }),
            recreate_with: vec![],
            run_id: None,
        }
    }

    fn have(service: &str, index: u32, hash: &str, running: bool) -> Have {
        Have {
            name: format!("s-{service}-{index}"),
            service: service.into(),
            index,
            hash: hash.into(),
            config: RecordedConfig::new(&json!({ "hash": hash })),
            running,
        }
    }

    fn names(p: &Plan) -> Vec<String> {
        p.actions.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn unchanged_running_stack_needs_nothing() {
        let p = plan(
            &[want("web", 1, "a")],
            &[have("web", 1, "a", true)],
            Options::default(),
        );
        assert!(p.is_empty());
    }

    #[test]
    fn create_start_recreate_and_scale_down() {
        let w = [want("web", 1, "b"), want("db", 1, "a"), want("new", 1, "a")];
        let h = [
            have("web", 1, "a", true),
            have("web", 2, "a", true),
            have("db", 1, "a", false),
        ];
        let p = plan(&w, &h, Options::default());
        assert_eq!(
            names(&p),
            [
                "remove s-web-2: scaled down",
                "recreate s-web-1: hash changed",
                "start s-db-1",
                "create s-new-1"
            ]
        );
    }

    #[test]
    fn orphans_are_reported_unless_removal_is_asked() {
        let h = [have("old", 1, "a", true)];
        let p = plan(&[], &h, Options::default());
        assert!(p.actions.is_empty());
        assert_eq!(p.orphans, ["s-old-1"]);
        let p = plan(
            &[],
            &h,
            Options {
                remove_orphans: true,
                ..Default::default()
            },
        );
        assert_eq!(
            names(&p),
            ["remove s-old-1: orphan (service not in the file)"]
        );
    }

    #[test]
    fn dependents_with_restart_follow_a_recreated_dependency_transitively() {
        let mut app = want("app", 1, "a");
        app.recreate_with = vec!["db".into()];
        let mut proxy = want("proxy", 1, "a");
        proxy.recreate_with = vec!["app".into()];
        let other = want("other", 1, "a");
        let w = [want("db", 1, "b"), app, proxy, other];
        let h = [
            have("db", 1, "a", true),
            have("app", 1, "a", true),
            have("proxy", 1, "a", true),
            have("other", 1, "a", true),
        ];
        let p = plan(&w, &h, Options::default());
        assert_eq!(
            names(&p),
            [
                "recreate s-db-1: hash changed",
                "recreate s-app-1: dependency db recreated",
                "recreate s-proxy-1: dependency app recreated"
            ]
        );
    }

    #[test]
    fn force_and_no_recreate() {
        let w = [want("web", 1, "b")];
        let h = [have("web", 1, "a", true)];
        assert!(
            plan(
                &w,
                &h,
                Options {
                    no_recreate: true,
                    ..Default::default()
                }
            )
            .is_empty()
        );
        let same = [have("web", 1, "b", true)];
        let p = plan(
            &w,
            &same,
            Options {
                force_recreate: true,
                ..Default::default()
            },
        );
        assert_eq!(names(&p), ["recreate s-web-1: --force-recreate"]);
    }

    #[test]
    fn changed_fields_names_the_leaves() {
        let old = json!({"environment": {"A": "1", "B": "2"}, "image": "x", "ports": [1]});
        let new =
            json!({"environment": {"A": "1", "B": "3", "C": "4"}, "image": "x", "ports": [2]});
        assert_eq!(
            changed_fields(&old, &new),
            ["environment.B", "environment.C", "ports"]
        );
    }
}
