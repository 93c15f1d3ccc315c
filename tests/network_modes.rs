//! `stack up` end to end for the network modes (`host`, `none`,
//! `service:NAME`) and for networks shared between stacks (`external`).
//! Root; every container lives in namespaces `stack` made for this test and
//! traffic goes only from the host to those containers' addresses.
mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;

use common::stack::{TestStack, assert_no_leaks};

/// The network namespace of `pid` as `net:[inode]`.
fn netns_of(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .display()
        .to_string()
}

/// `readlink /proc/self/ns/net` inside `service`'s container.
fn netns_in(t: &TestStack, service: &str) -> String {
    t.ok(&["exec", "-T", service, "readlink", "/proc/self/ns/net"])
        .trim()
        .to_string()
}

/// GET /hostname from busybox httpd serving /etc at `ip:80`.
fn hostname_at(ip: Ipv4Addr) -> Option<String> {
    let mut s = TcpStream::connect((ip, 80)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The IPv4 address of `container` on its first network (`stack inspect`).
fn ipv4_of(t: &TestStack, args: &[&str], service: &str) -> Ipv4Addr {
    let mut a = args.to_vec();
    a.extend(["inspect", service]);
    let doc: serde_json::Value = serde_json::from_str(&t.ok(&a)).unwrap();
    doc[0]["networks"][0]["ipv4"]
        .as_str()
        .unwrap_or_else(|| panic!("no address in {doc}"))
        .parse()
        .unwrap()
}

#[test]
fn host_none_and_service_modes_share_or_isolate_the_namespace() {
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
init = true

[services.side]
image = "{IMAGE}"
command = ["sleep", "3600"]
network_mode = "service:web"
init = true

[services.hostnet]
image = "{IMAGE}"
command = ["sleep", "3600"]
network_mode = "host"
init = true

[services.alone]
image = "{IMAGE}"
command = ["sleep", "3600"]
network_mode = "none"
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let host = netns_of("self");
    // host: the host's own namespace
    assert_eq!(netns_in(&t, "hostnet"), host);
    // service:web: web's namespace, so web's loopback server answers there
    let web = netns_in(&t, "web");
    assert_ne!(web, host);
    assert_eq!(netns_in(&t, "side"), web);
    let page = t.ok(&[
        "exec",
        "-T",
        "side",
        "wget",
        "-q",
        "-O",
        "-",
        "http://127.0.0.1:80/hostname",
    ]);
    assert_eq!(page.trim(), t.container("web", 1));
    // none: a namespace of its own with only lo, up
    let alone = netns_in(&t, "alone");
    assert!(alone != host && alone != web, "{alone}");
    let links = t.ok(&["exec", "-T", "alone", "ip", "-o", "link"]);
    let names: Vec<&str> = links.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(names, ["lo"], "{links}");
    assert!(links.contains("UP"), "{links}");
    let addrs = t.ok(&["exec", "-T", "alone", "ip", "-o", "-4", "addr"]);
    assert!(
        addrs.lines().all(|l| l.contains("127.0.0.1")),
        "only loopback: {addrs}"
    );
    // web is on the default network and reachable from the host
    let ip = ipv4_of(&t, &[], "web");
    t.wait_for(10, "web's server", || {
        hostname_at(ip).is_some_and(|b| b.contains(&t.container("web", 1)))
    });
    t.down_and_check();
}

/// A second stack under the state root of `owner`.
struct Guest<'a> {
    owner: &'a TestStack,
    name: String,
    file: std::path::PathBuf,
}

impl Guest<'_> {
    fn args(&self) -> Vec<String> {
        vec!["-f".into(), self.file.display().to_string()]
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(common::stack_bin())
            .arg("--root")
            .arg(self.owner.root())
            .args(self.args())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "guest stack {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Guest<'_> {
    /// Nothing of the guest is left under the shared root while the owner
    /// still runs (the full leak check would see the owner's objects).
    fn assert_gone(&self) {
        let root = self.owner.root();
        let prefix = format!("{}-", self.name);
        for dir in [root.join("lib/containers"), root.join("run/netns")] {
            let left: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                left.iter().all(|n| !n.starts_with(&prefix)),
                "{}: {left:?}",
                dir.display()
            );
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&format!("/{prefix}")),
            "mounts of {} left",
            self.name
        );
        let slice = format!("/sys/fs/cgroup/memory/stack.slice/{}.slice", self.name);
        assert!(!std::path::Path::new(&slice).exists(), "{slice}");
    }
}

impl Drop for Guest<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-t", "1"]);
    }
}

#[test]
fn down_of_the_owning_stack_leaves_a_guest_on_its_network_reachable() {
    let shared = common::unique("sh");
    let server = r#"image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
init = true
networks = ["shared"]"#;
    let owner = TestStack::new(&format!(
        "[services.a]\n{server}\n\n[networks.shared]\nname = \"{shared}\"\n"
    ));
    let guest_name = common::unique("g");
    let guest_file = owner.dir.path().join("guest.toml");
    let image = format!("oci:{}:latest", common::stack::image().display());
    std::fs::write(
        &guest_file,
        format!(
            "name = \"{guest_name}\"\n[services.b]\n{}\n\n[networks.shared]\nexternal = true\nname = \"{shared}\"\n",
            server.replace("{IMAGE}", &image)
        ),
    )
    .unwrap();
    let guest = Guest {
        owner: &owner,
        name: guest_name,
        file: guest_file,
    };
    // the guest cannot come first: the network does not exist yet
    let out = guest.run(&["up", "-d"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&shared) && err.contains("does not exist"),
        "{err}"
    );
    owner.ok(&["up", "-d"]);
    guest.ok(&["up", "-d"]);
    let g = guest.args();
    let b = ipv4_of(
        &owner,
        &g.iter().map(String::as_str).collect::<Vec<_>>(),
        "b",
    );
    // one network: a reaches b
    let page = owner.ok(&[
        "exec",
        "-T",
        "a",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{b}/hostname"),
    ]);
    assert_eq!(page.trim(), format!("{}-b-1", guest.name));
    // the owner goes: its container goes, the shared network stays for b
    owner.ok(&["down", "-t", "1"]);
    owner.wait_for(10, "b after the owner's down", || {
        hostname_at(b).is_some_and(|p| p.contains(&format!("{}-b-1", guest.name)))
    });
    // the last user takes the network along
    guest.ok(&["down", "-t", "1"]);
    assert_no_leaks(&owner.root(), &guest.name);
    let state = std::fs::read_to_string(owner.root().join("lib/network/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["networks"], serde_json::json!({}), "{state}");
    assert_eq!(state["endpoints"], serde_json::json!({}), "{state}");
}

#[test]
fn down_of_a_guest_stack_releases_only_its_own_endpoints() {
    let shared = common::unique("sh");
    let owner = TestStack::new(&format!(
        "[services.a]\nimage = \"{{IMAGE}}\"\ncommand = [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/etc\"]\ninit = true\nnetworks = [\"shared\"]\n\n[networks.shared]\nname = \"{shared}\"\n"
    ));
    let guest_file = owner.dir.path().join("guest.toml");
    let image = format!("oci:{}:latest", common::stack::image().display());
    let guest = Guest {
        owner: &owner,
        name: common::unique("g"),
        file: guest_file.clone(),
    };
    std::fs::write(
        &guest_file,
        format!(
            "name = \"{}\"\n[services.b]\nimage = \"{image}\"\ncommand = [\"sleep\", \"3600\"]\ninit = true\nnetworks = [\"shared\"]\n\n[networks.shared]\nexternal = true\nname = \"{shared}\"\n",
            guest.name
        ),
    )
    .unwrap();
    owner.ok(&["up", "-d"]);
    guest.ok(&["up", "-d"]);
    guest.ok(&["down", "-t", "1"]);
    guest.assert_gone();
    let a = ipv4_of(&owner, &[], "a");
    owner.wait_for(10, "a after the guest's down", || {
        hostname_at(a).is_some_and(|p| p.contains(&owner.container("a", 1)))
    });
    let state = std::fs::read_to_string(owner.root().join("lib/network/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let eps: Vec<&String> = state["endpoints"].as_object().unwrap().keys().collect();
    assert_eq!(eps, [&owner.container("a", 1)], "{state}");
    owner.down_and_check();
}

/// The pid of the `[::1]` proxy of `container` under `root`, from the state.
fn proxy_pid(root: &std::path::Path, container: &str) -> Option<i32> {
    let state = std::fs::read_to_string(root.join("lib/network/state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_str(&state).ok()?;
    state["proxies"][container]["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
}

#[test]
fn a_port_published_on_ipv6_loopback_is_served_by_its_proxy_until_down() {
    let t = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
ports = ["[::1]::80"]
init = true
"#,
    );
    t.ok(&["up", "-d"]);
    let addr = t.ok(&["port", "web", "80"]).trim().to_string();
    assert!(addr.starts_with("[::1]:"), "{addr}");
    let url = format!("http://{addr}/hostname");
    let fetch = || {
        let out = Command::new("curl")
            .args(["-gsS", "--max-time", "5", &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    t.wait_for(10, "httpd through the [::1] proxy", || {
        fetch().contains(&t.container("web", 1))
    });
    let pid = proxy_pid(&t.root(), &t.container("web", 1)).expect("proxy in state");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("__proxy"));
    // it is nobody's child: the CLI that started it is gone and it serves on
    t.ok(&["restart", "web"]);
    t.wait_for(10, "httpd after a restart", || {
        fetch().contains(&t.container("web", 1))
    });
    t.down_and_check();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|s| s.contains("State:\tZ")),
        "the proxy {pid} outlived down"
    );
    assert!(fetch().is_empty(), "nothing answers on {addr} after down");
}

#[test]
fn container_mode_joins_a_container_of_another_stack() {
    let owner = TestStack::new(
        r#"
[services.web]
image = "{IMAGE}"
command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
init = true
"#,
    );
    let web = owner.container("web", 1);
    let image = format!("oci:{}:latest", common::stack::image().display());
    let guest = Guest {
        owner: &owner,
        name: common::unique("g"),
        file: owner.dir.path().join("guest.toml"),
    };
    std::fs::write(
        &guest.file,
        format!(
            "name = \"{}\"\n[services.side]\nimage = \"{image}\"\ncommand = [\"sleep\", \"3600\"]\ninit = true\nnetwork_mode = \"container:{web}\"\n",
            guest.name
        ),
    )
    .unwrap();
    // the container must exist first
    let out = guest.run(&["up", "-d"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("container:{web}")), "{err}");
    owner.ok(&["up", "-d"]);
    guest.ok(&["up", "-d"]);
    let g = guest.args();
    let mut exec: Vec<&str> = g.iter().map(String::as_str).collect();
    exec.extend(["exec", "-T", "side"]);
    let ns = |t: &TestStack, args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["readlink", "/proc/self/ns/net"]);
        t.ok(&a).trim().to_string()
    };
    assert_eq!(ns(&owner, &exec), netns_in(&owner, "web"));
    let mut get = exec.clone();
    get.extend(["wget", "-q", "-O", "-", "http://127.0.0.1:80/hostname"]);
    assert_eq!(owner.ok(&get).trim(), web);
    guest.ok(&["down", "-t", "1"]);
    guest.assert_gone();
    // the joined namespace is the owner's: the guest's down leaves it working
    let ip = ipv4_of(&owner, &[], "web");
    owner.wait_for(10, "web after the guest's down", || {
        hostname_at(ip).is_some_and(|b| b.contains(&web))
    });
    owner.down_and_check();
}
