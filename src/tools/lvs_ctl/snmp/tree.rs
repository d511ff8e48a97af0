//! The pure part of `lvs-ctl snmp`: HAKIT-MIB's objects as one list sorted by OID
//! (built from `status::report` and the Active Stations Table's records), GET and
//! GETNEXT by binary search, pass_persist's answer lines, and the check of a SET.
//! Nothing here reads the kernel or a file.
//!
//! How rows are numbered (the MIB's DESCRIPTION says the same): virtual services by
//! `ServiceKey::sort_key` (IPv4 before IPv6, then protocol, address, port; firewall
//! marks last, by mark), 1 up; the real servers of each by address then port, 1 up; real server hosts by
//! address; the services of a host by (virtual service index, real server index);
//! nodes by name; a node's links by channel number (1 up); what a node holds in the
//! order it announces it. An index changes only when something is added or removed
//! before it.

use super::super::health;
use super::super::model::{addr_bits, Proto, ServiceKey, Table};
use super::super::status::{RealView, Report};
use crate::table::{LinkState, NodeRecord, NodeState};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

pub type Oid = Vec<u32>;

/// HAKIT-MIB's root: enterprises.32473 (RFC 5612's number for documentation and
/// examples) . 104.
pub const ROOT: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 104];

// The arcs under the root (the MIB file is the reference).
const OBJECTS: u32 = 1;
const SCALARS: u32 = 1;
const VS_TABLE: u32 = 2;
const RS_TABLE: u32 = 3;
const HOST_TABLE: u32 = 4;
const HOST_SERVICE_TABLE: u32 = 5;
const NODE_TABLE: u32 = 6;
const LINK_TABLE: u32 = 7;
const HELD_TABLE: u32 = 8;
/// hakitRsWeight's column.
pub const RS_WEIGHT: u32 = 6;

/// A value as pass_persist types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    Gauge(u32),
    Counter64(u64),
    Str(String),
    Octets(Vec<u8>),
}

/// HakitRealServerStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Up = 1,
    Down = 2,
    Maintenance = 3,
    Draining = 4,
    /// Healthy, but out while the sorry server has its service (the quorum is lost).
    Sorry = 5,
    /// Failing, but kept in by the depool threshold.
    DepoolRefused = 6,
    /// No live follower: health not known.
    Unknown = 7,
    /// In the kernel, not in the configuration.
    NotConfigured = 8,
    /// Configured and healthy, but not in the kernel (apply has not run).
    Absent = 9,
    /// The service's sorry server, in the kernel.
    SorryServer = 10,
}

/// A real server's status from what status::report says of it.
pub fn status_of(r: &RealView) -> Status {
    if r.weight.is_none() {
        return Status::NotConfigured;
    }
    match (r.health, r.state) {
        (None, _) => Status::Unknown,
        (_, Some("draining")) => Status::Draining,
        (_, Some("quorum")) => Status::Sorry,
        (_, Some("depool-refused")) => Status::DepoolRefused,
        (Some("down"), _) => Status::Down,
        (Some("maintenance"), _) => Status::Maintenance,
        _ if r.kernel_weight.is_none() => Status::Absent,
        _ => Status::Up,
    }
}

/// What the Active Stations Table says, read by the caller.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub channels: Vec<String>,
    pub local: String,
    pub writer_alive: bool,
    pub nodes: Vec<NodeRecord>,
    /// CLOCK_MONOTONIC now, ns: the records' last-heard times are on it.
    pub now_ns: u64,
}

/// A row of the real server table, for a SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealRow {
    pub service: ServiceKey,
    pub real: SocketAddr,
}

/// The snapshot: every object, sorted by OID, and the real servers by (vs, rs) index.
#[derive(Debug, Default)]
pub struct Tree {
    root: Oid,
    entries: Vec<(Oid, Value)>,
    reals: BTreeMap<(u32, u32), RealRow>,
}

fn inet(a: IpAddr) -> (i64, Vec<u8>) {
    match a {
        IpAddr::V4(v) => (1, v.octets().to_vec()),
        IpAddr::V6(v) => (2, v.octets().to_vec()),
    }
}

fn gauge(n: u64) -> Value {
    Value::Gauge(n.min(u32::MAX as u64) as u32)
}

fn ms_ago(now_ns: u64, then_ns: u64) -> Value {
    if then_ns == 0 {
        return Value::Integer(-1);
    }
    Value::Integer((now_ns.saturating_sub(then_ns) / 1_000_000).min(i32::MAX as u64) as i64)
}

fn node_state(s: NodeState) -> i64 {
    match s {
        NodeState::Unknown => 1,
        NodeState::Up => 2,
        NodeState::Unreachable => 3,
        NodeState::Dead => 4,
    }
}

fn link_state(s: LinkState) -> i64 {
    match s {
        LinkState::Unknown => 1,
        LinkState::Up => 2,
        LinkState::Late => 3,
        LinkState::Dead => 4,
    }
}

struct Builder {
    root: Oid,
    entries: Vec<(Oid, Value)>,
}

impl Builder {
    /// One cell: table (or the scalars' group), column, index.
    fn put(&mut self, table: u32, entry_col: &[u32], index: &[u32], v: Value) {
        let mut o = Vec::with_capacity(self.root.len() + 4 + index.len());
        o.extend_from_slice(&self.root);
        o.push(OBJECTS);
        o.push(table);
        o.extend_from_slice(entry_col);
        o.extend_from_slice(index);
        self.entries.push((o, v));
    }
    fn cell(&mut self, table: u32, col: u32, index: &[u32], v: Value) {
        self.put(table, &[1, col], index, v);
    }
}

struct RsRow<'a> {
    vs: u32,
    rs: u32,
    real: SocketAddr,
    host: Option<&'a str>,
    status: Status,
    active: u32,
}

/// Build the snapshot under `root` from the report (with the kernel's table, for the
/// sorry servers' counters) and the cluster (None: no table to read).
pub fn build(root: &[u32], report: &Report, kernel: &Table, cluster: Option<&Cluster>) -> Tree {
    let mut b = Builder {
        root: root.to_vec(),
        entries: Vec::new(),
    };
    let mut reals = BTreeMap::new();
    let follower = report.follower.as_ref().map_or(0, |f| f.pid as i64);
    b.put(SCALARS, &[1], &[0], Value::Str(report.backend.to_string()));
    b.put(SCALARS, &[2], &[0], Value::Integer(follower));
    b.put(
        SCALARS,
        &[3],
        &[0],
        Value::Str(cluster.map(|c| c.local.clone()).unwrap_or_default()),
    );
    b.put(
        SCALARS,
        &[4],
        &[0],
        Value::Integer(if cluster.is_some_and(|c| c.writer_alive) { 1 } else { 2 }),
    );

    let mut services: Vec<(ServiceKey, &super::super::status::ServiceView)> = report
        .services
        .iter()
        .filter_map(|s| health::parse_service_name(&s.service).map(|k| (k, s)))
        .collect();
    services.sort_by_key(|(k, _)| k.sort_key());
    let mut rs_rows: Vec<RsRow> = Vec::new();
    for (vi, (key, sv)) in services.iter().enumerate() {
        let vs = vi as u32 + 1;
        let ks = kernel.service(key);
        // The real servers, and the sorry server while it is in the kernel.
        let mut rows: Vec<(SocketAddr, &RealView)> = sv
            .reals
            .iter()
            .filter_map(|r| r.real.parse().ok().map(|a| (a, r)))
            .collect();
        rows.sort_by_key(|(a, _)| (addr_bits(a.ip()), a.port()));
        let sorry = sv
            .sorry
            .as_ref()
            .filter(|s| s.in_kernel)
            .and_then(|s| s.real.parse::<SocketAddr>().ok())
            .and_then(|a| ks.and_then(|k| k.dest(a.ip(), a.port())).map(|d| (a, d)));
        let (mut addr_type, mut addr, mut port, mut mark) = (0, Vec::new(), 0, 0);
        let proto = match *key {
            ServiceKey::Addr {
                proto,
                addr: a,
                port: p,
            } => {
                (addr_type, addr) = inet(a);
                port = p;
                match proto {
                    Proto::Tcp => 1,
                    Proto::Udp => 2,
                    Proto::Sctp => 3,
                }
            }
            ServiceKey::Fwmark { mark: m, .. } => {
                mark = m;
                4
            }
        };
        let idx = [vs];
        b.cell(VS_TABLE, 2, &idx, Value::Str(sv.service.clone()));
        b.cell(VS_TABLE, 3, &idx, Value::Integer(proto));
        b.cell(VS_TABLE, 4, &idx, Value::Integer(addr_type));
        b.cell(VS_TABLE, 5, &idx, Value::Octets(addr));
        b.cell(VS_TABLE, 6, &idx, Value::Gauge(port as u32));
        b.cell(VS_TABLE, 7, &idx, Value::Gauge(mark));
        b.cell(VS_TABLE, 8, &idx, Value::Str(sv.scheduler.clone()));
        b.cell(VS_TABLE, 9, &idx, gauge(rows.len() as u64 + sorry.is_some() as u64));
        b.cell(VS_TABLE, 10, &idx, gauge(sv.live_weight));
        b.cell(VS_TABLE, 11, &idx, Value::Integer(if sv.configured { 1 } else { 2 }));
        for (ri, (a, r)) in rows.iter().enumerate() {
            let rs = ri as u32 + 1;
            let status = status_of(r);
            let (t, bytes) = inet(a.ip());
            let idx = [vs, rs];
            b.cell(RS_TABLE, 2, &idx, Value::Integer(t));
            b.cell(RS_TABLE, 3, &idx, Value::Octets(bytes));
            b.cell(RS_TABLE, 4, &idx, Value::Gauge(a.port() as u32));
            b.cell(RS_TABLE, 5, &idx, Value::Integer(fwd_number(r.forward)));
            b.cell(
                RS_TABLE,
                RS_WEIGHT,
                &idx,
                Value::Integer(r.kernel_weight.unwrap_or(0) as i64),
            );
            b.cell(RS_TABLE, 7, &idx, Value::Integer(r.weight.map_or(-1, |w| w as i64)));
            b.cell(
                RS_TABLE,
                8,
                &idx,
                Value::Integer(r.operator_weight.map_or(-1, |w| w as i64)),
            );
            b.cell(RS_TABLE, 9, &idx, Value::Integer(status as i64));
            b.cell(RS_TABLE, 10, &idx, Value::Gauge(r.active));
            b.cell(RS_TABLE, 11, &idx, Value::Gauge(r.inactive));
            b.cell(RS_TABLE, 12, &idx, Value::Str(r.host.clone().unwrap_or_default()));
            reals.insert(
                (vs, rs),
                RealRow {
                    service: *key,
                    real: *a,
                },
            );
            rs_rows.push(RsRow {
                vs,
                rs,
                real: *a,
                host: r.host.as_deref(),
                status,
                active: r.active,
            });
        }
        if let Some((a, d)) = sorry {
            let rs = rows.len() as u32 + 1;
            let (t, bytes) = inet(a.ip());
            let idx = [vs, rs];
            b.cell(RS_TABLE, 2, &idx, Value::Integer(t));
            b.cell(RS_TABLE, 3, &idx, Value::Octets(bytes));
            b.cell(RS_TABLE, 4, &idx, Value::Gauge(a.port() as u32));
            b.cell(RS_TABLE, 5, &idx, Value::Integer(fwd_number(d.fwd.name())));
            b.cell(RS_TABLE, RS_WEIGHT, &idx, Value::Integer(d.weight as i64));
            b.cell(RS_TABLE, 7, &idx, Value::Integer(-1));
            b.cell(RS_TABLE, 8, &idx, Value::Integer(-1));
            b.cell(RS_TABLE, 9, &idx, Value::Integer(Status::SorryServer as i64));
            b.cell(RS_TABLE, 10, &idx, Value::Gauge(d.active));
            b.cell(RS_TABLE, 11, &idx, Value::Gauge(d.inactive));
            b.cell(RS_TABLE, 12, &idx, Value::Str(String::new()));
            rs_rows.push(RsRow {
                vs,
                rs,
                real: a,
                host: None,
                status: Status::SorryServer,
                active: d.active,
            });
        }
    }

    // Real server hosts: by address; each host's services by (vs, rs).
    let mut hosts: BTreeMap<(u128, bool), Vec<&RsRow>> = BTreeMap::new();
    for r in &rs_rows {
        hosts
            .entry((addr_bits(r.real.ip()), r.real.is_ipv6()))
            .or_default()
            .push(r);
    }
    let mut by_addr: Vec<(&(u128, bool), &Vec<&RsRow>)> = hosts.iter().collect();
    by_addr.sort_by_key(|((bits, v6), _)| (*v6, *bits));
    for (hi, (_, rows)) in by_addr.iter().enumerate() {
        let h = hi as u32 + 1;
        let ip = rows[0].real.ip();
        let (t, bytes) = inet(ip);
        let name = rows
            .iter()
            .find_map(|r| r.host.filter(|h| !h.is_empty()))
            .map_or_else(|| ip.to_string(), str::to_string);
        b.cell(HOST_TABLE, 2, &[h], Value::Integer(t));
        b.cell(HOST_TABLE, 3, &[h], Value::Octets(bytes));
        b.cell(HOST_TABLE, 4, &[h], Value::Str(name));
        b.cell(HOST_TABLE, 5, &[h], gauge(rows.len() as u64));
        for (si, r) in rows.iter().enumerate() {
            let idx = [h, si as u32 + 1];
            let name = services
                .get(r.vs as usize - 1)
                .map_or_else(String::new, |(_, sv)| sv.service.clone());
            b.cell(HOST_SERVICE_TABLE, 2, &idx, Value::Str(name));
            b.cell(HOST_SERVICE_TABLE, 3, &idx, Value::Gauge(r.real.port() as u32));
            b.cell(HOST_SERVICE_TABLE, 4, &idx, Value::Integer(r.status as i64));
            b.cell(HOST_SERVICE_TABLE, 5, &idx, Value::Gauge(r.active));
            b.cell(HOST_SERVICE_TABLE, 6, &idx, Value::Gauge(r.vs));
            b.cell(HOST_SERVICE_TABLE, 7, &idx, Value::Gauge(r.rs));
        }
    }

    if let Some(c) = cluster {
        let mut nodes: Vec<&NodeRecord> = c.nodes.iter().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        for (ni, n) in nodes.iter().enumerate() {
            let i = ni as u32 + 1;
            let role = if n.is_local() {
                1
            } else if n.is_ping() {
                3
            } else {
                2
            };
            let peer = role == 2;
            let links = &n.links[..c.channels.len().min(n.links.len())];
            let heard = links.iter().map(|l| l.last_heard_ns).max().unwrap_or(0);
            b.cell(NODE_TABLE, 2, &[i], Value::Str(n.name.clone()));
            b.cell(NODE_TABLE, 3, &[i], Value::Integer(role));
            b.cell(NODE_TABLE, 4, &[i], Value::Integer(node_state(n.state)));
            b.cell(NODE_TABLE, 5, &[i], Value::Str(n.status.clone()));
            b.cell(NODE_TABLE, 6, &[i], gauge(n.generation));
            b.cell(
                NODE_TABLE,
                7,
                &[i],
                if peer {
                    ms_ago(c.now_ns, heard)
                } else {
                    Value::Integer(-1)
                },
            );
            b.cell(NODE_TABLE, 8, &[i], Value::Str(n.held.clone()));
            if peer {
                for (li, l) in links.iter().enumerate() {
                    let idx = [i, li as u32 + 1];
                    b.cell(LINK_TABLE, 2, &idx, Value::Str(c.channels[li].clone()));
                    b.cell(LINK_TABLE, 3, &idx, Value::Integer(link_state(l.state)));
                    b.cell(LINK_TABLE, 4, &idx, ms_ago(c.now_ns, l.last_heard_ns));
                    b.cell(LINK_TABLE, 5, &idx, Value::Counter64(l.lost));
                }
            }
            for (wi, w) in n.held.split(',').filter(|w| !w.is_empty()).enumerate() {
                b.cell(HELD_TABLE, 2, &[i, wi as u32 + 1], Value::Str(w.to_string()));
            }
        }
    }

    let mut entries = b.entries;
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Tree {
        root: root.to_vec(),
        entries,
        reals,
    }
}

/// HakitForwarding.
fn fwd_number(name: &str) -> i64 {
    match name {
        "Route" => 1,
        "Masq" => 2,
        "Tunnel" => 3,
        _ => 4, // Local
    }
}

impl Tree {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The object named exactly `oid`.
    pub fn get(&self, oid: &[u32]) -> Option<&(Oid, Value)> {
        self.entries
            .binary_search_by(|e| e.0.as_slice().cmp(oid))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The first object after `oid` in the SNMP (lexicographic) order.
    pub fn next(&self, oid: &[u32]) -> Option<&(Oid, Value)> {
        let i = self.entries.partition_point(|e| e.0.as_slice() <= oid);
        self.entries.get(i)
    }

    /// The real server of a hakitRsWeight cell, if `oid` names one.
    pub fn weight_cell(&self, oid: &[u32]) -> Option<RealRow> {
        let rest = oid.strip_prefix(self.root.as_slice())?;
        match rest {
            [OBJECTS, RS_TABLE, 1, RS_WEIGHT, vs, rs] => self.reals.get(&(*vs, *rs)).copied(),
            _ => None,
        }
    }
}

/// `.1.3.6.1` → [1, 3, 6, 1] (the leading dot optional); None if not an OID.
pub fn parse_oid(s: &str) -> Option<Oid> {
    let s = s.trim();
    let s = s.strip_prefix('.').unwrap_or(s);
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split('.').map(|p| p.parse::<u32>().ok()).collect()
}

pub fn oid_string(o: &[u32]) -> String {
    let mut s = String::with_capacity(o.len() * 4);
    for n in o {
        s.push('.');
        s.push_str(&n.to_string());
    }
    s
}

/// pass_persist's three lines for an object: OID, type, value.
pub fn answer(out: &mut String, oid: &[u32], v: &Value) {
    use std::fmt::Write;
    out.push_str(&oid_string(oid));
    out.push('\n');
    let _ = match v {
        Value::Integer(n) => writeln!(out, "integer\n{n}"),
        Value::Gauge(n) => writeln!(out, "gauge\n{n}"),
        Value::Counter64(n) => writeln!(out, "counter64\n{n}"),
        // A line break would end the value: none of ours has one, but a node's status
        // comes from the wire.
        Value::Str(s) => writeln!(out, "string\n{}", s.replace(['\n', '\r'], " ")),
        Value::Octets(b) => {
            out.push_str("octet\n");
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{x:02x}");
            }
            writeln!(out)
        }
    };
}

/// Why a SET is refused, in pass_persist's words (snmpd turns them into its errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotWritable,
    WrongType,
    WrongValue,
    /// The row went away, or the kernel refused: snmpd's commitFailed.
    CommitFailed,
}

impl Refusal {
    pub fn word(&self) -> &'static str {
        match self {
            Refusal::NotWritable => "not-writable",
            Refusal::WrongType => "wrong-type",
            Refusal::WrongValue => "wrong-value",
            Refusal::CommitFailed => "commit-failed",
        }
    }
}

/// Check a SET (`oid`, and snmpd's `TYPE VALUE` line) against the snapshot: only
/// hakitRsWeight of an existing row is writable, as an INTEGER 0 to 65535.
pub fn check_set(tree: &Tree, oid: &[u32], type_value: &str) -> Result<(RealRow, u32), Refusal> {
    let row = tree.weight_cell(oid).ok_or(Refusal::NotWritable)?;
    let (t, v) = type_value.trim().split_once(' ').unwrap_or((type_value.trim(), ""));
    if !t.eq_ignore_ascii_case("integer") {
        return Err(Refusal::WrongType);
    }
    let w: i64 = v.trim().parse().map_err(|_| Refusal::WrongValue)?;
    if !(0..=super::super::model::WEIGHT_MAX as i64).contains(&w) {
        return Err(Refusal::WrongValue);
    }
    Ok((row, w as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::LinkRecord;
    use crate::tools::lvs_ctl::model::{Dest, Fwd, Service};
    use crate::tools::lvs_ctl::status;

    fn vkey(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    /// Two services (the IPv6 one given first), three real servers, no configuration.
    fn kernel() -> Table {
        let mut t = Table::empty(crate::tools::lvs_ctl::model::Info { version: 0, size: 0 });
        let mut v6 = Service::new(vkey("2001:db8::10", 443));
        let mut d = Dest::new("2001:db8::2".parse().unwrap(), 443);
        d.fwd = Fwd::Masq;
        v6.dests.push(d);
        let mut v4 = Service::new(vkey("192.0.2.10", 80));
        for (a, w, act) in [("10.0.0.3", 2, 5), ("10.0.0.2", 1, 7)] {
            let mut d = Dest::new(a.parse().unwrap(), 80);
            d.weight = w;
            d.active = act;
            d.inactive = 1;
            v4.dests.push(d);
        }
        t.services.push(v6);
        t.services.push(v4);
        t
    }

    fn cluster() -> Cluster {
        let mut peer = NodeRecord {
            name: "dir2".into(),
            state: NodeState::Up,
            generation: 1_795_000_000,
            held: "192.0.2.10,vip-web".into(),
            ..Default::default()
        };
        peer.links[0] = LinkRecord {
            last_heard_ns: 9_000_000_000,
            state: LinkState::Up,
            lost: 3,
            ..Default::default()
        };
        peer.links[1] = LinkRecord {
            state: LinkState::Dead,
            ..Default::default()
        };
        let me = NodeRecord {
            name: "dir1".into(),
            state: NodeState::Up,
            flags: crate::table::FLAG_LOCAL,
            ..Default::default()
        };
        Cluster {
            channels: vec!["a".into(), "b".into()],
            local: "dir1".into(),
            writer_alive: true,
            nodes: vec![peer, me],
            now_ns: 10_000_000_000,
        }
    }

    fn o(rest: &[u32]) -> Oid {
        let mut v = ROOT.to_vec();
        v.push(OBJECTS);
        v.extend_from_slice(rest);
        v
    }

    fn tree() -> Tree {
        let k = kernel();
        let r = status::report(None, &k, None, "nft", health::Stamp::now());
        build(ROOT, &r, &k, Some(&cluster()))
    }

    #[test]
    fn rows_are_numbered_in_a_stable_order() {
        let t = tree();
        // The IPv4 service first (sort_key: family before address), its real servers
        // by address: 10.0.0.2 is rs 1 though the kernel lists it second.
        assert_eq!(
            t.get(&o(&[2, 1, 2, 1])).unwrap().1,
            Value::Str("tcp/192.0.2.10:80".into())
        );
        assert_eq!(t.get(&o(&[2, 1, 5, 1])).unwrap().1, Value::Octets(vec![192, 0, 2, 10]));
        assert_eq!(t.get(&o(&[2, 1, 4, 2])).unwrap().1, Value::Integer(2), "ipv6");
        assert_eq!(
            t.get(&o(&[2, 1, 5, 2])).unwrap().1,
            Value::Octets("2001:db8::10".parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec())
        );
        assert_eq!(t.get(&o(&[2, 1, 9, 1])).unwrap().1, Value::Gauge(2));
        assert_eq!(t.get(&o(&[2, 1, 10, 1])).unwrap().1, Value::Gauge(3), "live weight");
        assert_eq!(t.get(&o(&[3, 1, 3, 1, 1])).unwrap().1, Value::Octets(vec![10, 0, 0, 2]));
        assert_eq!(t.get(&o(&[3, 1, RS_WEIGHT, 1, 2])).unwrap().1, Value::Integer(2));
        assert_eq!(t.get(&o(&[3, 1, 10, 1, 1])).unwrap().1, Value::Gauge(7));
        assert_eq!(
            t.get(&o(&[3, 1, 9, 1, 1])).unwrap().1,
            Value::Integer(Status::NotConfigured as i64)
        );
        assert_eq!(t.get(&o(&[3, 1, 5, 2, 1])).unwrap().1, Value::Integer(2), "masq");
        // Hosts: 10.0.0.2, 10.0.0.3, then 2001:db8::2; each with its one service.
        assert_eq!(t.get(&o(&[4, 1, 4, 3])).unwrap().1, Value::Str("2001:db8::2".into()));
        assert_eq!(
            t.get(&o(&[5, 1, 2, 2, 1])).unwrap().1,
            Value::Str("tcp/192.0.2.10:80".into())
        );
        assert_eq!(t.get(&o(&[5, 1, 5, 2, 1])).unwrap().1, Value::Gauge(5));
        assert_eq!(t.get(&o(&[5, 1, 7, 2, 1])).unwrap().1, Value::Gauge(2), "its rs index");
        // Nodes by name: dir1 (local) then dir2; dir2's links and what it holds.
        assert_eq!(t.get(&o(&[6, 1, 2, 1])).unwrap().1, Value::Str("dir1".into()));
        assert_eq!(t.get(&o(&[6, 1, 3, 1])).unwrap().1, Value::Integer(1), "local");
        assert_eq!(
            t.get(&o(&[6, 1, 7, 2])).unwrap().1,
            Value::Integer(1000),
            "heard 1 s ago"
        );
        assert_eq!(t.get(&o(&[7, 1, 3, 2, 2])).unwrap().1, Value::Integer(4), "link b dead");
        assert_eq!(
            t.get(&o(&[7, 1, 4, 2, 2])).unwrap().1,
            Value::Integer(-1),
            "never heard"
        );
        assert_eq!(t.get(&o(&[7, 1, 5, 2, 1])).unwrap().1, Value::Counter64(3));
        assert!(t.get(&o(&[7, 1, 2, 1, 1])).is_none(), "no links of the local node");
        assert_eq!(t.get(&o(&[8, 1, 2, 2, 2])).unwrap().1, Value::Str("vip-web".into()));
    }

    #[test]
    fn getnext_walks_every_object_in_order_and_ends() {
        let t = tree();
        let mut at: Oid = ROOT.to_vec();
        let mut n = 0;
        while let Some((next, _)) = t.next(&at) {
            assert!(*next > at);
            at = next.clone();
            n += 1;
        }
        assert_eq!(n, t.len());
        // From before the root, inside a column, past a row's end.
        assert_eq!(t.next(&[1, 3]).unwrap().0, o(&[1, 1, 0]));
        assert_eq!(t.next(&o(&[3, 1, 3])).unwrap().0, o(&[3, 1, 3, 1, 1]));
        assert_eq!(t.next(&o(&[3, 1, 3, 1, 1])).unwrap().0, o(&[3, 1, 3, 1, 2]));
        assert_eq!(t.next(&o(&[3, 1, 3, 1, 9])).unwrap().0, o(&[3, 1, 3, 2, 1]));
        assert!(t.next(&o(&[9])).is_none());
        assert!(t.get(&o(&[3, 1, 3])).is_none(), "a column is no object");
    }

    #[test]
    fn answers_are_pass_persist_lines() {
        let mut s = String::new();
        answer(&mut s, &[1, 3, 6], &Value::Integer(-1));
        answer(&mut s, &[1, 3, 7], &Value::Octets(vec![10, 0, 0, 255]));
        answer(&mut s, &[1, 3, 8], &Value::Octets(vec![]));
        answer(&mut s, &[1, 3, 9], &Value::Str("a\nb".into()));
        answer(&mut s, &[1, 4], &Value::Counter64(u64::MAX));
        assert_eq!(
            s,
            ".1.3.6\ninteger\n-1\n.1.3.7\noctet\n0a 00 00 ff\n.1.3.8\noctet\n\n.1.3.9\nstring\na b\n.1.4\ncounter64\n18446744073709551615\n"
        );
        assert_eq!(parse_oid(".1.3.6.1.4.1.32473.104"), Some(ROOT.to_vec()));
        assert_eq!(parse_oid("1.3"), Some(vec![1, 3]));
        assert_eq!(parse_oid(".1.x"), None);
        assert_eq!(parse_oid(".1..3"), None);
    }

    #[test]
    fn only_a_real_servers_weight_is_writable_as_an_integer_0_to_65535() {
        let t = tree();
        let cell = o(&[3, 1, RS_WEIGHT, 1, 2]);
        let (row, w) = check_set(&t, &cell, "integer 0").unwrap();
        assert_eq!((row.real.to_string(), w), ("10.0.0.3:80".to_string(), 0));
        assert_eq!(row.service, vkey("192.0.2.10", 80));
        assert_eq!(check_set(&t, &cell, "integer 65535").unwrap().1, 65535);
        for (tv, r) in [
            ("integer -1", Refusal::WrongValue),
            ("integer 65536", Refusal::WrongValue),
            ("integer 99999999999999999999", Refusal::WrongValue),
            ("integer", Refusal::WrongValue),
            ("gauge 5", Refusal::WrongType),
            ("string \"5\"", Refusal::WrongType),
            ("octet 05", Refusal::WrongType),
        ] {
            assert_eq!(check_set(&t, &cell, tv), Err(r), "{tv}");
        }
        for oid in [
            o(&[3, 1, 7, 1, 2]),
            o(&[3, 1, RS_WEIGHT, 1, 3]),
            o(&[3, 1, RS_WEIGHT, 1]),
            o(&[3, 1, RS_WEIGHT, 1, 2, 0]),
            o(&[2, 1, 10, 1]),
            vec![1, 3, 6],
        ] {
            assert_eq!(check_set(&t, &oid, "integer 1"), Err(Refusal::NotWritable), "{oid:?}");
        }
        assert_eq!(Refusal::NotWritable.word(), "not-writable");
    }
}
