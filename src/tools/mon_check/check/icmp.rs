//! The icmp check: echo requests, round-trip time and loss, as check_icmp reports
//! them. An unprivileged ICMP datagram socket is used where the kernel allows it
//! (net.ipv4.ping_group_range), a raw socket otherwise (root or CAP_NET_RAW).

use super::net::{self, Fail, Family};
use super::{Outcome, Perf, Status};
use crate::base::privilege::{self, Cap};
use crate::net::icmp::EchoSocket;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// A round-trip time (ms) and a loss (%) limit: check_icmp's `-w 200,40%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub rta_ms: f64,
    pub loss_pct: f64,
}

impl Limit {
    pub fn parse(s: &str) -> Result<Limit, String> {
        let bad = || format!("`{s}` is not RTA,LOSS% (write 200,40%)");
        let (rta, pl) = s.split_once(',').ok_or_else(bad)?;
        let rta_ms: f64 = rta.trim().trim_end_matches("ms").parse().map_err(|_| bad())?;
        let loss_pct: f64 = pl.trim().trim_end_matches('%').parse().map_err(|_| bad())?;
        if !(rta_ms.is_finite() && rta_ms >= 0.0 && (0.0..=100.0).contains(&loss_pct)) {
            return Err(bad());
        }
        Ok(Limit { rta_ms, loss_pct })
    }
    fn hit(&self, rta: f64, pl: f64) -> bool {
        pl >= self.loss_pct || rta >= self.rta_ms
    }
}

/// For clap.
pub fn clap_limit(s: &str) -> Result<Limit, String> {
    Limit::parse(s)
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub packets: u16,
    pub interval: Duration,
    pub warn: Limit,
    pub crit: Limit,
    pub timeout: Duration,
    pub family: Family,
}

pub fn run(s: &Settings, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let mut o = match ping(s, host, deadline) {
        Ok(rtts) => judge(s, host, &rtts),
        Err(Fail::Timeout) => super::timed_out(s.timeout),
        Err(Fail::Resolve(why)) => Outcome::new(Status::Critical, format!("cannot resolve {why}")),
        // No socket to ping with is this machine's problem, not the host's: UNKNOWN.
        Err(Fail::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Outcome::new(Status::Unknown, no_socket_text())
        }
        Err(Fail::Io(e)) => Outcome::new(Status::Critical, format!("{host}: {}", net::io_text(&e))),
    };
    o.elapsed = start.elapsed();
    o
}

/// Why no ICMP socket could be opened, naming the capability that is missing.
fn no_socket_text() -> String {
    let missing = privilege::missing(&[Cap::NetRaw]);
    if missing.is_empty() {
        "no ICMP socket, although this process has CAP_NET_RAW".into()
    } else {
        format!(
            "no ICMP socket: this group is outside net.ipv4.ping_group_range and the process lacks {}",
            privilege::describe(&missing)
        )
    }
}

fn judge(s: &Settings, host: &str, rtts: &[f64]) -> Outcome {
    let sent = s.packets as f64;
    let pl = ((sent - rtts.len() as f64) / sent * 100.0).round();
    let (rta, min, max) = if rtts.is_empty() {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        let sum: f64 = rtts.iter().sum();
        let min = rtts.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().cloned().fold(0.0, f64::max);
        (sum / rtts.len() as f64, min, max)
    };
    let status = if rtts.is_empty() || s.crit.hit(rta, pl) {
        Status::Critical
    } else if s.warn.hit(rta, pl) {
        Status::Warning
    } else {
        Status::Ok
    };
    let rta_text = if rta.is_nan() {
        "nan".to_string()
    } else {
        format!("{rta:.3}ms")
    };
    let mut o = Outcome::new(status, format!("{host} rta {rta_text} lost {pl}%"));
    if !rta.is_nan() {
        let mut p = Perf::new("rta", rta, "ms").bounds(Some(0.0), None);
        p.warn = Some(format!("{:.3}", s.warn.rta_ms));
        p.crit = Some(format!("{:.3}", s.crit.rta_ms));
        o.perf.push(p);
    }
    let mut p = Perf::new("pl", pl, "%");
    p.warn = Some(format!("{}", s.warn.loss_pct));
    p.crit = Some(format!("{}", s.crit.loss_pct));
    o.perf.push(p);
    if !rta.is_nan() {
        o.perf.push(Perf::new("rtmax", max, "ms"));
        o.perf.push(Perf::new("rtmin", min, "ms"));
    }
    o
}

fn ping(s: &Settings, host: &str, deadline: Instant) -> Result<Vec<f64>, Fail> {
    let addr = net::resolve(host, 0, s.family, deadline)?[0];
    let sock = EchoSocket::open(addr.is_ipv6())?;
    let id = (std::process::id() as u16) ^ (crate::base::clock::mono_ns() as u16);
    // A token in the payload tells our replies from other pings' on a raw socket.
    let token: u64 = (u64::from(std::process::id()) << 32) ^ crate::base::clock::mono_ns();
    let mut sent: HashMap<u16, Instant> = HashMap::new();
    let mut rtts = Vec::new();
    let start = Instant::now();
    let wait_after = Duration::from_secs_f64((s.crit.rta_ms / 1000.0).clamp(0.1, 10.0));
    let mut seq = 0u16;
    let mut last_err = None;
    loop {
        let now = Instant::now();
        let next_send = start + s.interval * u32::from(seq);
        if seq < s.packets && now >= next_send {
            match sock.send(addr.ip(), id, seq, token) {
                Ok(_) => {
                    sent.insert(seq, Instant::now());
                }
                Err(e) => last_err = Some(e),
            }
            seq += 1;
            continue;
        }
        let all_sent = seq >= s.packets;
        if all_sent && sent.is_empty() {
            break;
        }
        let last_sent_at = start + s.interval * u32::from(s.packets.saturating_sub(1));
        let stop = if all_sent {
            (last_sent_at + wait_after).min(deadline)
        } else {
            next_send.min(deadline)
        };
        if now >= stop {
            if all_sent || now >= deadline {
                break;
            }
            continue;
        }
        let ms = (stop - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut pfd = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut pfd, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)), Ok(n) if n > 0) {
            continue;
        }
        while let Some(r) = sock.recv(id) {
            let got = Instant::now();
            if r.token != token {
                continue;
            }
            if let Some(t) = sent.remove(&r.seq) {
                rtts.push((got - t).as_secs_f64() * 1000.0);
            }
        }
        if seq >= s.packets && sent.is_empty() {
            break;
        }
    }
    if rtts.is_empty() && seq > 0 && sent.is_empty() {
        if let Some(e) = last_err {
            return Err(Fail::Io(e));
        }
    }
    Ok(rtts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(
            Limit::parse("200,40%").unwrap(),
            Limit {
                rta_ms: 200.0,
                loss_pct: 40.0
            }
        );
        assert_eq!(Limit::parse("0.5ms,0%").unwrap().rta_ms, 0.5);
        for b in ["200", "x,1%", "1,101%", "-1,1%", ""] {
            assert!(Limit::parse(b).is_err(), "{b}");
        }
    }
}
