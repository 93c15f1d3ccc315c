//! Merging several stack files (`-f a -f b`) by Compose's rules:
//! - mappings merge key by key, later files win for scalars;
//! - in a service, `environment`, `labels`, `sysctls`, `extra_hosts`,
//!   `depends_on`, `networks` and `ulimits` merge by name, whether written as
//!   lists or maps; `volumes` merge by target path; `ports`, `expose`, `dns`,
//!   `cap_add` and the other lists of plain values are appended without
//!   duplicates; `command`, `entrypoint` and healthcheck `test` are replaced;
//! - `!reset` removes what earlier files set, `!override` replaces it whole.
use super::node::{Entry, Kind, MergeTag, Node};

/// Lists merged as maps keyed by name (`KEY=VALUE` or plain names).
const BY_NAME: [&str; 7] = [
    "environment",
    "labels",
    "sysctls",
    "extra_hosts",
    "depends_on",
    "networks",
    "ulimits",
];

/// Lists of values appended without duplicates.
const APPEND_UNIQUE: [&str; 15] = [
    "ports",
    "expose",
    "dns",
    "dns_search",
    "dns_opt",
    "tmpfs",
    "cap_add",
    "cap_drop",
    "security_opt",
    "group_add",
    "profiles",
    "env_file",
    "devices",
    "secrets",
    "configs",
];

/// Merges `over` onto `base` (whole files).
pub fn merge_files(base: Node, over: Node) -> Node {
    merge(base, over, &mut Vec::new())
}

/// Drops `!reset` entries of a file that has nothing to reset (the first one).
pub fn apply_resets(node: &mut Node) {
    match &mut node.kind {
        Kind::Map(entries) => {
            entries.retain(|e| e.value.tag != Some(MergeTag::Reset));
            entries.iter_mut().for_each(|e| apply_resets(&mut e.value));
        }
        Kind::Seq(items) => items.iter_mut().for_each(apply_resets),
        _ => {}
    }
}

fn merge(base: Node, mut over: Node, path: &mut Vec<String>) -> Node {
    if over.tag == Some(MergeTag::Override) {
        over.tag = None;
        apply_resets(&mut over);
        return over;
    }
    // In a service: services.<name>.<key>
    let service_key = (path.len() == 3 && path[0] == "services").then(|| path[2].clone());
    if let Some(key) = service_key.as_deref() {
        if BY_NAME.contains(&key) {
            return merge_maps(to_map(base, key), to_map(over, key), path);
        }
        if APPEND_UNIQUE.contains(&key) {
            return append_unique(base, over);
        }
        if key == "volumes" {
            return merge_by(base, over, volume_target);
        }
    }
    match (&base.kind, &over.kind) {
        (Kind::Map(_), Kind::Map(_)) => merge_maps(base, over, path),
        _ => {
            apply_resets(&mut over);
            over
        }
    }
}

fn merge_maps(base: Node, over: Node, path: &mut Vec<String>) -> Node {
    let span = over.span;
    let (Kind::Map(mut entries), Kind::Map(over_entries)) = (base.kind, over.kind) else {
        return Node::new(span, Kind::Null);
    };
    for e in over_entries {
        let existing = entries.iter().position(|b| b.key == e.key);
        match (existing, e.value.tag) {
            (Some(i), Some(MergeTag::Reset)) => {
                entries.remove(i);
            }
            (None, Some(MergeTag::Reset)) => {}
            (Some(i), _) => {
                path.push(e.key.clone());
                let old = std::mem::replace(&mut entries[i].value, Node::new(span, Kind::Null));
                entries[i].value = merge(old, e.value, path);
                entries[i].key_span = e.key_span;
                path.pop();
            }
            (None, _) => {
                let mut e = e;
                apply_resets(&mut e.value);
                entries.push(e);
            }
        }
    }
    Node::map(span, entries)
}

/// A list of `KEY=VALUE` (or `host:ip` for extra_hosts, or plain names) as a map.
fn to_map(node: Node, key: &str) -> Node {
    let Kind::Seq(items) = node.kind else {
        return node;
    };
    let entries = items
        .into_iter()
        .map(|item| {
            let text = item.as_str().map(str::to_string).unwrap_or_default();
            let split = text.split_once('=').or_else(|| {
                (key == "extra_hosts")
                    .then(|| text.split_once(':'))
                    .flatten()
            });
            let (k, v) = match split {
                Some((k, v)) => (k.to_string(), Node::str(item.span, v)),
                None => (text.clone(), Node::new(item.span, Kind::Null)),
            };
            Entry {
                key: k,
                key_span: item.span,
                value: v,
            }
        })
        .collect();
    Node {
        span: node.span,
        tag: node.tag,
        kind: Kind::Map(entries),
    }
}

fn append_unique(base: Node, over: Node) -> Node {
    match (base.kind, over.kind) {
        (Kind::Seq(mut items), Kind::Seq(more)) => {
            for m in more {
                if !items.iter().any(|i| same_value(i, &m)) {
                    items.push(m);
                }
            }
            Node::new(over.span, Kind::Seq(items))
        }
        (_, kind) => Node::new(over.span, kind),
    }
}

fn merge_by(base: Node, over: Node, key: fn(&Node) -> Option<String>) -> Node {
    match (base.kind, over.kind) {
        (Kind::Seq(mut items), Kind::Seq(more)) => {
            for m in more {
                let k = key(&m);
                match items.iter().position(|i| k.is_some() && key(i) == k) {
                    Some(pos) => items[pos] = m,
                    None => items.push(m),
                }
            }
            Node::new(over.span, Kind::Seq(items))
        }
        (_, kind) => Node::new(over.span, kind),
    }
}

/// Equality of values, ignoring where they were written.
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Seq(x), Kind::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Kind::Map(x), Kind::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.key == q.key && same_value(&p.value, &q.value))
        }
        (x, y) => x == y,
    }
}

/// The container path of a `volumes` item (short or long syntax).
fn volume_target(n: &Node) -> Option<String> {
    match &n.kind {
        Kind::Str(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(match parts.as_slice() {
                [t] => t.to_string(),
                [_, t, ..] => t.to_string(),
                [] => return None,
            })
        }
        Kind::Map(_) => n.get("target").and_then(Node::as_str).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml_src::parse;

    fn merged(a: &str, b: &str) -> Node {
        let mut base = parse(a, 0).expect("a");
        apply_resets(&mut base);
        merge_files(base, parse(b, 1).expect("b"))
    }

    fn strs(n: Option<&Node>) -> Vec<String> {
        match n.map(|n| &n.kind) {
            Some(Kind::Seq(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn web(n: &Node) -> &Node {
        n.get("services").and_then(|s| s.get("web")).expect("web")
    }

    #[test]
    fn scalars_override_and_maps_merge() {
        let n = merged(
            "services:\n  web:\n    image: a\n    environment: [A=1, B=2]\n",
            "services:\n  web:\n    image: b\n    environment:\n      B: 3\n      C: 4\n",
        );
        let w = web(&n);
        assert_eq!(w.get("image").and_then(Node::as_str), Some("b"));
        let env = w.get("environment").expect("env");
        let keys: Vec<&str> = env
            .entries()
            .expect("map")
            .iter()
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(keys, ["A", "B", "C"]);
        assert_eq!(env.get("A").and_then(Node::as_str), Some("1"));
        assert_eq!(env.get("B").map(|n| &n.kind), Some(&Kind::Int(3)));
    }

    #[test]
    fn lists_append_unique_and_volumes_merge_by_target() {
        let n = merged(
            "services:\n  web:\n    ports: ['80:80']\n    volumes: ['./a:/data', 'logs:/logs']\n    command: [a, b]\n",
            "services:\n  web:\n    ports: ['80:80', '443:443']\n    volumes: ['./b:/data:ro']\n    command: [c]\n",
        );
        let w = web(&n);
        assert_eq!(strs(w.get("ports")), ["80:80", "443:443"]);
        assert_eq!(strs(w.get("volumes")), ["./b:/data:ro", "logs:/logs"]);
        assert_eq!(strs(w.get("command")), ["c"]);
    }

    #[test]
    fn reset_and_override_tags() {
        let n = merged(
            "services:\n  web:\n    ports: ['80:80']\n    labels: {a: 1, b: 2}\n    init: true\n",
            "services:\n  web:\n    ports: !reset []\n    labels: !override {c: 3}\n    init: !reset null\n",
        );
        let w = web(&n);
        assert!(w.get("ports").is_none());
        assert!(w.get("init").is_none());
        let labels = w.get("labels").expect("labels");
        assert_eq!(labels.entries().map(<[Entry]>::len), Some(1));
        assert!(labels.get("c").is_some());
    }

    #[test]
    fn services_and_networks_add_up() {
        let n = merged(
            "services:\n  web:\n    image: a\n    networks: [front]\n",
            "services:\n  db:\n    image: d\n  web:\n    networks:\n      back:\n        aliases: [w]\n",
        );
        assert!(n.get("services").and_then(|s| s.get("db")).is_some());
        let nets = web(&n).get("networks").expect("networks");
        assert!(nets.get("front").is_some());
        assert!(nets.get("back").and_then(|b| b.get("aliases")).is_some());
    }
}
