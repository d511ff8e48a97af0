//! hb-watch: receive on every channel, verify, detect, keep the table, report.

use crate::authkeys::{self, AuthKeys};
use crate::channel::{self, Channel};
use crate::config::{self, WatchSettings};
use crate::detector::{self, Detector};
use crate::events::Event;
use crate::exit::{ExitStatus, HasExitStatus};
use crate::hooks::HookRunner;
use crate::msg::Msg;
use crate::netlink::LinkWatch;
use crate::signals::Signals;
use crate::table::{self, TableWriter};
use crate::time::mono_ns;
use std::fmt;
use std::io::Write;
use std::os::unix::io::AsRawFd;

#[derive(Debug)]
pub enum Error {
    Config(config::Error),
    Keys(authkeys::Error),
    Channel(channel::Error),
    Table(table::Error),
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Config(e) => e.fmt(f),
            Error::Keys(e) => e.fmt(f),
            Error::Channel(e) => e.fmt(f),
            Error::Table(e) => e.fmt(f),
            Error::Io(m) => f.write_str(m),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Config(e) => e.exit_status(),
            Error::Keys(e) => e.exit_status(),
            Error::Channel(e) => e.exit_status(),
            Error::Table(e) => e.exit_status(),
            Error::Io(_) => ExitStatus::Failure,
        }
    }
}

/// What the receive path does with one datagram: parse, verify, apply. Kept apart
/// from the sockets so that it can be benchmarked and fuzzed.
pub struct Intake {
    pub keys: AuthKeys,
    pub detector: Detector,
    scratch: Vec<u8>,
    /// Rejections that could not be pinned on a node, per channel.
    pub unattributed: [u64; table::MAX_CHANNELS],
}

impl Intake {
    pub fn new(keys: AuthKeys, detector: Detector) -> Intake {
        Intake {
            keys,
            detector,
            scratch: Vec::with_capacity(1024),
            unattributed: [0; table::MAX_CHANNELS],
        }
    }

    /// Handle one datagram received on `chan` at `now`. Returns why it was refused.
    pub fn packet(&mut self, now: u64, chan: usize, data: &[u8]) -> Result<(), &'static str> {
        let msg = match Msg::parse(data) {
            Ok(m) => m,
            Err(e) => {
                self.unattributed[chan.min(table::MAX_CHANNELS - 1)] += 1;
                return Err(e.as_str());
            }
        };
        if let Err(r) = msg.verify(&self.keys, &mut self.scratch) {
            if !self.detector.count_reject(chan, msg.get_str("src")) {
                self.unattributed[chan.min(table::MAX_CHANNELS - 1)] += 1;
            }
            return Err(r.as_str());
        }
        match self.detector.accept(now, chan, &msg) {
            Ok(()) => Ok(()),
            Err(r) => {
                if matches!(
                    r,
                    detector::Refusal::NoSource | detector::Refusal::UnknownNode | detector::Refusal::Full
                ) {
                    self.unattributed[chan.min(table::MAX_CHANNELS - 1)] += 1;
                }
                Err(r.as_str())
            }
        }
    }
}

struct Output {
    json: bool,
    broken: bool,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Output {
    fn emit(&mut self, ev: &Event) {
        if self.broken {
            return;
        }
        let line = if self.json { ev.to_json() } else { ev.to_line() };
        if writeln!(self.out, "{line}").is_err() {
            self.broken = true;
            crate::log::warn("stdout is closed; events go on to the hook, the notified processes and the table only");
        }
    }
    fn flush(&mut self) {
        if !self.broken && self.out.flush().is_err() {
            self.broken = true;
            crate::log::warn("stdout is closed; events go on to the hook, the notified processes and the table only");
        }
    }
}

/// Keep each broadcast channel's kernel filter in step with this node's addresses.
fn refresh_filters(channels: &[Channel]) {
    for c in channels {
        if c.spec.mode == crate::config::Mode::Bcast {
            if let Err(e) = c.set_own_filter(&c.own_addrs()) {
                crate::log::warn(&format!(
                    "channel {}: cannot filter our own broadcasts: {e}",
                    c.spec.name
                ));
            }
        }
    }
}

fn detector_config(s: &WatchSettings) -> detector::Config {
    detector::Config {
        local: s.cluster.node.clone(),
        channels: s.cluster.channels.iter().map(|c| c.name.clone()).collect(),
        deadtime_ns: s.deadtime.as_nanos() as u64,
        warntime_ns: s.warntime.as_nanos() as u64,
        initdead_ns: s.initdead.as_nanos() as u64,
        nodes: s.cluster.nodes.clone(),
        capacity: s.max_nodes,
    }
}

/// Run hb-watch until stopped. `reload` re-reads the settings on SIGHUP.
pub fn run(mut s: WatchSettings, reload: impl Fn() -> Result<WatchSettings, config::Error>) -> Result<(), Error> {
    let keys = AuthKeys::load(&s.cluster.keys).map_err(Error::Keys)?;
    let channels = s
        .cluster
        .channels
        .iter()
        .map(|c| Channel::open_receiver(c, s.cluster.port))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Channel)?;
    let mut links = LinkWatch::open().map_err(|e| Error::Io(format!("netlink: {e}")))?;
    let signals = Signals::install().map_err(|e| Error::Io(format!("signals: {e}")))?;
    let names: Vec<String> = s.cluster.channels.iter().map(|c| c.name.clone()).collect();
    let mut tw = TableWriter::create(&s.cluster.table, s.max_nodes, &names, &s.cluster.node).map_err(Error::Table)?;
    let seed = tw.existing();
    tw.clear();
    let now = mono_ns();
    let mut intake = Intake::new(keys, Detector::new(detector_config(&s), now, &seed));
    if s.realtime {
        crate::sender::go_realtime();
    }
    crate::log::info(&format!(
        "node {}: watching {} channel(s), deadtime {}, table {}",
        s.cluster.node,
        channels.len(),
        crate::duration::format(s.deadtime),
        s.cluster.table.display()
    ));
    let mut hooks = HookRunner::new(s.exec.clone());
    let mut out = Output {
        json: s.json,
        broken: false,
        out: std::io::BufWriter::new(std::io::stdout()),
    };
    let mut bufs: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; crate::msg::MAX_MSG + 1]).collect();
    let mut got = vec![channel::Received::default(); bufs.len()];
    refresh_filters(&channels);
    // After a wake-up that found several datagrams, leave the sockets alone this long
    // so that the rest of a burst (many nodes at once) costs one wake-up, not one each.
    // Arrival times come from the kernel, and every deadline drains the sockets
    // first, so the batching delays no detection.
    let window = (s.deadtime.as_nanos() as u64 / 16).min(2_000_000);
    let mut quiet_until = 0u64;
    let mut last_drain = vec![crate::time::mono_ns(); channels.len()];
    let mut changes = Vec::new();
    let mut reported_unattributed = [0u64; table::MAX_CHANNELS];
    let nfixed = 2;
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(channels.len() + nfixed);
    fds.push(libc::pollfd {
        fd: signals.fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    fds.push(libc::pollfd {
        fd: links.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    for c in &channels {
        fds.push(libc::pollfd {
            fd: c.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    loop {
        let before = mono_ns();
        let quiet = before < quiet_until;
        for (i, f) in fds.iter_mut().enumerate() {
            f.revents = 0;
            if i >= nfixed {
                f.events = if quiet { 0 } else { libc::POLLIN };
            }
        }
        // Hooks are reaped on SIGCHLD, but a short wait also covers a missed one.
        let mut deadline = intake.detector.next_deadline();
        if hooks.busy() {
            deadline = deadline.min(before + 50_000_000);
        }
        if quiet {
            deadline = deadline.min(quiet_until);
        }
        crate::sender::wait(&mut fds, deadline);
        let now = mono_ns();
        // Kernel stamps are CLOCK_REALTIME: carry them over to the monotonic clock.
        let real_minus_mono = crate::time::real_ns().wrapping_sub(now);
        if fds[0].revents != 0 {
            signals.drain();
        }
        if signals.stop() {
            out.flush();
            hooks.finish(std::time::Duration::from_secs(2));
            crate::log::info("stopping");
            return Ok(());
        }
        if fds[1].revents != 0 {
            changes.clear();
            if let Err(e) = links.read(&mut changes) {
                crate::log::warn(&format!("netlink: {e}"));
            }
            let mut addrs = false;
            for ch in &changes {
                match *ch {
                    crate::netlink::LinkChange::Carrier { ifindex, carrier } => {
                        for (i, c) in channels.iter().enumerate() {
                            if c.ifindex == ifindex && intake.detector.carrier_down(i) == carrier {
                                let word = if carrier { "up" } else { "lost" };
                                crate::log::info(&format!("channel {}: carrier {word}", c.spec.name));
                                intake.detector.carrier(now, i, carrier);
                            }
                        }
                    }
                    crate::netlink::LinkChange::Addresses => addrs = true,
                }
            }
            if addrs {
                refresh_filters(&channels);
            }
        }
        // At a deadline, drain every socket first: what already arrived counts.
        let at_deadline = now >= intake.detector.next_deadline();
        let mut drained = 0usize;
        for (i, c) in channels.iter().enumerate() {
            if fds[nfixed + i].revents == 0 && !at_deadline && !(quiet && now >= quiet_until) {
                continue;
            }
            loop {
                let n = match c.recv_many(&mut bufs, &mut got) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        crate::log::warn(&format!("channel {}: {e}", c.spec.name));
                        break;
                    }
                };
                drained += n;
                for (k, g) in got[..n].iter().enumerate() {
                    let res = if g.truncated {
                        intake.unattributed[i] += 1;
                        Err("too-large")
                    } else {
                        let arrived = if g.stamp_real_ns == 0 {
                            now
                        } else {
                            // Whatever the stamp says (the wall clock may have been
                            // stepped), the datagram came after this socket was last
                            // emptied and before now.
                            g.stamp_real_ns.wrapping_sub(real_minus_mono).clamp(last_drain[i], now)
                        };
                        intake.packet(arrived, i, &bufs[k][..g.len])
                    };
                    if let Err(why) = res {
                        if crate::log::enabled(crate::log::Level::Debug) {
                            crate::log::debug(&format!("channel {}: rejected a packet: {why}", c.spec.name));
                        }
                    }
                }
                if n < bufs.len() {
                    break;
                }
            }
            last_drain[i] = now;
        }
        // Only a wake-up that found a burst waiting is worth a window: a lone
        // datagram (a small cluster) would pay a timer wake-up for nothing.
        if drained >= 2 {
            quiet_until = now + window;
        }
        intake.detector.tick(now);
        let mut any = false;
        for ev in intake.detector.drain_events() {
            any = true;
            out.emit(&ev);
            hooks.push(&ev);
            for t in &s.notify {
                if let Err(e) = t.send() {
                    crate::log::warn(&format!("notify: {e}"));
                }
            }
        }
        if any {
            out.flush();
        }
        intake.detector.take_dirty(|slot, rec| {
            if let Err(e) = tw.write(slot, rec) {
                crate::log::error(&format!("table: {e}"));
            }
        });
        for (i, (&u, r)) in intake
            .unattributed
            .iter()
            .zip(reported_unattributed.iter_mut())
            .enumerate()
        {
            tw.count_rejects(i, u - *r);
            *r = u;
        }
        if signals.take_child() || hooks.busy() {
            hooks.pump();
        }
        if signals.take_reload() {
            match reload() {
                Ok(ns) => {
                    if ns.cluster.channels != s.cluster.channels
                        || ns.cluster.port != s.cluster.port
                        || ns.cluster.table != s.cluster.table
                    {
                        crate::log::warn("reload: channel and table changes take effect at the next start");
                    }
                    match AuthKeys::load(&ns.cluster.keys) {
                        Ok(k) => intake.keys = k,
                        Err(e) => crate::log::error(&format!("reload: {e}; keeping the old keys")),
                    }
                    intake
                        .detector
                        .set_timing(ns.deadtime.as_nanos() as u64, ns.warntime.as_nanos() as u64, now);
                    hooks.set_program(ns.exec.clone());
                    out.json = ns.json;
                    s.notify = ns.notify.clone();
                    s.exec = ns.exec.clone();
                    crate::log::info("configuration reloaded");
                }
                Err(e) => crate::log::error(&format!("reload: {e}; keeping the running configuration")),
            }
        }
        if signals.take_dump() {
            for r in intake.detector.records() {
                crate::log::info(&crate::status::one_line(r, &names, now));
            }
        }
    }
}
