//! The tcp and udp checks: connect (or send a datagram), optionally send a string and
//! expect a reply, as check_tcp and check_udp do.

use super::net::{self, Fail, Family};
use super::{timed_out, Outcome, Perf, Status, Thresholds};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What a tcp or udp check does.
#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    pub send: Option<String>,
    /// Any of these in the reply is a match; with none, any reply will do.
    pub expect: Vec<String>,
    /// The state when the connection is refused (check_tcp's `-r`).
    pub refuse: Status,
    /// The state when the reply matches no expected string (`-M`).
    pub mismatch: Status,
    /// How much of the reply to read at most.
    pub max_bytes: usize,
    pub thresholds: Thresholds,
    pub timeout: Duration,
    pub family: Family,
}

pub fn run_tcp(s: &Settings, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let mut o = match tcp(s, host, deadline) {
        Ok(reply) => {
            let t = start.elapsed().as_secs_f64();
            let mut o = judge(s, host, t, reply.as_deref());
            o.perf.push(time_perf(s, t));
            o
        }
        Err(f) => failure(s, host, f),
    };
    o.elapsed = start.elapsed();
    o
}

fn tcp(s: &Settings, host: &str, deadline: Instant) -> Result<Option<String>, Fail> {
    let addrs = net::resolve(host, s.port, s.family, deadline)?;
    let (mut stream, _) = net::connect(&addrs, deadline)?;
    if let Some(send) = &s.send {
        stream.set_write_timeout(Some(net::remaining(deadline)?))?;
        stream.write_all(send.as_bytes())?;
    }
    if s.send.is_none() && s.expect.is_empty() {
        return Ok(None);
    }
    let mut buf = Vec::new();
    let expect = &s.expect;
    net::read_until(&mut stream, &mut buf, s.max_bytes, deadline, |b| {
        let text = String::from_utf8_lossy(b);
        if expect.is_empty() {
            !b.is_empty()
        } else {
            expect.iter().any(|e| text.contains(e.as_str()))
        }
    })?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

pub fn run_udp(s: &Settings, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let mut o = match udp(s, host, deadline) {
        Ok(reply) => {
            let t = start.elapsed().as_secs_f64();
            let mut o = judge(s, host, t, Some(&reply));
            o.perf.push(time_perf(s, t));
            o
        }
        Err(f) => failure(s, host, f),
    };
    o.elapsed = start.elapsed();
    o
}

fn udp(s: &Settings, host: &str, deadline: Instant) -> Result<String, Fail> {
    let addrs = net::resolve(host, s.port, s.family, deadline)?;
    let addr = addrs[0];
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or(addr)
    } else {
        "[::]:0".parse().unwrap_or(addr)
    };
    let sock = UdpSocket::bind(bind)?;
    // connect() makes an ICMP port unreachable come back as ECONNREFUSED.
    sock.connect(addr)?;
    sock.send(s.send.as_deref().unwrap_or("").as_bytes())?;
    let mut buf = vec![0u8; s.max_bytes.clamp(1, 65536)];
    loop {
        sock.set_read_timeout(Some(net::remaining(deadline)?))?;
        match sock.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn judge(s: &Settings, host: &str, t: f64, reply: Option<&str>) -> Outcome {
    if let Some(reply) = reply {
        if !s.expect.is_empty() && !s.expect.iter().any(|e| reply.contains(e.as_str())) {
            let shown: String = reply.chars().take(80).collect();
            return Outcome::new(
                s.mismatch,
                format!("Unexpected response from host/socket: {}", shown.trim_end()),
            );
        }
    }
    let status = s.thresholds.status(t);
    Outcome::new(status, format!("{t:.3} second response time on {host} port {}", s.port))
}

fn time_perf(s: &Settings, t: f64) -> Perf {
    Perf::new("time", t, "s")
        .thresholds(&s.thresholds)
        .bounds(Some(0.0), Some(s.timeout.as_secs_f64()))
}

fn failure(s: &Settings, host: &str, f: Fail) -> Outcome {
    match f {
        Fail::Timeout => timed_out(s.timeout),
        Fail::Resolve(why) => Outcome::new(Status::Critical, format!("cannot resolve {why}")),
        Fail::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::new(
            s.refuse,
            format!("connect to address {host} and port {}: Connection refused", s.port),
        ),
        Fail::Io(e) => Outcome::new(
            Status::Critical,
            format!("connect to address {host} and port {}: {}", s.port, net::io_text(&e)),
        ),
    }
}
