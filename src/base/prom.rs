//! Prometheus' text exposition format (version 0.0.4), written once for every tool's
//! `--prometheus`: families with HELP and TYPE, each family's samples together (in
//! the order families were first used, whatever order samples come in), label values
//! escaped, names checked, a counter's name ending `_total`, no series twice.
//!
//! No endpoint of our own: node_exporter's textfile collector serves what
//! `--prometheus-out FILE` writes (atomically: it may read the directory at any
//! moment), so the tools stay one-shot commands without a listening socket.

use crate::base::exit::{ExitStatus, HasExitStatus};
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A name, a label or a series the format does not allow (a defect of the caller,
    /// reported rather than written: a scraper would drop the whole file).
    Format(String),
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format(m) => write!(f, "prometheus output: {m}"),
            Error::Io(m) => f.write_str(m),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// A sample's value: counters and counts are written as the integers they are (through
/// an f64 one above 2^53 would be rounded, a large one printed as 1e21); measurements
/// are floats. Prometheus stores every sample as an f64 anyway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Value {
        Value::Int(v.into())
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as u64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" }),
            // Rust's shortest round-trip form, never an exponent Go could not read.
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    lines: String,
    series: HashSet<Vec<(String, String)>>,
}

/// One exposition being built.
#[derive(Default)]
pub struct Exposition {
    families: Vec<Family>,
    index: HashMap<String, usize>,
    errors: Vec<String>,
}

/// No `:`: the format allows it, but colons are for recording rules' names.
fn metric_name_ok(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn label_name_ok(n: &str) -> bool {
    let mut c = n.chars();
    !n.starts_with("__")
        && c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A label value between its quotes: `\`, `"` and newline escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text: `\` and newline escaped (quotes are not, there).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: impl Into<Value>) {
        self.sample(Kind::Gauge, name, help, labels, v.into());
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: impl Into<Value>) {
        self.sample(Kind::Counter, name, help, labels, v.into());
    }

    /// A state set: one series per state, 1 for the one `current` names, 0 for the
    /// others (so that a change shows as a change of value, not a series that vanishes).
    pub fn states(&mut self, name: &str, help: &str, labels: &[(&str, &str)], all: &[&str], current: &str) {
        for s in all {
            let mut l = labels.to_vec();
            l.push(("state", s));
            self.gauge(name, help, &l, *s == current);
        }
    }

    fn sample(&mut self, kind: Kind, name: &str, help: &str, labels: &[(&str, &str)], v: Value) {
        let i = match self.index.get(name) {
            Some(&i) => {
                let f = &self.families[i];
                if f.kind != kind || f.help != help {
                    self.errors
                        .push(format!("{name} used as two families (another TYPE or HELP)"));
                    return;
                }
                i
            }
            None => {
                if !metric_name_ok(name) {
                    self.errors.push(format!("{name:?} is not a metric name"));
                    return;
                }
                if (kind == Kind::Counter) != name.ends_with("_total") {
                    self.errors
                        .push(format!("{name}: a counter's name ends in _total, and only a counter's"));
                    return;
                }
                if help.is_empty() {
                    self.errors.push(format!("{name} has no HELP"));
                    return;
                }
                self.families.push(Family {
                    name: name.into(),
                    help: help.into(),
                    kind,
                    lines: String::new(),
                    series: HashSet::new(),
                });
                self.index.insert(name.into(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let mut key: Vec<(String, String)> = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            if !label_name_ok(k) {
                self.errors.push(format!("{name}: {k:?} is not a label name"));
                return;
            }
            if key.iter().any(|(x, _)| x == k) {
                self.errors.push(format!("{name}: label {k} twice"));
                return;
            }
            key.push((k.to_string(), v.to_string()));
        }
        key.sort();
        let f = &mut self.families[i];
        if !f.series.insert(key) {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            self.errors.push(format!("{name}{{{}}} twice", l.join(",")));
            return;
        }
        f.lines.push_str(name);
        if !labels.is_empty() {
            f.lines.push('{');
            for (n, (k, val)) in labels.iter().enumerate() {
                if n > 0 {
                    f.lines.push(',');
                }
                let _ = write!(f.lines, "{k}=\"{}\"", escape_label(val));
            }
            f.lines.push('}');
        }
        let _ = writeln!(f.lines, " {v}");
    }

    /// The text, or the first thing that would make it invalid.
    pub fn render(&self) -> Result<String, Error> {
        if let Some(e) = self.errors.first() {
            return Err(Error::Format(e.clone()));
        }
        let mut s = String::new();
        for f in &self.families {
            let _ = writeln!(s, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(s, "# TYPE {} {}", f.name, f.kind.word());
            s.push_str(&f.lines);
        }
        Ok(s)
    }
}

/// `--prometheus-out`'s check: node_exporter's textfile collector reads only `*.prom`
/// files, so another name would never be collected.
pub fn out_path(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match p.file_name().and_then(|n| n.to_str()) {
        Some(n) if n.len() > ".prom".len() && n.ends_with(".prom") => Ok(p),
        _ => Err("the textfile collector reads only files named *.prom".into()),
    }
}

/// Print the exposition, or replace `out` with it atomically (a temporary beside it,
/// renamed: the collector never reads half a file, and the temporary's `.tmp` name is
/// not one it reads). Mode 0644: the collector runs as its own user.
pub fn publish(e: &Exposition, out: Option<&Path>) -> Result<(), Error> {
    let text = e.render()?;
    match out {
        Some(p) => crate::base::fsio::write_atomic(p, text.as_bytes(), 0o644, crate::base::fsio::Durability::Atomic)
            .map_err(Error::Io),
        None => crate::base::signals::write_answer(&mut std::io::stdout().lock(), text.as_bytes()).map_err(Error::Io),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_come_together_with_help_and_type() {
        let mut e = Exposition::new();
        e.gauge("hakit_a", "A.", &[("node", "n1")], 1u64);
        e.counter("hakit_b_total", "B.", &[("node", "n1")], 7u64);
        e.gauge("hakit_a", "A.", &[("node", "n2")], 0.25);
        e.gauge("hakit_c", "C.", &[], f64::INFINITY);
        assert_eq!(
            e.render().unwrap(),
            "# HELP hakit_a A.\n# TYPE hakit_a gauge\nhakit_a{node=\"n1\"} 1\nhakit_a{node=\"n2\"} 0.25\n\
             # HELP hakit_b_total B.\n# TYPE hakit_b_total counter\nhakit_b_total{node=\"n1\"} 7\n\
             # HELP hakit_c C.\n# TYPE hakit_c gauge\nhakit_c +Inf\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::new();
        e.gauge("hakit_x", "back\\slash\nnew \"quoted\"", &[("v", "a\\b\"c\nd")], 1u64);
        let t = e.render().unwrap();
        assert!(t.starts_with("# HELP hakit_x back\\\\slash\\nnew \"quoted\"\n"), "{t}");
        assert!(t.contains("hakit_x{v=\"a\\\\b\\\"c\\nd\"} 1\n"), "{t}");
        assert_eq!(escape_label("ünï"), "ünï");
    }

    #[test]
    fn values_are_what_the_parser_reads() {
        for (v, s) in [
            (Value::from(u64::MAX), "18446744073709551615"),
            (Value::from(true), "1"),
            (Value::from(f64::NAN), "NaN"),
            (Value::from(f64::NEG_INFINITY), "-Inf"),
            (Value::from(1e21), "1000000000000000000000"),
            (Value::from(0.1), "0.1"),
        ] {
            assert_eq!(v.to_string(), s);
        }
    }

    #[test]
    fn what_the_format_forbids_is_refused() {
        type Misuse = Box<dyn Fn(&mut Exposition)>;
        let bad: Vec<(&str, Misuse)> = vec![
            ("not a metric name", Box::new(|e| e.gauge("2hakit", "h", &[], 1u64))),
            ("not a metric name", Box::new(|e| e.gauge("hakit-x", "h", &[], 1u64))),
            ("not a metric name", Box::new(|e| e.gauge("hakit:x", "h", &[], 1u64))),
            ("ends in _total", Box::new(|e| e.counter("hakit_lost", "h", &[], 1u64))),
            (
                "ends in _total",
                Box::new(|e| e.gauge("hakit_lost_total", "h", &[], 1u64)),
            ),
            ("no HELP", Box::new(|e| e.gauge("hakit_x", "", &[], 1u64))),
            (
                "not a label name",
                Box::new(|e| e.gauge("hakit_x", "h", &[("__x", "")], 1u64)),
            ),
            (
                "not a label name",
                Box::new(|e| e.gauge("hakit_x", "h", &[("a:b", "")], 1u64)),
            ),
            (
                "twice",
                Box::new(|e| e.gauge("hakit_x", "h", &[("a", "1"), ("a", "2")], 1u64)),
            ),
            (
                "twice",
                Box::new(|e| {
                    e.gauge("hakit_x", "h", &[("a", "1"), ("b", "2")], 1u64);
                    e.gauge("hakit_x", "h", &[("b", "2"), ("a", "1")], 2u64);
                }),
            ),
            (
                "two families",
                Box::new(|e| {
                    e.gauge("hakit_x", "h", &[], 1u64);
                    e.gauge("hakit_x", "other help", &[("a", "1")], 1u64);
                }),
            ),
        ];
        for (want, f) in bad {
            let mut e = Exposition::new();
            f(&mut e);
            let err = e.render().unwrap_err().to_string();
            assert!(err.contains(want), "{err} (wanted {want})");
        }
    }

    #[test]
    fn a_state_set_has_every_state() {
        let mut e = Exposition::new();
        e.states("hakit_s", "S.", &[("node", "n1")], &["up", "dead"], "dead");
        let t = e.render().unwrap();
        assert!(
            t.ends_with("hakit_s{node=\"n1\",state=\"up\"} 0\nhakit_s{node=\"n1\",state=\"dead\"} 1\n"),
            "{t}"
        );
    }

    #[test]
    fn only_prom_files_are_collected() {
        assert!(out_path("/var/lib/prometheus/node-exporter/hakit.prom").is_ok());
        assert!(out_path("hakit.txt").is_err());
        assert!(out_path(".prom").is_err());
        assert!(out_path("dir/").is_err());
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.prom");
        let mut e = Exposition::new();
        e.gauge("hakit_x", "X.", &[], 1u64);
        publish(&e, Some(&p)).unwrap();
        publish(&e, Some(&p)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), e.render().unwrap());
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|x| x.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("m.prom")], "no temporary left");
        // A symlink in its place is replaced, not written through.
        let target = d.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&target, &p).unwrap();
        publish(&e, Some(&p)).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    }
}
