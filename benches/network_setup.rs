//! Network setup time: `stack`'s network manager vs netavark (Debian package
//! `netavark`, as podman runs it), same work in the same run.
//!
//! Measured: from "the container's netns exists" to "the container has its
//! address, default route, DNS server and published port", for 1 and for 20
//! containers on one new bridge network (bridge creation included). Each side
//! works in a private "host" namespace created for the run; the machine's own
//! network is never touched.
//!
//! Run as root: `cargo bench --bench network_setup` (or bench/network.sh).
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stack::network::{
    Attachment, DnsServer, Manager, NetworkSpec, NftFirewall, PortMapping, Proto,
};
use stack::state::Roots;

const NETAVARK: &str = "/usr/lib/podman/netavark";

struct Ns(String);

impl Ns {
    fn new(name: String) -> Ns {
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Ns(name)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str]) {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .status()
        .map(|s| s.success());
    assert!(matches!(ok, Ok(true)), "{args:?} failed");
}

fn names(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("bn{}{tag}{i}", std::process::id()))
        .collect()
}

/// Attach container `i` (namespace `c`) and publish one port: (attach, publish) times.
fn one(mgr: &Manager, i: usize, c: &Ns) -> (Duration, Duration) {
    let att = Attachment {
        stack: "bench".into(),
        network: "default".into(),
        aliases: vec![format!("c{i}")],
        ipv4: None,
        ipv6: None,
    };
    let t0 = Instant::now();
    let ep = mgr
        .attach("bench", &format!("c{i}"), &c.path(), &[att])
        .expect("attach");
    let t_attach = t0.elapsed();
    let t0 = Instant::now();
    let port = PortMapping {
        host_ip: None,
        host_port: 20000 + u16::try_from(i).expect("port"),
        container_port: 80,
        proto: Proto::Tcp,
    };
    mgr.publish("bench", &format!("c{i}"), &[port], ep[0].ipv4)
        .expect("publish");
    (t_attach, t0.elapsed())
}

/// One run of ours: new network + n containers, each with a published port,
/// one after the other or (`concurrent`) from a thread each.
fn ours(n: usize, rt: &tokio::runtime::Runtime, concurrent: bool) -> Duration {
    let host = Ns::new(format!("bh{}o", std::process::id()));
    let cs: Vec<Ns> = names("o", n).into_iter().map(Ns::new).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let roots = Roots::new(Some(dir.path()));
    let dns = DnsServer::new(rt.handle().clone(), vec![]);
    let mgr = Manager::with(&roots, Some(host.path()), Arc::new(NftFirewall::default()))
        .with_dns(dns)
        .expect("dns");
    let spec = NetworkSpec {
        stack: "bench".into(),
        name: "default".into(),
        subnet: Some("10.99.0.0/24".parse().expect("cidr")),
        ..Default::default()
    };
    let start = Instant::now();
    mgr.ensure_network(&spec).expect("network");
    let t_net = start.elapsed();
    let (mut t_attach, mut t_publish) = (Duration::ZERO, Duration::ZERO);
    if concurrent {
        // As `up` does for the containers of one level: a thread each.
        std::thread::scope(|s| {
            for (i, c) in cs.iter().enumerate() {
                let mgr = &mgr;
                s.spawn(move || one(mgr, i, c));
            }
        });
    } else {
        for (i, c) in cs.iter().enumerate() {
            let (a, p) = one(&mgr, i, c);
            t_attach += a;
            t_publish += p;
        }
    }
    let took = start.elapsed();
    if std::env::var_os("BENCH_BREAKDOWN").is_some() {
        eprintln!("  ours n={n}: network {t_net:?}, attach {t_attach:?}, publish {t_publish:?}");
    }
    mgr.remove_stack("bench").expect("cleanup");
    took
}

fn netavark_json(i: usize) -> String {
    let ip = Ipv4Addr::new(10, 99, 0, 2 + u8::try_from(i).expect("ip"));
    format!(
        r#"{{"container_id":"{:064x}","container_name":"c{i}",
  "networks":{{"bench":{{"interface_name":"eth0","static_ips":["{ip}"],"aliases":["c{i}"]}}}},
  "network_info":{{"bench":{{"name":"bench","id":"{:064x}","driver":"bridge","network_interface":"nvbench0",
    "subnets":[{{"subnet":"10.99.0.0/24","gateway":"10.99.0.1"}}],"ipv6_enabled":false,"internal":false,
    "dns_enabled":true,"ipam_options":{{"driver":"host-local"}}}}}},
  "port_mappings":[{{"host_ip":"","container_port":80,"host_port":{},"range":1,"protocol":"tcp"}}]}}"#,
        i + 1,
        0xbeef,
        20000 + i
    )
}

/// `netavark [--config cfg] -f file VERB netns`, run inside `host`.
fn netavark(host: &Path, cfg: &Path, file: &Path, verb: &str, netns: &Path) -> bool {
    let host_ns = File::open(host).expect("host netns");
    let fd = host_ns.as_raw_fd();
    let mut cmd = Command::new(NETAVARK);
    cmd.arg("--config")
        .arg(cfg)
        .arg("-f")
        .arg(file)
        .arg(verb)
        .arg(netns);
    cmd.stdout(std::process::Stdio::null());
    // SAFETY: between fork and exec we only call setns(2), which is
    // async-signal-safe; `fd` stays open in the parent until after spawn.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::setns(fd, nix::libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

/// One run of netavark: the same network, n containers, one port each.
fn theirs(n: usize) -> Duration {
    let host = Ns::new(format!("bh{}n", std::process::id()));
    let cs: Vec<Ns> = names("n", n).into_iter().map(Ns::new).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let p = dir.path().join(format!("c{i}.json"));
            std::fs::write(&p, netavark_json(i)).expect("write");
            p
        })
        .collect();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).expect("netavark config dir");
    let start = Instant::now();
    for (c, f) in cs.iter().zip(&files) {
        assert!(
            netavark(&host.path(), &cfg, f, "setup", &c.path()),
            "netavark setup failed"
        );
    }
    let took = start.elapsed();
    for (c, f) in cs.iter().zip(&files) {
        netavark(&host.path(), &cfg, f, "teardown", &c.path());
    }
    took
}

/// iperf3 from `client` to `server_ip` (an iperf3 server runs in `server`):
/// received Gbit/s over 3 s, or `None` when iperf3 is missing or fails.
fn iperf(server: &Ns, client: &Ns, server_ip: &str) -> Option<f64> {
    let mut srv = Command::new("ip")
        .args([
            "netns", "exec", &server.0, "iperf3", "-s", "-1", "-p", "5201",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("ip")
        .args([
            "netns", "exec", &client.0, "iperf3", "-c", server_ip, "-p", "5201", "-t", "3", "-J",
        ])
        .output()
        .ok();
    let _ = srv.kill();
    let _ = srv.wait();
    let json: serde_json::Value = serde_json::from_slice(&out?.stdout).ok()?;
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e9)
}

/// Container-to-container throughput over our bridge.
fn ours_throughput(rt: &tokio::runtime::Runtime) -> Option<f64> {
    let host = Ns::new(format!("bh{}ot", std::process::id()));
    let cs: Vec<Ns> = names("ot", 2).into_iter().map(Ns::new).collect();
    let dir = tempfile::tempdir().ok()?;
    let roots = Roots::new(Some(dir.path()));
    let mgr = Manager::with(&roots, Some(host.path()), Arc::new(NftFirewall::default()))
        .with_dns(DnsServer::new(rt.handle().clone(), vec![]))
        .ok()?;
    let spec = NetworkSpec {
        stack: "bench".into(),
        name: "default".into(),
        ..Default::default()
    };
    mgr.ensure_network(&spec).ok()?;
    let mut ips = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let att = Attachment {
            stack: "bench".into(),
            network: "default".into(),
            aliases: vec![],
            ipv4: None,
            ipv6: None,
        };
        ips.push(
            mgr.attach("bench", &format!("c{i}"), &c.path(), &[att])
                .ok()?[0]
                .ipv4,
        );
    }
    let r = iperf(&cs[1], &cs[0], &ips[1].to_string());
    let _ = mgr.remove_stack("bench");
    r
}

/// The same over a bridge netavark set up.
fn theirs_throughput() -> Option<f64> {
    let host = Ns::new(format!("bh{}nt", std::process::id()));
    let cs: Vec<Ns> = names("nt", 2).into_iter().map(Ns::new).collect();
    let dir = tempfile::tempdir().ok()?;
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).ok()?;
    let files: Vec<PathBuf> = (0..2)
        .map(|i| {
            let p = dir.path().join(format!("c{i}.json"));
            std::fs::write(&p, netavark_json(i)).map(|()| p)
        })
        .collect::<Result<_, _>>()
        .ok()?;
    for (c, f) in cs.iter().zip(&files) {
        if !netavark(&host.path(), &cfg, f, "setup", &c.path()) {
            return None;
        }
    }
    let r = iperf(&cs[1], &cs[0], "10.99.0.3");
    for (c, f) in cs.iter().zip(&files) {
        netavark(&host.path(), &cfg, f, "teardown", &c.path());
    }
    r
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    if !root {
        eprintln!("network_setup bench needs root");
        std::process::exit(1);
    }
    let have_netavark = Path::new(NETAVARK).exists();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "network setup, median of runs (bridge + n containers with address, route, DNS, 1 port each)"
    );
    for (n, runs) in [(1usize, 15usize), (20, 5)] {
        let o = median((0..runs).map(|_| ours(n, &rt, false)).collect());
        print!("n={n:>2}: stack {:>8.2} ms", o.as_secs_f64() * 1e3);
        if have_netavark {
            let t = median((0..runs).map(|_| theirs(n)).collect());
            println!(
                "  netavark {:>8.2} ms  ratio netavark/stack {:.2}x",
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() / o.as_secs_f64()
            );
        } else {
            println!("  (netavark not installed: apt-get install netavark)");
        }
    }
    // What `up` does: the containers of a level attach at the same time.
    let serial = median((0..5).map(|_| ours(20, &rt, false)).collect());
    let parallel = median((0..5).map(|_| ours(20, &rt, true)).collect());
    println!(
        "n=20, a thread each (as up): stack {:>8.2} ms  vs one after the other {:>8.2} ms  ratio {:.2}x",
        parallel.as_secs_f64() * 1e3,
        serial.as_secs_f64() * 1e3,
        serial.as_secs_f64() / parallel.as_secs_f64()
    );
    let gbit = |v: Option<f64>| {
        v.map_or("n/a (iperf3 missing?)".to_string(), |g| {
            format!("{g:.1} Gbit/s")
        })
    };
    let o = ours_throughput(&rt);
    print!("container->container TCP (iperf3, 3 s): stack {}", gbit(o));
    if have_netavark {
        let t = theirs_throughput();
        print!("  netavark {}", gbit(t));
        if let (Some(o), Some(t)) = (o, t) {
            print!("  ratio stack/netavark {:.2}", o / t);
        }
    }
    println!();
}
