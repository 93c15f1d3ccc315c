//! Durations and byte sizes, parsed exactly as Compose and Docker do.
use std::time::Duration;

/// Go's `time.ParseDuration` (what Compose uses): a sequence of decimal
/// numbers with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, e.g. `1m30s`,
/// `1.5s`, `500ms`. A bare integer is taken as seconds, as Compose does for
/// numeric YAML values. Negative durations are rejected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let bad = || {
        format!(
            "invalid duration `{text}`: expected e.g. `10s`, `1m30s`, `500ms` or a number of seconds"
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ns += value * scale;
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(bad());
    }
    // Rounding to whole nanoseconds is what Go does as well.
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// Formats a duration the way Go prints it (`1m30s`, `500ms`, `0s`), so that
/// `stack config` output parses back to the same value.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let nanos = d.as_nanos();
    if nanos < 1_000_000_000 {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let sub = d.subsec_nanos();
    if sub == 0 {
        if s > 0 {
            out.push_str(&format!("{s}s"));
        }
    } else {
        let frac = format!("{sub:09}");
        out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
    }
    out
}

/// Docker's `RAMInBytes`: an integer or decimal number with an optional
/// binary unit `b`, `k`, `m`, `g`, `t`, `p` (case-insensitive, optionally
/// followed by `b` or `ib`): `256M`, `1g`, `1.5GB`, `1024`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let bad = || {
        format!("invalid size `{text}`: expected bytes or a number with a unit, e.g. `256m`, `1g`")
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if split == 0 {
        return Err(bad());
    }
    let value: f64 = s[..split].parse().map_err(|_| bad())?;
    let unit = s[split..].trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Formats bytes with the largest exact binary unit (`256m`, `1g`, `1000`).
pub fn format_size(bytes: u64) -> String {
    for (unit, mult) in [
        ("p", 1u64 << 50),
        ("t", 1 << 40),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
    ] {
        if bytes >= mult && bytes.is_multiple_of(mult) {
            return format!("{}{unit}", bytes / mult);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_parses_them() {
        let ok = [
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1.5s", 1500),
            ("1h", 3_600_000),
            ("2h45m", 9_900_000),
            ("30", 30_000),
            ("0s", 0),
            ("0", 0),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("1us"), Ok(Duration::from_micros(1)));
        for bad in ["", "s", "-1s", "1d", "1.2.3s", "abc", "10 s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn durations_round_trip_through_format() {
        for text in ["1m30s", "500ms", "0s", "1h", "1.5s", "2h0m1s", "10us"] {
            let d = parse_duration(text).expect(text);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn sizes_as_docker_parses_them() {
        let ok = [
            ("1024", 1024),
            ("256m", 256 << 20),
            ("256M", 256 << 20),
            ("1g", 1 << 30),
            ("1GB", 1 << 30),
            ("1GiB", 1 << 30),
            ("1.5k", 1536),
            ("10b", 10),
            ("64kb", 64 << 10),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "m", "1x", "-1m", "1.2.3m", "1 gg"] {
            assert!(parse_size(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(format_size(256 << 20), "256m");
        assert_eq!(format_size(1000), "1000");
    }
}
