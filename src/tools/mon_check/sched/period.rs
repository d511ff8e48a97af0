//! mon's periods, in the syntax of Perl's Time::Period that mon.cf uses:
//! `wd {Mon-Fri} hr {7am-10pm}`, sub-periods separated by commas (any of them),
//! scales within one sub-period all required. Ranges are inclusive and may wrap
//! (`hr {10pm-6am}`). Times are local, as mon's are.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    Year,
    Month,
    YearDay,
    MonthDay,
    WeekDay,
    Hour,
    Minute,
    Second,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sub {
    /// (scale, [(low, high)]): the time's value on the scale must be in one range.
    parts: Vec<(Scale, Vec<(i32, i32)>)>,
}

/// A period; the empty one is always, `none` is never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    subs: Vec<Sub>,
    never: bool,
    text: String,
}

/// The fields of a local time that the scales read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tm {
    pub year: i32,
    /// 1-12
    pub month: i32,
    /// 1-366
    pub yday: i32,
    /// 1-31
    pub mday: i32,
    /// 1-7, Sunday is 1
    pub wday: i32,
    pub hour: i32,
    pub min: i32,
    pub sec: i32,
}

impl Tm {
    /// The local time of a Unix time.
    pub fn local(unix: i64) -> Tm {
        // nix has no localtime: libc's, the one place the zone rules are read.
        let t = unix as libc::time_t;
        // SAFETY: libc::tm is plain integers (and a pointer that may be null): all
        // zeroes is a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live locals; localtime_r is the reentrant form
        // and writes only into `tm`.
        unsafe { libc::localtime_r(&t, &mut tm) };
        Tm {
            year: tm.tm_year + 1900,
            month: tm.tm_mon + 1,
            yday: tm.tm_yday + 1,
            mday: tm.tm_mday,
            wday: tm.tm_wday + 1,
            hour: tm.tm_hour,
            min: tm.tm_min,
            sec: tm.tm_sec,
        }
    }
    fn get(&self, s: Scale) -> i32 {
        match s {
            Scale::Year => self.year,
            Scale::Month => self.month,
            Scale::YearDay => self.yday,
            Scale::MonthDay => self.mday,
            Scale::WeekDay => self.wday,
            Scale::Hour => self.hour,
            Scale::Minute => self.min,
            Scale::Second => self.sec,
        }
    }
}

const DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn named(v: &str, names: &[&str]) -> Option<i32> {
    let v = v.to_ascii_lowercase();
    if v.len() < 2 {
        return None;
    }
    names.iter().position(|n| n.starts_with(&v)).map(|i| i as i32 + 1)
}

fn value(scale: Scale, v: &str) -> Result<i32, String> {
    let num = |lo: i32, hi: i32| -> Result<i32, String> {
        match v.parse::<i32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(format!("`{v}` is out of range {lo}-{hi}")),
        }
    };
    match scale {
        Scale::Year => match v.parse::<i32>() {
            Ok(n) if (0..=99).contains(&n) => Ok(if n < 70 { 2000 + n } else { 1900 + n }),
            Ok(n) if n >= 1970 => Ok(n),
            _ => Err(format!("`{v}` is not a year")),
        },
        Scale::Month => named(v, &MONTHS).map(Ok).unwrap_or_else(|| num(1, 12)),
        Scale::YearDay => num(1, 366),
        Scale::MonthDay => num(1, 31),
        Scale::WeekDay => named(v, &DAYS).map(Ok).unwrap_or_else(|| num(1, 7)),
        Scale::Hour => {
            let l = v.to_ascii_lowercase();
            if l == "12noon" {
                return Ok(12);
            }
            for (suffix, add) in [("am", 0), ("pm", 12)] {
                if let Some(h) = l.strip_suffix(suffix) {
                    return match h.parse::<i32>() {
                        Ok(12) => Ok(add),
                        Ok(n) if (1..=11).contains(&n) => Ok(n + add),
                        _ => Err(format!("`{v}` is not an hour")),
                    };
                }
            }
            num(0, 23)
        }
        Scale::Minute | Scale::Second => num(0, 59),
    }
}

impl Period {
    pub fn always() -> Period {
        Period {
            subs: Vec::new(),
            never: false,
            text: String::new(),
        }
    }

    pub fn parse(text: &str) -> Result<Period, String> {
        let t = text.trim();
        let mut p = Period {
            subs: Vec::new(),
            never: t.eq_ignore_ascii_case("none"),
            text: t.to_string(),
        };
        if t.is_empty() || p.never {
            return Ok(p);
        }
        for sub in t.split(',') {
            let mut parts = Vec::new();
            let mut rest = sub.trim();
            if rest.is_empty() {
                return Err(format!("period `{t}`: an empty sub-period"));
            }
            while !rest.is_empty() {
                let open = rest
                    .find('{')
                    .ok_or_else(|| format!("period `{t}`: `{rest}` lacks `{{`"))?;
                let close = rest
                    .find('}')
                    .ok_or_else(|| format!("period `{t}`: a `{{` is not closed"))?;
                if close < open {
                    return Err(format!("period `{t}`: `}}` before `{{`"));
                }
                let scale = match rest[..open].trim().to_ascii_lowercase().as_str() {
                    "yr" | "year" => Scale::Year,
                    "mo" | "month" => Scale::Month,
                    "yd" | "yday" => Scale::YearDay,
                    "md" | "mday" => Scale::MonthDay,
                    "wd" | "wday" => Scale::WeekDay,
                    "hr" | "hour" => Scale::Hour,
                    "min" | "minute" => Scale::Minute,
                    "sec" | "second" => Scale::Second,
                    s => {
                        return Err(format!(
                            "period `{t}`: `{s}` is not a scale (yr mo yd md wd hr min sec)"
                        ))
                    }
                };
                let mut ranges = Vec::new();
                for r in rest[open + 1..close].split_whitespace() {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    let lo = value(scale, a).map_err(|e| format!("period `{t}`: {e}"))?;
                    let hi = value(scale, b).map_err(|e| format!("period `{t}`: {e}"))?;
                    ranges.push((lo, hi));
                }
                if ranges.is_empty() {
                    return Err(format!("period `{t}`: an empty range list"));
                }
                parts.push((scale, ranges));
                rest = rest[close + 1..].trim_start();
            }
            p.subs.push(Sub { parts });
        }
        Ok(p)
    }

    /// Whether the local time `tm` is in the period.
    pub fn contains(&self, tm: &Tm) -> bool {
        if self.never {
            return false;
        }
        if self.subs.is_empty() {
            return true;
        }
        self.subs.iter().any(|s| {
            s.parts.iter().all(|(scale, ranges)| {
                let v = tm.get(*scale);
                ranges.iter().any(|&(lo, hi)| {
                    if lo <= hi {
                        lo <= v && v <= hi
                    } else {
                        v >= lo || v <= hi
                    }
                })
            })
        })
    }

    pub fn contains_unix(&self, unix: i64) -> bool {
        self.contains(&Tm::local(unix))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(wday: i32, hour: i32) -> Tm {
        Tm {
            year: 2026,
            month: 11,
            yday: 325,
            mday: 21,
            wday,
            hour,
            min: 30,
            sec: 0,
        }
    }

    #[test]
    fn mon_examples() {
        let p = Period::parse("wd {Mon-Fri} hr {7am-10pm}").unwrap();
        assert!(p.contains(&tm(2, 7)) && p.contains(&tm(6, 22)));
        assert!(!p.contains(&tm(1, 12)) && !p.contains(&tm(3, 23)) && !p.contains(&tm(3, 6)));
        let w = Period::parse("wd {Sat-Sun}").unwrap();
        assert!(w.contains(&tm(7, 3)) && w.contains(&tm(1, 3)) && !w.contains(&tm(4, 3)));
        let night = Period::parse("hr {10pm-6am}, wd {sa su}").unwrap();
        assert!(night.contains(&tm(3, 23)) && night.contains(&tm(3, 5)) && night.contains(&tm(7, 12)));
        assert!(!night.contains(&tm(3, 12)));
        assert!(Period::parse("").unwrap().contains(&tm(1, 1)));
        assert!(!Period::parse("none").unwrap().contains(&tm(1, 1)));
        assert!(Period::parse("hr {12am-11am}").unwrap().contains(&tm(1, 0)));
        assert!(Period::parse("hr {12noon}").unwrap().contains(&tm(1, 12)));
    }

    #[test]
    fn bad_periods() {
        for b in [
            "wd Mon-Fri",
            "xx {1}",
            "hr {25}",
            "wd {Mon-Fri",
            "hr {13pm}",
            "wd {}",
            ",",
            "md {0}",
        ] {
            assert!(Period::parse(b).is_err(), "{b}");
        }
    }
}
