//! Crash consistency: a process doing network setup is SIGKILLed at several
//! points; `remove_stack` (what `down` calls) from a fresh process state must
//! leave no link, no nftables table and no state of the stack behind.
mod common;
mod network_common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use network_common::Ns;
use stack::network::{Attachment, Manager, NetworkSpec, NftFirewall, PortMapping, Proto};
use stack::state::Roots;

/// The victim: sets up a network and containers with ports, forever. Runs only
/// when the parent test starts it (it is `#[ignore]`d in normal runs).
#[test]
#[ignore = "child process of killed_mid_setup_then_down_leaves_nothing"]
fn crash_child_setup_loop() {
    let env = |k: &str| std::env::var(k).expect("run by killed_mid_setup_then_down_leaves_nothing");
    let roots = Roots::new(Some(&PathBuf::from(env("NET_CHILD_ROOT"))));
    let mgr = Manager::with(
        &roots,
        Some(PathBuf::from(env("NET_CHILD_HOST"))),
        Arc::new(NftFirewall::default()),
    );
    let stack = env("NET_CHILD_STACK");
    let containers: Vec<String> = env("NET_CHILD_NS").split(',').map(String::from).collect();
    loop {
        for net in ["default", "back"] {
            mgr.ensure_network(&NetworkSpec {
                stack: stack.clone(),
                name: net.into(),
                ..Default::default()
            })
            .unwrap();
        }
        for (i, ns) in containers.iter().enumerate() {
            let att = |n: &str| Attachment {
                stack: stack.clone(),
                network: n.into(),
                aliases: vec![],
                ipv4: None,
                ipv6: None,
            };
            let id = format!("c{i}");
            let ep = mgr
                .attach(
                    &stack,
                    &id,
                    &PathBuf::from(format!("/run/netns/{ns}")),
                    &[att("default"), att("back")],
                )
                .unwrap();
            let port = PortMapping {
                host_ip: None,
                host_port: 0,
                container_port: 80,
                proto: Proto::Tcp,
            };
            mgr.publish(&stack, &id, &[port], ep[0].ipv4).unwrap();
        }
        mgr.remove_stack(&stack).unwrap();
    }
}

#[test]
fn killed_mid_setup_then_down_leaves_nothing() {
    common::require_root();
    for delay_ms in [5u64, 12, 20, 33, 45, 60, 90, 120, 150, 210] {
        let host = Ns::new("sth");
        let cs: Vec<Ns> = (0..3).map(|_| Ns::new("stc")).collect();
        let dir = tempfile::tempdir().unwrap();
        let stack = common::unique("st");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_child_setup_loop",
                "--nocapture",
            ])
            .env("NET_CHILD_ROOT", dir.path())
            .env("NET_CHILD_HOST", host.path())
            .env("NET_CHILD_STACK", &stack)
            .env(
                "NET_CHILD_NS",
                cs.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let early = child.try_wait().unwrap();
        assert!(early.is_none(), "the setup loop died by itself: {early:?}");
        child.kill().unwrap();
        child.wait().unwrap();

        let roots = Roots::new(Some(dir.path()));
        let mgr = Manager::with(&roots, Some(host.path()), Arc::new(NftFirewall::default()));
        mgr.remove_stack(&stack).unwrap();
        let prefix = mgr.link_prefix().unwrap();
        let links = host.ip(&["-o", "link"]);
        assert!(
            !links.contains(&prefix),
            "after kill at {delay_ms} ms: {links}"
        );
        let rules = host.exec_ok(&["nft", "list", "ruleset"]);
        assert!(
            !rules.contains(&mgr.table_name().unwrap()),
            "after kill at {delay_ms} ms: {rules}"
        );
        assert!(mgr.networks().unwrap().is_empty());
        for c in &cs {
            let inside = c.ip(&["-o", "link"]);
            assert!(
                !inside.contains("eth"),
                "after kill at {delay_ms} ms, {}: {inside}",
                c.name
            );
        }
    }
}
