//! Scaling and logs through real containers (root): replicas come and go by
//! their numbers, logs rotate by `max-size`/`max-file`, a burst arrives whole.
mod common;

use common::stack::TestStack;

fn replicas(n: u32) -> String {
    format!(
        r#"
[services.web]
image = "{{IMAGE}}"
command = ["sleep", "3600"]
init = true
deploy = {{ replicas = {n} }}
"#
    )
}

fn pid(t: &TestStack, name: &str) -> i64 {
    t.row(name)["pid"].as_i64().unwrap()
}

fn names(t: &TestStack) -> Vec<String> {
    let mut n: Vec<String> = t
        .ps()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[test]
fn scaling_down_removes_the_highest_numbers_and_scaling_up_adds_new_ones() {
    let t = TestStack::new(&replicas(3));
    t.ok(&["up", "-d"]);
    let all: Vec<String> = (1..=3).map(|n| t.container("web", n)).collect();
    assert_eq!(names(&t), all);
    let (p1, p2) = (pid(&t, &all[0]), pid(&t, &all[1]));
    t.write(&replicas(2));
    t.ok(&["up", "-d", "-t", "1"]);
    assert_eq!(names(&t), all[..2], "web-3 went");
    assert_eq!(
        (pid(&t, &all[0]), pid(&t, &all[1])),
        (p1, p2),
        "the others were not touched"
    );
    t.ok(&["up", "-d", "--scale", "web=4"]);
    let four: Vec<String> = (1..=4).map(|n| t.container("web", n)).collect();
    assert_eq!(names(&t), four);
    assert_eq!((pid(&t, &all[0]), pid(&t, &all[1])), (p1, p2));
    t.ok(&["up", "-d", "--scale", "web=1", "-t", "1"]);
    assert_eq!(names(&t), four[..1]);
    t.down_and_check();
}

/// `logs` of the stack, one line per entry, without prefixes.
fn lines(t: &TestStack) -> Vec<String> {
    t.ok(&["logs", "--no-color", "--no-log-prefix"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn one_shot(t: &TestStack) -> String {
    t.ok(&["up", "-d"]);
    let name = t.container("out", 1);
    t.wait_for(60, "the exit", || t.row(&name)["state"] == "exited");
    name
}

#[test]
fn logs_rotate_by_max_size_and_max_file_keeping_the_newest_lines_in_order() {
    let t = TestStack::new(
        r#"
[services.out]
image = "{IMAGE}"
command = ["seq", "1", "3000"]
logging = { driver = "json-file", options = { max-size = "4k", max-file = "3" } }
"#,
    );
    let name = one_shot(&t);
    let log = t
        .root()
        .join("lib/containers")
        .join(&name)
        .join("container.log");
    let files = stack::supervisor::logs::files_oldest_first(&log);
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 4096, "{} is {len} bytes", f.display());
    }
    let got = lines(&t);
    let first: usize = got[0].parse().unwrap();
    assert!(first > 1, "the oldest lines were dropped");
    let want: Vec<String> = (first..=3000).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    t.down_and_check();
}

#[test]
fn a_burst_of_100k_lines_from_a_container_arrives_whole_and_in_order() {
    let t = TestStack::one("out", &["seq", "1", "100000"]);
    one_shot(&t);
    let got = lines(&t);
    assert_eq!(got.len(), 100_000);
    let out_of_place = got
        .iter()
        .enumerate()
        .find(|(i, l)| **l != (i + 1).to_string());
    assert_eq!(out_of_place, None);
    t.down_and_check();
}
