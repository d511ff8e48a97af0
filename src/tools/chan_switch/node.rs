//! One node's chan-switch: what it hears (hb-watch's events, its table, its carrier,
//! the others' orders and reports), what it decides when it is the decider, and what it
//! does (routing changes, messages, events). Side effects go through [`Io`], so that a
//! whole cluster of these runs in a unit test with messages passed by hand.
//!
//! Every node takes the newest order it learns of, from the decider or from anyone's
//! report, so that a node that missed an order (or cannot hear the decider) still
//! follows; the decider is the lowest-named live node, counted over the same nodes as
//! the matrix; acknowledgements are awaited from the nodes this one hears.

use super::decide::{self, Ch, HoldDown, Matrix, Order, Policy};
use super::msg::{self, Report};
use super::routes;
use super::settings::{Member, RunSettings};
use crate::events::{Event, Kind};
use crate::net::route::Rule;
use crate::table::NodeState;
use std::collections::{BTreeMap, BTreeSet};

const MS: u64 = 1_000_000;
/// A report is sent again this often even when nothing changed, so that a lost one is
/// mended.
const REPORT_EVERY_NS: u64 = 1_000 * MS;
/// Epochs written ahead to the state file at a time: the order path never waits for a
/// disk (an fsync costs milliseconds), and a restart never reuses an epoch.
pub const EPOCH_BLOCK: u64 = 64;
/// An order or report this far beyond the newest epoch known is refused: one signed
/// message with a huge epoch would otherwise end every later order (as hb-watch
/// refuses a generation far ahead).
pub const EPOCH_LEAP: u64 = 1 << 20;

/// What the node's effects are done through.
pub trait Io {
    /// A FIFO block to hb-send (signed, sent on every channel).
    fn send(&mut self, block: &str);
    /// Delete then add rules, in one netlink datagram.
    fn rules(&mut self, delete: &[Rule], add: &[Rule]) -> Result<(), String>;
    /// Keep the epoch and the order (durably when `durable`).
    fn save(&mut self, saved: &Saved, durable: bool) -> Result<(), String>;
    /// CLOCK_MONOTONIC, for the time a change took.
    fn now(&self) -> u64;
}

/// What survives a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    /// No epoch up to this one is ever given again by this node.
    pub reserved: u64,
    /// The order applied last.
    pub order: Order,
}

/// A peer as this node's table has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub state: NodeState,
    /// Per channel (ours, in order): whether its heartbeats arrive there.
    pub links: Vec<bool>,
}

/// An order this decider waits to see applied everywhere.
#[derive(Debug, Clone)]
struct Outstanding {
    order: Order,
    sent_ns: u64,
    last_sent_ns: u64,
    /// node → when its acknowledgement came (ns since sent).
    acked: BTreeMap<String, u64>,
    stuck_said: bool,
    back: bool,
}

/// The channel a node's traffic uses under an order.
fn channel_of(o: &Order, node: &str) -> Ch {
    o.moved.get(node).copied().unwrap_or(o.use_)
}

pub struct Node {
    pub s: RunSettings,
    names: Vec<String>,
    pub order: Order,
    /// When this node applied its order (for the age its reports carry).
    applied_ns: u64,
    /// Epochs reserved on disk (never given again).
    reserved: u64,
    /// Epochs this node may have given before its start: the next is above.
    floor: u64,
    /// The last report of every member (this node's own included), and when it came.
    pub reports: BTreeMap<String, Report>,
    report_at: BTreeMap<String, u64>,
    /// Peers as the table has them.
    pub seen: BTreeMap<String, Seen>,
    pub carrier: Vec<bool>,
    /// The rules in place.
    pub rules_now: Vec<Rule>,
    last_took_us: u64,
    hold: HoldDown,
    /// A change wanted since, which, and whether it is the switch back.
    pending: Option<(u64, Order, bool)>,
    held_said: Option<u64>,
    out: Option<Outstanding>,
    /// Since when the preferred channel carries every live pair.
    healthy_since: Option<u64>,
    /// Since when a live node reports another order than the current one (a decider
    /// that died half way).
    lagging_since: Option<u64>,
    was_decider: bool,
    started_ns: u64,
    last_report_ns: u64,
    sent_report: Option<Report>,
    pub events: Vec<Event>,
    pub decider: String,
    /// The rules could not be made what the order says: tried again at every look.
    routes_failed: bool,
    /// Something the status file shows changed.
    pub dirty: bool,
}

impl Node {
    pub fn new(s: RunSettings, saved: Saved, now: u64) -> Node {
        let names = s.channel_names();
        let n = s.channels.len();
        let hold = HoldDown::new(s.hold_down.as_nanos() as u64);
        let me = s.node.clone();
        let mut order = saved.order;
        if order.use_ >= n || order.moved.values().any(|&c| c >= n) {
            // The channels changed since: start from the preferred one.
            order = decide::home(&order, s.preferred);
        }
        Node {
            names,
            floor: saved.reserved.max(order.epoch),
            order,
            applied_ns: now,
            reserved: saved.reserved,
            reports: BTreeMap::new(),
            report_at: BTreeMap::new(),
            seen: BTreeMap::new(),
            carrier: vec![true; n],
            rules_now: Vec::new(),
            last_took_us: 0,
            hold,
            pending: None,
            held_said: None,
            out: None,
            healthy_since: None,
            lagging_since: None,
            was_decider: false,
            started_ns: now,
            last_report_ns: 0,
            sent_report: None,
            events: Vec::new(),
            decider: me,
            routes_failed: false,
            dirty: true,
            s,
        }
    }

    pub fn me(&self) -> &str {
        &self.s.node
    }

    fn peers(&self) -> Vec<&Member> {
        self.s.members.iter().filter(|m| m.name != self.s.node).collect()
    }

    fn ch(&self, c: Ch) -> &str {
        self.names.get(c).map_or("?", |s| s.as_str())
    }

    /// Reserve epochs on disk up to at least `need` (durably, before any is used).
    fn reserve(&mut self, io: &mut dyn Io, need: u64) -> Result<(), String> {
        if need <= self.reserved {
            return Ok(());
        }
        let reserved = need.saturating_add(EPOCH_BLOCK);
        io.save(
            &Saved {
                reserved,
                order: self.order.clone(),
            },
            true,
        )?;
        self.reserved = reserved;
        Ok(())
    }

    /// At start: the epochs this node may have given before are never given again, and
    /// the last order is applied again.
    pub fn start(&mut self, io: &mut dyn Io, now: u64) -> Result<(), String> {
        self.reserve(io, self.floor.saturating_add(1))?;
        self.apply_routes(io);
        self.report(io, now, true);
        Ok(())
    }

    // ---- What the node's routes are ----

    /// Make the rules what the order and the carrier say; returns whether they changed.
    fn apply_routes(&mut self, io: &mut dyn Io) -> bool {
        let peers = self.peers();
        let plan = routes::plan(&self.order, self.me(), &peers, &self.carrier, self.s.preferred);
        let want = routes::rules(&self.s, &plan);
        if want == self.rules_now {
            self.routes_failed = false;
            return false;
        }
        let (del, add) = routes::diff(&self.rules_now, &want);
        let t0 = io.now();
        match io.rules(&del, &add) {
            Ok(()) => {
                self.last_took_us = io.now().saturating_sub(t0) / 1000;
                self.rules_now = want;
                self.routes_failed = false;
                self.dirty = true;
                true
            }
            Err(e) => {
                if !self.routes_failed {
                    crate::base::log::error(&format!("routing rules: {e}; tried again at every look"));
                }
                self.routes_failed = true;
                false
            }
        }
    }

    /// The channel this node's traffic uses now, by the rules in place (not by what
    /// they should be: a refused change is not reported as made).
    pub fn active(&self) -> Ch {
        let over = self
            .rules_now
            .iter()
            .find(|r| r.priority == self.s.rule_priority + routes::NODE_OFFSET);
        over.map_or(self.s.preferred, |r| {
            (r.table.saturating_sub(self.s.route_table) as Ch).min(self.names.len().saturating_sub(1))
        })
    }

    /// Whom this node does not hear, per channel, by its table.
    fn my_deaf(&self) -> Vec<BTreeSet<String>> {
        let mut d = vec![BTreeSet::new(); self.names.len()];
        for (name, seen) in &self.seen {
            if !matches!(seen.state, NodeState::Up | NodeState::Unreachable) {
                continue;
            }
            for (c, set) in d.iter_mut().enumerate() {
                if !seen.links.get(c).copied().unwrap_or(false) {
                    set.insert(name.clone());
                }
            }
        }
        d
    }

    fn my_report(&self) -> Report {
        Report {
            order: self.order.clone(),
            active: self.active(),
            deaf: self.my_deaf(),
            carrier_down: (0..self.carrier.len()).filter(|&c| !self.carrier[c]).collect(),
            took_us: self.last_took_us,
        }
    }

    /// Send this node's report if it changed (or `force`, or it is due again).
    fn report(&mut self, io: &mut dyn Io, now: u64, force: bool) {
        let r = self.my_report();
        self.reports.insert(self.s.node.clone(), r.clone());
        // As for every node: when it applied its order (a new decider's hold-down).
        self.report_at.insert(self.s.node.clone(), self.applied_ns);
        let changed = self.sent_report.as_ref() != Some(&r);
        if changed || force || now >= self.last_report_ns + REPORT_EVERY_NS {
            let age_ms = now.saturating_sub(self.applied_ns) / MS;
            io.send(&msg::state_block(&r, age_ms, &self.names));
            self.sent_report = Some(r);
            self.last_report_ns = now;
        }
    }

    // ---- Inputs ----

    /// The table was read again: every member peer's state and links.
    pub fn table(&mut self, io: &mut dyn Io, seen: BTreeMap<String, Seen>, now: u64) {
        if seen != self.seen {
            self.dirty = true;
        }
        self.seen = seen;
        // A node that left the cluster (dead, or never heard) has no say any more; one
        // this node cannot hear but others can (unreachable) keeps its last report.
        let live = self.live();
        let me = self.s.node.clone();
        self.reports.retain(|n, _| *n == me || live.contains(n));
        self.report_at.retain(|n, _| *n == me || live.contains(n));
        self.report(io, now, false);
    }

    /// This node's device of channel `c` gained or lost its carrier.
    pub fn carrier(&mut self, io: &mut dyn Io, c: Ch, up: bool, now: u64) {
        if self.carrier.get(c) == Some(&up) {
            return;
        }
        self.carrier[c] = up;
        let changed = self.apply_routes(io);
        let ev = Event::new(Kind::ChanCarrier, &self.s.node.clone(), now)
            .with("channel", self.ch(c))
            .with("carrier", if up { "up" } else { "down" })
            .with("active", self.ch(self.active()))
            .with("moved", if changed { "1" } else { "0" })
            .with("took_us", self.last_took_us);
        self.events.push(ev);
        self.report(io, now, true);
    }

    /// The newest epoch this node knows of.
    fn known_epoch(&self) -> u64 {
        self.reports
            .values()
            .map(|r| r.order.epoch)
            .chain([self.order.epoch, self.floor])
            .max()
            .unwrap_or(0)
    }

    fn too_far(&self, epoch: u64, from: &str) -> bool {
        let far = epoch > self.known_epoch().saturating_add(EPOCH_LEAP);
        if far {
            crate::base::log::warn(&format!(
                "epoch {epoch} from {from} is more than {EPOCH_LEAP} ahead of any known ({}): refused",
                self.known_epoch()
            ));
        }
        far
    }

    /// An order from the decider `from`.
    pub fn order_in(&mut self, io: &mut dyn Io, o: Order, from: &str, now: u64) {
        if o.by != from {
            crate::base::log::warn(&format!(
                "an order from {from} signed as given by {}: ignored (a node passes on no one else's orders)",
                o.by
            ));
            return;
        }
        if self.too_far(o.epoch, from) {
            return;
        }
        if !o.newer_than(&self.order) {
            if o == self.order {
                // Sent again: our acknowledgement was lost.
                self.report(io, now, true);
            } else {
                crate::base::log::debug(&format!(
                    "an old order (epoch {} by {}) from {from}: ignored",
                    o.epoch, o.by
                ));
            }
            return;
        }
        let ev = Event::new(Kind::ChanOrdered, self.ch(o.use_), now)
            .with("epoch", o.epoch)
            .with("by", &o.by)
            .with("moved", decide::moved_text(&o.moved, &self.names))
            .with("manual", if o.manual { "1" } else { "0" });
        self.events.push(ev);
        self.take(io, o, now, None);
    }

    /// Apply an order here (`via`: the node whose report it was learnt from).
    fn take(&mut self, io: &mut dyn Io, o: Order, now: u64, via: Option<&str>) {
        if self.out.as_ref().is_some_and(|out| out.order != o) {
            // A newer order replaces the one this decider was waiting for.
            self.out = None;
        }
        self.order = o;
        self.applied_ns = now;
        self.apply_routes(io);
        let mut ev = Event::new(Kind::ChanApplied, &self.s.node.clone(), now)
            .with("epoch", self.order.epoch)
            .with("channel", self.ch(self.active()))
            .with("took_us", self.last_took_us);
        if let Some(v) = via {
            ev = ev.with("from_report_of", v);
        }
        self.events.push(ev);
        // The acknowledgement first: the save is not durable, and may wait for a disk.
        self.dirty = true;
        self.report(io, now, true);
        if let Err(e) = io.save(
            &Saved {
                reserved: self.reserved,
                order: self.order.clone(),
            },
            false,
        ) {
            crate::base::log::warn(&format!("the order could not be saved: {e}"));
        }
        self.tick_out(now);
    }

    /// A report from `from`, `age_ms` after it applied its order.
    pub fn state_in(&mut self, io: &mut dyn Io, r: Report, age_ms: u64, from: &str, now: u64) {
        if self.too_far(r.order.epoch, from) {
            return;
        }
        let first = !self.reports.contains_key(from);
        if self.reports.get(from) != Some(&r) {
            self.dirty = true;
        }
        self.reports.insert(from.to_string(), r.clone());
        self.report_at
            .insert(from.to_string(), now.saturating_sub(age_ms.saturating_mul(MS)));
        if first {
            // A node just (re)started, or came back: it learns everyone's view at once
            // instead of in a second.
            self.report(io, now, true);
        }
        if let Some(out) = &mut self.out {
            let expect = channel_of(&out.order, from);
            if r.order == out.order && r.active == expect && !out.acked.contains_key(from) {
                let after = now.saturating_sub(out.sent_ns);
                out.acked.insert(from.to_string(), after);
                let ev = Event::new(Kind::ChanApplied, from, now)
                    .with("epoch", r.order.epoch)
                    .with("channel", self.ch(r.active))
                    .with("took_us", r.took_us)
                    .with("after_us", after / 1000);
                self.events.push(ev);
            }
        }
        self.tick_out(now);
    }

    /// A hand request: `Some(c)` to switch everyone to c, `None` back home. On the
    /// decider it becomes an order at once (no hold-down: a person asked); elsewhere it
    /// is passed on.
    pub fn request(&mut self, io: &mut dyn Io, to: Option<Ch>, from: &str, now: u64) {
        if self.decider != self.s.node {
            if from == self.s.node {
                io.send(&msg::request_block(to, &self.names));
            }
            return;
        }
        let o = match to {
            Some(c) => Order {
                use_: c,
                moved: BTreeMap::new(),
                manual: true,
                ..self.order.clone()
            },
            None => decide::home(&self.order, self.s.preferred),
        };
        if self
            .out
            .as_ref()
            .is_some_and(|out| out.order.same_routes(&o) && out.order.manual == o.manual)
        {
            return;
        }
        self.pending = None;
        self.give(io, o, now, false, to.is_none());
    }

    // ---- Deciding ----

    /// The nodes of the cluster as this node sees it: itself, those it hears, and
    /// those others hear (unreachable).
    fn live(&self) -> BTreeSet<String> {
        let mut live: BTreeSet<String> = self
            .seen
            .iter()
            .filter(|(_, s)| matches!(s.state, NodeState::Up | NodeState::Unreachable))
            .map(|(n, _)| n.clone())
            .collect();
        live.insert(self.s.node.clone());
        live
    }

    /// The nodes whose acknowledgement can reach this one: itself and those it hears.
    fn heard(&self) -> BTreeSet<String> {
        let mut h: BTreeSet<String> = self
            .seen
            .iter()
            .filter(|(_, s)| s.state == NodeState::Up)
            .map(|(n, _)| n.clone())
            .collect();
        h.insert(self.s.node.clone());
        h
    }

    /// The lowest-named live node.
    fn elect(&self) -> String {
        self.live().into_iter().next().unwrap_or_default()
    }

    fn matrix(&self) -> Matrix {
        let mut m = Matrix::new(self.names.len());
        let live = self.live();
        for n in &live {
            let deaf = if *n == self.s.node {
                self.my_deaf()
            } else {
                self.reports.get(n).map(|r| r.deaf.clone()).unwrap_or_default()
            };
            let deaf = deaf
                .into_iter()
                .map(|s| s.into_iter().filter(|x| live.contains(x)).collect())
                .collect();
            m.node(n, deaf);
        }
        m
    }

    /// The newest order anyone reported (this node's own included).
    fn current(&self) -> Order {
        let mut cur = self.order.clone();
        for r in self.reports.values() {
            if r.order.newer_than(&cur) {
                cur = r.order.clone();
            }
        }
        cur
    }

    /// Give an order: a new epoch, sent, applied here, then waited for.
    fn give(&mut self, io: &mut dyn Io, mut o: Order, now: u64, automatic: bool, back: bool) {
        let Some(epoch) = self.known_epoch().checked_add(1) else {
            crate::base::log::error("no order: the epochs are used up");
            return;
        };
        if let Err(e) = self.reserve(io, epoch) {
            crate::base::log::error(&format!("no order: the epoch could not be saved: {e}"));
            return;
        }
        o.epoch = epoch;
        o.by = self.s.node.clone();
        io.send(&msg::order_block(&o, &self.names));
        let kind = if back {
            Kind::ChanSwitchedBack
        } else {
            Kind::ChanOrdered
        };
        let ev = Event::new(kind, self.ch(o.use_), now)
            .with("epoch", o.epoch)
            .with("by", &o.by)
            .with("moved", decide::moved_text(&o.moved, &self.names))
            .with("manual", if o.manual { "1" } else { "0" })
            .with("policy", self.s.policy.as_str());
        self.events.push(ev);
        if automatic {
            self.hold.ordered(now);
        }
        self.held_said = None;
        self.lagging_since = None;
        self.take(io, o.clone(), now, None);
        // The next block of epochs is reserved now that this order is out, not when it
        // is needed: an fsync costs milliseconds, and the next order may be urgent.
        if self.reserved.saturating_sub(epoch) < EPOCH_BLOCK / 2 {
            if let Err(e) = self.reserve(io, epoch.saturating_add(EPOCH_BLOCK)) {
                crate::base::log::warn(&format!("the next epochs could not be reserved yet: {e}"));
            }
        }
        self.out = Some(Outstanding {
            order: o,
            sent_ns: now,
            last_sent_ns: now,
            acked: BTreeMap::from([(self.s.node.clone(), 0)]),
            stuck_said: false,
            back,
        });
        self.tick_out(now);
    }

    /// Whether the outstanding order is complete; say so.
    fn tick_out(&mut self, now: u64) {
        let heard = self.heard();
        let Some(out) = &mut self.out else { return };
        if heard.iter().all(|n| out.acked.contains_key(n)) {
            let last = heard
                .iter()
                .filter_map(|n| out.acked.get(n))
                .max()
                .copied()
                .unwrap_or(0);
            let ev = Event::new(
                Kind::ChanComplete,
                self.names.get(out.order.use_).map_or("?", |s| s),
                now,
            )
            .with("epoch", out.order.epoch)
            .with("nodes", heard.len())
            .with("took_us", last / 1000)
            .with("back", if out.back { "1" } else { "0" });
            self.events.push(ev);
            self.out = None;
        }
    }

    /// A new decider does not know when the last automatic switch was: the youngest
    /// order any node reports starts its hold-down.
    fn inherit_hold(&mut self, cur: &Order) {
        if cur.manual || cur.epoch == 0 {
            return;
        }
        let youngest = self
            .reports
            .iter()
            .filter(|(_, r)| r.order == *cur)
            .filter_map(|(n, _)| self.report_at.get(n))
            .max()
            .copied();
        if let Some(t) = youngest {
            self.hold.seed(t);
        }
    }

    /// Timers and decisions; call after every batch of input and at every tick.
    pub fn decide(&mut self, io: &mut dyn Io, now: u64) {
        if self.routes_failed {
            self.apply_routes(io);
        }
        let decider = self.elect();
        if decider != self.decider {
            self.dirty = true;
            self.decider = decider;
        }
        self.report(io, now, false);
        // Every node takes the newest order it learns of: one it missed (lost, or from
        // a decider it cannot hear) comes in others' reports.
        let cur = self.current();
        if cur.newer_than(&self.order) {
            let via = self
                .reports
                .iter()
                .find(|(_, r)| r.order == cur)
                .map(|(n, _)| n.clone())
                .unwrap_or_default();
            self.take(io, cur.clone(), now, Some(&via));
        }
        if self.decider != self.s.node {
            self.pending = None;
            self.out = None;
            self.healthy_since = None;
            self.lagging_since = None;
            self.was_decider = false;
            return;
        }
        if !self.was_decider {
            self.was_decider = true;
            self.inherit_hold(&cur);
        }
        let keepalive = self.s.keepalive.as_nanos() as u64;
        // Orders not yet acknowledged everywhere are sent again every two keepalives.
        let heard = self.heard();
        if let Some(out) = &mut self.out {
            if now >= out.last_sent_ns + 2 * keepalive {
                io.send(&msg::order_block(&out.order, &self.names));
                out.last_sent_ns = now;
            }
            let stuck_after = (20 * keepalive).max(self.s.deadtime.as_nanos() as u64 * 3);
            if !out.stuck_said && now >= out.sent_ns + stuck_after {
                out.stuck_said = true;
                let waiting: Vec<&str> = heard
                    .iter()
                    .filter(|n| !out.acked.contains_key(*n))
                    .map(|s| s.as_str())
                    .collect();
                let ev = Event::new(Kind::ChanStuck, self.names.get(out.order.use_).map_or("?", |s| s), now)
                    .with("epoch", out.order.epoch)
                    .with("waiting", waiting.join(","));
                self.events.push(ev);
            }
        }
        self.tick_out(now);
        // Nothing is decided while the links come up (hb-watch's initdead), nor before
        // every node heard has reported (each answers a newcomer's first report at
        // once; a second is the most it waits).
        let initdead = self.started_ns + 2 * self.s.deadtime.as_nanos() as u64;
        let reported = heard.iter().all(|n| self.reports.contains_key(n));
        if now < initdead || (!reported && now < initdead + REPORT_EVERY_NS) {
            return;
        }
        let m = self.matrix();
        // A decider that died half way: a node heard here still on another order. The
        // next order completes the switch (what the matrix asks for now, a new epoch).
        if self.out.is_none() {
            let lagging = heard.iter().any(|n| {
                self.reports
                    .get(n)
                    .is_some_and(|r| r.order != cur || r.active != channel_of(&cur, n))
            });
            match (lagging, self.lagging_since) {
                (false, _) => self.lagging_since = None,
                (true, None) => self.lagging_since = Some(now),
                (true, Some(t)) if now >= t + 2 * keepalive => {
                    self.lagging_since = None;
                    let mut o = decide::desired(&m, self.s.policy, &cur);
                    o.manual = cur.manual && o.same_routes(&cur);
                    self.give(io, o, now, false, false);
                    return;
                }
                _ => {}
            }
        }
        let mut want = decide::desired(&m, self.s.policy, &cur);
        let mut back = false;
        let home = decide::home(&cur, self.s.preferred);
        if home.same_routes(&cur) || !m.healthy(self.s.preferred) {
            self.healthy_since = None;
        } else if want.same_routes(&cur) {
            // The switch-back policy: the preferred channel has carried every pair for
            // that long.
            let since = *self.healthy_since.get_or_insert(now);
            if let Some(after) = self.s.back {
                if !cur.manual && now >= since + after.as_nanos() as u64 {
                    want = home;
                    back = true;
                }
            }
        }
        if want.same_routes(&cur) {
            if self.pending.take().is_some() {
                crate::base::log::info("the fault that asked for a switch is gone; none made");
            }
            return;
        }
        match &mut self.pending {
            Some((_, o, b)) if o.same_routes(&want) => *b = back,
            _ => {
                let broken = m.broken_under(&cur);
                let ev = Event::new(Kind::ChanProposed, self.ch(want.use_), now)
                    .with("moved", decide::moved_text(&want.moved, &self.names))
                    .with(
                        "broken",
                        broken
                            .iter()
                            .map(|(a, b)| format!("{a}-{b}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                    .with("policy", self.s.policy.as_str());
                self.events.push(ev);
                self.pending = Some((now, want.clone(), back));
            }
        }
        let (since, want, back) = self.pending.clone().expect("set above");
        if now < since + self.s.settle.as_nanos() as u64 {
            return;
        }
        if let Some(until) = self.hold.until(now) {
            if self.held_said != Some(until) {
                self.held_said = Some(until);
                let ev = Event::new(Kind::ChanHeldDown, self.ch(want.use_), now)
                    .with("for_ms", (until - now) / MS)
                    .with("flaps", self.hold.flaps);
                self.events.push(ev);
            }
            return;
        }
        self.pending = None;
        self.give(io, want, now, true, back);
    }

    /// When [`Node::decide`] wants to run again at the latest: the next keepalive, or
    /// sooner the end of a settle or of a hold-down — never a time already past.
    pub fn next_deadline(&self, now: u64) -> u64 {
        let keepalive = self.s.keepalive.as_nanos() as u64;
        let mut t = now + keepalive;
        if let Some((since, _, _)) = &self.pending {
            let settled = since + self.s.settle.as_nanos() as u64;
            if settled > now {
                t = t.min(settled);
            } else if let Some(u) = self.hold.until(now) {
                t = t.min(u);
            }
        }
        t
    }

    /// New settings (a reload): timing and policy; a new hold-down starts afresh.
    pub fn reload(&mut self, s: RunSettings) {
        if s.hold_down != self.s.hold_down {
            self.hold = HoldDown::new(s.hold_down.as_nanos() as u64);
        }
        self.s = s;
        self.dirty = true;
    }

    pub fn policy(&self) -> Policy {
        self.s.policy
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ChannelSpec, Mode};
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    /// A cluster in memory: blocks sent by one node reach every other (unless cut).
    #[derive(Default)]
    struct Wire {
        queue: Vec<(String, String)>,
    }

    struct Fake {
        me: String,
        wire: Rc<RefCell<Wire>>,
        rules: Vec<Rule>,
        saved: Vec<(Saved, bool)>,
        t: u64,
    }

    impl Io for Fake {
        fn send(&mut self, block: &str) {
            self.wire.borrow_mut().queue.push((self.me.clone(), block.to_string()));
        }
        fn rules(&mut self, delete: &[Rule], add: &[Rule]) -> Result<(), String> {
            self.rules.retain(|r| !delete.contains(r));
            self.rules.extend(add.iter().cloned());
            Ok(())
        }
        fn save(&mut self, saved: &Saved, durable: bool) -> Result<(), String> {
            self.saved.push((saved.clone(), durable));
            Ok(())
        }
        fn now(&self) -> u64 {
            self.t
        }
    }

    fn settings(me: &str, n: usize, policy: Policy) -> RunSettings {
        RunSettings {
            node: me.into(),
            channels: ["a", "b"]
                .iter()
                .enumerate()
                .map(|(i, c)| ChannelSpec {
                    name: c.to_string(),
                    dev: format!("eth{i}"),
                    mode: Mode::Bcast,
                })
                .collect(),
            members: (1..=n)
                .map(|i| Member {
                    name: format!("n{i}"),
                    addr: format!("10.0.100.{i}").parse().unwrap(),
                    via: vec![
                        format!("10.0.1.{i}").parse().unwrap(),
                        format!("10.0.2.{i}").parse().unwrap(),
                    ],
                })
                .collect(),
            policy,
            preferred: 0,
            back: None,
            deadtime: Duration::from_millis(30),
            keepalive: Duration::from_millis(10),
            hold_down: Duration::from_millis(90),
            settle: Duration::from_millis(5),
            fifo: "/nonexistent".into(),
            table: "/nonexistent".into(),
            state: "/nonexistent".into(),
            status_file: "/nonexistent".into(),
            route_table: 6940,
            rule_priority: 1000,
            json: false,
            realtime: false,
            config: None,
        }
    }

    struct Cluster {
        nodes: Vec<(Node, Fake)>,
        wire: Rc<RefCell<Wire>>,
        /// Nodes that hear nothing (their messages are lost too).
        dead: BTreeSet<String>,
        /// (from, to) pairs whose messages are lost.
        drop: BTreeSet<(String, String)>,
        t: u64,
    }

    impl Cluster {
        fn new(n: usize, policy: Policy) -> Cluster {
            let wire = Rc::new(RefCell::new(Wire::default()));
            let mut nodes = Vec::new();
            for i in 1..=n {
                let me = format!("n{i}");
                let mut io = Fake {
                    me: me.clone(),
                    wire: wire.clone(),
                    rules: vec![],
                    saved: vec![],
                    t: 0,
                };
                let mut node = Node::new(settings(&me, n, policy), Saved::default(), 0);
                node.start(&mut io, 0).unwrap();
                nodes.push((node, io));
            }
            let mut c = Cluster {
                nodes,
                wire,
                dead: BTreeSet::new(),
                drop: BTreeSet::new(),
                t: 0,
            };
            c.links(|_, _, _| true);
            c
        }

        /// Set every table: `up(x, y, c)` says whether x hears y on c.
        fn links(&mut self, up: impl Fn(&str, &str, Ch) -> bool) {
            let names: Vec<String> = self.nodes.iter().map(|(n, _)| n.me().to_string()).collect();
            let t = self.t;
            for (node, io) in &mut self.nodes {
                let me = node.me().to_string();
                let seen = names
                    .iter()
                    .filter(|y| **y != me)
                    .map(|y| {
                        let links: Vec<bool> = (0..2).map(|c| !self.dead.contains(y) && up(&me, y, c)).collect();
                        let state = if links.iter().any(|l| *l) {
                            NodeState::Up
                        } else {
                            NodeState::Dead
                        };
                        (y.clone(), Seen { state, links })
                    })
                    .collect();
                io.t = t;
                node.table(io, seen, t);
            }
        }

        /// Deliver messages until quiet, and run every node's decide at `t`.
        fn run(&mut self, t: u64) {
            self.t = t;
            for _ in 0..20 {
                for (node, io) in &mut self.nodes {
                    if !self.dead.contains(node.me()) {
                        io.t = t;
                        node.decide(io, t);
                    }
                }
                let q = std::mem::take(&mut self.wire.borrow_mut().queue);
                if q.is_empty() {
                    break;
                }
                for (from, block) in q {
                    if self.dead.contains(&from) {
                        continue;
                    }
                    let fields: Vec<(String, String)> = block
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    let t_ = fields.iter().find(|(k, _)| k == "t").map(|(_, v)| v.clone()).unwrap();
                    for (node, io) in &mut self.nodes {
                        let me = node.me().to_string();
                        if me == from || self.dead.contains(&me) || self.drop.contains(&(from.clone(), me.clone())) {
                            continue;
                        }
                        io.t = t;
                        let names = node.names().to_vec();
                        match t_.as_str() {
                            msg::T_ORDER => node.order_in(io, msg::read_order(&fields, &names).unwrap(), &from, t),
                            msg::T_STATE => {
                                let (r, age) = msg::read_state(&fields, &names).unwrap();
                                node.state_in(io, r, age, &from, t)
                            }
                            msg::T_REQUEST => {
                                let to = msg::read_request(&fields, &names).unwrap();
                                node.request(io, to, &from, t)
                            }
                            _ => {}
                        }
                    }
                }
            }
        }

        fn active(&self) -> Vec<Ch> {
            self.nodes
                .iter()
                .filter(|(n, _)| !self.dead.contains(n.me()))
                .map(|(n, _)| n.active())
                .collect()
        }

        fn events(&mut self, kind: Kind) -> usize {
            self.nodes
                .iter()
                .map(|(n, _)| n.events.iter().filter(|e| e.kind == kind).count())
                .sum()
        }
    }

    const MS: u64 = 1_000_000;

    /// n3 lost channel a: nobody hears it there, it hears nobody.
    fn n3_lost_a(x: &str, y: &str, c: Ch) -> bool {
        !(c == 0 && (x == "n3" || y == "n3"))
    }

    #[test]
    fn a_silent_loss_switches_everyone_once() {
        let mut c = Cluster::new(4, Policy::All);
        c.run(100 * MS);
        assert_eq!(c.active(), [0, 0, 0, 0]);
        c.links(n3_lost_a);
        c.run(101 * MS);
        // Settling: proposed, not ordered yet.
        assert_eq!(c.events(Kind::ChanProposed), 1);
        assert_eq!(c.active(), [0, 0, 0, 0]);
        c.run(107 * MS);
        assert_eq!(c.active(), [1, 1, 1, 1]);
        assert_eq!(c.events(Kind::ChanComplete), 1);
        // Every node's rules: the whole prefix to table b.
        for (_, io) in &c.nodes {
            assert!(
                io.rules.iter().any(|r| r.priority == 1004 && r.table == 6941),
                "{:?}",
                io.rules
            );
        }
        // a comes back: nothing moves without a back policy.
        c.links(|_, _, _| true);
        for t in 0..100 {
            c.run((110 + t * 10) * MS);
        }
        assert_eq!(c.active(), [1, 1, 1, 1]);
        assert_eq!(c.events(Kind::ChanOrdered), 4, "one order, seen by four");
    }

    #[test]
    fn per_peer_moves_only_the_failed_node() {
        let mut c = Cluster::new(4, Policy::PerPeer);
        c.run(100 * MS);
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.run(107 * MS);
        assert_eq!(c.active(), [0, 0, 1, 0]);
        let (n1, io1) = &c.nodes[0];
        assert_eq!(n1.order.moved, BTreeMap::from([("n3".to_string(), 1)]));
        assert!(io1.rules.iter().any(|r| r.priority == 1001 && r.table == 6941));
    }

    #[test]
    fn a_dying_node_is_no_switch() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        // n3's links die one after the other within the settle time, then it is dead.
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.dead.insert("n3".into());
        c.links(|_, _, _| true);
        c.run(103 * MS);
        c.run(110 * MS);
        assert_eq!(c.active(), [0, 0]);
        assert_eq!(c.events(Kind::ChanOrdered), 0);
    }

    #[test]
    fn hold_down_and_flapping() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.run(107 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
        // Now b fails for n2 and a is fine again: the switch back to a waits the
        // hold-down (90 ms from 107).
        c.links(|x, y, ch| !(ch == 1 && (x == "n2" || y == "n2")));
        c.run(120 * MS);
        c.run(130 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
        assert_eq!(c.events(Kind::ChanHeldDown), 1);
        c.run(198 * MS);
        assert_eq!(c.active(), [0, 0, 0]);
    }

    #[test]
    fn the_decider_dying_half_way_is_completed_by_the_next() {
        let mut c = Cluster::new(4, Policy::All);
        c.run(100 * MS);
        // Nothing reaches n4 (n1's order, the others' reports); then n1 dies.
        for from in ["n1", "n2", "n3"] {
            c.drop.insert((from.into(), "n4".into()));
        }
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.run(107 * MS);
        assert_eq!(c.active(), [1, 1, 1, 0]);
        c.dead.insert("n1".into());
        c.drop.clear();
        c.drop.insert(("n3".into(), "n4".into()));
        c.links(n3_lost_a);
        c.run(140 * MS);
        c.run(170 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
        let (n2, _) = &c.nodes[1];
        assert_eq!((n2.order.by.as_str(), n2.order.epoch), ("n2", 2));
    }

    #[test]
    fn stale_orders_are_ignored_and_resent_ones_acknowledged() {
        let mut c = Cluster::new(2, Policy::All);
        c.run(100 * MS);
        let (n2, io2) = &mut c.nodes[1];
        let new = Order {
            epoch: 9,
            by: "n1".into(),
            use_: 1,
            ..Order::default()
        };
        n2.order_in(io2, new.clone(), "n1", 101 * MS);
        assert_eq!(n2.active(), 1);
        let old = Order {
            epoch: 8,
            by: "n1".into(),
            use_: 0,
            ..Order::default()
        };
        n2.order_in(io2, old, "n1", 102 * MS);
        assert_eq!(n2.active(), 1);
        // An order passed on by another node than its decider is not taken.
        let forged = Order {
            epoch: 10,
            by: "n1".into(),
            use_: 0,
            ..Order::default()
        };
        n2.order_in(io2, forged, "n3", 103 * MS);
        assert_eq!(n2.order, new);
    }

    #[test]
    fn by_hand_to_and_back() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        // Typed on n3, not the decider: passed on to n1.
        {
            let (n3, io3) = &mut c.nodes[2];
            n3.request(io3, Some(1), "n3", 101 * MS);
        }
        c.run(101 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
        assert!(c.nodes[0].0.order.manual);
        {
            let (n1, io1) = &mut c.nodes[0];
            n1.request(io1, None, "n1", 102 * MS);
        }
        c.run(102 * MS);
        assert_eq!(c.active(), [0, 0, 0]);
        assert_eq!(c.events(Kind::ChanSwitchedBack), 1);
    }

    #[test]
    fn back_by_policy_after_healthy_long_enough() {
        let mut c = Cluster::new(3, Policy::All);
        for (n, _) in &mut c.nodes {
            n.s.back = Some(Duration::from_millis(200));
        }
        c.run(100 * MS);
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.run(107 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
        c.links(|_, _, _| true);
        c.run(120 * MS);
        c.run(300 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
        c.run(321 * MS);
        assert_eq!(c.active(), [1, 1, 1], "settling");
        c.run(327 * MS);
        assert_eq!(c.active(), [0, 0, 0]);
    }

    #[test]
    fn carrier_loss_moves_this_node_at_once() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        {
            let (n2, io2) = &mut c.nodes[1];
            n2.carrier(io2, 0, false, 101 * MS);
            assert_eq!(n2.active(), 1);
            assert!(io2.rules.iter().any(|r| r.priority == 1004 && r.table == 6941));
        }
        // Its report (deaf to everyone on a, no carrier) moves the others at the
        // decider's next look, after settle.
        c.links(|x, y, ch| !(ch == 0 && (x == "n2" || y == "n2")));
        c.run(101 * MS);
        c.run(107 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
    }

    #[test]
    fn epochs_are_reserved_ahead_durably() {
        let mut c = Cluster::new(2, Policy::All);
        let (_, io) = &c.nodes[0];
        assert_eq!(
            io.saved[0],
            (
                Saved {
                    reserved: 1 + EPOCH_BLOCK,
                    order: Order::default()
                },
                true
            )
        );
        c.run(100 * MS);
        c.links(|_, _, ch| ch != 0);
        c.run(101 * MS);
        c.run(107 * MS);
        let (_, io) = &c.nodes[0];
        // The order's save is not durable: the reservation covers its epoch.
        assert!(io
            .saved
            .iter()
            .skip(1)
            .all(|(s, d)| !d && s.reserved == 1 + EPOCH_BLOCK));
        // A restart starts above everything reserved.
        let saved = io.saved.last().unwrap().0.clone();
        let mut io2 = Fake {
            me: "n1".into(),
            wire: c.wire.clone(),
            rules: vec![],
            saved: vec![],
            t: 0,
        };
        let mut n = Node::new(settings("n1", 2, Policy::All), saved, 0);
        n.start(&mut io2, 0).unwrap();
        assert_eq!(io2.saved[0].0.reserved, 2 + 2 * EPOCH_BLOCK);
    }
    #[test]
    fn no_busy_deadline_while_held_down() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.run(107 * MS);
        c.links(|x, y, ch| !(ch == 1 && (x == "n2" || y == "n2")));
        c.run(120 * MS);
        c.run(130 * MS);
        assert_eq!(c.events(Kind::ChanHeldDown), 1);
        let (n1, _) = &c.nodes[0];
        let t = n1.next_deadline(131 * MS);
        assert!(t > 131 * MS && t <= 141 * MS, "{t}");
    }

    #[test]
    fn a_restart_never_gives_an_epoch_again() {
        // Saved: epochs up to 65 reserved, the last order applied was 1 (the later ones
        // were given, then power was lost before they were saved).
        let saved = Saved {
            reserved: 65,
            order: Order {
                epoch: 1,
                by: "n1".into(),
                ..Order::default()
            },
        };
        let wire = Rc::new(RefCell::new(Wire::default()));
        let mut io = Fake {
            me: "n1".into(),
            wire: wire.clone(),
            rules: vec![],
            saved: vec![],
            t: 0,
        };
        let mut n = Node::new(settings("n1", 2, Policy::All), saved, 0);
        n.start(&mut io, 0).unwrap();
        n.request(&mut io, Some(1), "n1", 10 * MS);
        assert!(n.order.epoch > 65, "{:?}", n.order);
    }

    #[test]
    fn epochs_far_ahead_are_refused() {
        let mut c = Cluster::new(2, Policy::All);
        c.run(100 * MS);
        let (n2, io2) = &mut c.nodes[1];
        let far = Order {
            epoch: u64::MAX,
            by: "n1".into(),
            use_: 1,
            ..Order::default()
        };
        n2.order_in(io2, far, "n1", 101 * MS);
        assert_eq!(n2.order.epoch, 0);
        assert_eq!(n2.active(), 0);
    }

    #[test]
    fn a_newer_order_replaces_the_one_waited_for() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        // n3 never answers: n1's order stays outstanding.
        c.dead.insert("n3".into());
        {
            let (n1, io1) = &mut c.nodes[0];
            n1.request(io1, Some(1), "n1", 101 * MS);
            assert!(n1.out.is_some());
            let newer = Order {
                epoch: n1.order.epoch + 1,
                by: "n1".into(),
                use_: 0,
                ..Order::default()
            };
            let r = Report {
                order: newer.clone(),
                active: 0,
                deaf: vec![BTreeSet::new(), BTreeSet::new()],
                carrier_down: vec![],
                took_us: 1,
            };
            n1.state_in(io1, r, 0, "n2", 102 * MS);
            n1.decide(io1, 103 * MS);
            assert_eq!(n1.order, newer);
            assert!(n1.out.is_none(), "still waiting for a replaced order");
        }
    }
    #[test]
    fn an_order_never_acknowledged_is_resent_and_said_stuck() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        // n3 applies what it gets, but nothing of n3's reaches n1.
        c.drop.insert(("n3".into(), "n1".into()));
        {
            let (n1, io1) = &mut c.nodes[0];
            n1.request(io1, Some(1), "n1", 101 * MS);
        }
        c.run(101 * MS);
        for t in (110..=400).step_by(10) {
            c.run(t * MS);
        }
        assert_eq!(c.active(), [1, 1, 1]);
        let stuck: Vec<_> = c.nodes[0]
            .0
            .events
            .iter()
            .filter(|e| e.kind == Kind::ChanStuck)
            .collect();
        assert_eq!(stuck.len(), 1, "{:?}", c.nodes[0].0.events);
        assert_eq!(stuck[0].field("waiting"), Some("n3"));
        assert_eq!(c.events(Kind::ChanComplete), 0);
    }
    #[test]
    fn a_new_decider_holds_down_from_when_the_order_was_applied() {
        let mut c = Cluster::new(3, Policy::All);
        c.run(100 * MS);
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.run(107 * MS);
        assert_eq!(c.active(), [1, 1, 1]);
        // Long after (the hold-down of 90 ms is over), n1 dies and b fails for n3.
        c.dead.insert("n1".into());
        c.links(|x, y, ch| !(ch == 1 && (x == "n3" || y == "n3")));
        c.run(1000 * MS);
        c.run(1010 * MS);
        assert_eq!(c.active(), [0, 0], "held down by an order 900 ms old");
        assert_eq!(c.events(Kind::ChanHeldDown), 0);
    }
}
