//! Failure detection: the state of every node and link, driven by verified messages,
//! carrier changes and the clock. Pure logic — no sockets, no files — so that it can be
//! tested and benchmarked with a clock the caller controls.
//!
//! Rules, after Heartbeat:
//! - a message from a generation (`hg`) lower than the last seen is a replay, refused;
//!   a higher one means the node restarted; sequence tracking starts again;
//! - per channel a sequence number not above the last one is a duplicate and proves
//!   nothing; a gap is counted as lost messages;
//! - a link is late after `warntime` and dead after `deadtime` without a fresh message
//!   (the node's announced `dt` wins over ours), or at once on carrier loss;
//! - a node is dead when none of its links is alive and no live node still hears it
//!   (cross-check), unreachable when another live node still hears it.

use crate::events::{Event, Kind};
use crate::table::{LinkState, NodeRecord, NodeState, FLAG_CONFIGURED, FLAG_LOCAL, FLAG_PING, MAX_CHANNELS};
use crate::wire::msg::{Msg, T_STRING};
use crate::wire::{HELD, PINGS};
use std::collections::HashMap;

const MS: u64 = 1_000_000;
/// How far behind the newest sequence number a message may be and still refresh a
/// link (channels deliver at different speeds); older ones are duplicates.
const REORDER_WINDOW: u64 = 8;
/// A gap larger than this resets sequence tracking instead of counting as lost, as
/// Heartbeat does.
const MAX_GAP: u64 = 250;

#[derive(Debug, Clone)]
pub struct Config {
    pub local: String,
    /// The channels' names, in order (events name channels by them).
    pub channels: Vec<String>,
    pub deadtime_ns: u64,
    pub warntime_ns: u64,
    pub initdead_ns: u64,
    /// The cluster's members; empty means any node that signs correctly may join.
    pub nodes: Vec<String>,
    pub capacity: usize,
}

/// How far ahead of our clock a generation may be: a sender's is the larger of its
/// saved one plus one and its Unix time (`wire/generation.rs`), so only a clock more
/// than a day off, or a day of restarts every second, goes past it.
pub const GEN_AHEAD_S: u64 = 86_400;

impl Config {
    fn gen_ceiling(&self) -> u64 {
        crate::base::clock::unix_ms() / 1000 + GEN_AHEAD_S
    }
}

/// Why a message was refused after its signature was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSource,
    UnknownNode,
    Full,
    NoSequence,
    Replay,
    /// A generation further ahead of our clock than any honest sender's can be.
    FutureGeneration,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoSource => "no-src",
            Refusal::UnknownNode => "unknown-node",
            Refusal::Full => "table-full",
            Refusal::NoSequence => "no-seq",
            Refusal::Replay => "replay",
            Refusal::FutureGeneration => "future-generation",
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    rec: NodeRecord,
    has_gen: bool,
    dt_ns: Option<u64>,
    link_seq: [u64; MAX_CHANNELS],
    first_heard_ns: u64,
    /// Who else hears this node: (their slot, when they last heard it, estimated on
    /// our clock).
    heard_by: Vec<(usize, u64)>,
    /// What the node holds, in full (the table keeps what fits).
    held: String,
    /// Until when a refused future generation is not logged again (one line a minute).
    future_warned_ns: u64,
    /// Whether what the node announces (status, held, ping nodes) has been reported
    /// since it last came up: the first heartbeat after node-up always is, so that a
    /// script learns what a node that returns from a partition holds.
    announced: bool,
}

pub struct Detector {
    cfg: Config,
    start_ns: u64,
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
    carrier_down: [bool; MAX_CHANNELS],
    dirty: Vec<bool>,
    dirty_list: Vec<usize>,
    events: Vec<Event>,
    next_deadline: u64,
    /// A floor moved in a way worth saving at once (a generation changed, a node died).
    floors_news: bool,
    /// Ping node slots, in the order configured.
    pings: Vec<usize>,
}

impl Detector {
    /// A detector whose slot 0 is the local node. `seed` are the records a previous
    /// run left in the table: their generations and sequences stay the replay floor.
    pub fn new(cfg: Config, now: u64, seed: &[NodeRecord]) -> Detector {
        let mut d = Detector {
            start_ns: now,
            nodes: Vec::new(),
            index: HashMap::new(),
            carrier_down: [false; MAX_CHANNELS],
            dirty: Vec::new(),
            dirty_list: Vec::new(),
            events: Vec::new(),
            next_deadline: u64::MAX,
            floors_news: false,
            pings: Vec::new(),
            cfg,
        };
        let local = d.cfg.local.clone();
        let slot = d.add_node(&local, now);
        d.nodes[slot].rec.flags |= FLAG_LOCAL;
        d.nodes[slot].rec.state = NodeState::Up;
        for name in d.cfg.nodes.clone() {
            if name != local {
                let s = d.add_node(&name, now);
                d.nodes[s].rec.flags |= FLAG_CONFIGURED;
            }
        }
        for r in seed {
            if r.name == local || r.generation == 0 {
                continue;
            }
            let Some(s) = d.index.get(&r.name).copied().or_else(|| {
                if d.cfg.nodes.is_empty() && crate::wire::hv::valid_name(&r.name) {
                    Some(d.add_node(&r.name, now))
                } else {
                    None
                }
            }) else {
                continue;
            };
            let n = &mut d.nodes[s];
            // The table and the floors file may both know the node: the higher wins.
            if n.has_gen && (n.rec.generation, n.rec.last_seq) >= (r.generation, r.last_seq) {
                continue;
            }
            n.rec.generation = r.generation;
            n.rec.last_seq = r.last_seq;
            n.has_gen = true;
            n.link_seq = [r.last_seq; MAX_CHANNELS];
        }
        d.recompute_deadline(now);
        d
    }

    fn add_node(&mut self, name: &str, now: u64) -> usize {
        let slot = self.nodes.len();
        self.nodes.push(Node {
            rec: NodeRecord {
                name: name.to_string(),
                changed_unix_ms: crate::base::clock::unix_ms(),
                changed_mono_ns: now,
                ..Default::default()
            },
            has_gen: false,
            dt_ns: None,
            link_seq: [0; MAX_CHANNELS],
            first_heard_ns: 0,
            heard_by: Vec::new(),
            held: String::new(),
            future_warned_ns: 0,
            announced: false,
        });
        self.index.insert(name.to_string(), slot);
        self.dirty.push(false);
        self.mark(slot);
        slot
    }

    fn mark(&mut self, slot: usize) {
        if !self.dirty[slot] {
            self.dirty[slot] = true;
            self.dirty_list.push(slot);
        }
    }

    /// Change timing on a configuration reload.
    pub fn set_timing(&mut self, deadtime_ns: u64, warntime_ns: u64, now: u64) {
        self.cfg.deadtime_ns = deadtime_ns;
        self.cfg.warntime_ns = warntime_ns;
        self.recompute_deadline(now);
    }

    pub fn records(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().map(|n| &n.rec)
    }

    /// Records changed since the last call, with their slots.
    pub fn take_dirty(&mut self, mut f: impl FnMut(usize, &NodeRecord)) {
        for &s in &self.dirty_list {
            self.dirty[s] = false;
            f(s, &self.nodes[s].rec);
        }
        self.dirty_list.clear();
    }

    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// When `tick` next has something to do (CLOCK_MONOTONIC ns).
    pub fn next_deadline(&self) -> u64 {
        self.next_deadline
    }

    /// A message was refused before it could be attributed (bad packet, bad signature
    /// from a named node): count it on the node's link when the node is known.
    pub fn count_reject(&mut self, chan: usize, src: Option<&str>) -> bool {
        if let Some(&s) = src.and_then(|n| self.index.get(n)) {
            if chan < MAX_CHANNELS {
                self.nodes[s].rec.links[chan].rejected += 1;
                self.mark(s);
                return true;
            }
        }
        false
    }

    fn dt(&self, slot: usize) -> u64 {
        self.nodes[slot].dt_ns.unwrap_or(self.cfg.deadtime_ns)
    }

    /// Silence after which a link is dead: deadtime, plus 1/32 of it. With deadtime
    /// an exact multiple of keepalive, a heartbeat due at the very instant the link
    /// would die is a coin toss decided by microseconds of jitter; the margin settles
    /// it for the heartbeat, and costs under 1 ms at a 30 ms deadtime.
    fn dead_after(&self, slot: usize) -> u64 {
        let dt = self.dt(slot);
        dt + dt / 32
    }

    fn warn(&self, slot: usize) -> u64 {
        match self.nodes[slot].dt_ns {
            // Keep the configured proportion of warntime to deadtime.
            Some(dt) if self.cfg.deadtime_ns > 0 => {
                (dt as u128 * self.cfg.warntime_ns as u128 / self.cfg.deadtime_ns as u128) as u64
            }
            _ => self.cfg.warntime_ns,
        }
    }

    /// Apply a message whose signature was verified, received on `chan` at `now`.
    pub fn accept(&mut self, now: u64, chan: usize, msg: &Msg) -> Result<(), Refusal> {
        let src = msg.get_str("src").ok_or(Refusal::NoSource)?;
        let t = msg.get_str("t").unwrap_or("");
        if t.starts_with("NS_") {
            // Heartbeat's flow-control messages carry no sequence: nothing to learn.
            return Ok(());
        }
        if src == self.cfg.local {
            if t == "status" {
                if let Some(st) = msg.get_str("st") {
                    if self.nodes[0].rec.status != st {
                        self.nodes[0].rec.status = truncate(st, crate::table::STATUS_LEN).into();
                        self.nodes[0].rec.generation = msg.get_hex("hg").unwrap_or(0);
                        self.mark(0);
                    }
                }
            }
            return Ok(());
        }
        let slot = match self.index.get(src) {
            Some(&s) if self.nodes[s].rec.is_ping() => return Err(Refusal::UnknownNode),
            Some(&s) => s,
            None => {
                if !self.cfg.nodes.is_empty() || !crate::wire::hv::valid_name(src) {
                    return Err(Refusal::UnknownNode);
                }
                if self.nodes.len() >= self.cfg.capacity {
                    return Err(Refusal::Full);
                }
                self.add_node(src, now)
            }
        };
        if chan >= self.cfg.channels.len().min(MAX_CHANNELS) {
            return Ok(());
        }
        let (Some(hg), Some(seq)) = (msg.get_hex("hg"), msg.get_hex("seq")) else {
            self.nodes[slot].rec.links[chan].rejected += 1;
            self.mark(slot);
            return Err(Refusal::NoSequence);
        };
        self.mark(slot);
        if hg > self.cfg.gen_ceiling() {
            // One signed message with a huge generation would otherwise raise the floor
            // above anything the real node can send, for good (the floor is saved).
            let n = &mut self.nodes[slot];
            n.rec.links[chan].rejected += 1;
            if now >= n.future_warned_ns {
                n.future_warned_ns = now + 60_000 * MS;
                crate::base::log::warn(&format!(
                    "{src}: refused generation {hg}, further ahead of our clock than any sender's can be \
                     (more than a day); a forged or broken sender. `hb-watch forget {src}` clears a floor set before"
                ));
            }
            return Err(Refusal::FutureGeneration);
        }
        let mut restarted = false;
        {
            let n = &mut self.nodes[slot];
            if n.has_gen && hg < n.rec.generation {
                n.rec.links[chan].rejected += 1;
                return Err(Refusal::Replay);
            }
            if !n.has_gen || hg > n.rec.generation {
                self.floors_news = true;
                restarted = n.has_gen;
                n.has_gen = true;
                n.rec.generation = hg;
                n.rec.last_seq = 0;
                n.link_seq = [0; MAX_CHANNELS];
            }
            let last = n.link_seq[chan];
            if seq <= last || seq + REORDER_WINDOW < n.rec.last_seq {
                n.rec.links[chan].dup += 1;
                return Ok(());
            }
            if last != 0 && seq - last > 1 && seq - last <= MAX_GAP {
                n.rec.links[chan].lost += seq - last - 1;
            }
            n.link_seq[chan] = seq;
        }
        if restarted {
            let ev = Event::new(Kind::NodeRestart, src, now)
                .with("gen", hg)
                .with("channel", self.chan_name(chan));
            self.events.push(ev);
        }
        if let Some(dt) = msg.get_hex("dt") {
            if dt > 0 {
                self.nodes[slot].dt_ns = Some(dt.saturating_mul(MS));
                self.nodes[slot].rec.dt_ms = dt.min(u32::MAX as u64) as u32;
            }
        }
        if let Some(ld) = msg.get_str("ld") {
            self.nodes[slot].rec.load = parse_load(ld);
        }
        // Liveness of this link.
        let prev = self.nodes[slot].rec.links[chan].state;
        {
            let n = &mut self.nodes[slot];
            n.rec.links[chan].last_heard_ns = now;
            n.rec.links[chan].state = LinkState::Up;
            if n.first_heard_ns == 0 || restarted {
                n.first_heard_ns = now;
            }
        }
        if !prev.alive() {
            self.events.push(
                Event::new(Kind::LinkUp, src, now)
                    .with("channel", self.chan_name(chan))
                    .with("gen", hg),
            );
        }
        // Content: once per sequence number, whichever channel brought it first.
        let fresh = seq > self.nodes[slot].rec.last_seq;
        if fresh {
            self.nodes[slot].rec.last_seq = seq;
        }
        if self.nodes[slot].rec.state != NodeState::Up {
            self.set_node(
                slot,
                NodeState::Up,
                now,
                &[("gen", hg.to_string()), ("channel", self.chan_name(chan))],
            );
        }
        if fresh {
            self.apply_content(slot, now, t, msg);
        }
        // The new deadlines of this link are later than any it had.
        let d = now + self.warn(slot).min(self.dt(slot));
        if self.nodes.len() <= 64 {
            self.recompute_deadline(now);
        } else {
            self.next_deadline = self.next_deadline.min(d);
        }
        Ok(())
    }

    fn apply_content(&mut self, slot: usize, now: u64, t: &str, msg: &Msg) {
        let name = self.nodes[slot].rec.name.clone();
        if let Some(hv) = msg.get_str(crate::wire::hv::FIELD) {
            self.apply_view(slot, now, hv);
        }
        if t == "status" {
            let st = msg.get_str("st").unwrap_or("");
            // Absent means none: a Heartbeat node, or one that holds nothing.
            let held = msg.get_str(HELD).unwrap_or("");
            if st == "dead" {
                // A node that says it is stopping: no need to wait for deadtime. What
                // it holds as it goes is what node-dead reports (fencing needs it).
                self.nodes[slot].held = held.into();
                self.nodes[slot].rec.held = held.into();
                self.node_gone(slot, now, "shutdown");
                return;
            }
            let pings = msg.get_str(PINGS).and_then(parse_pings).unwrap_or((0, 0));
            let n = &mut self.nodes[slot];
            let old = std::mem::replace(&mut n.rec.status, truncate(st, crate::table::STATUS_LEN).into());
            let news = old != n.rec.status || held != n.held || pings != (n.rec.pings_up, n.rec.pings_total);
            if news {
                n.held = held.into();
                n.rec.held = held.into();
                (n.rec.pings_up, n.rec.pings_total) = pings;
            }
            // The first word after node-up is news even if nothing changed: a script
            // must learn what a node back from a partition holds.
            if news || !n.announced {
                let mut ev = Event::new(Kind::NodeStatus, &name, now).with("status", st);
                if !old.is_empty() && old != st {
                    ev = ev.with("old", old);
                }
                ev = ev.with("held", held);
                if pings.1 > 0 {
                    ev = ev.with("pings", format!("{}/{}", pings.0, pings.1));
                }
                self.events.push(ev);
            }
            self.nodes[slot].announced = true;
            return;
        }
        let mut ev = Event::new(Kind::Message, &name, now);
        for f in &msg.fields {
            if f.ty == T_STRING {
                let k = String::from_utf8_lossy(f.name);
                let v = String::from_utf8_lossy(&f.value).replace('\x13', "\n");
                ev.fields.push((k.into_owned(), v));
            }
        }
        self.events.push(ev);
    }

    fn apply_view(&mut self, from: usize, now: u64, hv: &str) {
        let mut touched = Vec::new();
        for e in crate::wire::hv::parse(hv) {
            let Some(&x) = self.index.get(e.name) else { continue };
            if x == from || x == 0 || e.mask == 0 || self.nodes[x].rec.is_ping() {
                continue;
            }
            let est = now.saturating_sub(e.age_ms.saturating_mul(MS));
            let hb = &mut self.nodes[x].heard_by;
            match hb.iter_mut().find(|(p, _)| *p == from) {
                Some(entry) => entry.1 = est,
                None => hb.push((from, est)),
            }
            if matches!(self.nodes[x].rec.state, NodeState::Dead | NodeState::Unreachable) {
                touched.push(x);
            }
        }
        for x in touched {
            self.evaluate_unheard(x, now, "deadtime");
        }
    }

    /// The live nodes that still hear `x`, by their last views.
    fn supporter(&self, x: usize, now: u64) -> Option<(usize, u64)> {
        // A view says when the peer last heard x; at x's death that is as old as our
        // own silence (deadtime). Count a peer only while its news is clearly newer.
        let threshold = self.dt(x) - self.dt(x) / 6;
        self.nodes[x]
            .heard_by
            .iter()
            .filter(|(p, est)| self.nodes[*p].rec.state == NodeState::Up && est + threshold > now)
            .max_by_key(|(_, est)| *est)
            .map(|&(p, est)| (p, est + threshold))
    }

    /// A node none of whose links is alive: unreachable if a live node hears it,
    /// else dead.
    fn evaluate_unheard(&mut self, x: usize, now: u64, reason: &str) {
        if self.nodes[x]
            .rec
            .links
            .iter()
            .take(self.cfg.channels.len())
            .any(|l| l.state.alive())
        {
            return;
        }
        match self.supporter(x, now) {
            Some((p, _)) => {
                if self.nodes[x].rec.state != NodeState::Unreachable {
                    let via = self.nodes[p].rec.name.clone();
                    self.set_node(x, NodeState::Unreachable, now, &[("via", via)]);
                }
            }
            None => {
                if self.nodes[x].rec.state != NodeState::Dead {
                    self.set_node(x, NodeState::Dead, now, &[("reason", reason.to_string())]);
                }
            }
        }
    }

    fn node_gone(&mut self, slot: usize, now: u64, reason: &str) {
        for c in 0..self.cfg.channels.len() {
            if self.nodes[slot].rec.links[c].state.alive() {
                self.kill_link(slot, c, now, reason);
            }
        }
        self.nodes[slot].heard_by.clear();
        if self.nodes[slot].rec.state != NodeState::Dead {
            self.set_node(slot, NodeState::Dead, now, &[("reason", reason.to_string())]);
        }
    }

    fn set_node(&mut self, slot: usize, st: NodeState, now: u64, fields: &[(&str, String)]) {
        let kind = match st {
            NodeState::Up => Kind::NodeUp,
            NodeState::Dead => Kind::NodeDead,
            NodeState::Unreachable => Kind::NodeUnreachable,
            NodeState::Unknown => return,
        };
        let n = &mut self.nodes[slot];
        let mut ev = Event::new(kind, &n.rec.name, now);
        ev.fields.extend(fields.iter().map(|(k, v)| (k.to_string(), v.clone())));
        if st != NodeState::Up {
            ev.fields.push(("was".into(), n.rec.state.as_str().into()));
            // What it held when last heard: a takeover may have to fence it first.
            if !n.held.is_empty() {
                ev.fields.push(("held".into(), n.held.clone()));
            }
            n.announced = false;
        }
        if st == NodeState::Dead {
            // Its last sequence is now the end of what could ever be replayed.
            self.floors_news = true;
        }
        n.rec.state = st;
        n.rec.changed_unix_ms = ev.unix_ms;
        n.rec.changed_mono_ns = now;
        self.events.push(ev);
        self.mark(slot);
    }

    fn kill_link(&mut self, slot: usize, chan: usize, now: u64, reason: &str) {
        let name = self.chan_name(chan);
        let n = &mut self.nodes[slot];
        let silent_ms = now.saturating_sub(n.rec.links[chan].last_heard_ns) / MS;
        n.rec.links[chan].state = LinkState::Dead;
        let mut ev = Event::new(Kind::LinkDead, &n.rec.name, now)
            .with("channel", name)
            .with("reason", reason);
        if n.rec.links[chan].last_heard_ns != 0 {
            ev = ev.with("silent_ms", silent_ms);
        }
        self.events.push(ev);
        self.mark(slot);
    }

    fn chan_name(&self, chan: usize) -> String {
        self.cfg.channels.get(chan).cloned().unwrap_or_else(|| chan.to_string())
    }

    /// Carrier change on a channel's own device: on loss every link on it is dead now.
    pub fn carrier(&mut self, now: u64, chan: usize, up: bool) {
        if chan >= MAX_CHANNELS {
            return;
        }
        self.carrier_down[chan] = !up;
        if up {
            return;
        }
        for slot in 1..self.nodes.len() {
            if self.nodes[slot].rec.links[chan].state.alive() {
                self.kill_link(slot, chan, now, "carrier");
                if self.nodes[slot].rec.state == NodeState::Up {
                    self.evaluate_unheard(slot, now, "carrier");
                }
            }
        }
        self.recompute_deadline(now);
    }

    pub fn carrier_down(&self, chan: usize) -> bool {
        chan < MAX_CHANNELS && self.carrier_down[chan]
    }

    /// Fire every deadline that has passed.
    pub fn tick(&mut self, now: u64) {
        if now < self.next_deadline {
            return;
        }
        let initdead_over = now >= self.start_ns + self.cfg.initdead_ns;
        for slot in 1..self.nodes.len() {
            if self.nodes[slot].rec.is_ping() {
                continue;
            }
            let dt = self.dt(slot);
            let dead = self.dead_after(slot);
            let warn = self.warn(slot);
            let state = self.nodes[slot].rec.state;
            for c in 0..self.cfg.channels.len() {
                let l = self.nodes[slot].rec.links[c];
                match l.state {
                    LinkState::Up | LinkState::Late if now >= l.last_heard_ns + dead => {
                        self.kill_link(slot, c, now, "deadtime");
                    }
                    LinkState::Up if warn > 0 && warn < dt && now >= l.last_heard_ns + warn => {
                        let n = &mut self.nodes[slot];
                        n.rec.links[c].state = LinkState::Late;
                        let late = (now - l.last_heard_ns) / MS;
                        let ev = Event::new(Kind::LinkLate, &n.rec.name, now)
                            .with("channel", &self.cfg.channels[c])
                            .with("late_ms", late);
                        self.events.push(ev);
                        self.mark(slot);
                    }
                    LinkState::Unknown
                        if state == NodeState::Up && initdead_over && now >= self.nodes[slot].first_heard_ns + dt =>
                    {
                        // Heard on other channels but never on this one.
                        self.kill_link(slot, c, now, "never-heard");
                    }
                    _ => {}
                }
            }
            match self.nodes[slot].rec.state {
                NodeState::Up | NodeState::Unreachable | NodeState::Dead => {
                    self.evaluate_unheard(slot, now, "deadtime")
                }
                NodeState::Unknown => {
                    if initdead_over && self.nodes[slot].rec.flags & FLAG_CONFIGURED != 0 {
                        self.set_node(slot, NodeState::Dead, now, &[("reason", "initdead".to_string())]);
                    }
                }
            }
        }
        self.recompute_deadline(now);
    }

    /// We were not running for `stall_ns` (our wake-up came that much after the
    /// deadline we slept for: the host stalled the VM, or something of higher
    /// priority held the CPU). Silence while we were away proves nothing about a peer:
    /// every live link's silence is counted from `stall_ns` later, so that a deadline
    /// that passed while we slept does not kill a link whose heartbeats could not be
    /// seen. A peer that really died is then found at most `stall_ns` later.
    pub fn forgive(&mut self, stall_ns: u64, now: u64) {
        for n in self.nodes.iter_mut().skip(1) {
            if n.rec.is_ping() {
                continue;
            }
            for l in n.rec.links.iter_mut().take(self.cfg.channels.len()) {
                if l.state.alive() {
                    l.last_heard_ns = l.last_heard_ns.saturating_add(stall_ns).min(now);
                }
            }
        }
        self.recompute_deadline(now);
    }

    /// Every peer's floor: the generation and sequence below which its messages are
    /// refused.
    pub fn floors(&self) -> Vec<crate::tools::hb_watch::floors::Floor> {
        self.nodes[1..]
            .iter()
            .filter(|n| n.has_gen && !n.rec.is_ping())
            .map(|n| crate::tools::hb_watch::floors::Floor {
                node: n.rec.name.clone(),
                gen: n.rec.generation,
                seq: n.rec.last_seq,
            })
            .collect()
    }

    /// Whether floors moved in a way worth saving now; cleared.
    pub fn take_floors_news(&mut self) -> bool {
        std::mem::take(&mut self.floors_news)
    }

    /// Clear a node's floor: its next message is accepted whatever its generation.
    pub fn forget(&mut self, name: &str) -> bool {
        let Some(&s) = self.index.get(name) else { return false };
        if s == 0 || self.nodes[s].rec.is_ping() {
            return false;
        }
        let n = &mut self.nodes[s];
        n.has_gen = false;
        n.rec.generation = 0;
        n.rec.last_seq = 0;
        n.link_seq = [0; MAX_CHANNELS];
        self.floors_news = true;
        self.mark(s);
        true
    }

    /// Add a ping node (a record flagged as one, named by its address).
    pub fn add_ping(&mut self, name: &str, now: u64) -> Option<usize> {
        if self.index.contains_key(name) || self.nodes.len() >= self.cfg.capacity {
            return None;
        }
        let s = self.add_node(name, now);
        self.nodes[s].rec.flags |= FLAG_PING;
        self.pings.push(s);
        self.nodes[0].rec.pings_total = self.pings.len() as u16;
        self.mark(0);
        Some(s)
    }

    /// A ping node answered (`up`) or has been silent for its deadtime.
    pub fn ping_state(&mut self, slot: usize, up: bool, now: u64, fields: &[(&str, String)]) {
        let want = if up { NodeState::Up } else { NodeState::Dead };
        let n = &mut self.nodes[slot];
        if n.rec.state == want {
            return;
        }
        let was = n.rec.state;
        n.rec.state = want;
        let mut ev = Event::new(if up { Kind::PingUp } else { Kind::PingDead }, &n.rec.name, now);
        n.rec.changed_unix_ms = ev.unix_ms;
        n.rec.changed_mono_ns = now;
        self.mark(slot);
        let reached = self
            .pings
            .iter()
            .filter(|&&p| self.nodes[p].rec.state == NodeState::Up)
            .count() as u16;
        self.nodes[0].rec.pings_up = reached;
        self.mark(0);
        ev.fields.extend(fields.iter().map(|(k, v)| (k.to_string(), v.clone())));
        ev = ev
            .with("was", was.as_str())
            .with("reachable", format!("{reached}/{}", self.pings.len()));
        self.events.push(ev);
    }

    fn recompute_deadline(&mut self, now: u64) {
        let mut next = u64::MAX;
        let initdead_at = self.start_ns + self.cfg.initdead_ns;
        for slot in 1..self.nodes.len() {
            if self.nodes[slot].rec.is_ping() {
                continue;
            }
            let dt = self.dt(slot);
            let dead = self.dead_after(slot);
            let warn = self.warn(slot);
            let n = &self.nodes[slot];
            for l in n.rec.links.iter().take(self.cfg.channels.len()) {
                let d = match l.state {
                    LinkState::Up if warn > 0 && warn < dt => l.last_heard_ns + warn,
                    LinkState::Up | LinkState::Late => l.last_heard_ns + dead,
                    LinkState::Unknown if n.rec.state == NodeState::Up => initdead_at.max(n.first_heard_ns + dt),
                    _ => u64::MAX,
                };
                next = next.min(d);
            }
            match n.rec.state {
                NodeState::Unknown if n.rec.flags & FLAG_CONFIGURED != 0 => next = next.min(initdead_at),
                NodeState::Unreachable => {
                    if let Some((_, until)) = self.supporter(slot, now) {
                        next = next.min(until);
                    }
                }
                _ => {}
            }
        }
        self.next_deadline = next;
    }
}

/// `pn=REACHABLE/CONFIGURED`.
fn parse_pings(v: &str) -> Option<(u16, u16)> {
    let (a, b) = v.split_once('/')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The first three numbers of /proc/loadavg, in hundredths.
fn parse_load(ld: &str) -> [u16; 3] {
    let mut out = [0u16; 3];
    for (o, w) in out.iter_mut().zip(ld.split_whitespace()) {
        *o = w
            .parse::<f64>()
            .map(|v| (v * 100.0).clamp(0.0, 65535.0) as u16)
            .unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::authkeys::AuthKeys;
    use crate::wire::msg::Builder;

    fn cfg(nodes: &[&str]) -> Config {
        Config {
            local: "n1".into(),
            channels: vec!["0".into(), "1".into()],
            deadtime_ns: 30 * MS,
            warntime_ns: 20 * MS,
            initdead_ns: 60 * MS,
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            capacity: 16,
        }
    }

    fn hb(src: &str, hg: u64, seq: u64, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Builder::new();
        b.add("t", "status").add("st", "active");
        for (k, v) in extra {
            b.add(k, v);
        }
        b.add("src", src)
            .add("seq", &format!("{seq:x}"))
            .add("hg", &format!("{hg:x}"));
        let mut out = Vec::new();
        b.finish(&AuthKeys::parse("auth 1\n1 crc\n").unwrap(), &mut out);
        out
    }

    fn feed(d: &mut Detector, now: u64, chan: usize, src: &str, hg: u64, seq: u64) -> Result<(), Refusal> {
        let p = hb(src, hg, seq, &[]);
        let m = Msg::parse(&p).unwrap();
        d.accept(now, chan, &m)
    }

    fn kinds(d: &mut Detector) -> Vec<String> {
        d.drain_events()
            .map(|e| format!("{} {} {}", e.kind.as_str(), e.subject, e.field("channel").unwrap_or("")))
            .collect()
    }

    #[test]
    fn one_link_cut_then_both() {
        let mut d = Detector::new(cfg(&["n1", "n2"]), 0, &[]);
        feed(&mut d, MS, 0, "n2", 1, 1).unwrap();
        feed(&mut d, MS, 1, "n2", 1, 1).unwrap();
        assert_eq!(
            kinds(&mut d),
            ["link-up n2 0", "node-up n2 0", "node-status n2 ", "link-up n2 1"]
        );
        // Channel 1 goes silent; channel 0 keeps going.
        for i in 2..10 {
            feed(&mut d, i * 10 * MS, 0, "n2", 1, i).unwrap();
            d.tick(i * 10 * MS + 5 * MS);
        }
        let ev = kinds(&mut d);
        assert!(ev.contains(&"link-dead n2 1".to_string()), "{ev:?}");
        assert!(!ev.iter().any(|e| e.starts_with("node-dead")), "{ev:?}");
        // Dead at deadtime plus its 1/32 margin, not before.
        let dead_at = 90 * MS + 30 * MS + 30 * MS / 32;
        assert!(d.next_deadline() <= dead_at);
        d.tick(dead_at - 1);
        assert!(!kinds(&mut d).iter().any(|e| e.starts_with("link-dead n2 0")));
        d.tick(dead_at);
        let ev = kinds(&mut d);
        assert_eq!(ev, ["link-dead n2 0", "node-dead n2 "]);
    }

    #[test]
    fn duplicates_replays_and_restart() {
        let mut d = Detector::new(cfg(&[]), 0, &[]);
        feed(&mut d, MS, 0, "n2", 5, 10).unwrap();
        feed(&mut d, MS, 0, "n2", 5, 10).unwrap(); // duplicate
        feed(&mut d, MS, 0, "n2", 5, 13).unwrap(); // two lost
        assert_eq!(feed(&mut d, MS, 0, "n2", 4, 99), Err(Refusal::Replay));
        let r = d.records().find(|r| r.name == "n2").unwrap().clone();
        assert_eq!((r.links[0].dup, r.links[0].lost, r.links[0].rejected), (1, 2, 1));
        // A replay of an old message on the other channel does not refresh it.
        feed(&mut d, 2 * MS, 1, "n2", 5, 2).unwrap();
        assert_eq!(
            d.records().find(|r| r.name == "n2").unwrap().links[1].state,
            LinkState::Unknown
        );
        kinds(&mut d);
        d.tick(100 * MS);
        assert!(kinds(&mut d).contains(&"node-dead n2 ".to_string()));
        feed(&mut d, 200 * MS, 0, "n2", 6, 1).unwrap();
        assert_eq!(
            kinds(&mut d),
            ["node-restart n2 0", "link-up n2 0", "node-up n2 0", "node-status n2 "]
        );
    }

    fn status_of(d: &mut Detector) -> Vec<String> {
        d.drain_events()
            .map(|e| {
                let f = |k| e.field(k).unwrap_or("").to_string();
                format!(
                    "{} {} held={} pings={}",
                    e.kind.as_str(),
                    e.subject,
                    f("held"),
                    f("pings")
                )
            })
            .collect()
    }

    fn feed_with(d: &mut Detector, now: u64, src: &str, hg: u64, seq: u64, extra: &[(&str, &str)]) {
        let p = hb(src, hg, seq, extra);
        d.accept(now, 0, &Msg::parse(&p).unwrap()).unwrap();
    }

    #[test]
    fn what_a_node_holds_is_news_after_every_node_up_and_on_change() {
        let mut d = Detector::new(cfg(&["n1", "n2"]), 0, &[]);
        feed_with(&mut d, MS, "n2", 1, 1, &[("held", "10.0.0.9/24"), ("pn", "1/2")]);
        let ev = status_of(&mut d);
        assert_eq!(
            ev[1..],
            ["node-up n2 held= pings=", "node-status n2 held=10.0.0.9/24 pings=1/2"]
        );
        feed_with(&mut d, 2 * MS, "n2", 1, 2, &[("held", "10.0.0.9/24"), ("pn", "1/2")]);
        assert!(status_of(&mut d).is_empty(), "nothing changed: no event");
        let r = d.records().find(|r| r.name == "n2").unwrap().clone();
        assert_eq!((r.held.as_str(), r.pings_up, r.pings_total), ("10.0.0.9/24", 1, 2));
        // Dead: the event says what it held.
        d.tick(200 * MS);
        let ev = status_of(&mut d);
        assert!(
            ev.contains(&"node-dead n2 held=10.0.0.9/24 pings=".to_string()),
            "{ev:?}"
        );
        // Back with the same: reported again, since a script cannot know.
        feed_with(&mut d, 300 * MS, "n2", 1, 3, &[("held", "10.0.0.9/24"), ("pn", "1/2")]);
        let ev = status_of(&mut d);
        assert!(
            ev.contains(&"node-status n2 held=10.0.0.9/24 pings=1/2".to_string()),
            "{ev:?}"
        );
        feed_with(&mut d, 301 * MS, "n2", 1, 4, &[]);
        assert_eq!(status_of(&mut d), ["node-status n2 held= pings="]);
    }

    #[test]
    fn a_generation_from_the_far_future_is_refused_and_forget_clears_a_floor() {
        let mut d = Detector::new(cfg(&["n1", "n2"]), 0, &[]);
        let p = hb("n2", u64::MAX, 1, &[]);
        assert_eq!(
            d.accept(MS, 0, &Msg::parse(&p).unwrap()),
            Err(Refusal::FutureGeneration)
        );
        assert!(d.floors().is_empty());
        // An honest-looking but high floor (a clock that was ahead) locks the node out
        // until it is forgotten.
        let ahead = crate::base::clock::unix_ms() / 1000 + 3600;
        feed(&mut d, 2 * MS, 0, "n2", ahead, 1).unwrap();
        let now_gen = crate::base::clock::unix_ms() / 1000;
        assert_eq!(feed(&mut d, 3 * MS, 0, "n2", now_gen, 1), Err(Refusal::Replay));
        assert!(d.take_floors_news());
        assert!(d.forget("n2"));
        feed(&mut d, 4 * MS, 0, "n2", now_gen, 1).unwrap();
        assert_eq!(d.floors()[0].gen, now_gen);
    }

    #[test]
    fn the_higher_of_two_seeded_floors_wins() {
        let rec = |g, s| NodeRecord {
            name: "n2".into(),
            generation: g,
            last_seq: s,
            ..Default::default()
        };
        let d = Detector::new(cfg(&["n1", "n2"]), 0, &[rec(9, 100), rec(9, 50), rec(8, 900)]);
        assert_eq!((d.floors()[0].gen, d.floors()[0].seq), (9, 100));
    }

    #[test]
    fn silence_while_we_were_not_running_is_forgiven() {
        let mut d = Detector::new(cfg(&["n1", "n2"]), 0, &[]);
        feed(&mut d, MS, 0, "n2", 1, 1).unwrap();
        feed(&mut d, MS, 1, "n2", 1, 1).unwrap();
        kinds(&mut d);
        // We slept through the deadline for 100 ms: the links live on.
        d.forgive(100 * MS, 131 * MS);
        d.tick(131 * MS);
        assert!(!kinds(&mut d).iter().any(|e| e.contains("dead")));
        // But a peer that stays silent after we are back is dead a deadtime later.
        d.tick(101 * MS + 32 * MS);
        assert!(kinds(&mut d).iter().any(|e| e.starts_with("node-dead n2")));
    }

    #[test]
    fn ping_nodes_are_not_members() {
        let mut d = Detector::new(cfg(&["n1", "n2"]), 0, &[]);
        let s = d.add_ping("10.0.0.1", 0).unwrap();
        d.ping_state(s, true, MS, &[]);
        assert_eq!(kinds(&mut d), ["ping-up 10.0.0.1 "]);
        d.tick(10_000 * MS);
        assert!(
            !kinds(&mut d).iter().any(|e| e.contains("10.0.0.1")),
            "deadtime does not apply to a ping node"
        );
        let me = d.records().next().unwrap().clone();
        assert_eq!((me.pings_up, me.pings_total), (1, 1));
        // A heartbeat in a ping node's name is not taken.
        assert_eq!(feed(&mut d, 2 * MS, 0, "10.0.0.1", 1, 1), Err(Refusal::UnknownNode));
        d.ping_state(s, false, 3 * MS, &[]);
        let me = d.records().next().unwrap().clone();
        assert_eq!((me.pings_up, me.pings_total), (0, 1));
    }

    #[test]
    fn unknown_nodes_refused_when_members_listed() {
        let mut d = Detector::new(cfg(&["n1", "n2"]), 0, &[]);
        assert_eq!(feed(&mut d, MS, 0, "intruder", 1, 1), Err(Refusal::UnknownNode));
    }

    #[test]
    fn initdead_and_carrier() {
        let mut d = Detector::new(cfg(&["n1", "n2", "n3"]), 0, &[]);
        feed(&mut d, MS, 0, "n2", 1, 1).unwrap();
        feed(&mut d, MS, 1, "n2", 1, 1).unwrap();
        kinds(&mut d);
        d.carrier(2 * MS, 1, false);
        assert_eq!(kinds(&mut d), ["link-dead n2 1"]);
        feed(&mut d, 11 * MS, 0, "n2", 1, 2).unwrap();
        d.tick(60 * MS);
        let ev = kinds(&mut d);
        assert!(ev.contains(&"node-dead n3 ".to_string()), "{ev:?}");
    }

    #[test]
    fn cross_check_unreachable_then_dead() {
        let mut d = Detector::new(cfg(&["n1", "n2", "n3"]), 0, &[]);
        let mut t = MS;
        let mut seq = 1;
        // n2 and n3 both heard; n3 says it hears n2.
        for _ in 0..3 {
            for c in 0..2 {
                feed(&mut d, t, c, "n2", 1, seq).unwrap();
                let p = hb("n3", 1, seq, &[("hv", "n2:3:2")]);
                d.accept(t, c, &Msg::parse(&p).unwrap()).unwrap();
            }
            seq += 1;
            t += 10 * MS;
        }
        kinds(&mut d);
        // Our links to n2 are cut; n3 still hears it.
        for _ in 0..5 {
            for c in 0..2 {
                let p = hb("n3", 1, seq, &[("hv", "n2:3:3")]);
                d.accept(t, c, &Msg::parse(&p).unwrap()).unwrap();
            }
            seq += 1;
            t += 10 * MS;
            d.tick(t);
        }
        let ev = kinds(&mut d);
        assert!(ev.contains(&"node-unreachable n2 ".to_string()), "{ev:?}");
        assert!(!ev.iter().any(|e| e.starts_with("node-dead")), "{ev:?}");
        // n3 stops hearing n2 too: its views no longer list it.
        for _ in 0..4 {
            for c in 0..2 {
                let p = hb("n3", 1, seq, &[]);
                d.accept(t, c, &Msg::parse(&p).unwrap()).unwrap();
            }
            seq += 1;
            t += 10 * MS;
            d.tick(t);
        }
        assert!(kinds(&mut d).contains(&"node-dead n2 ".to_string()));
    }

    #[test]
    fn dead_node_not_kept_alive_by_stale_views() {
        // At the moment of death the peer's view is as old as our silence.
        let mut d = Detector::new(cfg(&["n1", "n2", "n3"]), 0, &[]);
        let mut seq = 1;
        let mut t = MS;
        while t < 50 * MS {
            for c in 0..2 {
                feed(&mut d, t, c, "n2", 1, seq).unwrap();
                let p = hb("n3", 1, seq, &[("hv", "n2:3:1")]);
                d.accept(t, c, &Msg::parse(&p).unwrap()).unwrap();
            }
            seq += 1;
            t += 10 * MS;
        }
        let died = t - 10 * MS;
        // n2 is gone; n3 keeps sending, its view ages like ours.
        while t < died + 40 * MS {
            for c in 0..2 {
                let age = ((t - died) / MS).to_string();
                let hv = format!("n2:3:{age}");
                let p = hb("n3", 1, seq, &[("hv", &hv)]);
                d.accept(t, c, &Msg::parse(&p).unwrap()).unwrap();
            }
            seq += 1;
            d.tick(t);
            t += 5 * MS;
        }
        let ev = kinds(&mut d);
        assert!(ev.contains(&"node-dead n2 ".to_string()), "{ev:?}");
        assert!(!ev.iter().any(|e| e.starts_with("node-unreachable")), "{ev:?}");
    }
}
