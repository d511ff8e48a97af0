//! `ipfake mirror`: roll-forward for UDP services (seed 002). The active node copies
//! every request to the standby, which processes it and whose answers are dropped
//! until it takes over; then it answers with state that is already current.
//!
//! Two tables of our own, made by nft once per (device, peers) and marked by their
//! comment (`hakit-mirror dev=... peers=...`; a table of that name without it is not
//! ours and is never touched):
//!
//! - `ip hakit_mirror`: set `active` (address . port) of what this node mirrors, in
//!   both modes (a standby that still gets requests, by a stale ARP cache after a
//!   handover, hands them on to the active node: both go on processing every one);
//!   prerouting copies each such datagram to every peer (`dup to PEER device DEV`:
//!   routed to the peer as next hop, the destination kept, so the peer's MAC receives a
//!   datagram to the address); output sets the copy's TTL to 1, and a datagram with TTL
//!   1 is never copied: two nodes both active (a healed partition) do not bounce copies
//!   at each other until the TTL runs out. A copy is the only packet to a local address
//!   that leaves on DEV, which is how output knows it.
//! - `netdev hakit_mirror`: set `standby` (address) of what this node is standby for
//!   (a takeover deletes one element there);
//!   DEV's egress drops every IPv4 packet from such an address and every ARP packet
//!   naming it as the sender. At egress, not in output: an output drop fails the
//!   service's sendto with EPERM (measured; the first test service died of it), while
//!   UDP hides a drop at the device (ENOBUFS) from the sender. The ARP rule keeps this
//!   node out of every cache for the address, without arp_ignore/arp_announce (which
//!   are the device's, for all its addresses, and would have to be put back).
//!
//! The standby takes the copies because the address is local there: on `lo` as a /32
//! labelled `lo:hakit-mirror` (what a service binds to; the label says it is ours).
//! `ipfake up` removes that copy once it has added the address on its interface.
//!
//! Every mode change is one transaction: nf_tables set elements over netlink when the
//! tables are already right (a takeover: well under a millisecond in the kernel), or
//! one `nft -f -` batch that deletes and makes the tables with their elements.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::privilege::{self, Cap};
use crate::net::addr;
use crate::net::nftables::{self, Concat, Elem, Family, Nftables, Op};
use crate::tools::ipfake::settings::MirrorOrder;
use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

pub const TABLE: &str = "hakit_mirror";
/// The label of the standby's copy of the address on `lo`.
pub const LO_LABEL: &str = "lo:hakit-mirror";
const MARK: &str = "hakit-mirror";
const ACTIVE: &str = "active";
const STANDBY: &str = "standby";

#[derive(Debug)]
pub enum Error {
    Usage(String),
    /// The capabilities missing.
    Privilege(String),
    /// A table of our name that we did not make.
    Foreign(String),
    Kernel(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Foreign(m) | Error::Kernel(m) => f.write_str(m),
            Error::Privilege(m) => write!(
                f,
                "mirroring needs CAP_NET_ADMIN; this process lacks {m} (run as root, or grant it: AmbientCapabilities= in a unit)"
            ),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) | Error::Privilege(_) => ExitStatus::Usage,
            Error::Foreign(_) | Error::Kernel(_) => ExitStatus::Failure,
        }
    }
}

/// What the tables are made for: one device and the peers copies go to, per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    pub dev: String,
    pub peers: Vec<Ipv4Addr>,
}

/// The node's mirroring, as the kernel holds it or as it is to be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// None: no tables (or not both of them, or not agreeing: made again).
    pub skeleton: Option<Skeleton>,
    pub active: BTreeSet<(Ipv4Addr, u16)>,
    pub standby: BTreeSet<Ipv4Addr>,
    /// Which of our tables exist (ip, netdev): deleted before they are made again.
    pub present: (bool, bool),
}

impl State {
    fn is_empty(&self) -> bool {
        self.active.is_empty() && self.standby.is_empty()
    }

    fn vips(&self) -> BTreeSet<Ipv4Addr> {
        self.active
            .iter()
            .map(|a| a.0)
            .chain(self.standby.iter().copied())
            .collect()
    }

    /// The mode of one address: `active udp/53,udp/123`, `standby udp/53`, or None.
    pub fn mode(&self, vip: Ipv4Addr) -> Option<String> {
        let ports: Vec<String> = self
            .active
            .iter()
            .filter(|a| a.0 == vip)
            .map(|a| format!("udp/{}", a.1))
            .collect();
        let role = if self.standby.contains(&vip) {
            "standby"
        } else if !ports.is_empty() {
            "active"
        } else {
            return None;
        };
        Some(format!("{role} {}", ports.join(",")).trim_end().to_string())
    }
}

fn comment(family: &str, sk: &Skeleton) -> String {
    match family {
        "ip" => {
            let peers: Vec<String> = sk.peers.iter().map(|p| p.to_string()).collect();
            format!("{MARK} dev={} peers={}", sk.dev, peers.join(","))
        }
        _ => format!("{MARK} dev={}", sk.dev),
    }
}

/// A comment of ours (`hakit-mirror dev=eth0 peers=a,b`) → its skeleton; Err if the
/// comment is not ours at all, Ok(None) if ours but not readable (made again).
fn parse_comment(c: Option<&str>) -> Result<Option<Skeleton>, ()> {
    let c = c.ok_or(())?;
    let rest = match c.strip_prefix(MARK) {
        Some(r) if r.is_empty() || r.starts_with(' ') => r,
        _ => return Err(()),
    };
    let (mut dev, mut peers) = (None, Vec::new());
    for w in rest.split_whitespace() {
        match w.split_once('=') {
            Some(("dev", d)) if !d.is_empty() => dev = Some(d.to_string()),
            Some(("peers", p)) => {
                for a in p.split(',').filter(|a| !a.is_empty()) {
                    match a.parse() {
                        Ok(a) => peers.push(a),
                        Err(_) => return Ok(None),
                    }
                }
            }
            _ => return Ok(None),
        }
    }
    Ok(dev.map(|dev| Skeleton { dev, peers }))
}

fn active_key(vip: Ipv4Addr, port: u16) -> Vec<u8> {
    Concat::new().ipv4(vip).port(port).bytes()
}

fn standby_key(vip: Ipv4Addr) -> Vec<u8> {
    Concat::new().ipv4(vip).bytes()
}

fn kernel(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Kernel(format!("{what}: {e}"))
}

/// Our table of `family`, if there is one: Some(its skeleton, if readable). A table of
/// that name we did not make is an error.
fn our_table(nl: &mut Nftables, family: Family, fname: &str) -> Result<Option<Option<Skeleton>>, Error> {
    let tables = nl.tables(family).map_err(kernel("reading nf_tables tables"))?;
    let Some((_, c)) = tables.into_iter().find(|t| t.0 == TABLE) else {
        return Ok(None);
    };
    parse_comment(c.as_deref()).map(Some).map_err(|()| {
        Error::Foreign(format!(
            "table {fname} {TABLE} exists and was not made by ipfake mirror (its comment is not `{MARK} ...`); not touching it"
        ))
    })
}

/// What the kernel holds.
pub fn read(nl: &mut Nftables) -> Result<State, Error> {
    let ip = our_table(nl, Family::Ip, "ip")?;
    let nd = our_table(nl, Family::Netdev, "netdev")?;
    let mut s = State {
        present: (ip.is_some(), nd.is_some()),
        ..State::default()
    };
    if ip.is_some() {
        for e in nl
            .set_elems(Family::Ip, TABLE, ACTIVE)
            .map_err(kernel("reading ip hakit_mirror"))?
        {
            // address (4) . port (2, padded to 4)
            if let [a, b, c, d, p0, p1, 0, 0] = e.key[..] {
                s.active
                    .insert((Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p0, p1])));
            }
        }
    }
    if nd.is_some() {
        for e in nl
            .set_elems(Family::Netdev, TABLE, STANDBY)
            .map_err(kernel("reading netdev hakit_mirror"))?
        {
            if let [a, b, c, d] = e.key[..] {
                s.standby.insert(Ipv4Addr::new(a, b, c, d));
            }
        }
    }
    // Both tables made for the same device, or they are made again.
    if let (Some(Some(i)), Some(Some(n))) = (ip, nd) {
        if i.dev == n.dev {
            s.skeleton = Some(i);
        }
    }
    Ok(s)
}

/// The state an order leads to (pure: the unit tests play it).
pub fn plan(cur: &State, order: &MirrorOrder) -> Result<State, Error> {
    let mut next = cur.clone();
    let (node, ports, standby) = match order {
        MirrorOrder::Active { node, ports } => (node, ports, false),
        MirrorOrder::Standby { node, ports } => (node, ports, true),
        MirrorOrder::Off(vip) => {
            match vip {
                Some(v) => {
                    next.active.retain(|a| a.0 != *v);
                    next.standby.remove(v);
                }
                None => {
                    next.active.clear();
                    next.standby.clear();
                }
            }
            if next.is_empty() {
                next.skeleton = None;
            }
            return Ok(next);
        }
        MirrorOrder::Status(_) => return Ok(next),
    };
    if let Some(sk) = &cur.skeleton {
        let others: Vec<String> = cur
            .vips()
            .into_iter()
            .filter(|v| *v != node.vip)
            .map(|v| v.to_string())
            .collect();
        if sk.dev != node.dev && !others.is_empty() {
            return Err(Error::Usage(format!(
                "--dev {}: this node mirrors {} on {}, and mirroring has one device per node (`ipfake mirror off --vip ADDR` first)",
                node.dev,
                others.join(", "),
                sk.dev
            )));
        }
    }
    let peers = match (&node.peers[..], &cur.skeleton) {
        ([], Some(sk)) => sk.peers.clone(),
        (p, _) => p.to_vec(),
    };
    next.skeleton = Some(Skeleton {
        dev: node.dev.clone(),
        peers,
    });
    // Both modes copy: a standby that still gets requests (a stale ARP cache after a
    // handover) hands them on to the active node, so both keep processing all of them.
    next.active.retain(|a| a.0 != node.vip);
    next.active.extend(ports.iter().map(|&p| (node.vip, p)));
    if standby {
        next.standby.insert(node.vip);
    } else {
        next.standby.remove(&node.vip);
    }
    Ok(next)
}

/// How `cur` becomes `next`: element ops over netlink when the tables stay, else one
/// nft batch (which also removes the tables when nothing is left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    Elements(Vec<Op>),
    Nft(String),
}

pub fn step(cur: &State, next: &State) -> Step {
    let same = |a: &State, b: &State| a.skeleton == b.skeleton && a.active == b.active && a.standby == b.standby;
    if same(cur, next) && (next.skeleton.is_some() || cur.present == (false, false)) {
        return Step::Nothing;
    }
    match &next.skeleton {
        Some(sk) if cur.skeleton.as_ref() == Some(sk) => {
            // What leaves each set, then what comes in (one transaction: order is moot).
            let mut ops = Vec::new();
            let mut change = |family, set: &str, was: Vec<Vec<u8>>, will: Vec<Vec<u8>>| {
                let gone: Vec<Vec<u8>> = was.iter().filter(|k| !will.contains(k)).cloned().collect();
                let new: Vec<Elem> = will.into_iter().filter(|k| !was.contains(k)).map(Elem::key).collect();
                let (table, set) = (TABLE.to_string(), set.to_string());
                if !gone.is_empty() {
                    ops.push(Op::DelSetElems {
                        family,
                        table: table.clone(),
                        set: set.clone(),
                        keys: gone,
                    });
                }
                if !new.is_empty() {
                    ops.push(Op::NewSetElems {
                        family,
                        table,
                        set,
                        elems: new,
                    });
                }
            };
            let keys = |s: &State| -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
                (
                    s.active.iter().map(|a| active_key(a.0, a.1)).collect(),
                    s.standby.iter().map(|v| standby_key(*v)).collect(),
                )
            };
            let ((ca, cs), (na, ns)) = (keys(cur), keys(next));
            change(Family::Ip, ACTIVE, ca, na);
            change(Family::Netdev, STANDBY, cs, ns);
            if ops.is_empty() {
                Step::Nothing
            } else {
                Step::Elements(ops)
            }
        }
        _ => Step::Nft(ruleset(cur.present, next)),
    }
}

/// The nft batch that deletes our tables that are there and makes `next`'s (none when
/// it has no skeleton).
pub fn ruleset(present: (bool, bool), next: &State) -> String {
    let mut t = String::new();
    if present.0 {
        writeln!(t, "delete table ip {TABLE}").unwrap();
    }
    if present.1 {
        writeln!(t, "delete table netdev {TABLE}").unwrap();
    }
    let Some(sk) = &next.skeleton else { return t };
    let elements = |items: Vec<String>| {
        if items.is_empty() {
            String::new()
        } else {
            format!("\t\telements = {{ {} }}\n", items.join(", "))
        }
    };
    let dev = &sk.dev;
    writeln!(t, "table ip {TABLE} {{\n\tcomment \"{}\"", comment("ip", sk)).unwrap();
    write!(
        t,
        "\tset {ACTIVE} {{\n\t\ttype ipv4_addr . inet_service\n{}\t}}\n",
        elements(next.active.iter().map(|a| format!("{} . {}", a.0, a.1)).collect())
    )
    .unwrap();
    t.push_str("\tchain pre {\n\t\ttype filter hook prerouting priority -150; policy accept;\n");
    for p in &sk.peers {
        writeln!(
            t,
            "\t\tip daddr . udp dport @{ACTIVE} ip ttl != 1 dup to {p} device \"{dev}\""
        )
        .unwrap();
    }
    t.push_str("\t}\n\tchain out {\n\t\ttype filter hook output priority -150; policy accept;\n");
    writeln!(
        t,
        "\t\tip daddr . udp dport @{ACTIVE} oifname \"{dev}\" ip ttl set 1\n\t}}\n}}"
    )
    .unwrap();
    writeln!(t, "table netdev {TABLE} {{\n\tcomment \"{}\"", comment("netdev", sk)).unwrap();
    write!(
        t,
        "\tset {STANDBY} {{\n\t\ttype ipv4_addr\n{}\t}}\n",
        elements(next.standby.iter().map(|v| v.to_string()).collect())
    )
    .unwrap();
    write!(
        t,
        "\tchain egress {{\n\t\ttype filter hook egress device \"{dev}\" priority 0; policy accept;\n\t\tip saddr @{STANDBY} drop\n\t\tarp saddr ip @{STANDBY} drop\n\t}}\n}}\n"
    )
    .unwrap();
    t
}

fn lo_index() -> Result<u32, Error> {
    nix::net::if_::if_nametoindex("lo").map_err(|e| Error::Kernel(format!("no interface lo: {e}")))
}

/// Whether the standby's copy of `vip` is on lo (with our label).
fn has_lo_copy(vip: Ipv4Addr) -> bool {
    addr::labelled()
        .iter()
        .any(|a| a.0 == IpAddr::V4(vip) && a.1 == LO_LABEL)
}

fn del_lo_copy(vip: Ipv4Addr) -> Result<(), Error> {
    if has_lo_copy(vip) {
        addr::del(lo_index()?, IpAddr::V4(vip), 32).map_err(kernel(&format!("removing {vip}/32 from lo")))?;
    }
    Ok(())
}

/// For `ipfake up`: the address is now held on `iface`, so the standby's copy on lo
/// (ours only) goes. Best effort: a failure is logged, the takeover goes on.
pub fn drop_lo_copy_after_up(ip: IpAddr) {
    if let IpAddr::V4(v4) = ip {
        if let Err(e) = del_lo_copy(v4) {
            crate::base::log::warn(&e.to_string());
        }
    }
}

fn open() -> Result<Nftables, Error> {
    let missing = privilege::missing(&[Cap::NetAdmin]);
    if !missing.is_empty() {
        return Err(Error::Privilege(privilege::describe(&missing)));
    }
    Nftables::open().map_err(kernel("cannot open an nf_tables netlink socket"))
}

fn commit(nl: &mut Nftables, cur: &State, next: &State) -> Result<(), Error> {
    match step(cur, next) {
        Step::Nothing => Ok(()),
        Step::Elements(ops) => nl
            .transaction(&ops)
            .map_err(|e| Error::Kernel(format!("{e} (nothing changed)"))),
        Step::Nft(text) => nftables::nft_batch(&text).map_err(Error::Kernel),
    }
}

/// `ipfake mirror ...`: Ok(status) — Failure only for `status` of what is not mirrored.
pub fn run(order: &MirrorOrder) -> Result<ExitStatus, Error> {
    let mut nl = open()?;
    let cur = read(&mut nl)?;
    let next = plan(&cur, order)?;
    // Off: first stop taking copies, then the tables; the copies come back if the
    // tables could not change (or a later copy could not go).
    let mut removed = Vec::new();
    let restore = |removed: &[Ipv4Addr]| {
        if let Ok(lo) = lo_index() {
            for v in removed {
                let _ = addr::add(lo, IpAddr::V4(*v), 32, Some(LO_LABEL));
            }
        }
    };
    match order {
        MirrorOrder::Status(vip) => return Ok(status(&cur, *vip)),
        MirrorOrder::Off(vip) => {
            for (ip, label) in addr::labelled() {
                match ip {
                    IpAddr::V4(v) if label == LO_LABEL && vip.is_none_or(|w| w == v) => {
                        if let Err(e) = del_lo_copy(v) {
                            restore(&removed);
                            return Err(e);
                        }
                        removed.push(v);
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    if let Err(e) = commit(&mut nl, &cur, &next) {
        restore(&removed);
        return Err(e);
    }
    match order {
        // Its answers are dropped before the address is local here. Without the copy
        // the standby would drop what it mirrors: the tables go back as they were.
        MirrorOrder::Standby { node, .. } => {
            if let Err(e) = addr::add(lo_index()?, IpAddr::V4(node.vip), 32, Some(LO_LABEL)) {
                let back = read(&mut nl).and_then(|now| commit(&mut nl, &now, &cur));
                if let Err(b) = back {
                    crate::base::log::error(&format!("cannot put the mirror tables back: {b}"));
                }
                return Err(Error::Kernel(format!("adding {}/32 to lo: {e}", node.vip)));
            }
        }
        // Held on its interface already: the copy is not needed. Not yet: it stays
        // until `ipfake up` adds the address (copies keep arriving until then).
        MirrorOrder::Active { node, .. } if held_elsewhere(node.vip) => del_lo_copy(node.vip)?,
        _ => {}
    }
    Ok(ExitStatus::Success)
}

/// Whether `vip` is configured other than as our copy on lo.
fn held_elsewhere(vip: Ipv4Addr) -> bool {
    addr::labelled()
        .iter()
        .any(|a| a.0 == IpAddr::V4(vip) && a.1 != LO_LABEL)
}

fn status(cur: &State, vip: Option<Ipv4Addr>) -> ExitStatus {
    let sk = cur.skeleton.as_ref();
    let dev = sk.map(|s| s.dev.as_str()).unwrap_or("?");
    let peers: Vec<String> = sk
        .map(|s| s.peers.iter().map(|p| p.to_string()).collect())
        .unwrap_or_default();
    let mut found = false;
    for v in cur.vips() {
        if vip.is_some_and(|w| w != v) {
            continue;
        }
        found = true;
        let mode = cur.mode(v).unwrap_or_default();
        let lo = if has_lo_copy(v) { " lo" } else { "" };
        let peers = if peers.is_empty() {
            "-".to_string()
        } else {
            peers.join(",")
        };
        println!("{v} {mode} dev={dev} peers={peers}{lo}");
    }
    if let (Some(v), false) = (vip, found) {
        println!("{v} off");
    }
    if found {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ipfake::settings::MirrorNode;

    fn node(vip: &str, dev: &str, peers: &[&str]) -> MirrorNode {
        MirrorNode {
            vip: vip.parse().unwrap(),
            dev: dev.into(),
            peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    const V: &str = "10.0.0.100";

    #[test]
    fn a_standby_then_its_takeover() {
        let empty = State::default();
        let sb = plan(
            &empty,
            &MirrorOrder::Standby {
                node: node(V, "eth0", &["10.0.0.1"]),
                ports: vec![5300],
            },
        )
        .unwrap();
        assert_eq!(sb.mode(V.parse().unwrap()).as_deref(), Some("standby udp/5300"));
        // No tables yet: one nft batch, which makes both with the element in.
        let Step::Nft(text) = step(&empty, &sb) else { panic!() };
        assert_eq!(
            text,
            "table ip hakit_mirror {\n\tcomment \"hakit-mirror dev=eth0 peers=10.0.0.1\"\n\tset active {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { 10.0.0.100 . 5300 }\n\t}\n\tchain pre {\n\t\ttype filter hook prerouting priority -150; policy accept;\n\t\tip daddr . udp dport @active ip ttl != 1 dup to 10.0.0.1 device \"eth0\"\n\t}\n\tchain out {\n\t\ttype filter hook output priority -150; policy accept;\n\t\tip daddr . udp dport @active oifname \"eth0\" ip ttl set 1\n\t}\n}\ntable netdev hakit_mirror {\n\tcomment \"hakit-mirror dev=eth0\"\n\tset standby {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.100 }\n\t}\n\tchain egress {\n\t\ttype filter hook egress device \"eth0\" priority 0; policy accept;\n\t\tip saddr @standby drop\n\t\tarp saddr ip @standby drop\n\t}\n}\n"
        );
        // The takeover, peers left out: the tables stay, one element transaction: the
        // standby element goes (and here a port comes).
        let made = State {
            present: (true, true),
            ..sb.clone()
        };
        let act = plan(
            &made,
            &MirrorOrder::Active {
                node: node(V, "eth0", &[]),
                ports: vec![5300, 53],
            },
        )
        .unwrap();
        assert_eq!(act.skeleton, sb.skeleton);
        assert_eq!(act.mode(V.parse().unwrap()).as_deref(), Some("active udp/53,udp/5300"));
        let Step::Elements(ops) = step(&made, &act) else {
            panic!()
        };
        let v: Ipv4Addr = V.parse().unwrap();
        assert_eq!(
            ops,
            vec![
                Op::NewSetElems {
                    family: Family::Ip,
                    table: TABLE.into(),
                    set: ACTIVE.into(),
                    elems: vec![Elem::key(active_key(v, 53))],
                },
                Op::DelSetElems {
                    family: Family::Netdev,
                    table: TABLE.into(),
                    set: STANDBY.into(),
                    keys: vec![standby_key(v)],
                },
            ]
        );
        assert_eq!(active_key(v, 5300), [10, 0, 0, 100, 0x14, 0xb4, 0, 0]);
        // Again: nothing to do.
        let act2 = State {
            present: (true, true),
            ..act.clone()
        };
        assert_eq!(
            step(
                &act2,
                &plan(
                    &act2,
                    &MirrorOrder::Active {
                        node: node(V, "eth0", &[]),
                        ports: vec![53, 5300]
                    }
                )
                .unwrap()
            ),
            Step::Nothing
        );
        // Off: nothing left, so both tables go, in one batch.
        let off = plan(&act2, &MirrorOrder::Off(None)).unwrap();
        assert_eq!(off.skeleton, None);
        assert_eq!(
            step(&act2, &off),
            Step::Nft("delete table ip hakit_mirror\ndelete table netdev hakit_mirror\n".into())
        );
        // Off with nothing there: nothing.
        assert_eq!(
            step(&empty, &plan(&empty, &MirrorOrder::Off(None)).unwrap()),
            Step::Nothing
        );
    }

    #[test]
    fn new_peers_remake_the_tables_and_a_second_device_is_refused() {
        let one = State {
            skeleton: Some(Skeleton {
                dev: "eth0".into(),
                peers: vec!["10.0.0.1".parse().unwrap()],
            }),
            active: [("10.0.0.100".parse().unwrap(), 53)].into(),
            standby: BTreeSet::new(),
            present: (true, true),
        };
        let order = MirrorOrder::Active {
            node: node(V, "eth0", &["10.0.0.2", "10.0.0.3"]),
            ports: vec![53],
        };
        let next = plan(&one, &order).unwrap();
        let Step::Nft(text) = step(&one, &next) else { panic!() };
        assert!(text.starts_with("delete table ip hakit_mirror\ndelete table netdev hakit_mirror\ntable ip"));
        assert!(text.contains("comment \"hakit-mirror dev=eth0 peers=10.0.0.2,10.0.0.3\""));
        assert!(text.contains("elements = { 10.0.0.100 . 53 }"));
        assert!(text
            .contains("dup to 10.0.0.2 device \"eth0\"\n\t\tip daddr . udp dport @active ip ttl != 1 dup to 10.0.0.3"));
        // Another address on another device while one is mirrored: refused.
        let sb = |vip, dev| MirrorOrder::Standby {
            node: node(vip, dev, &[]),
            ports: vec![53],
        };
        let e = plan(&one, &sb("10.0.0.101", "eth1")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--dev eth1: this node mirrors 10.0.0.100 on eth0"),
            "{e}"
        );
        assert_eq!(e.exit_status(), ExitStatus::Usage);
        // The same address moving to another device is fine.
        assert!(plan(&one, &sb(V, "eth1")).is_ok());
        // A standby that was active keeps copying: only its standby element comes.
        let Step::Elements(ops) = step(&one, &plan(&one, &sb(V, "eth0")).unwrap()) else {
            panic!()
        };
        assert_eq!(
            ops,
            vec![Op::NewSetElems {
                family: Family::Netdev,
                table: TABLE.into(),
                set: STANDBY.into(),
                elems: vec![Elem::key(standby_key(V.parse().unwrap()))],
            }]
        );
    }

    #[test]
    fn only_our_comments_are_ours() {
        assert_eq!(
            parse_comment(Some("hakit-mirror dev=eth0 peers=10.0.0.1,10.0.0.2")),
            Ok(Some(Skeleton {
                dev: "eth0".into(),
                peers: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()]
            }))
        );
        assert_eq!(
            parse_comment(Some("hakit-mirror dev=eth0")),
            Ok(Some(Skeleton {
                dev: "eth0".into(),
                peers: vec![]
            }))
        );
        assert_eq!(parse_comment(Some("hakit-mirror")), Ok(None));
        assert_eq!(parse_comment(Some("hakit-mirror dev=eth0 peers=x")), Ok(None));
        assert_eq!(parse_comment(Some("hakit-mirrors dev=eth0")), Err(()));
        assert_eq!(parse_comment(Some("someone's")), Err(()));
        assert_eq!(parse_comment(None), Err(()));
        // What we write, we read.
        let sk = Skeleton {
            dev: "eth0".into(),
            peers: vec!["10.0.0.9".parse().unwrap()],
        };
        assert_eq!(parse_comment(Some(&comment("ip", &sk))), Ok(Some(sk.clone())));
        assert_eq!(
            parse_comment(Some(&comment("netdev", &sk))).unwrap().unwrap().dev,
            "eth0"
        );
    }
}
