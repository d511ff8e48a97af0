//! The model, read back from `nft -j list table` of our two tables: services and real
//! servers from the record rules' comments, counters from the dispatch maps' and the
//! counting sets' elements (NAT) and the real servers' entry chains (DR). Anything of
//! ours that does not parse is an error naming it, never a guess and never a panic.

use super::layout::{dest_id, dest_port, service_id, Present, TABLE};
use crate::tools::lvs_ctl::model::{Dest, Fwd, Proto, Service, ServiceKey, Stats, WEIGHT_MAX};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// What the kernel holds.
#[derive(Debug, Default)]
pub struct Parsed {
    pub services: Vec<Service>,
    pub present: Present,
}

fn num(v: &str, what: &str) -> Result<u32, String> {
    let r = match v.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => v.parse(),
    };
    r.map_err(|_| format!("{what} `{v}` is not a number"))
}

fn proto(s: &str) -> Result<Proto, String> {
    match s {
        "tcp" | "6" => Ok(Proto::Tcp),
        "udp" | "17" => Ok(Proto::Udp),
        "sctp" | "132" => Ok(Proto::Sctp),
        _ => Err(format!("protocol `{s}` is not one lvs-ctl makes")),
    }
}

/// `tcp 10.0.0.1 80` or `fwmark 7 v4`, and the rest of the words.
fn key<'a>(w: &mut impl Iterator<Item = &'a str>) -> Result<ServiceKey, String> {
    let mut next = |what: &str| w.next().ok_or_else(|| format!("no {what}"));
    let p = next("protocol")?;
    if p == "fwmark" {
        let mark = num(next("mark")?, "mark")?;
        let v6 = match next("family")? {
            "v4" => false,
            "v6" => true,
            f => return Err(format!("family `{f}`")),
        };
        return Ok(ServiceKey::Fwmark { mark, v6 });
    }
    let proto = proto(p)?;
    let a = next("address")?;
    let addr: IpAddr = a.parse().map_err(|_| format!("address `{a}`"))?;
    let port = num(next("port")?, "port")?;
    let port = u16::try_from(port).map_err(|_| format!("port {port}"))?;
    Ok(ServiceKey::Addr { proto, addr, port })
}

/// `lvs-service KEY SCHED FLAGS TIMEOUT NETMASK`.
pub fn service_record(c: &str) -> Result<Service, String> {
    let mut w = c.split(' ');
    if w.next() != Some("lvs-service") {
        return Err("not a service record".into());
    }
    let k = key(&mut w)?;
    let mut s = Service::new(k);
    s.scheduler = w.next().ok_or("no scheduler")?.to_string();
    if s.scheduler.is_empty() || s.scheduler.len() > 15 {
        return Err(format!("scheduler `{}`", s.scheduler));
    }
    s.flags = num(w.next().ok_or("no flags")?, "flags")?;
    s.timeout = num(w.next().ok_or("no timeout")?, "timeout")?;
    s.netmask = num(w.next().ok_or("no netmask")?, "netmask")?;
    if w.next().is_some() {
        return Err("more words than a service record has".into());
    }
    Ok(s)
}

/// `lvs-dest ADDR PORT FWD WEIGHT`.
pub fn dest_record(c: &str) -> Result<Dest, String> {
    let mut w = c.split(' ');
    if w.next() != Some("lvs-dest") {
        return Err("not a real-server record".into());
    }
    let a = w.next().ok_or("no address")?;
    let addr: IpAddr = a.parse().map_err(|_| format!("address `{a}`"))?;
    let port = num(w.next().ok_or("no port")?, "port")?;
    let port = u16::try_from(port).map_err(|_| format!("port {port}"))?;
    let mut d = Dest::new(addr, port);
    d.fwd = match w.next().ok_or("no forwarding method")? {
        "masq" => Fwd::Masq,
        "route" => Fwd::Route,
        "local" => Fwd::Local,
        "tunnel" => Fwd::Tunnel,
        f => return Err(format!("forwarding method `{f}`")),
    };
    d.weight = num(w.next().ok_or("no weight")?, "weight")?;
    if d.weight > WEIGHT_MAX {
        return Err(format!("weight {}", d.weight));
    }
    if w.next().is_some() {
        return Err("more words than a real-server record has".into());
    }
    Ok(d)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An element's key as words (`10.0.0.1 tcp 80`) and its counter's packets.
fn elem(v: &Value) -> Option<(Vec<String>, u64)> {
    // A map's element is [key, value]; a set's is the key alone.
    let e = match v {
        Value::Array(a) => a.first()?,
        e => e,
    };
    let inner = e.get("elem")?;
    let packets = inner.get("counter")?.get("packets")?.as_u64()?;
    let val = inner.get("val")?;
    let words = match val.get("concat") {
        Some(Value::Array(parts)) => parts.iter().map(text).collect::<Option<Vec<_>>>()?,
        _ => vec![text(val)?],
    };
    Some((words, packets))
}

fn parse_doc(doc: &str, family: &str, p: &mut Work) -> Result<(), String> {
    let v: Value = serde_json::from_str(doc).map_err(|e| format!("nft's JSON does not parse: {e}"))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("nft's JSON has no `nftables` list")?;
    for it in items {
        let Some(obj) = it.as_object() else { continue };
        for (kind, body) in obj {
            if body.get("table").and_then(Value::as_str).is_some_and(|t| t != TABLE) {
                continue;
            }
            match kind.as_str() {
                "table" => p.present(family),
                "chain" => {
                    let name = body
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or("a chain without a name")?;
                    if let (Some(dev), "netdev") = (name.strip_prefix("in_"), family) {
                        p.out.present.dr_devices.insert(dev.to_string());
                    }
                }
                "rule" => p.rule(family, body)?,
                "map" | "set" => p.set(family, body)?,
                _ => {}
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Work {
    out: Parsed,
    /// Service chain → (service, where from).
    services: BTreeMap<String, Service>,
    dests: BTreeMap<String, Vec<Dest>>,
    svc_conns: HashMap<String, u64>,
    /// (service chain, address, port as DNAT uses it) → new connections.
    dest_conns: HashMap<(String, IpAddr, u16), u64>,
    /// DR: a real server's entry chain name → new flows.
    dr_conns: HashMap<String, u64>,
}

impl Work {
    fn present(&mut self, family: &str) {
        match family {
            "inet" => self.out.present.inet = true,
            _ => self.out.present.netdev = true,
        }
    }

    fn rule(&mut self, family: &str, body: &Value) -> Result<(), String> {
        let chain = body
            .get("chain")
            .and_then(Value::as_str)
            .ok_or("a rule without a chain")?;
        if family == "netdev" && chain.starts_with("d_") {
            let packets = body
                .get("expr")
                .and_then(Value::as_array)
                .and_then(|e| e.iter().find_map(|x| x.get("counter")?.get("packets")?.as_u64()));
            if let Some(n) = packets {
                self.dr_conns.insert(chain[2..].to_string(), n);
            }
            return Ok(());
        }
        let Some(c) = body.get("comment").and_then(Value::as_str) else {
            return Ok(());
        };
        let bad = |e: String| format!("{family} {TABLE} chain {chain}: record `{c}`: {e}");
        if c.starts_with("lvs-service ") {
            let s = service_record(c).map_err(bad)?;
            if service_id(&s.key) != chain {
                return Err(bad("is not the record of this chain's service".into()));
            }
            if self.services.insert(chain.to_string(), s).is_some() {
                return Err(bad("a second service record in one chain".into()));
            }
        } else if c.starts_with("lvs-dest ") {
            let d = dest_record(c).map_err(bad)?;
            self.dests.entry(chain.to_string()).or_default().push(d);
        }
        Ok(())
    }

    fn set(&mut self, family: &str, body: &Value) -> Result<(), String> {
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        let elems = match body.get("elem").and_then(Value::as_array) {
            Some(e) => e,
            None => return Ok(()),
        };
        let bad = |e: &str| format!("{family} {TABLE} set {name}: {e}");
        let fam_ok = |w: &[String]| w.first().and_then(|a| a.parse::<IpAddr>().ok());
        match (family, name) {
            ("inet", "svc4" | "svc6" | "fwm4" | "fwm6") => {
                for e in elems {
                    let (w, n) = elem(e).ok_or_else(|| bad("an element without a key or counter"))?;
                    let k = if name.starts_with("fwm") {
                        if w.len() != 1 {
                            return Err(bad("an element that is not a mark"));
                        }
                        let mark = num(&w[0], "mark").map_err(|e| bad(&e))?;
                        ServiceKey::Fwmark {
                            mark,
                            v6: name == "fwm6",
                        }
                    } else {
                        if w.len() != 3 || fam_ok(&w).is_none() {
                            return Err(bad("an element that is not address . protocol . port"));
                        }
                        let mut it = [w[1].as_str(), w[0].as_str(), w[2].as_str()].into_iter();
                        key(&mut it).map_err(|e| bad(&e))?
                    };
                    self.svc_conns.insert(service_id(&k), n);
                }
            }
            ("inet", "dcnt4" | "dcnt6" | "fdcnt4" | "fdcnt6") => {
                for e in elems {
                    let (w, n) = elem(e).ok_or_else(|| bad("an element without a key or counter"))?;
                    let (k, a, p) = if name.starts_with("fdcnt") {
                        if w.len() != 2 {
                            return Err(bad("an element that is not mark . address"));
                        }
                        let mark = num(&w[0], "mark").map_err(|e| bad(&e))?;
                        let a: IpAddr = w[1].parse().map_err(|_| bad("a bad address"))?;
                        (ServiceKey::Fwmark { mark, v6: a.is_ipv6() }, a, 0)
                    } else {
                        if w.len() != 5 {
                            return Err(bad("an element that is not a service and a real server"));
                        }
                        let mut it = [w[1].as_str(), w[0].as_str(), w[2].as_str()].into_iter();
                        let k = key(&mut it).map_err(|e| bad(&e))?;
                        let a: IpAddr = w[3].parse().map_err(|_| bad("a bad address"))?;
                        let p = num(&w[4], "port").map_err(|e| bad(&e))?;
                        (k, a, u16::try_from(p).map_err(|_| bad("a bad port"))?)
                    };
                    self.dest_conns.insert((service_id(&k), a, p), n);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Parsed, String> {
        for (chain, ds) in &self.dests {
            if !self.services.contains_key(chain) {
                return Err(format!(
                    "{TABLE} chain {chain} has real-server records but no service record"
                ));
            }
            let _ = ds;
        }
        for (chain, mut s) in std::mem::take(&mut self.services) {
            s.dests = self.dests.remove(&chain).unwrap_or_default();
            for (i, d) in s.dests.iter().enumerate() {
                if s.dests[..i].iter().any(|x| x.addr == d.addr && x.port == d.port) {
                    return Err(format!("{TABLE} chain {chain} records real server {} twice", d.addr));
                }
            }
            let mut total = 0;
            for d in &mut s.dests {
                let n = if d.fwd == Fwd::Route {
                    self.dr_conns.get(&dest_id(&s.key, d)).copied()
                } else {
                    let p = match s.key {
                        ServiceKey::Fwmark { .. } => 0,
                        _ => dest_port(&s.key, d),
                    };
                    self.dest_conns.get(&(chain.clone(), d.addr, p)).copied()
                };
                d.stats = Stats {
                    conns: n.unwrap_or(0),
                    ..Stats::default()
                };
                total += d.stats.conns;
            }
            s.stats.conns = self.svc_conns.get(&chain).copied().unwrap_or(total);
            self.out.services.push(s);
        }
        Ok(self.out)
    }
}

/// Parse the listings of `inet hakit_lvs` and `netdev hakit_lvs` (None: not there).
pub fn parse(inet: Option<&str>, netdev: Option<&str>) -> Result<Parsed, String> {
    let mut w = Work::default();
    if let Some(d) = inet {
        parse_doc(d, "inet", &mut w)?;
    }
    if let Some(d) = netdev {
        parse_doc(d, "netdev", &mut w)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut s = Service::new(ServiceKey::Addr {
            proto: Proto::Udp,
            addr: "2001:db8::1".parse().unwrap(),
            port: 53,
        });
        s.scheduler = "sh".into();
        s.flags = 1;
        s.timeout = 300;
        let back = service_record(&super::super::layout::service_record(&s)).unwrap();
        assert!(back.same_settings(&s));
        let mut d = Dest::new("10.0.0.2".parse().unwrap(), 8080);
        d.fwd = Fwd::Masq;
        d.weight = 7;
        let back = dest_record(&super::super::layout::dest_record(&d)).unwrap();
        assert!(back.same_settings(&d));
    }

    #[test]
    fn malformed_is_an_error_naming_it() {
        let doc = r#"{"nftables":[{"table":{"family":"inet","name":"hakit_lvs"}},
            {"rule":{"family":"inet","table":"hakit_lvs","chain":"s4t0a000001_0050","comment":"lvs-service tcp 10.0.0.1 80 rr zz 0 0xffffffff"}}]}"#;
        let e = parse(Some(doc), None).unwrap_err();
        assert!(e.contains("s4t0a000001_0050") && e.contains("flags"), "{e}");
        assert!(parse(Some("{"), None).is_err());
        assert!(parse(Some("[]"), None).is_err());
        let orphan = r#"{"nftables":[{"rule":{"family":"inet","table":"hakit_lvs","chain":"x","comment":"lvs-dest 10.0.0.2 80 masq 1"}}]}"#;
        assert!(parse(Some(orphan), None).unwrap_err().contains("no service record"));
    }
}
