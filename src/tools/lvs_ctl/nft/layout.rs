//! The table's layout and the plans that change it. Nothing here touches the kernel: a
//! [`Plan`] is nft text for the structure (the skeleton, a (kind, L) rule, a
//! persistent or DR service's chains) and element operations for everything else, so
//! every plan can be checked in a test.
//!
//! NAT state is set elements only (see the module comment of `nft`): a service's
//! record in `svcs4` (its comment), its real servers' records in `dests4`, their
//! counters in `dcnt4`, its key in the membership set of its (kind, L) rule
//! (`m4_inc_3`), and its slots in `slots4` (service . slot → real server . port).
//! Firewall-mark services have the same with an `f` in front (`fsvcs4`, `fm4_inc_3`),
//! IPv6 ones a 6. DR keeps a table of its own, with chains per service (`netdev`).

use super::sched;
use crate::net::nftables::{Concat, Data, Elem, Family, Op};
use crate::tools::lvs_ctl::backend::{Error, Result};
use crate::tools::lvs_ctl::model::{Dest, Fwd, Proto, Service, ServiceKey, F_PERSISTENT};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TABLE: &str = "hakit_lvs";
/// jhash's seed: fixed, so that another director hashes a client the same way.
pub const SEED: &str = "0x4c565321";
/// DR's record rules match this mark (and do nothing): they exist for their comments.
pub const RECORD_MARK: &str = "0x4c565321";
/// How long DR remembers a flow (there is no conntrack before the netdev hook).
pub const FLOW_TIMEOUT: u32 = 900;
/// Unused (kind, L) rules are left in place (they match nothing) until there are more
/// than this many: removing one is an nft batch, which a health change should not wait
/// for.
pub const LAZY_RULES: usize = 16;
/// The comment that names a (kind, L) rule: `lvs-rule m4_inc_3`.
pub const RULE_TAG: &str = "lvs-rule ";

/// How a service's packets reach its real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// DNAT in `inet hakit_lvs`, conntrack carries the connection.
    Nat,
    /// Direct routing in `netdev hakit_lvs`: the frame is re-addressed and sent on.
    Dr,
}

pub fn path(s: &Service) -> Path {
    if s.dests.iter().any(|d| d.fwd == Fwd::Route) {
        Path::Dr
    } else {
        Path::Nat
    }
}

fn hex(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v) => format!("{:08x}", u32::from(v)),
        IpAddr::V6(v) => format!("{:032x}", u128::from(v)),
    }
}

fn fam(v6: bool) -> char {
    if v6 {
        '6'
    } else {
        '4'
    }
}

fn proto_char(p: Proto) -> char {
    match p {
        Proto::Tcp => 't',
        Proto::Udp => 'u',
        Proto::Sctp => 's',
    }
}

pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
    }
}

/// The service's chain.
pub fn service_id(k: &ServiceKey) -> String {
    match *k {
        ServiceKey::Addr { proto, addr, port } => {
            format!("s{}{}{}_{port:04x}", fam(addr.is_ipv6()), proto_char(proto), hex(addr))
        }
        ServiceKey::Fwmark { mark, v6 } => format!("f{}_{mark:08x}", fam(v6)),
    }
}

/// The real server's port as DNAT uses it: an address service's real server without
/// a port takes the service's.
pub fn dest_port(k: &ServiceKey, d: &Dest) -> u16 {
    match *k {
        ServiceKey::Addr { port, .. } if d.port == 0 => port,
        _ => d.port,
    }
}

pub fn dest_id(k: &ServiceKey, d: &Dest) -> String {
    format!("{}_{}_{:04x}", service_id(k), hex(d.addr), d.port)
}

/// `10.0.0.1 . tcp . 80` as the dispatch maps key it.
fn svc_elem(k: &ServiceKey) -> String {
    match *k {
        ServiceKey::Addr { proto, addr, port } => format!("{addr} . {} . {port}", proto_name(proto)),
        ServiceKey::Fwmark { mark, .. } => format!("{mark:#010x}"),
    }
}

fn addr_port(a: IpAddr, p: u16) -> String {
    match a {
        IpAddr::V4(v) => format!("{v}:{p}"),
        IpAddr::V6(v) => format!("[{v}]:{p}"),
    }
}

fn ipf(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

/// `ip saddr & 255.255.255.0` (just `ip saddr` for one client).
fn masked_saddr(s: &Service) -> String {
    let v6 = s.key.is_v6();
    let f = ipf(v6);
    if v6 {
        let p = s.netmask.min(128);
        if p == 128 {
            return format!("{f} saddr");
        }
        let m = if p == 0 { 0 } else { !0u128 << (128 - p) };
        format!("{f} saddr & {}", Ipv6Addr::from(m))
    } else {
        let m = Ipv4Addr::from(s.netmask.to_ne_bytes());
        if m == Ipv4Addr::BROADCAST {
            return format!("{f} saddr");
        }
        format!("{f} saddr & {m}")
    }
}

/// The comment of a service's record rule: `lvs-service SCHED FLAGS TIMEOUT NETMASK`
/// (the key is in the chain's name and checked against it when read back).
pub fn service_record(s: &Service) -> String {
    format!(
        "lvs-service {} {} {} {:#x} {:#x}",
        key_text(&s.key),
        s.scheduler,
        s.flags & crate::tools::lvs_ctl::model::F_USER,
        s.timeout,
        s.netmask
    )
}

/// The key as a record holds it: `tcp 10.0.0.1 80`, `fwmark 7 v6`.
pub fn key_text(k: &ServiceKey) -> String {
    match *k {
        ServiceKey::Addr { proto, addr, port } => format!("{} {addr} {port}", proto_name(proto)),
        ServiceKey::Fwmark { mark, v6 } => format!("fwmark {mark} {}", if v6 { "v6" } else { "v4" }),
    }
}

/// `lvs-dest ADDR PORT FWD WEIGHT`.
pub fn dest_record(d: &Dest) -> String {
    let fwd = match d.fwd {
        Fwd::Masq => "masq",
        Fwd::Route => "route",
        Fwd::Local => "local",
        Fwd::Tunnel => "tunnel",
    };
    format!("lvs-dest {} {} {fwd} {}", d.addr, d.port, d.weight)
}

/// What DR needs to know of the network: where the VIP lives and how a real server
/// is reached. A trait so that batches can be rendered in tests without a network.
pub trait Network {
    /// The interface holding `vip` (DR's ingress hook goes there).
    fn vip_device(&mut self, vip: IpAddr) -> Result<String>;
    /// The interface towards `rip`, that interface's MAC and `rip`'s MAC.
    fn next_hop(&mut self, rip: IpAddr) -> Result<Hop>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub dev: String,
    pub own_mac: String,
    pub mac: String,
}

fn check_devname(d: &str) -> Result<()> {
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return Err(Error::Kernel(format!("interface name `{d}` cannot name an nft chain")));
    }
    Ok(())
}

/// What the kernel holds besides the model: which tables, which (kind, L) rules, and
/// each NAT service's membership and slots as they are (so that a change deletes what
/// is there, even when it drifted from the records).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Present {
    /// Read from the kernel (or a plan's result); until then a commit reads first.
    pub known: bool,
    pub inet: bool,
    pub netdev: bool,
    /// Devices with a DR ingress chain.
    pub dr_devices: BTreeSet<String>,
    /// The (kind, L) rules, by their membership set's name.
    pub rules: BTreeSet<String>,
    pub actual: HashMap<ServiceKey, Actual>,
    /// How many services each membership set holds (from `actual`).
    pub uses: HashMap<String, usize>,
}

impl Present {
    /// What the kernel holds once `p` is done.
    pub fn apply(&mut self, p: &Plan) {
        if p.reset {
            *self = Present::default();
        }
        self.known = true;
        self.inet = p.tables.inet;
        self.netdev = p.tables.netdev;
        self.dr_devices.clone_from(&p.tables.dr_devices);
        self.rules.extend(p.rules_added.iter().cloned());
        for (k, a) in &p.actual {
            if let Some(old) = self.actual.remove(k) {
                for m in old.members {
                    if let Some(n) = self.uses.get_mut(&m) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            if let Some(a) = a {
                for m in &a.members {
                    *self.uses.entry(m.clone()).or_default() += 1;
                }
                self.actual.insert(*k, a.clone());
            }
        }
    }

    /// Unused rules removed from the kernel.
    pub fn dropped(&mut self, names: &[String]) {
        for n in names {
            self.rules.remove(n);
            self.uses.remove(n);
        }
    }

    /// The counts of `uses`, from `actual` (after a read).
    pub fn count_uses(&mut self) {
        self.uses.clear();
        for a in self.actual.values() {
            for m in &a.members {
                *self.uses.entry(m.clone()).or_default() += 1;
            }
        }
    }
}

/// Which tables the kernel has once a plan is done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    pub inet: bool,
    pub netdev: bool,
    pub dr_devices: BTreeSet<String>,
}

/// A real server as a slot names it: address and port (0 for a firewall-mark service,
/// whose DNAT keeps the client's port).
pub type Slot = (IpAddr, u16);

/// A NAT service's scheduling state in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actual {
    /// The membership sets holding its key (one, unless it drifted).
    pub members: Vec<String>,
    pub slots: BTreeMap<u32, Slot>,
    /// Whether `slots` are known (read, or made by a plan), not taken from the records:
    /// a change to slots not known deletes and adds every one, so that one missing
    /// (drift) makes the kernel refuse the transaction and the slots are read for real.
    pub known: bool,
}

/// One field of a set's key or a map's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum F {
    Ip(IpAddr),
    Proto(Proto),
    Port(u16),
    Mark(u32),
    Int(u32),
}

impl F {
    fn text(&self) -> String {
        match *self {
            F::Ip(a) => a.to_string(),
            F::Proto(p) => proto_name(p).to_string(),
            F::Port(p) => p.to_string(),
            F::Mark(m) => format!("{m:#010x}"),
            F::Int(n) => n.to_string(),
        }
    }

    /// The bytes nf_tables keys the fields by (nft's concatenation layout).
    pub fn bytes(fields: &[F]) -> Vec<u8> {
        let mut c = Concat::new();
        for f in fields {
            c = match *f {
                F::Ip(IpAddr::V4(a)) => c.ipv4(a),
                F::Ip(IpAddr::V6(a)) => c.ipv6(a),
                F::Proto(p) => c.proto(p.number() as u8),
                F::Port(p) => c.port(p),
                F::Mark(m) => c.mark(m),
                F::Int(n) => c.integer(n),
            };
        }
        c.bytes()
    }
}

fn fields_text(f: &[F]) -> String {
    f.iter().map(F::text).collect::<Vec<_>>().join(" . ")
}

/// An element to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub key: Vec<F>,
    pub data: Option<Vec<F>>,
    pub comment: Option<String>,
}

/// A plan's element changes, by set: every delete before every add (a service's keys
/// are its own, so this keeps each service's delete-then-add order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elems {
    pub dels: BTreeMap<String, Vec<Vec<F>>>,
    pub adds: BTreeMap<String, Vec<Add>>,
}

/// Elements per line of nft text (nft takes any length; this keeps lines readable).
const TEXT_CHUNK: usize = 256;

impl Elems {
    fn del(&mut self, set: &str, key: Vec<F>) {
        match self.dels.get_mut(set) {
            Some(v) => v.push(key),
            None => {
                self.dels.insert(set.to_string(), vec![key]);
            }
        }
    }

    fn add(&mut self, set: &str, key: Vec<F>, data: Option<Vec<F>>, comment: Option<String>) {
        let a = Add { key, data, comment };
        match self.adds.get_mut(set) {
            Some(v) => v.push(a),
            None => {
                self.adds.insert(set.to_string(), vec![a]);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.dels.values().map(Vec::len).sum::<usize>() + self.adds.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As nft text, for a batch that also changes structure.
    pub fn text(&self) -> String {
        let mut t = String::new();
        for (set, keys) in &self.dels {
            for c in keys.chunks(TEXT_CHUNK) {
                let ks: Vec<String> = c.iter().map(|k| fields_text(k)).collect();
                let _ = writeln!(t, "delete element inet {TABLE} {set} {{ {} }}", ks.join(", "));
            }
        }
        for (set, adds) in &self.adds {
            for c in adds.chunks(TEXT_CHUNK) {
                let es: Vec<String> = c
                    .iter()
                    .map(|a| {
                        let mut e = fields_text(&a.key);
                        if let Some(d) = &a.data {
                            let _ = write!(e, " : {}", fields_text(d));
                        }
                        if let Some(c) = &a.comment {
                            let _ = write!(e, " comment \"{c}\"");
                        }
                        e
                    })
                    .collect();
                let _ = writeln!(t, "add element inet {TABLE} {set} {{ {} }}", es.join(", "));
            }
        }
        t
    }

    /// As nf_tables ops for one netlink transaction.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops = Vec::new();
        for (set, keys) in &self.dels {
            ops.push(Op::DelSetElems {
                family: Family::Inet,
                table: TABLE.into(),
                set: set.clone(),
                keys: keys.iter().map(|k| F::bytes(k)).collect(),
            });
        }
        for (set, adds) in &self.adds {
            ops.push(Op::NewSetElems {
                family: Family::Inet,
                table: TABLE.into(),
                set: set.clone(),
                elems: adds
                    .iter()
                    .map(|a| Elem {
                        key: F::bytes(&a.key),
                        data: a.data.as_ref().map(|d| Data::Value(F::bytes(d))),
                        timeout: None,
                        comment: a.comment.clone(),
                    })
                    .collect(),
            });
        }
        ops
    }

    /// The set an op of [`Elems::ops`] changes, to name it in a refusal.
    pub fn op_set(&self, i: usize) -> Option<&str> {
        self.dels.keys().chain(self.adds.keys()).nth(i).map(String::as_str)
    }
}

/// nft text being written.
#[derive(Debug, Default)]
pub struct Batch {
    pub text: String,
}

impl Batch {
    fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

/// What turns one model into another.
#[derive(Debug, Default)]
pub struct Plan {
    /// What goes before anything else: the tables dropped by a flush.
    pub first: String,
    /// Structure nothing uses yet, so that making it first changes nothing visible: the
    /// skeleton, the (kind, L) rules the elements will need.
    pub prep: String,
    pub elems: Elems,
    /// Structure that is visible: the chains of persistent and DR services, tables
    /// removed. When not empty, the whole plan is one nft batch.
    pub slow: String,
    /// (kind, L) rules no service uses any more.
    pub unused: Vec<String>,
    /// What the kernel holds after: its tables, the rules `prep` adds, the services'
    /// scheduling state (None: gone), and whether all else was dropped first.
    pub tables: Tables,
    pub rules_added: Vec<String>,
    pub actual: Vec<(ServiceKey, Option<Actual>)>,
    pub reset: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.first.is_empty() && self.prep.is_empty() && self.elems.is_empty() && self.slow.is_empty()
    }

    /// Whether the plan is elements only (after `prep`): one netlink transaction.
    pub fn fast(&self) -> bool {
        self.first.is_empty() && self.slow.is_empty()
    }

    /// The whole plan as one nft batch (`drops` removes unused rules in it too).
    pub fn text(&self, drops: &str) -> String {
        let mut t = self.first.clone();
        t.push_str(&self.prep);
        t.push_str(&self.elems.text());
        t.push_str(&self.slow);
        t.push_str(drops);
        t
    }
}

/// The sets and chains of one kind of service key.
struct Names {
    svcs: String,
    dests: String,
    dcnt: String,
    slots: String,
    chains: String,
    post: String,
    /// The membership sets' prefix: `m4`, `fm6`.
    member: String,
}

fn names(k: &ServiceKey) -> Names {
    let (f, v) = match *k {
        ServiceKey::Addr { addr, .. } => ("", fam(addr.is_ipv6())),
        ServiceKey::Fwmark { v6, .. } => ("f", fam(v6)),
    };
    Names {
        svcs: format!("{f}svcs{v}"),
        dests: format!("{f}dests{v}"),
        dcnt: format!("{f}dcnt{v}"),
        slots: format!("{f}slots{v}"),
        chains: format!("{f}chains{v}"),
        post: format!("{f}post{v}"),
        member: format!("{f}m{v}"),
    }
}

/// The service's key as its sets key it.
pub fn svc_key(k: &ServiceKey) -> Vec<F> {
    match *k {
        ServiceKey::Addr { proto, addr, port } => vec![F::Ip(addr), F::Proto(proto), F::Port(port)],
        ServiceKey::Fwmark { mark, .. } => vec![F::Mark(mark)],
    }
}

/// A real server's key in `dests` and `dcnt`: the service . address . port as DNAT
/// writes it (mark services: mark . address).
pub fn dest_key(k: &ServiceKey, d: &Dest) -> Vec<F> {
    let mut v = svc_key(k);
    v.push(F::Ip(d.addr));
    if let ServiceKey::Addr { .. } = k {
        v.push(F::Port(dest_port(k, d)));
    }
    v
}

fn slot_key(k: &ServiceKey, i: u32) -> Vec<F> {
    let mut v = svc_key(k);
    v.push(F::Int(i));
    v
}

fn slot_data(k: &ServiceKey, s: Slot) -> Vec<F> {
    match k {
        ServiceKey::Addr { .. } => vec![F::Ip(s.0), F::Port(s.1)],
        ServiceKey::Fwmark { .. } => vec![F::Ip(s.0)],
    }
}

/// How a slot is chosen: `inc` (numgen inc: rr, wrr, fo), `sh` (jhash of the client:
/// sh, mh), `dh` (jhash of the destination).
pub fn slot_expr(s: &Service) -> &'static str {
    match s.scheduler.as_str() {
        "sh" | "mh" => "sh",
        "dh" => "dh",
        _ => "inc",
    }
}

fn expr_text(expr: &str, v6: bool, n: usize) -> String {
    let f = ipf(v6);
    match expr {
        "sh" => format!("jhash {f} saddr mod {n} seed {SEED}"),
        "dh" => format!("jhash {f} daddr mod {n} seed {SEED}"),
        _ => format!("numgen inc mod {n}"),
    }
}

/// The slot list a scheduler gives out (empty for no live servers).
pub fn slots(s: &Service) -> Vec<&Dest> {
    match s.scheduler.as_str() {
        "rr" => sched::round_robin(&s.dests),
        "wrr" | "sh" | "dh" => sched::weighted(&s.dests),
        "mh" => sched::maglev(&s.dests),
        "fo" => sched::failover(&s.dests).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn nat_slots(s: &Service) -> Vec<Slot> {
    slots(s)
        .into_iter()
        .map(|d| match s.key {
            ServiceKey::Addr { .. } => (d.addr, dest_port(&s.key, d)),
            ServiceKey::Fwmark { .. } => (d.addr, 0),
        })
        .collect()
}

fn persistent(s: &Service) -> bool {
    s.flags & F_PERSISTENT != 0
}

/// The membership set of a plain NAT service's (kind, L) rule, or None (persistent,
/// or no live server).
pub fn member(s: &Service) -> Option<String> {
    member_n(s, slots(s).len())
}

fn member_n(s: &Service, n: usize) -> Option<String> {
    if persistent(s) {
        return None;
    }
    (n > 0).then(|| format!("{}_{}_{n}", names(&s.key).member, slot_expr(s)))
}

/// A membership set's name taken apart: (mark service, v6, expr, L).
pub fn parse_member(name: &str) -> Option<(bool, bool, &'static str, usize)> {
    let (mark, rest) = match name.strip_prefix('f') {
        Some(r) => (true, r),
        None => (false, name),
    };
    let rest = rest.strip_prefix('m')?;
    let mut w = rest.split('_');
    let v6 = match w.next()? {
        "4" => false,
        "6" => true,
        _ => return None,
    };
    let expr = match w.next()? {
        "inc" => "inc",
        "sh" => "sh",
        "dh" => "dh",
        _ => return None,
    };
    let n: usize = w.next()?.parse().ok()?;
    if w.next().is_some() || n == 0 || n > sched::MAGLEV_SIZE.max(sched::WRR_MAX as usize) {
        return None;
    }
    Some((mark, v6, expr, n))
}

/// The (kind, L) rule and its membership set.
fn rule_text(b: &mut Batch, name: &str) {
    let Some((mark, v6, expr, n)) = parse_member(name) else {
        return;
    };
    let t = format!("inet {TABLE}");
    let f = ipf(v6);
    let v = fam(v6);
    let a = if v6 { "ipv6_addr" } else { "ipv4_addr" };
    if mark {
        b.line(format!("add set {t} {name} {{ type mark; }}"));
        b.line(format!(
            "add rule {t} fnat{v} meta mark @{name} dnat {f} to meta mark . {} map @fslots{v} comment \"{RULE_TAG}{name}\"",
            expr_text(expr, v6, n)
        ));
    } else {
        b.line(format!(
            "add set {t} {name} {{ type {a} . inet_proto . inet_service; }}"
        ));
        b.line(format!(
            "add rule {t} nat{v} {f} daddr . meta l4proto . th dport @{name} dnat {f} to {f} daddr . meta l4proto . th dport . {} map @slots{v} comment \"{RULE_TAG}{name}\"",
            expr_text(expr, v6, n)
        ));
    }
}

/// Removing an unused (kind, L) rule (by the handle the kernel gave it) and its set.
pub fn drop_rule(name: &str, handle: u64) -> String {
    let chain = match parse_member(name) {
        Some((mark, v6, ..)) => format!("{}nat{}", if mark { "f" } else { "" }, fam(v6)),
        None => return String::new(),
    };
    format!("delete rule inet {TABLE} {chain} handle {handle}\ndelete set inet {TABLE} {name}\n")
}

/// The inet table's fixed part: what does not grow with the services.
fn inet_skeleton(b: &mut Batch) {
    let t = format!("inet {TABLE}");
    b.line(format!("add table {t}"));
    for v6 in [false, true] {
        let v = fam(v6);
        let a = if v6 { "ipv6_addr" } else { "ipv4_addr" };
        let f = ipf(v6);
        let svc = format!("{a} . inet_proto . inet_service");
        b.line(format!("add set {t} svcs{v} {{ type {svc}; counter; }}"));
        b.line(format!("add set {t} fsvcs{v} {{ type mark; counter; }}"));
        b.line(format!("add set {t} dests{v} {{ type {svc} . {a} . inet_service; }}"));
        b.line(format!("add set {t} fdests{v} {{ type mark . {a}; }}"));
        b.line(format!(
            "add set {t} dcnt{v} {{ type {svc} . {a} . inet_service; counter; }}"
        ));
        b.line(format!("add set {t} fdcnt{v} {{ type mark . {a}; counter; }}"));
        b.line(format!(
            "add map {t} slots{v} {{ typeof {f} daddr . meta l4proto . th dport . numgen inc mod 2 : {f} daddr . tcp dport; }}"
        ));
        b.line(format!(
            "add map {t} fslots{v} {{ typeof meta mark . numgen inc mod 2 : {f} daddr; }}"
        ));
        b.line(format!("add map {t} chains{v} {{ type {svc} : verdict; }}"));
        b.line(format!("add map {t} fchains{v} {{ type mark : verdict; }}"));
        b.line(format!("add map {t} post{v} {{ type {svc} : verdict; }}"));
        b.line(format!("add map {t} fpost{v} {{ type mark : verdict; }}"));
        for c in [format!("nat{v}"), format!("fnat{v}")] {
            b.line(format!("add chain {t} {c}"));
        }
    }
    b.line(format!(
        "add chain {t} pre {{ type nat hook prerouting priority dstnat; policy accept; }}"
    ));
    b.line(format!(
        "add chain {t} out {{ type nat hook output priority -100; policy accept; }}"
    ));
    // Before the usual srcnat rules (100), while the packet still has the client's address.
    b.line(format!(
        "add chain {t} post {{ type nat hook postrouting priority 90; policy accept; }}"
    ));
    for c in ["pre", "out", "post", "nat4", "nat6", "fnat4", "fnat6"] {
        b.line(format!("flush chain {t} {c}"));
    }
    // The lookup counts the service's new connections (only first packets come here).
    for c in ["pre", "out"] {
        b.line(format!(
            "add rule {t} {c} ip daddr . meta l4proto . th dport @svcs4 goto nat4"
        ));
        b.line(format!(
            "add rule {t} {c} ip6 daddr . meta l4proto . th dport @svcs6 goto nat6"
        ));
        b.line(format!(
            "add rule {t} {c} meta nfproto ipv4 meta mark @fsvcs4 goto fnat4"
        ));
        b.line(format!(
            "add rule {t} {c} meta nfproto ipv6 meta mark @fsvcs6 goto fnat6"
        ));
    }
    // Services with chains of their own (persistence) first, then the (kind, L) rules.
    for (v, f) in [("4", "ip"), ("6", "ip6")] {
        b.line(format!(
            "add rule {t} nat{v} {f} daddr . meta l4proto . th dport vmap @chains{v}"
        ));
        b.line(format!("add rule {t} fnat{v} meta mark vmap @fchains{v}"));
    }
    // A connection's first packet, DNAT done: count it for its real server, then
    // refresh its client's persistence (jump: the counting must not be skipped).
    for p in ["tcp", "udp", "sctp"] {
        for (v, f) in [("4", "ip"), ("6", "ip6")] {
            b.line(format!(
                "add rule {t} post meta l4proto {p} ct status dnat ct original {f} daddr . meta l4proto . ct original proto-dst . {f} daddr . th dport @dcnt{v}"
            ));
            b.line(format!(
                "add rule {t} post meta l4proto {p} ct status dnat ct original {f} daddr . meta l4proto . ct original proto-dst vmap @post{v}"
            ));
        }
    }
    for (v, n) in [("4", "ipv4"), ("6", "ipv6")] {
        let f = if v == "4" { "ip" } else { "ip6" };
        b.line(format!(
            "add rule {t} post ct status dnat meta nfproto {n} meta mark . {f} daddr @fdcnt{v}"
        ));
        b.line(format!(
            "add rule {t} post ct status dnat meta nfproto {n} meta mark vmap @fpost{v}"
        ));
    }
}

// ---- NAT ----

fn dnat_target(k: &ServiceKey, d: &Dest) -> String {
    match k {
        ServiceKey::Addr { .. } => addr_port(d.addr, dest_port(k, d)),
        ServiceKey::Fwmark { .. } => match d.addr {
            IpAddr::V4(v) => v.to_string(),
            IpAddr::V6(v) => format!("[{v}]"),
        },
    }
}

/// `meta l4proto tcp` (a port mapping needs it), or the family for a mark service.
fn nat_guard(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr { proto, .. } => format!("meta l4proto {}", proto_name(*proto)),
        ServiceKey::Fwmark { v6, .. } => format!("meta nfproto {}", if *v6 { "ipv6" } else { "ipv4" }),
    }
}

fn persist_set_decl(s: &Service) -> String {
    let a = if s.key.is_v6() { "ipv6_addr" } else { "ipv4_addr" };
    format!(
        "{{ type {a}; flags dynamic,timeout; timeout {}s; size 1048576; }}",
        s.timeout.max(1)
    )
}

/// A persistent service's chain (new or flushed): a client known to a live server goes
/// back to it, else the slots as every service has them; and `q_` refreshes the
/// client's timed set after the first packet.
fn persist_body(b: &mut Batch, s: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&s.key);
    let guard = nat_guard(&s.key);
    let f = ipf(s.key.is_v6());
    let ms = masked_saddr(s);
    for d in sched::live(&s.dests) {
        b.line(format!(
            "add rule {t} {sid} {ms} @p_{} {guard} dnat {f} to {}",
            dest_id(&s.key, d),
            dnat_target(&s.key, d)
        ));
    }
    let n = slots(s).len();
    if n > 0 {
        let nm = names(&s.key);
        let lookup = match s.key {
            ServiceKey::Addr { .. } => format!("{f} daddr . meta l4proto . th dport"),
            ServiceKey::Fwmark { .. } => "meta mark".to_string(),
        };
        b.line(format!(
            "add rule {t} {sid} dnat {f} to {lookup} . {} map @{}",
            expr_text(slot_expr(s), s.key.is_v6(), n),
            nm.slots
        ));
    }
    let q = format!("q_{sid}");
    b.line(format!("flush chain {t} {q}"));
    for d in &s.dests {
        let m = match s.key {
            ServiceKey::Addr { proto, .. } => format!(
                "{f} daddr {} meta l4proto {} th dport {}",
                d.addr,
                proto_name(proto),
                dest_port(&s.key, d)
            ),
            ServiceKey::Fwmark { .. } => format!("{f} daddr {}", d.addr),
        };
        b.line(format!(
            "add rule {t} {q} {m} update @p_{} {{ {ms} }}",
            dest_id(&s.key, d)
        ));
    }
}

fn persist_add(b: &mut Batch, s: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&s.key);
    let nm = names(&s.key);
    b.line(format!("add chain {t} {sid}"));
    b.line(format!("add chain {t} q_{sid}"));
    for d in &s.dests {
        b.line(format!("add set {t} p_{} {}", dest_id(&s.key, d), persist_set_decl(s)));
    }
    persist_body(b, s);
    let k = fields_text(&svc_key(&s.key));
    b.line(format!("add element {t} {} {{ {k} : goto {sid} }}", nm.chains));
    b.line(format!("add element {t} {} {{ {k} : jump q_{sid} }}", nm.post));
}

fn persist_del(b: &mut Batch, s: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&s.key);
    let nm = names(&s.key);
    let k = fields_text(&svc_key(&s.key));
    b.line(format!("delete element {t} {} {{ {k} }}", nm.chains));
    b.line(format!("delete element {t} {} {{ {k} }}", nm.post));
    for c in [format!("q_{sid}"), sid.clone()] {
        b.line(format!("flush chain {t} {c}"));
        b.line(format!("delete chain {t} {c}"));
    }
    for d in &s.dests {
        b.line(format!("delete set {t} p_{}", dest_id(&s.key, d)));
    }
}

fn persist_update(b: &mut Batch, cur: &Service, want: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&want.key);
    // The rules that name the going servers' sets go first.
    b.line(format!("flush chain {t} {sid}"));
    b.line(format!("flush chain {t} q_{sid}"));
    for d in &cur.dests {
        if want.dest(d.addr, d.port).is_none() {
            b.line(format!("delete set {t} p_{}", dest_id(&cur.key, d)));
        }
    }
    for d in &want.dests {
        if cur.dest(d.addr, d.port).is_none() {
            b.line(format!(
                "add set {t} p_{} {}",
                dest_id(&want.key, d),
                persist_set_decl(want)
            ));
        }
    }
    persist_body(b, want);
}

/// Whether a persistent service's chain must be made again (not just rewritten).
fn same_persistence(a: &Service, b: &Service) -> bool {
    a.timeout == b.timeout && a.netmask == b.netmask
}

fn unchanged(c: &Service, w: &Service) -> bool {
    c.same_settings(w)
        && c.dests.len() == w.dests.len()
        && c.dests
            .iter()
            .all(|d| w.dest(d.addr, d.port).is_some_and(|x| x.same_settings(d)))
}

/// One NAT service's element changes (and chains, for persistence) from `c` (what the
/// records say) and `have` (what its membership and slots are) to `w`.
fn nat_diff(
    p: &mut Plan,
    slow: &mut Batch,
    k: &ServiceKey,
    c: Option<&Service>,
    w: Option<&Service>,
    have: Option<&Actual>,
    after: Option<&Actual>,
) {
    let nm = names(k);
    let sk = svc_key(k);
    // Records: a changed comment is the element again (its counter starts again).
    let (rc, rw) = (c.map(service_record), w.map(service_record));
    if rc != rw {
        if rc.is_some() {
            p.elems.del(&nm.svcs, sk.clone());
        }
        if rw.is_some() {
            p.elems.add(&nm.svcs, sk.clone(), None, rw);
        }
    }
    let none = Vec::new();
    let (cd, wd) = (c.map_or(&none, |s| &s.dests), w.map_or(&none, |s| &s.dests));
    for d in cd {
        let x = wd.iter().find(|x| x.addr == d.addr && x.port == d.port);
        if x.is_none_or(|x| dest_record(x) != dest_record(d)) {
            p.elems.del(&nm.dests, dest_key(k, d));
        }
        if x.is_none() {
            p.elems.del(&nm.dcnt, dest_key(k, d));
        }
    }
    for d in wd {
        let x = cd.iter().find(|x| x.addr == d.addr && x.port == d.port);
        if x.is_none_or(|x| dest_record(x) != dest_record(d)) {
            p.elems.add(&nm.dests, dest_key(k, d), None, Some(dest_record(d)));
        }
        if x.is_none() {
            p.elems.add(&nm.dcnt, dest_key(k, d), None, None);
        }
    }
    // Scheduling: from what is there to what is wanted.
    let computed;
    let have = match have {
        Some(a) => a,
        None => {
            computed = Actual {
                known: false,
                ..c.map(actual_of).unwrap_or_default()
            };
            &computed
        }
    };
    let rewrite = !have.known;
    let want_member = after.and_then(|a| a.members.first());
    for m in &have.members {
        if Some(m) != want_member || rewrite {
            p.elems.del(m, sk.clone());
        }
    }
    if let Some(m) = &want_member {
        if !have.members.contains(m) || rewrite {
            p.elems.add(m, sk.clone(), None, None);
        }
    }
    let none = BTreeMap::new();
    let ws = after.map_or(&none, |a| &a.slots);
    let last = |m: &BTreeMap<u32, Slot>| m.keys().next_back().map_or(0, |&i| i as usize + 1);
    let top = last(&have.slots).max(last(ws));
    for i in 0..top {
        let old = have.slots.get(&(i as u32));
        let new = ws.get(&(i as u32));
        if old == new && !rewrite {
            continue;
        }
        if old.is_some() {
            p.elems.del(&nm.slots, slot_key(k, i as u32));
        }
        if let Some(s) = new {
            p.elems
                .add(&nm.slots, slot_key(k, i as u32), Some(slot_data(k, *s)), None);
        }
    }
    // Persistence's chains.
    let pc = c.filter(|s| persistent(s));
    let pw = w.filter(|s| persistent(s));
    match (pc, pw) {
        (Some(a), Some(b)) if same_persistence(a, b) => {
            if !unchanged(a, b) {
                persist_update(slow, a, b);
            }
        }
        (a, b) => {
            if let Some(a) = a {
                persist_del(slow, a);
            }
            if let Some(b) = b {
                persist_add(slow, b);
            }
        }
    }
}

/// What a NAT service's membership and slots are when the kernel holds it as planned.
pub fn actual_of(s: &Service) -> Actual {
    let sl = nat_slots(s);
    Actual {
        known: true,
        members: member_n(s, sl.len()).into_iter().collect(),
        slots: sl.into_iter().enumerate().map(|(i, x)| (i as u32, x)).collect(),
    }
}

fn record_rules(b: &mut Batch, t: &str, sid: &str, s: &Service) {
    b.line(format!(
        "add rule {t} {sid} meta mark {RECORD_MARK} comment \"{}\"",
        service_record(s)
    ));
    let mut ds: Vec<&Dest> = s.dests.iter().collect();
    ds.sort_by_key(|d| d.sort_key());
    for d in ds {
        b.line(format!(
            "add rule {t} {sid} meta mark {RECORD_MARK} comment \"{}\"",
            dest_record(d)
        ));
    }
}

fn netdev_skeleton(b: &mut Batch) {
    let t = format!("netdev {TABLE}");
    b.line(format!("add table {t}"));
    b.line(format!(
        "add map {t} svc4 {{ type ipv4_addr . inet_proto . inet_service : verdict; }}"
    ));
    b.line(format!(
        "add map {t} svc6 {{ type ipv6_addr . inet_proto . inet_service : verdict; }}"
    ));
}

fn netdev_ingress(b: &mut Batch, dev: &str) {
    let t = format!("netdev {TABLE}");
    b.line(format!(
        "add chain {t} in_{dev} {{ type filter hook ingress device \"{dev}\" priority -10; policy accept; }}"
    ));
    b.line(format!("flush chain {t} in_{dev}"));
    b.line(format!(
        "add rule {t} in_{dev} meta protocol ip ip daddr . meta l4proto . th dport vmap @svc4"
    ));
    b.line(format!(
        "add rule {t} in_{dev} meta protocol ip6 ip6 daddr . meta l4proto . th dport vmap @svc6"
    ));
}

// ---- DR ----

fn dr_dest_chains(b: &mut Batch, s: &Service, d: &Dest, hop: &Hop) {
    let t = format!("netdev {TABLE}");
    let did = dest_id(&s.key, d);
    let f = ipf(s.key.is_v6());
    let a = if s.key.is_v6() { "ipv6_addr" } else { "ipv4_addr" };
    b.line(format!(
        "add set {t} f_{did} {{ type {a} . inet_service; flags dynamic,timeout; timeout {FLOW_TIMEOUT}s; size 1048576; }}"
    ));
    let mut upd = format!("update @f_{did} {{ {f} saddr . th sport }}");
    if persistent(s) {
        b.line(format!("add set {t} p_{did} {}", persist_set_decl(s)));
        let _ = write!(upd, " update @p_{did} {{ {} }}", masked_saddr(s));
    }
    b.line(format!("add chain {t} e_{did}"));
    b.line(format!(
        "add rule {t} e_{did} {upd} ether saddr set {} ether daddr set {} fwd to \"{}\"",
        hop.own_mac, hop.mac, hop.dev
    ));
    b.line(format!("add chain {t} d_{did}"));
    b.line(format!("add rule {t} d_{did} counter goto e_{did}"));
}

fn dr_del_dest(b: &mut Batch, s: &Service, d: &Dest) {
    let t = format!("netdev {TABLE}");
    let did = dest_id(&s.key, d);
    for c in ["d", "e"] {
        b.line(format!("flush chain {t} {c}_{did}"));
        b.line(format!("delete chain {t} {c}_{did}"));
    }
    b.line(format!("delete set {t} f_{did}"));
    if persistent(s) {
        b.line(format!("delete set {t} p_{did}"));
    }
}

fn dr_body(b: &mut Batch, s: &Service) {
    let t = format!("netdev {TABLE}");
    let sid = service_id(&s.key);
    let f = ipf(s.key.is_v6());
    b.line(format!("flush chain {t} {sid}"));
    let mut all: Vec<&Dest> = s.dests.iter().collect();
    all.sort_by_key(|d| d.sort_key());
    // Open flows first, to whichever server they began on, quiescent ones included.
    for d in &all {
        let did = dest_id(&s.key, d);
        b.line(format!("add rule {t} {sid} {f} saddr . th sport @f_{did} goto e_{did}"));
    }
    let live = sched::live(&s.dests);
    if persistent(s) {
        let ms = masked_saddr(s);
        for d in &live {
            let did = dest_id(&s.key, d);
            b.line(format!("add rule {t} {sid} {ms} @p_{did} goto d_{did}"));
        }
    }
    if s.scheduler == "fo" {
        if let Some(d) = sched::failover(&s.dests) {
            b.line(format!("add rule {t} {sid} goto d_{}", dest_id(&s.key, d)));
        }
    } else {
        let sl = slots(s);
        if !sl.is_empty() {
            let mut els = String::new();
            for (i, d) in sl.iter().enumerate() {
                if i > 0 {
                    els.push_str(", ");
                }
                let _ = write!(els, "{i} : goto d_{}", dest_id(&s.key, d));
            }
            b.line(format!(
                "add rule {t} {sid} {} vmap {{ {els} }}",
                expr_text(slot_expr(s), s.key.is_v6(), sl.len())
            ));
        }
    }
    record_rules(b, &t, &sid, s);
}

fn dr_add(b: &mut Batch, s: &Service, net: &mut dyn Network) -> Result<()> {
    let t = format!("netdev {TABLE}");
    let sid = service_id(&s.key);
    b.line(format!("add chain {t} {sid}"));
    for d in &s.dests {
        let hop = net.next_hop(d.addr)?;
        dr_dest_chains(b, s, d, &hop);
    }
    dr_body(b, s);
    b.line(format!(
        "add element {t} {} {{ {} : goto {sid} }}",
        dispatch_map(&s.key, "svc"),
        svc_elem(&s.key)
    ));
    Ok(())
}

fn dr_del(b: &mut Batch, s: &Service) {
    let t = format!("netdev {TABLE}");
    let sid = service_id(&s.key);
    b.line(format!(
        "delete element {t} {} {{ {} }}",
        dispatch_map(&s.key, "svc"),
        svc_elem(&s.key)
    ));
    b.line(format!("flush chain {t} {sid}"));
    b.line(format!("delete chain {t} {sid}"));
    for d in &s.dests {
        dr_del_dest(b, s, d);
    }
}

fn dr_update(b: &mut Batch, cur: &Service, want: &Service, net: &mut dyn Network) -> Result<()> {
    let t = format!("netdev {TABLE}");
    let sid = service_id(&want.key);
    b.line(format!("flush chain {t} {sid}"));
    for d in &cur.dests {
        if want.dest(d.addr, d.port).is_none() {
            dr_del_dest(b, cur, d);
        }
    }
    for d in &want.dests {
        if cur.dest(d.addr, d.port).is_none() {
            let hop = net.next_hop(d.addr)?;
            dr_dest_chains(b, want, d, &hop);
        }
    }
    dr_body(b, want);
    Ok(())
}

/// What this backend refuses in a whole table (a change alone cannot show it).
pub fn check_table(services: &[Service]) -> Result<()> {
    for s in services {
        let route = s.dests.iter().filter(|d| d.fwd == Fwd::Route).count();
        if route != 0 && route != s.dests.len() {
            return Err(Error::Usage(format!(
                "the nft backend cannot mix direct routing and NAT in one service ({}): \
                 they are done in different hooks",
                key_text(&s.key)
            )));
        }
        if route != 0 && matches!(s.key, ServiceKey::Fwmark { .. }) {
            return Err(Error::Usage(format!(
                "the nft backend cannot route directly for a firewall-mark service ({}): \
                 marks are set after the netdev ingress hook where direct routing is done",
                key_text(&s.key)
            )));
        }
    }
    Ok(())
}

/// DR's dispatch map in the netdev table (DR services have addresses, never marks).
fn dispatch_map(k: &ServiceKey, prefix: &str) -> String {
    format!("{prefix}{}", fam(k.is_v6()))
}

/// The plan that turns `cur` into `want`: the services that may differ, with the same
/// keys on both sides but for those added or removed (the rest of the table is not
/// looked at). `total` is how many services the whole table has after; `flush` starts
/// from an empty table (ipvsadm's `-C`). DR services' devices are counted over `want`,
/// so a change touching DR services passes the whole table.
pub fn render(
    cur: &[Service],
    want: &[Service],
    total: usize,
    present: &Present,
    flush: bool,
    net: &mut dyn Network,
) -> Result<Plan> {
    check_table(want)?;
    let mut p = Plan::default();
    let mut pre = Batch::default();
    let mut slow = Batch::default();
    let drop_tables = |b: &mut Batch| {
        // `add` first, so that deleting a table that is not there is no error.
        for f in ["inet", "netdev"] {
            b.line(format!("add table {f} {TABLE}"));
            b.line(format!("delete table {f} {TABLE}"));
        }
    };
    let empty = Present::default();
    let (cur, present): (&[Service], &Present) = if flush {
        let mut first = Batch::default();
        drop_tables(&mut first);
        p.first = first.text;
        p.reset = true;
        (&[], &empty)
    } else {
        (cur, present)
    };
    if total == 0 {
        // The last service gone: nothing of ours is left in the kernel.
        if !flush && (present.inet || present.netdev || !present.known || !cur.is_empty()) {
            drop_tables(&mut slow);
        }
        p.slow = slow.text;
        p.reset = true;
        return Ok(p);
    }
    p.tables = Tables {
        inet: true,
        netdev: present.netdev,
        dr_devices: present.dr_devices.clone(),
    };
    if !present.inet {
        inet_skeleton(&mut pre);
    }
    // DR: the netdev table, an ingress chain per VIP device.
    let any_dr = cur.iter().chain(want).any(|s| path(s) == Path::Dr);
    let want_dr: Vec<&Service> = want.iter().filter(|s| path(s) == Path::Dr).collect();
    if !want_dr.is_empty() {
        if !present.netdev {
            netdev_skeleton(&mut slow);
        }
        let mut devs = BTreeSet::new();
        for s in &want_dr {
            if let ServiceKey::Addr { addr, .. } = s.key {
                let d = net.vip_device(addr)?;
                check_devname(&d)?;
                devs.insert(d);
            }
        }
        for d in devs.difference(&present.dr_devices) {
            netdev_ingress(&mut slow, d);
        }
        p.tables.netdev = true;
        p.tables.dr_devices = devs.union(&present.dr_devices).cloned().collect();
    }
    // The whole table was passed (DR touched) and no DR service is left: the netdev
    // table goes, and with it every DR service's chains and elements, which are then
    // not deleted one by one (they would name a table this batch already deleted).
    let drop_netdev = want_dr.is_empty() && any_dr && present.netdev;
    if drop_netdev {
        slow.line(format!("delete table netdev {TABLE}"));
        p.tables.netdev = false;
        p.tables.dr_devices.clear();
    }

    let cur_by: HashMap<ServiceKey, &Service> = cur.iter().map(|s| (s.key, s)).collect();
    let want_by: HashMap<ServiceKey, &Service> = want.iter().map(|s| (s.key, s)).collect();
    // In the model's order (deterministic plans); a flush or a whole table also takes
    // what only the kernel has (scheduling state without records: drift).
    let mut keys: Vec<ServiceKey> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for k in cur.iter().chain(want.iter()).map(|s| s.key) {
        if seen.insert(k) {
            keys.push(k);
        }
    }
    if any_dr {
        let mut orphans: Vec<ServiceKey> = present.actual.keys().filter(|k| !seen.contains(*k)).copied().collect();
        orphans.sort_by_key(|k| k.sort_key());
        keys.extend(orphans);
    }
    // How many services each membership set gains or loses.
    let mut delta: HashMap<String, isize> = HashMap::new();
    let mut needed = BTreeSet::new();
    for k in keys {
        let c = cur_by.get(&k).copied();
        let w = want_by.get(&k).copied();
        let have = present.actual.get(&k);
        if let (Some(c), Some(w)) = (c, w) {
            // Slots not known are taken as the records say (a change finds out).
            let fresh = have.is_none_or(|a| {
                let x = actual_of(c);
                a.members == x.members && (!a.known || a.slots == x.slots)
            });
            if unchanged(c, w) && path(c) == path(w) && (path(c) == Path::Dr || fresh) {
                continue;
            }
        }
        match (dr(c), dr(w)) {
            (Some(a), Some(b)) if same_dr_frame(a, b) => {
                if !unchanged(a, b) {
                    dr_update(&mut slow, a, b, net)?;
                }
            }
            (a, b) => {
                if let (Some(a), false) = (a, drop_netdev) {
                    dr_del(&mut slow, a);
                }
                if let Some(b) = b {
                    dr_add(&mut slow, b, net)?;
                }
            }
        }
        if nat(c).is_none() && nat(w).is_none() && have.is_none() {
            continue;
        }
        let old_members = match have {
            Some(a) => a.members.clone(),
            None => nat(c).and_then(member).into_iter().collect(),
        };
        for m in old_members {
            *delta.entry(m).or_default() -= 1;
        }
        let after = nat(w).map(actual_of);
        nat_diff(&mut p, &mut slow, &k, nat(c), nat(w), have, after.as_ref());
        if let Some(a) = &after {
            for m in &a.members {
                *delta.entry(m.clone()).or_default() += 1;
                needed.insert(m.clone());
            }
        }
        p.actual.push((k, after));
    }
    // The (kind, L) rules the elements need, made before anything uses them.
    for m in needed.difference(&present.rules) {
        rule_text(&mut pre, m);
        p.rules_added.push(m.clone());
    }
    p.unused = present
        .rules
        .iter()
        .filter(|r| {
            let n = present.uses.get(*r).copied().unwrap_or(0) as isize + delta.get(*r).copied().unwrap_or(0);
            n <= 0 && !needed.contains(*r)
        })
        .cloned()
        .collect();
    p.prep = pre.text;
    p.slow = slow.text;
    Ok(p)
}

fn nat(s: Option<&Service>) -> Option<&Service> {
    s.filter(|s| path(s) == Path::Nat)
}

fn dr(s: Option<&Service>) -> Option<&Service> {
    s.filter(|s| path(s) == Path::Dr)
}

/// Whether a DR service's chains can be rewritten in place.
fn same_dr_frame(a: &Service, b: &Service) -> bool {
    persistent(a) == persistent(b) && (!persistent(a) || same_persistence(a, b))
}
