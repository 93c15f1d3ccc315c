//! Which services a load includes: Compose profiles, as one pure function.
//!
//! Rules (Compose's, plus the command-line rule of the issue):
//! 1. A service without `profiles` is always enabled; one with `profiles` is
//!    enabled when any of its profiles is enabled (`*` enables all).
//! 2. A service named on the command line is included whatever its
//!    profiles, and so are its dependencies, transitively.
//! 3. A required dependency of an enabled service that is itself disabled
//!    is an error naming the profile to enable; an optional one
//!    (`required: false`) is left out.
use std::collections::{BTreeMap, BTreeSet};

/// What profile selection needs to know about one service.
#[derive(Debug, Clone, Default)]
pub struct ServiceProfiles {
    pub profiles: Vec<String>,
    /// (dependency, required)
    pub depends_on: Vec<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Services in the stack model.
    pub active: BTreeSet<String>,
    /// Services named on the command line plus their dependencies; equal to
    /// `active` when none were named.
    pub targeted: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    UnknownService(String),
    DisabledDependency {
        service: String,
        dependency: String,
        profiles: Vec<String>,
    },
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileError::UnknownService(s) => write!(f, "no service named `{s}`"),
            ProfileError::DisabledDependency {
                service,
                dependency,
                profiles,
            } => write!(
                f,
                "service `{service}` depends on `{dependency}`, which is not enabled: enable it with --profile {}",
                profiles.join(" or --profile ")
            ),
        }
    }
}

pub fn select(
    services: &BTreeMap<String, ServiceProfiles>,
    enabled: &[String],
    requested: &[String],
) -> Result<Selection, Vec<ProfileError>> {
    let all = enabled.iter().any(|p| p == "*");
    let is_enabled = |s: &ServiceProfiles| {
        s.profiles.is_empty() || all || s.profiles.iter().any(|p| enabled.contains(p))
    };
    let mut errors = Vec::new();
    let mut targeted = BTreeSet::new();
    let mut queue: Vec<String> = Vec::new();
    for r in requested {
        if services.contains_key(r) {
            queue.push(r.clone());
        } else {
            errors.push(ProfileError::UnknownService(r.clone()));
        }
    }
    // Rule 2: named services and everything they depend on.
    while let Some(name) = queue.pop() {
        if !targeted.insert(name.clone()) {
            continue;
        }
        if let Some(s) = services.get(&name) {
            for (dep, required) in &s.depends_on {
                let enabled_or_required = *required || services.get(dep).is_some_and(is_enabled);
                if services.contains_key(dep) && enabled_or_required {
                    queue.push(dep.clone());
                }
            }
        }
    }
    let mut active: BTreeSet<String> = services
        .iter()
        .filter(|(_, s)| is_enabled(s))
        .map(|(n, _)| n.clone())
        .collect();
    active.extend(targeted.iter().cloned());
    // Rule 3: every required dependency of an active service must be active.
    for name in &active {
        for (dep, required) in &services[name].depends_on {
            if *required
                && !active.contains(dep)
                && let Some(d) = services.get(dep)
            {
                errors.push(ProfileError::DisabledDependency {
                    service: name.clone(),
                    dependency: dep.clone(),
                    profiles: d.profiles.clone(),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let targeted = if requested.is_empty() {
        active.clone()
    } else {
        targeted
    };
    Ok(Selection { active, targeted })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(profiles: &[&str], deps: &[(&str, bool)]) -> ServiceProfiles {
        ServiceProfiles {
            profiles: profiles.iter().map(|s| s.to_string()).collect(),
            depends_on: deps.iter().map(|(d, r)| (d.to_string(), *r)).collect(),
        }
    }

    /// web (no profile) -> db (no profile); debug (profile debug) -> web;
    /// tools (profile tools) -> cache (profile cache); opt (no profile) ->
    /// metrics (profile metrics, optional).
    fn stack() -> BTreeMap<String, ServiceProfiles> {
        [
            ("web", svc(&[], &[("db", true)])),
            ("db", svc(&[], &[])),
            ("debug", svc(&["debug"], &[("web", true)])),
            ("tools", svc(&["tools"], &[("cache", true)])),
            ("cache", svc(&["cache"], &[])),
            ("opt", svc(&[], &[("metrics", false)])),
            ("metrics", svc(&["metrics"], &[])),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn truth_table() {
        // (enabled profiles, requested services) -> (active, targeted)
        let base = ["db", "opt", "web"];
        type Row<'a> = (&'a [&'a str], &'a [&'a str], Vec<&'a str>, Vec<&'a str>);
        let table: Vec<Row<'_>> = vec![
            (&[], &[], base.to_vec(), base.to_vec()),
            (
                &["debug"],
                &[],
                vec!["db", "debug", "opt", "web"],
                vec!["db", "debug", "opt", "web"],
            ),
            (
                &["metrics"],
                &[],
                vec!["db", "metrics", "opt", "web"],
                vec!["db", "metrics", "opt", "web"],
            ),
            (
                &["tools", "cache"],
                &[],
                vec!["cache", "db", "opt", "tools", "web"],
                vec!["cache", "db", "opt", "tools", "web"],
            ),
            // Naming a service brings it and its dependencies in, whatever their profiles.
            (
                &[],
                &["tools"],
                vec!["cache", "db", "opt", "tools", "web"],
                vec!["cache", "tools"],
            ),
            (
                &[],
                &["debug"],
                vec!["db", "debug", "opt", "web"],
                vec!["db", "debug", "web"],
            ),
            (&[], &["web"], base.to_vec(), vec!["db", "web"]),
            // An optional dependency is not pulled in by naming its dependent.
            (&[], &["opt"], base.to_vec(), vec!["opt"]),
            (
                &["*"],
                &[],
                vec!["cache", "db", "debug", "metrics", "opt", "tools", "web"],
                vec!["cache", "db", "debug", "metrics", "opt", "tools", "web"],
            ),
        ];
        for (enabled, requested, active, targeted) in table {
            let got = select(&stack(), &names(enabled), &names(requested))
                .unwrap_or_else(|e| panic!("{enabled:?} {requested:?}: {e:?}"));
            assert_eq!(
                got.active,
                set(&active),
                "active for {enabled:?} {requested:?}"
            );
            assert_eq!(
                got.targeted,
                set(&targeted),
                "targeted for {enabled:?} {requested:?}"
            );
        }
    }

    #[test]
    fn disabled_required_dependency_names_the_profile() {
        let errs = select(&stack(), &names(&["tools"]), &[]).expect_err("cache disabled");
        assert_eq!(
            errs,
            vec![ProfileError::DisabledDependency {
                service: "tools".into(),
                dependency: "cache".into(),
                profiles: names(&["cache"]),
            }]
        );
        assert!(errs[0].to_string().contains("--profile cache"));
    }

    #[test]
    fn unknown_requested_service() {
        let errs = select(&stack(), &[], &names(&["nope"])).expect_err("unknown");
        assert_eq!(errs, vec![ProfileError::UnknownService("nope".into())]);
    }
}
