//! The daemon under things that happen to servers: something flushes the
//! host's firewall; a reboot (root, real containers).
mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::stack::TestStack;

/// Move the calling test thread into a network namespace of its own, with
/// loopback up: every process it spawns (the CLI, the daemon it starts, `nft`)
/// works there, so a `nft flush ruleset` hits only this namespace. The
/// namespace goes away with the thread and those processes.
fn own_network_namespace() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let ok = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().unwrap();
    assert!(out.status.success(), "nft {args:?}: {:?}", out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fetch(addr: &str) -> Option<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn a_flushed_ruleset_is_restored_and_the_port_answers_again() {
    own_network_namespace();
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
ports = ["127.0.0.1::80"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let name = t.container("web", 1);
    let addr = t.ok(&["port", "web", "80"]).trim().to_string();
    let answers = || fetch(&addr).is_some_and(|b| b.contains(&name));
    t.wait_for(10, "the published port", answers);
    let pid = t.row(&name)["pid"].clone();
    for round in 0..3 {
        nft(&["flush", "ruleset"]);
        let flushed = Instant::now();
        t.wait_for(10, "the port after nft flush ruleset", answers);
        eprintln!(
            "round {round}: answers again {} ms after the flush",
            flushed.elapsed().as_millis()
        );
    }
    assert!(
        nft(&["list", "tables"]).contains("inet stack_"),
        "the table is back"
    );
    assert_eq!(t.row(&name)["pid"], pid, "the container was not touched");
    assert_eq!(t.row(&name)["restarts"], 0);
    t.down_and_check();
}
