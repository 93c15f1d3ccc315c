//! The image config feeds the container: `Volumes` (anonymous volumes, with
//! Compose's lifecycle), `Healthcheck`, `ExposedPorts` and `Labels` (root: real
//! containers).
mod common;
mod image_support;

use common::stack::TestStack;
use image_support::{Member::*, derive_layout, layer};

/// Busybox with a seeded `/cache`, declared a VOLUME, and a HEALTHCHECK that passes
/// once `/tmp/healthy` exists.
fn image(t: &TestStack) -> String {
    let dir = t.dir.path().join("layout");
    derive_layout(
        common::stack::image(),
        &dir,
        "v",
        &[layer(&[
            Dir("cache"),
            File("cache/seed", b"from the image"),
        ])],
        serde_json::json!({
            "Volumes": {"/cache": {}},
            "Healthcheck": {
                "Test": ["CMD-SHELL", "test -f /tmp/healthy"],
                "Interval": 100_000_000u64,
                "Retries": 1,
            },
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.example.tier": "base", "vendor": "acme"},
        }),
    );
    format!("oci:{}:v", dir.display())
}

fn stack_file(image: &str) -> String {
    format!(
        r#"
[services.app]
image = "{image}"
init = true
labels = {{ "org.example.tier" = "web" }}
ports = ["8080"]
command = ["sh", "-c", "cat /cache/data 2>/dev/null || echo fresh; cat /cache/seed; echo; echo $$HOSTNAME >> /cache/data; touch /tmp/healthy; sleep 3600"]

[services.after]
image = "{image}"
init = true
command = ["sleep", "3600"]
depends_on = {{ app = {{ condition = "service_healthy" }} }}
healthcheck = {{ disable = true }}

[services.covered]
image = "{image}"
init = true
command = ["sleep", "3600"]
volumes = ["named:/cache"]

[volumes.named]
"#
    )
}

fn logs(t: &TestStack) -> String {
    t.ok(&["logs", "--no-color", "app"])
}

fn inspect(t: &TestStack, service: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", service])).unwrap();
    v[0].clone()
}

fn anonymous_volumes(t: &TestStack) -> Vec<serde_json::Value> {
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&t.ok(&["volume", "ls", "--format", "json"])).unwrap();
    all.into_iter().filter(|v| v["anonymous"] == true).collect()
}

#[test]
fn image_volumes_healthcheck_ports_and_labels_reach_the_container() {
    let t = TestStack::new("");
    t.write(&stack_file(&image(&t)));
    t.ok(&["up", "-d"]);
    let app = t.container("app", 1);
    // The image's healthcheck runs, and `service_healthy` waits on it.
    t.wait_for(20, "app healthy", || t.row(&app)["health"] == "healthy");
    assert_eq!(t.row(&t.container("after", 1))["state"], "running");
    assert!(
        t.row(&t.container("after", 1))["health"].is_null(),
        "healthcheck.disable wins over the image's"
    );
    t.wait_for(10, "the first run", || logs(&t).contains("from the image"));
    assert!(logs(&t).contains("fresh"), "{}", logs(&t));

    // Labels under the service's, exposed ports, the published container port.
    let doc = inspect(&t, "app");
    assert_eq!(doc["labels"]["org.example.tier"], "web", "{doc}");
    assert_eq!(doc["labels"]["vendor"], "acme");
    assert_eq!(doc["exposed_ports"], serde_json::json!(["8080/tcp"]));
    let port = t.ok(&["port", "app", "8080"]);
    assert!(
        port.trim()
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .is_ok(),
        "{port}"
    );

    // An anonymous volume for app's /cache; none for covered (its named volume
    // covers /cache).
    let of = |c: &str| {
        anonymous_volumes(&t)
            .into_iter()
            .filter(|v| v["container"] == c)
            .collect::<Vec<_>>()
    };
    let anon = of(&app);
    assert!(anon.len() == 1 && anon[0]["target"] == "/cache", "{anon:?}");
    assert!(of(&t.container("covered", 1)).is_empty());
    let first = anon[0]["name"].as_str().unwrap().to_string();
    let mounts = doc["mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["destination"] == "/cache" && m["source"].as_str().unwrap().contains(&first)),
        "{mounts:?}"
    );

    // Recreated: the same anonymous volume, data kept.
    t.ok(&["up", "-d", "--force-recreate", "app"]);
    t.wait_for(10, "the second run", || logs(&t).contains("from the image"));
    assert!(logs(&t).contains(&app), "the data survived: {}", logs(&t));
    let again = of(&app);
    assert!(
        again.len() == 1 && again[0]["name"] == first.as_str(),
        "{again:?}"
    );

    // `down` keeps them, dangling; the next `up` starts from new, seeded ones.
    t.ok(&["down", "-t", "1"]);
    let left = anonymous_volumes(&t);
    assert!(
        left.len() == 2
            && left.iter().all(|v| v["container"].is_null())
            && left.iter().any(|v| v["name"] == first.as_str()),
        "{left:?}"
    );
    t.ok(&["up", "-d"]);
    t.wait_for(10, "the third run", || logs(&t).contains("from the image"));
    assert!(logs(&t).contains("fresh"), "{}", logs(&t));
    assert!(of(&app).len() == 1 && of(&app)[0]["name"] != first.as_str());
    assert_eq!(anonymous_volumes(&t).len(), 4);

    // `down -v` removes them all.
    t.ok(&["down", "-v", "-t", "1"]);
    assert!(anonymous_volumes(&t).is_empty());
    t.down_and_check();
}

#[test]
fn an_image_volume_dropped_from_the_config_goes_with_the_old_container() {
    let t = TestStack::new("");
    let image = image(&t);
    t.write(&format!(
        "[services.app]\nimage = \"{image}\"\ncommand = [\"sleep\", \"3600\"]\ninit = true\n"
    ));
    t.ok(&["up", "-d"]);
    assert_eq!(anonymous_volumes(&t).len(), 1);
    let shown: serde_json::Value =
        serde_json::from_str(&t.ok(&["image", "inspect", "localhost/layout:v"])).unwrap();
    assert_eq!(
        shown[0]["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL",
        "image inspect shows the HEALTHCHECK: {shown}"
    );
    // A bind now covers /cache: the image volume is not needed, and is removed.
    std::fs::create_dir(t.dir.path().join("host-cache")).unwrap();
    t.write(&format!(
        "[services.app]\nimage = \"{image}\"\ncommand = [\"sleep\", \"3600\"]\ninit = true\nvolumes = [\"./host-cache:/cache\"]\n"
    ));
    t.ok(&["up", "-d"]);
    assert!(anonymous_volumes(&t).is_empty());
    t.down_and_check();
}
