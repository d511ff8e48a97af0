//! `mon-check import`: read a mon.cf and write the equivalent `mon-check` section.
//! Monitors and alerts stay mon's own programs (found in mon's mondir and alertdir),
//! so a site moves over without rewriting a script; what hakit does not do (traps,
//! mon's network server settings) is kept as a comment and reported.

use super::config::split_words;
use crate::tools::mon_check::check::Status;
use crate::tools::mon_check::cli::ImportArgs;
use std::fmt::Write as _;

#[derive(Debug, Default)]
struct PeriodIn {
    label: Option<String>,
    when: String,
    lines: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct ServiceIn {
    name: String,
    keys: Vec<(String, String)>,
    periods: Vec<PeriodIn>,
    unsupported: Vec<String>,
}

#[derive(Debug, Default)]
struct WatchIn {
    group: String,
    services: Vec<ServiceIn>,
}

#[derive(Debug, Default)]
pub struct MonCf {
    globals: Vec<(String, String)>,
    hostgroups: Vec<(String, Vec<String>)>,
    watches: Vec<WatchIn>,
    /// Things not carried over, with their line numbers.
    pub notes: Vec<String>,
}

const SERVICE_KEYS: &[&str] = &[
    "description",
    "interval",
    "failure_interval",
    "randskew",
    "monitor",
    "exclude_hosts",
    "exclude_period",
    "depend",
    "dep_behavior",
];
const PERIOD_KEYS: &[&str] = &[
    "alert",
    "upalert",
    "startupalert",
    "alertevery",
    "alertafter",
    "numalerts",
    "no_comp_alerts",
];

/// Lines with comments dropped and `\` continuations joined, with their numbers.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut acc = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if acc.is_empty() {
            start = i + 1;
        }
        let t = raw.trim_end();
        if t.trim_start().starts_with('#') && acc.is_empty() {
            continue;
        }
        if let Some(x) = t.strip_suffix('\\') {
            acc.push_str(x);
            acc.push(' ');
            continue;
        }
        acc.push_str(t);
        out.push((start, std::mem::take(&mut acc)));
    }
    if !acc.is_empty() {
        out.push((start, acc));
    }
    out
}

pub fn parse(text: &str, name: &str) -> Result<MonCf, String> {
    let mut cf = MonCf::default();
    let mut in_hostgroup = false;
    for (n, line) in logical_lines(text) {
        let t = line.trim();
        if t.is_empty() {
            in_hostgroup = false;
            continue;
        }
        let (word, rest) = match t.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (t, ""),
        };
        let at = |m: String| format!("{name}:{n}: {m}");
        match word {
            "hostgroup" => {
                let mut w = rest.split_whitespace();
                let g = w.next().ok_or_else(|| at("hostgroup without a name".into()))?;
                name_ok(g).map_err(at)?;
                cf.hostgroups.push((g.to_string(), w.map(str::to_string).collect()));
                in_hostgroup = true;
            }
            "watch" => {
                in_hostgroup = false;
                let g = rest
                    .split_whitespace()
                    .next()
                    .ok_or_else(|| at("watch without a group".into()))?;
                name_ok(g).map_err(at)?;
                cf.watches.push(WatchIn {
                    group: g.into(),
                    services: Vec::new(),
                });
            }
            "service" => {
                let name = rest
                    .split_whitespace()
                    .next()
                    .ok_or_else(|| at("service without a name".into()))?;
                name_ok(name).map_err(at)?;
                let w = cf
                    .watches
                    .last_mut()
                    .ok_or_else(|| at("service outside a watch".into()))?;
                w.services.push(ServiceIn {
                    name: name.into(),
                    ..Default::default()
                });
            }
            "period" => {
                let s = cf
                    .watches
                    .last_mut()
                    .and_then(|w| w.services.last_mut())
                    .ok_or_else(|| at("period outside a service".into()))?;
                let (label, when) = match rest.split_once(':') {
                    Some((l, w)) if !l.contains(char::is_whitespace) && !l.contains('{') => {
                        (Some(l.to_string()), w.trim().to_string())
                    }
                    _ => (None, rest.to_string()),
                };
                s.periods.push(PeriodIn {
                    label,
                    when,
                    lines: Vec::new(),
                });
            }
            _ if in_hostgroup && !t.contains('=') => {
                if let Some(g) = cf.hostgroups.last_mut() {
                    g.1.extend(t.split_whitespace().map(str::to_string));
                }
            }
            _ if cf.watches.is_empty() => {
                // A global: `key = value`.
                match t.split_once('=') {
                    Some((k, v)) => cf.globals.push((k.trim().into(), v.trim().into())),
                    None => cf.notes.push(at(format!("`{t}` not understood; left out"))),
                }
            }
            _ => {
                let Some(s) = cf.watches.last_mut().and_then(|w| w.services.last_mut()) else {
                    cf.notes.push(at(format!("`{t}` outside a service; left out")));
                    continue;
                };
                if let Some(p) = s.periods.last_mut() {
                    if PERIOD_KEYS.contains(&word) {
                        p.lines.push((word.into(), rest.into()));
                        continue;
                    }
                }
                if SERVICE_KEYS.contains(&word) {
                    s.keys.push((word.into(), rest.into()));
                } else if word == "allow_empty_group" {
                    // an empty group is allowed anyway
                } else {
                    s.unsupported
                        .push(at(format!("service {}: `{word}` is not supported", s.name)));
                }
            }
        }
    }
    normalize(&mut cf);
    Ok(cf)
}

/// A value as YAML reads it back as the same string: plain when YAML itself reads the
/// plain word back as that string (not a number, a boolean, a null), single-quoted
/// otherwise, and double-quoted with escapes when it holds control characters.
/// A name that becomes a YAML key: YAML takes at most 1024 characters in a simple key
/// (128 characters stay under it even escaped six to one), and no real group or
/// service is named with more.
fn name_ok(n: &str) -> Result<(), String> {
    let len = n.chars().count();
    if len > 128 {
        Err(format!("a name of {len} characters; at most 128"))
    } else {
        Ok(())
    }
}

/// What mon.cf says twice becomes one entry, as YAML maps need: the last of a setting
/// wins (as mon reads its file top to bottom), two watches of one group are one.
fn normalize(cf: &mut MonCf) {
    let mut notes = Vec::new();
    last_wins(&mut cf.globals, "setting", &mut notes);
    last_wins(&mut cf.hostgroups, "hostgroup", &mut notes);
    let mut watches: Vec<WatchIn> = Vec::new();
    for w in cf.watches.drain(..) {
        match watches.iter_mut().find(|x| x.group == w.group) {
            Some(x) => {
                notes.push(format!("watch {} appears twice; its services are merged", w.group));
                x.services.extend(w.services);
            }
            None => watches.push(w),
        }
    }
    for w in &mut watches {
        let mut services: Vec<ServiceIn> = Vec::new();
        for sv in w.services.drain(..) {
            match services.iter_mut().find(|x| x.name == sv.name) {
                Some(x) => {
                    notes.push(format!(
                        "service {}/{} given twice; the last one is kept",
                        w.group, sv.name
                    ));
                    *x = sv;
                }
                None => services.push(sv),
            }
        }
        for sv in &mut services {
            last_wins(
                &mut sv.keys,
                &format!("service {}/{}: setting", w.group, sv.name),
                &mut notes,
            );
            for p in &mut sv.periods {
                let (mut lists, mut others): (Vec<_>, Vec<_>) = p
                    .lines
                    .drain(..)
                    .partition(|(k, _)| matches!(k.as_str(), "alert" | "upalert" | "startupalert"));
                last_wins(
                    &mut others,
                    &format!("service {}/{}: period setting", w.group, sv.name),
                    &mut notes,
                );
                lists.extend(others);
                p.lines = lists;
            }
        }
        w.services = services;
    }
    cf.watches = watches;
    cf.notes.extend(notes);
}

/// Keep one entry per key, the last one's value in the first one's place.
fn last_wins<T>(items: &mut Vec<(String, T)>, what: &str, notes: &mut Vec<String>) {
    let mut out: Vec<(String, T)> = Vec::with_capacity(items.len());
    for (k, v) in items.drain(..) {
        match out.iter_mut().find(|(x, _)| *x == k) {
            Some(slot) => {
                notes.push(format!("{what} `{k}` given twice; the last one is kept"));
                slot.1 = v;
            }
            None => out.push((k, v)),
        }
    }
    *items = out;
}

fn q(s: &str) -> String {
    let simple = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._/@-+ ".contains(c))
        && !s.starts_with(['-', ' ', '@'])
        && !s.ends_with(' ');
    let reads_as_itself = || {
        serde_yaml::from_str::<serde_yaml::Value>(&format!("k: {s}"))
            .ok()
            .is_some_and(|v| v["k"].as_str() == Some(s))
    };
    if simple && reads_as_itself() {
        s.to_string()
    } else if s.chars().any(unprintable) {
        // A double-quoted YAML scalar, with what YAML may not hold raw escaped.
        let mut out = String::from("\"");
        for ch in s.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                ch if unprintable(ch) => out.push_str(&format!("\\u{:04x}", ch as u32)),
                ch => out.push(ch),
            }
        }
        out.push('"');
        out
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Characters YAML does not allow unescaped (it takes tab, but not in every place):
/// the C0 and C1 controls, DEL, and the two non-characters U+FFFE and U+FFFF.
fn unprintable(ch: char) -> bool {
    ch.is_control() || ch == '\u{fffe}' || ch == '\u{ffff}'
}

/// Text for a YAML comment: YAML allows no control characters, even there.
fn c(s: &str) -> String {
    s.chars().map(|ch| if unprintable(ch) { '?' } else { ch }).collect()
}

/// Whether generated YAML reads back (what `import` checks before it writes).
pub fn reads_back(yaml: &str) -> Result<(), String> {
    serde_yaml::from_str::<serde_yaml::Value>(yaml)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The `mon-check` section for a parsed mon.cf.
pub fn to_yaml(cf: &mut MonCf, source: &str) -> String {
    let mut y = format!("# Imported from {} by mon-check import.\n", c(source));
    let dirs = |v: &str| -> String {
        let list: Vec<String> = v.split(':').filter(|d| !d.is_empty()).map(q).collect();
        format!("[{}]", list.join(", "))
    };
    y.push_str("mon-check:\n");
    for (k, v) in &cf.globals {
        match k.as_str() {
            "mondir" => {
                let _ = writeln!(y, "  mondir: {}", dirs(v));
            }
            "alertdir" => {
                let _ = writeln!(y, "  alertdir: {}", dirs(v));
            }
            "maxprocs" => {
                let _ = writeln!(
                    y,
                    "  # mon's maxprocs {}: mon-check runs up to max-parallel checks at once",
                    c(v)
                );
            }
            _ => {
                let _ = writeln!(y, "  # mon's `{} = {}` has no equivalent here", c(k), c(v));
            }
        }
    }
    y.push_str("  hostgroups:\n");
    for (g, hosts) in &cf.hostgroups {
        let hs: Vec<String> = hosts.iter().map(|h| q(h)).collect();
        let _ = writeln!(y, "    {}: [{}]", q(g), hs.join(", "));
    }
    y.push_str("  watches:\n");
    let groups: Vec<String> = cf.hostgroups.iter().map(|g| g.0.clone()).collect();
    let mut notes = Vec::new();
    for w in &cf.watches {
        if !groups.contains(&w.group) {
            notes.push(format!("watch {}: no hostgroup of that name; left out", w.group));
            let _ = writeln!(y, "    # watch {} left out: no hostgroup of that name", c(&w.group));
            continue;
        }
        let _ = writeln!(y, "    {}:", q(&w.group));
        for s in &w.services {
            notes.extend(s.unsupported.iter().cloned());
            if !s.keys.iter().any(|(k, _)| k == "monitor") {
                notes.push(format!(
                    "service {}/{}: no monitor (a trap service?); left out",
                    w.group, s.name
                ));
                let _ = writeln!(y, "      # service {} left out: it has no monitor", c(&s.name));
                continue;
            }
            let _ = writeln!(y, "      {}:", q(&s.name));
            for (k, v) in &s.keys {
                let key = k.replace('_', "-");
                match k.as_str() {
                    "exclude_hosts" => {
                        let hs: Vec<String> = v.split_whitespace().map(q).collect();
                        let _ = writeln!(y, "        {key}: [{}]", hs.join(", "));
                    }
                    _ => {
                        let _ = writeln!(y, "        {key}: {}", q(v));
                    }
                }
            }
            if s.periods.is_empty() {
                continue;
            }
            y.push_str("        periods:\n");
            for p in &s.periods {
                let mut first = true;
                let mut item = |y: &mut String, line: String| {
                    let _ = writeln!(y, "          {} {line}", if first { "-" } else { " " });
                    first = false;
                };
                if let Some(l) = &p.label {
                    let _ = writeln!(y, "          # period {}", c(l));
                }
                if !p.when.trim().is_empty() {
                    item(&mut y, format!("when: {}", q(&p.when)));
                }
                for kind in ["alert", "upalert", "startupalert"] {
                    let cmds: Vec<String> = p.lines.iter().filter(|(k, _)| k == kind).map(|(_, v)| q(v)).collect();
                    if !cmds.is_empty() {
                        item(&mut y, format!("{kind}: [{}]", cmds.join(", ")));
                    }
                }
                for (k, v) in &p.lines {
                    match k.as_str() {
                        "alert" | "upalert" | "startupalert" => {}
                        // `alertevery 1h summary`: the option word is mon's default here.
                        "alertevery" => item(
                            &mut y,
                            format!("alertevery: {}", q(v.split_whitespace().next().unwrap_or(""))),
                        ),
                        "no_comp_alerts" => item(&mut y, "no-comp-alerts: true".into()),
                        "numalerts" if v.trim().parse::<u32>().is_ok() => {
                            item(&mut y, format!("numalerts: {}", v.trim()))
                        }
                        _ => item(&mut y, format!("{k}: {}", q(v))),
                    }
                }
            }
        }
    }
    cf.notes.extend(notes);
    y
}

/// `mon-check import`: 0 written, 3 unreadable or not a mon.cf.
pub fn main(a: &ImportArgs) -> Status {
    let name = a.file.display().to_string();
    let text = match std::fs::read_to_string(&a.file) {
        Ok(t) => t,
        Err(e) => {
            crate::base::log::error(&format!("{name}: {e}"));
            return Status::Unknown;
        }
    };
    let mut cf = match parse(&text, &name) {
        Ok(c) => c,
        Err(e) => {
            crate::base::log::error(&e);
            return Status::Unknown;
        }
    };
    let yaml = to_yaml(&mut cf, &name);
    if let Err(e) = reads_back(&yaml) {
        crate::base::log::error(&format!(
            "{name}: the configuration written from it does not read back ({e}); nothing written"
        ));
        return Status::Unknown;
    }
    for n in &cf.notes {
        crate::base::log::warn(n);
    }
    // Monitors are carried word for word; say which of them this machine lacks.
    let mondir: Vec<std::path::PathBuf> = cf
        .globals
        .iter()
        .filter(|(k, _)| k == "mondir")
        .flat_map(|(_, v)| v.split(':').map(std::path::PathBuf::from).collect::<Vec<_>>())
        .collect();
    for w in &cf.watches {
        for s in &w.services {
            for (k, v) in &s.keys {
                if k != "monitor" {
                    continue;
                }
                match split_words(v) {
                    Err(e) => crate::base::log::warn(&format!("{name}: service {}/{}: {e}", w.group, s.name)),
                    Ok(words) => {
                        let prog = words.first().map(String::as_str).unwrap_or("");
                        if !crate::tools::mon_check::check::spec::BUILT_IN.contains(&prog)
                            && super::config::find_program(prog, &mondir).is_none()
                        {
                            crate::base::log::warn(&format!(
                                "{name}: service {}/{}: monitor `{prog}` is not installed here; install it or change the monitor",
                                w.group, s.name
                            ));
                        }
                    }
                }
            }
        }
    }
    match &a.output {
        None => print!("{yaml}"),
        Some(p) => {
            if let Err(e) = std::fs::write(p, &yaml) {
                crate::base::log::error(&format!("{}: {e}", p.display()));
                return Status::Unknown;
            }
        }
    }
    Status::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_mon_cf() {
        let text = "alertdir = /a\nmondir = /m1:/m2\n\nhostgroup web w1 w2\n  w3\n\nwatch web\n    service http\n\tinterval 5m\n\tmonitor http.monitor -p 8080\n\tdepend web:ping\n\tperiod wd {Mon-Fri} hr {7am-10pm}\n\t    alert mail.alert ops@x\n\t    alertevery 1h summary\n\t    alertafter 2 30m\n\tperiod OFF: wd {Sat-Sun}\n\t    alert file.alert /tmp/x\n\t    upalert file.alert /tmp/x\n    service trap\n\ttraptimeout 10m\n";
        let mut cf = parse(text, "mon.cf").unwrap();
        assert_eq!(cf.hostgroups[0].1, vec!["w1", "w2", "w3"]);
        let y = to_yaml(&mut cf, "mon.cf");
        assert!(y.contains("mondir: [/m1, /m2]"), "{y}");
        assert!(y.contains("monitor: http.monitor -p 8080"), "{y}");
        assert!(y.contains("- when: 'wd {Mon-Fri} hr {7am-10pm}'"), "{y}");
        assert!(y.contains("alertevery: 1h\n"), "{y}");
        assert!(y.contains("# service trap left out"), "{y}");
        assert!(cf.notes.iter().any(|n| n.contains("traptimeout")), "{:?}", cf.notes);
        assert!(serde_yaml::from_str::<serde_yaml::Value>(&y).is_ok(), "{y}");
    }

    #[test]
    fn overlong_names_are_refused_with_their_line() {
        // found by the fuzzer: a key longer than YAML's 1024 characters
        let e = parse(&format!("\nhostgroup {} h\n", "x".repeat(200)), "long.cf").unwrap_err();
        assert!(e.starts_with("long.cf:2: a name of 200 characters"), "{e}");
        let mut cf = parse(&format!("hostgroup {} h\n", "\u{0}".repeat(128)), "n.cf").unwrap();
        assert!(reads_back(&to_yaml(&mut cf, "n.cf")).is_ok());
    }

    #[test]
    fn what_is_said_twice_is_one_entry() {
        // found by the fuzzer: `mondir` twice made a YAML map with a duplicate key
        let text = "mondir = /a\nmondir = /b\nhostgroup g h1\nhostgroup g h2\nwatch g\n service s\n  monitor x.monitor\n  interval 1m\n  interval 2m\n  period\n   alert a.alert\n   alert b.alert\n   alertevery 1h\n   alertevery 2h\nwatch g\n service t\n  monitor y.monitor\n";
        let mut cf = parse(text, "twice.cf").unwrap();
        let y = to_yaml(&mut cf, "twice.cf");
        assert!(reads_back(&y).is_ok(), "{y}");
        assert!(y.contains("mondir: [/b]") && !y.contains("/a]"), "{y}");
        assert!(y.contains("g: [h2]"), "{y}");
        assert!(y.contains("interval: 2m") && y.contains("alertevery: 2h"), "{y}");
        assert!(y.contains("alert: [a.alert, b.alert]") && y.contains("      t:"), "{y}");
        assert!(
            cf.notes.iter().filter(|n| n.contains("twice")).count() >= 4,
            "{:?}",
            cf.notes
        );
    }

    #[test]
    fn control_characters_in_comments_do_not_break_the_yaml() {
        // found by the fuzzer: a global that becomes a comment
        let mut cf = parse("#ir = for\u{7f}$Id>\nx\u{1} = y\u{1b}\n", "fuzz.cf").unwrap();
        let y = to_yaml(&mut cf, "fuzz\u{2}.cf");
        assert!(reads_back(&y).is_ok(), "{y}");
    }

    #[test]
    fn values_read_back_as_the_same_strings() {
        for v in [
            "10.0.0.1",
            "@home",
            ".inf",
            "yes",
            "No",
            "0x1F",
            "a: b",
            "x #y",
            "it's",
            "tab\there",
            "ctl\u{1}x",
            "-x",
            "~",
            "plain word",
        ] {
            let y = format!("k: {}\n", q(v));
            let back: serde_yaml::Value = serde_yaml::from_str(&y).unwrap_or_else(|e| panic!("{y}: {e}"));
            assert_eq!(back["k"].as_str(), Some(v), "{y}");
        }
    }
}
