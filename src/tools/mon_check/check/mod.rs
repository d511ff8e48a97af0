//! Service checks: what they find (an [`Outcome`] with a [`Status`] and performance
//! data) and how it is written for the monitoring-plugin conventions. Each check lives
//! in a module of its own and is bounded by a deadline; none of them can fail in a way
//! that escapes as anything but an outcome.

pub mod dns;
pub mod exec;
pub mod http;
pub mod icmp;
pub mod many;
pub mod net;
pub mod range;
pub mod report;
pub mod smtp;
pub mod spec;
pub mod tcp;
pub mod tls;
pub mod x509;

use range::Range;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// The monitoring-plugin states, with their exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    pub fn code(self) -> i32 {
        self as i32
    }
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
    /// A program's exit code read as a plugin's: 0..3 as such, anything else
    /// (a signal, a crash) is CRITICAL.
    pub fn from_code(code: Option<i32>) -> Status {
        match code {
            Some(0) => Status::Ok,
            Some(1) => Status::Warning,
            Some(2) => Status::Critical,
            Some(3) => Status::Unknown,
            _ => Status::Critical,
        }
    }
    /// The worse of two: CRITICAL over UNKNOWN over WARNING over OK, as Nagios ranks them.
    pub fn worst(self, other: Status) -> Status {
        fn rank(s: Status) -> u8 {
            match s {
                Status::Ok => 0,
                Status::Warning => 1,
                Status::Unknown => 2,
                Status::Critical => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Status> for std::process::ExitCode {
    fn from(s: Status) -> Self {
        std::process::ExitCode::from(s as u8)
    }
}

/// One performance datum: `'label'=value[UOM];[warn];[crit];[min];[max]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Perf {
    pub label: String,
    pub value: f64,
    pub uom: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Perf {
    pub fn new(label: &str, value: f64, uom: &'static str) -> Perf {
        Perf {
            label: label.into(),
            value,
            uom,
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }
    pub fn thresholds(mut self, t: &Thresholds) -> Perf {
        self.warn = t.warn.as_ref().map(|r| r.to_string());
        self.crit = t.crit.as_ref().map(|r| r.to_string());
        self
    }
    pub fn bounds(mut self, min: Option<f64>, max: Option<f64>) -> Perf {
        self.min = min;
        self.max = max;
        self
    }
}

impl fmt::Display for Perf {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let label = if self.label.contains([' ', '=', '\'']) {
            format!("'{}'", self.label.replace('\'', "''"))
        } else {
            self.label.clone()
        };
        let num = |v: f64| {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v:.6}")
            }
        };
        write!(
            f,
            "{label}={}{};{};{};{};{}",
            num(self.value),
            self.uom,
            self.warn.as_deref().unwrap_or(""),
            self.crit.as_deref().unwrap_or(""),
            self.min.map(num).unwrap_or_default(),
            self.max.map(num).unwrap_or_default()
        )
    }
}

/// A warning and a critical range; CRITICAL wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub warn: Option<Range>,
    pub crit: Option<Range>,
}

impl Thresholds {
    pub fn status(&self, v: f64) -> Status {
        if self.crit.as_ref().is_some_and(|r| r.alerts(v)) {
            Status::Critical
        } else if self.warn.as_ref().is_some_and(|r| r.alerts(v)) {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub status: Status,
    /// The text after the status: `0.001 second response time on HOST port 80`.
    pub text: String,
    pub perf: Vec<Perf>,
    /// Extra lines for `-v` and for a monitor's detail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    /// Wall time the check took.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// A plugin run by `exec` writes its own line; it is passed on unchanged.
    #[serde(skip)]
    pub verbatim: Option<String>,
    /// The check ran out of time (its status is then what `--timeout-state` says).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Outcome {
    pub fn new(status: Status, text: impl Into<String>) -> Outcome {
        Outcome {
            status,
            text: text.into(),
            perf: Vec::new(),
            detail: Vec::new(),
            elapsed: Duration::ZERO,
            verbatim: None,
            timed_out: false,
        }
    }
    pub fn with_perf(mut self, p: Perf) -> Outcome {
        self.perf.push(p);
        self
    }

    /// The plugin line: `TCP OK - text|perf perf`.
    pub fn plugin_line(&self, label: &str, sep: &str) -> String {
        if let Some(v) = &self.verbatim {
            return v.lines().next().unwrap_or("").to_string();
        }
        let mut s = format!("{label} {}{sep}{}", self.status, self.text);
        if !self.perf.is_empty() {
            s.push('|');
            let perf: Vec<String> = self.perf.iter().map(|p| p.to_string()).collect();
            s.push_str(&perf.join(" "));
        }
        s
    }
}

/// A timeout message as the plugins word it; a timeout is CRITICAL.
pub fn timed_out(timeout: Duration) -> Outcome {
    let mut o = Outcome::new(
        Status::Critical,
        format!("Socket timeout after {} seconds", fmt_secs(timeout)),
    );
    o.timed_out = true;
    o
}

/// Seconds as the plugins print them: `10`, or `0.5`.
pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}
