//! The inet table read back over nf_tables netlink, without nft: services and real
//! servers from their elements' comments, counters from the elements' counters, and
//! each service's membership and slots as the kernel has them. A key, comment or value
//! of ours that does not parse is an error naming its set, never a guess or a panic.

use super::layout::{actual_of, dest_port, parse_member, Actual, Slot, RULE_TAG, TABLE};
use super::parse::{dest_record, service_record};
use crate::net::nftables::{Data, ElemView, Family, Nftables};
use crate::tools::lvs_ctl::model::{Dest, Proto, Service, ServiceKey, Stats};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the inet table holds.
#[derive(Debug, Default)]
pub struct Inet {
    pub services: Vec<Service>,
    /// The (kind, L) rules there, by membership set, and their handles.
    pub rules: Vec<(String, u64)>,
    pub actual: HashMap<ServiceKey, Actual>,
}

/// A key or value's fields, in nft's concatenation layout (4-byte slots).
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let slot = n.next_multiple_of(4);
        let (Some(v), Some(rest)) = (self.0.get(..n), self.0.get(slot..)) else {
            return Err("a key or value shorter than its type".into());
        };
        self.0 = rest;
        Ok(v)
    }

    fn ip(&mut self, v6: bool) -> Result<IpAddr, String> {
        Ok(if v6 {
            let b: [u8; 16] = self.take(16)?.try_into().map_err(|_| "an address")?;
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| "an address")?;
            IpAddr::V4(Ipv4Addr::from(b))
        })
    }

    fn proto(&mut self) -> Result<Proto, String> {
        let p = self.take(1)?[0];
        Proto::from_number(p as u16).ok_or_else(|| format!("protocol {p} is not one lvs-ctl makes"))
    }

    fn port(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A mark or an expression's integer: host order.
    fn word(&mut self) -> Result<u32, String> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| "a word")?;
        Ok(u32::from_ne_bytes(b))
    }

    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("a key or value longer than its type".into())
        }
    }

    fn service(&mut self, mark: bool, v6: bool) -> Result<ServiceKey, String> {
        if mark {
            return Ok(ServiceKey::Fwmark { mark: self.word()?, v6 });
        }
        let addr = self.ip(v6)?;
        let proto = self.proto()?;
        let port = self.port()?;
        Ok(ServiceKey::Addr { proto, addr, port })
    }
}

fn io_err(what: &str, e: std::io::Error) -> String {
    let hint = if e.raw_os_error() == Some(libc::ENOENT) {
        " (a table of an older lvs-ctl? `lvs-ctl --backend nft -C` and load it again)"
    } else {
        ""
    };
    format!("reading inet {TABLE} {what}: {e}{hint}")
}

fn elems(nl: &mut Nftables, set: &str) -> Result<Vec<ElemView>, String> {
    nl.set_elems(Family::Inet, TABLE, set)
        .map_err(|e| io_err(&format!("set {set}"), e))
}

/// The inet table, or None when it is not there. The slot maps are the most elements
/// (10 per service for wrr 1:2:3:4, 1021 for mh) and a set's dump is quadratic in the
/// kernel (each part of it walks the set from the start): without `slots`, they are
/// taken to be what the records say (a commit refused for a slot that is not as said
/// reads them for real and plans again).
pub fn read(nl: &mut Nftables, slots: bool) -> Result<Option<Inet>, String> {
    let rules = match nl.rules(Family::Inet, TABLE, None) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(io_err("rules", e)),
    };
    // A dump names no table that is not there (it is empty); ours always has rules.
    if rules.is_empty() {
        return Ok(None);
    }
    let mut out = Inet::default();
    for r in rules {
        if let Some(name) = r.comment.as_deref().and_then(|c| c.strip_prefix(RULE_TAG)) {
            if parse_member(name).is_none() {
                return Err(format!(
                    "inet {TABLE} chain {}: a rule named `{name}`, not one of ours",
                    r.chain
                ));
            }
            out.rules.push((name.to_string(), r.handle));
        }
    }
    let mut services: HashMap<ServiceKey, Service> = HashMap::new();
    let mut order = Vec::new();
    for mark in [false, true] {
        for v6 in [false, true] {
            let f = if mark { "f" } else { "" };
            let v = if v6 { '6' } else { '4' };
            let set = format!("{f}svcs{v}");
            for e in elems(nl, &set)? {
                let bad = |m: String| format!("inet {TABLE} set {set}: {m}");
                let mut k = Fields(&e.key);
                let key = k.service(mark, v6).map_err(bad)?;
                k.end().map_err(bad)?;
                let c = e
                    .comment
                    .as_deref()
                    .ok_or_else(|| bad("an element without its record".into()))?;
                let mut s = service_record(c).map_err(|m| bad(format!("record `{c}`: {m}")))?;
                if s.key != key {
                    return Err(bad(format!("record `{c}` is not its element's service")));
                }
                s.stats = Stats {
                    conns: e.counter.map_or(0, |c| c.packets),
                    ..Stats::default()
                };
                order.push(key);
                services.insert(key, s);
            }
            let mut conns: HashMap<(ServiceKey, IpAddr, u16), u64> = HashMap::new();
            let set = format!("{f}dcnt{v}");
            for e in elems(nl, &set)? {
                let bad = |m: String| format!("inet {TABLE} set {set}: {m}");
                let (key, a, p) = dest_fields(&e.key, mark, v6).map_err(bad)?;
                conns.insert((key, a, p), e.counter.map_or(0, |c| c.packets));
            }
            let set = format!("{f}dests{v}");
            for e in elems(nl, &set)? {
                let bad = |m: String| format!("inet {TABLE} set {set}: {m}");
                let (key, a, p) = dest_fields(&e.key, mark, v6).map_err(bad)?;
                let c = e
                    .comment
                    .as_deref()
                    .ok_or_else(|| bad("an element without its record".into()))?;
                let mut d: Dest = dest_record(c).map_err(|m| bad(format!("record `{c}`: {m}")))?;
                let port = if mark { 0 } else { dest_port(&key, &d) };
                if d.addr != a || port != p {
                    return Err(bad(format!("record `{c}` is not its element's real server")));
                }
                let s = services
                    .get_mut(&key)
                    .ok_or_else(|| bad(format!("real server {a} has no service record")))?;
                if s.dest(d.addr, d.port).is_some() {
                    return Err(bad(format!("real server {a} recorded twice")));
                }
                d.stats = Stats {
                    conns: conns.get(&(key, a, p)).copied().unwrap_or(0),
                    ..Stats::default()
                };
                s.dests.push(d);
            }
            let set = format!("{f}slots{v}");
            let dumped = if slots { elems(nl, &set)? } else { Vec::new() };
            for e in dumped {
                let bad = |m: String| format!("inet {TABLE} set {set}: {m}");
                let mut k = Fields(&e.key);
                let key = k.service(mark, v6).map_err(bad)?;
                let i = k.word().map_err(bad)?;
                k.end().map_err(bad)?;
                let Some(Data::Value(val)) = &e.data else {
                    return Err(bad("a slot without a real server".into()));
                };
                let mut d = Fields(val);
                let slot: Slot = (d.ip(v6).map_err(bad)?, if mark { 0 } else { d.port().map_err(bad)? });
                d.end().map_err(bad)?;
                let a = out.actual.entry(key).or_default();
                a.known = true;
                a.slots.insert(i, slot);
            }
        }
    }
    let names: BTreeSet<String> = out.rules.iter().map(|r| r.0.clone()).collect();
    for name in names {
        let Some((mark, v6, ..)) = parse_member(&name) else {
            continue;
        };
        for e in elems(nl, &name)? {
            let bad = |m: String| format!("inet {TABLE} set {name}: {m}");
            let mut k = Fields(&e.key);
            let key = k.service(mark, v6).map_err(bad)?;
            k.end().map_err(bad)?;
            out.actual.entry(key).or_default().members.push(name.clone());
        }
    }
    if !slots {
        for s in services.values() {
            let a = out.actual.entry(s.key).or_default();
            a.slots = actual_of(s).slots;
            a.known = false;
        }
    }
    out.services = order.into_iter().filter_map(|k| services.remove(&k)).collect();
    Ok(Some(out))
}

fn dest_fields(b: &[u8], mark: bool, v6: bool) -> Result<(ServiceKey, IpAddr, u16), String> {
    let mut k = Fields(b);
    let key = k.service(mark, v6)?;
    let a = k.ip(v6)?;
    let p = if mark { 0 } else { k.port()? };
    k.end()?;
    Ok((key, a, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::nft::layout::{dest_key, svc_key, F};

    #[test]
    fn keys_read_back_as_written() {
        let k = ServiceKey::Addr {
            proto: Proto::Udp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 53,
        };
        let d = Dest::new("2001:db8::2".parse().unwrap(), 0);
        let (sk, a, p) = dest_fields(&F::bytes(&dest_key(&k, &d)), false, true).unwrap();
        assert_eq!((sk, a, p), (k, d.addr, 53));
        let m = ServiceKey::Fwmark { mark: 7, v6: false };
        let mut f = Fields(&F::bytes(&svc_key(&m)));
        assert_eq!(f.service(true, false).unwrap(), m);
        assert!(f.end().is_ok());
        for cut in 0..44 {
            let b = F::bytes(&dest_key(&k, &d));
            let _ = dest_fields(&b[..cut.min(b.len())], false, true);
        }
        assert!(dest_fields(&[1, 2, 3], false, false).is_err());
    }
}
