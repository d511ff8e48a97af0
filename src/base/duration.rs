//! Durations as written in hakit's configuration and flags: `250ms`, `2s`, `1m`, `1h`,
//! `500us`; a bare number is seconds, decimals allowed, as in Heartbeat's ha.cf.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// Parse a duration; the error text is meant to follow "bad duration: ".
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() || num.chars().filter(|&c| c == '.').count() > 1 {
        return Err(format!("`{s}` is not a duration (write 250ms, 2s, 1m)"));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (write 250ms, 2s, 1m)"))?;
    let scale = match unit {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("`{s}` has an unknown unit `{unit}` (use us, ms, s, m, h, d)")),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("`{s}` is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Print a duration back in the shortest exact unit.
pub fn format(d: Duration) -> String {
    let us = d.as_micros();
    if us % 3_600_000_000 == 0 && us > 0 {
        format!("{}h", us / 3_600_000_000)
    } else if us % 60_000_000 == 0 && us > 0 {
        format!("{}m", us / 60_000_000)
    } else if us % 1_000_000 == 0 {
        format!("{}s", us / 1_000_000)
    } else if us % 1000 == 0 {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

/// For clap: `value_parser = duration::clap_parse`.
pub fn clap_parse(s: &str) -> Result<Duration, String> {
    parse(s)
}

/// Serde helper so that config fields can be `Duration` written as `250ms` or `2`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration such as 250ms, 2s or 1m")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            parse(&v.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            if v < 0 {
                return Err(E::custom("a duration cannot be negative"));
            }
            self.visit_u64(v as u64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            if v < 0.0 {
                return Err(E::custom("a duration cannot be negative"));
            }
            parse(&v.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// Same as [`deserialize`] for optional fields.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn units() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("500us").unwrap(), Duration::from_micros(500));
        assert!(parse("ms").is_err());
        assert!(parse("1.2.3s").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("-1s").is_err());
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_secs(3)), "3s");
        assert_eq!(format(Duration::from_secs(600)), "10m");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(90)), "90s");
    }
}
