//! Every kind of stack-file mistake is reported with its exact
//! `file:line:col`, and several are reported at once. No root needed.
use std::path::PathBuf;

use stack::spec::{self, LoadOptions};

/// Loads `files` (name, text) from a fresh temp dir; returns each error as
/// `file:line:col: message`.
fn errors_with(files: &[(&str, &str)], env: &[(&str, &str)], profiles: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let opts = LoadOptions {
        files: files
            .iter()
            .filter(|(n, _)| !n.starts_with('.') && !n.ends_with(".env"))
            .map(|(n, _)| PathBuf::from(n))
            .collect(),
        working_dir: dir.path().to_path_buf(),
        environment: Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
        ..LoadOptions::default()
    };
    match spec::load(&opts) {
        Ok(_) => Vec::new(),
        Err(d) => d.short().lines().map(str::to_string).collect(),
    }
}

fn errors(name: &str, text: &str) -> Vec<String> {
    errors_with(&[(name, text)], &[], &[])
}

fn assert_has(errs: &[String], want: &str) {
    assert!(
        errs.iter().any(|e| e == want),
        "expected error\n  {want}\ngot:\n  {}",
        errs.join("\n  ")
    );
}

#[test]
fn toml_unknown_keys_and_types_point_at_the_key_or_value() {
    let text = r#"name = "t"
[services.web]
image = "busybox"
imgae = "x"
init = "maybe"
stop_grace_period = "10x"
mem_limit = "12q"
ports = ["8080:80", "70000:80"]
"#;
    let errs = errors("stack.toml", text);
    assert_has(&errs, "stack.toml:4:1: service `web`: unknown key `imgae`");
    assert_has(
        &errs,
        "stack.toml:5:8: service `web`: expected a boolean, found string \"maybe\"",
    );
    assert_has(
        &errs,
        "stack.toml:6:21: service `web`: invalid duration `10x`: expected e.g. `10s`, `1m30s`, `500ms` or a number of seconds",
    );
    assert_has(
        &errs,
        "stack.toml:7:13: service `web`: invalid size `12q`: expected bytes or a number with a unit, e.g. `256m`, `1g`",
    );
    assert_has(
        &errs,
        "stack.toml:8:21: service `web`: invalid port `70000:80`: host port must be 1-65535 or a range",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn did_you_mean_is_in_the_rendered_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stack.toml"),
        "[services.web]\nimage = \"busybox\"\ncomand = \"x\"\n",
    )
    .expect("write");
    let opts = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        environment: Some(Default::default()),
        ..LoadOptions::default()
    };
    let d = spec::load(&opts).expect_err("invalid");
    let text = d.to_string();
    assert!(text.contains("stack.toml:3:1"), "{text}");
    assert!(text.contains("comand = \"x\""), "{text}");
    assert!(text.contains("did you mean `command`?"), "{text}");
    let located = d.located();
    assert_eq!((located[0].line, located[0].column), (3, 1));
}

#[test]
fn yaml_errors_point_into_the_compose_file() {
    let text = "services:
  web:
    image: busybox
    networks: [front, bakc]
    volumes: [data:/data]
    secrets: [token]
    depends_on: [db]
    build: .
  api:
    image: busybox
    ports: ['127.0.0.1:8080:80']
    container_name: same
  other:
    image: busybox
    ports: ['8080:81']
    container_name: same
networks:
  front:
  back:
    ipam:
      config:
        - subnet: 10.0.0/24
";
    let errs = errors("compose.yaml", text);
    assert_has(&errs, "compose.yaml:8:5: `build` is not supported");
    assert_has(
        &errs,
        "compose.yaml:4:23: service `web` uses network `bakc`, which is not defined",
    );
    assert_has(
        &errs,
        "compose.yaml:5:15: service `web` uses volume `data`, which is not defined",
    );
    assert_has(
        &errs,
        "compose.yaml:6:15: service `web` uses secret `token`, which is not defined",
    );
    assert_has(
        &errs,
        "compose.yaml:7:18: service `web` uses service `db`, which is not defined",
    );
    assert_has(
        &errs,
        "compose.yaml:22:19: network `back`: invalid subnet `10.0.0/24`: expected CIDR like 10.89.0.0/24",
    );
    assert_has(
        &errs,
        "compose.yaml:16:21: container name `same` is used by services `api` and `other`",
    );
    assert_has(
        &errs,
        "compose.yaml:15:13: service `other` publishes 8080/tcp which service `api` already publishes",
    );
}

#[test]
fn dependency_cycles_are_reported_once_with_the_path() {
    let text = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n";
    let errs = errors("compose.yaml", text);
    assert_eq!(
        errs,
        vec!["compose.yaml:4:18: dependency cycle: a -> b -> c -> a".to_string()]
    );
}

#[test]
fn syntax_errors() {
    let errs = errors("stack.toml", "[services.web]\nimage = \"x\"\ninit = \n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("stack.toml:3:8: invalid TOML"),
        "{errs:?}"
    );
    let errs = errors(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    image: y\n",
    );
    assert_eq!(
        errs,
        vec!["compose.yaml:4:5: duplicate key `image` in this mapping".to_string()]
    );
    let errs = errors("compose.yaml", "services:\n  web: [unclosed\n");
    assert_eq!(
        errs,
        vec!["compose.yaml:2:8: invalid YAML: unclosed bracket '['".to_string()]
    );
}

#[test]
fn interpolation_errors_point_at_the_string() {
    let text = "services:\n  web:\n    image: \"busybox:${TAG:?set TAG}\"\n    command: echo $ 5\n";
    let errs = errors("compose.yaml", text);
    assert_has(
        &errs,
        "compose.yaml:3:12: required variable TAG is missing a value: set TAG",
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("compose.yaml:4:14: invalid interpolation")),
        "{errs:?}"
    );
}

#[test]
fn top_level_and_missing_image() {
    let errs = errors(
        "stack.toml",
        "servces = {}\n[services.web]\ncommand = \"x\"\n",
    );
    assert_has(&errs, "stack.toml:1:1: unknown top-level key `servces`");
    assert_has(
        &errs,
        "stack.toml:2:1: service `web`: no `image` or `rootfs`",
    );
}

#[test]
fn disabled_dependency_names_the_profile() {
    let text = "[services.web]\nimage = \"x\"\ndepends_on = [\"debug\"]\n[services.debug]\nimage = \"x\"\nprofiles = [\"dev\"]\n";
    let errs = errors("stack.toml", text);
    assert_eq!(
        errs,
        vec!["stack.toml:3:15: service `web` depends on `debug`, which is not enabled: enable it with --profile dev".to_string()]
    );
    assert!(errors_with(&[("stack.toml", text)], &[], &["dev"]).is_empty());
}

#[test]
fn conflicting_spellings_are_errors() {
    let text = "services:\n  web:\n    image: x\n    mem_limit: 64m\n    scale: 2\n    deploy:\n      replicas: 3\n      resources:\n        limits: {memory: 32m}\n";
    let errs = errors("compose.yaml", text);
    assert_has(
        &errs,
        "compose.yaml:7:17: service `web`: scale is 2 but deploy.replicas is 3: give one",
    );
    assert_has(
        &errs,
        "compose.yaml:9:26: service `web`: mem_limit is 67108864 but deploy.resources.limits.memory is 33554432: give one",
    );
}

#[test]
fn errors_in_the_second_file_name_that_file() {
    let errs = errors_with(
        &[
            ("compose.yaml", "services:\n  web:\n    image: busybox\n"),
            (
                "override.yaml",
                "services:\n  web:\n    restart: sometimes\n",
            ),
        ],
        &[],
        &[],
    );
    assert_eq!(
        errs,
        vec!["override.yaml:3:14: service `web`: invalid restart policy `sometimes`: expected no, always, on-failure[:N] or unless-stopped".to_string()]
    );
}

#[test]
fn field_value_errors_name_the_field_and_the_fix() {
    let text = r#"[services.web]
image = "x"
cap_add = ["NET_ADMN"]
security_opt = ["label=disable"]
ulimits = { nofiles = 10, nproc = { soft = 10, hard = 5 } }
stop_signal = "SIGFOO"
network_mode = "bogus:abc"
logging = { driver = "syslog" }
pull_policy = "build"
oom_score_adj = 5000
cpuset = "3-1"
expose = ["80/icmp"]
extra_hosts = ["nohost"]
dns = ["dns.example"]
[services.web.healthcheck]
test = ["RUN", "x"]
[services.api]
image = "x"
networks = { back = { ipv4_address = "10.1.0.5" } }
deploy = { restart_policy = { condition = "never" } }
[networks.back]
ipam = { config = [{ subnet = "10.0.0.0/24", gateway = "10.9.9.9", ip_range = "10.1.0.0/25" }] }
driver_opts = { foo = "1" }
[volumes.v]
driver_opts = { type = "nfs", o = "addr=1.2.3.4", device = ":/x" }
"#;
    let errs = errors("stack.toml", text);
    for want in [
        "stack.toml:3:12: service `web`: unknown capability `NET_ADMN`",
        "stack.toml:4:17: service `web`: security_opt `label=disable` is not supported",
        "stack.toml:5:13: service `web`: unknown ulimit `nofiles`",
        "stack.toml:5:27: service `web`: ulimit nproc: soft limit 10 exceeds hard limit 5",
        "stack.toml:6:15: service `web`: unknown signal `SIGFOO`",
        "stack.toml:7:16: service `web`: network_mode `bogus:abc` is not supported",
        "stack.toml:8:22: service `web`: logging driver `syslog` is not supported: expected json-file, local, none or journald",
        "stack.toml:9:15: service `web`: pull_policy `build` needs `build:`, and stack does not build images",
        "stack.toml:10:17: service `web`: oom_score_adj 5000 is outside -1000..1000",
        "stack.toml:11:10: service `web`: invalid cpuset `3-1`: expected a list like 0-3,5",
        "stack.toml:12:11: service `web`: unknown protocol `icmp`: expected tcp, udp or sctp",
        "stack.toml:13:16: service `web`: `nohost` is not host:ip",
        "stack.toml:14:8: service `web`: dns server `dns.example` is not an IP address",
        "stack.toml:16:1: service `web`: healthcheck test must start with CMD, CMD-SHELL or NONE, followed by the command",
        "stack.toml:20:43: service `api`: unknown restart condition `never`: expected none, on-failure or any",
        "stack.toml:22:56: network `back`: gateway `10.9.9.9` is not an address inside 10.0.0.0/24",
        "stack.toml:22:79: network `back`: ip_range `10.1.0.0/25` is not a CIDR inside 10.0.0.0/24",
        "stack.toml:23:17: network `back`: network driver option `foo` is not supported",
        "stack.toml:25:1: volume `v`: these volume driver_opts are not supported",
        "stack.toml:19:14: service `api`: address 10.1.0.5 is outside every subnet of network `back`",
    ] {
        assert_has(&errs, want);
    }
}

#[test]
fn replicas_share_a_fixed_host_port_except_on_ipv6_loopback() {
    let shared = "services:\n  web:\n    image: x\n    deploy: {replicas: 3}\n    ports: ['127.0.0.1:8080:80', '9090:80']\n";
    assert_eq!(errors("compose.yaml", shared), Vec::<String>::new());
    let v6lo = "services:\n  web:\n    image: x\n    deploy: {replicas: 2}\n    ports: ['[::1]:8080:80']\n";
    assert_eq!(
        errors("compose.yaml", v6lo),
        vec!["compose.yaml:5:13: service `web` has 2 replicas but publishes fixed host port [::1]:8080, which only one container can hold: publish it on 127.0.0.1 or another address, or use one replica".to_string()]
    );
}

#[test]
fn update_config_values_are_checked() {
    let text = "services:\n  web:\n    image: x\n    deploy:\n      update_config:\n        order: sideways\n        failure_action: pause\n        monitor: soon\n";
    let errs = errors("compose.yaml", text);
    assert_has(
        &errs,
        "compose.yaml:6:16: service `web`: unknown update order `sideways`: use start-first or stop-first",
    );
    assert_has(
        &errs,
        "compose.yaml:7:25: service `web`: failure_action `pause` has no meaning for a one-shot `up`: use rollback (keep the old container) or continue",
    );
    assert!(
        errs.iter().any(|e| e.starts_with("compose.yaml:8:18:")),
        "{errs:?}"
    );
    let ok = "services:\n  web:\n    image: x\n    deploy:\n      update_config: {order: start-first, failure_action: continue, monitor: 30s}\n";
    assert_eq!(errors("compose.yaml", ok), Vec::<String>::new());
}

#[test]
fn an_unknown_log_tag_marker_points_at_the_tag() {
    let text = r#"name = "t"
[services.web]
image = "busybox"
logging = { driver = "journald", options = { tag = "{{.Name}}/{{.Hostname}}" } }
"#;
    let errs = errors("stack.toml", text);
    assert_has(
        &errs,
        "stack.toml:4:52: service `web`: logging option `tag`: unknown marker `{{.Hostname}}`: expected {{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageName}} or {{.DaemonName}}",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");

    let yaml = "services:\n  web:\n    image: busybox\n    logging:\n      options:\n        tag: \"{{.ID\"\n";
    let errs = errors("compose.yaml", yaml);
    assert_has(
        &errs,
        "compose.yaml:6:14: service `web`: logging option `tag`: `{{` at byte 0 is never closed with `}}`",
    );
}
