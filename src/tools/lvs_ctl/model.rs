//! What a director's table is, whichever backend holds it: virtual services, their real
//! servers, and the changes between two tables. ipvsadm's commands, `-R` files and the
//! configuration all become [`Change`]s; a backend applies a list of them all or nothing.
//!
//! [`Table::apply`] plays a change on a copy of the table with the kernel's own refusals
//! (a service that exists, a real server of a missing service, ...), so that `-R` and
//! `apply` find every bad line before anything is sent.

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// The transport of a service (IPVS wants the IP protocol number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn number(self) -> u16 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    pub fn from_number(n: u16) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// As `-L` prints it.
    pub fn upper(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }

    /// As `-S` prints it.
    pub fn option(self) -> &'static str {
        match self {
            Proto::Tcp => "-t",
            Proto::Udp => "-u",
            Proto::Sctp => "--sctp-service",
        }
    }
}

/// What names a virtual service: an address, port and protocol, or a firewall mark
/// (of one address family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceKey {
    Addr { proto: Proto, addr: IpAddr, port: u16 },
    Fwmark { mark: u32, v6: bool },
}

impl ServiceKey {
    pub fn is_v6(&self) -> bool {
        match self {
            ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { v6, .. } => *v6,
        }
    }

    pub fn proto(&self) -> Option<Proto> {
        match self {
            ServiceKey::Addr { proto, .. } => Some(*proto),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    /// A natural total order (fwmark, family, protocol, address, port), for lvs-ctl's own
    /// use. Listings use [`sort_services`], ipvsadm's own order.
    pub fn sort_key(&self) -> (u32, u8, u16, u128, u16) {
        match *self {
            ServiceKey::Fwmark { mark, v6 } => (mark, v6 as u8, 0, 0, 0),
            ServiceKey::Addr { proto, addr, port } => (0, addr.is_ipv6() as u8, proto.number(), addr_bits(addr), port),
        }
    }
}

/// ipvsadm's order of services, exactly: `ipvs_cmp_services` subtracts unsigned words
/// into an `int`, which wraps for far-apart addresses or marks (192.168.0.1 lists before
/// 10.0.0.1), under glibc's qsort (a stable top-down merge sort for tables this size).
/// The comparison is not a total order, so it is run only by that merge sort, which
/// cannot fail on it (Rust's own sorts may panic on an inconsistent order).
pub fn sort_services(v: &mut [Service]) {
    merge_sort(v, &|a: &Service, b: &Service| cmp_services(&a.key, &b.key));
}

/// ipvsadm's order of real servers (`ipvs_cmp_dests`), exactly, as [`sort_services`].
pub fn sort_dests(v: &mut [Dest]) {
    merge_sort(v, &|a: &Dest, b: &Dest| cmp_dests(a, b));
}

/// C's `int r = (u32)a - (u32)b`.
fn wrap_sub(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// An address as libipvs holds it: the union's four host-order words (IPv4 in the first).
fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v) => [u32::from(v), 0, 0, 0],
        IpAddr::V6(v) => {
            let o = v.octets();
            std::array::from_fn(|i| u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]))
        }
    }
}

fn cmp_addr(v6: bool, a: IpAddr, b: IpAddr) -> i32 {
    let (x, y) = (words(a), words(b));
    let n = if v6 { 4 } else { 1 };
    (0..n).map(|i| wrap_sub(x[i], y[i])).find(|r| *r != 0).unwrap_or(0)
}

fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    // A fwmark service has address, protocol and port zero (TCP in ipvsadm's own; the
    // kernel reports 0, as the dumps here do).
    let parts = |k: &ServiceKey| match *k {
        ServiceKey::Fwmark { mark, v6 } => (mark, v6, 0u16, None, 0u16),
        ServiceKey::Addr { proto, addr, port } => (0, addr.is_ipv6(), proto.number(), Some(addr), port),
    };
    let (fa, va, pa, aa, qa) = parts(a);
    let (fb, vb, pb, ab, qb) = parts(b);
    let af = |v6: bool| if v6 { 10 } else { 2 };
    let zero = |v6: bool| {
        if v6 {
            IpAddr::from([0u16; 8])
        } else {
            IpAddr::from([0u8; 4])
        }
    };
    let mut r = wrap_sub(fa, fb);
    if r == 0 {
        r = af(va) - af(vb);
    }
    if r == 0 {
        r = pa as i32 - pb as i32;
    }
    if r == 0 {
        r = cmp_addr(va, aa.unwrap_or(zero(va)), ab.unwrap_or(zero(vb)));
    }
    if r == 0 {
        r = qa as i32 - qb as i32;
    }
    r
}

fn cmp_dests(a: &Dest, b: &Dest) -> i32 {
    match cmp_addr(a.addr.is_ipv6(), a.addr, b.addr) {
        0 => a.port as i32 - b.port as i32,
        r => r,
    }
}

/// glibc's msort: halves sorted in turn, merged taking the left one unless it compares
/// greater.
fn merge_sort<T: Clone>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort(&mut v[..n1], cmp);
    merge_sort(&mut v[n1..], cmp);
    let mut out = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            out.push(v[i].clone());
            i += 1;
        } else {
            out.push(v[j].clone());
            j += 1;
        }
    }
    out.extend_from_slice(&v[i..n1]);
    out.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&out);
}

/// An address as one number, for ordering.
pub fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

/// `addr:port`, IPv6 in brackets, as ipvsadm writes it with `-n`.
pub struct AddrPort(pub IpAddr, pub u16);

impl fmt::Display for AddrPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

impl fmt::Display for ServiceKey {
    /// As `-S` names it: `-t 10.0.0.1:80`, `-f 1 -6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ServiceKey::Addr { proto, addr, port } => write!(f, "{} {}", proto.option(), AddrPort(addr, port)),
            // ipvsadm prints the mark with %d: one above 2^31 is negative.
            ServiceKey::Fwmark { mark, v6: false } => write!(f, "-f {}", mark as i32),
            ServiceKey::Fwmark { mark, v6: true } => write!(f, "-f {} -6", mark as i32),
        }
    }
}

/// How a real server is reached (IPVS's conn flags, low bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fwd {
    /// NAT: the director rewrites the destination, replies come back through it.
    Masq,
    Local,
    /// IP-in-IP.
    Tunnel,
    /// Direct routing (ipvsadm's `-g`, "gatewaying"): the frame goes to the real
    /// server's MAC, which holds the virtual address itself.
    Route,
}

impl Fwd {
    pub fn number(self) -> u32 {
        match self {
            Fwd::Masq => 0,
            Fwd::Local => 1,
            Fwd::Tunnel => 2,
            Fwd::Route => 3,
        }
    }

    pub fn from_number(n: u32) -> Option<Fwd> {
        match n & 7 {
            0 => Some(Fwd::Masq),
            1 => Some(Fwd::Local),
            2 => Some(Fwd::Tunnel),
            3 => Some(Fwd::Route),
            _ => None,
        }
    }

    /// As `-L` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Fwd::Masq => "Masq",
            Fwd::Local => "Local",
            Fwd::Tunnel => "Tunnel",
            Fwd::Route => "Route",
        }
    }

    /// As `-S` prints it (ipvsadm writes Local as `-g` too).
    pub fn switch(self) -> &'static str {
        match self {
            Fwd::Masq => "-m",
            Fwd::Tunnel => "-i",
            Fwd::Local | Fwd::Route => "-g",
        }
    }
}

/// Counters and rates, as IPVS's STATS64 gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// IPVS's service flags.
pub const F_PERSISTENT: u32 = 0x1;
pub const F_HASHED: u32 = 0x2;
pub const F_ONEPACKET: u32 = 0x4;
pub const F_SCHED1: u32 = 0x8;
pub const F_SCHED2: u32 = 0x10;
pub const F_SCHED3: u32 = 0x20;
/// The flags a user sets (the rest are the kernel's).
pub const F_USER: u32 = F_PERSISTENT | F_ONEPACKET | F_SCHED1 | F_SCHED2 | F_SCHED3;

/// Every scheduler IPVS has (ipvsadm's list).
pub const IPVS_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
];

/// The highest weight ipvsadm accepts.
pub const WEIGHT_MAX: u32 = 65535;
/// Persistence timeouts ipvsadm accepts (seconds).
pub const PERSISTENCE_MAX: u32 = i32::MAX as u32;

/// A virtual service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    #[serde(flatten)]
    pub key: ServiceKey,
    pub scheduler: String,
    /// IPVS flags (F_*); persistence is F_PERSISTENT with `timeout`.
    pub flags: u32,
    /// Persistence timeout, seconds (meaningful with F_PERSISTENT).
    pub timeout: u32,
    /// Persistence granularity: an IPv4 mask as IPVS carries it (network order in a
    /// u32, 0xffffffff = one client), or an IPv6 prefix length (128).
    pub netmask: u32,
    /// Persistence engine (`sip`), empty for none.
    pub pe_name: String,
    pub dests: Vec<Dest>,
    pub stats: Stats,
}

impl Service {
    /// A service as ipvsadm's `-A` makes it with no options but the key.
    pub fn new(key: ServiceKey) -> Service {
        Service {
            key,
            scheduler: "wlc".into(),
            flags: 0,
            timeout: 0,
            netmask: if key.is_v6() { 128 } else { 0xffff_ffff },
            pe_name: String::new(),
            dests: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn persistent(&self) -> Option<u32> {
        (self.flags & F_PERSISTENT != 0).then_some(self.timeout)
    }

    /// Whether the settings a user gives (not the real servers or counters) are the same.
    pub fn same_settings(&self, o: &Service) -> bool {
        self.scheduler == o.scheduler
            && self.flags & F_USER == o.flags & F_USER
            && self.persistent() == o.persistent()
            && (self.flags & F_PERSISTENT == 0 || self.netmask == o.netmask)
            && self.pe_name == o.pe_name
    }

    pub fn dest(&self, addr: IpAddr, port: u16) -> Option<&Dest> {
        self.dests.iter().find(|d| d.addr == addr && d.port == port)
    }

    /// The sum of the weights of the real servers that take new connections, but for
    /// `except` (the sorry server, which is no part of the live pool).
    pub fn live_weight(&self, except: Option<std::net::SocketAddr>) -> u64 {
        self.dests
            .iter()
            .filter(|d| except != Some(std::net::SocketAddr::new(d.addr, d.port)))
            .map(|d| d.weight as u64)
            .sum()
    }
}

/// A real server of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd: Fwd,
    /// 0 = quiescent: no new connections, the open ones go on.
    pub weight: u32,
    /// Connection limits (0 = none).
    pub u_thresh: u32,
    pub l_thresh: u32,
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
    pub stats: Stats,
}

impl Dest {
    /// A real server as ipvsadm's `-a` makes it: direct routing, weight 1.
    pub fn new(addr: IpAddr, port: u16) -> Dest {
        Dest {
            addr,
            port,
            fwd: Fwd::Route,
            weight: 1,
            u_thresh: 0,
            l_thresh: 0,
            active: 0,
            inactive: 0,
            persist: 0,
            stats: Stats::default(),
        }
    }

    /// Whether what a user sets is the same (not the counters).
    pub fn same_settings(&self, o: &Dest) -> bool {
        self.fwd == o.fwd && self.weight == o.weight && self.u_thresh == o.u_thresh && self.l_thresh == o.l_thresh
    }

    pub fn sort_key(&self) -> (u128, u16) {
        (addr_bits(self.addr), self.port)
    }
}

/// IPVS's connection timeouts (seconds; 0 in a change = leave as is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// A connection-synchronisation daemon (`--start-daemon master|backup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Daemon {
    /// master (1) or backup (2), IPVS's state bits.
    pub state: u32,
    pub ifname: String,
    pub syncid: u32,
    pub sync_maxlen: u16,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: u16,
    pub mcast_ttl: u8,
}

pub const DAEMON_MASTER: u32 = 1;
pub const DAEMON_BACKUP: u32 = 2;

/// What the backend says of itself (`IP Virtual Server version 1.2.1 (size=4096)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Info {
    /// As IPVS codes it: major << 16 | minor << 8 | patch.
    pub version: u32,
    pub size: u32,
}

impl Info {
    pub fn version_string(&self) -> String {
        let v = self.version;
        format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
    }
}

/// The whole table of a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub info: Info,
    pub services: Vec<Service>,
}

/// One change to a table: an ipvsadm command, a `-R` line, a step of `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// `-A`: the service with no real servers (its `dests` are ignored).
    AddService(Service),
    /// `-E`: new settings of an existing service.
    EditService(Service),
    /// `-D`.
    DelService(ServiceKey),
    /// `-a`.
    AddDest(ServiceKey, Dest),
    /// `-e`.
    EditDest(ServiceKey, Dest),
    /// `-d`.
    DelDest(ServiceKey, IpAddr, u16),
    /// `-C`.
    Flush,
    /// `-Z`, of one service or all.
    Zero(Option<ServiceKey>),
}

/// Why a change cannot be made, in the words ipvsadm prints for the kernel's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    ServiceExists,
    NoService,
    /// A real server's change on a missing service (ipvsadm words it apart).
    ServiceNotDefined,
    DestExists,
    NoDest,
    /// A real server of the other family on a service that does not tunnel.
    Family,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::ServiceExists => "Service already exists",
            Refusal::NoService => "No such service",
            Refusal::ServiceNotDefined => "Service not defined",
            Refusal::DestExists => "Destination already exists",
            Refusal::NoDest => "No such destination",
            Refusal::Family => "Different address family is allowed only for tunneling servers",
        })
    }
}

impl Table {
    pub fn empty(info: Info) -> Table {
        Table {
            info,
            services: Vec::new(),
        }
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.iter().find(|s| s.key == *key)
    }

    /// Sort services and real servers as ipvsadm lists them.
    pub fn sort(&mut self) {
        sort_services(&mut self.services);
        for s in &mut self.services {
            sort_dests(&mut s.dests);
        }
    }

    /// Play `c` on this table as the kernel would, or say why it would refuse.
    pub fn apply(&mut self, c: &Change) -> Result<(), Refusal> {
        self.apply_in(c, &mut None)
    }

    /// Play every change in order, finding services through an index (a `-R` of
    /// 50,000 lines would otherwise search the table 50,000 times); the first refusal
    /// comes back with its position.
    pub fn apply_all<'a>(&mut self, changes: impl IntoIterator<Item = &'a Change>) -> Result<(), (usize, Refusal)> {
        let mut idx = Some(self.index());
        for (i, c) in changes.into_iter().enumerate() {
            self.apply_in(c, &mut idx).map_err(|r| (i, r))?;
        }
        Ok(())
    }

    /// Each service's position.
    pub fn index(&self) -> HashMap<ServiceKey, usize> {
        self.services.iter().enumerate().map(|(i, s)| (s.key, i)).collect()
    }

    fn pos(&self, key: &ServiceKey, idx: &Option<HashMap<ServiceKey, usize>>) -> Option<usize> {
        match idx {
            Some(m) => m.get(key).copied(),
            None => self.services.iter().position(|s| s.key == *key),
        }
    }

    fn apply_in(&mut self, c: &Change, idx: &mut Option<HashMap<ServiceKey, usize>>) -> Result<(), Refusal> {
        let at =
            |t: &Table, k: &ServiceKey, idx: &Option<HashMap<ServiceKey, usize>>, r: Refusal| t.pos(k, idx).ok_or(r);
        match c {
            Change::AddService(s) => {
                if self.pos(&s.key, idx).is_some() {
                    return Err(Refusal::ServiceExists);
                }
                let mut s = s.clone();
                s.dests.clear();
                s.stats = Stats::default();
                if let Some(m) = idx {
                    m.insert(s.key, self.services.len());
                }
                self.services.push(s);
            }
            Change::EditService(s) => {
                let i = at(self, &s.key, idx, Refusal::NoService)?;
                let cur = &mut self.services[i];
                cur.scheduler.clone_from(&s.scheduler);
                cur.flags = s.flags & F_USER;
                cur.timeout = s.timeout;
                cur.netmask = s.netmask;
                cur.pe_name.clone_from(&s.pe_name);
            }
            Change::DelService(k) => {
                at(self, k, idx, Refusal::NoService)?;
                self.services.retain(|s| s.key != *k);
                if let Some(m) = idx {
                    *m = self.index();
                }
            }
            Change::AddDest(k, d) => {
                let i = at(self, k, idx, Refusal::ServiceNotDefined)?;
                let s = &mut self.services[i];
                if d.addr.is_ipv6() != s.key.is_v6() && d.fwd != Fwd::Tunnel {
                    return Err(Refusal::Family);
                }
                if s.dest(d.addr, d.port).is_some() {
                    return Err(Refusal::DestExists);
                }
                let mut d = d.clone();
                d.active = 0;
                d.inactive = 0;
                d.persist = 0;
                d.stats = Stats::default();
                s.dests.push(d);
            }
            Change::EditDest(k, d) => {
                let i = at(self, k, idx, Refusal::ServiceNotDefined)?;
                let cur = self.services[i]
                    .dests
                    .iter_mut()
                    .find(|x| x.addr == d.addr && x.port == d.port)
                    .ok_or(Refusal::NoDest)?;
                cur.fwd = d.fwd;
                cur.weight = d.weight;
                cur.u_thresh = d.u_thresh;
                cur.l_thresh = d.l_thresh;
            }
            Change::DelDest(k, a, p) => {
                let i = at(self, k, idx, Refusal::ServiceNotDefined)?;
                let s = &mut self.services[i];
                let before = s.dests.len();
                s.dests.retain(|x| !(x.addr == *a && x.port == *p));
                if s.dests.len() == before {
                    return Err(Refusal::NoDest);
                }
            }
            Change::Flush => {
                self.services.clear();
                if let Some(m) = idx {
                    m.clear();
                }
            }
            Change::Zero(None) => {
                for s in &mut self.services {
                    s.stats = Stats::default();
                    s.dests.iter_mut().for_each(|d| d.stats = Stats::default());
                }
            }
            Change::Zero(Some(k)) => {
                let i = at(self, k, idx, Refusal::NoService)?;
                let s = &mut self.services[i];
                s.stats = Stats::default();
                s.dests.iter_mut().for_each(|d| d.stats = Stats::default());
            }
        }
        Ok(())
    }

    /// The changes that turn this table into `want`, touching nothing that is the same:
    /// an unchanged real server keeps its connections. Removals come before additions
    /// inside a service, so that a real server moved between forwarding methods (which
    /// IPVS edits in place) is an edit, never a gap.
    pub fn diff(&self, want: &Table) -> Vec<Change> {
        let mut out = Vec::new();
        let (mine, theirs) = (self.index(), want.index());
        for s in &self.services {
            if !theirs.contains_key(&s.key) {
                out.push(Change::DelService(s.key));
            }
        }
        for w in &want.services {
            match mine.get(&w.key).map(|i| &self.services[*i]) {
                None => {
                    out.push(Change::AddService(w.clone()));
                    out.extend(w.dests.iter().map(|d| Change::AddDest(w.key, d.clone())));
                }
                Some(cur) => {
                    if !cur.same_settings(w) {
                        out.push(Change::EditService(w.clone()));
                    }
                    for d in &cur.dests {
                        if w.dest(d.addr, d.port).is_none() {
                            out.push(Change::DelDest(w.key, d.addr, d.port));
                        }
                    }
                    for d in &w.dests {
                        match cur.dest(d.addr, d.port) {
                            None => out.push(Change::AddDest(w.key, d.clone())),
                            Some(c) if !c.same_settings(d) => out.push(Change::EditDest(w.key, d.clone())),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        out
    }
}

impl Change {
    /// The change that undoes this one on `before` (the table it was applied to), for a
    /// backend that cannot apply a batch atomically and must roll back by hand.
    pub fn undo(&self, before: &Table) -> Vec<Change> {
        match self {
            Change::AddService(s) => vec![Change::DelService(s.key)],
            Change::EditService(s) => before
                .service(&s.key)
                .map(|old| vec![Change::EditService(old.clone())])
                .unwrap_or_default(),
            Change::DelService(k) => before.service(k).map(restore_service).unwrap_or_default(),
            Change::AddDest(k, d) => vec![Change::DelDest(*k, d.addr, d.port)],
            Change::EditDest(k, d) => before
                .service(k)
                .and_then(|s| s.dest(d.addr, d.port))
                .map(|old| vec![Change::EditDest(*k, old.clone())])
                .unwrap_or_default(),
            Change::DelDest(k, a, p) => before
                .service(k)
                .and_then(|s| s.dest(*a, *p))
                .map(|old| vec![Change::AddDest(*k, old.clone())])
                .unwrap_or_default(),
            Change::Flush => before.services.iter().flat_map(restore_service).collect(),
            // Counters cannot be given back.
            Change::Zero(_) => Vec::new(),
        }
    }
}

fn restore_service(s: &Service) -> Vec<Change> {
    let mut v = vec![Change::AddService(s.clone())];
    v.extend(s.dests.iter().map(|d| Change::AddDest(s.key, d.clone())));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port,
        }
    }

    fn table() -> Table {
        Table::empty(Info {
            version: 0x010201,
            size: 4096,
        })
    }

    #[test]
    fn apply_refuses_as_the_kernel_does() {
        let mut t = table();
        let s = Service::new(key(80));
        t.apply(&Change::AddService(s.clone())).unwrap();
        assert_eq!(t.apply(&Change::AddService(s)), Err(Refusal::ServiceExists));
        let d = Dest::new("10.0.0.2".parse().unwrap(), 80);
        assert_eq!(
            t.apply(&Change::AddDest(key(81), d.clone())),
            Err(Refusal::ServiceNotDefined)
        );
        t.apply(&Change::AddDest(key(80), d.clone())).unwrap();
        assert_eq!(t.apply(&Change::AddDest(key(80), d.clone())), Err(Refusal::DestExists));
        let v6 = Dest::new("2001:db8::2".parse().unwrap(), 80);
        assert_eq!(t.apply(&Change::AddDest(key(80), v6)), Err(Refusal::Family));
        assert_eq!(
            t.apply(&Change::DelDest(key(80), "10.0.0.3".parse().unwrap(), 80)),
            Err(Refusal::NoDest)
        );
    }

    #[test]
    fn diff_touches_only_what_changed_and_undo_restores() {
        let mut cur = table();
        let mut s = Service::new(key(80));
        s.dests = vec![
            Dest::new("10.0.0.2".parse().unwrap(), 80),
            Dest::new("10.0.0.3".parse().unwrap(), 80),
        ];
        for c in restore_service(&s) {
            cur.apply(&c).unwrap();
        }
        let mut want = cur.clone();
        want.services[0].dests[1].weight = 0;
        want.services[0].dests.push(Dest::new("10.0.0.4".parse().unwrap(), 80));
        let d = cur.diff(&want);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(matches!(d[0], Change::EditDest(_, ref x) if x.weight == 0));
        assert!(matches!(d[1], Change::AddDest(..)));
        let mut after = cur.clone();
        let mut undo = Vec::new();
        for c in &d {
            undo.splice(0..0, c.undo(&after));
            after.apply(c).unwrap();
        }
        assert_eq!(after, want);
        assert!(after.diff(&want).is_empty(), "applying twice changes nothing");
        for c in &undo {
            after.apply(c).unwrap();
        }
        assert_eq!(after, cur);
    }
}

#[cfg(test)]
mod order {
    use super::*;

    fn sorted(addrs: &[&str]) -> Vec<String> {
        let mut v: Vec<Dest> = addrs.iter().map(|a| Dest::new(a.parse().unwrap(), 80)).collect();
        sort_dests(&mut v);
        v.iter().map(|d| d.addr.to_string()).collect()
    }

    #[test]
    fn real_servers_sort_as_ipvsadm_under_glibc() {
        // What ipvsadm's comparator gives under glibc 2.36's qsort, from a C program
        // with those two (the same input orders).
        assert_eq!(
            sorted(&["10.0.0.1", "10.0.0.2", "172.16.0.1", "192.168.1.1"]),
            ["172.16.0.1", "192.168.1.1", "10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            sorted(&["192.168.1.1", "10.0.0.2", "172.16.0.1", "10.0.0.1"]),
            ["172.16.0.1", "192.168.1.1", "10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(sorted(&["10.0.0.1", "192.168.0.1"]), ["192.168.0.1", "10.0.0.1"]);
        assert_eq!(
            sorted(&[
                "1.0.0.1",
                "200.0.0.1",
                "100.0.0.1",
                "250.0.0.1",
                "10.0.0.1",
                "130.0.0.1",
                "5.0.0.1"
            ]),
            [
                "250.0.0.1",
                "1.0.0.1",
                "5.0.0.1",
                "10.0.0.1",
                "100.0.0.1",
                "130.0.0.1",
                "200.0.0.1"
            ]
        );
    }
}
