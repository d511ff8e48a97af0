//! Policy routing for moving a node's cluster traffic between two LANs (chan-switch):
//! host routes to the peers in one table per LAN, a rule that says which table the
//! cluster's addresses are looked up in, and neighbour entries kept resolved on both
//! LANs — all over the house's rtnetlink socket.
//!
//! Why rules: the per-peer routes are written once, ahead of time; moving every peer's
//! traffic to the other LAN is then one rule added or deleted, one message in one
//! datagram however many peers there are (switching by replacing every peer's route
//! is the alternative, and costs a message per peer: BENCHMARKS.md has both).
//!
//! Everything hakit writes carries its own protocol number ([`RTPROT_HAKIT`]), and
//! [`Routes::rules`] and [`Routes::table`] read back only those: they are what a
//! previous run left, and the only ones our deletes can match (the kernel compares the
//! protocol when a delete names one).
//!
//! Requests of one call go in one datagram, only the last asking for an
//! acknowledgement: routes and neighbours through [`Netlink::batch`] (one set of
//! flags; up to [`BATCH_WINDOW`] a datagram), rules through [`Netlink::together`]
//! (a delete and an add need different flags; see [`Routes::change_rules`] for the
//! one case that takes a second datagram). The kernel carries on after a refusal, so
//! a datagram is not a transaction: anything refused is named, the rest was done.
//! What the kernel could never take (a /33, table 0) is refused before anything is
//! sent.
//!
//! [`BATCH_WINDOW`]: crate::net::netlink::BATCH_WINDOW
//! [`Netlink::batch`]: crate::net::netlink::Netlink::batch
//! [`Netlink::together`]: crate::net::netlink::Netlink::together

use crate::net::netlink::Route;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

/// The routing protocol number on hakit's routes and rules. Not RTPROT_STATIC (4):
/// that is what administrators' and network managers' own routes carry, and a number
/// of our own lets `ip route show proto 104` (or `ip rule show protocol 104`) and
/// `ip route flush proto 104` find exactly hakit's, and our deletes never match
/// anyone else's. Numbers from 4 up mean nothing to the kernel; 104 is taken by no
/// routing daemon in iproute2's list (name it in /etc/iproute2/rt_protos.d/ if wanted).
pub const RTPROT_HAKIT: u8 = 104;

const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;

/// A route in a given table: `DST/PREFIX via VIA dev IFINDEX [src SRC] table T`
/// (a host route when PREFIX is the whole address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostRoute {
    pub dst: IpAddr,
    pub prefix: u8,
    /// The gateway on the LAN: of `dst`'s family (IPv6 may be link-local).
    pub via: IpAddr,
    pub ifindex: u32,
    /// The source address for traffic that did not choose one (RTA_PREFSRC): a
    /// local address, or the kernel refuses the route.
    pub src: Option<IpAddr>,
    pub table: u32,
}

/// A policy rule: `priority P to DST/LEN lookup TABLE` (its family is DST's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub priority: u32,
    pub dst: IpAddr,
    pub dst_len: u8,
    pub table: u32,
}

impl fmt::Display for HostRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} via {} ifindex {}",
            self.dst, self.prefix, self.via, self.ifindex
        )?;
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        write!(f, " table {}", self.table)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "priority {} to {}/{} lookup {}",
            self.priority, self.dst, self.dst_len, self.table
        )
    }
}

/// What the kernel refused of a call: each request as `ip` would write it, with its
/// errno. It travels inside the `io::Error` that [`Routes`] returns (whose kind is the
/// first errno's); [`Refused::of`] gets it back.
#[derive(Debug)]
pub struct Refused(pub Vec<(String, io::Error)>);

impl Refused {
    /// The refusals an error from [`Routes`] carries, if it is one.
    pub fn of(e: &io::Error) -> Option<&Refused> {
        e.get_ref()?.downcast_ref()
    }

    /// The first refusal's errno.
    pub fn errno(&self) -> Option<i32> {
        self.0.first()?.1.raw_os_error()
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rtnetlink refused")?;
        for (i, (what, e)) in self.0.iter().enumerate() {
            write!(f, "{} {what}: {e}", if i == 0 { "" } else { ";" })?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// The house's rtnetlink socket, for routes, rules and neighbours.
pub struct Routes {
    nl: Route,
}

/// A request to send and how to name it if it is refused.
struct Request {
    msg: RouteNetlinkMessage,
    what: String,
}

impl Routes {
    pub fn open() -> io::Result<Routes> {
        let mut nl = Route::route()?;
        // A refusal then costs the receive buffer a few dozen bytes, not a copy of
        // the request: a whole window of them always fits.
        nl.set_cap_ack(true)?;
        Ok(Routes { nl })
    }

    /// Create or replace these routes (RTM_NEWROUTE, NLM_F_CREATE|NLM_F_REPLACE), in
    /// one datagram. A route replaces the one to the same DST/PREFIX in its table (at
    /// the same metric, which hakit never sets), whatever its gateway: writing the
    /// same routes again changes nothing.
    pub fn replace(&mut self, routes: &[HostRoute]) -> io::Result<()> {
        let reqs = routes
            .iter()
            .map(|r| {
                check_route(r)?;
                Ok(Request {
                    msg: RouteNetlinkMessage::NewRoute(route_message(r)),
                    what: format!("route {r}"),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        self.send(reqs, NLM_F_CREATE | NLM_F_REPLACE, |_, _| false)
    }

    /// Delete our routes to these DST/PREFIX in their tables (the gateway, device and
    /// source are not compared); one that is not there is not an error.
    pub fn remove(&mut self, routes: &[HostRoute]) -> io::Result<()> {
        let reqs = routes
            .iter()
            .map(|r| {
                check_route(r)?;
                Ok(Request {
                    msg: RouteNetlinkMessage::DelRoute(route_delete_message(r)),
                    what: format!("route {r}"),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        // IPv4 says ESRCH for a route that is not there, IPv6 ENOENT.
        self.send(reqs, 0, |_, e| e == libc::ESRCH || e == libc::ENOENT)
    }

    /// Delete `delete`, then add `add`, in one datagram: one netlink round trip, the
    /// channel switch. Deleting a rule that is not there (ENOENT) and adding one that
    /// is (EEXIST) are not errors; any other refusal is returned naming the rule and
    /// its errno.
    ///
    /// When the first request is refused (a tolerated ENOENT, say), the rest is sent
    /// again in a second datagram, and so on: see the comment inside.
    ///
    /// In that order, as asked: the same rule in both lists ends up there. Between
    /// the kernel's handling of the two (microseconds) neither a deleted rule nor its
    /// replacement is there, and a packet routed then falls through to the next rule;
    /// a switch that must have no such gap adds a rule of higher priority (smaller
    /// number) alone, and deletes the old one in a later call.
    pub fn change_rules(&mut self, delete: &[Rule], add: &[Rule]) -> io::Result<()> {
        let deletes = delete.len();
        let reqs = delete
            .iter()
            .map(|r| (r, false))
            .chain(add.iter().map(|r| (r, true)))
            .map(|(r, adding)| {
                check_rule(r)?;
                let m = rule_message(r);
                Ok(if adding {
                    // NLM_F_EXCL: without it the kernel adds a second copy of a rule
                    // it has. Not on a delete: there 0x200 means NLM_F_BULK, which
                    // fib rules refuse (EOPNOTSUPP).
                    let r = Request {
                        msg: RouteNetlinkMessage::NewRule(m),
                        what: format!("adding rule {r}"),
                    };
                    (r, NLM_F_CREATE | NLM_F_EXCL)
                } else {
                    let r = Request {
                        msg: RouteNetlinkMessage::DelRule(m),
                        what: format!("deleting rule {r}"),
                    };
                    (r, 0)
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let tolerated = |i: usize, e: i32| {
            if i < deletes {
                e == libc::ENOENT
            } else {
                e == libc::EEXIST
            }
        };
        // Deletes and adds need different flags, so not one batch: one datagram of
        // them all through `together`. Its wait ends when the first request is
        // refused (an nfnetlink transaction refused whole answers only that one), so
        // the rest's answers are not read; then the rest is sent again. That is safe:
        // deleting what is gone and adding what is there are the tolerated ENOENT and
        // EEXIST, and every rule ends as the last request about it left it. A clean
        // switch, whose first request is done, takes one round trip.
        let mut refused = Vec::new();
        let mut from = 0;
        while from < reqs.len() {
            let last = reqs.len() - 1;
            let msgs = reqs[from..].iter().enumerate().map(|(i, (r, flags))| {
                let ack = if from + i == last { NLM_F_ACK } else { 0 };
                (r.msg.clone(), flags | ack)
            });
            let answer = match self.nl.together(msgs) {
                Ok(a) => a,
                Err(e) => {
                    let unsure: Vec<&str> = reqs[from..].iter().map(|(r, _)| r.what.as_str()).collect();
                    let before = judge(|i| reqs[i].0.what.clone(), refused, &tolerated);
                    return Err(lost(e, &unsure, before.err()));
                }
            };
            let mut answer = answer.into_iter().peekable();
            if from < last && matches!(answer.peek(), Some((0, _))) {
                refused.extend(answer.next().map(|(_, e)| (from, e)));
                from += 1;
                continue;
            }
            refused.extend(answer.map(|(i, e)| (from + i, e)));
            break;
        }
        judge(|i| reqs[i].0.what.clone(), refused, &tolerated)
    }

    /// Our rules (protocol [`RTPROT_HAKIT`]) whose priority is in `prios`, both
    /// families, in the kernel's order: what a previous run left.
    pub fn rules(&mut self, prios: RangeInclusive<u32>) -> io::Result<Vec<Rule>> {
        let all = self.nl.dump(RouteNetlinkMessage::GetRule(RuleMessage::default()))?;
        Ok(all
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => rule_of(r),
                _ => None,
            })
            .filter(|r| prios.contains(&r.priority))
            .collect())
    }

    /// Our routes (protocol [`RTPROT_HAKIT`]) in table `table`, both families.
    pub fn table(&mut self, table: u32) -> io::Result<Vec<HostRoute>> {
        let all = self.nl.dump(RouteNetlinkMessage::GetRoute(RouteMessage::default()))?;
        Ok(all
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => host_route(r),
                _ => None,
            })
            .filter(|r| r.table == table)
            .collect())
    }

    /// Keep neighbour entries resolved without sending traffic: RTM_NEWNEIGH with
    /// NTF_USE for each (ifindex, address), in one datagram. The kernel treats it as
    /// a packet waiting for that neighbour: a missing, FAILED or unresolved entry is
    /// probed at once (ARP or NS) and is REACHABLE when the peer answers, so the first
    /// packet after a switch to that LAN does not wait for it; a STALE one is
    /// re-confirmed (a unicast probe after delay_first_probe_time, 5 s by default);
    /// and every entry counts as just used, so the garbage collector leaves it.
    ///
    /// NTF_USE also strips NUD_PERMANENT from an entry (`ip neigh replace ADDR dev
    /// DEV use` turns a static entry into an unresolved one and ARPs for it), so
    /// static entries (permanent or noarp, read by a dump first) are left alone and
    /// returned. The state sent is NUD_NONE, not iproute2's default NUD_PERMANENT,
    /// which would make an entry the kernel creates here exempt from garbage
    /// collection.
    pub fn touch_neighbours(&mut self, which: &[(u32, IpAddr)]) -> io::Result<Vec<(u32, IpAddr)>> {
        if which.is_empty() {
            return Ok(Vec::new());
        }
        let static_ones = self.static_neighbours()?;
        let (left, touch): (Vec<_>, Vec<_>) = which.iter().partition(|n| static_ones.contains(*n));
        let reqs = touch
            .iter()
            .map(|&&(ifindex, addr)| {
                if ifindex == 0 {
                    return Err(invalid(format!("neighbour {addr} ifindex 0: no such interface")));
                }
                Ok(Request {
                    msg: RouteNetlinkMessage::NewNeighbour(neighbour_use_message(ifindex, addr)),
                    what: format!("neighbour {addr} ifindex {ifindex}"),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        // NLM_F_CREATE for the missing ones; without NLM_F_EXCL an existing one is
        // not refused. As `ip neigh replace ADDR dev DEV use nud none`.
        self.send(reqs, NLM_F_CREATE | NLM_F_REPLACE, |_, _| false)?;
        Ok(left.into_iter().copied().collect())
    }

    /// The (ifindex, address) of every permanent or noarp neighbour entry.
    fn static_neighbours(&mut self) -> io::Result<Vec<(u32, IpAddr)>> {
        let all = self
            .nl
            .dump(RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()))?;
        Ok(all
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .filter(|n| u16::from(n.header.state) & (NUD_PERMANENT | NUD_NOARP) != 0)
            .filter_map(|n| {
                n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        Some((n.header.ifindex, IpAddr::V4(*v4)))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        Some((n.header.ifindex, IpAddr::V6(*v6)))
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// Send `reqs` with `flags`, a window of them per datagram (one datagram for up
    /// to 64), and name every refusal that is not `tolerated(index, errno)`.
    fn send(&mut self, reqs: Vec<Request>, flags: u16, tolerated: impl Fn(usize, i32) -> bool) -> io::Result<()> {
        let mut refused = Vec::new();
        let mut from = 0;
        // The batch stops after a window with a refusal; a tolerated one must not
        // keep the rest from being sent, so go on from where it stopped.
        while from < reqs.len() {
            match self.nl.batch(reqs[from..].iter().map(|r| r.msg.clone()), flags) {
                Ok(_) => break,
                Err(e) => {
                    refused.extend(e.refused.into_iter().map(|(i, err)| (from + i, err)));
                    if let Some(err) = e.error {
                        let unsure: Vec<&str> = reqs[from + e.known..from + e.known + e.unknown]
                            .iter()
                            .map(|r| r.what.as_str())
                            .collect();
                        let before = judge(|i| reqs[i].what.clone(), refused, &tolerated);
                        return Err(lost(err, &unsure, before.err()));
                    }
                    if e.known == 0 {
                        break;
                    }
                    from += e.known;
                }
            }
        }
        judge(|i| reqs[i].what.clone(), refused, &tolerated)
    }
}

/// Ok, or an error naming (by `name(index)`) each refusal that is not tolerated.
fn judge(
    name: impl Fn(usize) -> String,
    refused: Vec<(usize, io::Error)>,
    tolerated: &impl Fn(usize, i32) -> bool,
) -> io::Result<()> {
    let bad: Vec<(String, io::Error)> = refused
        .into_iter()
        .filter(|(i, e)| !e.raw_os_error().is_some_and(|n| tolerated(*i, n)))
        .map(|(i, e)| (name(i), e))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let kind = bad[0].1.kind();
    Err(io::Error::new(kind, Refused(bad)))
}

/// The socket failed or the kernel did not answer: say which requests may or may not
/// have been done, and what was refused before.
fn lost(err: io::Error, unsure: &[&str], refused: Option<io::Error>) -> io::Error {
    let mut m = format!("rtnetlink: {err}");
    if !unsure.is_empty() {
        m.push_str(&format!("; not known whether done: {}", unsure.join(", ")));
    }
    if let Some(r) = refused {
        m.push_str(&format!("; {r}"));
    }
    io::Error::new(err.kind(), m)
}

fn invalid(m: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, m)
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The header's one-byte table field: the table itself up to 255, RT_TABLE_UNSPEC
/// above (the attribute, always sent, then says which), as iproute2 does.
fn table_byte(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC)
}

/// What the kernel would take wrongly or not at all: table 0 (the kernel picks a
/// table itself), a prefix longer than the address, mixed families.
fn check_route(r: &HostRoute) -> io::Result<()> {
    let why = if r.table == 0 {
        "table 0 is no table"
    } else if r.prefix > max_prefix(r.dst) {
        "the prefix is longer than the address"
    } else if family(r.via) != family(r.dst) || r.src.is_some_and(|s| family(s) != family(r.dst)) {
        "the addresses are not of one family"
    } else if r.ifindex == 0 {
        "ifindex 0 is no interface"
    } else {
        return Ok(());
    };
    Err(invalid(format!("route {r}: {why}")))
}

fn check_rule(r: &Rule) -> io::Result<()> {
    let why = if r.table == 0 {
        "table 0 is no table"
    } else if r.dst_len > max_prefix(r.dst) {
        "the prefix is longer than the address"
    } else {
        return Ok(());
    };
    Err(invalid(format!("rule {r}: {why}")))
}

fn route_header(r: &HostRoute) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(r.dst);
    m.header.destination_prefix_length = r.prefix;
    m.header.table = table_byte(r.table);
    m.header.protocol = RouteProtocol::from(RTPROT_HAKIT);
    m.attributes.push(RouteAttribute::Table(r.table));
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(r.dst)));
    m
}

/// RTM_NEWROUTE's body: `ip route replace DST/PREFIX via VIA dev IFINDEX [src SRC]
/// table T proto 104`, scope universe, unicast.
fn route_message(r: &HostRoute) -> RouteMessage {
    let mut m = route_header(r);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Gateway(RouteAddress::from(r.via)));
    m.attributes.push(RouteAttribute::Oif(r.ifindex));
    if let Some(s) = r.src {
        m.attributes.push(RouteAttribute::PrefSource(RouteAddress::from(s)));
    }
    m
}

/// RTM_DELROUTE's body: DST/PREFIX in the table, ours; scope NOWHERE, as `ip route
/// del` sends, is the kernel's "any scope".
fn route_delete_message(r: &HostRoute) -> RouteMessage {
    let mut m = route_header(r);
    m.header.scope = RouteScope::NoWhere;
    m
}

/// RTM_NEWRULE's and RTM_DELRULE's body: `ip rule add priority P to DST/LEN lookup T
/// protocol 104` (FR_ACT_TO_TBL).
fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family(r.dst);
    m.header.dst_len = r.dst_len;
    m.header.table = table_byte(r.table);
    m.header.action = RuleAction::ToTable;
    m.attributes.push(RuleAttribute::Priority(r.priority));
    if r.dst_len > 0 {
        m.attributes.push(RuleAttribute::Destination(r.dst));
    }
    m.attributes.push(RuleAttribute::Table(r.table));
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(RTPROT_HAKIT)));
    m
}

/// RTM_NEWNEIGH's body for NTF_USE: the address on the interface, state NUD_NONE.
fn neighbour_use_message(ifindex: u32, addr: IpAddr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family(addr);
    m.header.ifindex = ifindex;
    m.header.state = NeighbourState::None;
    m.header.flags = NeighbourFlags::Use;
    m.attributes.push(NeighbourAttribute::Destination(match addr {
        IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
        IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
    }));
    m
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// One of our routes as a dump gives it; None for anyone else's, and for what a
/// HostRoute cannot say (no gateway, several next hops).
fn host_route(m: &RouteMessage) -> Option<HostRoute> {
    if u8::from(m.header.protocol) != RTPROT_HAKIT || m.header.kind != RouteType::Unicast {
        return None;
    }
    let unspecified = match m.header.address_family {
        AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let (mut dst, mut via, mut ifindex, mut src) = (unspecified, None, None, None);
    let mut table = u32::from(m.header.table);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = ip_of(d)?,
            RouteAttribute::Gateway(g) => via = ip_of(g),
            RouteAttribute::Oif(i) => ifindex = Some(*i),
            RouteAttribute::PrefSource(s) => src = ip_of(s),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    Some(HostRoute {
        dst,
        prefix: m.header.destination_prefix_length,
        via: via?,
        ifindex: ifindex?,
        src,
        table,
    })
}

/// One of our rules as a dump gives it; None for anyone else's.
fn rule_of(m: &RuleMessage) -> Option<Rule> {
    let ours = m
        .attributes
        .iter()
        .any(|a| matches!(a, RuleAttribute::Protocol(p) if u8::from(*p) == RTPROT_HAKIT));
    if !ours || m.header.action != RuleAction::ToTable {
        return None;
    }
    let mut dst = match m.header.family {
        AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    // The kernel leaves FRA_PRIORITY out for priority 0.
    let (mut priority, mut table) = (0, u32::from(m.header.table));
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Destination(d) => dst = *d,
            RuleAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    Some(Rule {
        priority,
        dst,
        dst_len: m.header.dst_len,
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::neighbour::NeighbourMessageBuffer;
    use netlink_packet_route::route::RouteMessageBuffer;
    use netlink_packet_route::rule::RuleMessageBuffer;
    use netlink_packet_utils::{Emitable, Parseable};

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn bytes(m: &impl Emitable) -> Vec<u8> {
        let mut b = vec![0; m.buffer_len()];
        m.emit(&mut b);
        b
    }

    /// The attributes of a message body after its `header` bytes: (type, payload).
    fn attrs(b: &[u8], header: usize) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = header;
        while at + 4 <= b.len() {
            let len = u16::from_ne_bytes([b[at], b[at + 1]]) as usize;
            let kind = u16::from_ne_bytes([b[at + 2], b[at + 3]]);
            out.push((kind, b[at + 4..at + len].to_vec()));
            at += (len + 3) & !3;
        }
        out
    }

    fn route() -> HostRoute {
        HostRoute {
            dst: v4("10.77.100.2"),
            prefix: 32,
            via: v4("10.77.1.2"),
            ifindex: 3,
            src: Some(v4("10.77.100.1")),
            table: 101,
        }
    }

    #[test]
    fn a_route_is_what_ip_route_replace_sends() {
        let b = bytes(&route_message(&route()));
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        assert_eq!(&b[..12], &[2, 32, 0, 0, 101, RTPROT_HAKIT, 0, 1, 0, 0, 0, 0]);
        let a = attrs(&b, 12);
        let want: Vec<(u16, Vec<u8>)> = vec![
            (15, 101u32.to_ne_bytes().to_vec()), // RTA_TABLE
            (1, vec![10, 77, 100, 2]),           // RTA_DST
            (5, vec![10, 77, 1, 2]),             // RTA_GATEWAY
            (4, 3u32.to_ne_bytes().to_vec()),    // RTA_OIF
            (7, vec![10, 77, 100, 1]),           // RTA_PREFSRC
        ];
        assert_eq!(a, want);
        // A table above 255: the header says RT_TABLE_UNSPEC, the attribute the table.
        let big = HostRoute { table: 1000, ..route() };
        let b = bytes(&route_message(&big));
        assert_eq!(b[4], 0);
        assert_eq!(attrs(&b, 12)[0], (15, 1000u32.to_ne_bytes().to_vec()));
        // Read back as a dump gives it, for both families.
        let six = HostRoute {
            dst: "2001:db8::2".parse().unwrap(),
            prefix: 128,
            via: "fe80::2".parse().unwrap(),
            ifindex: 4,
            src: None,
            table: 70000,
        };
        for r in [route(), big, six] {
            let b = bytes(&route_message(&r));
            let m = RouteMessage::parse(&RouteMessageBuffer::new(&b)).unwrap();
            assert_eq!(host_route(&m), Some(r));
        }
        // Anyone else's route is not ours to report.
        let mut m = route_message(&route());
        m.header.protocol = RouteProtocol::Static;
        assert_eq!(host_route(&m), None);
    }

    #[test]
    fn a_route_delete_names_only_the_destination_in_its_table() {
        let b = bytes(&route_delete_message(&route()));
        assert_eq!(&b[..8], &[2, 32, 0, 0, 101, RTPROT_HAKIT, 255, 0]);
        let kinds: Vec<u16> = attrs(&b, 12).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [15, 1]);
    }

    #[test]
    fn a_rule_is_what_ip_rule_add_sends() {
        let r = Rule {
            priority: 900,
            dst: v4("10.77.100.0"),
            dst_len: 24,
            table: 102,
        };
        let b = bytes(&rule_message(&r));
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
        assert_eq!(&b[..12], &[2, 24, 0, 0, 102, 0, 0, 1, 0, 0, 0, 0]);
        let want: Vec<(u16, Vec<u8>)> = vec![
            (6, 900u32.to_ne_bytes().to_vec()),  // FRA_PRIORITY
            (1, vec![10, 77, 100, 0]),           // FRA_DST
            (15, 102u32.to_ne_bytes().to_vec()), // FRA_TABLE
            (21, vec![RTPROT_HAKIT]),            // FRA_PROTOCOL
        ];
        assert_eq!(attrs(&b, 12), want);
        let big = Rule {
            table: 1000,
            ..r.clone()
        };
        assert_eq!(bytes(&rule_message(&big))[4], 0);
        let six = Rule {
            priority: 0,
            dst: "2001:db8:100::".parse().unwrap(),
            dst_len: 64,
            table: 256,
        };
        let all = Rule {
            priority: 5,
            dst: v4("0.0.0.0"),
            dst_len: 0,
            table: 7,
        };
        // "to all": no FRA_DST at all.
        assert!(attrs(&bytes(&rule_message(&all)), 12).iter().all(|(k, _)| *k != 1));
        for r in [r, big, six, all] {
            let b = bytes(&rule_message(&r));
            let mut m = RuleMessage::parse(&RuleMessageBuffer::new(&b)).unwrap();
            if r.priority == 0 {
                // As the kernel dumps it.
                m.attributes.retain(|a| !matches!(a, RuleAttribute::Priority(_)));
            }
            assert_eq!(rule_of(&m), Some(r));
        }
        // Another protocol's rule, or one without any, is not ours.
        let mut m = rule_message(&Rule {
            priority: 1,
            dst: v4("10.0.0.0"),
            dst_len: 8,
            table: 9,
        });
        m.attributes.retain(|a| !matches!(a, RuleAttribute::Protocol(_)));
        assert_eq!(rule_of(&m), None);
    }

    #[test]
    fn a_neighbour_touch_is_ntf_use_with_no_state() {
        let b = bytes(&neighbour_use_message(7, v4("10.77.2.2")));
        // struct ndmsg: family, pad, pad, pad, ifindex, state (u16), flags, type.
        assert_eq!(b[0], 2);
        assert_eq!(&b[4..8], &7u32.to_ne_bytes());
        assert_eq!(&b[8..10], &0u16.to_ne_bytes(), "NUD_NONE, not NUD_PERMANENT");
        assert_eq!(b[10], 1, "NTF_USE");
        assert_eq!(attrs(&b, 12), vec![(1, vec![10, 77, 2, 2])]); // NDA_DST
        let six = bytes(&neighbour_use_message(7, "fe80::2".parse().unwrap()));
        let m = NeighbourMessage::parse(&NeighbourMessageBuffer::new(&six)).unwrap();
        assert_eq!(m.header.family, AddressFamily::Inet6);
    }

    #[test]
    fn what_the_kernel_could_never_take_is_refused_before_sending() {
        let bad = [
            (HostRoute { table: 0, ..route() }, "table 0"),
            (HostRoute { prefix: 33, ..route() }, "prefix is longer"),
            (
                HostRoute {
                    via: "fe80::1".parse().unwrap(),
                    ..route()
                },
                "one family",
            ),
            (
                HostRoute {
                    src: Some("::1".parse().unwrap()),
                    ..route()
                },
                "one family",
            ),
            (HostRoute { ifindex: 0, ..route() }, "ifindex 0"),
        ];
        for (r, why) in bad {
            let e = check_route(&r).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains(why) && e.to_string().contains(&r.to_string()),
                "{e}"
            );
        }
        assert!(check_route(&route()).is_ok());
        let r = Rule {
            priority: 1,
            dst: "2001:db8::".parse().unwrap(),
            dst_len: 129,
            table: 5,
        };
        assert!(check_rule(&r).unwrap_err().to_string().contains("2001:db8::/129"));
        assert!(check_rule(&Rule {
            dst_len: 0,
            table: 0,
            ..r
        })
        .is_err());
    }

    #[test]
    fn refusals_are_named_and_tolerated_ones_dropped() {
        let names = ["deleting rule a", "adding rule b", "adding rule c"];
        let name = |i: usize| names[i].to_string();
        let tolerated = |i: usize, e: i32| (i == 0 && e == libc::ENOENT) || (i > 0 && e == libc::EEXIST);
        let errno = io::Error::from_raw_os_error;
        // ENOENT on the delete, EEXIST on an add: done.
        assert!(judge(
            name,
            vec![(0, errno(libc::ENOENT)), (2, errno(libc::EEXIST))],
            &tolerated
        )
        .is_ok());
        // EEXIST on the delete is not tolerated; EPERM never is.
        let e = judge(
            name,
            vec![
                (0, errno(libc::EEXIST)),
                (1, errno(libc::EEXIST)),
                (2, errno(libc::EPERM)),
            ],
            &tolerated,
        )
        .unwrap_err();
        let r = Refused::of(&e).unwrap();
        assert_eq!(r.0.len(), 2);
        assert_eq!(r.errno(), Some(libc::EEXIST));
        let text = e.to_string();
        assert!(text.contains("deleting rule a: File exists"), "{text}");
        assert!(text.contains("adding rule c: Operation not permitted"), "{text}");
        assert!(!text.contains("rule b"), "{text}");
        assert_eq!(e.kind(), errno(libc::EEXIST).kind());
        // A lost answer says what may or may not have been done.
        let e = lost(errno(libc::ENOBUFS), &["adding rule b"], None);
        assert!(e.to_string().contains("not known whether done: adding rule b"), "{e}");
    }
}
