//! How an order becomes this node's routing: one table per channel, holding every
//! peer's cluster address via the peer's address on that LAN, and rules that choose the
//! table.
//!
//! Rules, not routes, switch: the whole node moves with one rule whatever the size of
//! the cluster (route replacement is one message per peer), the tables never change
//! during a switch, and `ip rule` shows at a glance where the traffic goes
//! (BENCHMARKS.md has both measured):
//!
//! | priority | rule | present |
//! |---|---|---|
//! | base+1 | `to PEER/32 lookup T(c)` | a peer whose traffic uses another channel than the node's |
//! | base+4 | `to PREFIX lookup T(c)` | the node's traffic uses a channel other than the preferred |
//! | base+8 | `to PREFIX lookup T(preferred)` | always |
//!
//! PREFIX is the shortest prefix that covers every member's cluster address (one
//! family per cluster); an address it covers that is no member's finds no route in our tables, and
//! the kernel goes on to the next rule, so nothing else is routed differently.

use super::decide::{Ch, Order};
use super::settings::{Member, RunSettings};
use crate::net::route::{HostRoute, Rule};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The rules' priorities, from the base: a peer's own, the node's channel, the
/// preferred channel's.
pub const PEER_OFFSET: u32 = 1;
pub const NODE_OFFSET: u32 = 4;
pub const HOME_OFFSET: u32 = 8;

/// Where this node sends each peer's cluster traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The channel of the node's traffic.
    pub default: Ch,
    /// Peers whose traffic uses another channel.
    pub except: BTreeMap<String, Ch>,
}

/// The channel to use for `want` given which devices have a carrier: `want` if its
/// device has one, else the first of `order` that has (a device without carrier sends
/// nothing; better any LAN than none), else `want`.
fn with_carrier(want: Ch, carrier: &[bool], order: &[Ch]) -> Ch {
    if carrier.get(want).copied().unwrap_or(true) {
        return want;
    }
    order
        .iter()
        .copied()
        .find(|&c| carrier.get(c).copied().unwrap_or(false))
        .unwrap_or(want)
}

/// This node's plan under `order`, with its own carrier overriding: a channel whose
/// device lost its carrier is left at once, without waiting for an order.
pub fn plan(order: &Order, me: &str, peers: &[&Member], carrier: &[bool], preferred: Ch) -> Plan {
    let mut fallback: Vec<Ch> = vec![order.use_, preferred];
    fallback.extend(0..carrier.len());
    let mine = order.moved.get(me).copied().unwrap_or(order.use_);
    let default = with_carrier(mine, carrier, &fallback);
    let except = peers
        .iter()
        .filter_map(|p| {
            let c = with_carrier(order.channel_between(me, &p.name), carrier, &fallback);
            (c != default).then(|| (p.name.clone(), c))
        })
        .collect();
    Plan { default, except }
}

/// An address as bits, and how many it has.
fn bits(a: &IpAddr) -> (u128, u32) {
    match a {
        IpAddr::V4(x) => (u32::from(*x).into(), 32),
        IpAddr::V6(x) => (u128::from(*x), 128),
    }
}

/// The shortest prefix covering every address (the settings allow one family per
/// cluster; an address of the other is left out).
pub fn covering(addrs: &[IpAddr]) -> Option<(IpAddr, u8)> {
    let first = addrs.first()?;
    let (f, width) = bits(first);
    let diff = addrs
        .iter()
        .filter(|a| a.is_ipv4() == first.is_ipv4())
        .fold(0u128, |d, a| d | (bits(a).0 ^ f));
    let len = width - (128 - diff.leading_zeros());
    // The low `width - len` bits cleared (a shift by 128 would overflow).
    let net = f
        .checked_shr(width - len)
        .unwrap_or(0)
        .checked_shl(width - len)
        .unwrap_or(0);
    let addr = match first {
        IpAddr::V4(_) => IpAddr::V4((net as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(net.into()),
    };
    Some((addr, len as u8))
}

fn host_len(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// The rules a plan needs, sorted.
pub fn rules(s: &RunSettings, p: &Plan) -> Vec<Rule> {
    let base = s.rule_priority;
    let table = |c: Ch| s.route_table + c as u32;
    let mut out = Vec::new();
    let addrs: Vec<IpAddr> = s.members.iter().map(|m| m.addr).collect();
    if let Some((dst, len)) = covering(&addrs) {
        out.push(Rule {
            priority: base + HOME_OFFSET,
            dst,
            dst_len: len,
            table: table(s.preferred),
        });
        if p.default != s.preferred {
            out.push(Rule {
                priority: base + NODE_OFFSET,
                dst,
                dst_len: len,
                table: table(p.default),
            });
        }
    }
    for (peer, &c) in &p.except {
        if let Some(m) = s.members.iter().find(|m| &m.name == peer) {
            out.push(Rule {
                priority: base + PEER_OFFSET,
                dst: m.addr,
                dst_len: host_len(&m.addr),
                table: table(c),
            });
        }
    }
    out.sort_by_key(|r| (r.priority, r.dst, r.dst_len, r.table));
    out
}

/// Every peer's route in every channel's table, from this node's cluster address.
pub fn tables(s: &RunSettings, ifindex: &[u32]) -> Vec<HostRoute> {
    let me = s.me();
    let mut out = Vec::new();
    for (c, &ix) in ifindex.iter().enumerate() {
        for p in s.members.iter().filter(|m| m.name != s.node) {
            out.push(HostRoute {
                dst: p.addr,
                prefix: host_len(&p.addr),
                via: p.via[c],
                ifindex: ix,
                src: Some(me.addr),
                table: s.route_table + c as u32,
            });
        }
    }
    out
}

/// The rules to delete and add to go from `now` to `want`.
pub fn diff(now: &[Rule], want: &[Rule]) -> (Vec<Rule>, Vec<Rule>) {
    let del = now.iter().filter(|r| !want.contains(r)).cloned().collect();
    let add = want.iter().filter(|r| !now.contains(r)).cloned().collect();
    (del, add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Member {
        Member {
            name: name.into(),
            addr: format!("10.0.100.{}", &name[1..]).parse().unwrap(),
            via: vec![],
        }
    }

    #[test]
    fn covering_prefixes() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            covering(&[a("10.0.100.1"), a("10.0.100.3")]),
            Some((a("10.0.100.0"), 30))
        );
        assert_eq!(covering(&[a("10.0.100.1")]), Some((a("10.0.100.1"), 32)));
        assert_eq!(
            covering(&[a("10.0.100.1"), a("10.0.101.1")]),
            Some((a("10.0.100.0"), 23))
        );
        assert_eq!(covering(&[a("fd00::1"), a("fd00::2")]), Some((a("fd00::"), 126)));
        assert_eq!(covering(&[]), None);
        assert_eq!(covering(&[a("1.0.0.1"), a("129.0.0.1")]), Some((a("0.0.0.0"), 0)));
        assert_eq!(covering(&[a("fd00::1")]), Some((a("fd00::1"), 128)));
        assert_eq!(covering(&[a("::1"), a("8000::1")]), Some((a("::"), 0)));
    }

    #[test]
    fn plans_follow_the_order_and_the_carrier() {
        let (n2, n3) = (m("n2"), m("n3"));
        let peers = [&n2, &n3];
        let mut o = Order::default();
        assert_eq!(
            plan(&o, "n1", &peers, &[true, true], 0),
            Plan {
                default: 0,
                except: BTreeMap::new()
            }
        );
        // Per-peer: n3 moved to 1.
        o.moved.insert("n3".into(), 1);
        let p = plan(&o, "n1", &peers, &[true, true], 0);
        assert_eq!((p.default, p.except.get("n3")), (0, Some(&1)));
        // On n3 itself everything goes over 1.
        let n1 = m("n1");
        let p = plan(&o, "n3", &[&n1, &n2], &[true, true], 0);
        assert_eq!((p.default, p.except.len()), (1, 0));
        // Carrier lost on 0: everything over 1 at once.
        let p = plan(&Order::default(), "n1", &peers, &[false, true], 0);
        assert_eq!((p.default, p.except.len()), (1, 0));
        // No carrier anywhere: the order stands (nothing better).
        let p = plan(&Order::default(), "n1", &peers, &[false, false], 0);
        assert_eq!(p.default, 0);
    }

    #[test]
    fn rule_diffs() {
        let r = |p: u32, t: u32| Rule {
            priority: p,
            dst: "10.0.100.0".parse().unwrap(),
            dst_len: 24,
            table: t,
        };
        let (d, a) = diff(&[r(1008, 6940)], &[r(1004, 6941), r(1008, 6940)]);
        assert_eq!((d, a), (vec![], vec![r(1004, 6941)]));
        let (d, a) = diff(&[r(1004, 6941), r(1008, 6940)], &[r(1008, 6940)]);
        assert_eq!((d, a), (vec![r(1004, 6941)], vec![]));
    }
}
