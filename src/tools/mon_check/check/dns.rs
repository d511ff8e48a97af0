//! The dns check: ask one server for a name (RFC 1035, over UDP, over TCP when the
//! answer is truncated) and compare the addresses with the ones expected. The codec is
//! small and written here so that a malformed answer is a CRITICAL, never a panic.

use super::net::{self, Fail, Family};
use super::{timed_out, Outcome, Perf, Status, Thresholds};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    A = 1,
    Ns = 2,
    Cname = 5,
    Mx = 15,
    Aaaa = 28,
}

impl QType {
    pub fn parse(s: &str) -> Result<QType, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "A" => QType::A,
            "AAAA" => QType::Aaaa,
            "NS" => QType::Ns,
            "CNAME" => QType::Cname,
            "MX" => QType::Mx,
            _ => return Err(format!("`{s}` is not a query type (A, AAAA, NS, CNAME, MX)")),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The name to look up.
    pub name: String,
    pub qtype: QType,
    /// The answers expected (addresses or names); empty: any answer will do.
    pub expect: Vec<String>,
    pub port: u16,
    pub thresholds: Thresholds,
    pub timeout: Duration,
    pub family: Family,
}

/// One record of an answer, as text: an address, or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rtype: u16,
    pub data: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    /// The first question: name, type, class.
    pub question: Option<(String, u16, u16)>,
    pub answers: Vec<Answer>,
}

/// The first nameserver of /etc/resolv.conf, when the check is given no server.
pub fn default_server() -> Option<String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .next()
}

pub fn run(s: &Settings, server: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let mut o = match ask(s, server, deadline) {
        Ok(r) => judge(s, server, &r, start.elapsed().as_secs_f64()),
        Err(Fail::Timeout) => timed_out(s.timeout),
        Err(Fail::Resolve(why)) => Outcome::new(Status::Critical, format!("cannot resolve {why}")),
        // A malformed answer says so itself (see `ask`).
        Err(Fail::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            Outcome::new(Status::Critical, e.to_string())
        }
        Err(Fail::Io(e)) => Outcome::new(Status::Critical, format!("server {server}: {}", net::io_text(&e))),
    };
    o.elapsed = start.elapsed();
    o
}

fn judge(s: &Settings, server: &str, r: &Reply, t: f64) -> Outcome {
    let rcode_text = match r.rcode {
        0 => "",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    };
    if r.rcode == 3 {
        return Outcome::new(
            Status::Critical,
            format!("Domain '{}' was not found by the server {server}", s.name),
        );
    }
    if r.rcode != 0 {
        return Outcome::new(
            Status::Critical,
            format!("server {server} answered {rcode_text} for '{}'", s.name),
        );
    }
    let mut got: Vec<String> = r
        .answers
        .iter()
        .filter(|a| a.rtype == s.qtype as u16)
        .map(|a| a.data.clone())
        .collect();
    got.sort();
    if got.is_empty() {
        return Outcome::new(
            Status::Critical,
            format!("server {server} has no {:?} record for '{}'", s.qtype, s.name),
        );
    }
    let shown = got.join(",");
    if !s.expect.is_empty() {
        let mut want: Vec<String> = s.expect.iter().map(|e| normalise(e)).collect();
        want.sort();
        let have: Vec<String> = got.iter().map(|g| normalise(g)).collect();
        if want != have {
            return Outcome::new(
                Status::Critical,
                format!("expected '{}' but got '{shown}'", s.expect.join(",")),
            );
        }
    }
    Outcome::new(
        s.thresholds.status(t),
        format!("{t:.3} seconds response time. {} returns {shown}", s.name),
    )
    .with_perf(
        Perf::new("time", t, "s")
            .thresholds(&s.thresholds)
            .bounds(Some(0.0), None),
    )
}

/// Addresses compare as addresses (`::1` = `0::1`), names without the final dot.
fn normalise(s: &str) -> String {
    match s.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => s.trim_end_matches('.').to_ascii_lowercase(),
    }
}

fn ask(s: &Settings, server: &str, deadline: Instant) -> Result<Reply, Fail> {
    let addr = net::resolve(server, s.port, s.family, deadline)?[0];
    let id = (crate::base::clock::mono_ns() as u16) ^ (std::process::id() as u16);
    let q =
        query(id, &s.name, s.qtype).map_err(|e| Fail::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let bind: SocketAddr = if addr.is_ipv4() {
        SocketAddr::from(([0u8; 4], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(addr)?;
    sock.send(&q)?;
    let malformed = |why: String| {
        Fail::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("answer from {} is malformed: {why}", addr.ip()),
        ))
    };
    let mut buf = [0u8; 4096];
    // What was wrong with the last answer that was not believed.
    let mut bad = None;
    let reply = loop {
        let left = match net::remaining(deadline) {
            Ok(l) => l,
            Err(timeout) => return Err(bad.map_or(timeout, malformed)),
        };
        sock.set_read_timeout(Some(left))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match Fail::from(e) {
                    Fail::Timeout => bad.map_or(Fail::Timeout, malformed),
                    f => f,
                })
            }
        };
        // Anything that is not the answer to our question is not believed, but the wait
        // goes on, as dig's does: a datagram from the server's address may be forged,
        // and must not hide the real answer. If none comes, the timeout is reported as
        // what was wrong with the last answer, not as silence.
        match answer(&buf[..n], id, &s.name, s.qtype) {
            Ok(r) => break r,
            Err(why) => bad = Some(why),
        }
    };
    if !reply.truncated {
        return Ok(reply);
    }
    let (s_tcp, _) = net::connect(&[addr], deadline)?;
    let mut tcp = net::Bounded { s: s_tcp, deadline };
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    tcp.write_all(&framed)?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len)?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    tcp.read_exact(&mut body)?;
    answer(&body, id, &s.name, s.qtype).map_err(malformed)
}

/// `b` parsed, if it is the answer to our query: our id, a response, our question.
pub fn answer(b: &[u8], id: u16, name: &str, qtype: QType) -> Result<Reply, String> {
    let r = parse(b)?;
    if r.id != id {
        return Err(format!("wrong id {:#06x} (asked with {id:#06x})", r.id));
    }
    let want = name.trim_end_matches('.');
    match &r.question {
        Some((n, t, 1)) if n.trim_end_matches('.').eq_ignore_ascii_case(want) && *t == qtype as u16 => Ok(r),
        // A server may leave out the question of an error (FORMERR, REFUSED).
        None if r.rcode != 0 => Ok(r),
        Some((n, t, c)) => Err(format!(
            "question mismatch: '{n}' type {t} class {c}, asked '{want}' type {}",
            qtype as u16
        )),
        None => Err("question mismatch: no question".into()),
    }
}

/// A recursive query for one name.
pub fn query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    let name = name.trim_end_matches('.');
    if name.len() > 253 {
        return Err(format!("`{name}` is too long for a domain name"));
    }
    for label in name.split('.').filter(|l| !name.is_empty() || !l.is_empty()) {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("`{name}` is not a domain name"));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&(qtype as u16).to_be_bytes());
    q.extend_from_slice(&[0, 1]); // IN
    Ok(q)
}

/// Parse an answer. Every length is checked; compression pointers may only point
/// backwards, so a loop cannot be built.
pub fn parse(b: &[u8]) -> Result<Reply, String> {
    if b.len() < 12 {
        return Err(format!("truncated header ({} bytes)", b.len()));
    }
    let u16at = |i: usize| -> Result<u16, String> {
        b.get(i..i + 2)
            .map(|x| u16::from_be_bytes([x[0], x[1]]))
            .ok_or_else(|| "truncated message".to_string())
    };
    let id = u16at(0)?;
    let flags = u16at(2)?;
    if flags & 0x8000 == 0 {
        return Err("not a response".into());
    }
    let (qd, an) = (u16at(4)?, u16at(6)?);
    let mut pos = 12;
    let mut question = None;
    for _ in 0..qd {
        let (name, next) = name_at(b, pos)?;
        let (t, c) = (u16at(next)?, u16at(next + 2)?);
        question.get_or_insert((name, t, c));
        pos = next + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (_, next) = name_at(b, pos)?;
        let rtype = u16at(next)?;
        let rdlen = u16at(next + 8)? as usize;
        let start = next + 10;
        let rdata = b.get(start..start + rdlen).ok_or("truncated record")?;
        let data = match (rtype, rdlen) {
            (1, 4) => Ipv4Addr::from([rdata[0], rdata[1], rdata[2], rdata[3]]).to_string(),
            (28, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(rdata);
                Ipv6Addr::from(o).to_string()
            }
            (2 | 5, _) => name_at(b, start)?.0,
            (15, _) if rdlen > 2 => name_at(b, start + 2)?.0,
            _ => String::new(),
        };
        answers.push(Answer { rtype, data });
        pos = start + rdlen;
    }
    Ok(Reply {
        id,
        rcode: (flags & 0x000f) as u8,
        truncated: flags & 0x0200 != 0,
        question,
        answers,
    })
}

/// The name at `pos` and the offset just after it (after the first pointer, if any).
fn name_at(b: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut end = None;
    let mut floor = pos;
    loop {
        let len = *b.get(pos).ok_or("truncated name")? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Ok((if name.is_empty() { ".".into() } else { name }, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = b.get(pos + 1..pos + 1 + len).ok_or("truncated label")?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > 255 {
                    return Err("name too long".into());
                }
                pos += 1 + len;
            }
            0xc0 => {
                let lo = *b.get(pos + 1).ok_or("truncated pointer")? as usize;
                let target = ((len & 0x3f) << 8) | lo;
                if target >= floor {
                    return Err("compression pointer does not point backwards".into());
                }
                end.get_or_insert(pos + 2);
                floor = target;
                pos = target;
            }
            _ => return Err("bad label type".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_and_its_answer() {
        let q = query(0x1234, "www.example.test", QType::A).unwrap();
        assert_eq!(&q[12..17], b"\x03www\x07");
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2; // two answers
        for ip in [[192, 0, 2, 1], [192, 0, 2, 2]] {
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            r.extend_from_slice(&ip);
        }
        let reply = parse(&r).unwrap();
        assert_eq!(reply.id, 0x1234);
        assert_eq!(reply.answers.len(), 2);
        assert_eq!(reply.answers[1].data, "192.0.2.2");
    }

    #[test]
    fn loops_and_truncation_are_errors() {
        let mut r = query(1, "a", QType::A).unwrap();
        r[2] = 0x81;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 30, 0, 1]); // forward pointer
        assert!(parse(&r).is_err());
        assert!(parse(&[0x00, 0x01, 0x81]).is_err());
        assert!(query(1, "a..b", QType::A).is_err());
    }
}
