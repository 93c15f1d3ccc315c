//! Host object names, derived from the state root id so that crash recovery
//! can tell ours from everything else. IFNAMSIZ is 16: 15 usable characters.
use std::collections::BTreeSet;

/// The prefix of every link this root creates: `s<root_id>`.
pub fn link_prefix(root_id: &str) -> String {
    format!("s{root_id}")
}

/// The nftables table of this root (family inet).
pub fn table(root_id: &str) -> String {
    format!("stack_{root_id}")
}

/// A bridge name for `key` (`stack/name`) not in `taken`.
pub fn bridge(root_id: &str, key: &str, taken: &BTreeSet<&str>) -> String {
    derive(root_id, 'b', key, taken)
}

/// A host-side veth name for `container` on `network` not in `taken`.
pub fn veth(root_id: &str, container: &str, network: &str, taken: &BTreeSet<&str>) -> String {
    derive(root_id, 'v', &format!("{container}\0{network}"), taken)
}

/// The device group of `bridge` and of the veths on it, so that `down`
/// deletes them in one request (`Nl::del_group`). Never 0 (the default
/// group of every other link); bit 30 keeps it clear of the small numbers
/// people give their own groups, and bit 31 stays clear because iproute2
/// reads a group as a signed int (`ip link show group N` must work). A
/// clash with another group is harmless: a group is deleted whole only when
/// all its links are ours to delete, checked at that moment.
pub fn link_group(bridge: &str) -> u32 {
    fnv1a(bridge.as_bytes(), 0) & 0x7fff_ffff | 0x4000_0000
}

/// `s<root><kind><7 hex of FNV-1a(seed, salt)>`; the salt grows on collision.
fn derive(root_id: &str, kind: char, seed: &str, taken: &BTreeSet<&str>) -> String {
    (0u32..)
        .map(|salt| {
            let h = fnv1a(seed.as_bytes(), salt);
            format!("s{root_id}{kind}{:07x}", h & 0x0fff_ffff)
        })
        .find(|n| !taken.contains(n.as_str()))
        .unwrap_or_default() // unreachable: 2^32 salts cannot all be taken
}

/// FNV-1a: stable across Rust versions (unlike `DefaultHasher`), so a name
/// derived today is derived the same by the next release.
fn fnv1a(data: &[u8], salt: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data.iter().chain(salt.to_le_bytes().iter()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_are_stable() {
        let none = BTreeSet::new();
        let b = bridge("a1b2c3", "web/default", &none);
        assert_eq!(b.len(), 15);
        assert!(b.starts_with("sa1b2c3b"));
        assert_eq!(b, bridge("a1b2c3", "web/default", &none));
        assert_ne!(b, bridge("a1b2c3", "web/back", &none));
        let v = veth("a1b2c3", "web-1", "web/default", &none);
        assert_eq!(v.len(), 15);
        assert!(v.starts_with("sa1b2c3v"));
    }

    #[test]
    fn link_groups_are_stable_and_never_the_default() {
        let g = link_group("sa1b2c3b0000001");
        assert_eq!(g, link_group("sa1b2c3b0000001"));
        assert_ne!(g, link_group("sa1b2c3b0000002"));
        assert!((0x4000_0000..=0x7fff_ffff).contains(&g));
    }

    #[test]
    fn collision_takes_next_salt() {
        let first = bridge("000000", "x/y", &BTreeSet::new());
        let taken: BTreeSet<&str> = [first.as_str()].into();
        let second = bridge("000000", "x/y", &taken);
        assert_ne!(first, second);
        assert_eq!(second.len(), 15);
    }
}
