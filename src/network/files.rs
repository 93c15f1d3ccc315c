//! The files a container's resolver reads, as pure functions of values.
//!
//! The runtime/storage layer writes them into the container (bind mounts or
//! files in the rootfs); this module only computes their contents.
use std::fmt::Write;
use std::net::IpAddr;

/// `/etc/hostname`: the name and a newline.
pub fn hostname(name: &str) -> String {
    format!("{name}\n")
}

/// One line of `/etc/hosts` beyond the localhost entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub addr: IpAddr,
    pub names: Vec<String>,
}

/// `/etc/hosts`: localhost, the container's own addresses with its hostname
/// (and aliases), `host.stack.internal` when the gateway is known, then
/// `extra_hosts` in file order (as Docker writes it). glibc and musl return
/// the first matching line, so a container's own name cannot be redirected
/// by an `extra_hosts` entry.
pub fn hosts(own: &[HostEntry], host_gateway: Option<IpAddr>, extra: &[HostEntry]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let mut line = |e: &HostEntry| {
        let names: Vec<&str> = e
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| is_hostname(n))
            .collect();
        if !names.is_empty() {
            let _ = writeln!(s, "{}\t{}", e.addr, names.join(" "));
        }
    };
    own.iter().for_each(&mut line);
    if let Some(gw) = host_gateway {
        line(&HostEntry {
            addr: gw,
            names: vec!["host.stack.internal".into()],
        });
    }
    extra.iter().for_each(&mut line);
    s
}

/// Names that may go into hosts/resolv.conf: letters, digits, `-`, `_`, `.`
/// (a name with a space or newline would add entries of its own).
fn is_hostname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// resolv.conf options are single tokens (`ndots:2`, `edns0`).
fn is_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
}

/// Inputs of `/etc/resolv.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvConf {
    /// `dns:` from the file; wins over everything.
    pub dns: Vec<IpAddr>,
    /// The network's embedded resolver (the gateway), when the container is on
    /// a bridge network with DNS.
    pub embedded: Option<IpAddr>,
    /// The host's `/etc/resolv.conf` text, for `network_mode: host` or when
    /// no embedded resolver exists.
    pub host: Option<String>,
    /// `dns_search:`; the host's `search` line when empty.
    pub search: Vec<String>,
    /// `dns_opt:`.
    pub options: Vec<String>,
}

/// `/etc/resolv.conf` for a container.
///
/// Nameservers: `dns:` if given, else the embedded resolver, else the host's
/// nameservers minus loopback ones (127.0.0.53 of systemd-resolved is the
/// host's own loopback, unreachable from the container's namespace).
pub fn resolv_conf(r: &ResolvConf) -> String {
    let host = r.host.as_deref().unwrap_or("");
    let host_lines = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key)).then(|| it.collect::<Vec<_>>().join(" "))
            })
            .collect()
    };
    let servers: Vec<String> = if !r.dns.is_empty() {
        r.dns.iter().map(ToString::to_string).collect()
    } else if let Some(e) = r.embedded {
        vec![e.to_string()]
    } else {
        host_lines("nameserver")
            .into_iter()
            .filter(|a| a.parse::<IpAddr>().is_ok_and(|ip| !ip.is_loopback()))
            .collect()
    };
    let mut s = String::new();
    let search = if r.search.is_empty() {
        host_lines("search").join(" ")
    } else {
        let valid: Vec<&str> = r
            .search
            .iter()
            .map(String::as_str)
            .filter(|d| is_hostname(d))
            .collect();
        valid.join(" ")
    };
    if !search.is_empty() {
        let _ = writeln!(s, "search {search}");
    }
    for ns in servers {
        let _ = writeln!(s, "nameserver {ns}");
    }
    let options: Vec<&str> = r
        .options
        .iter()
        .map(String::as_str)
        .filter(|o| is_token(o))
        .collect();
    if !options.is_empty() {
        let _ = writeln!(s, "options {}", options.join(" "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_lists_self_gateway_and_extra_hosts() {
        let own = [HostEntry {
            addr: ip("10.89.0.2"),
            names: vec!["web-1".into(), "web".into()],
        }];
        let extra = [HostEntry {
            addr: ip("192.0.2.9"),
            names: vec!["db.example".into()],
        }];
        let text = hosts(&own, Some(ip("10.89.0.1")), &extra);
        assert_eq!(
            text,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.89.0.2\tweb-1 web\n10.89.0.1\thost.stack.internal\n192.0.2.9\tdb.example\n"
        );
    }

    #[test]
    fn resolv_conf_prefers_dns_then_embedded_then_host_without_loopback() {
        let host =
            "search corp.example\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n";
        let mut r = ResolvConf {
            host: Some(host.into()),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&r),
            "search corp.example\nnameserver 192.0.2.53\n"
        );
        r.embedded = Some(ip("10.89.0.1"));
        assert_eq!(
            resolv_conf(&r),
            "search corp.example\nnameserver 10.89.0.1\n"
        );
        r.dns = vec![ip("192.0.2.1")];
        r.search = vec!["a.test".into(), "b.test".into()];
        r.options = vec!["ndots:2".into()];
        assert_eq!(
            resolv_conf(&r),
            "search a.test b.test\nnameserver 192.0.2.1\noptions ndots:2\n"
        );
    }

    #[test]
    fn names_cannot_inject_lines() {
        let own = [HostEntry {
            addr: ip("10.89.0.2"),
            names: vec!["web\n1.2.3.4 bank.example".into(), "ok".into()],
        }];
        let text = hosts(&own, None, &[]);
        assert!(!text.contains("bank"), "{text}");
        assert!(text.contains("10.89.0.2\tok\n"), "{text}");
        let r = ResolvConf {
            embedded: Some(ip("10.89.0.1")),
            search: vec!["a.test\nnameserver 6.6.6.6".into()],
            options: vec!["ndots:1\nnameserver 6.6.6.6".into()],
            ..Default::default()
        };
        assert_eq!(resolv_conf(&r), "nameserver 10.89.0.1\n");
    }

    #[test]
    fn hostname_has_newline() {
        assert_eq!(hostname("web-1"), "web-1\n");
    }
}
