//! Real servers that join a service's pool at run time (seed 000's workers): the
//! cluster messages, and the directors' side as a pure state machine that `follow`
//! drives (tested here without a kernel, a network or a clock).
//!
//! A worker runs its own hb-send and `lvs-ctl join`, which writes to hb-send's FIFO
//!
//! - `t=join service=tcp/192.0.2.10:80 addr=10.0.0.7 port=80 weight=1` at start and
//!   again every `--every` (a lease: a director that starts later, or restarts, learns
//!   of it from the next one), and
//! - `t=leave` with the same keys when it stops.
//!
//! hb-send signs them; every director's hb-watch verifies them (a node without the
//! cluster key is never heard) and prints them as `message NODE ... t=join ...`, which
//! `follow` reads. The sender is the node hb-send stamped (`src`), never a field a script
//! could write.
//!
//! A director admits a join only if the service has a `join` rule that allows the node
//! (by name, by a CIDR holding its address, or `*`), the address is not one of the
//! service's configured real servers nor another node's joiner, and its address family
//! and port suit the forwarding method. Anything else is refused (`join-refused`, said
//! once per node, service and reason). An admitted joiner is checked with the service's
//! mon-check check, run by follow against its address every interval (as mon-check's
//! service is written: its port, not the joiner's — a pool whose joiners listen
//! elsewhere needs a check that names that port), and is added to
//! the pool only once the check passes; while in, it is checked on, and a failure takes
//! it out as the service's `on-failure` says (as mon-check's `host-down` would). It
//! leaves on its `t=leave`, at once when hb-watch says its node is dead, and when its
//! lease lapses (no renewal for the rule's `lease`).

use super::config::{Config, JoinEntry, Real, Virtual};
use super::health::{self, Health, RealId, Stamp};
use super::model::{Dest, Fwd, ServiceKey, WEIGHT_MAX};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub const T_JOIN: &str = "join";
pub const T_LEAVE: &str = "leave";
/// How long a join holds without renewal, unless the rule says.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(20);
/// Refusals remembered (to say each once); beyond this they are not said again.
const REFUSED_MAX: usize = 1024;

// ---- The rule (the `join` key of a service in the lvs-ctl section) ----

/// Who may join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// `*`: any node with the cluster key.
    Any,
    Node(String),
    Net(IpAddr, u8),
}

/// A service's `join` key, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRule {
    pub allow: Vec<Allow>,
    /// A larger weight asked for is cut to this.
    pub weight_max: u32,
    pub lease: Duration,
    /// How joiners are reached: the service's `forward`.
    pub fwd: Fwd,
}

impl JoinRule {
    pub fn resolve(e: &JoinEntry, fwd: Fwd) -> Result<JoinRule, String> {
        let mut allow = Vec::new();
        for a in &e.allow {
            allow.push(if a == "*" {
                Allow::Any
            } else if a.contains('/') {
                let (n, p) = crate::net::addr::parse_prefixed(a).map_err(|m| format!("join.allow: {m}"))?;
                Allow::Net(n, p)
            } else if let Ok(ip) = a.parse::<IpAddr>() {
                Allow::Net(ip, if ip.is_ipv4() { 32 } else { 128 })
            } else if crate::wire::hv::valid_name(a) {
                Allow::Node(a.clone())
            } else {
                return Err(format!(
                    "join.allow: `{a}' is neither a node name, a CIDR, an address nor `*'"
                ));
            });
        }
        let weight_max = e.weight_max.unwrap_or(WEIGHT_MAX);
        if weight_max > WEIGHT_MAX {
            return Err(format!("join.weight-max {weight_max}: 0 to {WEIGHT_MAX}"));
        }
        let lease = e.lease.unwrap_or(DEFAULT_LEASE);
        if lease < Duration::from_millis(100) {
            return Err(format!(
                "join.lease {}: at least 100ms",
                crate::base::duration::format(lease)
            ));
        }
        Ok(JoinRule {
            allow,
            weight_max,
            lease,
            fwd,
        })
    }

    pub fn allows(&self, node: &str, addr: IpAddr) -> bool {
        self.allow.iter().any(|a| match a {
            Allow::Any => true,
            Allow::Node(n) => n == node,
            Allow::Net(net, p) => crate::net::addr::in_prefix(addr, *net, *p),
        })
    }
}

// ---- The messages ----

/// What a joiner says: `t=join` (or `t=leave`) and the real server it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub join: bool,
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
}

impl Announce {
    pub fn real(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// The FIFO block hb-send reads.
    pub fn block(&self) -> String {
        crate::wire::fifo::block(
            if self.join { T_JOIN } else { T_LEAVE },
            &[
                ("service", health::service_name(&self.service)),
                ("addr", self.addr.to_string()),
                ("port", self.port.to_string()),
                ("weight", self.weight.to_string()),
            ],
        )
    }

    /// The fields of a `message` event; `Ok(None)` if it is no join or leave.
    pub fn read(fields: &[(String, String)]) -> Result<Option<Announce>, String> {
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let join = match get("t") {
            Some(T_JOIN) => true,
            Some(T_LEAVE) => false,
            _ => return Ok(None),
        };
        let need = |k: &str| get(k).ok_or_else(|| format!("no `{k}`"));
        let s = need("service")?;
        let service = health::parse_service_name(s).ok_or_else(|| format!("`{s}` is not a service"))?;
        let a = need("addr")?;
        let addr: IpAddr = a.parse().map_err(|_| format!("`{a}` is not an address"))?;
        crate::net::addr::check_unicast(addr, None)?;
        let p = need("port")?;
        let port: u16 = p.parse().map_err(|_| format!("`{p}` is not a port"))?;
        let weight = match get("weight") {
            None => 1,
            Some(w) => w
                .parse::<u32>()
                .ok()
                .filter(|w| *w <= WEIGHT_MAX)
                .ok_or_else(|| format!("`{w}` is not a weight (0 to {WEIGHT_MAX})"))?,
        };
        Ok(Some(Announce {
            join,
            service,
            addr,
            port,
            weight,
        }))
    }
}

// ---- What the directors keep ----

/// A joiner in the pool (its check passed), as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub node: String,
    /// The weight it asked for, cut to the rule's weight-max.
    pub weight: u32,
    /// When it went into the pool.
    pub since: Stamp,
    /// When its lease lapses unless renewed.
    pub lease_until: Stamp,
}

/// The name a joiner's check results are kept under (Health::down), and `host=` in
/// events: its address.
pub fn host_of(real: SocketAddr) -> String {
    real.ip().to_string()
}

/// `v` with the joiners of its pool as real servers (after the configured ones, by
/// address), as desired_service, follow's events and status see it.
pub fn with_joined<'a>(health: &Health, v: &'a Virtual) -> Cow<'a, Virtual> {
    let Some(rule) = &v.join else {
        return Cow::Borrowed(v);
    };
    let mut mine: Vec<(&RealId, &Joined)> = health
        .joined
        .iter()
        .filter(|(id, _)| id.service == v.service.key)
        .collect();
    if mine.is_empty() {
        return Cow::Borrowed(v);
    }
    mine.sort_by_key(|(id, _)| id.real);
    let mut out = v.clone();
    for (id, j) in mine {
        if out
            .reals
            .iter()
            .any(|r| r.dest.addr == id.real.ip() && r.dest.port == id.real.port())
        {
            continue;
        }
        let mut d = Dest::new(id.real.ip(), id.real.port());
        d.fwd = rule.fwd;
        d.weight = j.weight.min(rule.weight_max);
        out.reals.push(Real {
            dest: d,
            host: host_of(id.real),
        });
    }
    Cow::Owned(out)
}

/// What a joiner's announcement, check, death or silence did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A join that may not be (said once per node, service and reason).
    Refused {
        node: String,
        service: ServiceKey,
        real: SocketAddr,
        reason: &'static str,
    },
    /// Its check passed: in the pool (service `index`).
    Joined { id: RealId, index: usize, node: String },
    /// Out of the pool and forgotten.
    Left {
        id: RealId,
        index: Option<usize>,
        node: String,
        reason: &'static str,
    },
    /// Its weight or health changed: service `index` must be recomputed.
    Changed { index: usize },
}

/// One that announced itself and has not passed its check yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    node: String,
    weight: u32,
    lease_until: Stamp,
}

/// When a joiner (candidate or in) is checked next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    next_ns: u64,
    running: bool,
}

/// A check to run now: against `host`, mon-check's service `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub id: RealId,
    pub host: String,
    pub check: String,
}

/// How often a check runs: mon-check's interval, and its failure-interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    pub ok: Duration,
    pub failing: Duration,
}

/// The directors' side: candidates, check times, refusals said. What is in the pool
/// lives in [`Health::joined`], so that the state file, `apply` and `status` have it.
#[derive(Debug, Default)]
pub struct Joins {
    pending: HashMap<RealId, Candidate>,
    slots: HashMap<RealId, Slot>,
    refused: HashSet<(String, ServiceKey, &'static str)>,
}

/// The joiners in the pool that `pred` picks.
fn joined_where(health: &Health, pred: impl Fn(&Joined) -> bool) -> Vec<RealId> {
    health
        .joined
        .iter()
        .filter(|(_, j)| pred(j))
        .map(|(id, _)| *id)
        .collect()
}

fn index_of(cfg: &Config, key: ServiceKey) -> Option<usize> {
    cfg.services.iter().position(|v| v.service.key == key)
}

/// Why `node` may not have `a` in service `v` (None: it may).
fn refusal(v: &Virtual, health: &Health, node: &str, a: &Announce) -> Option<&'static str> {
    let Some(rule) = &v.join else {
        return Some("not-joinable");
    };
    if !rule.allows(node, a.addr) {
        return Some("not-allowed");
    }
    if a.addr.is_ipv6() != v.service.key.is_v6() && rule.fwd != Fwd::Tunnel {
        return Some("address-family");
    }
    if let ServiceKey::Addr { port, .. } = v.service.key {
        if matches!(rule.fwd, Fwd::Route | Fwd::Tunnel) && a.port != port {
            return Some("port");
        }
    }
    // A configured real server's address (any port) is its host's: a joiner there
    // would share its check's word, and mon-check's events would move both.
    let host = a.addr.to_string();
    let configured = v.reals.iter().any(|r| r.dest.addr == a.addr || r.host == host);
    if configured || v.sorry.as_ref().is_some_and(|s| s.addr == a.addr && s.port == a.port) {
        return Some("configured");
    }
    let id = RealId {
        service: v.service.key,
        real: a.real(),
    };
    if health.joined.get(&id).is_some_and(|j| j.node != node) {
        return Some("taken");
    }
    None
}

impl Joins {
    /// A `t=join` or `t=leave` from `node`.
    pub fn announce(&mut self, cfg: &Config, health: &mut Health, node: &str, a: &Announce, now: Stamp) -> Vec<Effect> {
        let id = RealId {
            service: a.service,
            real: a.real(),
        };
        let Some(index) = index_of(cfg, a.service) else {
            // A leave from a service we do not have is nothing to us.
            return if a.join {
                self.refuse(node, a, "no-such-service")
            } else {
                Vec::new()
            };
        };
        let v = &cfg.services[index];
        if !a.join {
            // Only its own node takes a joiner out.
            if self.pending.get(&id).is_some_and(|c| c.node == node) {
                self.pending.remove(&id);
                self.slots.remove(&id);
            }
            if health.joined.get(&id).is_some_and(|j| j.node == node) {
                return self.leave(cfg, health, id, "leave");
            }
            return Vec::new();
        }
        if let Some(reason) = refusal(v, health, node, a) {
            return self.refuse(node, a, reason);
        }
        if self.pending.get(&id).is_some_and(|c| c.node != node) {
            return self.refuse(node, a, "taken");
        }
        let Some(rule) = &v.join else { return Vec::new() };
        let weight = a.weight.min(rule.weight_max);
        let lease_until = now.after(rule.lease);
        if let Some(j) = health.joined.get_mut(&id) {
            j.lease_until = lease_until;
            if j.weight != weight {
                j.weight = weight;
                return vec![Effect::Changed { index }];
            }
            return Vec::new();
        }
        let c = self.pending.entry(id).or_insert_with(|| Candidate {
            node: node.to_string(),
            weight,
            lease_until,
        });
        c.weight = weight;
        c.lease_until = lease_until;
        self.slots.entry(id).or_insert(Slot {
            next_ns: now.mono_ns,
            running: false,
        });
        Vec::new()
    }

    fn refuse(&mut self, node: &str, a: &Announce, reason: &'static str) -> Vec<Effect> {
        let k = (node.to_string(), a.service, reason);
        if self.refused.len() >= REFUSED_MAX || !self.refused.insert(k) {
            return Vec::new();
        }
        vec![Effect::Refused {
            node: node.to_string(),
            service: a.service,
            real: a.real(),
            reason,
        }]
    }

    /// Take `id` out of the pool and forget it (its check's word too, unless another
    /// real server goes by the same host for the same check).
    fn leave(&mut self, cfg: &Config, health: &mut Health, id: RealId, reason: &'static str) -> Vec<Effect> {
        self.pending.remove(&id);
        self.slots.remove(&id);
        let Some(j) = health.joined.remove(&id) else {
            return Vec::new();
        };
        health.out.remove(&id);
        let index = index_of(cfg, id.service);
        if let Some(check) = index.and_then(|i| cfg.services[i].check.clone()) {
            let host = host_of(id.real);
            let still = cfg
                .services
                .iter()
                .filter(|v| v.check.as_deref() == Some(&check))
                .any(|v| with_joined(health, v).reals.iter().any(|r| r.host == host));
            if !still {
                health.host_up(&check, &host);
            }
        }
        vec![Effect::Left {
            id,
            index,
            node: j.node,
            reason,
        }]
    }

    /// hb-watch's `node-dead NODE`: its joiners go at once.
    pub fn node_dead(&mut self, cfg: &Config, health: &mut Health, node: &str) -> Vec<Effect> {
        self.pending.retain(|_, c| c.node != node);
        let ids = joined_where(health, |j| j.node == node);
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.leave(cfg, health, id, "node-dead"));
        }
        self.slots
            .retain(|id, _| health.joined.contains_key(id) || self.pending.contains_key(id));
        out
    }

    /// Leases that lapsed by `now`.
    pub fn expire(&mut self, cfg: &Config, health: &mut Health, now: Stamp) -> Vec<Effect> {
        let lapsed = |l: &Stamp| l.mono_ns <= now.mono_ns;
        let slots = &mut self.slots;
        self.pending.retain(|id, c| {
            let keep = !lapsed(&c.lease_until);
            if !keep {
                slots.remove(id);
            }
            keep
        });
        let ids = joined_where(health, |j| lapsed(&j.lease_until));
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.leave(cfg, health, id, "lease"));
        }
        out
    }

    /// A new configuration: joiners it no longer allows leave (`reason=config`); the
    /// joined ones restored from a state file get their check times.
    pub fn reconfigure(&mut self, cfg: &Config, health: &mut Health, now: Stamp) -> Vec<Effect> {
        // A new rule may refuse again what it refused before: say it again.
        self.refused.clear();
        let mut out = Vec::new();
        let ids: Vec<(RealId, String, u32)> = health
            .joined
            .iter()
            .map(|(id, j)| (*id, j.node.clone(), j.weight))
            .chain(self.pending.iter().map(|(id, c)| (*id, c.node.clone(), c.weight)))
            .collect();
        for (id, node, weight) in ids {
            let a = Announce {
                join: true,
                service: id.service,
                addr: id.real.ip(),
                port: id.real.port(),
                weight,
            };
            let ok = index_of(cfg, id.service).is_some_and(|i| refusal(&cfg.services[i], health, &node, &a).is_none());
            if !ok {
                if health.joined.contains_key(&id) {
                    out.extend(self.leave(cfg, health, id, "config"));
                } else {
                    self.pending.remove(&id);
                    self.slots.remove(&id);
                }
                continue;
            }
            self.slots.entry(id).or_insert(Slot {
                next_ns: now.mono_ns,
                running: false,
            });
        }
        out
    }

    /// The checks to start now (each marked running until [`Joins::checked`]).
    pub fn due(&mut self, cfg: &Config, now: Stamp) -> Vec<Due> {
        let mut out = Vec::new();
        for (id, s) in self.slots.iter_mut() {
            if s.running || s.next_ns > now.mono_ns {
                continue;
            }
            let Some(check) = index_of(cfg, id.service).and_then(|i| cfg.services[i].check.clone()) else {
                // Nothing to run it with (reconfigure takes it out): never due.
                s.next_ns = u64::MAX;
                continue;
            };
            s.running = true;
            out.push(Due {
                id: *id,
                host: host_of(id.real),
                check,
            });
        }
        out.sort_by_key(|d| (d.id.real, health::service_name(&d.id.service)));
        out
    }

    /// A check's result: a candidate that passes goes into the pool; one in the pool
    /// is up or down by it, as a mon-check host would be.
    #[allow(clippy::too_many_arguments)]
    pub fn checked(
        &mut self,
        cfg: &Config,
        health: &mut Health,
        id: RealId,
        ok: bool,
        status: &str,
        line: &str,
        every: Every,
        now: Stamp,
    ) -> Vec<Effect> {
        let Some(slot) = self.slots.get_mut(&id) else {
            return Vec::new();
        };
        slot.running = false;
        slot.next_ns = now.after(if ok { every.ok } else { every.failing }).mono_ns;
        let Some(index) = index_of(cfg, id.service) else {
            return Vec::new();
        };
        let Some(check) = cfg.services[index].check.clone() else {
            return Vec::new();
        };
        let host = host_of(id.real);
        if let Some(c) = self.pending.get(&id) {
            if !ok {
                return Vec::new();
            }
            let c = c.clone();
            self.pending.remove(&id);
            // A failure seen while it was a candidate is no news of a pool member.
            health.host_up(&check, &host);
            health.joined.insert(
                id,
                Joined {
                    node: c.node.clone(),
                    weight: c.weight,
                    since: now,
                    lease_until: c.lease_until,
                },
            );
            return vec![Effect::Joined {
                id,
                index,
                node: c.node,
            }];
        }
        if !health.joined.contains_key(&id) {
            self.slots.remove(&id);
            return Vec::new();
        }
        let changed = if ok {
            health.host_up(&check, &host)
        } else {
            health.host_down(&check, &host, status, line, now)
        };
        if changed {
            vec![Effect::Changed { index }]
        } else {
            Vec::new()
        }
    }

    /// The next moment something is due: a check, or a lease's end (CLOCK_MONOTONIC ns).
    pub fn next_deadline(&self, health: &Health) -> Option<u64> {
        let checks = self.slots.values().filter(|s| !s.running).map(|s| s.next_ns);
        let leases = self
            .pending
            .values()
            .map(|c| c.lease_until.mono_ns)
            .chain(health.joined.values().map(|j| j.lease_until.mono_ns));
        checks.chain(leases).min()
    }

    /// How many candidates wait for their check (for USR1 and status).
    pub fn candidates(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::config::OnFailure;
    use crate::tools::lvs_ctl::model::{Proto, Service};

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        }
    }

    fn rule(allow: &[&str]) -> JoinRule {
        JoinRule::resolve(
            &JoinEntry {
                allow: allow.iter().map(|s| s.to_string()).collect(),
                weight_max: Some(5),
                lease: Some(Duration::from_secs(10)),
            },
            Fwd::Masq,
        )
        .unwrap()
    }

    fn cfg(allow: &[&str]) -> Config {
        let mut d = Dest::new("10.0.0.1".parse().unwrap(), 80);
        d.fwd = Fwd::Masq;
        Config {
            backend: None,
            maintenance_dir: None,
            depool_threshold: 0.0,
            services: vec![Virtual {
                service: Service::new(key()),
                reals: vec![Real {
                    dest: d,
                    host: "web1".into(),
                }],
                check: Some("web/http".into()),
                on_failure: OnFailure::Quiesce,
                drain: None,
                quorum: 0,
                sorry: None,
                join: Some(rule(allow)),
            }],
        }
    }

    fn at(s: u64) -> Stamp {
        Stamp {
            mono_ns: 1_000_000_000 * (s + 1),
            unix_ms: 1_795_000_000_000 + s * 1000,
        }
    }

    fn ann(join: bool, addr: &str, weight: u32) -> Announce {
        Announce {
            join,
            service: key(),
            addr: addr.parse().unwrap(),
            port: 80,
            weight,
        }
    }

    fn id(addr: &str) -> RealId {
        RealId {
            service: key(),
            real: SocketAddr::new(addr.parse().unwrap(), 80),
        }
    }

    const EVERY: Every = Every {
        ok: Duration::from_secs(2),
        failing: Duration::from_secs(1),
    };

    use crate::wire::fifo::block_fields as fields;

    #[test]
    fn messages_round_trip_and_bad_ones_are_named() {
        let a = ann(true, "10.0.0.7", 3);
        let b = a.block();
        assert_eq!(
            b,
            ">>>\nt=join\nservice=tcp/192.0.2.10:80\naddr=10.0.0.7\nport=80\nweight=3\n<<<\n"
        );
        assert_eq!(Announce::read(&fields(&b)), Ok(Some(a.clone())));
        let l = Announce { join: false, ..a };
        assert_eq!(Announce::read(&fields(&l.block())), Ok(Some(l)));
        assert_eq!(Announce::read(&fields("t=chan-state\nepoch=1")), Ok(None));
        for (text, want) in [
            ("t=join\naddr=10.0.0.7\nport=80", "service"),
            ("t=join\nservice=tcp/x\naddr=10.0.0.7\nport=80", "not a service"),
            ("t=join\nservice=tcp/1.2.3.4:80\naddr=10.0.0\nport=80", "not an address"),
            ("t=join\nservice=tcp/1.2.3.4:80\naddr=224.0.0.1\nport=80", "multicast"),
            (
                "t=join\nservice=tcp/1.2.3.4:80\naddr=10.0.0.7\nport=70000",
                "not a port",
            ),
            (
                "t=join\nservice=tcp/1.2.3.4:80\naddr=10.0.0.7\nport=80\nweight=-1",
                "weight",
            ),
        ] {
            let e = Announce::read(&fields(text)).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn rules_allow_names_nets_and_anyone() {
        let r = rule(&["w1", "10.0.1.0/24", "10.0.2.9"]);
        assert!(r.allows("w1", "192.168.0.1".parse().unwrap()));
        assert!(r.allows("w9", "10.0.1.200".parse().unwrap()));
        assert!(r.allows("w9", "10.0.2.9".parse().unwrap()));
        assert!(!r.allows("w9", "10.0.2.8".parse().unwrap()));
        assert!(!r.allows("w2", "2001:db8::1".parse().unwrap()));
        assert!(rule(&["*"]).allows("anyone", "10.9.9.9".parse().unwrap()));
        assert!(
            !rule(&[]).allows("w1", "10.0.1.1".parse().unwrap()),
            "an empty list: nobody"
        );
        let bad = |allow: &str, wmax: Option<u32>, lease: Option<Duration>| {
            JoinRule::resolve(
                &JoinEntry {
                    allow: vec![allow.into()],
                    weight_max: wmax,
                    lease,
                },
                Fwd::Masq,
            )
            .unwrap_err()
        };
        assert!(bad("a b", None, None).contains("`a b'"));
        assert!(bad("10.0.0.0/40", None, None).contains("prefix length"));
        assert!(bad("w1", Some(70000), None).contains("weight-max"));
        assert!(bad("w1", None, Some(Duration::from_millis(5))).contains("lease"));
    }

    #[test]
    fn a_joiner_goes_in_only_once_its_check_passes_and_leaves_on_leave() {
        let c = cfg(&["w7"]);
        let mut h = Health::default();
        let mut j = Joins::default();
        assert!(j
            .announce(&c, &mut h, "w7", &ann(true, "10.0.0.7", 9), at(0))
            .is_empty());
        assert!(h.joined.is_empty(), "a candidate is not in the pool");
        assert_eq!(with_joined(&h, &c.services[0]).reals.len(), 1);
        let due = j.due(&c, at(0));
        assert_eq!(
            due,
            [Due {
                id: id("10.0.0.7"),
                host: "10.0.0.7".into(),
                check: "web/http".into()
            }]
        );
        assert!(j.due(&c, at(0)).is_empty(), "one check at a time");
        // Fails: still a candidate, checked again after the failure interval.
        assert!(j
            .checked(&c, &mut h, id("10.0.0.7"), false, "CRITICAL", "refused", EVERY, at(1))
            .is_empty());
        assert!(h.joined.is_empty() && h.down.is_empty());
        assert_eq!(j.next_deadline(&h), Some(at(2).mono_ns));
        assert!(j.due(&c, at(1)).is_empty());
        assert_eq!(j.due(&c, at(2)).len(), 1);
        let e = j.checked(&c, &mut h, id("10.0.0.7"), true, "OK", "", EVERY, at(2));
        assert_eq!(
            e,
            [Effect::Joined {
                id: id("10.0.0.7"),
                index: 0,
                node: "w7".into()
            }]
        );
        let v = with_joined(&h, &c.services[0]);
        assert_eq!(v.reals.len(), 2);
        assert_eq!(
            (v.reals[1].dest.weight, v.reals[1].dest.fwd),
            (5, Fwd::Masq),
            "weight cut to weight-max"
        );
        assert_eq!(v.reals[1].host, "10.0.0.7");
        // In, its check fails: down as a mon-check host would be, and back.
        assert_eq!(j.due(&c, at(4)).len(), 1);
        assert_eq!(
            j.checked(&c, &mut h, id("10.0.0.7"), false, "CRITICAL", "refused", EVERY, at(4)),
            [Effect::Changed { index: 0 }]
        );
        assert!(h.down["web/http"].contains_key("10.0.0.7"));
        let (t, _) = health::desired(&c, &h, at(4));
        assert_eq!(t.services[0].dest("10.0.0.7".parse().unwrap(), 80).unwrap().weight, 0);
        assert_eq!(j.due(&c, at(5)).len(), 1);
        assert_eq!(
            j.checked(&c, &mut h, id("10.0.0.7"), true, "OK", "", EVERY, at(5)),
            [Effect::Changed { index: 0 }]
        );
        let (t, _) = health::desired(&c, &h, at(5));
        assert_eq!(t.services[0].dest("10.0.0.7".parse().unwrap(), 80).unwrap().weight, 5);
        // A leave from another node is nothing; from its own, it goes.
        assert!(j
            .announce(&c, &mut h, "w8", &ann(false, "10.0.0.7", 1), at(6))
            .is_empty());
        let e = j.announce(&c, &mut h, "w7", &ann(false, "10.0.0.7", 1), at(6));
        assert!(matches!(&e[..], [Effect::Left { reason: "leave", .. }]), "{e:?}");
        assert!(h.joined.is_empty() && h.down.is_empty());
        assert_eq!(j.next_deadline(&h), None);
    }

    #[test]
    fn refusals_are_said_once_and_nothing_is_added() {
        let c = cfg(&["w7", "10.0.3.0/24"]);
        let mut h = Health::default();
        let mut j = Joins::default();
        let e = j.announce(&c, &mut h, "w9", &ann(true, "10.0.0.9", 1), at(0));
        assert!(
            matches!(
                &e[..],
                [Effect::Refused {
                    reason: "not-allowed",
                    ..
                }]
            ),
            "{e:?}"
        );
        assert!(
            j.announce(&c, &mut h, "w9", &ann(true, "10.0.0.9", 1), at(1))
                .is_empty(),
            "said once"
        );
        assert!(j.due(&c, at(1)).is_empty() && j.candidates() == 0);
        // Allowed by its address instead.
        assert!(j
            .announce(&c, &mut h, "w9", &ann(true, "10.0.3.9", 1), at(1))
            .is_empty());
        assert_eq!(j.candidates(), 1);
        // A configured real server, another node's joiner, another family, no service.
        let e = j.announce(&c, &mut h, "w7", &ann(true, "10.0.0.1", 1), at(2));
        assert!(
            matches!(
                &e[..],
                [Effect::Refused {
                    reason: "configured",
                    ..
                }]
            ),
            "{e:?}"
        );
        let mut p8080 = ann(true, "10.0.0.1", 1);
        p8080.port = 8080;
        let e = Joins::default().announce(&c, &mut h, "w7", &p8080, at(2));
        assert!(
            matches!(
                &e[..],
                [Effect::Refused {
                    reason: "configured",
                    ..
                }]
            ),
            "same host: {e:?}"
        );
        let e = j.announce(&c, &mut h, "w7", &ann(true, "10.0.3.9", 1), at(2));
        assert!(matches!(&e[..], [Effect::Refused { reason: "taken", .. }]), "{e:?}");
        let e = j.announce(&c, &mut h, "w7", &ann(true, "2001:db8::7", 1), at(2));
        assert!(
            matches!(
                &e[..],
                [Effect::Refused {
                    reason: "address-family",
                    ..
                }]
            ),
            "{e:?}"
        );
        let mut other = ann(true, "10.0.0.7", 1);
        other.service = ServiceKey::Fwmark { mark: 3, v6: false };
        assert!(j
            .announce(
                &c,
                &mut h,
                "w7",
                &Announce {
                    join: false,
                    ..other.clone()
                },
                at(2)
            )
            .is_empty());
        let e = j.announce(&c, &mut h, "w7", &other, at(2));
        assert!(
            matches!(
                &e[..],
                [Effect::Refused {
                    reason: "no-such-service",
                    ..
                }]
            ),
            "{e:?}"
        );
        let mut closed = c.clone();
        closed.services[0].join = None;
        let e = j.announce(&closed, &mut h, "w7", &ann(true, "10.0.0.7", 1), at(2));
        assert!(
            matches!(
                &e[..],
                [Effect::Refused {
                    reason: "not-joinable",
                    ..
                }]
            ),
            "{e:?}"
        );
        // Direct routing keeps the service's port.
        let mut dr = c.clone();
        dr.services[0].join.as_mut().unwrap().fwd = Fwd::Route;
        let mut p = ann(true, "10.0.0.7", 1);
        p.port = 8080;
        let e = j.announce(&dr, &mut h, "w7", &p, at(2));
        assert!(matches!(&e[..], [Effect::Refused { reason: "port", .. }]), "{e:?}");
        assert!(h.joined.is_empty());
    }

    #[test]
    fn death_lapsed_leases_and_a_narrower_configuration_take_joiners_out() {
        let c = cfg(&["w7", "w8"]);
        let mut h = Health::default();
        let mut j = Joins::default();
        let admit = |j: &mut Joins, h: &mut Health, node: &str, addr: &str, t: u64| {
            j.announce(&c, h, node, &ann(true, addr, 1), at(t));
            j.due(&c, at(t));
            j.checked(&c, h, id(addr), true, "OK", "", EVERY, at(t))
        };
        assert_eq!(admit(&mut j, &mut h, "w7", "10.0.0.7", 0).len(), 1);
        assert_eq!(admit(&mut j, &mut h, "w7", "10.0.0.17", 0).len(), 1);
        assert_eq!(admit(&mut j, &mut h, "w8", "10.0.0.8", 0).len(), 1);
        // w7 dies: both of its joiners go at once.
        let e = j.node_dead(&c, &mut h, "w7");
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|e| matches!(
            e,
            Effect::Left {
                reason: "node-dead",
                ..
            }
        )));
        assert_eq!(h.joined.len(), 1);
        // w8 renews at 5: its lease (10 s) runs to 15.
        assert!(j
            .announce(&c, &mut h, "w8", &ann(true, "10.0.0.8", 1), at(5))
            .is_empty());
        assert!(j.expire(&c, &mut h, at(14)).is_empty());
        // A weight change is a change of its service.
        assert_eq!(
            j.announce(&c, &mut h, "w8", &ann(true, "10.0.0.8", 2), at(14)),
            [Effect::Changed { index: 0 }]
        );
        let e = j.expire(&c, &mut h, at(24));
        assert!(matches!(&e[..], [Effect::Left { reason: "lease", .. }]), "{e:?}");
        assert!(h.joined.is_empty());
        // A reload that no longer allows w8 takes it out.
        assert_eq!(admit(&mut j, &mut h, "w8", "10.0.0.8", 30).len(), 1);
        let narrower = cfg(&["w7"]);
        let e = j.reconfigure(&narrower, &mut h, at(31));
        assert!(matches!(&e[..], [Effect::Left { reason: "config", .. }]), "{e:?}");
        // A joiner restored from a state file is checked again at once.
        let mut h2 = Health::default();
        h2.joined.insert(
            id("10.0.0.7"),
            Joined {
                node: "w7".into(),
                weight: 1,
                since: at(0),
                lease_until: at(40),
            },
        );
        let mut j2 = Joins::default();
        assert!(j2.reconfigure(&c, &mut h2, at(32)).is_empty());
        assert_eq!(j2.due(&c, at(32)).len(), 1);
    }
}
