//! `lvs-ctl follow`: mon-check's host events on stdin → real servers out and back in.
//!
//! Input: the lines `mon-check run` prints (`host-down HOST ts=... mono=...
//! service=GROUP/SERVICE status=... was=... line='...'`, values shell-quoted), or the JSON
//! lines of `mon-check run --json`. A `host-down`/`host-up` moves the real servers whose
//! service has `check: GROUP/SERVICE` and whose `host` is HOST (see health.rs for what
//! decides the table). mon-check's `service-failing`/`service-up` are skipped; an
//! unknown event or a malformed line is logged once per kind and skipped.
//!
//! hb-watch's event lines are read too, on stdin or from `--events FIFO` (each input
//! has its own line assembly, so two writers never mix their lines): `message NODE ...
//! t=join|leave` and `node-dead NODE` move the real servers that join at run time
//! (join.rs); hb-watch's other events are read and left alone.
//!
//! The table: read from the kernel once at start, and every configured service made
//! what the configuration and the health say (so a follower that starts also applies
//! its services, as `apply` would, but touches no other); after that follow keeps what it
//! committed in memory and sends a health change as the changes of the services it
//! touches only, in one all-or-nothing commit per wake-up (no re-read per event). Every
//! `--interval` it looks at the maintenance directory, re-reads the kernel and repairs
//! what drifted. A failed commit changed nothing: the table is re-read and the commit
//! tried once more, else the next interval tries again. Only the configured services are
//! touched; others in the kernel are left alone, and a service removed from the
//! configuration by a reload stays as it is (`apply` removes it).
//!
//! Events on stdout, one per change, in hb-watch's form (`--json` for JSON lines); the
//! subject is the real server (`10.0.0.2:80`) or, for drift, the service:
//!
//! - `real-down REAL service=SVC host=HOST action=quiesce|drain|remove [weight=0]
//!   [until=T] reason=LINE was=up|maintenance|depool-refused`
//! - `real-up REAL service=SVC host=HOST [weight=N] was=down|depool-refused`
//! - `real-drained REAL service=SVC host=HOST action=remove drain=D`: a drain is over
//! - `maintenance-in REAL service=SVC host=HOST action=... [weight=0] [until=T] file=NAME was=...`
//! - `maintenance-out REAL service=SVC host=HOST [weight=N] was=maintenance`
//! - `depool-refused REAL service=SVC host=HOST weight=N health=down|maintenance
//!   max-out=M [reason=LINE|file=NAME]`: it should go out but the depool threshold
//!   keeps it in
//! - `sorry-in SORRY service=SVC live-weight=L quorum=Q action=quiesce|drain|remove`
//! - `sorry-out SORRY service=SVC live-weight=L quorum=Q`
//! - `drift-repaired SVC changes=N`: the kernel's table of the service was not what
//!   follow had put there; it is again
//! - `real-joined REAL service=SVC host=ADDR node=NODE weight=N`: a joiner passed the
//!   service's check and is in the pool (then real-down/real-up as for the others)
//! - `real-left REAL service=SVC host=ADDR node=NODE reason=leave|node-dead|lease|config`
//! - `join-refused NODE service=SVC real=REAL reason=not-allowed|not-joinable|
//!   no-such-service|configured|taken|address-family|port`: said once per node,
//!   service and reason
//!
//! where SVC is `tcp/192.0.2.10:80` (health::service_name). At start the state follow
//! restores (the previous follower's state file, if its times are of this boot) is
//! announced the same way. Real servers that are healthy but out because the sorry
//! server has their service get no events of their own: `sorry-in`/`sorry-out` say it.
//!
//! The state file (`--state`) is rewritten atomically at every change, with this
//! process's pid and start time, for `apply` and `status`.
//!
//! Signals: TERM/INT stop and leave the table as it is; HUP reloads the configuration
//! (a bad one is logged and the old one kept) and re-applies; USR1 logs a summary.
//! End of stdin means mon-check is gone and no more health news will come: follow
//! exits 1 with a line saying so, leaving the table, so that a pipeline `mon-check run
//! | lvs-ctl follow` under systemd is restarted as a unit.

use super::backend::{self, Backend};
use super::cli::FollowArgs;
use super::config::{self, Config, Virtual};
use super::health::{self, Health, Note, Placement, RealId, Stamp, Why, Writer};
use super::join::{self, Announce, Effect, Joins};
use super::model::{Change, Info, Service, ServiceKey, Table};
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::log;
use crate::base::runloop::RunLoop;
use crate::events::read::{self, split_words, Lines};
use crate::events::{Event, Kind, Sink};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The errors that end `follow`.
#[derive(Debug)]
pub enum Error {
    Backend(backend::Error),
    /// stdin ended: mon-check is gone.
    InputClosed,
    /// stdin, the signals, or the state file at start.
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Backend(e) => e.fmt(f),
            Error::InputClosed => f.write_str(
                "stdin closed: mon-check is gone and no more health news will come; the table is left as it is",
            ),
            Error::Io(m) => f.write_str(m),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Backend(e) => e.exit_status(),
            Error::InputClosed | Error::Io(_) => ExitStatus::Failure,
        }
    }
}

impl From<backend::Error> for Error {
    fn from(e: backend::Error) -> Error {
        Error::Backend(e)
    }
}

// ---- Input ----

/// A mon-check host event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    pub up: bool,
    pub host: String,
    /// The `service=` field: the mon-check service key, `GROUP/SERVICE`.
    pub check: String,
    pub status: String,
    pub line: String,
}

/// Why a line is not a host event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Nothing for follow: an empty line, or mon-check's service events.
    NotHost,
    /// An event follow does not know (its name, cut to 40 bytes).
    Unknown(String),
    /// Not an event line at all, or one without what a host event needs.
    Malformed(&'static str),
}

fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn classify(event: &str) -> Result<bool, Skip> {
    match event {
        "host-down" => Ok(false),
        "host-up" => Ok(true),
        "service-failing" | "service-up" => Err(Skip::NotHost),
        e => Err(Skip::Unknown(cut(e, 40))),
    }
}

/// One line of mon-check's output, text or JSON.
pub fn parse_line(line: &str) -> Result<HostEvent, Skip> {
    let line = line.trim();
    if line.is_empty() {
        return Err(Skip::NotHost);
    }
    if line.starts_with('{') {
        return parse_json(line);
    }
    let words = split_words(line).map_err(Skip::Malformed)?;
    let up = classify(words.first().map_or("", |w| w.as_str()))?;
    let host = words
        .get(1)
        .filter(|h| !h.is_empty() && !h.contains('='))
        .ok_or(Skip::Malformed("a host event without its host"))?;
    let mut ev = HostEvent {
        up,
        host: host.clone(),
        check: String::new(),
        status: String::new(),
        line: String::new(),
    };
    for w in words.get(2..).unwrap_or(&[]) {
        // A word without `=` is no field of mon-check's; ignored.
        if let Some((k, v)) = w.split_once('=') {
            match k {
                "service" => ev.check = v.to_string(),
                "status" => ev.status = v.to_string(),
                "line" => ev.line = v.to_string(),
                _ => {}
            }
        }
    }
    if ev.check.is_empty() {
        return Err(Skip::Malformed("a host event without service="));
    }
    Ok(ev)
}

fn parse_json(line: &str) -> Result<HostEvent, Skip> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| Skip::Malformed("a line of bad JSON"))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str());
    let up = classify(s("event").ok_or(Skip::Malformed("a JSON line without \"event\""))?)?;
    let host = s("subject")
        .filter(|h| !h.is_empty())
        .ok_or(Skip::Malformed("a host event without its host"))?;
    let check = s("service")
        .filter(|c| !c.is_empty())
        .ok_or(Skip::Malformed("a host event without service="))?;
    Ok(HostEvent {
        up,
        host: host.to_string(),
        check: check.to_string(),
        status: s("status").unwrap_or("").to_string(),
        line: s("line").unwrap_or("").to_string(),
    })
}

/// hb-watch's events: `message` (a join or leave) and `node-dead` move joiners; the
/// others are read and left alone (a script may send all of hb-watch's events).
const HB_WATCH_EVENTS: &[&str] = &[
    "message",
    "node-dead",
    "node-up",
    "node-unreachable",
    "node-restart",
    "node-status",
    "link-up",
    "link-late",
    "link-dead",
    "ping-up",
    "ping-dead",
];

/// Hosts remembered down that no real server is (a reload may map them); beyond this,
/// such news is dropped.
const UNMAPPED_MAX: usize = 100_000;
/// Names looked at in the maintenance directory.
const MAINTENANCE_MAX: usize = 100_000;

// ---- What was announced ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Up,
    Down,
    Maintenance,
}

/// What the last events said of a real server (absent: up and in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct View {
    class: Class,
    refused: bool,
    placement: Option<Placement>,
}

const IN: View = View {
    class: Class::Up,
    refused: false,
    placement: None,
};

#[derive(Debug, Clone, Default, PartialEq)]
struct Shown {
    reals: HashMap<SocketAddr, View>,
    sorry: Option<SocketAddr>,
}

fn class_of(w: &Why) -> Class {
    match w {
        Why::Down(_) => Class::Down,
        Why::Maintenance { .. } => Class::Maintenance,
        Why::Quorum => Class::Up,
    }
}

fn shown_of(notes: &[Note]) -> Shown {
    let mut s = Shown::default();
    for n in notes {
        match n {
            Note::Out {
                real, why, placement, ..
            } => {
                s.reals.insert(
                    *real,
                    View {
                        class: class_of(why),
                        refused: false,
                        placement: Some(*placement),
                    },
                );
            }
            Note::DepoolRefused { real, why, .. } => {
                s.reals.insert(
                    *real,
                    View {
                        class: class_of(why),
                        refused: true,
                        placement: None,
                    },
                );
            }
            Note::SorryIn { sorry, .. } => s.sorry = Some(*sorry),
        }
    }
    s
}

fn was_word(v: &View) -> &'static str {
    match (v.class, v.refused) {
        (_, true) => "depool-refused",
        (Class::Up, _) => "up",
        (Class::Down, _) => "down",
        (Class::Maintenance, _) => "maintenance",
    }
}

fn action_word(p: Placement) -> &'static str {
    match p {
        Placement::Quiesced => "quiesce",
        Placement::Draining { .. } => "drain",
        Placement::Removed => "remove",
    }
}

/// The events between what was shown of `v` and what `notes` say now; `want` is the
/// service as it now is in the table.
fn events_of(v: &Virtual, prev: &Shown, now: &Shown, notes: &[Note], want: &Service, mono: u64) -> Vec<Event> {
    let svc = health::service_name(&v.service.key);
    let mut out = Vec::new();
    for r in &v.reals {
        let id = RealId::of(v, r);
        let p = prev.reals.get(&id.real).copied().unwrap_or(IN);
        let n = now.reals.get(&id.real).copied().unwrap_or(IN);
        if p == n {
            continue;
        }
        let note = notes.iter().find(|x| match x {
            Note::Out { real, .. } | Note::DepoolRefused { real, .. } => *real == id.real,
            Note::SorryIn { .. } => false,
        });
        let weight = want.dest(r.dest.addr, r.dest.port).map(|d| d.weight);
        let base = |kind| {
            Event::new(kind, &id.real.to_string(), mono)
                .with("service", &svc)
                .with("host", &r.host)
        };
        let with_weight = |e: Event| match weight {
            Some(w) => e.with("weight", w),
            None => e,
        };
        let why_fields = |e: Event, why: &Why| match why {
            Why::Down(d) => e.with("reason", d.reason()),
            Why::Maintenance { file, .. } => e.with("file", file),
            Why::Quorum => e,
        };
        let class_changed = p.class != n.class || p.refused != n.refused;
        let ev = match (class_changed, n.class, n.refused, note) {
            (true, Class::Down | Class::Maintenance, true, Some(Note::DepoolRefused { why, max_out, .. })) => {
                let e = with_weight(base(Kind::DepoolRefused))
                    .with("health", if n.class == Class::Down { "down" } else { "maintenance" })
                    .with("max-out", max_out);
                Some(why_fields(e, why))
            }
            (true, Class::Down | Class::Maintenance, false, Some(Note::Out { why, placement, .. })) => {
                let kind = if n.class == Class::Down {
                    Kind::RealDown
                } else {
                    Kind::MaintenanceIn
                };
                let mut e = with_weight(base(kind).with("action", action_word(*placement)));
                if let Placement::Draining { until } = placement {
                    e = e.with("until", until.rfc3339());
                }
                Some(why_fields(e, why).with("was", was_word(&p)))
            }
            (true, Class::Up, _, _) => {
                let kind = if p.class == Class::Maintenance && !p.refused {
                    Kind::MaintenanceOut
                } else {
                    Kind::RealUp
                };
                Some(with_weight(base(kind)).with("was", was_word(&p)))
            }
            (false, _, _, _) => match (p.placement, n.placement) {
                (Some(Placement::Draining { .. }), Some(Placement::Removed)) => Some(
                    base(Kind::RealDrained)
                        .with("action", "remove")
                        .with("drain", crate::base::duration::format(v.drain.unwrap_or_default())),
                ),
                _ => None,
            },
            _ => None,
        };
        out.extend(ev);
    }
    let live = want.live_weight(now.sorry);
    match (prev.sorry, now.sorry) {
        (None, Some(s)) => {
            let lw = notes
                .iter()
                .find_map(|n| match n {
                    Note::SorryIn { live_weight, .. } => Some(*live_weight),
                    _ => None,
                })
                .unwrap_or(0);
            out.push(
                Event::new(Kind::SorryIn, &s.to_string(), mono)
                    .with("service", &svc)
                    .with("live-weight", lw)
                    .with("quorum", v.quorum)
                    .with("action", v.on_failure_word()),
            );
        }
        (Some(s), None) => out.push(
            Event::new(Kind::SorryOut, &s.to_string(), mono)
                .with("service", &svc)
                .with("live-weight", live)
                .with("quorum", v.quorum),
        ),
        _ => {}
    }
    out
}

// ---- The table ----

/// Whether two services hold the same settings and real servers (counters aside).
fn same_service(a: &Service, b: &Service) -> bool {
    a.same_settings(b)
        && a.dests.len() == b.dests.len()
        && a.dests
            .iter()
            .all(|d| b.dest(d.addr, d.port).is_some_and(|x| x.same_settings(d)))
}

/// The changes that make `cur` (None: not in the kernel) into `want`.
fn diff_service(cur: Option<&Service>, want: Option<&Service>) -> Vec<Change> {
    match (cur, want) {
        (Some(c), Some(w)) if same_service(c, w) => Vec::new(),
        (None, None) => Vec::new(),
        _ => {
            let one = |s: Option<&Service>| Table {
                info: Info { version: 0, size: 0 },
                services: s.into_iter().cloned().collect(),
            };
            one(cur).diff(&one(want))
        }
    }
}

fn service_index(t: &Table) -> HashMap<ServiceKey, usize> {
    t.services.iter().enumerate().map(|(i, s)| (s.key, i)).collect()
}

/// Log `msg` the first time `key` is seen (bounded, so that odd input cannot grow it).
pub(super) fn once(seen: &mut HashSet<String>, key: String, level: log::Level, msg: &str) {
    if seen.len() < 1024 && seen.insert(key) {
        log::log(level, msg);
    }
}

/// The names in the maintenance directory (none if it cannot be read: logged once).
pub fn scan_maintenance(dir: &Path, seen: &mut HashSet<String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten().take(MAINTENANCE_MAX) {
                if let Some(n) = e.file_name().to_str().filter(|n| health::is_maintenance_name(n)) {
                    names.insert(n.to_string());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => once(
            seen,
            format!("maintenance-dir:{e}"),
            log::Level::Warn,
            &format!("{}: {e}; no real server is in maintenance", dir.display()),
        ),
    }
    names
}

/// `real-joined`/`real-left`: the joiner, its service, host and node.
fn joiner_event(kind: Kind, id: &RealId, node: &str, mono: u64) -> Event {
    Event::new(kind, &id.real.to_string(), mono)
        .with("service", health::service_name(&id.service))
        .with("host", join::host_of(id.real))
        .with("node", node)
}

/// The follower: health, the table it committed, what it announced.
pub struct Follow<W: Write> {
    cfg: Config,
    backend: Box<dyn Backend>,
    health: Health,
    /// The kernel's table as follow last read it, with what it committed since.
    committed: Table,
    index: HashMap<ServiceKey, usize>,
    /// (check, host) → the configured services with such a real server.
    by_host: HashMap<String, HashMap<String, Vec<usize>>>,
    shown: HashMap<ServiceKey, Shown>,
    /// Drain deadlines (CLOCK_MONOTONIC ns) and their services.
    deadlines: BTreeSet<(u64, usize)>,
    sink: Sink<W>,
    state: PathBuf,
    writer: Writer,
    dirty: bool,
    lines: Lines,
    logged: HashSet<String>,
    /// Joiners: candidates and check times (join.rs); the joined are in `health`.
    joins: Joins,
    /// How often each check runs against joiners (mon-check's intervals).
    every: HashMap<String, join::Every>,
    /// hb-watch's events, when they come through `--events` rather than stdin.
    event_lines: Lines,
}

impl<W: Write> Follow<W> {
    /// Read the kernel's table once; `health` is what to start from.
    pub fn new(
        cfg: Config,
        mut backend: Box<dyn Backend>,
        sink: Sink<W>,
        state: PathBuf,
        health: Health,
        now: Stamp,
    ) -> Result<Follow<W>, Error> {
        let committed = backend.read()?;
        let me = crate::base::pidfile::PidRecord::me(Vec::new());
        let mut f = Follow {
            cfg,
            backend,
            health,
            index: service_index(&committed),
            committed,
            by_host: HashMap::new(),
            shown: HashMap::new(),
            deadlines: BTreeSet::new(),
            sink,
            state,
            writer: Writer {
                pid: me.pid,
                start: me.start.unwrap_or(0),
                since: now,
                written: now,
                boot: health::boot_id(),
            },
            dirty: true,
            lines: Lines::default(),
            logged: HashSet::new(),
            joins: Joins::default(),
            every: HashMap::new(),
            event_lines: Lines::default(),
        };
        f.health.retain_configured(&f.cfg);
        f.index_hosts();
        Ok(f)
    }

    fn index_hosts(&mut self) {
        self.by_host.clear();
        for (i, v) in self.cfg.services.iter().enumerate() {
            let Some(check) = &v.check else { continue };
            for r in &join::with_joined(&self.health, v).reals {
                let list = self
                    .by_host
                    .entry(check.clone())
                    .or_default()
                    .entry(r.host.clone())
                    .or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
    }

    fn all(&self) -> Vec<usize> {
        (0..self.cfg.services.len()).collect()
    }

    /// Write the state file now; an error is returned (at start it ends follow).
    pub fn save(&mut self, now: Stamp) -> Result<(), String> {
        self.writer.written = now;
        health::save_state(&self.state, &self.health, &self.writer)?;
        self.dirty = false;
        Ok(())
    }

    fn save_if_dirty(&mut self, now: Stamp) {
        if self.dirty {
            if let Err(e) = self.save(now) {
                once(&mut self.logged, format!("state:{e}"), log::Level::Warn, &e);
            }
        }
    }

    /// Make every configured service what it should be (at start, after a reload).
    pub fn start(&mut self, now: Stamp) {
        // Joiners restored from the state file: checked again, or out if no longer allowed.
        let effects = self.joins.reconfigure(&self.cfg, &mut self.health, now);
        self.effects(effects, now, &mut BTreeSet::new());
        self.load_weights();
        self.update(&self.all(), &HashMap::new(), now, true);
    }

    /// Bytes from `--events` (hb-watch's events): taken as stdin's are.
    pub fn input_events(&mut self, data: &[u8], now: Stamp) {
        let lines = self.event_lines.feed(data);
        self.take_lines(lines, now);
    }

    /// Bytes from stdin: every complete line is taken, then one commit for all.
    pub fn input(&mut self, data: &[u8], now: Stamp) {
        let lines = self.lines.feed(data);
        self.take_lines(lines, now);
    }

    /// The end of stdin: the last line, if it had no newline.
    pub fn input_end(&mut self, now: Stamp) {
        let last = self.lines.finish().into_iter().collect();
        self.take_lines(last, now);
    }

    fn take_lines(&mut self, lines: Vec<Result<String, &'static str>>, now: Stamp) {
        let mut affected = BTreeSet::new();
        for l in lines {
            match l {
                Ok(l) => self.take_line(&l, now, &mut affected),
                Err(what) => self.skipped(&Skip::Malformed(what)),
            }
        }
        if !affected.is_empty() {
            let which: Vec<usize> = affected.into_iter().collect();
            self.update(&which, &HashMap::new(), now, true);
        }
    }

    fn skipped(&mut self, s: &Skip) {
        match s {
            Skip::NotHost => {}
            Skip::Unknown(k) => once(
                &mut self.logged,
                format!("unknown:{k}"),
                log::Level::Warn,
                &format!("stdin: `{k}' is not a mon-check host event; such lines are skipped (said once)"),
            ),
            Skip::Malformed(what) => once(
                &mut self.logged,
                format!("malformed:{what}"),
                log::Level::Warn,
                &format!("stdin: {what}; such lines are skipped (said once)"),
            ),
        }
    }

    fn take_line(&mut self, line: &str, now: Stamp, affected: &mut BTreeSet<usize>) {
        if let Some(effects) = self.cluster_line(line, now) {
            return self.effects(effects, now, affected);
        }
        let ev = match parse_line(line) {
            Ok(ev) => ev,
            Err(s) => return self.skipped(&s),
        };
        let services = self.by_host.get(&ev.check).and_then(|h| h.get(&ev.host));
        if services.is_none() {
            let unmapped: usize = self.health.down.values().map(|h| h.len()).sum();
            once(
                &mut self.logged,
                format!("unmapped:{}:{}", ev.check, ev.host),
                log::Level::Info,
                &format!(
                    "no real server is host `{}' of check `{}'; its events move nothing (said once)",
                    ev.host, ev.check
                ),
            );
            if !ev.up && unmapped >= UNMAPPED_MAX {
                return;
            }
        }
        let changed = if ev.up {
            self.health.host_up(&ev.check, &ev.host)
        } else {
            self.health.host_down(&ev.check, &ev.host, &ev.status, &ev.line, now)
        };
        if changed {
            self.dirty = true;
            if let Some(list) = self.by_host.get(&ev.check).and_then(|h| h.get(&ev.host)) {
                affected.extend(list.iter().copied());
            }
        }
    }

    /// One of hb-watch's event lines: what it does to the joiners (None: not
    /// hb-watch's; mon-check's, or nothing).
    fn cluster_line(&mut self, line: &str, now: Stamp) -> Option<Vec<Effect>> {
        let t = line.trim_start();
        let first = t.split([' ', '\t']).next().unwrap_or("");
        if !t.starts_with('{') && !HB_WATCH_EVENTS.contains(&first) {
            return None;
        }
        let ev = read::parse(t).ok()?;
        if !HB_WATCH_EVENTS.contains(&ev.event.as_str()) {
            return None;
        }
        let node = ev.subject.as_str();
        match ev.event.as_str() {
            "node-dead" => Some(self.joins.node_dead(&self.cfg, &mut self.health, node)),
            // The sender as hb-send stamped it (a script cannot set `src`).
            "message" if ev.get("src") == Some(node) => match Announce::read(&ev.fields) {
                Ok(Some(a)) => Some(self.joins.announce(&self.cfg, &mut self.health, node, &a, now)),
                Ok(None) => Some(Vec::new()),
                Err(e) => {
                    once(
                        &mut self.logged,
                        format!("join-bad:{node}"),
                        log::Level::Warn,
                        &format!("a join or leave from {node}: {e}; ignored (said once per node)"),
                    );
                    Some(Vec::new())
                }
            },
            _ => Some(Vec::new()),
        }
    }

    /// Announce what joiners did; the services they touch go into `affected`.
    fn effects(&mut self, effects: Vec<Effect>, now: Stamp, affected: &mut BTreeSet<usize>) {
        let mono = now.mono_ns;
        let mut reindex = false;
        for e in effects {
            match e {
                Effect::Refused {
                    node,
                    service,
                    real,
                    reason,
                } => {
                    let svc = health::service_name(&service);
                    once(
                        &mut self.logged,
                        format!("join-refused:{node}"),
                        log::Level::Warn,
                        &format!("{node} may not join {svc} as {real}: {reason} (said once per node)"),
                    );
                    let ev = Event::new(Kind::JoinRefused, &node, mono)
                        .with("service", &svc)
                        .with("real", real)
                        .with("reason", reason);
                    self.sink.emit(&ev);
                    // Nothing of ours changed: the state file stays as it is.
                    continue;
                }
                Effect::Joined { id, index, node } => {
                    let weight = self.health.joined.get(&id).map_or(0, |j| j.weight);
                    let ev = joiner_event(Kind::RealJoined, &id, &node, mono).with("weight", weight);
                    self.sink.emit(&ev);
                    affected.insert(index);
                    reindex = true;
                }
                Effect::Left {
                    id,
                    index,
                    node,
                    reason,
                } => {
                    // Forgotten: one that comes back starts afresh.
                    if let Some(sh) = self.shown.get_mut(&id.service) {
                        sh.reals.remove(&id.real);
                    }
                    let ev = joiner_event(Kind::RealLeft, &id, &node, mono).with("reason", reason);
                    self.sink.emit(&ev);
                    affected.extend(index);
                    reindex = true;
                }
                Effect::Changed { index } => {
                    affected.insert(index);
                }
            }
            self.dirty = true;
        }
        if reindex {
            self.index_hosts();
        }
    }

    /// How often `check` runs against joiners (mon-check's interval and
    /// failure-interval); without it, follow's `--interval`.
    pub fn set_every(&mut self, every: HashMap<String, join::Every>) {
        self.every = every;
    }

    /// The joiners' checks to start now.
    pub fn due_checks(&mut self, now: Stamp) -> Vec<join::Due> {
        self.joins.due(&self.cfg, now)
    }

    /// A joiner's check result: in the pool once it passes; up or down while in.
    pub fn checked(&mut self, id: RealId, ok: bool, status: &str, line: &str, now: Stamp, fallback: Duration) {
        let check = self
            .cfg
            .services
            .iter()
            .find(|v| v.service.key == id.service)
            .and_then(|v| v.check.clone())
            .unwrap_or_default();
        let every = self.every.get(&check).copied().unwrap_or(join::Every {
            ok: fallback,
            failing: fallback,
        });
        let effects = self
            .joins
            .checked(&self.cfg, &mut self.health, id, ok, status, line, every, now);
        let mut affected = BTreeSet::new();
        self.effects(effects, now, &mut affected);
        if !affected.is_empty() {
            let which: Vec<usize> = affected.into_iter().collect();
            self.update(&which, &HashMap::new(), now, true);
        } else {
            self.save_if_dirty(now);
        }
    }

    /// The next drain deadline, CLOCK_MONOTONIC ns.
    pub fn next_deadline(&self) -> Option<u64> {
        let drain = self.deadlines.first().map(|(t, _)| *t);
        let joins = self.joins.next_deadline(&self.health);
        drain.into_iter().chain(joins).min()
    }

    /// Drains whose time is over.
    pub fn expire(&mut self, now: Stamp) {
        let mut which = BTreeSet::new();
        let lapsed = self.joins.expire(&self.cfg, &mut self.health, now);
        self.effects(lapsed, now, &mut which);
        while let Some(&(t, i)) = self.deadlines.first() {
            if t > now.mono_ns {
                break;
            }
            self.deadlines.pop_first();
            which.insert(i);
        }
        if !which.is_empty() {
            let which: Vec<usize> = which.into_iter().collect();
            self.update(&which, &HashMap::new(), now, true);
        }
    }

    /// The interval's work: the maintenance directory, the kernel re-read, drift
    /// repaired.
    pub fn tick(&mut self, now: Stamp) {
        self.load_weights();
        if let Some(dir) = self.cfg.maintenance_dir.clone() {
            let names = scan_maintenance(&dir, &mut self.logged);
            if self.health.set_maintenance(names, now) {
                self.dirty = true;
            }
        }
        let drifted = self.resync();
        self.update(&self.all(), &drifted, now, true);
    }

    /// The operator weights (`lvs-ctl weight`, SNMP SET) beside the state file: what
    /// they set is wanted, not drift. A file that cannot be read keeps the last ones.
    fn load_weights(&mut self) {
        match super::weights::load(&super::weights::path_for(&self.state)) {
            Ok(w) => self.health.weights = w,
            Err(e) => once(&mut self.logged, format!("weights:{e}"), log::Level::Warn, &e),
        }
    }

    /// Re-read the kernel; the configured services that are not what follow committed,
    /// with how many changes apart.
    fn resync(&mut self) -> HashMap<usize, usize> {
        let mut drifted = HashMap::new();
        match self.backend.read() {
            Ok(k) => {
                let ki = service_index(&k);
                for (i, v) in self.cfg.services.iter().enumerate() {
                    let key = v.service.key;
                    let mine = self.index.get(&key).map(|&j| &self.committed.services[j]);
                    let theirs = ki.get(&key).map(|&j| &k.services[j]);
                    let n = diff_service(mine, theirs).len();
                    if n > 0 {
                        drifted.insert(i, n);
                    }
                }
                self.committed = k;
                self.index = ki;
                self.logged.retain(|k| !k.starts_with("read:"));
            }
            Err(e) => once(
                &mut self.logged,
                format!("read:{e}"),
                log::Level::Warn,
                &format!("cannot read the kernel's table: {e}; going on with what was committed"),
            ),
        }
        drifted
    }

    /// Recompute services `which`, commit their changes at once, announce them.
    fn update(&mut self, which: &[usize], drifted: &HashMap<usize, usize>, now: Stamp, retry: bool) {
        struct Plan {
            i: usize,
            want: Service,
            notes: Vec<Note>,
            changes: usize,
        }
        let mut plans = Vec::with_capacity(which.len());
        let mut changes = Vec::new();
        let mut refusals = Vec::new();
        for &i in which {
            let Some(v) = self.cfg.services.get(i) else { continue };
            let (want, notes, stamps) = self.health.settle(&self.cfg, v, now);
            self.dirty |= stamps;
            for n in &notes {
                if let Note::Out {
                    placement: Placement::Draining { until },
                    ..
                } = n
                {
                    self.deadlines.insert((until.mono_ns, i));
                }
            }
            let cur = self.index.get(&v.service.key).map(|&j| &self.committed.services[j]);
            let c = diff_service(cur, Some(&want));
            if let Err(e) = c.iter().try_for_each(|c| self.backend.check(c)) {
                refusals.push((v.service.key, e));
                continue;
            }
            let n = c.len();
            changes.extend(c);
            plans.push(Plan {
                i,
                want,
                notes,
                changes: n,
            });
        }
        for (key, e) in refusals {
            let svc = health::service_name(&key);
            once(
                &mut self.logged,
                format!("check:{svc}:{e}"),
                log::Level::Error,
                &format!("service {svc}: {e}; it is left as it is"),
            );
        }
        if !changes.is_empty() {
            if let Err(e) = self.backend.commit(&self.committed, &changes) {
                if retry {
                    log::warn(&format!(
                        "the kernel refused a change ({e}); reading its table again and retrying"
                    ));
                    let drift = self.resync();
                    let mut all = drifted.clone();
                    all.extend(drift);
                    return self.update(which, &all, now, false);
                }
                log::error(&format!(
                    "the kernel refused a change ({e}); nothing was changed, the next interval tries again"
                ));
                self.save_if_dirty(now);
                return;
            }
            // The services as committed, without replaying each change: follow never
            // removes a service, so positions stay.
            for p in plans.iter().filter(|p| p.changes > 0) {
                let key = p.want.key;
                match self.index.get(&key) {
                    Some(&j) => self.committed.services[j] = p.want.clone(),
                    None => {
                        self.index.insert(key, self.committed.services.len());
                        self.committed.services.push(p.want.clone());
                    }
                }
            }
        }
        let mono = now.mono_ns;
        for p in plans {
            let v = &self.cfg.services[p.i];
            let key = v.service.key;
            if let Some(n) = drifted.get(&p.i).filter(|_| p.changes > 0) {
                let e = Event::new(Kind::DriftRepaired, &health::service_name(&key), mono).with("changes", n);
                self.sink.emit(&e);
            }
            let now_shown = shown_of(&p.notes);
            let prev = self.shown.get(&key).cloned().unwrap_or_default();
            if prev != now_shown {
                for e in events_of(
                    &join::with_joined(&self.health, v),
                    &prev,
                    &now_shown,
                    &p.notes,
                    &p.want,
                    mono,
                ) {
                    self.sink.emit(&e);
                }
                if now_shown == Shown::default() {
                    self.shown.remove(&key);
                } else {
                    self.shown.insert(key, now_shown);
                }
            }
        }
        self.sink.flush();
        self.save_if_dirty(now);
    }

    /// A new configuration (HUP): re-read the kernel and make every service right.
    pub fn reload(&mut self, cfg: Config, now: Stamp) {
        if let Some(k) = cfg.backend.filter(|k| *k != self.backend.kind()) {
            log::warn(&format!(
                "the configuration now names the {} backend; follow goes on with {} until it is restarted",
                k.name(),
                self.backend.kind().name()
            ));
        }
        self.cfg = cfg;
        let effects = self.joins.reconfigure(&self.cfg, &mut self.health, now);
        self.effects(effects, now, &mut BTreeSet::new());
        self.health.retain_configured(&self.cfg);
        let keys: HashSet<ServiceKey> = self.cfg.services.iter().map(|v| v.service.key).collect();
        self.shown.retain(|k, _| keys.contains(k));
        self.deadlines.clear();
        self.index_hosts();
        self.dirty = true;
        let drifted = self.resync();
        self.update(&self.all(), &drifted, now, true);
    }

    /// One line for USR1.
    pub fn summary(&self) -> String {
        let down: usize = self.health.down.values().map(|h| h.len()).sum();
        let sorry = self.shown.values().filter(|s| s.sorry.is_some()).count();
        format!(
            "following {} services: {down} hosts down, {} maintenance files, {} real servers out, {sorry} sorry servers in, {} joined, {} waiting for their check",
            self.cfg.services.len(),
            self.health.maintenance.len(),
            self.health.out.len(),
            self.health.joined.len(),
            self.joins.candidates()
        )
    }

    pub fn flush(&mut self) {
        self.sink.flush();
    }

    /// The events printed (for tests).
    pub fn sink(&self) -> &Sink<W> {
        &self.sink
    }
}

/// The health a previous follower left, if it wrote it in this boot (the file is in
/// /run, but --state may point elsewhere; the kernel's boot_id tells). A follower still running with this
/// state file is refused: two would fight over the table.
fn restore(path: &Path, now: Stamp) -> Result<Health, Error> {
    match health::load_state(path) {
        Ok(Some((_, w))) if health::writer_alive(&w) && w.pid != std::process::id() as i32 => Err(Error::Io(format!(
            "{}: follower pid {} is running with this state file; one follower per state file",
            path.display(),
            w.pid
        ))),
        Ok(Some((h, w))) if w.boot == health::boot_id() && w.boot != 0 && w.written.mono_ns <= now.mono_ns => Ok(h),
        Ok(_) => Ok(Health::default()),
        Err(e) => {
            log::warn(&format!("{e}; starting from nothing"));
            Ok(Health::default())
        }
    }
}

/// The intervals of the checks joiners get.
fn every_of(cfg: &Config, checks: &super::join_checks::Checks) -> HashMap<String, join::Every> {
    cfg.services
        .iter()
        .filter_map(|v| v.check.as_deref())
        .filter_map(|c| checks.every(c).map(|e| (c.to_string(), e)))
        .collect()
}

/// Follow mon-check's events on stdin (and hb-watch's, there or on `--events`) until
/// TERM/INT (Ok) or the end of stdin. `mon`: mon-check's section, when a service may be
/// joined (join_checks::load).
pub fn run(
    args: &FollowArgs,
    cfg: Config,
    mon: Option<crate::tools::mon_check::sched::config::Config>,
    backend: Box<dyn Backend>,
) -> Result<(), Error> {
    let mut rl = RunLoop::new().map_err(|e| Error::Io(format!("cannot install the signal handlers: {e}")))?;
    let interval = args
        .interval
        .max(Duration::from_millis(10))
        .as_nanos()
        .min(u64::MAX as u128 / 2) as u64;
    let now = Stamp::now();
    let health = restore(&args.state, now)?;
    let sink = Sink::stdout(args.json, "the table and the state file are still kept");
    let mut checks =
        super::join_checks::Checks::new(mon).map_err(|e| Error::Io(format!("cannot make the checks' pipe: {e}")))?;
    // hb-watch's events, if they come apart from mon-check's: a FIFO follow makes (0600,
    // one planted by someone else refused), opened read-write so that a writer that
    // goes and comes back never ends it.
    let events = match &args.events {
        None => None,
        Some(p) => Some(crate::wire::fifo::Fifo::open(p, None).map_err(|e| Error::Io(e.to_string()))?),
    };
    let mut f = Follow::new(cfg, backend, sink, args.state.clone(), health, now)?;
    f.set_every(every_of(&f.cfg, &checks));
    f.save(now).map_err(Error::Io)?;
    if let Some(dir) = f.cfg.maintenance_dir.clone() {
        let names = scan_maintenance(&dir, &mut f.logged);
        f.health.set_maintenance(names, now);
    }
    f.start(now);
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| crate::config::DEFAULT_CONFIG.into());
    let stdin = std::io::stdin();
    let fd = std::os::fd::AsFd::as_fd(&stdin);
    let mut buf = vec![0u8; 64 * 1024];
    let mut next_tick = now.mono_ns.saturating_add(interval);
    loop {
        for d in f.due_checks(Stamp::now()) {
            checks.start(d);
        }
        let deadline = f.next_deadline().map_or(next_tick, |d| d.min(next_tick));
        let ev_fd = events.as_ref().map(std::os::fd::AsFd::as_fd);
        let ready = rl.wait(&[Some(fd), Some(checks.fd()), ev_fd], deadline);
        if rl.signals().stop() {
            f.flush();
            return Ok(());
        }
        if rl.signals().take_reload() {
            let loaded =
                config::load(&config_path).and_then(|c| super::join_checks::load(&config_path, &c).map(|m| (c, m)));
            match loaded {
                Ok((c, m)) => {
                    log::info(&format!("{}: reloaded", config_path.display()));
                    checks.set(m);
                    f.set_every(every_of(&c, &checks));
                    f.reload(c, Stamp::now());
                }
                Err(e) => log::error(&format!("{e}; the configuration in use is kept")),
            }
        }
        if rl.signals().take_usr1() {
            log::info(&f.summary());
        }
        if ready.has(0) {
            // One read of what poll said is there: it does not block.
            match nix::unistd::read(0, &mut buf) {
                Ok(0) => {
                    f.input_end(Stamp::now());
                    f.flush();
                    return Err(Error::InputClosed);
                }
                Ok(n) => f.input(&buf[..n], Stamp::now()),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(Error::Io(format!("stdin: {e}"))),
            }
        }
        if ready.has(1) {
            for r in checks.results() {
                f.checked(r.id, r.ok, &r.status, &r.line, Stamp::now(), args.interval);
            }
        }
        if let (true, Some(ev)) = (ready.has(2), &events) {
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(ev)), &mut buf) {
                Ok(n) => f.input_events(&buf[..n], Stamp::now()),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => {
                    let p = args.events.as_deref().unwrap_or(Path::new("--events"));
                    return Err(Error::Io(format!("{}: {e}", p.display())));
                }
            }
        }
        let now = Stamp::now();
        if now.mono_ns >= next_tick {
            f.tick(now);
            next_tick = now.mono_ns.saturating_add(interval);
        }
        f.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::config::{OnFailure, Real};
    use crate::tools::lvs_ctl::model::Dest;
    use crate::tools::lvs_ctl::run::tests::Memory;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn splits_words_as_sh_does() {
        assert_eq!(
            split_words(r#"a 'b c' d'e'f 'it'\''s' "x \"y\"" \ z"#).unwrap(),
            ["a", "b c", "def", "it's", "x \"y\"", " z"]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("a 'b").is_err());
        assert!(split_words("a \\").is_err());
        assert!(split_words("\"a").is_err());
    }

    #[test]
    fn parses_mon_checks_lines_in_both_forms() {
        let line = "host-down web2 ts=2026-11-20T22:30:00.123Z mono=5000 service=web/http status=CRITICAL was=OK line='connect to 10.0.0.2:80: Connection refused'";
        let want = HostEvent {
            up: false,
            host: "web2".into(),
            check: "web/http".into(),
            status: "CRITICAL".into(),
            line: "connect to 10.0.0.2:80: Connection refused".into(),
        };
        assert_eq!(parse_line(line), Ok(want.clone()));
        let json = r#"{"event":"host-down","subject":"web2","ts":"2026-11-20T22:30:00.123Z","mono":5000,"service":"web/http","status":"CRITICAL","was":"OK","line":"connect to 10.0.0.2:80: Connection refused"}"#;
        assert_eq!(parse_line(json), Ok(want));
        let up =
            parse_line("host-up web2 ts=x mono=1 service=web/http status=OK was=CRITICAL line='HTTP OK'\r").unwrap();
        assert!(up.up);
        assert_eq!(
            parse_line("service-failing web/http ts=x status=CRITICAL"),
            Err(Skip::NotHost)
        );
        assert_eq!(parse_line(""), Err(Skip::NotHost));
        assert_eq!(parse_line("node-dead n2 ts=x"), Err(Skip::Unknown("node-dead".into())));
        assert!(matches!(parse_line("host-down"), Err(Skip::Malformed(_))));
        assert!(matches!(parse_line("host-down web2 ts=x"), Err(Skip::Malformed(_))));
        assert!(matches!(
            parse_line("host-down 'web2 service=a"),
            Err(Skip::Malformed(_))
        ));
        assert!(matches!(parse_line("{\"event\":"), Err(Skip::Malformed(_))));
        assert!(matches!(parse_line("{\"event\":\"host-up\"}"), Err(Skip::Malformed(_))));
        assert!(matches!(parse_line("[1]"), Err(Skip::Unknown(_))));
    }

    #[test]
    fn what_events_print_reads_back() {
        for (host, line) in [
            ("web2", "plain"),
            ("web 2", "it's \"quoted\" $x `y` \\z"),
            ("wéb", "tab\there\nnewline"),
            ("h", ""),
        ] {
            let e = Event::new(Kind::HostDown, host, 1)
                .with("service", "web/http")
                .with("status", "CRITICAL")
                .with("was", "untested")
                .with("line", line);
            let clean = |s: &str| {
                s.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect::<String>()
            };
            for text in [e.to_line(), e.to_json()] {
                let back = parse_line(&text).unwrap();
                assert_eq!(back.host, host);
                assert_eq!(back.check, "web/http");
                if text.starts_with('{') {
                    assert_eq!(back.line, line);
                } else {
                    assert_eq!(back.line, clean(line), "{text}");
                }
            }
        }
    }

    #[test]
    fn random_lines_never_panic_and_printed_events_read_back() {
        // The fuzz target's property, on a fixed stream of odd strings.
        let alphabet: Vec<char> = "ab =\'\"\\\t\n\r\u{1}\u{7f}{}[]:é\u{2028}-$`".chars().collect();
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..5000 {
            let mut word = |max: u64, min: u64| -> String {
                let n = min + next() % max;
                (0..n)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            };
            let host = word(6, 1);
            let reason = word(12, 0);
            let junk = word(40, 0);
            let _ = parse_line(&junk);
            let _ = parse_line(&format!("host-down {junk}"));
            let _ = health::parse_state(&junk);
            let f = |k: &str| (k.to_string(), junk.clone());
            let _ = Announce::read(&[
                ("t".into(), "join".into()),
                f("service"),
                f("addr"),
                f("port"),
                f("weight"),
            ]);
            if host.trim().is_empty() || host.contains('=') {
                continue;
            }
            let ev = Event::new(Kind::HostDown, &host, 1)
                .with("service", "web/http")
                .with("line", &reason);
            let clean = |s: &str| {
                s.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect::<String>()
            };
            let back = parse_line(&ev.to_json()).unwrap();
            assert_eq!(
                (back.host.as_str(), back.line.as_str()),
                (host.as_str(), reason.as_str())
            );
            let text = ev.to_line();
            let back = parse_line(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!((back.host, back.line), (clean(&host), clean(&reason)), "{text}");
        }
    }

    #[test]
    fn lines_are_assembled_and_bounded() {
        let mut l = Lines::default();
        assert!(l.feed(b"abc").is_empty());
        assert_eq!(
            l.feed(b"def\ngh\r\ni"),
            [Ok(String::from("abcdef")), Ok(String::from("gh"))]
        );
        assert_eq!(l.finish(), Some(Ok(String::from("i"))));
        assert_eq!(l.finish(), None);
        let big = vec![b'x'; crate::events::read::LINE_MAX + 1];
        assert_eq!(l.feed(&big), [Err("a line longer than 64 KiB")]);
        assert!(l.feed(&big).is_empty(), "said once per line");
        assert_eq!(l.feed(b"tail\nnext\n"), [Ok(String::from("next"))]);
        assert_eq!(l.feed(b"\xff\n"), [Err("a line that is not UTF-8")]);
    }

    /// A Memory backend whose commits and reads are counted from outside.
    struct Shared(Rc<RefCell<Rec>>);
    struct Rec {
        mem: Memory,
        commits: Vec<Vec<Change>>,
        reads: usize,
    }

    impl Backend for Shared {
        fn kind(&self) -> backend::Kind {
            backend::Kind::Nft
        }
        fn read(&mut self) -> backend::Result<Table> {
            let mut r = self.0.borrow_mut();
            r.reads += 1;
            r.mem.read()
        }
        fn check(&self, c: &Change) -> backend::Result<()> {
            self.0.borrow().mem.check(c)
        }
        fn commit(&mut self, current: &Table, changes: &[Change]) -> backend::Result<()> {
            let mut r = self.0.borrow_mut();
            r.mem.commit(current, changes)?;
            r.commits.push(changes.to_vec());
            Ok(())
        }
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: crate::tools::lvs_ctl::model::Proto::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port,
        }
    }

    fn real(last: u8, host: &str) -> Real {
        Real {
            dest: Dest::new(format!("10.0.0.{last}").parse().unwrap(), 80),
            host: host.into(),
        }
    }

    fn virt(port: u16, reals: Vec<Real>) -> Virtual {
        let mut s = Service::new(key(port));
        s.scheduler = "rr".into();
        Virtual {
            service: s,
            reals,
            check: Some("web/http".into()),
            on_failure: OnFailure::Quiesce,
            drain: None,
            quorum: 0,
            sorry: None,
            join: None,
        }
    }

    fn setup(cfg: Config) -> (Follow<Vec<u8>>, Rc<RefCell<Rec>>, tempfile::TempDir) {
        let rec = Rc::new(RefCell::new(Rec {
            mem: Memory::new(),
            commits: Vec::new(),
            reads: 0,
        }));
        let d = tempfile::tempdir().unwrap();
        let sink = Sink::new(Vec::new(), false, "test");
        let mut f = Follow::new(
            cfg,
            Box::new(Shared(rec.clone())),
            sink,
            d.path().join("state.json"),
            Health::default(),
            at(0),
        )
        .unwrap();
        f.start(at(0));
        (f, rec, d)
    }

    fn at(s: u64) -> Stamp {
        Stamp {
            mono_ns: 1_000_000_000 + s * 1_000_000_000,
            unix_ms: 1_795_000_000_000 + s * 1000,
        }
    }

    fn three_services() -> Config {
        Config {
            backend: None,
            maintenance_dir: None,
            depool_threshold: 0.0,
            services: vec![
                virt(80, vec![real(1, "web1"), real(2, "web2")]),
                virt(443, vec![real(1, "web1"), real(3, "web3")]),
                virt(8080, vec![real(4, "web4"), real(5, "web5")]),
            ],
        }
    }

    /// The events printed since the last call, as `kind subject` plus the fields asked.
    fn take_events(f: &mut Follow<Vec<u8>>, seen: &mut usize) -> Vec<String> {
        let text = String::from_utf8(f.sink().get_ref().clone()).unwrap();
        let lines: Vec<String> = text.lines().skip(*seen).map(str::to_string).collect();
        *seen += lines.len();
        lines
    }

    fn touched(changes: &[Change]) -> BTreeSet<u16> {
        changes
            .iter()
            .map(|c| match c {
                Change::AddService(s) | Change::EditService(s) => s.key,
                Change::AddDest(k, _) | Change::EditDest(k, _) => *k,
                Change::DelService(k) | Change::DelDest(k, ..) => *k,
                Change::Flush | Change::Zero(_) => panic!("{c:?}"),
            })
            .map(|k| match k {
                ServiceKey::Addr { port, .. } => port,
                ServiceKey::Fwmark { .. } => 0,
            })
            .collect()
    }

    #[test]
    fn a_host_event_commits_only_its_services_without_reading_the_kernel() {
        let (mut f, rec, _d) = setup(three_services());
        assert_eq!(
            rec.borrow().mem.table.services.len(),
            3,
            "start applied the configuration"
        );
        assert_eq!(rec.borrow().commits.len(), 1);
        let reads = rec.borrow().reads;
        let mut seen = 0;
        assert!(
            take_events(&mut f, &mut seen).is_empty(),
            "nothing to announce at a healthy start"
        );

        f.input(
            b"host-down web2 ts=x mono=1 service=web/http status=CRITICAL was=OK line='refused'\n",
            at(1),
        );
        {
            let r = rec.borrow();
            assert_eq!(r.reads, reads, "no read per event");
            assert_eq!(r.commits.len(), 2);
            assert_eq!(touched(&r.commits[1]), [80].into());
            assert_eq!(r.commits[1].len(), 1, "{:?}", r.commits[1]);
            let s = r.mem.table.service(&key(80)).unwrap();
            assert_eq!(s.dest("10.0.0.2".parse().unwrap(), 80).unwrap().weight, 0);
        }
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].starts_with("real-down 10.0.0.2:80 ts="), "{}", ev[0]);
        assert!(
            ev[0].ends_with(
                "service=tcp/192.0.2.10:80 host=web2 action=quiesce weight=0 reason='CRITICAL: refused' was=up"
            ),
            "{}",
            ev[0]
        );

        // web1 is in two services: one commit touching both, nothing else.
        f.input(
            b"host-down web1 ts=x mono=1 service=web/http status=CRITICAL was=OK line=x\nhost-down web9 service=web/http\nhost-down web4 service=other/check\n",
            at(2),
        );
        assert_eq!(touched(rec.borrow().commits.last().unwrap()), [80, 443].into());
        assert_eq!(rec.borrow().commits.len(), 3);
        assert_eq!(take_events(&mut f, &mut seen).len(), 2);

        // The same news again changes nothing and commits nothing.
        f.input(b"host-down web1 service=web/http status=CRITICAL line=x\n", at(3));
        assert_eq!(rec.borrow().commits.len(), 3);

        // Back up, in the JSON form.
        f.input(
            br#"{"event":"host-up","subject":"web2","service":"web/http","status":"OK","line":"fine"}
"#,
            at(4),
        );
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 1);
        assert!(
            ev[0].starts_with("real-up 10.0.0.2:80 ") && ev[0].ends_with("weight=1 was=down"),
            "{}",
            ev[0]
        );
        assert_eq!(touched(rec.borrow().commits.last().unwrap()), [80].into());

        // The state file says it, with our pid.
        let (h, w) = health::load_state(&f.state).unwrap().unwrap();
        assert_eq!(w.pid, std::process::id() as i32);
        assert!(h.down["web/http"].contains_key("web1"));
        assert!(!h.down["web/http"].contains_key("web2"));
        assert_eq!(health::load_live_state(&f.state), Some(h));
    }

    #[test]
    fn drift_is_repaired_at_the_interval() {
        let (mut f, rec, _d) = setup(three_services());
        let mut seen = 0;
        // Someone sets a weight behind follow's back, and removes a real server.
        {
            let mut r = rec.borrow_mut();
            let t = &mut r.mem.table;
            t.services[0].dests[0].weight = 7;
            t.services[2].dests.pop();
        }
        let commits = rec.borrow().commits.len();
        f.tick(at(1));
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(ev[0].starts_with("drift-repaired tcp/192.0.2.10:80 ") && ev[0].ends_with("changes=1"));
        assert!(ev[1].starts_with("drift-repaired tcp/192.0.2.10:8080 "));
        let r = rec.borrow();
        assert_eq!(r.commits.len(), commits + 1);
        assert_eq!(touched(r.commits.last().unwrap()), [80, 8080].into());
        assert_eq!(r.mem.table.services[0].dests[0].weight, 1);
        drop(r);
        // Nothing drifted: nothing is committed.
        f.tick(at(2));
        assert_eq!(rec.borrow().commits.len(), commits + 1);
        assert!(take_events(&mut f, &mut seen).is_empty());
    }

    #[test]
    fn an_operator_weight_is_not_drift() {
        let (mut f, rec, d) = setup(three_services());
        let mut seen = 0;
        // What `lvs-ctl weight` does: the file, then the kernel.
        let id = RealId {
            service: key(80),
            real: "10.0.0.1:80".parse().unwrap(),
        };
        let w = [(id, 7)].into_iter().collect();
        super::super::weights::save(&d.path().join(super::super::weights::FILE_NAME), &w).unwrap();
        rec.borrow_mut().mem.table.services[0].dests[0].weight = 7;
        let commits = rec.borrow().commits.len();
        f.tick(at(1));
        assert!(take_events(&mut f, &mut seen).is_empty());
        assert_eq!(rec.borrow().commits.len(), commits, "nothing repaired");
        assert_eq!(rec.borrow().mem.table.services[0].dests[0].weight, 7);
        // Reset (the file forgets it): the configured weight comes back at the next tick.
        super::super::weights::save(&d.path().join(super::super::weights::FILE_NAME), &Default::default()).unwrap();
        f.tick(at(2));
        assert_eq!(rec.borrow().mem.table.services[0].dests[0].weight, 1);
    }

    #[test]
    fn a_refused_commit_changes_nothing_and_is_tried_again() {
        let (mut f, rec, _d) = setup(three_services());
        let mut seen = 0;
        rec.borrow_mut().mem.fail_at = Some(0);
        f.input(b"host-down web4 service=web/http status=CRITICAL line=x\n", at(1));
        assert!(
            take_events(&mut f, &mut seen).is_empty(),
            "no event for what did not happen"
        );
        assert_eq!(rec.borrow().mem.table.services[2].dests[0].weight, 1);
        rec.borrow_mut().mem.fail_at = None;
        f.tick(at(2));
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].starts_with("real-down 10.0.0.4:80 "));
        assert_eq!(rec.borrow().mem.table.services[2].dests[0].weight, 0);
    }

    #[test]
    fn drain_then_removal_then_back() {
        let mut cfg = three_services();
        cfg.services[2].on_failure = OnFailure::Remove;
        cfg.services[2].drain = Some(Duration::from_secs(10));
        let (mut f, rec, _d) = setup(cfg);
        let mut seen = 0;
        f.input(b"host-down web4 service=web/http status=CRITICAL line=x\n", at(1));
        let ev = take_events(&mut f, &mut seen);
        assert!(ev[0].contains(" action=drain weight=0 until="), "{}", ev[0]);
        assert_eq!(f.next_deadline(), Some(at(11).mono_ns));
        f.expire(at(10));
        assert!(take_events(&mut f, &mut seen).is_empty());
        f.expire(at(11));
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].starts_with("real-drained 10.0.0.4:80 ") && ev[0].ends_with("action=remove drain=10s"));
        assert_eq!(rec.borrow().mem.table.services[2].dests.len(), 1);
        assert_eq!(touched(rec.borrow().commits.last().unwrap()), [8080].into());
        f.input(b"host-up web4 service=web/http status=OK line=x\n", at(12));
        let ev = take_events(&mut f, &mut seen);
        assert!(ev[0].starts_with("real-up 10.0.0.4:80 ") && ev[0].ends_with("weight=1 was=down"));
        assert_eq!(rec.borrow().mem.table.services[2].dests.len(), 2);
    }

    #[test]
    fn sorry_server_and_depool_refusal_are_announced() {
        let mut cfg = three_services();
        cfg.depool_threshold = 0.5;
        cfg.services[0].sorry = Some(Dest::new("10.0.0.9".parse().unwrap(), 80));
        cfg.services[0].quorum = 1;
        cfg.services[2].on_failure = OnFailure::Remove;
        let (mut f, _rec, _d) = setup(cfg);
        let mut seen = 0;
        f.input(b"host-down web4 service=web/http status=CRITICAL line=a\n", at(1));
        f.input(b"host-down web5 service=web/http status=CRITICAL line=b\n", at(2));
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 2);
        assert!(ev[0].starts_with("real-down 10.0.0.4:80 ") && ev[0].contains("action=remove reason="));
        assert!(
            ev[1].starts_with("depool-refused 10.0.0.5:80 ")
                && ev[1].ends_with("weight=1 health=down max-out=1 reason='CRITICAL: b'"),
            "{}",
            ev[1]
        );
        // Service 80 with threshold 0.5 keeps one of two in, so its live weight never
        // falls below 1: no sorry server. Without the threshold both go and it comes.
        f.cfg.depool_threshold = 0.0;
        f.input(b"host-down web1 service=web/http status=CRITICAL line=a\n", at(3));
        let ev = take_events(&mut f, &mut seen);
        assert!(ev.iter().any(|e| e.starts_with("real-down 10.0.0.1:80 ")));
        f.input(b"host-down web2 service=web/http status=CRITICAL line=a\n", at(4));
        let ev = take_events(&mut f, &mut seen);
        assert!(
            ev.iter()
                .any(|e| e.starts_with("sorry-in 10.0.0.9:80 ") && e.ends_with("live-weight=0 quorum=1 action=quiesce")),
            "{ev:?}"
        );
        f.input(b"host-up web2 service=web/http status=OK line=a\n", at(5));
        let ev = take_events(&mut f, &mut seen);
        assert!(
            ev.iter()
                .any(|e| e.starts_with("sorry-out 10.0.0.9:80 ") && e.ends_with("live-weight=1 quorum=1")),
            "{ev:?}"
        );
    }

    #[test]
    fn maintenance_files_take_servers_out_at_the_interval() {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = three_services();
        cfg.maintenance_dir = Some(d.path().to_path_buf());
        let (mut f, rec, _s) = setup(cfg);
        let mut seen = 0;
        std::fs::write(d.path().join("10.0.0.1"), "").unwrap();
        std::fs::write(d.path().join(".10.0.0.2.swp"), "").unwrap();
        f.tick(at(1));
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 2, "10.0.0.1 is in two services: {ev:?}");
        assert!(
            ev[0].starts_with("maintenance-in 10.0.0.1:80 ")
                && ev[0].ends_with("action=quiesce weight=0 file=10.0.0.1 was=up")
        );
        assert_eq!(touched(rec.borrow().commits.last().unwrap()), [80, 443].into());
        std::fs::remove_file(d.path().join("10.0.0.1")).unwrap();
        f.tick(at(2));
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 2);
        assert!(ev[0].starts_with("maintenance-out 10.0.0.1:80 ") && ev[0].ends_with("weight=1 was=maintenance"));
    }

    #[test]
    fn bad_lines_are_skipped_and_a_reload_remaps() {
        let (mut f, rec, _d) = setup(three_services());
        let mut seen = 0;
        f.input(b"garbage\n'unterminated\n\xff\xfe\n{\"x\":1}\nhost-down\n", at(1));
        assert!(take_events(&mut f, &mut seen).is_empty());
        // A host no real server is: remembered, and a reload that maps it acts on it.
        f.input(b"host-down web7 service=web/http status=CRITICAL line=x\n", at(2));
        assert!(take_events(&mut f, &mut seen).is_empty());
        let mut cfg = three_services();
        cfg.services[2].reals.push(real(7, "web7"));
        f.reload(cfg, at(3));
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].starts_with("real-down 10.0.0.7:80 "));
        let r = rec.borrow();
        let s = &r.mem.table.services[2];
        assert_eq!(s.dest("10.0.0.7".parse().unwrap(), 80).unwrap().weight, 0);
    }

    fn joinable() -> Config {
        let mut c = three_services();
        c.services[0].join = Some(
            crate::tools::lvs_ctl::join::JoinRule::resolve(
                &crate::tools::lvs_ctl::config::JoinEntry {
                    allow: vec!["w7".into()],
                    weight_max: Some(3),
                    lease: Some(Duration::from_secs(10)),
                },
                crate::tools::lvs_ctl::model::Fwd::Masq,
            )
            .unwrap(),
        );
        c
    }

    /// w7's join at `t`, its check passed at once: 10.0.0.7:80 of service 80.
    fn admit_w7(f: &mut Follow<Vec<u8>>, t: u64) -> RealId {
        let id = RealId {
            service: key(80),
            real: "10.0.0.7:80".parse().unwrap(),
        };
        f.input(JOIN_W7, at(t));
        assert_eq!(f.due_checks(at(t)).len(), 1);
        f.checked(id, true, "OK", "", at(t), Duration::from_secs(1));
        id
    }

    /// `ev` is one event, starting with `head` and ending with `tail`.
    fn only_event(ev: &[String], head: &str, tail: &str) {
        assert!(
            ev.len() == 1 && ev[0].starts_with(head) && ev[0].ends_with(tail),
            "want `{head}... {tail}`: {ev:#?}"
        );
    }

    /// 10.0.0.7:80 in service 80's table, if it is there.
    fn joiner_in(rec: &Rc<RefCell<Rec>>) -> Option<Dest> {
        let r = rec.borrow();
        r.mem
            .table
            .service(&key(80))?
            .dest("10.0.0.7".parse().unwrap(), 80)
            .cloned()
    }

    const JOIN_W7: &[u8] =
        b"message w7 ts=x mono=1 src=w7 seq=3 hg=1 t=join service=tcp/192.0.2.10:80 addr=10.0.0.7 port=80 weight=9\n";

    #[test]
    fn hb_watch_s_join_messages_add_a_joiner_once_its_check_passes() {
        let (mut f, rec, _d) = setup(joinable());
        let mut seen = 0;
        let commits = rec.borrow().commits.len();
        let id = RealId {
            service: key(80),
            real: "10.0.0.7:80".parse().unwrap(),
        };
        // Noise of hb-watch's is read and left alone; a message without its own src
        // (a script's forgery) is no join.
        f.input(
            b"node-up w7 ts=x mono=1 st=active\nlink-up w7 ts=x link=a\nmessage w7 ts=x src=w8 t=join service=tcp/192.0.2.10:80 addr=10.0.0.8 port=80\n",
            at(1),
        );
        f.input(JOIN_W7, at(1));
        assert!(take_events(&mut f, &mut seen).is_empty());
        assert_eq!(rec.borrow().commits.len(), commits, "not before its check");
        assert!(f.logged.iter().all(|k| !k.starts_with("unknown:")), "{:?}", f.logged);
        let due = f.due_checks(at(1));
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].host.as_str(), due[0].check.as_str()), ("10.0.0.7", "web/http"));
        f.checked(id, true, "OK", "", at(2), Duration::from_secs(1));
        let ev = take_events(&mut f, &mut seen);
        only_event(
            &ev,
            "real-joined 10.0.0.7:80 ",
            "service=tcp/192.0.2.10:80 host=10.0.0.7 node=w7 weight=3",
        );
        {
            let r = rec.borrow();
            assert_eq!(touched(r.commits.last().unwrap()), [80].into());
            let d = r
                .mem
                .table
                .service(&key(80))
                .unwrap()
                .dest("10.0.0.7".parse().unwrap(), 80)
                .unwrap()
                .clone();
            assert_eq!((d.weight, d.fwd), (3, crate::tools::lvs_ctl::model::Fwd::Masq));
        }
        // Kept in the state file, for a restarted follower, apply and status.
        let h = health::load_live_state(&f.state).unwrap();
        assert_eq!(h.joined[&id].node, "w7");
        // Its check fails while in: out as the service's on-failure says, and back.
        f.checked(id, false, "CRITICAL", "refused", at(3), Duration::from_secs(1));
        let ev = take_events(&mut f, &mut seen);
        assert!(
            ev[0].starts_with("real-down 10.0.0.7:80 ") && ev[0].contains("host=10.0.0.7 action=quiesce weight=0"),
            "{ev:?}"
        );
        f.checked(id, true, "OK", "", at(4), Duration::from_secs(1));
        let ev = take_events(&mut f, &mut seen);
        assert!(
            ev[0].starts_with("real-up 10.0.0.7:80 ") && ev[0].contains("weight=3"),
            "{ev:?}"
        );
        // A drift repair at the interval leaves it in.
        f.tick(at(5));
        assert!(take_events(&mut f, &mut seen).is_empty());
        assert!(joiner_in(&rec).is_some());
        // Its node dies (JSON, as hb-watch --json prints it): out at once.
        f.input(
            br#"{"event":"node-dead","subject":"w7","ts":"x","mono":9,"held":""}
"#,
            at(6),
        );
        let ev = take_events(&mut f, &mut seen);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(
            ev[0].starts_with("real-left 10.0.0.7:80 ") && ev[0].ends_with("node=w7 reason=node-dead"),
            "{}",
            ev[0]
        );
        assert!(joiner_in(&rec).is_none());
        assert!(health::load_live_state(&f.state).unwrap().joined.is_empty());
    }

    #[test]
    fn leave_lease_and_refusal() {
        let (mut f, rec, _d) = setup(joinable());
        let mut seen = 0;
        let id = admit_w7(&mut f, 1);
        assert_eq!(take_events(&mut f, &mut seen).len(), 1);
        f.input(
            b"message w7 ts=x src=w7 t=leave service=tcp/192.0.2.10:80 addr=10.0.0.7 port=80 weight=9\n",
            at(2),
        );
        let ev = take_events(&mut f, &mut seen);
        assert!(
            ev[0].starts_with("real-left 10.0.0.7:80 ") && ev[0].ends_with("reason=leave"),
            "{ev:?}"
        );
        // Again, and silence: the lease (10 s from the last join) takes it out.
        f.input(JOIN_W7, at(3));
        f.due_checks(at(3));
        f.checked(id, true, "OK", "", at(3), Duration::from_secs(100));
        take_events(&mut f, &mut seen);
        assert_eq!(f.next_deadline(), Some(at(13).mono_ns));
        f.expire(at(13));
        let ev = take_events(&mut f, &mut seen);
        assert!(
            ev[0].starts_with("real-left 10.0.0.7:80 ") && ev[0].ends_with("reason=lease"),
            "{ev:?}"
        );
        // A node the rule does not name: refused, said once, nothing added.
        let commits = rec.borrow().commits.len();
        let w9 = b"message w9 ts=x src=w9 t=join service=tcp/192.0.2.10:80 addr=10.0.0.9 port=80 weight=1\n";
        f.input(w9, at(14));
        f.input(w9, at(15));
        let ev = take_events(&mut f, &mut seen);
        only_event(
            &ev,
            "join-refused w9 ",
            "service=tcp/192.0.2.10:80 real=10.0.0.9:80 reason=not-allowed",
        );
        assert!(f.due_checks(at(15)).is_empty());
        assert_eq!(rec.borrow().commits.len(), commits);
        // A bad join is logged once and moves nothing.
        f.input(
            b"message w7 ts=x src=w7 t=join service=tcp/192.0.2.10:80 addr=nowhere port=80\n",
            at(16),
        );
        assert!(take_events(&mut f, &mut seen).is_empty());
        assert!(f.logged.contains("join-bad:w7"));
    }

    #[test]
    fn a_restarted_follower_keeps_its_joiners_until_their_lease_lapses() {
        let (mut f, rec, d) = setup(joinable());
        admit_w7(&mut f, 1);
        let (h, _) = health::load_state(&f.state).unwrap().unwrap();
        drop(f);
        // The next follower starts from the state file, on the same kernel table.
        let mut g = Follow::new(
            joinable(),
            Box::new(Shared(rec.clone())),
            Sink::new(Vec::new(), false, "test"),
            d.path().join("state.json"),
            h,
            at(2),
        )
        .unwrap();
        g.start(at(2));
        let mut seen = 0;
        assert!(take_events(&mut g, &mut seen).is_empty(), "nothing changed");
        assert!(joiner_in(&rec).is_some());
        assert_eq!(g.due_checks(at(2)).len(), 1, "checked again at once");
        // No renewal: out when the lease (10 s from the join at 1) lapses.
        g.expire(at(11));
        let ev = take_events(&mut g, &mut seen);
        assert!(
            ev[0].starts_with("real-left 10.0.0.7:80 ") && ev[0].ends_with("reason=lease"),
            "{ev:?}"
        );
        assert!(joiner_in(&rec).is_none());
    }
}
