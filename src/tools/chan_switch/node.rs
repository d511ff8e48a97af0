//! One node's chan-switch: what it hears (hb-watch's events, its table, its carrier,
//! the others' orders and reports), what it decides when it is the decider, and what it
//! does (routing changes, messages, events). Side effects go through [`Io`], so that a
//! whole cluster of these runs in a unit test with messages passed by hand.

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

pub struct Node {
    pub s: RunSettings,
    names: Vec<String>,
    pub order: Order,
    reserved: u64,
    /// The last report of every member (this node's own included).
    pub reports: BTreeMap<String, Report>,
    /// Peers as the table has them.
    pub seen: BTreeMap<String, Seen>,
    pub carrier: Vec<bool>,
    /// The rules in place.
    pub rules_now: Vec<Rule>,
    last_took_us: u64,
    hold: HoldDown,
    /// A change wanted since, and which.
    pending: Option<(u64, Order, bool)>,
    held_said: Option<u64>,
    out: Option<Outstanding>,
    /// Since when the preferred channel carries every live pair.
    healthy_since: Option<u64>,
    /// Since when a live node reports an older order than the current one (a decider
    /// that died half way).
    lagging_since: Option<u64>,
    /// Hand requests waiting for this node to be the decider (or sent on).
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
            order,
            reserved: saved.reserved,
            reports: BTreeMap::new(),
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

    fn ev(&self, kind: Kind, subject: &str, now: u64) -> Event {
        Event::new(kind, subject, now)
    }

    /// Reserve epochs on disk up to at least `need` (durably, before any is used).
    fn reserve(&mut self, io: &mut dyn Io, need: u64) -> Result<(), String> {
        if need <= self.reserved {
            return Ok(());
        }
        let reserved = need + EPOCH_BLOCK;
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
        let floor = self.reserved.max(self.order.epoch);
        self.reserve(io, floor + 1)?;
        self.apply_routes(io, now, None);
        self.report(io, now, true);
        Ok(())
    }

    // ---- What the node's routes are ----

    /// Make the rules what the order and the carrier say; returns whether they changed.
    fn apply_routes(&mut self, io: &mut dyn Io, now: u64, _why: Option<&str>) -> bool {
        let peers = self.peers();
        let plan = routes::plan(&self.order, self.me(), &peers, &self.carrier, self.s.preferred);
        let want = routes::rules(&self.s, &plan);
        if want == self.rules_now {
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
                let _ = now;
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
        over.map_or(self.s.preferred, |r| (r.table - self.s.route_table) as Ch)
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
        let changed = self.sent_report.as_ref() != Some(&r);
        if changed || force || now >= self.last_report_ns + REPORT_EVERY_NS {
            io.send(&msg::state_block(&r, &self.names));
            self.sent_report = Some(r);
            self.last_report_ns = now;
        }
    }

    // ---- Inputs ----

    /// The table was read again: every member peer's state and links.
    pub fn table(&mut self, io: &mut dyn Io, seen: BTreeMap<String, Seen>, now: u64) {
        let gone: Vec<String> = self
            .seen
            .iter()
            .filter(|(n, s)| s.state == NodeState::Up && seen.get(*n).is_none_or(|x| x.state != NodeState::Up))
            .map(|(n, _)| n.clone())
            .collect();
        if seen != self.seen {
            self.dirty = true;
        }
        self.seen = seen;
        for n in gone {
            if n != self.s.node {
                self.reports.remove(&n);
            }
        }
        self.report(io, now, false);
    }

    /// This node's device of channel `c` gained or lost its carrier.
    pub fn carrier(&mut self, io: &mut dyn Io, c: Ch, up: bool, now: u64) {
        if self.carrier.get(c) == Some(&up) {
            return;
        }
        self.carrier[c] = up;
        let before = self.rules_now.clone();
        let changed = self.apply_routes(io, now, Some("carrier"));
        let ev = self
            .ev(Kind::ChanCarrier, &self.s.node.clone(), now)
            .with("channel", self.ch(c))
            .with("carrier", if up { "up" } else { "down" })
            .with("active", self.ch(self.active()))
            .with("moved", if changed && before != self.rules_now { "1" } else { "0" })
            .with("took_us", self.last_took_us);
        self.events.push(ev);
        self.report(io, now, true);
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
        let ev = self
            .ev(Kind::ChanOrdered, self.ch(o.use_), now)
            .with("epoch", o.epoch)
            .with("by", &o.by)
            .with("moved", decide::moved_text(&o.moved, &self.names))
            .with("manual", if o.manual { "1" } else { "0" });
        self.events.push(ev);
        self.take(io, o, now);
    }

    /// Apply an order here.
    fn take(&mut self, io: &mut dyn Io, o: Order, now: u64) {
        self.order = o;
        self.apply_routes(io, now, Some("order"));
        let ev = self
            .ev(Kind::ChanApplied, &self.s.node.clone(), now)
            .with("epoch", self.order.epoch)
            .with("channel", self.ch(self.active()))
            .with("took_us", self.last_took_us);
        self.events.push(ev);
        if let Err(e) = io.save(
            &Saved {
                reserved: self.reserved,
                order: self.order.clone(),
            },
            false,
        ) {
            crate::base::log::warn(&format!("the order could not be saved: {e}"));
        }
        self.report(io, now, true);
        self.tick_out(now);
    }

    /// A report from `from`.
    pub fn state_in(&mut self, r: Report, from: &str, now: u64) {
        if self.reports.get(from) != Some(&r) {
            self.dirty = true;
        }
        self.reports.insert(from.to_string(), r.clone());
        if let Some(out) = &mut self.out {
            if r.order.epoch == out.order.epoch && r.order.by == out.order.by && !out.acked.contains_key(from) {
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
        let mut o = match to {
            Some(c) => Order {
                use_: c,
                moved: BTreeMap::new(),
                manual: true,
                ..self.order.clone()
            },
            None => decide::home(&self.order, self.s.preferred),
        };
        if o.same_routes(&self.order) && o.manual == self.order.manual {
            // Already so: say it again so that the asker sees it complete.
            o = self.order.clone();
            if let Some(out) = &self.out {
                if out.order == o {
                    return;
                }
            }
        }
        self.pending = None;
        self.give(io, o, now, false, to.is_none());
    }

    // ---- Deciding ----

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

    /// The lowest-named node this one hears (itself included).
    fn elect(&self) -> String {
        let mut up: Vec<&String> = self
            .seen
            .iter()
            .filter(|(_, s)| s.state == NodeState::Up)
            .map(|(n, _)| n)
            .collect();
        up.push(&self.s.node);
        up.into_iter().min().cloned().unwrap_or_default()
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
        let epoch = self.current().epoch.max(self.order.epoch) + 1;
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
        let ev = self
            .ev(kind, self.ch(o.use_), now)
            .with("epoch", o.epoch)
            .with("by", &o.by)
            .with("moved", decide::moved_text(&o.moved, &self.names))
            .with("manual", if o.manual { "1" } else { "0" })
            .with("policy", self.s.policy.as_str());
        self.events.push(ev);
        if automatic {
            self.hold.ordered(now);
        }
        self.out = Some(Outstanding {
            order: o.clone(),
            sent_ns: now,
            last_sent_ns: now,
            acked: BTreeMap::new(),
            stuck_said: false,
            back,
        });
        self.held_said = None;
        self.lagging_since = None;
        self.take(io, o, now);
        // Our own acknowledgement.
        if let Some(out) = &mut self.out {
            out.acked.insert(self.s.node.clone(), 0);
        }
        self.tick_out(now);
    }

    /// Whether the outstanding order is complete; say so.
    fn tick_out(&mut self, now: u64) {
        let live = self.live();
        let Some(out) = &mut self.out else { return };
        if live.iter().all(|n| out.acked.contains_key(n)) {
            let last = live.iter().filter_map(|n| out.acked.get(n)).max().copied().unwrap_or(0);
            let ev = Event::new(
                Kind::ChanComplete,
                self.names.get(out.order.use_).map_or("?", |s| s),
                now,
            )
            .with("epoch", out.order.epoch)
            .with("nodes", live.len())
            .with("took_us", last / 1000)
            .with("back", if out.back { "1" } else { "0" });
            self.events.push(ev);
            self.out = None;
        }
    }

    /// Timers and decisions; call after every batch of input and at every tick.
    pub fn decide(&mut self, io: &mut dyn Io, now: u64) {
        if self.routes_failed {
            self.apply_routes(io, now, None);
        }
        let decider = self.elect();
        if decider != self.decider {
            self.dirty = true;
            self.decider = decider;
        }
        self.report(io, now, false);
        if self.decider != self.s.node {
            self.pending = None;
            self.out = None;
            return;
        }
        let keepalive = self.s.keepalive.as_nanos() as u64;
        // Orders not yet acknowledged everywhere are sent again every two keepalives.
        let live = self.live();
        if let Some(out) = &mut self.out {
            if now >= out.last_sent_ns + 2 * keepalive {
                io.send(&msg::order_block(&out.order, &self.names));
                out.last_sent_ns = now;
            }
            let stuck_after = (20 * keepalive).max(self.s.deadtime.as_nanos() as u64 * 3);
            if !out.stuck_said && now >= out.sent_ns + stuck_after {
                out.stuck_said = true;
                let waiting: Vec<&str> = live
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
        // Nothing is decided while the links come up (hb-watch's initdead).
        if now < self.started_ns + 2 * self.s.deadtime.as_nanos() as u64 {
            return;
        }
        let cur = self.current();
        if cur.newer_than(&self.order) {
            // This node missed an order that others applied: take it.
            self.take(io, cur.clone(), now);
        }
        // A decider that died half way: a live node still on an older order. The next
        // order (same routes, a new epoch) completes the switch.
        if self.out.is_none() {
            let lagging = live.iter().any(|n| {
                self.reports
                    .get(n)
                    .is_some_and(|r| r.order.epoch < cur.epoch || !r.order.same_routes(&cur))
            });
            match (lagging, self.lagging_since) {
                (false, _) => self.lagging_since = None,
                (true, None) => self.lagging_since = Some(now),
                (true, Some(t)) if now >= t + 2 * keepalive => {
                    self.lagging_since = None;
                    let o = cur.clone();
                    self.give(io, o, now, false, false);
                    return;
                }
                _ => {}
            }
        }
        let m = self.matrix();
        let mut want = decide::desired(&m, self.s.policy, &cur);
        let mut back = false;
        if want.same_routes(&cur) {
            // The switch-back policy.
            let home = decide::home(&cur, self.s.preferred);
            if m.healthy(self.s.preferred) {
                let since = *self.healthy_since.get_or_insert(now);
                if let Some(after) = self.s.back {
                    if !cur.manual && !home.same_routes(&cur) && now >= since + after.as_nanos() as u64 {
                        want = home;
                        back = true;
                    }
                }
            } else {
                self.healthy_since = None;
            }
        } else {
            self.healthy_since = None;
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
                let ev = self
                    .ev(Kind::ChanProposed, self.ch(want.use_), now)
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
                let ev = self
                    .ev(Kind::ChanHeldDown, self.ch(want.use_), now)
                    .with("for_ms", (until - now) / MS)
                    .with("flaps", self.hold.flaps);
                self.events.push(ev);
            }
            return;
        }
        self.pending = None;
        self.give(io, want, now, true, back);
    }

    /// When [`Node::decide`] wants to run again at the latest.
    pub fn next_deadline(&self, now: u64) -> u64 {
        let keepalive = self.s.keepalive.as_nanos() as u64;
        let mut t = now + keepalive;
        if let Some((since, _, _)) = &self.pending {
            t = t.min(since + self.s.settle.as_nanos() as u64);
            if let Some(u) = self.hold.until(now) {
                t = t.min(u.max(now));
            }
        }
        t.max(now)
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
                            msg::T_STATE => node.state_in(msg::read_state(&fields, &names).unwrap(), &from, t),
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
        // n1's order does not reach n4; then n1 dies.
        c.drop.insert(("n1".into(), "n4".into()));
        c.links(n3_lost_a);
        c.run(101 * MS);
        c.run(107 * MS);
        assert_eq!(c.active(), [1, 1, 1, 0]);
        c.dead.insert("n1".into());
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
}
