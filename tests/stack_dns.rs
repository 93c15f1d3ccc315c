//! Names in a stack brought up by the daemon: its embedded resolver answers
//! service names on each network only (root, real containers).
mod common;

use common::stack::TestStack;

#[test]
fn services_resolve_peers_on_their_networks_only() {
    let t = TestStack::new(
        r#"
[services.a]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
networks = ["front"]

[services.b]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
networks = ["front"]

[services.c]
image = "{IMAGE}"
command = ["sleep", "3600"]
init = true
networks = ["back"]

[networks.front]
[networks.back]
"#,
    );
    t.ok(&["up", "-d"]);
    let resolv = t.ok(&["exec", "-T", "a", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains("nameserver 10."),
        "the gateway resolves: {resolv}"
    );
    let hosts = t.ok(&["exec", "-T", "a", "cat", "/etc/hosts"]);
    assert!(
        !hosts.contains(" b"),
        "peers come from DNS, not /etc/hosts: {hosts}"
    );
    let b_ip = t.ok(&[
        "exec",
        "-T",
        "b",
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1",
    ]);
    let found = t.ok(&["exec", "-T", "a", "nslookup", "b"]);
    assert!(found.contains(b_ip.trim()), "a finds b at {b_ip}: {found}");
    let other = t.run(&["exec", "-T", "c", "nslookup", "b"]);
    let text = String::from_utf8_lossy(&other.stdout).to_string()
        + &String::from_utf8_lossy(&other.stderr);
    assert!(
        !text.contains(b_ip.trim()),
        "c, on another network, does not: {text}"
    );
    let host = t.ok(&["exec", "-T", "a", "nslookup", "host.stack.internal"]);
    assert!(host.contains("Address"), "{host}");
    t.down_and_check();
}
