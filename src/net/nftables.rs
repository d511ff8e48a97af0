//! nf_tables spoken over netlink directly (NETLINK_NETFILTER, subsystem NFTABLES) on the
//! house socket type, for the paths where nft's userspace is the cost: nft parses text
//! and, before any change, fetches its cache of the whole ruleset (at 10,000 chains a
//! one-element change takes 80 ms, of which the kernel needs well under one).
//!
//! Only set elements are written (add, delete, flush, in one all-or-nothing
//! transaction); set elements, rules (their comments), chains' names and tables (their
//! comments) are read.
//! Tables, chains, sets and rules are made with nft, which knows their expressions.
//!
//! Written from the kernel's uapi (linux/netfilter/nf_tables.h, nfnetlink.h) and
//! libnftnl's user-data layout. nf_tables' integer attributes are big-endian. Every
//! decoder works on the kernel's bytes through [`Attrs`], which refuses a length that
//! does not fit: a malformed answer is an error, never a panic (fuzz/nfnl_parse).
//!
//! # Transactions
//!
//! One datagram: BATCH_BEGIN, the ops' messages, BATCH_END. The kernel runs a datagram's
//! batch within the send and commits only if every message was taken (a batch without
//! its END in the same datagram is aborted), so a transaction cannot span datagrams; the
//! send buffer is raised to fit it (2.5 MB for 40,000 elements). An op with many
//! elements is several messages, because an attribute's length is 16 bits: the element
//! list of one message stays under 64 KiB. The kernel answers every refusal (with the
//! sequence number of the message refused, mapped back to the op and its elements) and,
//! of the rest, only what asks: the last op's message alone asks for an
//! acknowledgement. Acknowledging every message would cost a receive-buffer slot each
//! (40,000 elements → 700 messages) for nothing the refusals do not already say.

use super::netlink::Netlink;
use netlink_packet_core::{NetlinkDeserializable, NetlinkHeader, NetlinkSerializable, NLM_F_ACK, NLM_F_CREATE};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::time::Duration;

/// The netlink protocol of netfilter (linux/netlink.h).
pub const NETLINK_NETFILTER: isize = 12;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16; // NLMSG_MIN_TYPE
const NFNL_MSG_BATCH_END: u16 = 17;
const NFNETLINK_V0: u8 = 0;

// enum nf_tables_msg_types
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NFTA_LIST_ELEM: u16 = 1;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_USERDATA: u16 = 6;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_USERDATA: u16 = 7;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;

const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_SET_ELEM_USERDATA: u16 = 6;
const NFTA_SET_ELEM_EXPR: u16 = 7;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFTA_SET_ELEM_EXPRESSIONS: u16 = 11;

const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;

// libnftnl's udata TLVs (type u8, length u8, value): a comment is NUL-terminated.
const NFTNL_UDATA_TABLE_COMMENT: u8 = 0;
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;
const NFTNL_UDATA_SET_ELEM_COMMENT: u8 = 0;

/// NFT_DATA_VALUE_MAXLEN: a key or a value is at most 64 bytes.
const VALUE_MAX: usize = 64;
/// nft's limit for a comment (NFT_USERDATA_MAXLEN is 256 for all the user data).
const COMMENT_MAX: usize = 128;
/// NFT_NAME_MAXLEN, with the NUL.
const NAME_MAX: usize = 256;
/// An element list's attribute length is 16 bits.
const ELEMENTS_MAX: usize = u16::MAX as usize - 4;

/// A table's family (NFPROTO_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet = 1,
    Ip = 2,
    Arp = 3,
    Netdev = 5,
    Bridge = 7,
    Ip6 = 10,
}

/// A verdict, as a verdict map's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    Accept,
    Continue,
    Return,
    Jump(String),
    Goto(String),
    /// A code this module does not name (NF_QUEUE, NFT_BREAK ...).
    Other(i32),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
            Verdict::Continue => -1,
            Verdict::Jump(_) => -3,
            Verdict::Goto(_) => -4,
            Verdict::Return => -5,
            Verdict::Other(c) => *c,
        }
    }
}

/// A map element's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A value, laid out as the map's data type (see [`Concat`]).
    Value(Vec<u8>),
    Verdict(Verdict),
}

/// A set element to add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elem {
    /// The key's bytes as the set's type lays them out (see [`Concat`]).
    pub key: Vec<u8>,
    /// For a map, the data.
    pub data: Option<Data>,
    /// For a set with timeouts, the element's own (else the set's default).
    pub timeout: Option<Duration>,
    pub comment: Option<String>,
}

impl Elem {
    pub fn key(key: Vec<u8>) -> Elem {
        Elem { key, ..Elem::default() }
    }

    pub fn map(key: Vec<u8>, data: Vec<u8>) -> Elem {
        Elem {
            key,
            data: Some(Data::Value(data)),
            ..Elem::default()
        }
    }
}

/// A change to set elements, one step of a [`Nftables::transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// nft's `add element`: an element already there with the same data is no error
    /// (its timeout is refreshed); one with other data is refused (EEXIST), so a
    /// change of data is a delete and an add of the key in one transaction.
    NewSetElems {
        family: Family,
        table: String,
        set: String,
        elems: Vec<Elem>,
    },
    /// nft's `delete element`: a key not in the set is refused (ENOENT).
    DelSetElems {
        family: Family,
        table: String,
        set: String,
        keys: Vec<Vec<u8>>,
    },
    /// nft's `flush set`: every element goes.
    FlushSet { family: Family, table: String, set: String },
}

/// One message of a transaction that the kernel refused.
#[derive(Debug)]
pub struct Refusal {
    /// The index of the op refused; None when it was the transaction as a whole (the
    /// commit, or the batch's framing).
    pub op: Option<usize>,
    /// Which of the op's elements (or keys) that message carried.
    pub elems: Range<usize>,
    pub error: io::Error,
}

/// Why a transaction was not done.
#[derive(Debug)]
pub enum TxError {
    /// The kernel refused it, and nothing of it was done. In order; the kernel goes on
    /// checking after a refusal, so there may be several.
    Refused(Vec<Refusal>),
    /// An op the kernel could never take (a name, key or comment too long, an empty
    /// key): nothing was sent.
    Invalid(String),
    /// The socket failed or the kernel did not answer: whether it was done is not known
    /// (nothing was, when the send itself failed).
    Io(io::Error),
}

impl TxError {
    /// The first refused op's index.
    pub fn op(&self) -> Option<usize> {
        match self {
            TxError::Refused(r) => r.iter().find_map(|r| r.op),
            _ => None,
        }
    }

    /// The first refusal's errno.
    pub fn errno(&self) -> Option<i32> {
        match self {
            TxError::Refused(r) => r.first().and_then(|r| r.error.raw_os_error()),
            TxError::Io(e) => e.raw_os_error(),
            TxError::Invalid(_) => None,
        }
    }
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::Refused(r) => {
                write!(f, "nf_tables refused the transaction")?;
                for (i, r) in r.iter().enumerate() {
                    let sep = if i == 0 { ":" } else { ";" };
                    match r.op {
                        Some(op) => write!(
                            f,
                            "{sep} op {op} (elements {}..{}): {}",
                            r.elems.start, r.elems.end, r.error
                        )?,
                        None => write!(f, "{sep} {}", r.error)?,
                    }
                }
                Ok(())
            }
            TxError::Invalid(m) => write!(f, "nf_tables: {m}"),
            TxError::Io(e) => write!(f, "nf_tables: {e}"),
        }
    }
}

impl std::error::Error for TxError {}

impl crate::base::exit::HasExitStatus for TxError {
    fn exit_status(&self) -> crate::base::exit::ExitStatus {
        crate::base::exit::ExitStatus::Failure
    }
}

/// A set element read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElemView {
    pub key: Vec<u8>,
    /// An interval set's end of range.
    pub key_end: Option<Vec<u8>>,
    pub data: Option<Data>,
    /// NFT_SET_ELEM_INTERVAL_END (1), NFT_SET_ELEM_CATCHALL (2).
    pub flags: u32,
    pub timeout: Option<Duration>,
    /// The time left before it expires.
    pub expiration: Option<Duration>,
    pub comment: Option<String>,
    /// Where the set has counters.
    pub counter: Option<Counter>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// A rule read back: where it is and its comment (its expressions are not decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleView {
    pub table: String,
    pub chain: String,
    pub handle: u64,
    /// `comment "..."` as nft wrote it (libnftnl's NFTNL_UDATA_RULE_COMMENT).
    pub comment: Option<String>,
}

/// A concatenated key or value as nft lays it out: each field in its own 4-byte-aligned
/// slot, zero-padded. A set of one field has no padding: its key is that field's bytes
/// alone (an inet_service set's keys are 2 bytes), as [`Concat::one`] gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Concat(Vec<u8>);

impl Concat {
    pub fn new() -> Concat {
        Concat::default()
    }

    fn field(mut self, b: &[u8]) -> Concat {
        self.0.extend_from_slice(b);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }

    /// ipv4_addr (`ip daddr`): 4 bytes, network order.
    pub fn ipv4(self, a: Ipv4Addr) -> Concat {
        self.field(&a.octets())
    }

    /// ipv6_addr: 16 bytes, network order.
    pub fn ipv6(self, a: Ipv6Addr) -> Concat {
        self.field(&a.octets())
    }

    /// inet_proto (`meta l4proto`): 1 byte, in a slot of 4.
    pub fn proto(self, p: u8) -> Concat {
        self.field(&[p])
    }

    /// inet_service (`th dport`, `tcp dport`): 2 bytes, network order, in a slot of 4.
    pub fn port(self, p: u16) -> Concat {
        self.field(&p.to_be_bytes())
    }

    /// mark (`meta mark`): 4 bytes, host order (nft's mark type is host-endian).
    pub fn mark(self, m: u32) -> Concat {
        self.field(&m.to_ne_bytes())
    }

    /// A 32-bit integer computed by an expression (`numgen inc mod N`, `jhash ... mod
    /// N`): host order, as the expression writes its register.
    pub fn integer(self, n: u32) -> Concat {
        self.field(&n.to_ne_bytes())
    }

    /// ether_addr: 6 bytes in a slot of 8.
    pub fn ether(self, mac: [u8; 6]) -> Concat {
        self.field(&mac)
    }

    /// ifname: 16 bytes, NUL-padded (a longer name is cut to 15).
    pub fn ifname(self, name: &str) -> Concat {
        let mut b = [0u8; 16];
        let n = name.len().min(15);
        b[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.field(&b)
    }

    pub fn bytes(self) -> Vec<u8> {
        self.0
    }

    /// A field alone, unpadded, for a set of one field: `Concat::one(Concat::new().port(80))`
    /// is the 2 bytes of port 80. `len` is the field's size (ipv4 4, port 2, proto 1,
    /// mark 4, ipv6 16, ether 6, ifname 16).
    pub fn one(c: Concat, len: usize) -> Vec<u8> {
        let mut b = c.0;
        b.truncate(len);
        b
    }
}

/// An nf_tables netlink message: its type, nfgenmsg, attributes.
#[derive(Debug, Clone)]
struct NfMsg {
    kind: u16,
    family: u8,
    res_id: u16,
    attrs: Vec<u8>,
}

impl NfMsg {
    fn new(cmd: u16, family: u8, attrs: Vec<u8>) -> NfMsg {
        NfMsg {
            kind: NFNL_SUBSYS_NFTABLES << 8 | cmd,
            family,
            res_id: 0,
            attrs,
        }
    }

    /// BATCH_BEGIN or BATCH_END: family unspecified, the subsystem in res_id.
    fn batch(kind: u16) -> NfMsg {
        NfMsg {
            kind,
            family: 0,
            res_id: NFNL_SUBSYS_NFTABLES,
            attrs: Vec::new(),
        }
    }
}

impl NetlinkSerializable for NfMsg {
    fn message_type(&self) -> u16 {
        self.kind
    }

    fn buffer_len(&self) -> usize {
        4 + self.attrs.len()
    }

    fn serialize(&self, buf: &mut [u8]) {
        buf[0] = self.family;
        buf[1] = NFNETLINK_V0;
        buf[2..4].copy_from_slice(&self.res_id.to_be_bytes());
        buf[4..].copy_from_slice(&self.attrs);
    }
}

impl NetlinkDeserializable for NfMsg {
    type Error = Malformed;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<NfMsg, Malformed> {
        if payload.len() < 4 {
            return Err(Malformed("a message shorter than its nfgenmsg"));
        }
        Ok(NfMsg {
            kind: header.message_type,
            family: payload[0],
            res_id: u16::from_be_bytes([payload[2], payload[3]]),
            attrs: payload[4..].to_vec(),
        })
    }
}

/// Bytes from the kernel that do not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed nf_tables answer: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

impl From<Malformed> for io::Error {
    fn from(m: Malformed) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, m)
    }
}

/// A view of a run of netlink attributes: (type without its flags, value). A length
/// that does not fit ends the run with an error.
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(b: &'a [u8]) -> Attrs<'a> {
        Attrs { rest: b }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        let Some(&[l0, l1, t0, t1]) = r.get(..4) else {
            self.rest = &[];
            return Some(Err(Malformed("a truncated attribute header")));
        };
        let len = u16::from_ne_bytes([l0, l1]) as usize;
        let Some(value) = r.get(4..len.max(4)).filter(|_| len >= 4) else {
            self.rest = &[];
            return Some(Err(Malformed("an attribute longer than its message")));
        };
        // The last attribute's padding may be left off.
        self.rest = r.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(Ok((u16::from_ne_bytes([t0, t1]) & NLA_TYPE_MASK, value)))
    }
}

fn be32(v: &[u8]) -> Result<u32, Malformed> {
    v.try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| Malformed("a 32-bit attribute of another length"))
}

fn be64(v: &[u8]) -> Result<u64, Malformed> {
    v.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| Malformed("a 64-bit attribute of another length"))
}

/// A NUL-terminated name (what follows the NUL is ignored).
fn name(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// The value inside an nft_data nest (NFTA_DATA_VALUE).
fn data_value(v: &[u8]) -> Result<Vec<u8>, Malformed> {
    for a in Attrs::new(v) {
        let (t, v) = a?;
        if t == NFTA_DATA_VALUE {
            return Ok(v.to_vec());
        }
    }
    Err(Malformed("a key without its value"))
}

fn data(v: &[u8]) -> Result<Data, Malformed> {
    for a in Attrs::new(v) {
        match a? {
            (NFTA_DATA_VALUE, v) => return Ok(Data::Value(v.to_vec())),
            (NFTA_DATA_VERDICT, v) => {
                let (mut code, mut chain) = (None, None);
                for a in Attrs::new(v) {
                    match a? {
                        (NFTA_VERDICT_CODE, v) => code = Some(be32(v)? as i32),
                        (NFTA_VERDICT_CHAIN, v) => chain = Some(name(v)),
                        _ => {}
                    }
                }
                let code = code.ok_or(Malformed("a verdict without its code"))?;
                return Ok(Data::Verdict(match (code, chain) {
                    (0, _) => Verdict::Drop,
                    (1, _) => Verdict::Accept,
                    (-1, _) => Verdict::Continue,
                    (-5, _) => Verdict::Return,
                    (-3, Some(c)) => Verdict::Jump(c),
                    (-4, Some(c)) => Verdict::Goto(c),
                    (c, _) => Verdict::Other(c),
                }));
            }
            _ => {}
        }
    }
    Err(Malformed("data without a value or verdict"))
}

/// A counter expression's packets and bytes, if `expr` is one.
fn counter(expr: &[u8]) -> Result<Option<Counter>, Malformed> {
    let (mut is_counter, mut c) = (false, Counter::default());
    for a in Attrs::new(expr) {
        match a? {
            (NFTA_EXPR_NAME, v) => is_counter = name(v) == "counter",
            (NFTA_EXPR_DATA, v) => {
                for a in Attrs::new(v) {
                    match a? {
                        (NFTA_COUNTER_BYTES, v) => c.bytes = be64(v)?,
                        (NFTA_COUNTER_PACKETS, v) => c.packets = be64(v)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(is_counter.then_some(c))
}

/// The comment in libnftnl's user data: TLVs of a type byte and a length byte.
fn udata_comment(v: &[u8], kind: u8) -> Option<String> {
    let mut rest = v;
    while let [t, len, tail @ ..] = rest {
        let value = tail.get(..*len as usize)?;
        if *t == kind {
            return Some(name(value));
        }
        rest = &tail[value.len()..];
    }
    None
}

fn decode_elem(v: &[u8]) -> Result<ElemView, Malformed> {
    let mut e = ElemView::default();
    let mut key = None;
    for a in Attrs::new(v) {
        match a? {
            (NFTA_SET_ELEM_KEY, v) => key = Some(data_value(v)?),
            (NFTA_SET_ELEM_KEY_END, v) => e.key_end = Some(data_value(v)?),
            (NFTA_SET_ELEM_DATA, v) => e.data = Some(data(v)?),
            (NFTA_SET_ELEM_FLAGS, v) => e.flags = be32(v)?,
            (NFTA_SET_ELEM_TIMEOUT, v) => e.timeout = Some(Duration::from_millis(be64(v)?)),
            (NFTA_SET_ELEM_EXPIRATION, v) => e.expiration = Some(Duration::from_millis(be64(v)?)),
            (NFTA_SET_ELEM_USERDATA, v) => e.comment = udata_comment(v, NFTNL_UDATA_SET_ELEM_COMMENT),
            (NFTA_SET_ELEM_EXPR, v) => e.counter = e.counter.or(counter(v)?),
            (NFTA_SET_ELEM_EXPRESSIONS, v) => {
                for a in Attrs::new(v) {
                    if let (NFTA_LIST_ELEM, v) = a? {
                        e.counter = e.counter.or(counter(v)?);
                    }
                }
            }
            _ => {}
        }
    }
    // A catch-all element has no key.
    e.key = match key {
        Some(k) => k,
        None if e.flags & 2 != 0 => Vec::new(),
        None => return Err(Malformed("an element without its key")),
    };
    Ok(e)
}

/// The elements of one NEWSETELEM message (its attributes after the nfgenmsg).
pub fn decode_set_elems(attrs: &[u8]) -> Result<Vec<ElemView>, Malformed> {
    let mut out = Vec::new();
    for a in Attrs::new(attrs) {
        if let (NFTA_SET_ELEM_LIST_ELEMENTS, v) = a? {
            for a in Attrs::new(v) {
                if let (NFTA_LIST_ELEM, v) = a? {
                    out.push(decode_elem(v)?);
                }
            }
        }
    }
    Ok(out)
}

/// One NEWRULE message (its attributes after the nfgenmsg).
pub fn decode_rule(attrs: &[u8]) -> Result<RuleView, Malformed> {
    let mut r = RuleView::default();
    let mut handle = None;
    for a in Attrs::new(attrs) {
        match a? {
            (NFTA_RULE_TABLE, v) => r.table = name(v),
            (NFTA_RULE_CHAIN, v) => r.chain = name(v),
            (NFTA_RULE_HANDLE, v) => handle = Some(be64(v)?),
            (NFTA_RULE_USERDATA, v) => r.comment = udata_comment(v, NFTNL_UDATA_RULE_COMMENT),
            _ => {}
        }
    }
    r.handle = handle.ok_or(Malformed("a rule without its handle"))?;
    Ok(r)
}

/// One NEWTABLE message's name and comment (libnftnl's NFTNL_UDATA_TABLE_COMMENT).
pub fn decode_table(attrs: &[u8]) -> Result<(String, Option<String>), Malformed> {
    let (mut table, mut comment) = (None, None);
    for a in Attrs::new(attrs) {
        match a? {
            (NFTA_TABLE_NAME, v) => table = Some(name(v)),
            (NFTA_TABLE_USERDATA, v) => comment = udata_comment(v, NFTNL_UDATA_TABLE_COMMENT),
            _ => {}
        }
    }
    Ok((table.ok_or(Malformed("a table without its name"))?, comment))
}

/// One NEWCHAIN message's table and name.
pub fn decode_chain(attrs: &[u8]) -> Result<(String, String), Malformed> {
    let (mut table, mut chain) = (None, None);
    for a in Attrs::new(attrs) {
        match a? {
            (NFTA_CHAIN_TABLE, v) => table = Some(name(v)),
            (NFTA_CHAIN_NAME, v) => chain = Some(name(v)),
            _ => {}
        }
    }
    match (table, chain) {
        (Some(t), Some(c)) => Ok((t, c)),
        _ => Err(Malformed("a chain without its table or name")),
    }
}

/// Attributes being written.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn put(&mut self, kind: u16, v: &[u8]) {
        self.0.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(v);
        self.pad();
    }

    fn pad(&mut self) {
        self.0.resize(self.0.len().next_multiple_of(4), 0);
    }

    fn put_str(&mut self, kind: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.put(kind, &v);
    }

    /// Start a nest; [`Writer::close`] writes its length.
    fn open(&mut self, kind: u16) -> usize {
        let at = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    /// Callers keep a nest under 64 KiB (the elements are split into messages for that).
    fn close(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

fn check_name(what: &str, s: &str) -> Result<(), TxError> {
    if s.is_empty() || s.len() >= NAME_MAX || s.contains('\0') {
        return Err(TxError::Invalid(format!("{what} name {s:?}: 1 to 255 bytes, no NUL")));
    }
    Ok(())
}

fn check_value(what: &str, v: &[u8]) -> Result<(), TxError> {
    if v.is_empty() || v.len() > VALUE_MAX {
        return Err(TxError::Invalid(format!(
            "{what} of {} bytes: 1 to {VALUE_MAX}",
            v.len()
        )));
    }
    Ok(())
}

fn check_elem(e: &Elem) -> Result<(), TxError> {
    check_value("a key", &e.key)?;
    match &e.data {
        Some(Data::Value(v)) => check_value("a value", v)?,
        Some(Data::Verdict(Verdict::Jump(c) | Verdict::Goto(c))) => check_name("a chain", c)?,
        _ => {}
    }
    if let Some(c) = &e.comment {
        if c.len() >= COMMENT_MAX || c.contains('\0') {
            return Err(TxError::Invalid(format!(
                "comment {c:?}: under {COMMENT_MAX} bytes, no NUL"
            )));
        }
    }
    Ok(())
}

fn put_elem(w: &mut Writer, key: &[u8], e: Option<&Elem>) {
    let el = w.open(NFTA_LIST_ELEM);
    let k = w.open(NFTA_SET_ELEM_KEY);
    w.put(NFTA_DATA_VALUE, key);
    w.close(k);
    if let Some(e) = e {
        match &e.data {
            Some(Data::Value(v)) => {
                let d = w.open(NFTA_SET_ELEM_DATA);
                w.put(NFTA_DATA_VALUE, v);
                w.close(d);
            }
            Some(Data::Verdict(v)) => {
                let d = w.open(NFTA_SET_ELEM_DATA);
                let n = w.open(NFTA_DATA_VERDICT);
                w.put(NFTA_VERDICT_CODE, &v.code().to_be_bytes());
                if let Verdict::Jump(c) | Verdict::Goto(c) = v {
                    w.put_str(NFTA_VERDICT_CHAIN, c);
                }
                w.close(n);
                w.close(d);
            }
            None => {}
        }
        if let Some(t) = e.timeout {
            let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
            w.put(NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
        }
        if let Some(c) = &e.comment {
            // Checked under 128 bytes: the TLV's length byte holds it and its NUL.
            let mut u = vec![NFTNL_UDATA_SET_ELEM_COMMENT, c.len() as u8 + 1];
            u.extend_from_slice(c.as_bytes());
            u.push(0);
            w.put(NFTA_SET_ELEM_USERDATA, &u);
        }
    }
    w.close(el);
}

/// The messages of one op: (message, flags, the op's elements it carries).
fn encode_op(op: &Op, out: &mut Vec<(NfMsg, u16, Range<usize>)>) -> Result<(), TxError> {
    let (cmd, flags, family, table, set, n) = match op {
        Op::NewSetElems {
            family,
            table,
            set,
            elems,
        } => {
            elems.iter().try_for_each(check_elem)?;
            (NFT_MSG_NEWSETELEM, NLM_F_CREATE, family, table, set, elems.len())
        }
        Op::DelSetElems {
            family,
            table,
            set,
            keys,
        } => {
            keys.iter().try_for_each(|k| check_value("a key", k))?;
            (NFT_MSG_DELSETELEM, 0, family, table, set, keys.len())
        }
        Op::FlushSet { family, table, set } => (NFT_MSG_DELSETELEM, 0, family, table, set, 0),
    };
    check_name("a table", table)?;
    check_name("a set", set)?;
    let head = |w: &mut Writer| {
        w.put_str(NFTA_SET_ELEM_LIST_TABLE, table);
        w.put_str(NFTA_SET_ELEM_LIST_SET, set);
    };
    let mut w = Writer::default();
    head(&mut w);
    if n == 0 {
        // Adding or deleting no element is nothing; a flush is a DELSETELEM without a list.
        if matches!(op, Op::FlushSet { .. }) {
            out.push((NfMsg::new(cmd, *family as u8, w.0), flags, 0..0));
        }
        return Ok(());
    }
    let mut list = w.open(NFTA_SET_ELEM_LIST_ELEMENTS);
    let mut first = 0;
    for i in 0..n {
        let before = w.0.len();
        let put = |w: &mut Writer| match op {
            Op::NewSetElems { elems, .. } => put_elem(w, &elems[i].key, Some(&elems[i])),
            Op::DelSetElems { keys, .. } => put_elem(w, &keys[i], None),
            Op::FlushSet { .. } => {}
        };
        put(&mut w);
        if w.0.len() - list > ELEMENTS_MAX {
            // This element goes in the next message.
            w.0.truncate(before);
            w.close(list);
            let full = std::mem::take(&mut w);
            out.push((NfMsg::new(cmd, *family as u8, full.0), flags, first..i));
            first = i;
            head(&mut w);
            list = w.open(NFTA_SET_ELEM_LIST_ELEMENTS);
            put(&mut w);
        }
    }
    w.close(list);
    out.push((NfMsg::new(cmd, *family as u8, w.0), flags, first..n));
    Ok(())
}

/// How many times a set dump with repeated elements is asked again.
const DUMP_CONSISTENT_ATTEMPTS: u32 = 20;

/// An nf_tables netlink socket.
pub struct Nftables {
    nl: Netlink<NfMsg>,
}

impl Nftables {
    /// A socket in the caller's network namespace (nf_tables state is per namespace).
    /// Changes need CAP_NET_ADMIN there.
    pub fn open() -> io::Result<Nftables> {
        let mut nl = Netlink::open(NETLINK_NETFILTER)?;
        nl.set_cap_ack(true)?;
        // A transaction's refusals come all at once; room for a few thousand.
        nl.set_receive_queue(4 << 20)?;
        Ok(Nftables { nl })
    }

    /// How long a transaction or dump waits for the kernel (default 5 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.nl.set_timeout(timeout);
    }

    /// Do `ops` in one nf_tables transaction, in order, all or nothing. An empty
    /// transaction (or one whose ops carry no elements) sends nothing.
    pub fn transaction(&mut self, ops: &[Op]) -> Result<(), TxError> {
        let mut msgs = Vec::new();
        let mut whose = vec![None]; // BATCH_BEGIN's refusal is the transaction's
        for (i, op) in ops.iter().enumerate() {
            let from = msgs.len();
            encode_op(op, &mut msgs)?;
            whose.extend(msgs[from..].iter().map(|m| Some((i, m.2.clone()))));
        }
        if msgs.is_empty() {
            return Ok(());
        }
        if let Some(last) = msgs.last_mut() {
            last.1 |= NLM_F_ACK;
        }
        let all = std::iter::once((NfMsg::batch(NFNL_MSG_BATCH_BEGIN), 0))
            .chain(msgs.into_iter().map(|(m, f, _)| (m, f)))
            .chain(std::iter::once((NfMsg::batch(NFNL_MSG_BATCH_END), 0)));
        let refused = self.nl.together(all).map_err(TxError::Io)?;
        if refused.is_empty() {
            return Ok(());
        }
        Err(TxError::Refused(
            refused
                .into_iter()
                .map(|(i, error)| {
                    let (op, elems) = whose
                        .get(i)
                        .cloned()
                        .flatten()
                        .map_or((None, 0..0), |(o, r)| (Some(o), r));
                    Refusal { op, elems, error }
                })
                .collect(),
        ))
    }

    /// Every element of a set (or map).
    pub fn set_elems(&mut self, family: Family, table: &str, set: &str) -> io::Result<Vec<ElemView>> {
        // The kernel resumes a dump by skipping as many elements as it already sent, in
        // the hash table's current order. A resizable hash set grows in the background
        // after a large insert, and a dump across that rehash repeats some elements and
        // misses as many (measured: 40,000 dumped, 32,783 distinct, right after adding
        // 40,000). The count is always right, so a dump without a repeated key is
        // complete; one with repeats is asked again.
        for attempt in 1..=DUMP_CONSISTENT_ATTEMPTS {
            let mut w = Writer::default();
            w.put_str(NFTA_SET_ELEM_LIST_TABLE, table);
            w.put_str(NFTA_SET_ELEM_LIST_SET, set);
            let mut out = Vec::new();
            for m in self.nl.dump(NfMsg::new(NFT_MSG_GETSETELEM, family as u8, w.0))? {
                if m.kind == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM {
                    out.extend(decode_set_elems(&m.attrs)?);
                }
            }
            let mut keys: Vec<(&[u8], &[u8])> = out
                .iter()
                .map(|e| (&e.key[..], e.key_end.as_deref().unwrap_or(&[])))
                .collect();
            keys.sort_unstable();
            if keys.windows(2).all(|p| p[0] != p[1]) {
                return Ok(out);
            }
            std::thread::sleep(Duration::from_millis(5 * attempt as u64));
        }
        Err(io::Error::other(format!(
            "set {table} {set}: every dump repeated elements (the kernel kept resizing it)"
        )))
    }

    /// The rules of a table, or of one chain of it, in order.
    pub fn rules(&mut self, family: Family, table: &str, chain: Option<&str>) -> io::Result<Vec<RuleView>> {
        let mut w = Writer::default();
        w.put_str(NFTA_RULE_TABLE, table);
        if let Some(c) = chain {
            w.put_str(NFTA_RULE_CHAIN, c);
        }
        let mut out = Vec::new();
        for m in self.nl.dump(NfMsg::new(NFT_MSG_GETRULE, family as u8, w.0))? {
            if m.kind == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE {
                let r = decode_rule(&m.attrs)?;
                // Older kernels dump every table's rules: keep this one's.
                if r.table == table && chain.is_none_or(|c| r.chain == c) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The tables of a family: each name with its comment.
    pub fn tables(&mut self, family: Family) -> io::Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        for m in self.nl.dump(NfMsg::new(NFT_MSG_GETTABLE, family as u8, Vec::new()))? {
            // A dump for one family answers for that family only (nfgenmsg's family).
            if m.kind == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE && m.family == family as u8 {
                out.push(decode_table(&m.attrs)?);
            }
        }
        Ok(out)
    }

    /// The names of a table's chains.
    pub fn chains(&mut self, family: Family, table: &str) -> io::Result<Vec<String>> {
        let mut w = Writer::default();
        w.put_str(NFTA_CHAIN_TABLE, table);
        let mut out = Vec::new();
        for m in self.nl.dump(NfMsg::new(NFT_MSG_GETCHAIN, family as u8, w.0))? {
            if m.kind == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWCHAIN {
                let (t, c) = decode_chain(&m.attrs)?;
                if t == table {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

/// The nft binary, if there is one on PATH (or in /usr/sbin, /sbin).
pub fn nft_path() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("nft"))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A ruleset file given to `nft -f -`: one transaction, all or nothing, for what only
/// nft can make (tables, chains, rules). An error says what nft said (its first lines).
pub fn nft_batch(text: &str) -> Result<(), String> {
    use crate::base::proc::{self, Capture, Leftovers, Limits};
    let nft = nft_path().ok_or("nft is not installed (no nft on PATH)")?;
    let mut cmd = std::process::Command::new(nft);
    cmd.args(["-f", "-"]);
    let limits = Limits {
        timeout: Duration::from_secs(30),
        max_output: 64 << 10,
        capture: Capture::Both,
        leftovers: Leftovers::Kill,
    };
    let f = proc::run(cmd, Some(text.as_bytes().to_vec()), &limits).map_err(|e| format!("cannot run nft: {e}"))?;
    if f.code == Some(0) {
        return Ok(());
    }
    let out = String::from_utf8_lossy(&f.output);
    let said: Vec<&str> = out.lines().take(6).collect();
    Err(format!(
        "nft refused the batch ({}), nothing changed: {}",
        f.how(),
        said.join(" / ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_and_its_comment_are_read() {
        // NFTA_TABLE_NAME "t", NFTA_TABLE_FLAGS 0, NFTA_TABLE_USERDATA [0, 3, "hi\0"].
        let mut w = Writer::default();
        w.put_str(NFTA_TABLE_NAME, "t");
        w.put(2, &0u32.to_be_bytes());
        w.put(NFTA_TABLE_USERDATA, &[0, 3, b'h', b'i', 0]);
        assert_eq!(decode_table(&w.0), Ok(("t".into(), Some("hi".into()))));
        let mut w = Writer::default();
        w.put_str(NFTA_TABLE_NAME, "bare");
        assert_eq!(decode_table(&w.0), Ok(("bare".into(), None)));
        assert!(decode_table(&[]).is_err());
    }

    #[test]
    fn concatenations_are_laid_out_as_nft_does() {
        // nft --debug=netlink prints `0100000a 00000006 00005000 00000001` (host-order
        // words) for 10.0.0.1 . tcp . 80 . 1, and `0201a8c0 0000901f` for 192.168.1.2 . 8080.
        let k = Concat::new()
            .ipv4(Ipv4Addr::new(10, 0, 0, 1))
            .proto(6)
            .port(80)
            .integer(1)
            .bytes();
        let mut want = vec![10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0];
        want.extend_from_slice(&1u32.to_ne_bytes());
        assert_eq!(k, want);
        let d = Concat::new().ipv4(Ipv4Addr::new(192, 168, 1, 2)).port(8080).bytes();
        assert_eq!(d, [192, 168, 1, 2, 0x1f, 0x90, 0, 0]);
        let k = Concat::new().ether([1, 2, 3, 4, 5, 6]).ifname("eth0").bytes();
        assert_eq!(k.len(), 8 + 16);
        assert_eq!(&k[..10], &[1, 2, 3, 4, 5, 6, 0, 0, b'e', b't']);
        assert_eq!(Concat::one(Concat::new().port(443), 2), [1, 187]);
    }

    fn ops_of(n: usize) -> Op {
        Op::NewSetElems {
            family: Family::Inet,
            table: "t".into(),
            set: "m".into(),
            elems: (0..n as u32)
                .map(|i| Elem::map(Concat::new().integer(i).bytes(), vec![1, 2, 3, 4]))
                .collect(),
        }
    }

    #[test]
    fn a_large_op_is_split_under_64k_per_message_and_decodes_back() {
        let mut out = Vec::new();
        encode_op(&ops_of(10_000), &mut out).unwrap();
        assert!(out.len() > 1, "{}", out.len());
        let mut next = 0;
        let mut seen = Vec::new();
        for (m, flags, r) in &out {
            assert_eq!(r.start, next);
            next = r.end;
            assert_eq!(*flags, NLM_F_CREATE);
            assert!(m.attrs.len() < 65536 + 64);
            // What we write is what the kernel sends back, but for the message type.
            seen.extend(decode_set_elems(&m.attrs).unwrap());
        }
        assert_eq!(next, 10_000);
        assert_eq!(seen.len(), 10_000);
        assert_eq!(seen[9_999].key, 9_999u32.to_ne_bytes());
        assert_eq!(seen[9_999].data, Some(Data::Value(vec![1, 2, 3, 4])));
    }

    #[test]
    fn an_elements_every_field_round_trips() {
        let e = Elem {
            key: vec![1, 2, 3, 4],
            data: Some(Data::Verdict(Verdict::Goto("svc_1".into()))),
            timeout: Some(Duration::from_secs(30)),
            comment: Some("real 10.0.0.2:80".into()),
        };
        let op = Op::NewSetElems {
            family: Family::Inet,
            table: "t".into(),
            set: "v".into(),
            elems: vec![e.clone()],
        };
        let mut out = Vec::new();
        encode_op(&op, &mut out).unwrap();
        let back = decode_set_elems(&out[0].0.attrs).unwrap();
        assert_eq!(back[0].key, e.key);
        assert_eq!(back[0].data, e.data);
        assert_eq!(back[0].timeout, e.timeout);
        assert_eq!(back[0].comment, e.comment);
    }

    #[test]
    fn what_the_kernel_could_never_take_is_refused_before_sending() {
        let bad = |e: Elem| {
            let op = Op::NewSetElems {
                family: Family::Inet,
                table: "t".into(),
                set: "s".into(),
                elems: vec![e],
            };
            matches!(encode_op(&op, &mut Vec::new()), Err(TxError::Invalid(_)))
        };
        assert!(bad(Elem::key(vec![])));
        assert!(bad(Elem::key(vec![0; 65])));
        assert!(bad(Elem {
            key: vec![1],
            comment: Some("x".repeat(200)),
            ..Elem::default()
        }));
        let op = Op::FlushSet {
            family: Family::Inet,
            table: "a\0b".into(),
            set: "s".into(),
        };
        assert!(matches!(encode_op(&op, &mut Vec::new()), Err(TxError::Invalid(_))));
    }

    #[test]
    fn the_kernels_answers_parse_and_every_byte_changed_reads_without_a_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/nfnl_parse");
        let mut seen = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let path = f.unwrap().path();
            let b = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("setelem") {
                decode_set_elems(&b).unwrap();
            } else if name.starts_with("rule") {
                assert_eq!(decode_rule(&b).unwrap().comment.as_deref(), Some("hello"));
            } else {
                decode_chain(&b).unwrap();
            }
            for i in 0..b.len() {
                for v in [0u8, 1, 4, 0x80, 0xff] {
                    let mut c = b.clone();
                    c[i] = v;
                    let _ = (decode_set_elems(&c), decode_rule(&c), decode_chain(&c));
                }
            }
            seen += 1;
        }
        assert!(seen >= 5);
        // The interval set's seed: 10.0.0.0/8 is a start and an end flagged INTERVAL_END.
        let i = decode_set_elems(&std::fs::read(format!("{dir}/setelem-i-0")).unwrap()).unwrap();
        assert!(i.iter().any(|e| e.key == [10, 0, 0, 0] && e.flags == 0));
        assert!(i.iter().any(|e| e.key == [11, 0, 0, 0] && e.flags == 1));
        let s2 = decode_set_elems(&std::fs::read(format!("{dir}/setelem-s2-0")).unwrap()).unwrap();
        assert!(s2.iter().all(|e| e.counter == Some(Counter::default())));
        let v = decode_set_elems(&std::fs::read(format!("{dir}/setelem-v-0")).unwrap()).unwrap();
        assert_eq!(v[0].data, Some(Data::Verdict(Verdict::Goto("c".into()))));
        let p = decode_set_elems(&std::fs::read(format!("{dir}/setelem-p-0")).unwrap()).unwrap();
        let x = p.iter().find(|e| e.comment.as_deref() == Some("x")).unwrap();
        assert_eq!(x.timeout, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn malformed_attributes_are_errors_never_panics() {
        let mut out = Vec::new();
        encode_op(&ops_of(3), &mut out).unwrap();
        let good = out[0].0.attrs.clone();
        for cut in 0..good.len() {
            let _ = decode_set_elems(&good[..cut]);
            let _ = decode_rule(&good[..cut]);
            let _ = decode_chain(&good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = decode_set_elems(&b);
            }
        }
        assert!(decode_set_elems(&[8, 0, 3, 0x80, 4, 0]).is_err());
        assert_eq!(udata_comment(&[0, 9, b'x'], 0), None);
        assert_eq!(udata_comment(&[1, 1, 0, 0, 3, b'a', b'b', 0], 0), Some("ab".into()));
    }
}
