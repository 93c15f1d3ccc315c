//! `pull_policy` and `platform:` of a service, carried out by `stack up` against
//! Debian's docker-registry on 127.0.0.1 (root: real containers).
mod common;
mod image_support;
mod registry_support;

use std::process::Command;
use std::time::Duration;

use common::stack::TestStack;
use image_support::{Member::*, derive_layout, layer, multi_arch_layout};
use registry_support::{Auth, Registry};

fn output(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

fn logs(t: &TestStack) -> String {
    t.ok(&["logs", "--no-color"])
}

/// Busybox with `/version` holding `version`, as an OCI layout tagged `v`.
fn versioned(t: &TestStack, version: &str) -> String {
    let dir = t.dir.path().join(format!("layout-{version}"));
    derive_layout(
        common::stack::image(),
        &dir,
        "v",
        &[layer(&[File("version", version.as_bytes())])],
        serde_json::json!({}),
    );
    format!("oci:{}:v", dir.display())
}

/// Recreate the service and return what its new container printed.
fn recreate(t: &TestStack) -> String {
    t.ok(&["up", "-d", "--force-recreate"]);
    t.wait_for(10, "the version line", || logs(t).contains("version="));
    logs(t)
}

#[test]
fn pull_policies_never_missing_daily_every_and_always() {
    let t = TestStack::new("");
    let reg = Registry::start(&t.dir.path().join("reg"), Auth::None);
    let (one, two) = (versioned(&t, "one"), versioned(&t, "two"));
    reg.push(&one, "bb:1", false);
    let image = format!("{}/bb:1", reg.addr);
    let body = |policy: &str| {
        format!(
            "[services.app]\nimage = \"{image}\"\npull_policy = \"{policy}\"\ninit = true\n\
             command = [\"sh\", \"-c\", \"echo version=$$(cat /version); sleep 3600\"]\n"
        )
    };

    t.write(&body("never"));
    let out = t.run(&["up", "-d"]);
    let err = output(&out);
    assert!(
        !out.status.success() && err.contains("pull_policy is never") && err.contains("stack pull"),
        "never must not pull: {err}"
    );
    assert!(t.ps().is_empty(), "nothing was created");

    t.write(&body("missing"));
    t.ok(&["up", "-d"]);
    t.wait_for(10, "the first version", || logs(&t).contains("version=one"));

    // The registry's bb:1 moves on; `missing` keeps the image the store has.
    reg.push(&two, "bb:1", false);
    assert!(recreate(&t).contains("version=one"), "missing pulled again");
    // `daily`: pulled moments ago, not due.
    t.write(&body("daily"));
    assert!(
        recreate(&t).contains("version=one"),
        "daily pulled too soon"
    );
    // `every_1s`: due once a second has passed.
    std::thread::sleep(Duration::from_millis(1100));
    t.write(&body("every_1s"));
    assert!(
        recreate(&t).contains("version=two"),
        "every_1s did not pull"
    );
    // `always`: every creation pulls.
    reg.push(&one, "bb:1", false);
    t.write(&body("always"));
    assert!(recreate(&t).contains("version=one"), "always did not pull");
    // `never` with the image present uses it.
    reg.push(&two, "bb:1", false);
    t.write(&body("never"));
    assert!(recreate(&t).contains("version=one"), "never pulled");

    // A pull that fails leaves the running container alone.
    let before = t.row(&t.container("app", 1))["pid"].clone();
    drop(reg);
    t.write(&body("always"));
    let out = t.run(&["up", "-d", "--force-recreate"]);
    assert!(!out.status.success(), "the registry is gone");
    let row = t.row(&t.container("app", 1));
    assert!(row["state"] == "running" && row["pid"] == before, "{row}");
    t.down_and_check();
}

#[test]
fn pull_policy_build_is_refused_with_a_hint() {
    let t =
        TestStack::new("[services.app]\nimage = \"localhost:1/x:1\"\npull_policy = \"build\"\n");
    let out = t.run(&["validate"]);
    let err = output(&out);
    assert!(
        !out.status.success()
            && err.contains("stack does not build images")
            && err.contains("stack image import"),
        "{err}"
    );
}

/// Platforms of the stored images that `reference` names.
fn platforms(t: &TestStack, reference: &str) -> Vec<String> {
    let out = t.ok(&["image", "ls", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    rows.iter()
        .filter(|r| {
            r["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == reference)
        })
        .map(|r| r["platform"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn platform_selects_from_an_index_and_pulls_again_for_another_platform() {
    let t = TestStack::new("");
    let layout = multi_arch_layout(t.dir.path());
    let reg = Registry::start(&t.dir.path().join("reg"), Auth::None);
    reg.push(
        &format!("oci:{}:multi", layout.display()),
        "multi:latest",
        false,
    );
    let image = format!("{}/multi:latest", reg.addr);
    let out = Command::new(common::stack_bin())
        .arg("--root")
        .arg(t.root())
        .args(["pull", "--quiet", "--platform", "linux/amd64", &image])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(platforms(&t, &image), ["linux/amd64"]);
    // The store has the reference, but for another platform: `missing` pulls.
    t.write(&format!(
        "[services.app]\nimage = \"{image}\"\nplatform = \"linux/arm64\"\ncommand = [\"true\"]\n"
    ));
    t.ok(&["up", "--no-start"]);
    assert_eq!(platforms(&t, &image), ["linux/arm64"]);
    let inspect: serde_json::Value = serde_json::from_str(&t.ok(&["inspect"])).unwrap();
    let root = inspect[0]["oci_spec"]["root"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let arch = std::fs::read_to_string(std::path::Path::new(&root).join("arch")).unwrap();
    assert_eq!(arch, "arm64", "the container's root is the arm64 image");
    t.down_and_check();
    // A malformed platform is refused with the file's location.
    t.write(&format!(
        "[services.app]\nimage = \"{image}\"\nplatform = \"arm64\"\ncommand = [\"true\"]\n"
    ));
    let out = t.run(&["validate"]);
    let err = output(&out);
    assert!(
        !out.status.success() && err.contains("os/arch") && err.contains("stack.toml:"),
        "{err}"
    );
    t.write("");
}
