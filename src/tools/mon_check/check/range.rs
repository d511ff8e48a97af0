//! Threshold ranges in the monitoring-plugin syntax: `10` (alert outside 0..10), `10:`
//! (below 10), `~:10` (above 10), `10:20` (outside), `@10:20` (inside).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    start: f64,
    end: f64,
    /// `@`: alert when the value is inside the range instead of outside.
    inside: bool,
    text: String,
}

impl Range {
    pub fn parse(s: &str) -> Result<Range, String> {
        let text = s.trim();
        let bad = || format!("`{s}` is not a threshold range (write 10, 10:, ~:10, 10:20 or @10:20)");
        let (inside, body) = match text.strip_prefix('@') {
            Some(b) => (true, b),
            None => (false, text),
        };
        if body.is_empty() {
            return Err(bad());
        }
        let num = |t: &str| -> Result<f64, String> {
            let v: f64 = t.parse().map_err(|_| bad())?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(bad())
            }
        };
        let (start, end) = match body.split_once(':') {
            None => (0.0, num(body)?),
            Some((a, b)) => {
                let start = match a {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    _ => num(a)?,
                };
                let end = if b.is_empty() { f64::INFINITY } else { num(b)? };
                (start, end)
            }
        };
        if start > end {
            return Err(format!("`{s}`: the start of the range is above its end"));
        }
        Ok(Range {
            start,
            end,
            inside,
            text: text.to_string(),
        })
    }

    /// Whether `v` raises this threshold.
    pub fn alerts(&self, v: f64) -> bool {
        let within = v >= self.start && v <= self.end;
        within == self.inside
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// For clap: `value_parser = range::clap_parse`.
pub fn clap_parse(s: &str) -> Result<Range, String> {
    Range::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_guidelines_table() {
        let r = |s| Range::parse(s).unwrap();
        assert!(!r("10").alerts(0.0) && !r("10").alerts(10.0));
        assert!(r("10").alerts(-0.1) && r("10").alerts(10.1));
        assert!(r("10:").alerts(9.9) && !r("10:").alerts(1e9));
        assert!(!r("~:10").alerts(-1e9) && r("~:10").alerts(10.1));
        assert!(r("10:20").alerts(9.0) && !r("10:20").alerts(15.0) && r("10:20").alerts(21.0));
        assert!(!r("@10:20").alerts(9.0) && r("@10:20").alerts(10.0) && r("@10:20").alerts(20.0));
        assert_eq!(r("0.5").to_string(), "0.5");
    }

    #[test]
    fn bad_ranges_are_refused() {
        for s in ["", "@", "x", "20:10", "1:2:3", "nan", "inf", "~"] {
            assert!(Range::parse(s).is_err(), "{s}");
        }
    }
}
