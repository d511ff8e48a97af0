//! The `mon-check` section of hakit.yaml: mon's host groups, watches, services,
//! periods and alerts, checked in one place. Every value is checked as it is read, so
//! an error names the file, line and column; references between entries (a watch's
//! group, a dependency, a program) are checked after, and point at the name.

use super::depend::Expr;
use super::period::Period;
use crate::config::{Error, Source};
use crate::tools::mon_check::check::spec::{Check, BUILT_IN};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/hakit/mon";
pub const DEFAULT_SOCKET: &str = "/run/hakit/mon.sock";
pub const DEFAULT_MONDIR: &[&str] = &["/usr/lib/mon/mon.d", "/usr/local/lib/mon/mon.d"];
pub const DEFAULT_ALERTDIR: &[&str] = &["/usr/lib/mon/alert.d", "/usr/local/lib/mon/alert.d"];

/// Only the section this tool reads; the others are left to their tools.
#[derive(Debug, Default, Deserialize)]
struct FileView {
    #[serde(default, rename = "mon-check")]
    mon_check: Option<Section>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Section {
    pub state_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    /// A group whose members may use `mon-check ctl` (the socket is 0660 to it).
    pub socket_group: Option<String>,
    #[serde(default)]
    pub mondir: Vec<PathBuf>,
    #[serde(default)]
    pub alertdir: Vec<PathBuf>,
    pub max_parallel: Option<usize>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub alert_timeout: Option<Duration>,
    #[serde(default)]
    pub hostgroups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub watches: BTreeMap<String, BTreeMap<String, ServiceEntry>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DepBehavior {
    /// Dependencies failing suppress the alerts (mon's default).
    #[serde(rename = "a")]
    Alerts,
    /// Dependencies failing suppress the monitor itself.
    #[serde(rename = "m")]
    Monitor,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceEntry {
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub failure_interval: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub randskew: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    #[serde(deserialize_with = "monitor")]
    pub monitor: MonitorText,
    #[serde(default)]
    pub exclude_hosts: Vec<String>,
    #[serde(default, deserialize_with = "period_opt")]
    pub exclude_period: Option<Period>,
    #[serde(default, deserialize_with = "depend_opt")]
    pub depend: Option<Expr>,
    pub dep_behavior: Option<DepBehavior>,
    #[serde(default)]
    pub periods: Vec<PeriodEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PeriodEntry {
    #[serde(default, deserialize_with = "period_opt")]
    pub when: Option<Period>,
    #[serde(default, deserialize_with = "commands")]
    pub alert: Vec<Vec<String>>,
    #[serde(default, deserialize_with = "commands")]
    pub upalert: Vec<Vec<String>>,
    #[serde(default, deserialize_with = "commands")]
    pub startupalert: Vec<Vec<String>>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub alertevery: Option<Duration>,
    #[serde(default, deserialize_with = "alertafter_opt")]
    pub alertafter: Option<AlertAfter>,
    pub numalerts: Option<u32>,
    #[serde(default)]
    pub no_comp_alerts: bool,
}

/// mon's `alertafter`: `N` failures in a row, `N T` failures within T, or `T` of
/// failing without a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAfter {
    Count(u32),
    CountWithin(u32, Duration),
    For(Duration),
}

impl AlertAfter {
    pub fn parse(s: &str) -> Result<AlertAfter, String> {
        let w: Vec<&str> = s.split_whitespace().collect();
        let bad = || format!("alertafter `{s}`: write N, `N T` or T (e.g. 3, `2 30m`, 10m)");
        match w.as_slice() {
            [n] if n.bytes().all(|b| b.is_ascii_digit()) => Ok(AlertAfter::Count(n.parse().map_err(|_| bad())?)),
            [t] => Ok(AlertAfter::For(crate::base::duration::parse(t).map_err(|_| bad())?)),
            [n, t] => Ok(AlertAfter::CountWithin(
                n.parse().map_err(|_| bad())?,
                crate::base::duration::parse(t).map_err(|_| bad())?,
            )),
            _ => Err(bad()),
        }
    }
}

/// A monitor as written, checked for its shape; what it names is checked later.
#[derive(Debug, Clone)]
pub struct MonitorText {
    pub words: Vec<String>,
    /// mon's trailing `;;`: do not append the hosts.
    pub no_hosts: bool,
    pub built_in: Option<Arc<Check>>,
}

fn monitor<'de, D: Deserializer<'de>>(d: D) -> Result<MonitorText, D::Error> {
    let s = String::deserialize(d)?;
    parse_monitor(&s).map_err(de::Error::custom)
}

pub fn parse_monitor(s: &str) -> Result<MonitorText, String> {
    let mut text = s.trim();
    let no_hosts = text.ends_with(";;");
    if no_hosts {
        text = text[..text.len() - 2].trim_end();
    }
    let words = split_words(text)?;
    let first = words.first().ok_or("an empty monitor")?;
    let built_in = if BUILT_IN.contains(&first.as_str()) {
        if no_hosts {
            return Err(format!(
                "monitor `{s}`: `;;` is for programs; a built-in check takes the hosts"
            ));
        }
        Some(Arc::new(Check::from_words(&words)?))
    } else {
        None
    };
    Ok(MonitorText {
        words,
        no_hosts,
        built_in,
    })
}

fn period_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Period>, D::Error> {
    let s = String::deserialize(d)?;
    Period::parse(&s).map(Some).map_err(de::Error::custom)
}

fn depend_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Expr>, D::Error> {
    let s = String::deserialize(d)?;
    Expr::parse(&s).map(Some).map_err(de::Error::custom)
}

fn alertafter_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AlertAfter>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        N(u32),
        S(String),
    }
    match V::deserialize(d)? {
        V::N(n) => Ok(Some(AlertAfter::Count(n))),
        V::S(s) => AlertAfter::parse(&s).map(Some).map_err(de::Error::custom),
    }
}

fn commands<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        One(String),
        Many(Vec<String>),
    }
    let list = match V::deserialize(d)? {
        V::One(s) => vec![s],
        V::Many(v) => v,
    };
    list.iter()
        .map(|c| {
            let w = split_words(c).map_err(de::Error::custom)?;
            if w.is_empty() {
                return Err(de::Error::custom("an empty alert command"));
            }
            Ok(w)
        })
        .collect()
}

/// Words as a shell splits them, with '...' and "..." quoting and no expansion.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.extend(chars.next()),
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("`{s}`: a quote is not closed"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// How a service's monitor runs.
#[derive(Debug, Clone)]
pub enum Monitor {
    /// A built-in check, run on every host at once.
    BuiltIn(Arc<Check>),
    /// A program: mon's monitors get the hosts appended (unless `;;`); with `{host}`
    /// in its arguments it runs once per host, as a plugin would.
    Program {
        argv: Vec<String>,
        append_hosts: bool,
        per_host: bool,
    },
}

#[derive(Debug, Clone)]
pub struct PeriodCfg {
    pub when: Period,
    pub alert: Vec<Vec<String>>,
    pub upalert: Vec<Vec<String>>,
    pub startupalert: Vec<Vec<String>>,
    pub alertevery: Option<Duration>,
    pub alertafter: Option<AlertAfter>,
    pub numalerts: Option<u32>,
    pub no_comp_alerts: bool,
}

#[derive(Debug, Clone)]
pub struct Service {
    /// `group/service`, the key of its state.
    pub key: String,
    pub group: String,
    pub name: String,
    pub description: String,
    pub interval: Duration,
    pub failure_interval: Option<Duration>,
    pub randskew: Duration,
    pub timeout: Duration,
    pub monitor: Monitor,
    pub monitor_text: String,
    pub exclude_hosts: Vec<String>,
    pub exclude_period: Option<Period>,
    pub depend: Option<Expr>,
    pub dep_behavior: DepBehavior,
    pub periods: Vec<PeriodCfg>,
}

pub fn key(group: &str, service: &str) -> String {
    format!("{group}/{service}")
}

/// The scheduler's whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub socket_group: Option<u32>,
    pub max_parallel: usize,
    pub alert_timeout: Duration,
    pub alertdir: Vec<PathBuf>,
    pub hostgroups: BTreeMap<String, Vec<String>>,
    pub services: Vec<Service>,
}

impl Config {
    pub fn service(&self, group: &str, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.group == group && s.name == name)
    }
    /// Every host named in a group.
    pub fn has_host(&self, h: &str) -> bool {
        self.hostgroups.values().any(|g| g.iter().any(|x| x == h))
    }
}

/// Find `prog` (a bare name) in `dirs`, or take it as it is when it has a slash.
pub fn find_program(prog: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    dirs.iter().map(|d| d.join(prog)).find(|p| p.is_file())
}

/// An error at the first `needle` in the `mon-check` section.
fn err_at(src: &Source, needle: &str, msg: String) -> Error {
    Error {
        file: Some(src.path.clone()),
        pos: src.position_in("mon-check", |line| line.find(needle)),
        msg,
    }
}

/// Read and check the configuration; `state_dir` and `socket` given on the command
/// line win.
pub fn load(path: &Path, state_dir: &Option<PathBuf>, socket: &Option<PathBuf>) -> Result<Config, Error> {
    from_source(&Source::read(path)?, state_dir, socket)
}

/// Check the configuration in a file's text (what [`load`] does once it has read it).
pub fn from_source(src: &Source, state_dir: &Option<PathBuf>, socket: &Option<PathBuf>) -> Result<Config, Error> {
    let view: FileView = src.yaml()?;
    let sec = view.mon_check.ok_or_else(|| Error {
        file: Some(src.path.clone()),
        pos: None,
        msg: "no `mon-check` section".into(),
    })?;
    resolve(sec, src, state_dir, socket)
}

fn resolve(sec: Section, src: &Source, state_dir: &Option<PathBuf>, socket: &Option<PathBuf>) -> Result<Config, Error> {
    let dirs = |given: &Vec<PathBuf>, default: &[&str]| -> Vec<PathBuf> {
        if given.is_empty() {
            default.iter().map(PathBuf::from).collect()
        } else {
            given.clone()
        }
    };
    let mondir = dirs(&sec.mondir, DEFAULT_MONDIR);
    let alertdir = dirs(&sec.alertdir, DEFAULT_ALERTDIR);
    let socket_group = match &sec.socket_group {
        None => None,
        Some(g) => Some(
            nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| err_at(src, "socket-group", format!("no such group `{g}`")))?
                .gid
                .as_raw(),
        ),
    };
    for (g, hosts) in &sec.hostgroups {
        if hosts.is_empty() {
            return Err(err_at(src, &format!("{g}:"), format!("host group `{g}` has no hosts")));
        }
        // Twice would be two checks of one host, and two identical series in metrics.
        if let Some(h) = hosts
            .iter()
            .enumerate()
            .find_map(|(i, h)| hosts[..i].contains(h).then_some(h))
        {
            return Err(err_at(
                src,
                &format!("{g}:"),
                format!("host group `{g}`: host `{h}` is listed twice"),
            ));
        }
    }
    let mut services = Vec::new();
    for (group, svcs) in sec.watches {
        if !sec.hostgroups.contains_key(&group) {
            return Err(err_at(
                src,
                &format!("{group}:"),
                format!("watch `{group}`: no host group of that name"),
            ));
        }
        for (name, e) in svcs {
            let at = format!("{name}:");
            let interval = e.interval.unwrap_or(Duration::from_secs(60));
            if interval.is_zero() {
                return Err(err_at(
                    src,
                    &at,
                    format!("service {group}/{name}: the interval is zero"),
                ));
            }
            let monitor = match &e.monitor.built_in {
                Some(c) => Monitor::BuiltIn(c.clone()),
                None => {
                    let prog = &e.monitor.words[0];
                    let path = find_program(prog, &mondir).ok_or_else(|| {
                        err_at(
                            src,
                            prog,
                            format!(
                                "monitor `{prog}` is neither a built-in check ({}) nor a program in {}",
                                BUILT_IN.join(", "),
                                mondir
                                    .iter()
                                    .map(|d| d.display().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?;
                    let mut argv = e.monitor.words.clone();
                    argv[0] = path.display().to_string();
                    let per_host = argv.iter().any(|a| a.contains("{host}"));
                    Monitor::Program {
                        argv,
                        append_hosts: !e.monitor.no_hosts && !per_host,
                        per_host,
                    }
                }
            };
            let periods = e
                .periods
                .into_iter()
                .map(|p| PeriodCfg {
                    when: p.when.unwrap_or_else(Period::always),
                    alert: p.alert,
                    upalert: p.upalert,
                    startupalert: p.startupalert,
                    alertevery: p.alertevery,
                    alertafter: p.alertafter,
                    numalerts: p.numalerts,
                    no_comp_alerts: p.no_comp_alerts,
                })
                .collect::<Vec<_>>();
            for p in &periods {
                for cmd in p.alert.iter().chain(&p.upalert).chain(&p.startupalert) {
                    if find_program(&cmd[0], &alertdir).is_none() {
                        // Not fatal: mon runs the other alerts; so do we, and say so.
                        crate::base::log::warn(&format!(
                            "{}: service {group}/{name}: alert `{}` is not in {}; it will fail when run",
                            src.path.display(),
                            cmd[0],
                            alertdir
                                .iter()
                                .map(|d| d.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
            }
            services.push(Service {
                description: e.description.unwrap_or_default(),
                interval,
                failure_interval: e.failure_interval,
                randskew: e.randskew.unwrap_or_default(),
                timeout: e.timeout.unwrap_or(Duration::from_secs(30)),
                monitor,
                monitor_text: e.monitor.words.join(" "),
                exclude_hosts: e.exclude_hosts,
                exclude_period: e.exclude_period,
                depend: e.depend,
                dep_behavior: e.dep_behavior.unwrap_or(DepBehavior::Alerts),
                periods,
                key: key(&group, &name),
                group: group.clone(),
                name,
            });
        }
    }
    for s in &services {
        if let Some(d) = &s.depend {
            for (g, n) in d.terms() {
                if !services.iter().any(|x| x.group == g && x.name == n) {
                    return Err(err_at(
                        src,
                        &format!("{g}:{n}"),
                        format!("service {}: depends on {g}:{n}, which is not a service", s.key),
                    ));
                }
            }
        }
    }
    Ok(Config {
        path: src.path.clone(),
        state_dir: state_dir
            .clone()
            .or(sec.state_dir)
            .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        socket: socket.clone().or(sec.socket).unwrap_or_else(|| DEFAULT_SOCKET.into()),
        socket_group,
        max_parallel: sec.max_parallel.unwrap_or(4096).max(1),
        alert_timeout: sec.alert_timeout.unwrap_or(Duration::from_secs(60)),
        alertdir,
        hostgroups: sec.hostgroups,
        services,
    })
}

/// The socket named by a configuration file, for `mon-check ctl`.
pub fn socket_of(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    #[derive(Deserialize)]
    struct V {
        #[serde(rename = "mon-check")]
        mon_check: Option<S>,
    }
    #[derive(Deserialize)]
    struct S {
        socket: Option<PathBuf>,
    }
    serde_yaml::from_str::<V>(&text).ok()?.mon_check?.socket
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(t: &str) -> Result<Config, Error> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hakit.yaml");
        std::fs::write(&p, t).unwrap();
        load(&p, &None, &None)
    }

    #[test]
    fn errors_point_inside_the_section() {
        // `mon-check:` and `db:` in comments above the section are not what is meant.
        let e = load_text(
            "# mon-check: checks\n# db: the database\nmon-check:\n  hostgroups:\n    web: [a]\n  watches:\n    db:\n      x:\n        monitor: tcp -p 1\n",
        )
        .unwrap_err();
        assert_eq!(e.pos, Some((7, 5)), "{e}");
    }

    #[test]
    fn a_whole_section() {
        let c = load_text(
            "mon-check:\n  hostgroups:\n    web: [w1, w2]\n    routers: [r1]\n  watches:\n    routers:\n      ping:\n        monitor: icmp -n 2\n    web:\n      http:\n        interval: 30s\n        monitor: http -u /health -t 5\n        depend: routers:ping\n        periods:\n          - when: wd {Mon-Fri} hr {7am-10pm}\n            alert: mail.alert ops@example.org\n            alertevery: 1h\n            alertafter: 2 30m\n",
        )
        .unwrap();
        assert_eq!(c.services.len(), 2);
        let http = c.service("web", "http").unwrap();
        assert_eq!(http.interval, Duration::from_secs(30));
        assert_eq!(
            http.periods[0].alertafter,
            Some(AlertAfter::CountWithin(2, Duration::from_secs(1800)))
        );
        assert_eq!(http.periods[0].alert[0], vec!["mail.alert", "ops@example.org"]);
        assert!(matches!(http.monitor, Monitor::BuiltIn(_)));
    }

    #[test]
    fn errors_point_into_the_file() {
        let e = load_text("mon-check:\n  hostgroups:\n    web: [w1]\n  watches:\n    web:\n      http:\n        monitor: http --bogus\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.0), Some(7), "{e}");
        assert!(e.to_string().contains("--bogus"), "{e}");
        let e = load_text(
            "mon-check:\n  hostgroups:\n    web: [w1]\n  watches:\n    db:\n      x:\n        monitor: tcp -p 1\n",
        )
        .unwrap_err();
        assert_eq!(e.pos, Some((5, 5)), "{e}");
        let e = load_text("mon-check:\n  hostgroups:\n    web: [w1]\n  watches:\n    web:\n      x:\n        monitor: tcp -p 1\n        depend: web:y\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.0), Some(8), "{e}");
        let e = load_text("mon-check:\n  hostgroups:\n    web: [w1]\n  watches:\n    web:\n      x:\n        monitor: tcp -p 1\n        periods:\n          - when: wd {Funday}\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.0), Some(9), "{e}");
        let e = load_text("mon-check:\n  hostgroups:\n    web: [w1]\n  watches:\n    web:\n      x:\n        monitor: nosuch.monitor\n").unwrap_err();
        assert_eq!(e.pos, Some((7, 18)), "{e}");
        let e = load_text("mon-check:\n  hostgroups:\n    db: [d1]\n    web: [w1, w2, w1]\n  watches:\n    web:\n      x:\n        monitor: tcp -p 1\n").unwrap_err();
        assert_eq!(e.pos, Some((4, 5)), "{e}");
        assert!(
            e.to_string().contains("host group `web`: host `w1` is listed twice"),
            "{e}"
        );
        let e = load_text("mon-check:\n  hostgroup: {}\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.0), Some(2), "{e}");
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words("a 'b c' \"d\\\"e\" f\\ g").unwrap(),
            vec!["a", "b c", "d\"e", "f g"]
        );
        assert!(split_words("'open").is_err());
    }
}
