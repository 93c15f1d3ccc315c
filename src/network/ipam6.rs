//! IPv6 address management, pure: prefixes, ULA allocation, addresses.
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv6 prefix, `fd12:3456:789a::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Cidr6 {
    /// A prefix; `None` when `prefix > 128`.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Option<Self> {
        (prefix <= 128).then_some(Cidr6 { addr, prefix })
    }

    fn mask(self) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    pub fn network(self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }

    pub fn last(self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network()) | !self.mask())
    }

    pub fn contains(self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network())
    }

    pub fn overlaps(self, other: Cidr6) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    pub fn normalized(self) -> Cidr6 {
        Cidr6 {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// The first address after the subnet-router anycast address (RFC 4291
    /// 2.6.1): the default gateway.
    pub fn first_host(self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network()) + 1)
    }
}

impl fmt::Display for Cidr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a string is not an IPv6 prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IPv6 subnet like fd00:1::/64")]
pub struct BadCidr6(pub String);

impl FromStr for Cidr6 {
    type Err = BadCidr6;
    fn from_str(s: &str) -> Result<Self, BadCidr6> {
        let bad = || BadCidr6(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Cidr6::new(addr, prefix).ok_or_else(bad)
    }
}

impl Serialize for Cidr6 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr6 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A unique local /64 (RFC 4193 `fd00::/8`) for `seed` (root id + network
/// key) not overlapping `taken`. The 40-bit global ID comes from a hash of
/// the seed instead of RFC 4193's time+EUI-64 recipe: stable for the same
/// network, distinct across roots, and still in fd00::/8.
pub fn pick_ula(seed: &str, taken: &[Cidr6]) -> Option<Cidr6> {
    (0u32..1024).find_map(|salt| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes().chain(salt.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let global = u128::from(h & 0xff_ffff_ffff);
        let addr = Ipv6Addr::from((0xfd_u128 << 120) | (global << 80));
        let c = Cidr6 { addr, prefix: 64 };
        (!taken.iter().any(|t| t.overlaps(c))).then_some(c)
    })
}

/// The next free address after `cursor` in `subnet` (gateway and the
/// subnet-router anycast address excluded). Large subnets are never
/// exhausted in practice; the scan stops at the first free address.
pub fn next_free(
    subnet: Cidr6,
    gateway: Ipv6Addr,
    used: &BTreeSet<Ipv6Addr>,
    cursor: Option<Ipv6Addr>,
) -> Option<Ipv6Addr> {
    let lo = u128::from(subnet.network()) + 1;
    let hi = u128::from(subnet.last());
    let start = cursor
        .map(u128::from)
        .filter(|c| (lo..hi).contains(c))
        .map_or(lo, |c| c + 1);
    let free = |n: u128| {
        let ip = Ipv6Addr::from(n);
        ip != gateway && !used.contains(&ip)
    };
    (start..=hi)
        .take(1 << 20)
        .chain((lo..start).take(1 << 20))
        .find(|&n| free(n))
        .map(Ipv6Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_mask_contain() {
        let c: Cidr6 = "fd00:1:2:3::9/64".parse().unwrap();
        assert_eq!(c.network(), "fd00:1:2:3::".parse::<Ipv6Addr>().unwrap());
        assert!(c.contains("fd00:1:2:3:ffff::1".parse().unwrap()));
        assert!(!c.contains("fd00:1:2:4::1".parse().unwrap()));
        assert_eq!(c.first_host(), "fd00:1:2:3::1".parse::<Ipv6Addr>().unwrap());
        assert!("fd00::/129".parse::<Cidr6>().is_err());
    }

    #[test]
    fn ula_is_in_fd00_stable_and_avoids_taken() {
        let a = pick_ula("abc/net", &[]).unwrap();
        assert_eq!(a.prefix, 64);
        assert_eq!(a.addr.octets()[0], 0xfd);
        assert_eq!(Some(a), pick_ula("abc/net", &[]));
        let b = pick_ula("abc/net", &[a]).unwrap();
        assert!(!a.overlaps(b));
    }

    #[test]
    fn allocation_skips_gateway_and_used() {
        let c: Cidr6 = "fd00::/64".parse().unwrap();
        let gw = c.first_host();
        let mut used = BTreeSet::new();
        let a = next_free(c, gw, &used, None).unwrap();
        assert_eq!(a, "fd00::2".parse::<Ipv6Addr>().unwrap());
        used.insert(a);
        assert_eq!(
            next_free(c, gw, &used, Some(a)).unwrap(),
            "fd00::3".parse::<Ipv6Addr>().unwrap()
        );
    }
}
