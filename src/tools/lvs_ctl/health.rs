//! The health of the real servers as `follow` knows it, and the table the kernel should
//! hold given the configuration and that health: [`desired`], pure, so that `follow`,
//! `apply` (keeping out what a live follower holds out) and `status` agree.
//!
//! What takes a real server out:
//! - mon-check's `host-down` for the service's `check` and the real server's `host`,
//!   until its `host-up`;
//! - a file in `maintenance-dir` named as ldirectord names them: `IP:PORT`, `IP`,
//!   `HOST:PORT`, `HOST`, and the host's first label with and without the port (IPv6
//!   as `[IP]:PORT` or bare). A name without the port takes the server out of every
//!   service. Maintenance wins over a check's word, as in ldirectord;
//! - the quorum: when the live weight of a service (the configured weights of the real
//!   servers still in after the rules above) is 0 or below `quorum`, the sorry server is
//!   added and the live ones go out — keepalived's behaviour, chosen so that clients see
//!   one consistent service (the sorry page) rather than a few overloaded servers. When
//!   the live weight is back at `quorum` the sorry server goes and they come back. No
//!   hysteresis: the same health gives the same table. Without a sorry server the
//!   quorum does nothing.
//!
//! How it goes out: `on-failure: quiesce` keeps it with weight 0 (open connections go
//! on); `remove` takes it out of the table; `remove` with `drain: D` keeps it at weight
//! 0 for D from when it went out, then removes it.
//!
//! The depool threshold (PyBal's): at most `n - ceil(n × threshold)` of a service's `n`
//! real servers are out for health or maintenance at once. The ones out first stay out
//! (then the ones that failed first, then the configuration's order); the others stay
//! in with their weight and are reported ([`Note::DepoolRefused`]). They count as live
//! for the quorum: the threshold limits what failing checks take out, the quorum swap
//! to the sorry server is the whole service's and is not limited by it.
//!
//! Times are [`Stamp`]s: CLOCK_MONOTONIC for deadlines (a wall-clock step neither ends
//! nor stretches a drain) and Unix time for people. The state file lives in /run, so
//! its monotonic stamps are of this boot.

use super::config::{Config, OnFailure, Real, Virtual};
use super::model::{Info, Proto, Service, ServiceKey, Table};
use crate::base::{clock, fsio, pidfile};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// A moment, on both clocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// CLOCK_MONOTONIC, ns: what deadlines are measured on.
    pub mono_ns: u64,
    /// Unix time, ms: what people read.
    pub unix_ms: u64,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            mono_ns: clock::mono_ns(),
            unix_ms: clock::unix_ms(),
        }
    }

    pub fn after(self, d: Duration) -> Stamp {
        Stamp {
            mono_ns: self.mono_ns.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
            unix_ms: self.unix_ms.saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        }
    }

    /// RFC 3339, for events and status.
    pub fn rfc3339(self) -> String {
        clock::rfc3339_ms(self.unix_ms)
    }
}

/// A service as events and the state file name it, one shell word: `tcp/192.0.2.10:80`,
/// `udp/[2001:db8::1]:53`, `fwmark/1`, `fwmark/1/ipv6`.
pub fn service_name(k: &ServiceKey) -> String {
    match *k {
        ServiceKey::Addr { proto, addr, port } => {
            let p = match proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
                Proto::Sctp => "sctp",
            };
            format!("{p}/{}", SocketAddr::new(addr, port))
        }
        ServiceKey::Fwmark { mark, v6: false } => format!("fwmark/{mark}"),
        ServiceKey::Fwmark { mark, v6: true } => format!("fwmark/{mark}/ipv6"),
    }
}

/// The inverse of [`service_name`].
pub fn parse_service_name(s: &str) -> Option<ServiceKey> {
    let (kind, rest) = s.split_once('/')?;
    let proto = match kind {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        "fwmark" => {
            let (n, v6) = match rest.split_once('/') {
                Some((n, "ipv6")) => (n, true),
                Some(_) => return None,
                None => (rest, false),
            };
            let mark: u32 = n.parse().ok().filter(|m| *m > 0)?;
            return Some(ServiceKey::Fwmark { mark, v6 });
        }
        _ => return None,
    };
    let a: SocketAddr = rest.parse().ok()?;
    Some(ServiceKey::Addr {
        proto,
        addr: a.ip(),
        port: a.port(),
    })
}

/// One real server of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RealId {
    pub service: ServiceKey,
    pub real: SocketAddr,
}

impl RealId {
    pub fn of(v: &Virtual, r: &Real) -> RealId {
        RealId {
            service: v.service.key,
            real: SocketAddr::new(r.dest.addr, r.dest.port),
        }
    }
}

/// What mon-check said of a host that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Down {
    pub since: Stamp,
    /// mon-check's status word (CRITICAL, WARNING, UNKNOWN).
    pub status: String,
    /// Its reason line.
    pub line: String,
}

impl Down {
    /// `CRITICAL: connect to 10.0.0.2:80: refused`
    pub fn reason(&self) -> String {
        match (self.status.is_empty(), self.line.is_empty()) {
            (true, _) => self.line.clone(),
            (false, true) => self.status.clone(),
            (false, false) => format!("{}: {}", self.status, self.line),
        }
    }
}

/// What follow knows: mon-check's word on hosts, the maintenance directory, and which
/// real servers it took out and when.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Hosts mon-check said are down, by check (`GROUP/SERVICE`) and host, until up.
    pub down: BTreeMap<String, BTreeMap<String, Down>>,
    /// The names in the maintenance directory, with when each was first seen.
    pub maintenance: BTreeMap<String, Stamp>,
    /// Real servers out of their pool (weight 0, draining or removed), since when: the
    /// drain counts from here, and the depool threshold keeps these out first.
    pub out: HashMap<RealId, Stamp>,
    /// Real servers that joined at run time and passed their check (join.rs): real
    /// servers of their service as the configured ones are, until they leave.
    pub joined: HashMap<RealId, super::join::Joined>,
    /// Operator weights (tools::lvs_ctl::weights: their own file, not the state
    /// file), in place of the configured weight of a real server that is in.
    pub weights: HashMap<RealId, u32>,
}

/// Why a real server is out, or should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Down(Down),
    Maintenance {
        file: String,
        since: Stamp,
    },
    /// Healthy, but the sorry server has the service (the quorum is lost).
    Quorum,
}

impl Why {
    /// The word events and status use.
    pub fn word(&self) -> &'static str {
        match self {
            Why::Down(_) => "down",
            Why::Maintenance { .. } => "maintenance",
            Why::Quorum => "quorum",
        }
    }

    fn since(&self) -> Option<Stamp> {
        match self {
            Why::Down(d) => Some(d.since),
            Why::Maintenance { since, .. } => Some(*since),
            Why::Quorum => None,
        }
    }
}

/// How an out real server is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the table with weight 0: no new connections, the open ones go on.
    Quiesced,
    /// Weight 0 until `until`, then removed.
    Draining { until: Stamp },
    /// Not in the table.
    Removed,
}

impl Placement {
    pub fn in_table(self) -> bool {
        !matches!(self, Placement::Removed)
    }
}

/// What [`desired`] decided beyond "in, with the configured weight".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A real server out of its pool.
    Out {
        service: ServiceKey,
        real: SocketAddr,
        host: String,
        why: Why,
        placement: Placement,
    },
    /// A real server that should be out but stays in, with its weight: the depool
    /// threshold allows `max_out` of the pool out and that many already are.
    DepoolRefused {
        service: ServiceKey,
        real: SocketAddr,
        host: String,
        why: Why,
        max_out: usize,
    },
    /// The quorum is lost: the sorry server is in (and the live ones out).
    SorryIn {
        service: ServiceKey,
        sorry: SocketAddr,
        live_weight: u64,
        quorum: u64,
    },
}

impl Note {
    pub fn service(&self) -> ServiceKey {
        match self {
            Note::Out { service, .. } | Note::DepoolRefused { service, .. } | Note::SorryIn { service, .. } => *service,
        }
    }
}

/// How many of `n` real servers always stay in with depool threshold `t`:
/// ceil(n × t), with the product's rounding error (10 × 0.7 = 7.000000000000001)
/// taken off first so that an exact share is not rounded up.
pub fn min_in(n: usize, t: f64) -> usize {
    // NaN and negative shares keep nothing in.
    if t.is_nan() || t <= 0.0 {
        return 0;
    }
    let x = n as f64 * t.min(1.0) - 1e-9;
    (x.ceil().max(0.0) as usize).min(n)
}

/// The names a maintenance file may have for `r` (ldirectord's list, no DNS).
pub fn maintenance_names(r: &Real) -> Vec<String> {
    let ip = r.dest.addr;
    let port = r.dest.port;
    let mut v = vec![SocketAddr::new(ip, port).to_string(), ip.to_string()];
    let host = r.host.as_str();
    if !host.is_empty() && host.parse::<IpAddr>().is_err() {
        v.push(format!("{host}:{port}"));
        v.push(host.to_string());
        if let Some((short, _)) = host.split_once('.').filter(|(s, _)| !s.is_empty()) {
            v.push(format!("{short}:{port}"));
            v.push(short.to_string());
        }
    }
    v
}

/// A name is a maintenance file's only if it could name a real server: no dot files
/// (editors' and our own temporaries), nothing absurdly long.
pub fn is_maintenance_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.len() <= 255 && !name.contains('/')
}

impl Health {
    /// mon-check said `host` failed `check`. True if that is news.
    pub fn host_down(&mut self, check: &str, host: &str, status: &str, line: &str, now: Stamp) -> bool {
        let hosts = self.down.entry(check.to_string()).or_default();
        match hosts.get_mut(host) {
            // Still down: the reason may have changed, the time it went down has not.
            Some(d) => {
                let changed = d.status != status || d.line != line;
                d.status = status.to_string();
                d.line = line.to_string();
                changed
            }
            None => {
                hosts.insert(
                    host.to_string(),
                    Down {
                        since: now,
                        status: status.to_string(),
                        line: line.to_string(),
                    },
                );
                true
            }
        }
    }

    /// mon-check said `host` passes `check`. True if it was down.
    pub fn host_up(&mut self, check: &str, host: &str) -> bool {
        let Some(hosts) = self.down.get_mut(check) else {
            return false;
        };
        let was = hosts.remove(host).is_some();
        if hosts.is_empty() {
            self.down.remove(check);
        }
        was
    }

    /// The names now in the maintenance directory. True if they changed.
    pub fn set_maintenance(&mut self, names: BTreeSet<String>, now: Stamp) -> bool {
        let before = self.maintenance.len();
        self.maintenance.retain(|n, _| names.contains(n));
        let mut changed = self.maintenance.len() != before;
        for n in names {
            if let std::collections::btree_map::Entry::Vacant(e) = self.maintenance.entry(n) {
                e.insert(now);
                changed = true;
            }
        }
        changed
    }

    /// Forget the out stamps of real servers the configuration no longer has.
    pub fn retain_configured(&mut self, cfg: &Config) {
        let ids: std::collections::HashSet<RealId> = cfg
            .services
            .iter()
            .flat_map(|v| {
                let v = super::join::with_joined(self, v);
                v.reals.iter().map(|r| RealId::of(&v, r)).collect::<Vec<_>>()
            })
            .collect();
        self.out.retain(|id, _| ids.contains(id));
    }

    /// `r` as it is when in: with its operator weight, if it has one.
    pub fn dest_of(&self, v: &Virtual, r: &Real) -> super::model::Dest {
        let mut d = r.dest.clone();
        if let Some(&w) = self.weights.get(&RealId::of(v, r)) {
            d.weight = w;
        }
        d
    }

    fn down_of(&self, v: &Virtual, r: &Real) -> Option<&Down> {
        self.down.get(v.check.as_deref()?)?.get(&r.host)
    }

    /// Why `r` should be out for its own sake (maintenance, then its check).
    fn why_out(&self, cfg: &Config, v: &Virtual, r: &Real) -> Option<Why> {
        if cfg.maintenance_dir.is_some() && !self.maintenance.is_empty() {
            for name in maintenance_names(r) {
                if let Some(since) = self.maintenance.get(&name) {
                    return Some(Why::Maintenance {
                        file: name,
                        since: *since,
                    });
                }
            }
        }
        self.down_of(v, r).map(|d| Why::Down(d.clone()))
    }

    /// [`desired_service`], recording which real servers are now out and since when
    /// (follow does this after every decision, so that drains count from the moment a
    /// server went out). True in the second place if a stamp changed.
    pub fn settle(&mut self, cfg: &Config, v: &Virtual, now: Stamp) -> (Service, Vec<Note>, bool) {
        let (s, notes) = desired_service(cfg, v, self, now);
        let ids: Vec<RealId> = {
            let v = super::join::with_joined(self, v);
            v.reals.iter().map(|r| RealId::of(&v, r)).collect()
        };
        let mut changed = false;
        for id in ids {
            let out = notes
                .iter()
                .any(|n| matches!(n, Note::Out { real, .. } if *real == id.real));
            if out {
                if let std::collections::hash_map::Entry::Vacant(e) = self.out.entry(id) {
                    e.insert(now);
                    changed = true;
                }
            } else if self.out.remove(&id).is_some() {
                changed = true;
            }
        }
        (s, notes, changed)
    }
}

/// The table the kernel should hold for `cfg` with `health` at `now`, and what was
/// decided beyond the configuration (see the module's comment). The table's `info`
/// is zero: a diff does not look at it.
pub fn desired(cfg: &Config, health: &Health, now: Stamp) -> (Table, Vec<Note>) {
    let mut t = Table::empty(Info { version: 0, size: 0 });
    let mut notes = Vec::new();
    for v in &cfg.services {
        let (s, n) = desired_service(cfg, v, health, now);
        t.services.push(s);
        notes.extend(n);
    }
    (t, notes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    In,
    Out,
    Refused,
}

/// [`desired`] for one service of `cfg`.
pub fn desired_service(cfg: &Config, v: &Virtual, health: &Health, now: Stamp) -> (Service, Vec<Note>) {
    let v = &*super::join::with_joined(health, v);
    let key = v.service.key;
    let n = v.reals.len();
    let mut why: Vec<Option<Why>> = v.reals.iter().map(|r| health.why_out(cfg, v, r)).collect();
    let max_out = n - min_in(n, cfg.depool_threshold);

    // Who gets the places out: those already out, then the first to fail.
    let mut candidates: Vec<usize> = (0..n).filter(|&i| why[i].is_some()).collect();
    candidates.sort_by_key(|&i| {
        let out = health.out.get(&RealId::of(v, &v.reals[i])).copied();
        let since = out.or_else(|| why[i].as_ref().and_then(Why::since)).unwrap_or(now);
        (out.is_none(), since.mono_ns, i)
    });
    let mut decision = vec![Decision::In; n];
    for (rank, &i) in candidates.iter().enumerate() {
        decision[i] = if rank < max_out {
            Decision::Out
        } else {
            Decision::Refused
        };
    }

    let dests: Vec<_> = v.reals.iter().map(|r| health.dest_of(v, r)).collect();
    let live_weight: u64 = (0..n)
        .filter(|&i| decision[i] != Decision::Out)
        .map(|i| dests[i].weight as u64)
        .sum();
    let quorum_lost = v.sorry.is_some() && (live_weight == 0 || live_weight < v.quorum);
    if quorum_lost {
        for (i, d) in decision.iter_mut().enumerate() {
            if *d == Decision::In {
                why[i] = Some(Why::Quorum);
            }
            *d = Decision::Out;
        }
    }

    let mut s = v.service.clone();
    s.dests.clear();
    let mut notes = Vec::new();
    for (i, r) in v.reals.iter().enumerate() {
        let id = RealId::of(v, r);
        match decision[i] {
            Decision::In => s.dests.push(dests[i].clone()),
            Decision::Refused => {
                s.dests.push(dests[i].clone());
                notes.push(Note::DepoolRefused {
                    service: key,
                    real: id.real,
                    host: r.host.clone(),
                    why: why[i].clone().unwrap_or(Why::Quorum),
                    max_out,
                });
            }
            Decision::Out => {
                let placement = place(v, health.out.get(&id).copied().unwrap_or(now), now);
                if placement.in_table() {
                    let mut d = r.dest.clone();
                    d.weight = 0;
                    s.dests.push(d);
                }
                notes.push(Note::Out {
                    service: key,
                    real: id.real,
                    host: r.host.clone(),
                    why: why[i].clone().unwrap_or(Why::Quorum),
                    placement,
                });
            }
        }
    }
    if let (true, Some(sorry)) = (quorum_lost, &v.sorry) {
        s.dests.push(sorry.clone());
        notes.push(Note::SorryIn {
            service: key,
            sorry: SocketAddr::new(sorry.addr, sorry.port),
            live_weight,
            quorum: v.quorum,
        });
    }
    (s, notes)
}

/// How a server of `v` that went out at `since` is held at `now`.
fn place(v: &Virtual, since: Stamp, now: Stamp) -> Placement {
    match (v.on_failure, v.drain) {
        (OnFailure::Quiesce, _) => Placement::Quiesced,
        (OnFailure::Remove, None) => Placement::Removed,
        (OnFailure::Remove, Some(d)) => {
            let until = since.after(d);
            if now.mono_ns < until.mono_ns {
                Placement::Draining { until }
            } else {
                Placement::Removed
            }
        }
    }
}

// ---- The state file ----

/// Who wrote a state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub pid: i32,
    /// Its start time (clock ticks since boot, as base::pidfile records it).
    pub start: u64,
    /// When it started following.
    pub since: Stamp,
    /// When it last wrote.
    pub written: Stamp,
    /// The boot it ran in (64 bits of the kernel's boot_id; 0: unknown): monotonic
    /// stamps mean nothing across a reboot.
    #[serde(default)]
    pub boot: u64,
}

/// This boot's id, 64 bits of /proc/sys/kernel/random/boot_id (0 if unreadable).
pub fn boot_id() -> u64 {
    let t = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let hex: String = t.chars().filter(|c| c.is_ascii_hexdigit()).take(16).collect();
    u64::from_str_radix(&hex, 16).unwrap_or(0)
}

const STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    writer: Writer,
    #[serde(default)]
    down: Vec<DownEntry>,
    #[serde(default)]
    maintenance: Vec<MaintenanceEntry>,
    #[serde(default)]
    out: Vec<OutEntry>,
    /// Joiners in the pool (an older follower's file has none).
    #[serde(default)]
    joined: Vec<JoinedEntry>,
}

#[derive(Serialize, Deserialize)]
struct JoinedEntry {
    service: String,
    real: String,
    #[serde(flatten)]
    joined: super::join::Joined,
}

#[derive(Serialize, Deserialize)]
struct DownEntry {
    check: String,
    host: String,
    #[serde(flatten)]
    down: Down,
}

#[derive(Serialize, Deserialize)]
struct MaintenanceEntry {
    file: String,
    since: Stamp,
}

#[derive(Serialize, Deserialize)]
struct OutEntry {
    service: String,
    real: String,
    since: Stamp,
}

/// The state file's text.
pub fn render_state(h: &Health, w: &Writer) -> String {
    let mut out: Vec<OutEntry> = h
        .out
        .iter()
        .map(|(id, since)| OutEntry {
            service: service_name(&id.service),
            real: id.real.to_string(),
            since: *since,
        })
        .collect();
    out.sort_by(|a, b| (&a.service, &a.real).cmp(&(&b.service, &b.real)));
    let mut joined: Vec<JoinedEntry> = h
        .joined
        .iter()
        .map(|(id, j)| JoinedEntry {
            service: service_name(&id.service),
            real: id.real.to_string(),
            joined: j.clone(),
        })
        .collect();
    joined.sort_by(|a, b| (&a.service, &a.real).cmp(&(&b.service, &b.real)));
    let f = StateFile {
        version: STATE_VERSION,
        writer: *w,
        down: h
            .down
            .iter()
            .flat_map(|(check, hosts)| {
                hosts.iter().map(move |(host, d)| DownEntry {
                    check: check.clone(),
                    host: host.clone(),
                    down: d.clone(),
                })
            })
            .collect(),
        maintenance: h
            .maintenance
            .iter()
            .map(|(file, since)| MaintenanceEntry {
                file: file.clone(),
                since: *since,
            })
            .collect(),
        out,
        joined,
    };
    let mut s = serde_json::to_string_pretty(&f).unwrap_or_default();
    s.push('\n');
    s
}

/// Read a state file's text; entries that do not parse are dropped, a file that does
/// not is an error.
pub fn parse_state(text: &str) -> Result<(Health, Writer), String> {
    let f: StateFile = serde_json::from_str(text).map_err(|e| format!("not a follow state file: {e}"))?;
    if f.version != STATE_VERSION {
        return Err(format!("state file version {}, not {STATE_VERSION}", f.version));
    }
    let mut h = Health::default();
    for d in f.down {
        h.down.entry(d.check).or_default().insert(d.host, d.down);
    }
    for m in f.maintenance {
        h.maintenance.insert(m.file, m.since);
    }
    for o in f.out {
        if let (Some(service), Ok(real)) = (parse_service_name(&o.service), o.real.parse()) {
            h.out.insert(RealId { service, real }, o.since);
        }
    }
    for j in f.joined {
        if let (Some(service), Ok(real)) = (parse_service_name(&j.service), j.real.parse()) {
            h.joined.insert(RealId { service, real }, j.joined);
        }
    }
    Ok((h, f.writer))
}

/// Write the state file atomically (never through a symlink), mode 0644 so that
/// `status` and `apply` run by root can read what the `hakit` user's follower wrote.
pub fn save_state(path: &Path, h: &Health, w: &Writer) -> Result<(), String> {
    fsio::write_atomic(path, render_state(h, w).as_bytes(), 0o644, fsio::Durability::Atomic)
}

/// Read a state file whoever wrote it (ours, root's, or its directory owner's; see
/// base::fsio), alive or not. `Ok(None)`: there is none.
pub fn load_state(path: &Path) -> Result<Option<(Health, Writer)>, String> {
    match fsio::read_trusted_owned(path, fsio::Whose::OursOrTheDirectorys)? {
        None => Ok(None),
        Some((text, _)) => parse_state(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
    }
}

/// Whether the process that wrote `w` still runs (the same process: pid and start
/// time, as base::pidfile checks them).
pub fn writer_alive(w: &Writer) -> bool {
    w.pid > 1
        && pidfile::PidRecord {
            pid: w.pid,
            start: Some(w.start),
            extra: Vec::new(),
            owner: None,
        }
        .alive()
}

/// The health a live follower keeps in `path`, with who it is; None if there is no
/// file, it cannot be read, or its writer is gone.
pub fn load_live(path: &Path) -> Option<(Health, Writer)> {
    match load_state(path) {
        Ok(Some((h, w))) if writer_alive(&w) => Some((h, w)),
        Ok(_) => None,
        Err(e) => {
            crate::base::log::warn(&e);
            None
        }
    }
}

/// For `apply`: the health a live follower keeps, so that what it holds out stays out.
pub fn load_live_state(path: &Path) -> Option<Health> {
    load_live(path).map(|(h, _)| h)
}

/// Tell the follower that keeps `path` to reload its configuration (SIGHUP), as `apply`
/// must after changing the table from a new file: else the follower, still on the old
/// one, puts its services back at its next interval. `Ok(false)`: no live follower.
/// Signalled only if it is still the process recorded and runs as the file's owner.
pub fn reload_follower(path: &Path) -> Result<bool, String> {
    let Some((text, owner)) = fsio::read_trusted_owned(path, fsio::Whose::OursOrTheDirectorys)? else {
        return Ok(false);
    };
    let (_, w) = parse_state(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if w.pid <= 1 {
        return Ok(false);
    }
    pidfile::PidRecord {
        pid: w.pid,
        start: Some(w.start),
        extra: Vec::new(),
        owner: Some(owner),
    }
    .signal(nix::sys::signal::Signal::SIGHUP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::config::{Config, OnFailure, Real, Virtual};
    use crate::tools::lvs_ctl::model::{Dest, Service};

    pub fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port,
        }
    }

    fn real(last: u8, weight: u32) -> Real {
        let mut dest = Dest::new(format!("10.0.0.{last}").parse().unwrap(), 80);
        dest.weight = weight;
        Real {
            dest,
            host: format!("web{last}.example.com"),
        }
    }

    pub fn virt(port: u16, weights: &[u32]) -> Virtual {
        Virtual {
            service: Service::new(key(port)),
            reals: weights.iter().enumerate().map(|(i, w)| real(i as u8 + 1, *w)).collect(),
            check: Some("web/http".into()),
            on_failure: OnFailure::Quiesce,
            drain: None,
            quorum: 0,
            sorry: None,
            join: None,
        }
    }

    fn cfg(vs: Vec<Virtual>) -> Config {
        Config {
            backend: None,
            maintenance_dir: Some("/nonexistent".into()),
            depool_threshold: 0.0,
            services: vs,
        }
    }

    fn at(s: u64) -> Stamp {
        Stamp {
            mono_ns: s * 1_000_000_000,
            unix_ms: 1_795_000_000_000 + s * 1000,
        }
    }

    fn weights(s: &Service) -> Vec<(String, u32)> {
        s.dests
            .iter()
            .map(|d| (SocketAddr::new(d.addr, d.port).to_string(), d.weight))
            .collect()
    }

    fn w(list: &[(&str, u32)]) -> Vec<(String, u32)> {
        list.iter().map(|(a, w)| (a.to_string(), *w)).collect()
    }

    #[test]
    fn all_healthy_is_the_configuration() {
        let c = cfg(vec![virt(80, &[1, 2])]);
        let (t, notes) = desired(&c, &Health::default(), at(0));
        let configured: Vec<Service> = c
            .services
            .iter()
            .map(|v| Service {
                dests: v.reals.iter().map(|r| r.dest.clone()).collect(),
                ..v.service.clone()
            })
            .collect();
        assert_eq!(t.services, configured);
        assert!(notes.is_empty());
    }

    #[test]
    fn a_down_server_is_quiesced_or_removed() {
        let mut c = cfg(vec![virt(80, &[1, 2])]);
        let mut h = Health::default();
        assert!(h.host_down("web/http", "web2.example.com", "CRITICAL", "refused", at(1)));
        assert!(!h.host_down("web/http", "web2.example.com", "CRITICAL", "refused", at(2)));
        let (s, notes) = desired_service(&c, &c.services[0], &h, at(3));
        assert_eq!(weights(&s), w(&[("10.0.0.1:80", 1), ("10.0.0.2:80", 0)]));
        match &notes[..] {
            [Note::Out {
                why: Why::Down(d),
                placement: Placement::Quiesced,
                host,
                ..
            }] => {
                assert_eq!(d.since, at(1), "down since the first host-down");
                assert_eq!(d.reason(), "CRITICAL: refused");
                assert_eq!(host, "web2.example.com");
            }
            n => panic!("{n:?}"),
        }
        c.services[0].on_failure = OnFailure::Remove;
        let (s, _) = desired_service(&c, &c.services[0], &h, at(3));
        assert_eq!(weights(&s), w(&[("10.0.0.1:80", 1)]));
        // Another check's word, or no check at all, moves nothing.
        c.services[0].check = Some("web/https".into());
        assert_eq!(desired_service(&c, &c.services[0], &h, at(3)).0.dests.len(), 2);
        c.services[0].check = None;
        assert_eq!(desired_service(&c, &c.services[0], &h, at(3)).0.dests.len(), 2);
        // And back up.
        assert!(h.host_up("web/http", "web2.example.com"));
        assert!(!h.host_up("web/http", "web2.example.com"));
        assert!(h.down.is_empty());
    }

    #[test]
    fn drain_keeps_weight_zero_for_its_time_from_when_it_went_out() {
        let mut c = cfg(vec![virt(80, &[1, 1])]);
        c.services[0].on_failure = OnFailure::Remove;
        c.services[0].drain = Some(Duration::from_secs(30));
        let v = c.services[0].clone();
        let mut h = Health::default();
        h.host_down("web/http", "web1.example.com", "CRITICAL", "x", at(10));
        // Settled first at 12: the drain counts from 12, when it went out.
        let (s, notes, changed) = h.settle(&c, &v, at(12));
        assert!(changed);
        assert_eq!(weights(&s), w(&[("10.0.0.1:80", 0), ("10.0.0.2:80", 1)]));
        assert!(matches!(
            notes[0],
            Note::Out { placement: Placement::Draining { until }, .. } if until == at(42)
        ));
        let (_, _, changed) = h.settle(&c, &v, at(20));
        assert!(!changed, "the stamp stays");
        let (s, _) = desired_service(
            &c,
            &v,
            &h,
            Stamp {
                mono_ns: at(42).mono_ns - 1,
                ..at(42)
            },
        );
        assert_eq!(s.dests.len(), 2, "still draining a nanosecond before");
        let (s, notes) = desired_service(&c, &v, &h, at(42));
        assert_eq!(weights(&s), w(&[("10.0.0.2:80", 1)]));
        assert!(matches!(
            notes[0],
            Note::Out {
                placement: Placement::Removed,
                ..
            }
        ));
        // Back up: in, and the stamp is gone, so a new failure drains afresh.
        h.host_up("web/http", "web1.example.com");
        let (s, notes, changed) = h.settle(&c, &v, at(50));
        assert!(changed && notes.is_empty() && h.out.is_empty());
        assert_eq!(weights(&s), w(&[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)]));
    }

    #[test]
    fn maintenance_files_are_named_as_ldirectord_names_them() {
        let r = real(2, 1);
        assert_eq!(
            maintenance_names(&r),
            [
                "10.0.0.2:80",
                "10.0.0.2",
                "web2.example.com:80",
                "web2.example.com",
                "web2:80",
                "web2"
            ]
        );
        let mut v6 = real(2, 1);
        v6.dest.addr = "2001:db8::2".parse().unwrap();
        v6.host = "2001:db8::2".into();
        assert_eq!(maintenance_names(&v6), ["[2001:db8::2]:80", "2001:db8::2"]);
        assert!(!is_maintenance_name(".x.swp") && !is_maintenance_name("") && is_maintenance_name("web2"));

        let mut c = cfg(vec![virt(80, &[1, 1]), virt(443, &[1, 1])]);
        for (file, out80, out443) in [
            ("10.0.0.2:80", true, true),
            ("10.0.0.2", true, true),
            ("web2", true, true),
            ("web2.example.com:80", true, true),
            ("10.0.0.2:81", false, false),
            ("web", false, false),
        ] {
            let mut h = Health::default();
            assert!(h.set_maintenance([file.to_string()].into(), at(5)));
            let (t, notes) = desired(&c, &h, at(6));
            let zero = |i: usize| t.services[i].dests[1].weight == 0;
            assert_eq!((zero(0), zero(1)), (out80, out443), "{file}");
            if out80 {
                assert!(matches!(
                    &notes[0],
                    Note::Out { why: Why::Maintenance { file: f, since }, .. } if f == file && *since == at(5)
                ));
            }
        }
        // Maintenance wins over a check's word; without a maintenance-dir files mean nothing.
        let mut h = Health::default();
        h.set_maintenance(["web1".to_string()].into(), at(1));
        h.host_down("web/http", "web1.example.com", "CRITICAL", "x", at(2));
        let (_, notes) = desired_service(&c, &c.services[0], &h, at(3));
        assert!(matches!(
            &notes[0],
            Note::Out {
                why: Why::Maintenance { .. },
                ..
            }
        ));
        c.maintenance_dir = None;
        let (_, notes) = desired_service(&c, &c.services[0], &h, at(3));
        assert!(matches!(&notes[0], Note::Out { why: Why::Down(_), .. }));
        // A file that goes away is forgotten; one that stays keeps its time.
        assert!(!h.set_maintenance(["web1".to_string()].into(), at(9)));
        assert_eq!(h.maintenance["web1"], at(1));
        assert!(h.set_maintenance(BTreeSet::new(), at(9)));
        assert!(h.maintenance.is_empty());
    }

    #[test]
    fn depool_threshold_arithmetic() {
        assert_eq!(min_in(4, 0.5), 2);
        assert_eq!(min_in(3, 0.5), 2, "ceil: 1.5 servers stay in → 2");
        assert_eq!(min_in(10, 0.7), 7, "10 × 0.7 is 7.000000000000001 in floating point");
        assert_eq!(min_in(10, 0.3), 3);
        assert_eq!(min_in(100, 0.29), 29);
        assert_eq!(min_in(5, 0.0), 0);
        assert_eq!(min_in(5, 1.0), 5);
        assert_eq!(min_in(0, 0.5), 0);
        assert_eq!(min_in(5, f64::NAN), 0);
        assert_eq!(min_in(1, 0.01), 1);
    }

    #[test]
    fn depool_threshold_keeps_the_extra_down_ones_in() {
        let mut c = cfg(vec![virt(80, &[1, 1, 1, 1])]);
        c.depool_threshold = 0.5;
        let v = c.services[0].clone();
        let mut h = Health::default();
        // web3 fails first, then web1, then web2 and web4.
        h.host_down("web/http", "web3.example.com", "CRITICAL", "x", at(1));
        h.host_down("web/http", "web1.example.com", "CRITICAL", "x", at(2));
        h.host_down("web/http", "web4.example.com", "CRITICAL", "x", at(3));
        h.host_down("web/http", "web2.example.com", "CRITICAL", "x", at(3));
        let (s, notes, _) = h.settle(&c, &v, at(4));
        assert_eq!(
            weights(&s),
            w(&[
                ("10.0.0.1:80", 0),
                ("10.0.0.2:80", 1),
                ("10.0.0.3:80", 0),
                ("10.0.0.4:80", 1)
            ]),
            "the first two to fail are out, web2 (3rd in order) and web4 stay"
        );
        let refused: Vec<String> = notes
            .iter()
            .filter_map(|n| match n {
                Note::DepoolRefused { real, max_out, .. } => {
                    assert_eq!(*max_out, 2);
                    Some(real.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(refused, ["10.0.0.2:80", "10.0.0.4:80"]);
        // web3 recovers: a place is free; web2 (same time as web4, earlier in the
        // configuration) takes it, web1 stays out (already out goes first).
        h.host_up("web/http", "web3.example.com");
        let (s, _, _) = h.settle(&c, &v, at(5));
        assert_eq!(
            weights(&s),
            w(&[
                ("10.0.0.1:80", 0),
                ("10.0.0.2:80", 0),
                ("10.0.0.3:80", 1),
                ("10.0.0.4:80", 1)
            ])
        );
        // Threshold 1: nothing ever goes out.
        c.depool_threshold = 1.0;
        let (s, notes) = desired_service(&c, &v, &h, at(6));
        assert!(s.dests.iter().all(|d| d.weight == 1));
        assert_eq!(notes.len(), 3);
        // An already-out server keeps its place over one that failed earlier but was
        // refused: no flapping when the order of failures and of going out differ.
        c.depool_threshold = 0.5;
        let v = virt(80, &[1, 1]);
        let mut h = Health::default();
        h.host_down("web/http", "web1.example.com", "CRITICAL", "x", at(1));
        h.host_down("web/http", "web2.example.com", "CRITICAL", "x", at(2));
        h.out.insert(RealId::of(&v, &v.reals[1]), at(2));
        let (s, _) = desired_service(&c, &v, &h, at(3));
        assert_eq!(s.dests[0].weight, 1);
        assert_eq!(s.dests[1].weight, 0);
    }

    #[test]
    fn sorry_server_when_the_live_weight_falls_below_quorum_and_back_exactly() {
        let mut c = cfg(vec![virt(80, &[1, 2, 3])]);
        c.services[0].quorum = 4;
        c.services[0].sorry = Some(Dest::new("10.0.0.9".parse().unwrap(), 80));
        let v = c.services[0].clone();
        let mut h = Health::default();
        // Live 6 ≥ 4, then web1 down: 5, web2 down: 3 < 4 → the sorry server, alone.
        let (s, notes) = desired_service(&c, &v, &h, at(0));
        assert!(notes.is_empty() && s.dests.len() == 3);
        h.host_down("web/http", "web1.example.com", "CRITICAL", "x", at(1));
        let (_, notes) = desired_service(&c, &v, &h, at(1));
        assert_eq!(notes.len(), 1);
        h.host_down("web/http", "web2.example.com", "CRITICAL", "x", at(2));
        let (s, notes) = desired_service(&c, &v, &h, at(2));
        assert_eq!(
            weights(&s),
            w(&[
                ("10.0.0.1:80", 0),
                ("10.0.0.2:80", 0),
                ("10.0.0.3:80", 0),
                ("10.0.0.9:80", 1)
            ]),
            "keepalived: the live ones go (quiesced here) and the sorry server has it all"
        );
        assert!(matches!(
            notes.last(),
            Some(Note::SorryIn {
                live_weight: 3,
                quorum: 4,
                ..
            })
        ));
        assert!(matches!(&notes[2], Note::Out { why: Why::Quorum, .. }));
        // With remove, the live ones leave the table.
        let mut rc = c.clone();
        rc.services[0].on_failure = OnFailure::Remove;
        let (s, _) = desired_service(&rc, &rc.services[0], &h, at(2));
        assert_eq!(weights(&s), w(&[("10.0.0.9:80", 1)]));
        // web1 back: 4 = quorum → the sorry server goes, exactly at the quorum.
        h.host_up("web/http", "web1.example.com");
        let (s, notes) = desired_service(&c, &v, &h, at(3));
        assert_eq!(
            weights(&s),
            w(&[("10.0.0.1:80", 1), ("10.0.0.2:80", 0), ("10.0.0.3:80", 3)])
        );
        assert_eq!(notes.len(), 1);
        // Quorum 0 (or none given) with a sorry server: it comes when nothing is live.
        c.services[0].quorum = 0;
        for host in ["web1.example.com", "web3.example.com"] {
            h.host_down("web/http", host, "CRITICAL", "x", at(4));
        }
        let (s, notes) = desired_service(&c, &c.services[0], &h, at(4));
        assert_eq!(s.dests.last().unwrap().addr.to_string(), "10.0.0.9");
        assert!(matches!(notes.last(), Some(Note::SorryIn { live_weight: 0, .. })));
        // Without a sorry server the quorum does nothing.
        c.services[0].sorry = None;
        c.services[0].quorum = 100;
        h.down.clear();
        let (s, notes) = desired_service(&c, &c.services[0], &h, at(5));
        assert!(notes.is_empty() && s.dests.len() == 3);
    }

    #[test]
    fn depool_refused_servers_count_as_live_for_the_quorum() {
        let mut c = cfg(vec![virt(80, &[1, 1, 1, 1])]);
        c.depool_threshold = 0.5;
        c.services[0].quorum = 2;
        c.services[0].sorry = Some(Dest::new("10.0.0.9".parse().unwrap(), 80));
        let mut h = Health::default();
        for i in 1..=3 {
            h.host_down("web/http", &format!("web{i}.example.com"), "CRITICAL", "x", at(i));
        }
        // Two out (the threshold), web3 refused and web4 up: live 2 = quorum.
        let (s, notes) = desired_service(&c, &c.services[0], &h, at(4));
        assert_eq!(s.dests.len(), 4);
        assert!(!notes.iter().any(|n| matches!(n, Note::SorryIn { .. })));
        // web4 down too: live 2 still (both refused): no sorry server.
        h.host_down("web/http", "web4.example.com", "CRITICAL", "x", at(5));
        let (_, notes) = desired_service(&c, &c.services[0], &h, at(5));
        assert!(!notes.iter().any(|n| matches!(n, Note::SorryIn { .. })));
        // Quorum 3: lost, and the swap takes everything out, the refused ones too.
        c.services[0].quorum = 3;
        let (s, notes) = desired_service(&c, &c.services[0], &h, at(5));
        assert_eq!(s.dests.iter().filter(|d| d.weight > 0).count(), 1);
        assert!(notes
            .iter()
            .all(|n| matches!(n, Note::Out { why: Why::Down(_), .. } | Note::SorryIn { .. })));
    }

    #[test]
    fn service_names_round_trip() {
        for (k, s) in [
            (key(80), "tcp/192.0.2.10:80"),
            (
                ServiceKey::Addr {
                    proto: Proto::Udp,
                    addr: "2001:db8::1".parse().unwrap(),
                    port: 53,
                },
                "udp/[2001:db8::1]:53",
            ),
            (ServiceKey::Fwmark { mark: 7, v6: false }, "fwmark/7"),
            (ServiceKey::Fwmark { mark: 7, v6: true }, "fwmark/7/ipv6"),
        ] {
            assert_eq!(service_name(&k), s);
            assert_eq!(parse_service_name(s), Some(k));
        }
        for bad in ["", "tcp", "tcp/x", "fwmark/0", "fwmark/1/v4", "icmp/1.2.3.4:1"] {
            assert_eq!(parse_service_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn state_file_round_trips_and_is_believed_only_while_its_writer_lives() {
        let c = cfg(vec![virt(80, &[1, 1])]);
        let mut h = Health::default();
        h.host_down("web/http", "web1.example.com", "CRITICAL", "it's 'quoted'", at(1));
        h.set_maintenance(["web2".to_string()].into(), at(2));
        h.settle(&c, &c.services[0], at(3));
        assert_eq!(h.out.len(), 2);
        let me = pidfile::PidRecord::me(Vec::new());
        let w = Writer {
            pid: me.pid,
            start: me.start.unwrap(),
            since: at(0),
            written: at(3),
            boot: boot_id(),
        };
        let (back, wb) = parse_state(&render_state(&h, &w)).unwrap();
        assert_eq!((back, wb), (h.clone(), w));

        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lvs-follow.json");
        assert_eq!(load_live_state(&p), None);
        save_state(&p, &h, &w).unwrap();
        assert_eq!(load_live_state(&p), Some(h.clone()));
        // The same pid with another start time is another process: not believed.
        let gone = Writer {
            start: w.start + 1,
            ..w
        };
        save_state(&p, &h, &gone).unwrap();
        assert_eq!(load_live_state(&p), None);
        assert!(load_state(&p).unwrap().is_some(), "still readable, for a restart");
        assert_eq!(reload_follower(&p), Ok(false), "a writer that is gone is not signalled");
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(load_live_state(&p), None);
        assert!(parse_state("{\"version\":2}").is_err());
    }
}
