//! The decision: from the per-channel matrix of who hears whom, which channel the
//! cluster's traffic should use (policy `all`), or which nodes' traffic should move
//! (policy `per-peer`); and the rules that keep that decision from flapping. Pure: no
//! clock, no socket, so that every hard case is a unit test.
//!
//! A pair of live nodes is broken on a channel when either does not hear the other on
//! it (one-way loss breaks the pair: its traffic would flow one way only). The decider
//! changes the order only when that lowers the number of broken pairs, so a channel
//! that is no better is never switched to, and a node both of whose channels failed is
//! dead (hb-watch says so), not part of the matrix, not a reason to switch.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A channel, by its index in the cluster's channel list.
pub type Ch = usize;

/// What every node applies: the channel the cluster's traffic uses, and the nodes whose
/// traffic (to and from them) uses another one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Order {
    pub epoch: u64,
    /// The decider that gave it.
    pub by: String,
    #[serde(rename = "use")]
    pub use_: Ch,
    /// Per-peer policy: node → the channel its traffic uses instead.
    pub moved: BTreeMap<String, Ch>,
    /// Given by hand (`chan-switch to`): never undone by the switch-back policy.
    pub manual: bool,
}

impl Order {
    /// Whether two orders route the same way (epoch and author aside).
    pub fn same_routes(&self, o: &Order) -> bool {
        self.use_ == o.use_ && self.moved == o.moved
    }

    /// Orders are ranked by epoch; two deciders that chose the same epoch (each thought
    /// itself the lowest live node for a moment) are ranked by name, the lower first.
    pub fn newer_than(&self, o: &Order) -> bool {
        self.epoch > o.epoch || (self.epoch == o.epoch && !self.by.is_empty() && (o.by.is_empty() || self.by < o.by))
    }

    /// The channel between nodes `x` and `y` under this order: a moved node's channel
    /// wins; both moved elsewhere, the lower name's (so that both sides agree).
    pub fn channel_between(&self, x: &str, y: &str) -> Ch {
        match (self.moved.get(x), self.moved.get(y)) {
            (Some(&a), Some(&b)) => {
                if x < y {
                    a
                } else {
                    b
                }
            }
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => self.use_,
        }
    }
}

/// Which policy the configuration chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The paper's: every node moves to the standby channel together.
    All,
    /// Only the traffic to and from the node whose link failed moves.
    PerPeer,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::All => "all",
            Policy::PerPeer => "per-peer",
        }
    }
}

/// Who hears whom: for every live node, per channel, the live nodes it does not hear.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub channels: usize,
    /// The live nodes, sorted (the first is the decider).
    pub live: BTreeSet<String>,
    /// node → channel → nodes it does not hear there.
    pub deaf: BTreeMap<String, Vec<BTreeSet<String>>>,
}

impl Matrix {
    pub fn new(channels: usize) -> Matrix {
        Matrix {
            channels,
            ..Matrix::default()
        }
    }

    /// Add a live node and whom it does not hear, per channel.
    pub fn node(&mut self, name: &str, deaf: Vec<BTreeSet<String>>) {
        self.live.insert(name.to_string());
        let mut d = deaf;
        d.resize(self.channels, BTreeSet::new());
        self.deaf.insert(name.to_string(), d);
    }

    /// Whether the pair cannot talk on `c` (either side does not hear the other).
    pub fn broken(&self, x: &str, y: &str, c: Ch) -> bool {
        let deaf = |a: &str, b: &str| self.deaf.get(a).and_then(|v| v.get(c)).is_some_and(|s| s.contains(b));
        deaf(x, y) || deaf(y, x)
    }

    fn pairs(&self) -> impl Iterator<Item = (&String, &String)> {
        self.live
            .iter()
            .enumerate()
            .flat_map(move |(i, x)| self.live.iter().skip(i + 1).map(move |y| (x, y)))
    }

    /// The live pairs that cannot talk under `o`.
    pub fn broken_under(&self, o: &Order) -> Vec<(String, String)> {
        self.pairs()
            .filter(|(x, y)| self.broken(x, y, o.channel_between(x, y)))
            .map(|(x, y)| (x.clone(), y.clone()))
            .collect()
    }

    fn count_under(&self, o: &Order) -> usize {
        self.pairs()
            .filter(|(x, y)| self.broken(x, y, o.channel_between(x, y)))
            .count()
    }

    /// Whether channel `c` carries every live pair.
    pub fn healthy(&self, c: Ch) -> bool {
        !self.pairs().any(|(x, y)| self.broken(x, y, c))
    }
}

/// The order the matrix asks for, starting from the current one: the current order when
/// no change would lower the number of broken pairs. Moved nodes stay moved (their move
/// is undone only by the switch-back policy), also one that died: its death is no
/// reason for an order, and when it comes back its traffic keeps the channel it had.
pub fn desired(m: &Matrix, policy: Policy, cur: &Order) -> Order {
    let mut best = cur.clone();
    let mut count = m.count_under(&best);
    if count == 0 {
        return best;
    }
    // Policy all, or per-peer when every live node would have to move (the whole LAN
    // is down): one channel for everyone, the one with the fewest broken pairs (the
    // current one on a tie, then the channel order).
    let whole = |c: Ch| Order {
        use_: c,
        moved: BTreeMap::new(),
        manual: false,
        ..cur.clone()
    };
    let mut whole_best: Option<(usize, Order)> = None;
    for c in 0..m.channels {
        let o = whole(c);
        let n = m.count_under(&o);
        if n < count && whole_best.as_ref().is_none_or(|(b, _)| n < *b) {
            whole_best = Some((n, o));
        }
    }
    if policy == Policy::All {
        return whole_best.map_or(best, |(_, o)| o);
    }
    // Per-peer: move, one at a time, the node with the most broken pairs to the channel
    // that mends the most, while that lowers the count.
    loop {
        let mut worst: Vec<(usize, &String)> = m
            .live
            .iter()
            .map(|x| {
                let n = m
                    .live
                    .iter()
                    .filter(|y| *y != x && m.broken(x, y, best.channel_between(x, y)))
                    .count();
                (n, x)
            })
            .filter(|(n, _)| *n > 0)
            .collect();
        // The most broken first; on a tie the higher name moves (the decider, the
        // lowest, keeps its place when it can).
        worst.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(a.1)));
        let mut improved = false;
        for (_, x) in worst {
            let mut pick: Option<(usize, Order)> = None;
            for c in 0..m.channels {
                let mut o = best.clone();
                if c == o.use_ {
                    o.moved.remove(x);
                } else {
                    o.moved.insert(x.clone(), c);
                }
                if o.moved == best.moved {
                    continue;
                }
                let n = m.count_under(&o);
                if n < count && pick.as_ref().is_none_or(|(b, _)| n < *b) {
                    pick = Some((n, o));
                }
            }
            if let Some((n, o)) = pick {
                best = o;
                count = n;
                improved = true;
                break;
            }
        }
        if !improved || count == 0 {
            break;
        }
    }
    best.manual = false;
    // Every live node moved to one channel is that channel for all.
    if let Some((n, o)) = whole_best {
        if n <= count && best.moved.len() + 1 >= m.live.len() {
            return o;
        }
    }
    best
}

/// The order back to the preferred channel with nobody moved.
pub fn home(cur: &Order, preferred: Ch) -> Order {
    Order {
        use_: preferred,
        moved: BTreeMap::new(),
        manual: false,
        ..cur.clone()
    }
}

/// The hold-down: after an automatic order, the next waits `hold`; an order that comes
/// soon after the previous hold ended doubles it (flapping), a quiet spell puts it back.
#[derive(Debug, Clone)]
pub struct HoldDown {
    base_ns: u64,
    hold_ns: u64,
    /// When the last automatic order was given (0: never).
    last_ns: u64,
    pub flaps: u32,
}

/// The longest hold, as a multiple of the base.
const HOLD_MAX_FACTOR: u64 = 64;

impl HoldDown {
    pub fn new(base_ns: u64) -> HoldDown {
        HoldDown {
            base_ns,
            hold_ns: base_ns,
            last_ns: 0,
            flaps: 0,
        }
    }

    /// Until when automatic orders wait (`None`: they may go now).
    pub fn until(&self, now: u64) -> Option<u64> {
        let end = self.last_ns.checked_add(self.hold_ns)?;
        (self.last_ns != 0 && now < end).then_some(end)
    }

    /// A new decider learns when the last automatic order was applied (from the
    /// nodes' reports): its hold-down runs from then.
    pub fn seed(&mut self, at_ns: u64) {
        if at_ns > self.last_ns {
            self.last_ns = at_ns;
        }
    }

    /// An automatic order was given at `now`.
    pub fn ordered(&mut self, now: u64) {
        if self.last_ns != 0 {
            let quiet = now.saturating_sub(self.last_ns + self.hold_ns);
            if quiet < 2 * self.hold_ns {
                self.flaps += 1;
                self.hold_ns = (self.hold_ns * 2).min(self.base_ns * HOLD_MAX_FACTOR);
            } else if quiet > 8 * self.hold_ns {
                self.flaps = 0;
                self.hold_ns = self.base_ns;
            }
        }
        self.last_ns = now;
    }

    pub fn hold_ns(&self) -> u64 {
        self.hold_ns
    }
}

/// `n3:b,n4:b` for an order's moved nodes, with channel names.
pub fn moved_text(moved: &BTreeMap<String, Ch>, names: &[String]) -> String {
    moved
        .iter()
        .map(|(n, &c)| format!("{n}:{}", names.get(c).map_or("?", |s| s.as_str())))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// `n` nodes n1..nN, two channels, with `deaf` entries (node, channel, whom).
    fn matrix(n: usize, deaf: &[(&str, Ch, &[&str])]) -> Matrix {
        let mut m = Matrix::new(2);
        for i in 1..=n {
            let name = format!("n{i}");
            let mut d = vec![BTreeSet::new(), BTreeSet::new()];
            for (who, c, whom) in deaf {
                if *who == name {
                    d[*c].extend(set(whom));
                }
            }
            m.node(&name, d);
        }
        m
    }

    fn order(use_: Ch) -> Order {
        Order {
            epoch: 1,
            by: "n1".into(),
            use_,
            ..Order::default()
        }
    }

    #[test]
    fn a_healthy_cluster_stays() {
        let m = matrix(3, &[]);
        assert_eq!(desired(&m, Policy::All, &order(0)), order(0));
        assert_eq!(desired(&m, Policy::PerPeer, &order(0)), order(0));
    }

    #[test]
    fn one_nodes_silent_loss_moves_everyone_under_all() {
        // n3 lost channel 0: it hears nobody there and nobody hears it.
        let m = matrix(
            4,
            &[
                ("n3", 0, &["n1", "n2", "n4"]),
                ("n1", 0, &["n3"]),
                ("n2", 0, &["n3"]),
                ("n4", 0, &["n3"]),
            ],
        );
        let d = desired(&m, Policy::All, &order(0));
        assert_eq!(d.use_, 1);
        assert!(d.moved.is_empty());
        // Per-peer: only n3 moves.
        let d = desired(&m, Policy::PerPeer, &order(0));
        assert_eq!(d.use_, 0);
        assert_eq!(d.moved, BTreeMap::from([("n3".to_string(), 1)]));
        assert_eq!(d.channel_between("n1", "n3"), 1);
        assert_eq!(d.channel_between("n3", "n1"), 1);
        assert_eq!(d.channel_between("n1", "n2"), 0);
    }

    #[test]
    fn one_way_loss_breaks_the_pair() {
        // n2 does not hear n3 on channel 0, n3 hears n2: still a broken pair.
        let m = matrix(3, &[("n2", 0, &["n3"])]);
        assert_eq!(m.broken_under(&order(0)), vec![("n2".into(), "n3".into())]);
        assert_eq!(desired(&m, Policy::All, &order(0)).use_, 1);
        // Per-peer: one of the two moves (the higher name on a tie).
        let d = desired(&m, Policy::PerPeer, &order(0));
        assert_eq!(d.moved, BTreeMap::from([("n3".to_string(), 1)]));
        assert!(m.broken_under(&d).is_empty());
    }

    #[test]
    fn a_standby_that_is_no_better_is_not_taken() {
        // n3 lost channel 0, n2 lost channel 1: all would break n2's pairs instead.
        let m = matrix(
            3,
            &[
                ("n3", 0, &["n1", "n2"]),
                ("n1", 0, &["n3"]),
                ("n2", 0, &["n3"]),
                ("n2", 1, &["n1", "n3"]),
                ("n1", 1, &["n2"]),
                ("n3", 1, &["n2"]),
            ],
        );
        assert_eq!(desired(&m, Policy::All, &order(0)), order(0));
        // Per-peer mends n1-n3 by moving n3; n2-n3 cannot be mended on either.
        let d = desired(&m, Policy::PerPeer, &order(0));
        assert_eq!(d.moved, BTreeMap::from([("n3".to_string(), 1)]));
        assert_eq!(m.broken_under(&d).len(), 1);
    }

    #[test]
    fn the_whole_lan_down_is_one_channel_for_all_under_per_peer() {
        let all: Vec<(&str, Ch, &[&str])> = vec![
            ("n1", 0, &["n2", "n3"]),
            ("n2", 0, &["n1", "n3"]),
            ("n3", 0, &["n1", "n2"]),
        ];
        let m = matrix(3, &all);
        let d = desired(&m, Policy::PerPeer, &order(0));
        assert_eq!(d.use_, 1);
        assert!(d.moved.is_empty());
    }

    #[test]
    fn moved_nodes_stay_moved_even_when_they_die() {
        let m = matrix(3, &[]);
        let mut cur = order(0);
        cur.moved.insert("n3".into(), 1);
        assert_eq!(desired(&m, Policy::PerPeer, &cur), cur);
        let mut m2 = Matrix::new(2);
        m2.node("n1", vec![]);
        m2.node("n2", vec![]);
        assert_eq!(desired(&m2, Policy::PerPeer, &cur), cur);
    }

    #[test]
    fn a_failure_of_the_standby_after_a_switch_goes_back() {
        let m = matrix(3, &[("n1", 1, &["n2"]), ("n2", 1, &["n1"])]);
        assert_eq!(desired(&m, Policy::All, &order(1)).use_, 0);
    }

    #[test]
    fn a_manual_order_stays_manual_until_the_routes_change() {
        let mut cur = order(1);
        cur.manual = true;
        assert!(desired(&matrix(3, &[]), Policy::All, &cur).manual);
        let m = matrix(2, &[("n1", 1, &["n2"])]);
        let d = desired(&m, Policy::All, &cur);
        assert_eq!((d.use_, d.manual), (0, false));
    }

    #[test]
    fn orders_rank_by_epoch_then_the_lower_decider() {
        let a = Order {
            epoch: 5,
            by: "n2".into(),
            ..Order::default()
        };
        let b = Order {
            epoch: 5,
            by: "n1".into(),
            ..Order::default()
        };
        assert!(b.newer_than(&a));
        assert!(!a.newer_than(&b));
        assert!(!a.newer_than(&a));
        let c = Order {
            epoch: 6,
            by: "n9".into(),
            ..Order::default()
        };
        assert!(c.newer_than(&b));
        assert!(b.newer_than(&Order::default()));
    }

    #[test]
    fn hold_down_grows_with_flaps_and_shrinks_when_quiet() {
        let ms = 1_000_000;
        let mut h = HoldDown::new(90 * ms);
        assert_eq!(h.until(1), None);
        h.ordered(1000 * ms);
        assert_eq!(h.until(1050 * ms), Some(1090 * ms));
        assert_eq!(h.until(1090 * ms), None);
        // Right after the hold: a flap, the hold doubles.
        h.ordered(1100 * ms);
        assert_eq!((h.flaps, h.hold_ns()), (1, 180 * ms));
        h.ordered(1300 * ms);
        assert_eq!(h.hold_ns(), 360 * ms);
        // Long quiet: back to the base.
        h.ordered(100_000 * ms);
        assert_eq!((h.flaps, h.hold_ns()), (0, 90 * ms));
        // Capped.
        let mut h = HoldDown::new(ms);
        for i in 1..100 {
            h.ordered(i * 1000 * ms);
            h.ordered(i * 1000 * ms + h.hold_ns());
        }
        assert!(h.hold_ns() <= 64 * ms);
    }
}
