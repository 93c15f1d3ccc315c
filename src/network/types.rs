//! The values callers pass in and get back. Our own types: the reconciler maps
//! `model::Network` and the service's `networks:`/`ports:` onto these.
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::ipam::Cidr4;
use super::ipam6::Cidr6;

/// One bridge network of a stack, as the file declares it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The stack (Compose project) that owns the network.
    pub stack: String,
    /// The network's name in the file (`default` for `<project>_default`).
    pub name: String,
    /// Name on the host, by which other stacks join it as `external`
    /// (Compose's `name:`); `<stack>_<name>` when `None`.
    pub host_name: Option<String>,
    /// Host bridge name; derived from the state root, stack and name when `None`.
    pub bridge: Option<String>,
    /// IPv4 subnet (`ipam.config[].subnet`); allocated from 10.89.0.0/16 when `None`.
    pub subnet: Option<Cidr4>,
    /// Gateway (the bridge's address); the subnet's first host when `None`.
    pub gateway: Option<Ipv4Addr>,
    /// Range containers' addresses are taken from (`ipam.config[].ip_range`).
    pub ip_range: Option<Cidr4>,
    /// `internal: true`: no egress, no NAT, no default route.
    pub internal: bool,
    /// `enable_ipv6`: the network also gets an IPv6 subnet (a ULA /64 when
    /// `subnet6` is `None`).
    pub enable_ipv6: bool,
    /// IPv6 subnet from `ipam.config[].subnet` (needs `enable_ipv6`).
    pub subnet6: Option<Cidr6>,
    /// IPv6 gateway; the subnet's `::1` when `None`.
    pub gateway6: Option<Ipv6Addr>,
    /// Bridge and veth MTU; the kernel default (1500) when `None`.
    pub mtu: Option<u32>,
    /// Labels, kept in state for `stack network ls`.
    pub labels: BTreeMap<String, String>,
}

impl NetworkSpec {
    /// `stack/name`, the key of the network in state.
    pub fn key(&self) -> String {
        net_key(&self.stack, &self.name)
    }

    /// The name on the host: `host_name`, or `<stack>_<name>`.
    pub fn host_name(&self) -> String {
        self.host_name
            .clone()
            .unwrap_or_else(|| format!("{}_{}", self.stack, self.name))
    }
}

pub(crate) fn net_key(stack: &str, name: &str) -> String {
    format!("{stack}/{name}")
}

/// What exists after `ensure_network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub stack: String,
    pub name: String,
    /// Name on the host (what `external` networks are found by).
    pub host_name: String,
    pub bridge: String,
    pub subnet: Cidr4,
    pub gateway: Ipv4Addr,
    pub subnet6: Option<Cidr6>,
    pub gateway6: Option<Ipv6Addr>,
    pub internal: bool,
}

/// A container joining a network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    /// The network's stack.
    pub stack: String,
    /// The network's name within the stack.
    pub network: String,
    /// DNS names on this network: service name, container name, `aliases:`.
    pub aliases: Vec<String>,
    /// Static address (`ipv4_address`); allocated when `None`.
    pub ipv4: Option<Ipv4Addr>,
    /// Static IPv6 address (`ipv6_address`) on an IPv6 network; allocated
    /// when `None`.
    pub ipv6: Option<Ipv6Addr>,
}

/// One interface of a container after `attach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub stack: String,
    pub network: String,
    /// Name inside the container (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// Host side of the veth pair.
    pub host_veth: String,
    pub ipv4: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// IPv6 address, prefix length and gateway on an IPv6 network.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    pub aliases: Vec<String>,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// `[host_ip:]host_port:container_port[/proto]`; ranges are expanded by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// Address on the host; all addresses of the host (IPv4, and IPv6 when
    /// the container has an IPv6 address) when `None`.
    pub host_ip: Option<IpAddr>,
    /// Host port; 0 picks a free one.
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// How a container's published ports relate to other containers'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing {
    /// Containers of the same group (the replicas of one service) may
    /// publish the same host address and port: the kernel spreads its
    /// connections over them. `None`: the port is this container's alone.
    pub group: Option<String>,
    /// Reserve the ports (checked, recorded) without sending traffic to the
    /// container until [`Manager::move_ports`](super::Manager::move_ports).
    pub standby: bool,
}

/// A container whose published ports are reserved without traffic (see
/// [`Sharing::standby`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standby {
    pub container: String,
    pub stack: String,
    pub ports: Vec<PublishedPort>,
}

/// A port as published: the chosen host port is what `stack port`/`ps` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_addr: Ipv4Addr,
    /// The container's IPv6 address, target of IPv6 connections.
    #[serde(default)]
    pub container_addr6: Option<Ipv6Addr>,
    pub container_port: u16,
    pub proto: Proto,
}

impl PublishedPort {
    /// The host address the port is bound to, `0.0.0.0` for all.
    pub fn host_addr(&self) -> IpAddr {
        self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// `addr:port`, IPv6 addresses in brackets (`[::1]:8080`).
    pub fn host_socket(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.host_addr(), self.host_port)
    }
}
