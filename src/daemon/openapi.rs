//! Keeps docs/api/openapi.yaml true to the code: every route is documented
//! with its method (and nothing else is), and every key the API writes or
//! reads is a documented property of its schema.
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn doc() -> Value {
    serde_saphyr::from_str(include_str!("../../docs/api/openapi.yaml")).expect("openapi.yaml")
}

/// `(path, method)` of every `.route(...)` in api.rs.
fn routes() -> Vec<(String, String)> {
    let src = include_str!("api.rs");
    src.split(".route(\"")
        .skip(1)
        .map(|rest| {
            let (path, rest) = rest.split_once('"').unwrap();
            let method = rest.trim_start_matches(", ").split('(').next().unwrap();
            (path.to_string(), method.to_string())
        })
        .collect()
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = doc();
    let paths = doc["paths"].as_object().unwrap();
    let routes = routes();
    assert!(routes.len() >= 10, "{routes:?}");
    for (path, method) in &routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in docs/api/openapi.yaml"
        );
    }
    for path in paths.keys() {
        assert!(
            routes.iter().any(|(p, _)| p == path),
            "{path} is documented but not served"
        );
    }
}

/// The schema `name`, following one `$ref` and `oneOf` with null.
fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return schema(doc, r.trim_start_matches("#/components/schemas/"));
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array)
        && let Some(obj) = alts.iter().find(|a| a.get("$ref").is_some())
    {
        return resolve(doc, obj);
    }
    s
}

/// Every key of `value` (recursively, through objects with documented
/// properties) is documented in `s`.
fn check(doc: &Value, s: &Value, value: &Value, at: &str) {
    let s = resolve(doc, s);
    match value {
        Value::Object(map) => {
            let Some(props) = s.get("properties").and_then(Value::as_object) else {
                return; // free-form (additionalProperties, inspect documents)
            };
            for (k, v) in map {
                let p = props
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k} is not in docs/api/openapi.yaml"));
                check(doc, p, v, &format!("{at}.{k}"));
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for v in items {
                    check(doc, item, v, &format!("{at}[]"));
                }
            }
        }
        _ => {}
    }
}

/// Round-trips `sample` through the API type `T` and checks what it writes.
fn documented<T: Serialize + DeserializeOwned>(name: &str, sample: Value) {
    let typed: T = serde_json::from_value(sample).unwrap_or_else(|e| panic!("{name}: {e}"));
    let doc = doc();
    check(
        &doc,
        schema(&doc, name),
        &serde_json::to_value(&typed).unwrap(),
        name,
    );
}

#[test]
fn what_the_api_writes_is_documented() {
    documented::<crate::ops::ps::Row>(
        "ContainerRow",
        json!({"name":"web-web-1","service":"web","state":"running","up":true,"status":"up 0s",
            "pid":25228,"exit_code":null,"oom_killed":false,"paused":false,"restarts":0,
            "created":"2026-12-01T23:09:21Z","health":"starting",
            "ports":["127.0.0.1:8080->8080/tcp"]}),
    );
    documented::<crate::ops::ls::StackRow>(
        "StackRow",
        json!({"name":"web","status":"running(3/3)","files":["/s/stack.toml"],"watch":true,
            "file_error":{"since":1,"message":"m"}}),
    );
    documented::<super::proto::StackInfo>(
        "StackInfo",
        json!({"name":"web","watch":false,"pending":false,"loads":0,"file_error":null}),
    );
    documented::<super::proto::Version>(
        "Version",
        json!({"version":"0.1.0","pid":1,"watched":{"web":["/s/stack.toml"]}}),
    );
    documented::<crate::ops::logs::Line>(
        "LogLine",
        json!({"container":"web-web-1","log":"hi\n","stream":"stderr",
            "time":"2026-12-01T23:23:47.909247068Z"}),
    );
    documented::<crate::supervisor::events::Event>(
        "Event",
        json!({"time":"2026-12-01T23:23:47Z","action":"die","stack":"web","service":"web",
            "container":"web-web-1","exit_code":1,"health":"healthy","detail":"d"}),
    );
    documented::<Vec<crate::ops::rm::Removed>>(
        "Removed",
        json!([{"name":"a-b-1","service":"b","result":"skipped","reason":"running",
            "volumes":["v"]}]),
    );
    let action = json!({"kind":"recreate","name":"a-b-1","service":"b","reasons":["image"]});
    for line in [
        json!({"type":"progress","event":{"phase":"begin","step":action}}),
        json!({"type":"container","name":"a-b-1","verb":"Stopped","error":"e"}),
        json!({"type":"warning","message":"m"}),
        json!({"type":"error","message":"m"}),
        json!({"type":"done","failed":[["a","b"]],"orphans":["o"],"nothing_to_do":false}),
    ] {
        documented::<super::proto::Line>("ProgressLine", line);
    }
}

#[test]
fn what_the_api_reads_is_documented() {
    let load = json!({"files":["stack.toml"],"project_name":"p","profiles":[],"env_files":[],
        "working_dir":"/s","services":[],"environment":{"A":"1"},"default_name":null});
    let timeout = json!({"secs":10,"nanos":0});
    documented::<super::proto::UpRequest>(
        "UpRequest",
        json!({"load":load,"watch":true,"options":{"plan":{"force_recreate":false,
            "no_recreate":false,"no_start":false,"remove_orphans":false},"services":[],
            "scale":{"web":2},"timeout":timeout}}),
    );
    documented::<super::proto::DownRequest>(
        "DownRequest",
        json!({"load":load,"options":{"remove_orphans":true,"volumes":false,"timeout":timeout}}),
    );
    documented::<super::proto::ContainersRequest>(
        "ContainersRequest",
        json!({"services":["web"],"timeout":3,"signal":"HUP"}),
    );
    documented::<super::proto::RmRequest>(
        "RmRequest",
        json!({"services":[],"options":{"force":true,"volumes":true,"timeout":null,
            "containers":["a-b-run-0123456789ab"]}}),
    );
    documented::<super::proto::RunRequest>(
        "RunRequest",
        json!({"load":load,"service":"b","name":"a-b-run-0123456789ab","run_id":"0123456789ab",
            "no_deps":false,"detach":true,"overrides":{"command":["sh"],"entrypoint":null,
            "environment":[["A","1"]],"user":"1:1","working_dir":"/","service_ports":false,
            "tty":true,"stdin_open":true}}),
    );
}
