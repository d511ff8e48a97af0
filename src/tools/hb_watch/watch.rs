//! hb-watch: receive on every channel, verify, detect, keep the table, report.

use crate::base::clock::mono_ns;
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::runloop::RunLoop;
use crate::config;
use crate::events::hooks::HookRunner;
use crate::events::Sink;
use crate::net::linkwatch::LinkWatch;
use crate::table::{self, TableWriter};
use crate::tools::hb_watch::detector::{self, Detector};
use crate::tools::hb_watch::floors;
use crate::tools::hb_watch::ping::Pinger;
use crate::tools::hb_watch::settings::WatchSettings;
use crate::wire::authkeys::{self, AuthKeys};
use crate::wire::channel::{self, Channel};
use crate::wire::msg::Msg;
use std::fmt;
use std::os::fd::AsFd;

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

/// Keep each broadcast channel's kernel filter in step with this node's addresses.
fn refresh_filters(channels: &[Channel]) {
    for c in channels {
        if c.spec.mode == crate::config::Mode::Bcast {
            if let Err(e) = c.set_own_filter(&c.own_addrs()) {
                crate::base::log::warn(&format!(
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

/// Everything hb-watch holds while it runs.
struct Watcher {
    s: WatchSettings,
    names: Vec<String>,
    channels: Vec<Channel>,
    links: LinkWatch,
    rl: RunLoop,
    table: TableWriter,
    intake: Intake,
    hooks: HookRunner,
    out: Sink,
    bufs: Vec<Vec<u8>>,
    got: Vec<channel::Received>,
    /// When each channel's socket was last emptied (CLOCK_MONOTONIC ns).
    last_drain: Vec<u64>,
    /// Sockets are left alone until then (see `window`).
    quiet_until: u64,
    window: u64,
    reported_unattributed: [u64; table::MAX_CHANNELS],
    pinger: Option<Pinger>,
    /// When the floors were last saved, and until when a failure to save is not
    /// logged again.
    floors_saved_ns: u64,
    floors_warned_ns: u64,
    /// Until when a stall of our own is not logged again.
    stall_warned_ns: u64,
}

/// A wake-up later than this after its deadline means we were not running.
const STALL_NS: u64 = 1_000_000;

/// The fixed sources at the head of the poll set: netlink, then the channels.
const NFIXED: usize = 1;

/// Run hb-watch until stopped. `reload` re-reads the settings on SIGHUP.
pub fn run(s: WatchSettings, reload: impl Fn() -> Result<WatchSettings, config::Error>) -> Result<(), Error> {
    let keys = AuthKeys::load(&s.cluster.keys).map_err(Error::Keys)?;
    let channels = s
        .cluster
        .channels
        .iter()
        .map(|c| Channel::open_receiver(c, s.cluster.port))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Channel)?;
    let links = LinkWatch::open().map_err(|e| Error::Io(format!("netlink: {e}")))?;
    let rl = RunLoop::new().map_err(|e| Error::Io(format!("signals: {e}")))?;
    let names: Vec<String> = s.cluster.channels.iter().map(|c| c.name.clone()).collect();
    let mut table =
        TableWriter::create(&s.cluster.table, s.max_nodes, &names, &s.cluster.node).map_err(Error::Table)?;
    let mut seed = table.existing();
    table.clear();
    // Floors from the disk too: the table is emptied by a reboot, they are not.
    match floors::load(&s.floors) {
        Ok(fl) => seed.extend(fl.into_iter().map(|f| table::NodeRecord {
            name: f.node,
            generation: f.gen,
            last_seq: f.seq,
            ..Default::default()
        })),
        Err(e) => {
            // Set aside rather than kept from starting: the table's records still
            // give a floor.
            let aside = crate::base::fsio::set_aside(&s.floors);
            crate::base::log::error(&format!(
                "{e}; set aside as {}, starting from the table's floors",
                aside.display()
            ));
        }
    }
    match floors::take_forgets(&s.floors) {
        Ok(names) => {
            for n in &names {
                crate::base::log::info(&format!("{n}: replay floor forgotten, as asked (hb-watch forget)"));
            }
            seed.retain(|r| !names.contains(&r.name));
        }
        Err(e) => crate::base::log::error(&format!("forget: {e}")),
    }
    let now = mono_ns();
    let mut detector = Detector::new(detector_config(&s), now, &seed);
    let ping_slots: Vec<usize> = s
        .ping
        .iter()
        .filter_map(|ip| detector.add_ping(&ip.to_string(), now))
        .collect();
    if ping_slots.len() != s.ping.len() {
        return Err(Error::Io(format!(
            "ping nodes: no room for {} in the table (raise max-nodes), or one is named like a node",
            s.ping.len()
        )));
    }
    let pinger = if s.ping.is_empty() {
        None
    } else {
        Some(Pinger::new(&s.ping, &ping_slots, s.ping_interval, s.ping_deadtime, now).map_err(Error::Io)?)
    };
    let intake = Intake::new(keys, detector);
    if s.realtime {
        crate::base::runloop::go_realtime();
    }
    crate::base::log::info(&format!(
        "node {}: watching {} channel(s), deadtime {}, table {}",
        s.cluster.node,
        channels.len(),
        crate::base::duration::format(s.deadtime),
        s.cluster.table.display()
    ));
    refresh_filters(&channels);
    let bufs: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; crate::wire::msg::MAX_MSG + 1]).collect();
    let mut w = Watcher {
        hooks: HookRunner::start(s.exec.clone(), s.hook_timeout, s.hook_queue),
        out: Sink::stdout(s.json, "the hook, the notified processes and the table still get them"),
        got: vec![channel::Received::default(); bufs.len()],
        bufs,
        last_drain: vec![now; channels.len()],
        quiet_until: 0,
        // After a wake-up that found several datagrams, leave the sockets alone this
        // long so that the rest of a burst (many nodes at once) costs one wake-up, not
        // one each. Arrival times come from the kernel, and every deadline drains the
        // sockets first, so the batching delays no detection.
        window: (s.deadtime.as_nanos() as u64 / 16).min(2_000_000),
        reported_unattributed: [0; table::MAX_CHANNELS],
        pinger,
        floors_saved_ns: now,
        floors_warned_ns: 0,
        stall_warned_ns: 0,
        s,
        names,
        channels,
        links,
        rl,
        table,
        intake,
    };
    // At once: a forget applied above is kept only once the floors are rewritten.
    w.save_floors(now, true);
    loop {
        let before = mono_ns();
        let quiet = before < w.quiet_until;
        let mut deadline = w.intake.detector.next_deadline();
        if quiet {
            deadline = deadline.min(w.quiet_until);
        }
        if let Some(p) = &w.pinger {
            deadline = deadline.min(p.next_deadline());
        }
        deadline = deadline.min(w.floors_saved_ns + floors::SAVE_EVERY.as_nanos() as u64);
        // During a batching window the channels are left alone (see `window`).
        let sources: Vec<_> = std::iter::once(Some(w.links.as_fd()))
            .chain(w.channels.iter().map(|c| (!quiet).then(|| c.as_fd())))
            .chain(w.pinger.iter().flat_map(|p| p.fds()).map(Some))
            .collect();
        // A deadline already past when we go to sleep (our own work ran late) is not
        // a stall: lateness counts from when we slept.
        let entered = mono_ns();
        let ready = w.rl.wait(&sources, deadline);
        drop(sources);
        let now = mono_ns();
        if w.rl.signals().stop() {
            w.save_floors(now, true);
            w.hooks.finish(std::time::Duration::from_secs(2));
            crate::base::log::info("stopping");
            return Ok(());
        }
        if ready.has(0) {
            w.netlink(now);
        }
        // At a deadline, drain every socket first: what already arrived counts.
        let drain_all = now >= w.intake.detector.next_deadline() || (quiet && now >= w.quiet_until);
        let mut drained = 0;
        for i in 0..w.channels.len() {
            if drain_all || ready.has(NFIXED + i) {
                drained += w.drain(i, now);
            }
        }
        // Only a wake-up that found a burst waiting is worth a window: a lone
        // datagram (a small cluster) would pay a timer wake-up for nothing.
        if drained >= 2 {
            w.quiet_until = now + w.window;
        }
        // Woken well after the deadline we slept for: we were not running (a stalled
        // VM, a higher-priority task). What arrived meanwhile is drained above; the
        // silence of the rest is not the peers' doing.
        let late = now.saturating_sub(deadline.max(entered));
        if late > STALL_NS {
            w.intake.detector.forgive(late, now);
            if now >= w.stall_warned_ns {
                w.stall_warned_ns = now + 60_000_000_000;
                crate::base::log::warn(&format!(
                    "hb-watch was not running for {} ms after a deadline (the host or a higher-priority task held \
                     the CPU); silence while away is not counted against any peer (logged once a minute)",
                    late / 1_000_000
                ));
            }
        }
        w.intake.detector.tick(now);
        if let Some(p) = &mut w.pinger {
            p.run(now, &mut w.intake.detector);
        }
        w.publish();
        if w.rl.signals().take_reload() {
            w.reload(&reload, now);
            w.apply_forgets();
        }
        let news = w.intake.detector.take_floors_news();
        w.save_floors(now, news);
        if w.rl.signals().take_usr1() {
            for r in w.intake.detector.records() {
                crate::base::log::info(&crate::tools::hb_watch::status::one_line(r, &w.names, now));
            }
        }
    }
}

impl Watcher {
    /// Carrier and address changes.
    fn netlink(&mut self, now: u64) {
        let mut changes = Vec::new();
        if let Err(e) = self.links.read(&mut changes) {
            crate::base::log::warn(&format!("netlink: {e}"));
        }
        let mut addrs = false;
        for ch in changes {
            match ch {
                crate::net::linkwatch::LinkChange::Carrier { ifindex, carrier } => {
                    for (i, c) in self.channels.iter().enumerate() {
                        if c.ifindex == ifindex && self.intake.detector.carrier_down(i) == carrier {
                            let word = if carrier { "up" } else { "lost" };
                            crate::base::log::info(&format!("channel {}: carrier {word}", c.spec.name));
                            self.intake.detector.carrier(now, i, carrier);
                        }
                    }
                }
                crate::net::linkwatch::LinkChange::Addresses => addrs = true,
            }
        }
        if addrs {
            refresh_filters(&self.channels);
        }
    }

    /// Take everything waiting on channel `i`; returns how many datagrams.
    fn drain(&mut self, i: usize, now: u64) -> usize {
        // Kernel stamps are CLOCK_REALTIME: carry them over to the monotonic clock.
        let real_minus_mono = crate::base::clock::real_ns().wrapping_sub(now);
        let mut drained = 0;
        loop {
            let n = match self.channels[i].recv_many(&mut self.bufs, &mut self.got) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::base::log::warn(&format!("channel {}: {e}", self.channels[i].spec.name));
                    break;
                }
            };
            drained += n;
            for (k, g) in self.got[..n].iter().enumerate() {
                let res = if g.truncated {
                    self.intake.unattributed[i] += 1;
                    Err("too-large")
                } else {
                    let arrived = if g.stamp_real_ns == 0 {
                        now
                    } else {
                        // Whatever the stamp says (the wall clock may have been stepped),
                        // the datagram came after this socket was last emptied and
                        // before now.
                        g.stamp_real_ns
                            .wrapping_sub(real_minus_mono)
                            .clamp(self.last_drain[i], now)
                    };
                    self.intake.packet(arrived, i, &self.bufs[k][..g.len])
                };
                if let Err(why) = res {
                    if crate::base::log::enabled(crate::base::log::Level::Debug) {
                        crate::base::log::debug(&format!(
                            "channel {}: rejected a packet: {why}",
                            self.channels[i].spec.name
                        ));
                    }
                }
            }
            if n < self.bufs.len() {
                break;
            }
        }
        self.last_drain[i] = now;
        drained
    }

    /// Changed records into the table, then events out (stdout, signals, hook): in that
    /// order, so that whoever an event wakes (chan-switch, a script) reads a table that
    /// already says it. The hook is only queued here (it runs on its own thread), so
    /// nothing waits for it.
    fn publish(&mut self) {
        let table = &mut self.table;
        self.intake.detector.take_dirty(|slot, rec| {
            if let Err(e) = table.write(slot, rec) {
                crate::base::log::error(&format!("table: {e}"));
            }
        });
        let mut any = false;
        for ev in self.intake.detector.drain_events() {
            any = true;
            self.out.emit(&ev);
            for t in &self.s.notify {
                if let Err(e) = t.send() {
                    crate::base::log::warn(&format!("notify: {e}"));
                }
            }
            self.hooks.push(&ev);
        }
        if any {
            self.out.flush();
        }
        for (i, (&u, r)) in self
            .intake
            .unattributed
            .iter()
            .zip(self.reported_unattributed.iter_mut())
            .enumerate()
        {
            self.table.count_rejects(i, u - *r);
            *r = u;
        }
    }

    /// Save the floors if asked to (`now_`), or if the last save is old; after the
    /// events are out, so that a durable write never delays one.
    fn save_floors(&mut self, now: u64, now_: bool) {
        if !now_ && now < self.floors_saved_ns + floors::SAVE_EVERY.as_nanos() as u64 {
            return;
        }
        self.floors_saved_ns = now;
        if let Err(e) = floors::save(&self.s.floors, &self.intake.detector.floors()) {
            if now >= self.floors_warned_ns {
                self.floors_warned_ns = now + 600_000_000_000;
                crate::base::log::error(&format!(
                    "floors: {e}; a reboot would let old heartbeats of a dead node back in"
                ));
            }
        }
    }

    /// `hb-watch forget NODE` leaves a request and sends SIGHUP.
    fn apply_forgets(&mut self) {
        match floors::take_forgets(&self.s.floors) {
            Ok(names) => {
                for n in names {
                    if self.intake.detector.forget(&n) {
                        crate::base::log::info(&format!("{n}: replay floor forgotten, as asked (hb-watch forget)"));
                    } else {
                        crate::base::log::warn(&format!("forget: no node {n} here"));
                    }
                }
            }
            Err(e) => crate::base::log::error(&format!("forget: {e}")),
        }
    }

    /// SIGHUP: timing, keys, hook, notify targets and output form change at once; a
    /// configuration that does not load keeps the running one.
    fn reload(&mut self, reload: &impl Fn() -> Result<WatchSettings, config::Error>, now: u64) {
        let ns = match reload() {
            Ok(ns) => ns,
            Err(e) => return crate::base::log::error(&format!("reload: {e}; keeping the running configuration")),
        };
        let c = &self.s.cluster;
        if ns.cluster.channels != c.channels || ns.cluster.port != c.port || ns.cluster.table != c.table {
            crate::base::log::warn("reload: channel and table changes take effect at the next start");
        }
        match AuthKeys::load(&ns.cluster.keys) {
            Ok(k) => self.intake.keys = k,
            Err(e) => crate::base::log::error(&format!("reload: {e}; keeping the old keys")),
        }
        self.intake
            .detector
            .set_timing(ns.deadtime.as_nanos() as u64, ns.warntime.as_nanos() as u64, now);
        self.hooks.configure(ns.exec.clone(), ns.hook_timeout);
        if ns.hook_queue != self.s.hook_queue {
            crate::base::log::warn("reload: a hook-queue change takes effect at the next start");
        }
        self.out.set_json(ns.json);
        self.s.notify = ns.notify.clone();
        self.s.exec = ns.exec.clone();
        self.s.hook_timeout = ns.hook_timeout;
        crate::base::log::info("configuration reloaded");
    }
}
