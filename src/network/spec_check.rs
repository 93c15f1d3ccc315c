//! Checks of a `NetworkSpec` before anything changes (rule 6), and the
//! IPv6 half of planning a network.
use std::net::Ipv6Addr;

use super::ipam6::{self, Cidr6};
use super::store::{NetRecord, NetState};
use super::types::NetworkSpec;
use super::{Error, Result};

/// IPv6 subnet and gateway of a new network: the spec's, or a ULA /64.
pub fn plan_v6(
    st: &NetState,
    spec: &NetworkSpec,
    key: &str,
) -> Result<(Option<Cidr6>, Option<Ipv6Addr>)> {
    if !spec.enable_ipv6 {
        return Ok((None, None));
    }
    let ours: Vec<Cidr6> = st.networks.values().filter_map(|n| n.subnet6).collect();
    let subnet6 = match spec.subnet6 {
        Some(s) => {
            if let Some(o) = st
                .networks
                .values()
                .find(|n| n.subnet6.is_some_and(|x| x.overlaps(s)))
            {
                return Err(Error::InvalidSpec {
                    network: key.to_string(),
                    reason: format!("IPv6 subnet {s} overlaps network {}/{}", o.stack, o.name),
                });
            }
            s.normalized()
        }
        None => ipam6::pick_ula(&format!("{}/{key}", st.root_id), &ours).ok_or(
            Error::PoolExhausted {
                pool: "fd00::/8".into(),
            },
        )?,
    };
    Ok((
        Some(subnet6),
        Some(spec.gateway6.unwrap_or(subnet6.first_host())),
    ))
}

pub fn validate(spec: &NetworkSpec) -> Result<()> {
    let bad = |reason: String| Error::InvalidSpec {
        network: spec.key(),
        reason,
    };
    if !spec.enable_ipv6 && (spec.subnet6.is_some() || spec.gateway6.is_some()) {
        return Err(bad(
            "an IPv6 subnet or gateway needs enable_ipv6: true".into()
        ));
    }
    if let Some(s6) = spec.subnet6 {
        if s6.prefix > 120 {
            return Err(bad(format!("IPv6 subnet {s6} is too small (at most /120)")));
        }
        if let Some(g6) = spec.gateway6
            && !s6.contains(g6)
        {
            return Err(bad(format!("IPv6 gateway {g6} is outside subnet {s6}")));
        }
    } else if spec.gateway6.is_some() {
        return Err(bad("an IPv6 gateway needs an IPv6 subnet".into()));
    }
    if spec.stack.is_empty()
        || spec.name.is_empty()
        || spec.stack.contains('/')
        || spec.name.contains('/')
    {
        return Err(bad(
            "stack and network names must be non-empty and contain no '/'".into(),
        ));
    }
    if let Some(b) = &spec.bridge {
        let ok = !b.is_empty()
            && b.len() <= 15
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
        if !ok {
            return Err(bad(format!(
                "bridge name {b:?} must be 1-15 characters of [A-Za-z0-9._-]"
            )));
        }
    }
    if let Some(s) = spec.subnet {
        if s.prefix > 30 {
            return Err(bad(format!("subnet {s} is too small (at most /30)")));
        }
        if let Some(r) = spec.ip_range
            && !s.covers(r)
        {
            return Err(bad(format!("ip_range {r} is not inside subnet {s}")));
        }
    } else if spec.gateway.is_some() || spec.ip_range.is_some() {
        return Err(bad("gateway and ip_range need a subnet".into()));
    }
    if let Some(m) = spec.mtu
        && !(68..=65535).contains(&m)
    {
        return Err(bad(format!("mtu {m} is outside 68..65535")));
    }
    Ok(())
}

/// An existing network may be re-ensured only with the same settings; a
/// changed one must be removed and created again (the reconciler's job).
pub fn check_unchanged(spec: &NetworkSpec, rec: &NetRecord) -> Result<()> {
    let mut diffs = Vec::new();
    if spec.subnet.is_some_and(|s| s.normalized() != rec.subnet) {
        diffs.push("subnet");
    }
    if spec.gateway.is_some_and(|g| g != rec.gateway) {
        diffs.push("gateway");
    }
    if spec.internal != rec.internal {
        diffs.push("internal");
    }
    if spec.bridge.as_ref().is_some_and(|b| b != &rec.bridge) {
        diffs.push("bridge");
    }
    if spec.mtu != rec.mtu {
        diffs.push("mtu");
    }
    if spec.ip_range != rec.ip_range {
        diffs.push("ip_range");
    }
    if spec.enable_ipv6 != rec.subnet6.is_some()
        || spec
            .subnet6
            .is_some_and(|s| Some(s.normalized()) != rec.subnet6)
        || spec.gateway6.is_some_and(|g| Some(g) != rec.gateway6)
    {
        diffs.push("IPv6 settings");
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            network: spec.key(),
            reason: format!(
                "exists with different {}; remove it first to change it",
                diffs.join(", ")
            ),
        })
    }
}
