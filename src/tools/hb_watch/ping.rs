//! Ping nodes (Heartbeat's `ping`, the ground truth ipfail decides by): addresses on
//! the service network pinged every interval. A ping node is up from its first reply
//! and dead after its deadtime without one; each is a record in the table (flagged as a
//! ping node) and the local record counts how many answer, which hb-send puts in this
//! node's heartbeats (`pn`).

use crate::net::icmp::EchoSocket;
use crate::tools::hb_watch::detector::Detector;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

struct Target {
    ip: IpAddr,
    slot: usize,
    /// The last reply (CLOCK_MONOTONIC ns), or when pinging began.
    heard_ns: u64,
    up: bool,
}

pub struct Pinger {
    targets: Vec<Target>,
    v4: Option<EchoSocket>,
    v6: Option<EchoSocket>,
    id: u16,
    seq: u16,
    token: u64,
    interval_ns: u64,
    deadtime_ns: u64,
    next_send_ns: u64,
}

impl Pinger {
    /// Ping `ips` (already added to the detector as ping nodes, in `slots`).
    pub fn new(
        ips: &[IpAddr],
        slots: &[usize],
        interval: Duration,
        deadtime: Duration,
        now: u64,
    ) -> Result<Pinger, String> {
        let open = |v6: bool| -> Result<Option<EchoSocket>, String> {
            if !ips.iter().any(|ip| ip.is_ipv6() == v6) {
                return Ok(None);
            }
            EchoSocket::open(v6).map(Some).map_err(|e| {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    let missing = crate::base::privilege::missing(&[crate::base::privilege::Cap::NetRaw]);
                    format!(
                        "ping nodes: no ICMP socket (outside net.ipv4.ping_group_range, and {} is missing)",
                        crate::base::privilege::describe(&missing)
                    )
                } else {
                    format!("ping nodes: no ICMP socket: {e}")
                }
            })
        };
        Ok(Pinger {
            targets: ips
                .iter()
                .zip(slots)
                .map(|(&ip, &slot)| Target {
                    ip,
                    slot,
                    heard_ns: now,
                    up: false,
                })
                .collect(),
            v4: open(false)?,
            v6: open(true)?,
            id: (std::process::id() as u16) ^ 0x6862,
            seq: 0,
            // Our requests carry this plus the target's index: a raw socket sees
            // every ping on the host, and a stray reply must not revive a target.
            token: (u64::from(std::process::id()) << 32) ^ crate::base::clock::mono_ns(),
            interval_ns: interval.as_nanos() as u64,
            deadtime_ns: deadtime.as_nanos() as u64,
            next_send_ns: now,
        })
    }

    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.v4.iter().chain(self.v6.iter()).map(|s| s.as_fd()).collect()
    }

    /// When `run` has something to do next.
    pub fn next_deadline(&self) -> u64 {
        let judge = self
            .targets
            .iter()
            .filter(|t| t.up || t.heard_ns != 0)
            .map(|t| t.heard_ns + self.deadtime_ns)
            .min()
            .unwrap_or(u64::MAX);
        self.next_send_ns.min(judge)
    }

    /// Take the replies waiting, send what is due, and tell the detector of changes.
    pub fn run(&mut self, now: u64, det: &mut Detector) {
        for sock in [&self.v4, &self.v6].into_iter().flatten() {
            while let Some(r) = sock.recv(self.id) {
                let Some(i) = r
                    .token
                    .checked_sub(self.token)
                    .filter(|&i| (i as usize) < self.targets.len())
                else {
                    continue;
                };
                let t = &mut self.targets[i as usize];
                if r.from.is_some_and(|f| f != t.ip) {
                    continue;
                }
                t.heard_ns = now;
                if !t.up {
                    t.up = true;
                    det.ping_state(t.slot, true, now, &[]);
                }
            }
        }
        for t in &mut self.targets {
            // A target never heard is judged once, a deadtime after pinging began.
            if now >= t.heard_ns + self.deadtime_ns && (t.up || t.heard_ns != 0) {
                let silent_ms = (now - t.heard_ns) / 1_000_000;
                if t.up {
                    t.up = false;
                }
                det.ping_state(t.slot, false, now, &[("silent_ms", silent_ms.to_string())]);
                // Judged: wait for a reply (heard_ns 0 means "no deadline").
                t.heard_ns = 0;
            }
        }
        if now >= self.next_send_ns {
            self.seq = self.seq.wrapping_add(1);
            for (i, t) in self.targets.iter().enumerate() {
                let sock = if t.ip.is_ipv6() { &self.v6 } else { &self.v4 };
                if let Some(s) = sock {
                    // A send that fails (no route while a link is down) is a miss.
                    let _ = s.send(t.ip, self.id, self.seq, self.token + i as u64);
                }
            }
            self.next_send_ns = now + self.interval_ns;
        }
    }
}
