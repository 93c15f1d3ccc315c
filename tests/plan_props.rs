//! Property: a random edit of a random stack recreates exactly the edited
//! services and their dependency closure (dependents with `depends_on:
//! restart: true` and `network_mode: service:`), nothing more, nothing less;
//! scaling creates and removes only the replicas it adds and drops. Loads real
//! files through the spec loader, plans with the pure planner. No root needed.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};
use stack::reconcile::desired::{selected, wants};
use stack::reconcile::plan::{Action, Have, Options, plan};

const NETWORKS: usize = 2;
const CONFIGS: usize = 2;

#[derive(Debug, Clone)]
struct Svc {
    env: u8,
    scale: u32,
    /// (dependency, restart: true); dependencies have lower numbers (no cycle).
    deps: Vec<(usize, bool)>,
    /// `network_mode: service:<n>` (then it joins no network itself).
    net_of: Option<usize>,
    networks: [bool; NETWORKS],
    configs: [bool; CONFIGS],
}

#[derive(Debug, Clone)]
struct Gen {
    services: Vec<Svc>,
    internal: [bool; NETWORKS],
    contents: [u8; CONFIGS],
}

/// What the edit changes; indexes past the stack's services are ignored.
#[derive(Debug, Clone)]
struct Edit {
    env: Vec<bool>,
    scale: Vec<u32>,
    /// Flip the `restart` flag of dependency k of service i (i*3+k).
    restart: Vec<bool>,
    internal: [bool; NETWORKS],
    contents: [bool; CONFIGS],
}

fn svc(i: usize) -> impl Strategy<Value = Svc> {
    (
        any::<u8>(),
        1..=3u32,
        prop::collection::vec((any::<usize>(), any::<bool>()), 0..3),
        prop::option::of(any::<usize>()),
        any::<[bool; NETWORKS]>(),
        any::<[bool; CONFIGS]>(),
    )
        .prop_map(move |(env, scale, deps, net_of, networks, configs)| {
            let mut seen = BTreeSet::new();
            let deps = match i {
                0 => Vec::new(),
                _ => deps
                    .into_iter()
                    .map(|(j, r)| (j % i, r))
                    .filter(|(j, _)| seen.insert(*j))
                    .collect(),
            };
            Svc {
                env,
                scale,
                deps,
                net_of: net_of.filter(|_| i > 0).map(|j| j % i),
                networks,
                configs,
            }
        })
}

fn stack_gen() -> impl Strategy<Value = Gen> {
    (1..=6usize)
        .prop_flat_map(|n| (0..n).map(svc).collect::<Vec<_>>())
        .prop_flat_map(|services| {
            (
                Just(services),
                any::<[bool; NETWORKS]>(),
                any::<[u8; CONFIGS]>(),
            )
        })
        .prop_map(|(services, internal, contents)| Gen {
            services,
            internal,
            contents,
        })
}

fn edit_gen() -> impl Strategy<Value = Edit> {
    (
        prop::collection::vec(any::<bool>(), 6),
        prop::collection::vec(1..=3u32, 6),
        prop::collection::vec(any::<bool>(), 18),
        any::<[bool; NETWORKS]>(),
        any::<[bool; CONFIGS]>(),
    )
        .prop_map(|(env, scale, restart, internal, contents)| Edit {
            env,
            scale,
            restart,
            internal,
            contents,
        })
}

fn apply(g: &Gen, e: &Edit) -> Gen {
    let mut g = g.clone();
    for (i, s) in g.services.iter_mut().enumerate() {
        if e.env[i] {
            s.env = s.env.wrapping_add(1);
        }
        s.scale = e.scale[i];
        for (k, d) in s.deps.iter_mut().enumerate() {
            d.1 ^= e.restart[i * 3 + k];
        }
    }
    for k in 0..NETWORKS {
        g.internal[k] ^= e.internal[k];
    }
    for k in 0..CONFIGS {
        g.contents[k] = g.contents[k].wrapping_add(u8::from(e.contents[k]));
    }
    g
}

/// The compose file (JSON is YAML) and the config files' contents.
fn write(dir: &Path, g: &Gen) -> PathBuf {
    let mut services = serde_json::Map::new();
    for (i, s) in g.services.iter().enumerate() {
        let mut v = json!({
            "image": "busybox",
            "command": ["sleep", "1000"],
            "environment": {"A": s.env.to_string()},
            "scale": s.scale,
        });
        let deps: serde_json::Map<String, Value> = s
            .deps
            .iter()
            .map(|(j, r)| {
                let d = json!({"condition": "service_started", "restart": r});
                (format!("s{j}"), d)
            })
            .collect();
        if !deps.is_empty() {
            v["depends_on"] = Value::Object(deps);
        }
        match s.net_of {
            Some(j) => v["network_mode"] = json!(format!("service:s{j}")),
            None => {
                let nets: Vec<String> = (0..NETWORKS)
                    .filter(|k| s.networks[*k])
                    .map(|k| format!("n{k}"))
                    .collect();
                if !nets.is_empty() {
                    v["networks"] = json!(nets);
                }
            }
        }
        let configs: Vec<String> = (0..CONFIGS)
            .filter(|k| s.configs[*k])
            .map(|k| format!("c{k}"))
            .collect();
        if !configs.is_empty() {
            v["configs"] = json!(configs);
        }
        services.insert(format!("s{i}"), v);
    }
    let networks: serde_json::Map<String, Value> = (0..NETWORKS)
        .map(|k| (format!("n{k}"), json!({"internal": g.internal[k]})))
        .collect();
    let configs: serde_json::Map<String, Value> = (0..CONFIGS)
        .map(|k| (format!("c{k}"), json!({"file": format!("./c{k}.txt")})))
        .collect();
    for k in 0..CONFIGS {
        std::fs::write(dir.join(format!("c{k}.txt")), [g.contents[k]]).unwrap();
    }
    let doc = json!({"name": "p", "services": services, "networks": networks, "configs": configs});
    let file = dir.join("compose.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    file
}

fn load(dir: &Path, g: &Gen) -> stack::model::Stack {
    let file = write(dir, g);
    let opts = stack::spec::LoadOptions {
        files: vec![file],
        working_dir: dir.to_path_buf(),
        environment: Some(BTreeMap::new()),
        ..Default::default()
    };
    match stack::spec::load(&opts) {
        Ok(l) => l.stack,
        Err(d) => panic!("generated stack does not load: {}", d.short()),
    }
}

/// The services the edit must recreate, computed from the generator alone:
/// those whose own config changed, closed over the new file's dependents.
fn expected(old: &Gen, new: &Gen) -> BTreeSet<String> {
    let own = |i: usize, s: &Svc| {
        s.env != old.services[i].env
            || (0..CONFIGS).any(|k| s.configs[k] && new.contents[k] != old.contents[k])
            || (s.net_of.is_none()
                && (0..NETWORKS).any(|k| s.networks[k] && new.internal[k] != old.internal[k]))
    };
    let mut set: BTreeSet<usize> = (new.services.iter().enumerate())
        .filter(|(i, s)| own(*i, s))
        .map(|(i, _)| i)
        .collect();
    loop {
        let before = set.len();
        for (i, s) in new.services.iter().enumerate() {
            let follows = s.deps.iter().any(|(j, r)| *r && set.contains(j))
                || s.net_of.is_some_and(|j| set.contains(&j));
            if follows {
                set.insert(i);
            }
        }
        if set.len() == before {
            return set.into_iter().map(|i| format!("s{i}")).collect();
        }
    }
}

fn all_wants(s: &stack::model::Stack) -> Vec<stack::reconcile::plan::Want> {
    wants(s, &selected(s, &[]), &BTreeMap::new())
}

/// Every container of `s` exists and runs, as `up` left it.
fn running(s: &stack::model::Stack) -> Vec<Have> {
    all_wants(s)
        .into_iter()
        .map(|w| Have {
            name: w.name,
            service: w.service,
            index: w.index,
            hash: w.hash,
            config: stack::supervisor::record::RecordedConfig::new(&w.config),
            running: true,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn an_edit_recreates_exactly_the_dependency_closure(g in stack_gen(), e in edit_gen()) {
        let dir = tempfile::tempdir().unwrap();
        let new_g = apply(&g, &e);
        let old = load(dir.path(), &g);
        let have = running(&old);
        let new = load(dir.path(), &new_g);
        let want = all_wants(&new);
        let p = plan(&want, &have, Options::default());

        let closure = expected(&g, &new_g);
        let had: BTreeSet<&str> = have.iter().map(|h| h.name.as_str()).collect();
        let wanted: BTreeSet<&str> = want.iter().map(|w| w.name.as_str()).collect();
        let kind = |f: fn(&Action) -> bool| -> BTreeSet<String> {
            p.actions.iter().filter(|a| f(a)).map(|a| a.name().to_string()).collect()
        };
        let recreated = kind(|a| matches!(a, Action::Recreate { .. }));
        let want_recreated: BTreeSet<String> = want
            .iter()
            .filter(|w| closure.contains(&w.service) && had.contains(w.name.as_str()))
            .map(|w| w.name.clone())
            .collect();
        prop_assert_eq!(&recreated, &want_recreated, "closure {:?}, plan {:?}", closure, p.actions);
        for a in &p.actions {
            if let Action::Recreate { reasons, .. } = a {
                let beside = reasons.iter().find(|r| r.starts_with("replicas") || r.starts_with("depends_on"));
                prop_assert!(beside.is_none(), "{:?}", a);
            }
        }
        let created = kind(|a| matches!(a, Action::Create { .. }));
        let want_created: BTreeSet<String> =
            wanted.difference(&had).map(|s| s.to_string()).collect();
        prop_assert_eq!(created, want_created);
        let removed = kind(|a| matches!(a, Action::Remove { .. }));
        let want_removed: BTreeSet<String> =
            had.difference(&wanted).map(|s| s.to_string()).collect();
        prop_assert_eq!(removed, want_removed);
        let started = kind(|a| matches!(a, Action::Start { .. }));
        prop_assert!(started.is_empty(), "{:?}", started);
        prop_assert!(p.orphans.is_empty());
    }

    #[test]
    fn an_unchanged_stack_plans_nothing(g in stack_gen()) {
        let dir = tempfile::tempdir().unwrap();
        let s = load(dir.path(), &g);
        let have = running(&s);
        let again = load(dir.path(), &g);
        let p = plan(&all_wants(&again), &have, Options::default());
        prop_assert!(p.is_empty(), "{:?}", p.actions);
    }
}
