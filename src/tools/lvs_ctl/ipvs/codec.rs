//! IPVS's generic netlink messages (family `IPVS`, version 1): requests built from the
//! model, answers read back into it through small views that check every length.
//!
//! Everything that comes from the kernel (or a fuzzer) goes through [`Attrs`], which
//! refuses an attribute whose length runs past its buffer or is shorter than its header,
//! and through typed getters that refuse a payload of the wrong size: a bad answer is an
//! error, never a panic or a read out of bounds.
//!
//! Byte order, as the kernel and libipvs have it: ports are network order; addresses are
//! the kernel's 16-byte `nf_inet_addr` union for both families (IPv4 in the first four
//! bytes); the IPv4 persistence netmask is the `s_addr` of the mask read as a native u32
//! (what the model keeps); flags are `{u32 flags; u32 mask}` in host order; everything
//! else is host order.

use crate::tools::lvs_ctl::backend::{Error, Result};
use crate::tools::lvs_ctl::model::{
    Change, Daemon, Dest, Fwd, Info, Proto, Service, ServiceKey, Stats, Timeouts, F_USER,
};
use netlink_packet_generic::constants::{CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY, GENL_ID_CTRL};
use netlink_packet_generic::{GenlFamily, GenlHeader};
use netlink_packet_utils::{DecodeError, Emitable, ParseableParametrized};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const FAMILY_NAME: &str = "IPVS";
pub const VERSION: u8 = 1;
/// The controller's version libnl speaks.
const CTRL_VERSION: u8 = 1;

/// IPVS's commands.
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const SET_INFO: u8 = 14;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;
}

/// Top-level attributes.
mod top {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
}

mod svc {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

mod dst {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
}

mod dmn {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

mod info {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

pub const AF_INET: u16 = libc::AF_INET as u16;
pub const AF_INET6: u16 = libc::AF_INET6 as u16;
const NLA_HDRLEN: usize = 4;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
/// Names IPVS takes (scheduler, persistence engine, interface) hold at most 15 bytes.
pub const NAME_MAX: usize = 15;

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::Kernel(format!("malformed IPVS answer: {what}"))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

// ---------------------------------------------------------------------------------
// The message type the house socket carries.

/// One generic netlink message of family IPVS (or, for the one lookup at start, of
/// the controller): its command and its top-level attributes, already laid out.
/// Sent as `GenlMessage<Message>` on `net::netlink::Netlink`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The netlink message type to send with (the family's resolved id); 0 in an answer
    /// (`GenlMessage::resolved_family_id` holds it there).
    family: u16,
    pub cmd: u8,
    version: u8,
    pub attrs: Vec<u8>,
}

impl Message {
    fn new(family: u16, cmd: u8) -> Message {
        Message {
            family,
            cmd,
            version: VERSION,
            attrs: Vec::new(),
        }
    }

    fn with(family: u16, cmd: u8, f: impl FnOnce(&mut Writer)) -> Message {
        let mut m = Message::new(family, cmd);
        let mut w = Writer(std::mem::take(&mut m.attrs));
        f(&mut w);
        m.attrs = w.0;
        m
    }

    /// The controller's CTRL_CMD_GETFAMILY for `name`.
    pub fn get_family(name: &str) -> Message {
        let mut m = Message::with(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, |w| {
            w.string(CTRL_ATTR_FAMILY_NAME, name)
        });
        m.version = CTRL_VERSION;
        m
    }

    /// A command that carries no attributes (GET_INFO, GET_SERVICE dump, FLUSH, ...).
    pub fn bare(family: u16, cmd: u8) -> Message {
        Message::new(family, cmd)
    }

    /// GET_SERVICE of one service.
    pub fn get_service(family: u16, key: &ServiceKey) -> Message {
        Message::with(family, cmd::GET_SERVICE, |w| {
            w.nest(top::SERVICE, |w| service_key(w, key))
        })
    }

    /// The GET_DEST dump of one service.
    pub fn get_dests(family: u16, key: &ServiceKey) -> Message {
        Message::with(family, cmd::GET_DEST, |w| w.nest(top::SERVICE, |w| service_key(w, key)))
    }

    /// The one request that makes `c`.
    pub fn change(family: u16, c: &Change) -> Message {
        match c {
            Change::AddService(s) => Message::with(family, cmd::NEW_SERVICE, |w| {
                w.nest(top::SERVICE, |w| service_full(w, s))
            }),
            Change::EditService(s) => Message::with(family, cmd::SET_SERVICE, |w| {
                w.nest(top::SERVICE, |w| service_full(w, s))
            }),
            Change::DelService(k) => Message::with(family, cmd::DEL_SERVICE, |w| {
                w.nest(top::SERVICE, |w| service_key(w, k))
            }),
            Change::AddDest(k, d) => Message::with(family, cmd::NEW_DEST, |w| service_and_dest(w, k, d, true)),
            Change::EditDest(k, d) => Message::with(family, cmd::SET_DEST, |w| service_and_dest(w, k, d, true)),
            Change::DelDest(k, a, p) => {
                let d = Dest::new(*a, *p);
                Message::with(family, cmd::DEL_DEST, |w| service_and_dest(w, k, &d, false))
            }
            Change::Flush => Message::new(family, cmd::FLUSH),
            Change::Zero(None) => Message::new(family, cmd::ZERO),
            Change::Zero(Some(k)) => Message::with(family, cmd::ZERO, |w| w.nest(top::SERVICE, |w| service_key(w, k))),
        }
    }

    /// SET_CONFIG: the connection timeouts (0 leaves one as it is).
    pub fn set_timeouts(family: u16, t: &Timeouts) -> Message {
        Message::with(family, cmd::SET_CONFIG, |w| {
            w.u32(top::TIMEOUT_TCP, t.tcp);
            w.u32(top::TIMEOUT_TCP_FIN, t.tcp_fin);
            w.u32(top::TIMEOUT_UDP, t.udp);
        })
    }

    /// NEW_DAEMON: start a sync daemon.
    pub fn new_daemon(family: u16, d: &Daemon) -> Message {
        Message::with(family, cmd::NEW_DAEMON, |w| {
            w.nest(top::DAEMON, |w| {
                w.u32(dmn::STATE, d.state);
                w.string(dmn::MCAST_IFN, &d.ifname);
                w.u32(dmn::SYNC_ID, d.syncid);
                // As ipvsadm: what is unset is left to the kernel's defaults.
                if d.sync_maxlen != 0 {
                    w.u16(dmn::SYNC_MAXLEN, d.sync_maxlen);
                }
                if d.mcast_port != 0 {
                    w.u16(dmn::MCAST_PORT, d.mcast_port);
                }
                if d.mcast_ttl != 0 {
                    w.attr(dmn::MCAST_TTL, &[d.mcast_ttl]);
                }
                match d.mcast_group {
                    Some(IpAddr::V4(a)) => w.attr(dmn::MCAST_GROUP, &a.octets()),
                    Some(IpAddr::V6(a)) => w.attr(dmn::MCAST_GROUP6, &a.octets()),
                    None => {}
                }
            })
        })
    }

    /// DEL_DAEMON: stop the daemon of `state` (master or backup).
    pub fn del_daemon(family: u16, state: u32) -> Message {
        Message::with(family, cmd::DEL_DAEMON, |w| {
            w.nest(top::DAEMON, |w| {
                w.u32(dmn::STATE, state);
                w.string(dmn::MCAST_IFN, "");
                w.u32(dmn::SYNC_ID, 0);
            })
        })
    }
}

impl GenlFamily for Message {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn family_id(&self) -> u16 {
        self.family
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        self.version
    }
}

impl Emitable for Message {
    fn buffer_len(&self) -> usize {
        self.attrs.len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        buffer[..self.attrs.len()].copy_from_slice(&self.attrs);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for Message {
    /// Never fails: the attributes are kept as bytes and checked when they are read.
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> std::result::Result<Self, DecodeError> {
        Ok(Message {
            family: 0,
            cmd: header.cmd,
            version: header.version,
            attrs: buf.to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------------
// Writing attributes.

/// Attributes appended to a buffer, each padded to 4 bytes.
struct Writer(Vec<u8>);

impl Writer {
    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = NLA_HDRLEN + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(align4(self.0.len()), 0);
    }

    fn u16(&mut self, kind: u16, v: u16) {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn be16(&mut self, kind: u16, v: u16) {
        self.attr(kind, &v.to_be_bytes())
    }

    fn u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes())
    }

    /// A NUL-terminated string (NLA_STRING).
    fn string(&mut self, kind: u16, s: &str) {
        let len = NLA_HDRLEN + s.len() + 1;
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self.0.resize(align4(self.0.len()), 0);
    }

    fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Writer)) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0; NLA_HDRLEN]);
        f(self);
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.0[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }
}

/// The kernel's `nf_inet_addr`: 16 bytes whichever the family.
fn inet_addr(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => {
            let mut b = [0; 16];
            b[..4].copy_from_slice(&v.octets());
            b
        }
        IpAddr::V6(v) => v.octets(),
    }
}

fn af(v6: bool) -> u16 {
    if v6 {
        AF_INET6
    } else {
        AF_INET
    }
}

/// What names a service: its family, then a mark or protocol, address and port.
fn service_key(w: &mut Writer, k: &ServiceKey) {
    w.u16(svc::AF, af(k.is_v6()));
    match *k {
        ServiceKey::Fwmark { mark, .. } => w.u32(svc::FWMARK, mark),
        ServiceKey::Addr { proto, addr, port } => {
            w.u16(svc::PROTOCOL, proto.number());
            w.attr(svc::ADDR, &inet_addr(addr));
            w.be16(svc::PORT, port);
        }
    }
}

/// A whole service, as NEW_SERVICE and SET_SERVICE want it.
fn service_full(w: &mut Writer, s: &Service) {
    service_key(w, &s.key);
    w.string(svc::SCHED_NAME, &s.scheduler);
    if !s.pe_name.is_empty() {
        w.string(svc::PE_NAME, &s.pe_name);
    }
    let mut flags = [0; 8];
    flags[..4].copy_from_slice(&(s.flags & F_USER).to_ne_bytes());
    flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    w.attr(svc::FLAGS, &flags);
    w.u32(svc::TIMEOUT, s.timeout);
    w.u32(svc::NETMASK, s.netmask);
}

/// A real server under its service; `full` for NEW_DEST and SET_DEST (DEL_DEST needs the
/// address and port only).
fn service_and_dest(w: &mut Writer, k: &ServiceKey, d: &Dest, full: bool) {
    w.nest(top::SERVICE, |w| service_key(w, k));
    w.nest(top::DEST, |w| {
        w.u16(dst::ADDR_FAMILY, af(d.addr.is_ipv6()));
        w.attr(dst::ADDR, &inet_addr(d.addr));
        w.be16(dst::PORT, d.port);
        if full {
            w.u32(dst::FWD_METHOD, d.fwd.number());
            w.u32(dst::WEIGHT, d.weight);
            w.u32(dst::U_THRESH, d.u_thresh);
            w.u32(dst::L_THRESH, d.l_thresh);
        }
    });
}

// ---------------------------------------------------------------------------------
// Reading attributes.

/// One attribute: its type (flag bits off) and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    kind: u16,
    data: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn kind(&self) -> u16 {
        self.kind
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    fn exact<const N: usize>(&self) -> Result<[u8; N]> {
        self.data.try_into().map_err(|_| {
            malformed(format_args!(
                "attribute {} has {} bytes, not {N}",
                self.kind,
                self.data.len()
            ))
        })
    }

    pub fn u8(&self) -> Result<u8> {
        Ok(self.exact::<1>()?[0])
    }

    pub fn u16(&self) -> Result<u16> {
        Ok(u16::from_ne_bytes(self.exact()?))
    }

    pub fn be16(&self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.exact()?))
    }

    pub fn u32(&self) -> Result<u32> {
        Ok(u32::from_ne_bytes(self.exact()?))
    }

    pub fn u64(&self) -> Result<u64> {
        Ok(u64::from_ne_bytes(self.exact()?))
    }

    /// A counter: STATS carries most as u32, STATS64 as u64.
    pub fn counter(&self) -> Result<u64> {
        match self.data.len() {
            4 => self.u32().map(u64::from),
            _ => self.u64(),
        }
    }

    /// A string up to its first NUL (or its end); UTF-8, at most `max` bytes.
    pub fn string(&self, max: usize) -> Result<String> {
        let s = self.data.split(|&b| b == 0).next().unwrap_or_default();
        if s.len() > max {
            return Err(malformed(format_args!(
                "attribute {}: a name of {} bytes",
                self.kind,
                s.len()
            )));
        }
        String::from_utf8(s.to_vec()).map_err(|_| malformed(format_args!("attribute {}: a name not UTF-8", self.kind)))
    }

    /// The attributes nested in this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.data)
    }
}

/// The attributes of a buffer, in order. A length shorter than a header or past the end
/// of the buffer is an error, after which the iterator ends.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Attrs<'a> {
        Attrs { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        if r.len() < NLA_HDRLEN {
            self.rest = &[];
            return Some(Err(malformed(format_args!(
                "{} stray bytes after the attributes",
                r.len()
            ))));
        }
        let len = u16::from_ne_bytes([r[0], r[1]]) as usize;
        let kind = u16::from_ne_bytes([r[2], r[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > r.len() {
            self.rest = &[];
            return Some(Err(malformed(format_args!(
                "attribute {kind} of length {len} in {} bytes",
                r.len()
            ))));
        }
        self.rest = &r[align4(len).min(r.len())..];
        Some(Ok(Attr {
            kind,
            data: &r[NLA_HDRLEN..len],
        }))
    }
}

/// The last attribute of `kind` in `buf` (as the kernel's nla_parse keeps the last).
fn find<'a>(buf: &'a [u8], kind: u16) -> Result<Option<Attr<'a>>> {
    let mut found = None;
    for a in Attrs::new(buf) {
        let a = a?;
        if a.kind == kind {
            found = Some(a);
        }
    }
    Ok(found)
}

fn need<T>(v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| malformed(format_args!("no {what}")))
}

fn address(a: Attr<'_>, v6: bool) -> Result<IpAddr> {
    let d = a.data();
    if v6 {
        let b: [u8; 16] = d
            .try_into()
            .map_err(|_| malformed(format_args!("an IPv6 address of {} bytes", d.len())))?;
        Ok(IpAddr::V6(Ipv6Addr::from(b)))
    } else if (4..=16).contains(&d.len()) {
        Ok(IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])))
    } else {
        Err(malformed(format_args!("an IPv4 address of {} bytes", d.len())))
    }
}

fn family_v6(f: u16) -> Result<bool> {
    match f {
        AF_INET => Ok(false),
        AF_INET6 => Ok(true),
        f => Err(malformed(format_args!("address family {f}"))),
    }
}

/// The family id in the controller's answer.
pub fn family_id(attrs: &[u8]) -> Result<u16> {
    need(find(attrs, CTRL_ATTR_FAMILY_ID)?, "family id")?.u16()
}

/// GET_INFO's answer.
pub fn info(attrs: &[u8]) -> Result<Info> {
    let (mut version, mut size) = (None, None);
    for a in Attrs::new(attrs) {
        let a = a?;
        match a.kind {
            info::VERSION => version = Some(a.u32()?),
            info::CONN_TAB_SIZE => size = Some(a.u32()?),
            _ => {}
        }
    }
    Ok(Info {
        version: need(version, "version")?,
        size: need(size, "connection table size")?,
    })
}

/// GET_CONFIG's answer (what is missing is 0, as ipvsadm takes it).
pub fn timeouts(attrs: &[u8]) -> Result<Timeouts> {
    let mut t = Timeouts::default();
    for a in Attrs::new(attrs) {
        let a = a?;
        match a.kind {
            top::TIMEOUT_TCP => t.tcp = a.u32()?,
            top::TIMEOUT_TCP_FIN => t.tcp_fin = a.u32()?,
            top::TIMEOUT_UDP => t.udp = a.u32()?,
            _ => {}
        }
    }
    Ok(t)
}

/// A STATS or STATS64 nest; all ten counters, as libipvs wants them.
pub fn stats(nest: Attrs<'_>) -> Result<Stats> {
    let mut v = [None; 10];
    for a in nest {
        let a = a?;
        if let Some(slot) = (a.kind as usize).checked_sub(1).and_then(|i| v.get_mut(i)) {
            *slot = Some(a.counter()?);
        }
    }
    let mut it = v.into_iter();
    let mut next = || {
        it.next()
            .flatten()
            .ok_or_else(|| malformed("statistics without all ten counters"))
    };
    Ok(Stats {
        conns: next()?,
        inpkts: next()?,
        outpkts: next()?,
        inbytes: next()?,
        outbytes: next()?,
        cps: next()?,
        inpps: next()?,
        outpps: next()?,
        inbps: next()?,
        outbps: next()?,
    })
}

/// One answer of the GET_SERVICE dump (or a GET_SERVICE of one).
pub fn service(attrs: &[u8]) -> Result<Service> {
    let nest = need(find(attrs, top::SERVICE)?, "service")?;
    service_nest(nest.nested())
}

fn service_nest(nest: Attrs<'_>) -> Result<Service> {
    let (mut family, mut proto, mut addr, mut port, mut mark) = (None, None, None, None, None);
    let (mut sched, mut flags, mut timeout, mut netmask) = (None, None, None, None);
    let (mut pe, mut st, mut st64) = (String::new(), None, None);
    for a in nest {
        let a = a?;
        match a.kind {
            svc::AF => family = Some(a.u16()?),
            svc::PROTOCOL => proto = Some(a.u16()?),
            svc::ADDR => addr = Some(a),
            svc::PORT => port = Some(a.be16()?),
            svc::FWMARK => mark = Some(a.u32()?),
            svc::SCHED_NAME => sched = Some(a.string(NAME_MAX)?),
            svc::FLAGS => {
                let b: [u8; 8] = a.exact()?;
                let f = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                let m = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
                flags = Some(f & m);
            }
            svc::TIMEOUT => timeout = Some(a.u32()?),
            svc::NETMASK => netmask = Some(a.u32()?),
            svc::PE_NAME => pe = a.string(NAME_MAX)?,
            svc::STATS => st = Some(a),
            svc::STATS64 => st64 = Some(a),
            _ => {}
        }
    }
    let v6 = family_v6(need(family, "service family")?)?;
    let key = match mark {
        Some(mark) if mark != 0 => ServiceKey::Fwmark { mark, v6 },
        _ => {
            let n = need(proto, "service protocol")?;
            ServiceKey::Addr {
                proto: Proto::from_number(n).ok_or_else(|| malformed(format_args!("protocol {n}")))?,
                addr: address(need(addr, "service address")?, v6)?,
                port: need(port, "service port")?,
            }
        }
    };
    let stats = match st64.or(st) {
        Some(a) => stats(a.nested())?,
        None => Stats::default(),
    };
    Ok(Service {
        key,
        scheduler: need(sched, "scheduler")?,
        flags: need(flags, "service flags")?,
        timeout: need(timeout, "persistence timeout")?,
        netmask: need(netmask, "netmask")?,
        pe_name: pe,
        dests: Vec::new(),
        stats,
    })
}

/// One answer of a GET_DEST dump; `service_v6` is the family of its service (an older
/// kernel does not say the real server's own).
pub fn dest(attrs: &[u8], service_v6: bool) -> Result<Dest> {
    let nest = need(find(attrs, top::DEST)?, "real server")?;
    let (mut addr, mut port, mut fwd, mut weight, mut uth, mut lth) = (None, None, None, None, None, None);
    let (mut active, mut inact, mut persist, mut family, mut st, mut st64) = (None, None, None, None, None, None);
    for a in nest.nested() {
        let a = a?;
        match a.kind {
            dst::ADDR => addr = Some(a),
            dst::PORT => port = Some(a.be16()?),
            dst::FWD_METHOD => fwd = Some(a.u32()?),
            dst::WEIGHT => weight = Some(a.u32()?),
            dst::U_THRESH => uth = Some(a.u32()?),
            dst::L_THRESH => lth = Some(a.u32()?),
            dst::ACTIVE_CONNS => active = Some(a.u32()?),
            dst::INACT_CONNS => inact = Some(a.u32()?),
            dst::PERSIST_CONNS => persist = Some(a.u32()?),
            dst::ADDR_FAMILY => family = Some(a.u16()?),
            dst::STATS => st = Some(a),
            dst::STATS64 => st64 = Some(a),
            _ => {}
        }
    }
    let v6 = match family {
        Some(f) => family_v6(f)?,
        None => service_v6,
    };
    let f = need(fwd, "forwarding method")?;
    Ok(Dest {
        addr: address(need(addr, "real server address")?, v6)?,
        port: need(port, "real server port")?,
        fwd: Fwd::from_number(f).ok_or_else(|| malformed(format_args!("forwarding method {f}")))?,
        weight: need(weight, "weight")?,
        u_thresh: need(uth, "upper threshold")?,
        l_thresh: need(lth, "lower threshold")?,
        active: need(active, "active connections")?,
        inactive: need(inact, "inactive connections")?,
        persist: need(persist, "persistent connections")?,
        stats: match st64.or(st) {
            Some(a) => stats(a.nested())?,
            None => Stats::default(),
        },
    })
}

/// One answer of the GET_DAEMON dump.
pub fn daemon(attrs: &[u8]) -> Result<Daemon> {
    let nest = need(find(attrs, top::DAEMON)?, "daemon")?;
    let (mut state, mut ifname, mut syncid) = (None, None, None);
    let mut d = Daemon {
        state: 0,
        ifname: String::new(),
        syncid: 0,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    };
    let mut group6 = None;
    for a in nest.nested() {
        let a = a?;
        match a.kind {
            dmn::STATE => state = Some(a.u32()?),
            dmn::MCAST_IFN => ifname = Some(a.string(NAME_MAX)?),
            dmn::SYNC_ID => syncid = Some(a.u32()?),
            dmn::SYNC_MAXLEN => d.sync_maxlen = a.u16()?,
            dmn::MCAST_PORT => d.mcast_port = a.u16()?,
            dmn::MCAST_TTL => d.mcast_ttl = a.u8()?,
            dmn::MCAST_GROUP => d.mcast_group = Some(IpAddr::V4(Ipv4Addr::from(a.exact::<4>()?))),
            dmn::MCAST_GROUP6 => group6 = Some(IpAddr::V6(Ipv6Addr::from(a.exact::<16>()?))),
            _ => {}
        }
    }
    // As libipvs: the IPv4 group wins when both are there.
    d.mcast_group = d.mcast_group.or(group6);
    d.state = need(state, "daemon state")?;
    d.ifname = need(ifname, "daemon interface")?;
    d.syncid = need(syncid, "sync id")?;
    Ok(d)
}

/// Every answer parser over the same bytes, for the fuzzer: errors, never panics.
pub fn parse_all(attrs: &[u8]) {
    let _ = family_id(attrs);
    let _ = info(attrs);
    let _ = timeouts(attrs);
    let _ = service(attrs);
    let _ = dest(attrs, false);
    let _ = dest(attrs, true);
    let _ = daemon(attrs);
    let _ = stats(Attrs::new(attrs));
    for a in Attrs::new(attrs).flatten() {
        let _ = service_nest(a.nested());
        let _ = stats(a.nested());
        let _ = a.string(NAME_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::model::{F_PERSISTENT, F_SCHED1, F_SCHED2};

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A service as the kernel answers a dump: the request's nest plus stats.
    fn answer_of(s: &Service, extra: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.nest(top::SERVICE, |w| {
            service_full(w, s);
            extra(w);
        });
        w.0
    }

    fn stats_nest(w: &mut Writer, kind: u16, wide: bool, base: u64) {
        w.nest(kind, |w| {
            for i in 1..=10u16 {
                let v = base + i as u64;
                if wide || i == 4 || i == 5 {
                    w.attr(i, &v.to_ne_bytes());
                } else {
                    w.u32(i, v as u32);
                }
            }
        });
    }

    #[test]
    fn a_service_round_trips_through_its_attributes() {
        let keys = [
            ServiceKey::Addr {
                proto: Proto::Tcp,
                addr: v4("10.1.2.3"),
                port: 8080,
            },
            ServiceKey::Addr {
                proto: Proto::Sctp,
                addr: v4("2001:db8::1"),
                port: 443,
            },
            ServiceKey::Fwmark { mark: 7, v6: false },
            ServiceKey::Fwmark {
                mark: 0xffff_ffff,
                v6: true,
            },
        ];
        for key in keys {
            let mut s = Service::new(key);
            s.scheduler = "sh".into();
            s.flags = F_PERSISTENT | F_SCHED1 | F_SCHED2;
            s.timeout = 600;
            s.netmask = if key.is_v6() {
                64
            } else {
                u32::from_ne_bytes([255, 255, 255, 0])
            };
            s.pe_name = "sip".into();
            let bytes = answer_of(&s, |w| stats_nest(w, svc::STATS64, true, 100));
            let mut want = s.clone();
            want.stats = Stats {
                conns: 101,
                inpkts: 102,
                outpkts: 103,
                inbytes: 104,
                outbytes: 105,
                cps: 106,
                inpps: 107,
                outpps: 108,
                inbps: 109,
                outbps: 110,
            };
            assert_eq!(service(&bytes).unwrap(), want, "{key:?}");
        }
    }

    #[test]
    fn the_wire_bytes_are_the_kernels() {
        let key = ServiceKey::Addr {
            proto: Proto::Udp,
            addr: v4("192.0.2.1"),
            port: 53,
        };
        let m = Message::change(42, &Change::DelService(key));
        assert_eq!(m.cmd, cmd::DEL_SERVICE);
        let nest = find(&m.attrs, top::SERVICE).unwrap().unwrap();
        // The nest is flagged NLA_F_NESTED.
        assert_eq!(
            u16::from_ne_bytes([m.attrs[2], m.attrs[3]]),
            top::SERVICE | NLA_F_NESTED
        );
        let a: Vec<_> = nest.nested().map(|a| a.unwrap()).collect();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].u16().unwrap(), AF_INET);
        assert_eq!(a[1].u16().unwrap(), 17);
        // The 16-byte union, IPv4 first.
        assert_eq!(a[2].data(), &[192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // The port in network order.
        assert_eq!(a[3].data(), &[0, 53]);
        let s = Service::new(key);
        let m = Message::change(42, &Change::AddService(s));
        let nest = find(&m.attrs, top::SERVICE).unwrap().unwrap();
        let sched = find(nest.data(), svc::SCHED_NAME).unwrap().unwrap();
        assert_eq!(sched.data(), b"wlc\0");
        let flags = find(nest.data(), svc::FLAGS).unwrap().unwrap();
        assert_eq!(flags.data()[4..], [0xff; 4]);
        let mask = find(nest.data(), svc::NETMASK).unwrap().unwrap();
        assert_eq!(mask.data(), &[0xff; 4]);
    }

    #[test]
    fn a_dest_round_trips_and_stats_fall_back_to_the_32_bit_nest() {
        let key = ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: v4("10.0.0.1"),
            port: 80,
        };
        let mut d = Dest::new(v4("10.0.0.2"), 8080);
        d.fwd = Fwd::Masq;
        d.weight = 65535;
        d.u_thresh = 100;
        d.l_thresh = 10;
        let m = Message::change(3, &Change::AddDest(key, d.clone()));
        assert_eq!(m.cmd, cmd::NEW_DEST);
        // The kernel's answer: the request's DEST nest plus counters and stats.
        let req = find(&m.attrs, top::DEST).unwrap().unwrap();
        let mut w = Writer(Vec::new());
        w.nest(top::DEST, |w| {
            w.0.extend_from_slice(req.data());
            w.u32(dst::ACTIVE_CONNS, 3);
            w.u32(dst::INACT_CONNS, 12);
            w.u32(dst::PERSIST_CONNS, 0);
            stats_nest(w, dst::STATS, false, 0);
        });
        let got = dest(&w.0, false).unwrap();
        let mut want = d;
        want.active = 3;
        want.inactive = 12;
        assert_eq!(got.stats.conns, 1);
        assert_eq!(got.stats.outbps, 10);
        want.stats = got.stats;
        assert_eq!(got, want);
    }

    #[test]
    fn a_tunnel_to_another_family_reads_with_its_own_family() {
        let key = ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: v4("10.0.0.1"),
            port: 80,
        };
        let mut d = Dest::new(v4("2001:db8::9"), 80);
        d.fwd = Fwd::Tunnel;
        let m = Message::change(3, &Change::AddDest(key, d));
        let req = find(&m.attrs, top::DEST).unwrap().unwrap();
        let mut w = Writer(Vec::new());
        w.nest(top::DEST, |w| {
            w.0.extend_from_slice(req.data());
            for k in [dst::ACTIVE_CONNS, dst::INACT_CONNS, dst::PERSIST_CONNS] {
                w.u32(k, 0);
            }
        });
        assert_eq!(dest(&w.0, false).unwrap().addr, v4("2001:db8::9"));
    }

    #[test]
    fn truncated_and_overlong_attributes_are_errors() {
        let s = Service::new(ServiceKey::Fwmark { mark: 1, v6: false });
        let good = answer_of(&s, |_| {});
        assert!(service(&good).is_ok());
        // Every cut short of the whole is refused or reads what is whole, never panics.
        for n in 0..good.len() {
            let _ = service(&good[..n]);
        }
        assert!(service(&good[..good.len() - 4]).is_err());
        // A length past the end.
        let mut bad = good.clone();
        bad[0] = 0xff;
        assert!(service(&bad).is_err());
        // A length shorter than the header.
        let mut bad = good.clone();
        bad[0..2].copy_from_slice(&2u16.to_ne_bytes());
        assert!(service(&bad).is_err());
        // Three stray bytes.
        assert!(Attrs::new(&[1, 2, 3]).next().unwrap().is_err());
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut w = Writer(Vec::new());
        w.nest(top::SERVICE, |w| {
            w.u16(svc::AF, AF_INET);
            w.u32(svc::PROTOCOL, 6); // a u32 where a u16 belongs
        });
        assert!(service(&w.0).is_err());
        // An IPv6 address of four bytes.
        let mut w = Writer(Vec::new());
        w.nest(top::SERVICE, |w| {
            w.u16(svc::AF, AF_INET6);
            w.u16(svc::PROTOCOL, 6);
            w.attr(svc::ADDR, &[1, 2, 3, 4]);
            w.be16(svc::PORT, 80);
        });
        assert!(service(&w.0).is_err());
        // A missing scheduler, an unknown family.
        let mut w = Writer(Vec::new());
        w.nest(top::SERVICE, |w| {
            service_key(w, &ServiceKey::Fwmark { mark: 1, v6: false })
        });
        assert!(service(&w.0).unwrap_err().to_string().contains("scheduler"));
        let mut w = Writer(Vec::new());
        w.nest(top::SERVICE, |w| w.u16(svc::AF, 99));
        assert!(service(&w.0).is_err());
        // Stats without every counter.
        let mut w = Writer(Vec::new());
        w.u32(1, 5);
        assert!(stats(Attrs::new(&w.0)).is_err());
    }

    #[test]
    fn nested_garbage_is_an_error() {
        let mut w = Writer(Vec::new());
        w.nest(top::SERVICE, |w| {
            w.0.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4])
        });
        assert!(service(&w.0).is_err());
        // A daemon nest holding a name that is not UTF-8.
        let mut w = Writer(Vec::new());
        w.nest(top::DAEMON, |w| {
            w.u32(dmn::STATE, 1);
            w.attr(dmn::MCAST_IFN, &[0xc3, 0x28, 0]);
            w.u32(dmn::SYNC_ID, 0);
        });
        assert!(daemon(&w.0).is_err());
        // Every byte pattern of a short buffer: no panic.
        for a in 0..=255u8 {
            for len in 0..12 {
                let mut b = vec![a; len];
                if len >= 2 {
                    b[0..2].copy_from_slice(&(len as u16).to_ne_bytes());
                }
                parse_all(&b);
            }
        }
    }

    #[test]
    fn daemon_timeouts_info_and_family() {
        let d = Daemon {
            state: 1,
            ifname: "eth0".into(),
            syncid: 9,
            sync_maxlen: 1472,
            mcast_group: Some(v4("224.0.0.81")),
            mcast_port: 8848,
            mcast_ttl: 2,
        };
        let m = Message::new_daemon(5, &d);
        assert_eq!(daemon(&m.attrs).unwrap(), d);
        let t = Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        };
        assert_eq!(timeouts(&Message::set_timeouts(5, &t).attrs).unwrap(), t);
        let mut w = Writer(Vec::new());
        w.u32(info::VERSION, 0x010201);
        w.u32(info::CONN_TAB_SIZE, 4096);
        assert_eq!(info(&w.0).unwrap().version_string(), "1.2.1");
        let mut w = Writer(Vec::new());
        w.string(CTRL_ATTR_FAMILY_NAME, "IPVS");
        w.u16(CTRL_ATTR_FAMILY_ID, 0x1b);
        assert_eq!(family_id(&w.0).unwrap(), 0x1b);
        let g = Message::get_family("IPVS");
        assert_eq!(g.family_id(), GENL_ID_CTRL);
        assert_eq!(&g.attrs[4..9], b"IPVS\0");
    }

    #[test]
    fn the_fuzzers_seeds_are_good_answers() {
        let seed =
            |n: &str| std::fs::read(format!("{}/fuzz/seeds/ipvs_parse/{n}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let s = service(&seed("service")).unwrap();
        assert_eq!(s.scheduler, "wlc");
        assert_eq!(s.stats.conns, 100);
        let d = dest(&seed("dest"), false).unwrap();
        assert_eq!((d.addr, d.port, d.inactive), (v4("10.0.1.1"), 80, 12));
        assert_eq!(daemon(&seed("daemon")).unwrap().ifname, "eth0");
        assert_eq!(info(&seed("info")).unwrap().size, 4096);
        assert_eq!(timeouts(&seed("timeouts")).unwrap().tcp, 900);
        assert_eq!(family_id(&seed("family")).unwrap(), 0x1b);
    }

    #[test]
    fn every_byte_of_a_real_answer_changed_is_read_without_a_panic() {
        for n in ["service", "dest", "daemon"] {
            let good = std::fs::read(format!("{}/fuzz/seeds/ipvs_parse/{n}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            for at in 0..good.len() {
                for v in [0, 1, 3, 4, 5, 0x7f, 0x80, 0xff] {
                    let mut b = good.clone();
                    b[at] = v;
                    parse_all(&b);
                }
                parse_all(&good[..at]);
            }
        }
    }
}
