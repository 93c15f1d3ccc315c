//! Loading behaviour a user relies on: file discovery, project names,
//! variables, merging, profiles, and the values of every field. No root.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stack::model::*;
use stack::spec::{self, LoadOptions, Loaded};

struct Dir(tempfile::TempDir);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        Dir(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions {
            working_dir: self.path().to_path_buf(),
            environment: Some(BTreeMap::new()),
            ..LoadOptions::default()
        }
    }

    fn load(&self, opts: LoadOptions) -> Loaded {
        spec::load(&opts).unwrap_or_else(|d| panic!("load failed:\n{d}"))
    }
}

fn env(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn default_files_and_override_are_found_in_order() {
    let d = Dir::new(&[
        ("compose.yaml", "services:\n  web:\n    image: a\n"),
        (
            "compose.override.yaml",
            "services:\n  web:\n    init: true\n",
        ),
        ("docker-compose.yml", "services:\n  other:\n    image: b\n"),
    ]);
    let l = d.load(d.opts());
    assert_eq!(
        l.files,
        vec![
            d.path().join("compose.yaml"),
            d.path().join("compose.override.yaml")
        ]
    );
    assert!(l.stack.services["web"].init);
    assert!(!l.stack.services.contains_key("other"));
    // stack.toml wins over compose files.
    std::fs::write(d.path().join("stack.toml"), "[services.t]\nimage = \"t\"\n").expect("write");
    let l = d.load(d.opts());
    assert_eq!(l.files, vec![d.path().join("stack.toml")]);
    let none = Dir::new(&[]);
    let err = spec::load(&none.opts()).expect_err("no file").to_string();
    assert!(err.contains("no stack file in"), "{err}");
}

#[test]
fn project_name_precedence() {
    let d = Dir::new(&[(
        "My_App.Dir/stack.toml",
        "name = \"from-file\"\n[services.w]\nimage = \"x\"\n",
    )]);
    let mut opts = d.opts();
    opts.working_dir = d.path().join("My_App.Dir");
    assert_eq!(d.load(opts.clone()).stack.name, "from-file");
    opts.environment = env(&[("COMPOSE_PROJECT_NAME", "from-env")]);
    assert_eq!(d.load(opts.clone()).stack.name, "from-env");
    opts.project_name = Some("from-flag".into());
    assert_eq!(d.load(opts.clone()).stack.name, "from-flag");
    // Without any, the directory name, normalized as Compose does.
    std::fs::write(
        d.path().join("My_App.Dir/stack.toml"),
        "[services.w]\nimage = \"x\"\n",
    )
    .expect("write");
    opts.project_name = None;
    opts.environment = env(&[]);
    let l = d.load(opts);
    assert_eq!(l.stack.name, "my_appdir");
    assert_eq!(l.stack.networks["default"].name, "my_appdir_default");
}

#[test]
fn variables_come_from_env_file_then_process() {
    let d = Dir::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: busybox:${TAG}\n    environment:\n      A: ${A:-none}\n      B: $B\n",
        ),
        (".env", "TAG=1.36\nA=from-dotenv\nB=b-dotenv\n"),
        ("other.env", "TAG=2\n"),
    ]);
    let l = d.load(d.opts());
    let web = &l.stack.services["web"];
    assert_eq!(
        web.image,
        ImageSource::Registry("docker.io/library/busybox:1.36".into())
    );
    assert_eq!(web.environment["A"], "from-dotenv");
    let mut opts = d.opts();
    opts.environment = env(&[("A", "from-process")]);
    assert_eq!(
        d.load(opts).stack.services["web"].environment["A"],
        "from-process"
    );
    // --env-file replaces .env.
    let mut opts = d.opts();
    opts.env_files = vec![PathBuf::from("other.env")];
    let l = d.load(opts);
    assert_eq!(
        l.stack.services["web"].image,
        ImageSource::Registry("docker.io/library/busybox:2".into())
    );
    assert_eq!(l.stack.services["web"].environment["A"], "none");
    assert_eq!(l.stack.services["web"].environment["B"], "");
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("the B variable is not set")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn env_file_contents_are_merged_and_hashed() {
    let d = Dir::new(&[
        (
            "stack.toml",
            "[services.web]\nimage = \"x\"\nenv_file = \"web.env\"\nenvironment = { B = \"explicit\" }\n",
        ),
        ("web.env", "A=1\nB=from-file\n"),
    ]);
    let l = d.load(d.opts());
    let web = &l.stack.services["web"];
    assert_eq!(
        web.environment,
        BTreeMap::from([("A".into(), "1".into()), ("B".into(), "explicit".into())])
    );
    let before = web.config_hash(&l.stack);
    std::fs::write(d.path().join("web.env"), "A=2\nB=from-file\n").expect("write");
    let l = d.load(d.opts());
    assert_ne!(
        l.stack.services["web"].config_hash(&l.stack),
        before,
        "env_file content is part of the hash"
    );
    std::fs::remove_file(d.path().join("web.env")).expect("rm");
    let err = spec::load(&d.opts()).expect_err("missing env_file").short();
    assert!(
        err.starts_with("stack.toml:3:12: service `web`: cannot read env_file"),
        "{err}"
    );
}

#[test]
fn hash_ignores_key_order_and_formatting() {
    let a = Dir::new(&[(
        "stack.toml",
        "[services.web]\nimage = \"x\"\nenvironment = { A = \"1\", B = \"2\" }\nlabels = { x = \"1\", y = \"2\" }\ninit = true\n",
    )]);
    let b = Dir::new(&[(
        "compose.yaml",
        "services:\n  web:\n    init: true\n    labels: [y=2, x=1]\n    environment:\n      B: 2\n      A: 1\n    image: x\n",
    )]);
    let mut ob = b.opts();
    ob.project_name = Some(a.load(a.opts()).stack.name);
    let la = a.load(a.opts());
    let lb = b.load(ob);
    assert_eq!(
        la.stack.services["web"].config_hash(&la.stack),
        lb.stack.services["web"].config_hash(&lb.stack)
    );
}

#[test]
fn multi_file_merge_with_reset_and_override() {
    let d = Dir::new(&[
        (
            "a.yaml",
            "services:\n  web:\n    image: x\n    ports: ['8080:80']\n    volumes: ['./a:/data', 'logs:/logs']\n    environment: [A=1]\n    command: [one, two]\nvolumes:\n  logs:\n",
        ),
        (
            "b.toml",
            "[services.web]\nvolumes = [\"./b:/data:ro\"]\nenvironment = { B = \"2\" }\ncommand = [\"three\"]\n",
        ),
        (
            "c.yaml",
            "services:\n  web:\n    ports: !reset []\n    environment: !override {C: 3}\n",
        ),
    ]);
    let mut opts = d.opts();
    opts.files = vec!["a.yaml".into(), "b.toml".into(), "c.yaml".into()];
    let web = d.load(opts).stack.services["web"].clone();
    assert!(web.ports.is_empty());
    assert_eq!(web.environment, BTreeMap::from([("C".into(), "3".into())]));
    assert_eq!(web.command, Some(vec!["three".to_string()]));
    let data = web
        .volumes
        .iter()
        .find(|m| m.target == "/data")
        .expect("/data");
    assert!(data.read_only);
    assert_eq!(
        data.kind,
        MountKind::Bind {
            source: d.path().join("b"),
            create_host_path: true,
            propagation: None
        }
    );
    assert!(web.volumes.iter().any(|m| m.target == "/logs"));
}

#[test]
fn profiles_from_dotenv_and_named_services() {
    let text = "services:\n  web:\n    image: x\n  debug:\n    image: x\n    profiles: [dev]\n    depends_on: [helper]\n  helper:\n    image: x\n    profiles: [helperp]\n  opt:\n    image: x\n    depends_on:\n      metrics: {condition: service_started, required: false}\n  metrics:\n    image: x\n    profiles: [metrics]\n";
    let d = Dir::new(&[("compose.yaml", text)]);
    let l = d.load(d.opts());
    assert_eq!(l.stack.services.keys().collect::<Vec<_>>(), ["opt", "web"]);
    assert!(
        l.stack.services["opt"].depends_on.is_empty(),
        "optional disabled dependency is dropped"
    );
    let mut opts = d.opts();
    opts.services = vec!["debug".into()];
    let l = d.load(opts);
    assert_eq!(l.targeted, ["debug", "helper"]);
    assert!(l.stack.services.contains_key("web"));
    std::fs::write(d.path().join(".env"), "COMPOSE_PROFILES=dev,helperp\n").expect("write");
    let l = d.load(d.opts());
    assert!(l.stack.services.contains_key("debug") && l.stack.services.contains_key("helper"));
}

#[test]
fn extension_keys_are_ignored_everywhere() {
    let d = Dir::new(&[(
        "compose.yaml",
        "x-top: 1
services:
  web:
    image: x
    x-note: hi
    labels:
      x-kept: yes
networks:
  n:
    x-net: 1
volumes:
  v:
    x-vol: 1
",
    )]);
    let l = d.load(d.opts());
    assert_eq!(
        l.stack.services["web"].labels["x-kept"], "yes",
        "labels are data, not extensions"
    );
    assert!(l.stack.networks.contains_key("n") && l.stack.volumes.contains_key("v"));
}

#[test]
fn defaults_are_applied() {
    let d = Dir::new(&[("stack.toml", "[services.web]\nimage = \"busybox\"\n")]);
    let l = d.load(d.opts());
    let web = &l.stack.services["web"];
    assert_eq!(
        web.image,
        ImageSource::Registry("docker.io/library/busybox:latest".into())
    );
    assert_eq!(web.restart, RestartPolicy::No);
    assert_eq!(web.replicas, 1);
    assert_eq!(web.stop_grace_period, Duration::from_secs(10));
    assert_eq!(web.network_mode, NetworkMode::Bridge);
    assert_eq!(web.networks.keys().collect::<Vec<_>>(), ["default"]);
    assert_eq!(web.logging.driver, LogDriver::JsonFile);
    assert_eq!(web.pull_policy, PullPolicy::Missing);
    assert!(web.command.is_none() && web.entrypoint.is_none() && web.healthcheck.is_none());
    assert_eq!(l.stack.project_dir, d.path());
    assert!(web.config_hash(&l.stack).starts_with("v1:"));
}

/// Spot checks of the normalized values of tests/data/full (the golden
/// covers the rest).
#[test]
fn full_file_values() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/full");
    let opts = LoadOptions {
        working_dir: dir.clone(),
        environment: env(&[("HOST_VAR", "hv")]),
        ..LoadOptions::default()
    };
    let l = spec::load(&opts).unwrap_or_else(|d| panic!("{d}"));
    let app = &l.stack.services["app"];
    assert_eq!(
        app.entrypoint,
        Some(vec!["/entry.sh".into(), "--flag".into()])
    );
    assert_eq!(
        app.environment["MODE"], "prod",
        "environment wins over env_file"
    );
    assert_eq!(app.environment["FROM_FILE"], "yes");
    assert_eq!(app.environment["FROM_ENV"], "hv");
    assert_eq!(
        app.restart,
        RestartPolicy::OnFailure {
            max_retries: Some(4)
        }
    );
    assert_eq!(app.resources.memory, Some(256 << 20));
    assert_eq!(app.resources.memory_swap, Some(512 << 20));
    assert_eq!(app.resources.cpus, Some(1.5));
    assert_eq!(app.resources.pids, Some(64));
    assert_eq!(app.resources.blkio.device_read_bps[0].rate, 12 << 20);
    assert_eq!(app.ports.len(), 4);
    assert_eq!(
        app.ports[1],
        Port {
            host_ip: None,
            published: Some(9000),
            target: 9000,
            protocol: Protocol::Udp
        }
    );
    assert_eq!(app.stop_grace_period, Duration::from_secs(90));
    assert_eq!(app.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(app.cap_add, ["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert!(app.security.no_new_privileges);
    assert_eq!(app.security.seccomp, Some(Seccomp::Unconfined));
    assert_eq!(
        app.ulimits["nproc"],
        Ulimit {
            soft: 512,
            hard: 512
        }
    );
    assert_eq!(app.secrets[1].mode, Some(0o400));
    assert_eq!(app.configs[0].mode, Some(0o440));
    let scratch = app
        .volumes
        .iter()
        .find(|m| m.target == "/scratch")
        .expect("scratch");
    assert_eq!(
        scratch.kind,
        MountKind::Tmpfs {
            size: Some(64 << 20),
            mode: Some(0o1777)
        }
    );
    let run = app
        .volumes
        .iter()
        .find(|m| m.target == "/run")
        .expect("run");
    assert_eq!(
        run.kind,
        MountKind::Tmpfs {
            size: Some(16 << 20),
            mode: Some(0o755)
        }
    );
    assert_eq!(
        app.networks["front"].ipv4_address,
        Some("10.90.0.10".parse().expect("ip"))
    );
    assert_eq!(
        app.healthcheck.as_ref().map(|h| h.test.clone()),
        Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "curl -f http://localhost/ || exit 1".into()
        ])
    );
    let db = &l.stack.services["db"];
    assert_eq!(db.image, ImageSource::Rootfs(dir.join("rootfs/db")));
    assert_eq!(
        db.command,
        Some(vec![
            "postgres".into(),
            "-c".into(),
            "shared_buffers=64MB".into()
        ])
    );
    assert_eq!(db.restart, RestartPolicy::Always);
    assert_eq!(db.resources.memory_reservation, Some(256 << 20));
    let cache = &l.stack.services["cache"];
    assert_eq!(cache.replicas, 2);
    assert_eq!(cache.network_mode, NetworkMode::Service("db".into()));
    assert!(cache.networks.is_empty());
    assert!(cache.healthcheck.is_none());
    assert_eq!(
        cache.image,
        ImageSource::OciLayout {
            path: dir.join("images/cache"),
            tag: Some("7".into())
        }
    );
    assert!(
        !l.stack.services.contains_key("tool"),
        "profile tools is not enabled"
    );
    let front = &l.stack.networks["front"];
    assert_eq!(
        (front.mtu, front.bridge_name.as_deref()),
        (Some(1400), Some("br-full"))
    );
    assert_eq!(l.stack.networks["outside"].name, "host-lan");
    assert_eq!(
        l.stack.volumes["hostdir"].driver,
        VolumeDriver::Bind {
            device: dir.join("hostdir")
        }
    );
    assert_eq!(
        l.stack.volumes["cache"].driver,
        VolumeDriver::Tmpfs {
            size: Some(100 << 20),
            mode: Some(0o700)
        }
    );
    assert_eq!(l.stack.resources.pids, Some(500));
    assert_eq!(
        l.stack.secrets["from_env"].source,
        FileSource::Environment("HOST_VAR".into())
    );
}
