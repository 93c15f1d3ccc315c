//! Parse + validate + normalize a 500-service stack file (TOML and Compose
//! YAML), as `stack up` does before anything else. Target: under 50 ms in
//! release. Run: `cargo bench --bench spec_parse`.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stack::spec::{self, LoadOptions};

const SERVICES: usize = 500;

fn toml_file() -> String {
    let mut s = String::from(
        "name = \"bench\"\n\n[networks.front]\n[networks.back]\ninternal = true\n[volumes.data]\n\n",
    );
    for i in 0..SERVICES {
        let _ = write!(
            s,
            r#"[services.svc{i}]
image = "registry.example.com/team/app{i}:1.{i}"
command = ["serve", "--port", "{port}"]
environment = {{ MODE = "prod", INDEX = "{i}", URL = "http://svc{prev}:80/", TOKEN = "${{TOKEN:-none}}", EXTRA = "x" }}
ports = ["127.0.0.1:{published}:{port}"]
volumes = ["data:/data/{i}", "./conf/{i}:/etc/app:ro"]
networks = {{ front = {{ aliases = ["a{i}"] }}, back = {{}} }}
restart = "on-failure:3"
mem_limit = "64m"
cpus = 0.25
pids_limit = 100
labels = {{ "com.example.index" = "{i}", tier = "web" }}
healthcheck = {{ test = ["CMD", "wget", "-q", "http://127.0.0.1:{port}/"], interval = "5s", retries = 3 }}
{deps}
"#,
            port = 8000 + i,
            published = 20000 + i,
            prev = i.saturating_sub(1),
            deps = if i > 0 {
                format!(
                    "depends_on = {{ svc{} = {{ condition = \"service_started\" }} }}\n",
                    i - 1
                )
            } else {
                String::new()
            },
        );
    }
    s
}

fn yaml_file() -> String {
    let mut s = String::from(
        "name: bench\nnetworks:\n  front:\n  back:\n    internal: true\nvolumes:\n  data:\nx-base: &base\n  restart: on-failure:3\n  mem_limit: 64m\n  cpus: 0.25\nservices:\n",
    );
    for i in 0..SERVICES {
        let _ = write!(
            s,
            "  svc{i}:\n    <<: *base\n    image: registry.example.com/team/app{i}:1.{i}\n    command: serve --port {port}\n    environment:\n      - MODE=prod\n      - INDEX={i}\n      - TOKEN=${{TOKEN:-none}}\n    ports: [\"127.0.0.1:{published}:{port}\"]\n    volumes: [\"data:/data/{i}\", \"./conf/{i}:/etc/app:ro\"]\n    networks:\n      front:\n        aliases: [a{i}]\n      back:\n    labels:\n      com.example.index: \"{i}\"\n    healthcheck:\n      test: [CMD, wget, -q, \"http://127.0.0.1:{port}/\"]\n      interval: 5s\n{deps}",
            port = 8000 + i,
            published = 20000 + i,
            deps = if i > 0 {
                format!("    depends_on: [svc{}]\n", i - 1)
            } else {
                String::new()
            },
        );
    }
    s
}

fn measure(name: &str, file: &str, text: &str) -> Duration {
    let dir = std::env::temp_dir().join(format!("stack-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join(file), text).expect("write");
    let opts = LoadOptions {
        files: vec![PathBuf::from(file)],
        working_dir: dir.clone(),
        environment: Some(Default::default()),
        ..LoadOptions::default()
    };
    let mut times = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let loaded = spec::load(&opts).unwrap_or_else(|d| panic!("{d}"));
        let elapsed = start.elapsed();
        assert_eq!(loaded.stack.services.len(), SERVICES);
        std::hint::black_box(&loaded);
        times.push(elapsed);
    }
    times.sort();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{name}: {} services, {} KiB: min {:.1} ms, median {:.1} ms, max {:.1} ms (30 runs)",
        SERVICES,
        text.len() / 1024,
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    times[times.len() / 2]
}

fn main() {
    let toml = measure(
        "toml   (parse+validate+normalize)",
        "stack.toml",
        &toml_file(),
    );
    let yaml = measure(
        "compose (parse+validate+normalize)",
        "compose.yaml",
        &yaml_file(),
    );
    let budget = Duration::from_millis(50);
    if toml > budget || yaml > budget {
        println!("over the 50 ms budget");
        std::process::exit(1);
    }
}
