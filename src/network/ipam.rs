//! IPv4 address management, pure: subnets, the default pool, allocation.
//!
//! Persistence is `store`'s job; this file only decides. Allocation walks the
//! range from a cursor (the last address handed out) so that a freed address is
//! reused as late as possible: a stale DNS answer or ARP entry then points at
//! nothing rather than at a new container.
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 prefix, `10.89.0.0/24`. The address is kept as written; use
/// [`Cidr4::network`] for the masked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr4 {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr4 {
    /// A prefix; `None` when `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then_some(Cidr4 { addr, prefix })
    }

    fn mask(self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The masked network address.
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast (last) address.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }

    /// Does the prefix contain `ip`?
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Do the two prefixes share any address?
    pub fn overlaps(self, other: Cidr4) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// Is `other` entirely inside `self`?
    pub fn covers(self, other: Cidr4) -> bool {
        other.prefix >= self.prefix && self.contains(other.network())
    }

    /// Usable host addresses, first and last (network and broadcast excluded
    /// except for /31 and /32, RFC 3021).
    pub fn host_bounds(self) -> (u32, u32) {
        let (n, b) = (u32::from(self.network()), u32::from(self.broadcast()));
        if self.prefix >= 31 {
            (n, b)
        } else {
            (n + 1, b - 1)
        }
    }

    /// The network address with its prefix (`10.89.3.0/24`).
    pub fn normalized(self) -> Cidr4 {
        Cidr4 {
            addr: self.network(),
            prefix: self.prefix,
        }
    }
}

impl fmt::Display for Cidr4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a string is not an IPv4 prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IPv4 subnet like 10.89.0.0/24")]
pub struct BadCidr(pub String);

impl FromStr for Cidr4 {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Cidr4::new(addr, prefix).ok_or_else(bad)
    }
}

impl Serialize for Cidr4 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr4 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The pool default subnets come from (netavark uses the same one).
pub const DEFAULT_POOL: Cidr4 = Cidr4 {
    addr: Ipv4Addr::new(10, 89, 0, 0),
    prefix: 16,
};

/// Size of each subnet taken from the pool.
pub const DEFAULT_PREFIX: u8 = 24;

/// The first `/size` block of `pool` that overlaps none of `taken` (subnets of
/// other networks and routes of the host).
pub fn pick_subnet(pool: Cidr4, size: u8, taken: &[Cidr4]) -> Option<Cidr4> {
    if size < pool.prefix || size > 30 {
        return None;
    }
    let step = 1u64 << (32 - u32::from(size));
    let start = u64::from(u32::from(pool.network()));
    let end = u64::from(u32::from(pool.broadcast()));
    let mut at = start;
    while at + step - 1 <= end {
        let addr = Ipv4Addr::from(u32::try_from(at).ok()?);
        let candidate = Cidr4 { addr, prefix: size };
        if !taken.iter().any(|t| t.overlaps(candidate)) {
            return Some(candidate);
        }
        at += step;
    }
    None
}

/// Why a requested static address cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    OutsideSubnet,
    Reserved,
    InUse,
}

impl Unavailable {
    pub fn describe(self) -> &'static str {
        match self {
            Unavailable::OutsideSubnet => "outside the network's subnet",
            Unavailable::Reserved => "reserved (network, broadcast or gateway address)",
            Unavailable::InUse => "already assigned to another container",
        }
    }
}

/// The addresses of one subnet and what is taken.
#[derive(Debug, Clone)]
pub struct AddressPool<'a> {
    pub subnet: Cidr4,
    pub range: Option<Cidr4>,
    pub gateway: Ipv4Addr,
    pub used: &'a BTreeSet<Ipv4Addr>,
}

impl AddressPool<'_> {
    /// May `ip` be assigned statically?
    pub fn check_static(&self, ip: Ipv4Addr) -> Result<(), Unavailable> {
        if !self.subnet.contains(ip) {
            return Err(Unavailable::OutsideSubnet);
        }
        let (lo, hi) = self.subnet.host_bounds();
        if ip == self.gateway || u32::from(ip) < lo || u32::from(ip) > hi {
            return Err(Unavailable::Reserved);
        }
        if self.used.contains(&ip) {
            return Err(Unavailable::InUse);
        }
        Ok(())
    }

    /// The next free address after `cursor` (wrapping), inside the range.
    pub fn next_free(&self, cursor: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        let (slo, shi) = self.subnet.host_bounds();
        let (rlo, rhi) = self
            .range
            .map_or((slo, shi), |r| r.host_bounds_within(self.subnet));
        let (lo, hi) = (rlo.max(slo), rhi.min(shi));
        if lo > hi {
            return None;
        }
        let start = cursor
            .map(u32::from)
            .filter(|c| (lo..=hi).contains(c))
            .map_or(lo, |c| if c == hi { lo } else { c + 1 });
        let free = |n: u32| {
            let ip = Ipv4Addr::from(n);
            ip != self.gateway && !self.used.contains(&ip)
        };
        (start..=hi)
            .chain(lo..start)
            .find(|&n| free(n))
            .map(Ipv4Addr::from)
    }
}

impl Cidr4 {
    /// Bounds of an `ip_range` inside its subnet: the range's own network and
    /// broadcast addresses are ordinary hosts of the bigger subnet.
    fn host_bounds_within(self, subnet: Cidr4) -> (u32, u32) {
        if self.prefix == subnet.prefix {
            self.host_bounds()
        } else {
            (u32::from(self.network()), u32::from(self.broadcast()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr4 {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_masks() {
        let n = c("10.89.3.7/24");
        assert_eq!(n.network(), Ipv4Addr::new(10, 89, 3, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 89, 3, 255));
        assert!(n.contains(Ipv4Addr::new(10, 89, 3, 200)));
        assert!(!n.contains(Ipv4Addr::new(10, 89, 4, 1)));
        assert_eq!(n.to_string(), "10.89.3.7/24");
        assert!("10.0.0.0/33".parse::<Cidr4>().is_err());
        assert!("10.0.0/8".parse::<Cidr4>().is_err());
        assert!("10.0.0.0".parse::<Cidr4>().is_err());
        assert_eq!(c("0.0.0.0/0").broadcast(), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn overlap_is_symmetric() {
        assert!(c("10.0.0.0/8").overlaps(c("10.89.0.0/24")));
        assert!(c("10.89.0.0/24").overlaps(c("10.0.0.0/8")));
        assert!(!c("10.89.0.0/24").overlaps(c("10.89.1.0/24")));
        assert!(c("10.0.0.0/8").covers(c("10.1.0.0/16")));
        assert!(!c("10.1.0.0/16").covers(c("10.0.0.0/8")));
    }

    #[test]
    fn pick_subnet_skips_taken_and_host_routes() {
        let taken = [c("10.89.0.0/24"), c("10.89.1.128/25"), c("10.89.3.5/32")];
        assert_eq!(
            pick_subnet(DEFAULT_POOL, 24, &taken),
            Some(c("10.89.2.0/24"))
        );
        // a host route covering the whole pool leaves nothing
        assert_eq!(pick_subnet(DEFAULT_POOL, 24, &[c("10.0.0.0/8")]), None);
        assert_eq!(pick_subnet(DEFAULT_POOL, 8, &[]), None);
    }

    fn pool<'a>(used: &'a BTreeSet<Ipv4Addr>, range: Option<&str>) -> AddressPool<'a> {
        AddressPool {
            subnet: c("10.89.0.0/29"),
            range: range.map(c),
            gateway: Ipv4Addr::new(10, 89, 0, 1),
            used,
        }
    }

    #[test]
    fn allocation_skips_gateway_used_and_wraps_from_cursor() {
        let mut used = BTreeSet::new();
        let ip = |d| Ipv4Addr::new(10, 89, 0, d);
        assert_eq!(pool(&used, None).next_free(None), Some(ip(2)));
        used.insert(ip(2));
        assert_eq!(pool(&used, None).next_free(Some(ip(2))), Some(ip(3)));
        // after .6 (last host of a /29) it wraps to the lowest free address
        assert_eq!(pool(&used, None).next_free(Some(ip(6))), Some(ip(3)));
        // a freed address is not reused before the rest of the range
        assert_eq!(pool(&used, None).next_free(Some(ip(4))), Some(ip(5)));
        for d in 3..=6 {
            used.insert(ip(d));
        }
        assert_eq!(pool(&used, None).next_free(Some(ip(3))), None);
    }

    #[test]
    fn allocation_stays_inside_ip_range() {
        let used = BTreeSet::new();
        let p = AddressPool {
            subnet: c("10.89.0.0/24"),
            range: Some(c("10.89.0.128/30")),
            gateway: Ipv4Addr::new(10, 89, 0, 1),
            used: &used,
        };
        let got = p.next_free(Some(Ipv4Addr::new(10, 89, 0, 131)));
        assert_eq!(got, Some(Ipv4Addr::new(10, 89, 0, 128)));
    }

    #[test]
    fn static_addresses_are_checked() {
        let mut used = BTreeSet::new();
        used.insert(Ipv4Addr::new(10, 89, 0, 3));
        let p = pool(&used, None);
        assert_eq!(p.check_static(Ipv4Addr::new(10, 89, 0, 4)), Ok(()));
        assert_eq!(
            p.check_static(Ipv4Addr::new(10, 89, 0, 3)),
            Err(Unavailable::InUse)
        );
        assert_eq!(
            p.check_static(Ipv4Addr::new(10, 89, 0, 1)),
            Err(Unavailable::Reserved)
        );
        assert_eq!(
            p.check_static(Ipv4Addr::new(10, 89, 0, 7)),
            Err(Unavailable::Reserved)
        );
        assert_eq!(
            p.check_static(Ipv4Addr::new(10, 89, 1, 4)),
            Err(Unavailable::OutsideSubnet)
        );
    }
}
