//! The table's layout and the batches that change it. Everything here is text for
//! `nft -f -`; nothing touches the kernel, so every batch can be checked in a test.
//!
//! Names carry the keys (`s4t0a000001_0050` is TCP 10.0.0.1:80, `f6_00000007` the
//! IPv6 firewall mark 7; a real server's sets and chains add `_<addr>_<port>`), and
//! every service chain ends with record rules whose comments hold the settings, so
//! that [`super::parse`] gives back the whole model from the kernel alone.

use super::sched;
use crate::tools::lvs_ctl::backend::{Error, Result};
use crate::tools::lvs_ctl::model::{Dest, Fwd, Proto, Service, ServiceKey, F_PERSISTENT};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TABLE: &str = "hakit_lvs";
/// The scheduler maps are split in this many shards: the kernel checks every element
/// added to a map against every rule bound to it, so one map for 10,000 services made
/// a 10,000 × 4 load quadratic (25 s); 64 shards make it 5 s.
pub const SHARDS: u32 = 64;
/// jhash's seed: fixed, so that a rewritten rule (a health change) and another
/// director hash a client the same way.
pub const SEED: &str = "0x4c565321";
/// Record rules match this mark (and do nothing): they exist for their comments.
pub const RECORD_MARK: &str = "0x4c565321";
/// How long DR remembers a flow (there is no conntrack before the netdev hook).
pub const FLOW_TIMEOUT: u32 = 900;

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

fn shard(k: &ServiceKey) -> u32 {
    let mut h = 0x811c_9dc5u32;
    for b in service_id(k).bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h % SHARDS
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

/// What the kernel holds besides the model (from [`super::parse`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Present {
    pub inet: bool,
    pub netdev: bool,
    /// Devices with a DR ingress chain.
    pub dr_devices: BTreeSet<String>,
}

/// One batch being written, and what the kernel holds once it is committed.
pub struct Batch {
    pub text: String,
    pub after: Present,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            text: String::new(),
            after: Present::default(),
        }
    }

    fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

fn check_devname(d: &str) -> Result<()> {
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return Err(Error::Kernel(format!("interface name `{d}` cannot name an nft chain")));
    }
    Ok(())
}

/// The inet table's fixed part: dispatch maps, scheduler shards, counters, base chains.
fn inet_skeleton(b: &mut Batch) {
    let t = format!("inet {TABLE}");
    b.line(format!("add table {t}"));
    for v in ["4", "6"] {
        let a = if v == "4" { "ipv4_addr" } else { "ipv6_addr" };
        let f = if v == "4" { "ip" } else { "ip6" };
        b.line(format!(
            "add map {t} svc{v} {{ type {a} . inet_proto . inet_service : verdict; counter; }}"
        ));
        b.line(format!("add map {t} fwm{v} {{ type mark : verdict; counter; }}"));
        b.line(format!(
            "add map {t} post{v} {{ type {a} . inet_proto . inet_service : verdict; }}"
        ));
        b.line(format!("add map {t} fpost{v} {{ type mark : verdict; }}"));
        b.line(format!(
            "add set {t} dcnt{v} {{ type {a} . inet_proto . inet_service . {a} . inet_service; counter; }}"
        ));
        b.line(format!("add set {t} fdcnt{v} {{ type mark . {a}; counter; }}"));
        for i in 0..SHARDS {
            b.line(format!(
                "add map {t} nat{v}_{i} {{ typeof {f} daddr . meta l4proto . th dport . numgen inc mod 2 : {f} daddr . tcp dport; }}"
            ));
            b.line(format!(
                "add map {t} fnat{v}_{i} {{ typeof meta mark . numgen inc mod 2 : {f} daddr; }}"
            ));
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
    for c in ["pre", "out", "post"] {
        b.line(format!("flush chain {t} {c}"));
    }
    for c in ["pre", "out"] {
        b.line(format!(
            "add rule {t} {c} ip daddr . meta l4proto . th dport vmap @svc4"
        ));
        b.line(format!(
            "add rule {t} {c} ip6 daddr . meta l4proto . th dport vmap @svc6"
        ));
        b.line(format!("add rule {t} {c} meta nfproto ipv4 meta mark vmap @fwm4"));
        b.line(format!("add rule {t} {c} meta nfproto ipv6 meta mark vmap @fwm6"));
    }
    // Only a connection's first packet comes here: count it for its real server, then
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

/// The slot list a scheduler gives out (empty for fo and for no live servers).
fn slots(s: &Service) -> Vec<&Dest> {
    match s.scheduler.as_str() {
        "rr" => sched::round_robin(&s.dests),
        "wrr" | "sh" | "dh" => sched::weighted(&s.dests),
        "mh" => sched::maglev(&s.dests),
        _ => Vec::new(),
    }
}

/// The expression a slot is chosen by.
fn slot_key(s: &Service, n: usize) -> String {
    let f = ipf(s.key.is_v6());
    match s.scheduler.as_str() {
        // DR has no conntrack: a flow's first packet is scheduled, its flow set keeps it.
        "rr" | "wrr" => format!("numgen inc mod {n}"),
        "dh" => format!("jhash {f} daddr mod {n} seed {SEED}"),
        _ => format!("jhash {f} saddr mod {n} seed {SEED}"),
    }
}

fn nat_slot_map(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr { addr, .. } => format!("nat{}_{}", fam(addr.is_ipv6()), shard(k)),
        ServiceKey::Fwmark { v6, .. } => format!("fnat{}_{}", fam(*v6), shard(k)),
    }
}

fn slot_elem_key(k: &ServiceKey, i: usize) -> String {
    format!("{} . {i}", svc_elem(k))
}

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

fn dcnt_elem(k: &ServiceKey, d: &Dest) -> (String, String) {
    match k {
        ServiceKey::Addr { addr, .. } => (
            format!("dcnt{}", fam(addr.is_ipv6())),
            format!("{} . {} . {}", svc_elem(k), d.addr, dest_port(k, d)),
        ),
        ServiceKey::Fwmark { v6, .. } => (format!("fdcnt{}", fam(*v6)), format!("{} . {}", svc_elem(k), d.addr)),
    }
}

fn dispatch_map(k: &ServiceKey, prefix: &str) -> String {
    match k {
        ServiceKey::Addr { addr, .. } => format!("{prefix}{}", fam(addr.is_ipv6())),
        ServiceKey::Fwmark { v6, .. } => format!("f{}{}", if prefix == "svc" { "wm" } else { prefix }, fam(*v6)),
    }
}

fn persist_set_decl(s: &Service) -> String {
    let a = if s.key.is_v6() { "ipv6_addr" } else { "ipv4_addr" };
    format!(
        "{{ type {a}; flags dynamic,timeout; timeout {}s; size 1048576; }}",
        s.timeout.max(1)
    )
}

fn persistent(s: &Service) -> bool {
    s.flags & F_PERSISTENT != 0
}

/// The settings whose change rebuilds a service from scratch.
fn same_frame(a: &Service, b: &Service) -> bool {
    path(a) == path(b)
        && persistent(a) == persistent(b)
        && (!persistent(a) || (a.timeout == b.timeout && a.netmask == b.netmask))
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

// ---- NAT ----

/// The service chain's rules and slots, into a chain new or flushed.
fn nat_body(b: &mut Batch, s: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&s.key);
    let guard = nat_guard(&s.key);
    let f = ipf(s.key.is_v6());
    let live = sched::live(&s.dests);
    if persistent(s) {
        let ms = masked_saddr(s);
        for d in &live {
            b.line(format!(
                "add rule {t} {sid} {ms} @p_{} {guard} dnat {f} to {}",
                dest_id(&s.key, d),
                dnat_target(&s.key, d)
            ));
        }
    }
    if s.scheduler == "fo" {
        if let Some(d) = sched::failover(&s.dests) {
            b.line(format!(
                "add rule {t} {sid} {guard} dnat {f} to {}",
                dnat_target(&s.key, d)
            ));
        }
    } else {
        let sl = slots(s);
        if !sl.is_empty() {
            let lookup = match s.key {
                ServiceKey::Addr { .. } => format!("{f} daddr . meta l4proto . th dport"),
                ServiceKey::Fwmark { .. } => "meta mark".to_string(),
            };
            b.line(format!(
                "add rule {t} {sid} {guard} dnat {f} to {lookup} . {} map @{}",
                slot_key(s, sl.len()),
                nat_slot_map(&s.key)
            ));
            let mut els = String::new();
            for (i, d) in sl.iter().enumerate() {
                if i > 0 {
                    els.push_str(", ");
                }
                let v = match s.key {
                    ServiceKey::Addr { .. } => format!("{} . {}", d.addr, dest_port(&s.key, d)),
                    ServiceKey::Fwmark { .. } => d.addr.to_string(),
                };
                let _ = write!(els, "{} : {v}", slot_elem_key(&s.key, i));
            }
            b.line(format!("add element {t} {} {{ {els} }}", nat_slot_map(&s.key)));
        }
    }
    record_rules(b, &t, &sid, s);
    if persistent(s) {
        let q = format!("q_{sid}");
        b.line(format!("flush chain {t} {q}"));
        let ms = masked_saddr(s);
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
}

fn nat_del_slots(b: &mut Batch, s: &Service) {
    let n = if s.scheduler == "fo" { 0 } else { slots(s).len() };
    if n == 0 {
        return;
    }
    let keys: Vec<String> = (0..n).map(|i| slot_elem_key(&s.key, i)).collect();
    b.line(format!(
        "delete element inet {TABLE} {} {{ {} }}",
        nat_slot_map(&s.key),
        keys.join(", ")
    ));
}

fn nat_add_dest(b: &mut Batch, s: &Service, d: &Dest) {
    let t = format!("inet {TABLE}");
    let (set, el) = dcnt_elem(&s.key, d);
    b.line(format!("add element {t} {set} {{ {el} }}"));
    if persistent(s) {
        b.line(format!("add set {t} p_{} {}", dest_id(&s.key, d), persist_set_decl(s)));
    }
}

fn nat_del_dest(b: &mut Batch, s: &Service, d: &Dest) {
    let t = format!("inet {TABLE}");
    let (set, el) = dcnt_elem(&s.key, d);
    b.line(format!("delete element {t} {set} {{ {el} }}"));
    if persistent(s) {
        b.line(format!("delete set {t} p_{}", dest_id(&s.key, d)));
    }
}

fn nat_add(b: &mut Batch, s: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&s.key);
    b.line(format!("add chain {t} {sid}"));
    if persistent(s) {
        b.line(format!("add chain {t} q_{sid}"));
    }
    for d in &s.dests {
        nat_add_dest(b, s, d);
    }
    nat_body(b, s);
    b.line(format!(
        "add element {t} {} {{ {} : goto {sid} }}",
        dispatch_map(&s.key, "svc"),
        svc_elem(&s.key)
    ));
    if persistent(s) {
        b.line(format!(
            "add element {t} {} {{ {} : jump q_{sid} }}",
            dispatch_map(&s.key, "post"),
            svc_elem(&s.key)
        ));
    }
}

fn nat_del(b: &mut Batch, s: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&s.key);
    b.line(format!(
        "delete element {t} {} {{ {} }}",
        dispatch_map(&s.key, "svc"),
        svc_elem(&s.key)
    ));
    if persistent(s) {
        b.line(format!(
            "delete element {t} {} {{ {} }}",
            dispatch_map(&s.key, "post"),
            svc_elem(&s.key)
        ));
        b.line(format!("flush chain {t} q_{sid}"));
        b.line(format!("delete chain {t} q_{sid}"));
    }
    b.line(format!("flush chain {t} {sid}"));
    b.line(format!("delete chain {t} {sid}"));
    nat_del_slots(b, s);
    for d in &s.dests {
        nat_del_dest(b, s, d);
    }
}

fn nat_update(b: &mut Batch, cur: &Service, want: &Service) {
    let t = format!("inet {TABLE}");
    let sid = service_id(&want.key);
    // The rules that name the going servers' sets go first.
    b.line(format!("flush chain {t} {sid}"));
    if persistent(cur) {
        b.line(format!("flush chain {t} q_{sid}"));
    }
    nat_del_slots(b, cur);
    for d in &cur.dests {
        if want.dest(d.addr, d.port).is_none() {
            nat_del_dest(b, cur, d);
        }
    }
    for d in &want.dests {
        if cur.dest(d.addr, d.port).is_none() {
            nat_add_dest(b, want, d);
        }
    }
    nat_body(b, want);
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
            b.line(format!("add rule {t} {sid} {} vmap {{ {els} }}", slot_key(s, sl.len())));
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

/// The batch that turns `cur` into `want`, touching only the services that differ and,
/// inside one, only its chain, its slots and the sets of servers that come or go.
/// `flush` starts from an empty table (ipvsadm's `-C`).
pub fn render(
    cur: &[Service],
    want: &[Service],
    present: &Present,
    flush: bool,
    net: &mut dyn Network,
) -> Result<Batch> {
    check_table(want)?;
    let mut b = Batch::new();
    let empty = Vec::new();
    let cur = if flush {
        // `add` first, so that deleting a table that is not there is no error.
        for f in ["inet", "netdev"] {
            b.line(format!("add table {f} {TABLE}"));
            b.line(format!("delete table {f} {TABLE}"));
        }
        &empty
    } else {
        cur
    };
    let present = if flush { Present::default() } else { present.clone() };
    let want_dr: Vec<&Service> = want.iter().filter(|s| path(s) == Path::Dr).collect();
    if !want.is_empty() && !present.inet {
        inet_skeleton(&mut b);
    }
    if !want_dr.is_empty() {
        if !present.netdev {
            netdev_skeleton(&mut b);
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
            netdev_ingress(&mut b, d);
        }
        b.after.netdev = true;
        b.after.dr_devices = devs.union(&present.dr_devices).cloned().collect();
    }
    b.after.inet = !want.is_empty();
    for c in cur {
        if !want.iter().any(|w| w.key == c.key) {
            match path(c) {
                Path::Nat => nat_del(&mut b, c),
                Path::Dr => dr_del(&mut b, c),
            }
        }
    }
    for w in want {
        match cur.iter().find(|c| c.key == w.key) {
            None => match path(w) {
                Path::Nat => nat_add(&mut b, w),
                Path::Dr => dr_add(&mut b, w, net)?,
            },
            Some(c) => {
                let same = c.same_settings(w)
                    && c.dests.len() == w.dests.len()
                    && c.dests
                        .iter()
                        .all(|d| w.dest(d.addr, d.port).is_some_and(|x| x.same_settings(d)));
                if same {
                    continue;
                }
                if !same_frame(c, w) {
                    match path(c) {
                        Path::Nat => nat_del(&mut b, c),
                        Path::Dr => dr_del(&mut b, c),
                    }
                    match path(w) {
                        Path::Nat => nat_add(&mut b, w),
                        Path::Dr => dr_add(&mut b, w, net)?,
                    }
                } else {
                    match path(w) {
                        Path::Nat => nat_update(&mut b, c, w),
                        Path::Dr => dr_update(&mut b, c, w, net)?,
                    }
                }
            }
        }
    }
    if want.is_empty() && !flush {
        // The last service gone: nothing of ours is left in the kernel.
        b = Batch::new();
        for f in ["inet", "netdev"] {
            b.line(format!("add table {f} {TABLE}"));
            b.line(format!("delete table {f} {TABLE}"));
        }
    } else if want_dr.is_empty() && present.netdev && !flush {
        b.line(format!("delete table netdev {TABLE}"));
    }
    if want.is_empty() {
        b.after = Present::default();
    }
    Ok(b)
}
