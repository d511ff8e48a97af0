//! hb-send: heartbeats and FIFO messages out on every channel.

use crate::base::clock::mono_ns;
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::runloop::RunLoop;
use crate::config;
use crate::table::{TableReader, MAX_CHANNELS};
use crate::tools::hb_send::settings::SendSettings;
use crate::wire::authkeys::{self, AuthKeys};
use crate::wire::channel::{self, Channel};
use crate::wire::fifo::{self, FieldBuf, Fifo};
use crate::wire::msg::Builder;
use crate::wire::{valid_held, HELD, PINGS};
use std::fmt;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub enum Error {
    Config(config::Error),
    Keys(authkeys::Error),
    Channel(channel::Error),
    Generation(crate::wire::generation::Error),
    Fifo(fifo::Error),
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Config(e) => e.fmt(f),
            Error::Keys(e) => e.fmt(f),
            Error::Channel(e) => e.fmt(f),
            Error::Generation(e) => e.fmt(f),
            Error::Fifo(e) => e.fmt(f),
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
            Error::Generation(e) => e.exit_status(),
            Error::Fifo(e) => e.exit_status(),
            Error::Io(_) => ExitStatus::Failure,
        }
    }
}

/// A stable 16-byte UUID for a node name (Heartbeat peers want a `srcuuid`).
pub fn node_uuid(name: &str) -> [u8; 16] {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("hakit-node-uuid:{name}").as_bytes());
    let mut u = [0u8; 16];
    u.copy_from_slice(&h[..16]);
    u[6] = (u[6] & 0x0f) | 0x80; // version 8 (name-based, custom hash)
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

struct Sender {
    s: SendSettings,
    keys: AuthKeys,
    channels: Vec<Channel>,
    gen: u64,
    seq: u64,
    status: String,
    /// What this node says it holds (set through the FIFO), in every heartbeat.
    held: String,
    /// Our ping nodes as our hb-watch last wrote them: (reachable, configured).
    pings: Option<(u16, u16)>,
    uuid: [u8; 16],
    table: Option<TableReader>,
    table_retry_ns: u64,
    table_warned: bool,
    view_offset: usize,
    load: String,
    load_at: u64,
    sent: u64,
    failed: u64,
    out: Vec<u8>,
    /// When the next heartbeat is due (CLOCK_MONOTONIC ns), and how many were sent.
    next: u64,
    beats: u64,
    /// Heartbeats the second thread sent because the main one was held up.
    by_second: u64,
}

impl Sender {
    fn load_avg(&mut self, now: u64) -> &str {
        if now >= self.load_at {
            self.load = std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            self.load_at = now + 1_000_000_000;
        }
        &self.load
    }

    /// This node's view, from the local table: who it hears, on which channels, how
    /// long ago.
    fn view(&mut self, now: u64) -> String {
        if self.table.is_none() && now >= self.table_retry_ns {
            self.table = match TableReader::open(&self.s.cluster.table) {
                Ok(t) => Some(t),
                Err(e) => {
                    // Missing until hb-watch starts is normal; anything else is said once.
                    let missing =
                        matches!(&e, crate::table::Error::Io(_, io) if io.kind() == std::io::ErrorKind::NotFound);
                    if !missing && !self.table_warned {
                        crate::base::log::warn(&format!("{e}; heartbeats carry no view until it is usable"));
                        self.table_warned = true;
                    }
                    None
                }
            };
            self.table_retry_ns = now + 1_000_000_000;
        }
        let mut out = String::new();
        let Some(t) = &mut self.table else {
            self.pings = None;
            return out;
        };
        if now >= self.table_retry_ns {
            // A restarted hb-watch may have grown the file: look once a second.
            let _ = t.refresh();
            self.table_retry_ns = now + 1_000_000_000;
        }
        let n = t.count();
        let mut words = [0u64; crate::table::RECORD_WORDS];
        // Slot 0 is the local node: hb-watch measures our ping nodes, our heartbeats
        // say how many answer.
        self.pings = match t.read_raw(0, &mut words) {
            Ok(true) => {
                let r = crate::table::decode(&words);
                (r.is_local() && r.pings_total > 0).then_some((r.pings_up, r.pings_total))
            }
            _ => None,
        };
        let start = if n > 0 { self.view_offset % n } else { 0 };
        let mut next = start;
        for i in 0..n {
            let slot = (start + i) % n;
            match t.read_raw(slot, &mut words) {
                Ok(true) => {}
                Ok(false) => break,
                // Half written by a writer that died: not heard by anyone we know of.
                Err(_) => continue,
            }
            let r = crate::table::decode(&words);
            if r.is_local() || r.is_ping() {
                continue;
            }
            let mut mask = 0u8;
            let mut last = 0u64;
            for (c, l) in r.links.iter().enumerate().take(MAX_CHANNELS) {
                if l.state.alive() {
                    mask |= 1 << c;
                    last = last.max(l.last_heard_ns);
                }
            }
            if mask == 0 {
                continue;
            }
            if !crate::wire::hv::push(&mut out, &r.name, mask, now.saturating_sub(last) / 1_000_000) {
                next = slot;
                break;
            }
            next = slot + 1;
        }
        self.view_offset = next;
        out
    }

    fn stamp_and_send(&mut self, b: &mut Builder, now: u64) {
        self.seq += 1;
        let ld = self.load_avg(now).to_string();
        let ttl = 1 + self.s.cluster.nodes.len().max(2);
        b.add("src", &self.s.cluster.node)
            .add_binary("srcuuid", &self.uuid)
            .add("seq", &format!("{:x}", self.seq))
            .add("hg", &format!("{:x}", self.gen))
            .add("ts", &format!("{:x}", crate::base::clock::unix_ms() / 1000))
            .add("ld", &ld)
            .add("ttl", &ttl.to_string());
        b.finish(&self.keys, &mut self.out);
        for _ in 0..=self.s.redundancy {
            for c in &self.channels {
                self.failed += c.send(&self.out) as u64;
                self.sent += c.dests().len() as u64;
            }
        }
    }

    /// Send the heartbeat if it is due and schedule the next; true when --count is
    /// reached.
    fn beat_if_due(&mut self, now: u64) -> bool {
        if now < self.next {
            return false;
        }
        let st = self.status.clone();
        self.heartbeat(now, &st);
        self.beats += 1;
        let ka = self.s.keepalive.as_nanos() as u64;
        self.next += ka;
        if self.next <= now {
            // We fell behind (stopped, or starved): do not send a burst.
            self.next = now + ka;
        }
        self.s.count.is_some_and(|c| self.beats >= c)
    }

    fn heartbeat(&mut self, now: u64, status: &str) {
        let view = self.view(now);
        let mut b = Builder::new();
        b.add("t", "status")
            .add("st", status)
            .add("dt", &format!("{:x}", self.s.deadtime.as_millis()))
            .add("protocol", "1");
        if !view.is_empty() {
            b.add(crate::wire::hv::FIELD, &view);
        }
        // Also in the last one (`dead`): a peer fences a node that stopped holding.
        if !self.held.is_empty() {
            b.add(HELD, &self.held);
        }
        if let Some((up, total)) = self.pings {
            b.add(PINGS, &format!("{up}/{total}"));
        }
        self.stamp_and_send(&mut b, now);
    }

    fn fifo_message(&mut self, fields: Vec<FieldBuf>, now: u64) {
        let is_status = fields.iter().any(|(n, _, v)| n == "t" && v == "status");
        let get = |k: &str| fields.iter().find(|(n, _, _)| n == k).map(|(_, _, v)| v.clone());
        if is_status {
            // What a node announces about itself is hb-send's to keep: it goes into
            // every heartbeat from now on, not into one message.
            let (st, held) = (get("st"), get("held"));
            if st.is_none() && held.is_none() {
                return crate::base::log::warn("FIFO: a t=status message without st or held; dropped");
            }
            if let Some(st) = &st {
                if !crate::tools::hb_send::settings::valid_status(st) || st == "dead" {
                    return crate::base::log::warn(&format!(
                        "FIFO: status {st:?} refused (a status word other than dead: hb-send says dead when it stops); dropped"
                    ));
                }
            }
            if let Some(h) = &held {
                if let Err(why) = valid_held(h) {
                    return crate::base::log::warn(&format!("FIFO: held {h:?} refused: {why}; dropped"));
                }
            }
            if let Some(st) = st {
                if st != self.status {
                    crate::base::log::info(&format!("status {} -> {st} (from the FIFO)", self.status));
                    self.status = st;
                }
            }
            if let Some(h) = held {
                if h != self.held {
                    crate::base::log::info(&format!("holds {:?} -> {h:?} (from the FIFO)", self.held));
                    self.held = h;
                }
            }
            let st = self.status.clone();
            return self.heartbeat(now, &st);
        }
        let mut b = Builder::new();
        for (n, ty, v) in &fields {
            b.add_raw(n.as_bytes(), *ty, v.as_bytes());
        }
        if b.len() > crate::wire::msg::MAX_MSG - 1024 {
            crate::base::log::warn("FIFO: message too large for one datagram; dropped");
            return;
        }
        self.stamp_and_send(&mut b, now);
    }
}

/// Run hb-send until stopped. `reload` re-reads the settings on SIGHUP.
pub fn run(s: SendSettings, reload: impl Fn() -> Result<SendSettings, config::Error>) -> Result<(), Error> {
    let keys = AuthKeys::load(&s.cluster.keys).map_err(Error::Keys)?;
    let channels = s
        .cluster
        .channels
        .iter()
        .map(|c| Channel::open_sender(c, s.cluster.port))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Channel)?;
    let mut fifo = match &s.fifo {
        Some(p) => Some(Fifo::open(p, s.fifo_group).map_err(Error::Fifo)?),
        None => None,
    };
    let mut rl = RunLoop::new().map_err(|e| Error::Io(format!("signals: {e}")))?;
    // The generation is bumped last: a start that fails above does not use one up.
    let gen = crate::wire::generation::bump(&s.generation_file).map_err(Error::Generation)?;
    if s.realtime {
        crate::base::runloop::go_realtime();
    }
    crate::base::log::info(&format!(
        "node {} generation {gen}: heartbeat every {} on {} channel(s), deadtime {}, {} signed",
        s.cluster.node,
        crate::base::duration::format(s.keepalive),
        channels.len(),
        crate::base::duration::format(s.deadtime),
        keys.active_method().name()
    ));
    let mut me = Sender {
        uuid: node_uuid(&s.cluster.node),
        status: s.status.clone(),
        held: String::new(),
        pings: None,
        s,
        keys,
        channels,
        gen,
        seq: 0,
        table: None,
        table_retry_ns: 0,
        table_warned: false,
        view_offset: 0,
        load: String::new(),
        load_at: 0,
        sent: 0,
        failed: 0,
        out: Vec::with_capacity(1024),
        next: 0,
        beats: 0,
        by_second: 0,
    };
    me.next = mono_ns();
    let shared = Arc::new(Shared {
        sender: Mutex::new(me),
        stop: AtomicBool::new(false),
    });
    // A realtime node sends from a second thread on a second CPU as well: a CPU held
    // up for a while (a vCPU the host throttles, a cgroup over its quota: 100 ms here,
    // BENCHMARKS.md) would otherwise silence the node, and its peers would fail over.
    if shared.lock().s.realtime {
        spread(&shared);
    }
    // The second thread sees `stop` under the lock and sends nothing more; it is not
    // waited for (it may be asleep for a keepalive), the process ends with it.
    main_loop(&shared, &mut rl, &mut fifo, reload)
}

/// The sender, shared by the main loop and the second sending thread.
struct Shared {
    sender: Mutex<Sender>,
    /// Set (under the lock) before the last heartbeat, so that no `active` follows a
    /// `dead`.
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sender> {
        self.sender.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn main_loop(
    shared: &Shared,
    rl: &mut RunLoop,
    fifo: &mut Option<Fifo>,
    reload: impl Fn() -> Result<SendSettings, config::Error>,
) -> Result<(), Error> {
    loop {
        let next = shared.lock().next;
        let ready = rl.wait(&[fifo.as_ref().map(|f| f.as_fd())], next);
        // What may block (the FIFO, the files of a reload) is done before the lock is
        // taken: the second thread must never wait for the main thread's I/O.
        let msgs = match fifo {
            Some(f) if ready.has(0) => f.read_messages(),
            _ => Vec::new(),
        };
        let signals = rl.signals();
        let reloaded = signals.take_reload().then(|| {
            reload().map(|ns| {
                let keys = AuthKeys::load(&ns.cluster.keys);
                (ns, keys)
            })
        });
        let usr1 = signals.take_usr1();
        let stop = signals.stop();
        let now = mono_ns();
        let mut me = shared.lock();
        if shared.stop.load(Ordering::SeqCst) {
            // The second thread sent the last of --count.
            return Ok(());
        }
        // What scripts wrote before stopping us counts (a pair releases, then stops
        // hb-send: its last heartbeat must not still say it holds the address).
        for m in msgs {
            me.fifo_message(m, now);
        }
        if stop {
            shared.stop.store(true, Ordering::SeqCst);
            // Say goodbye so that peers fail over now rather than after deadtime.
            me.heartbeat(now, "dead");
            crate::base::log::info("stopping");
            return Ok(());
        }
        match reloaded {
            Some(Ok((ns, keys))) => {
                if ns.cluster.channels != me.s.cluster.channels || ns.cluster.port != me.s.cluster.port {
                    crate::base::log::warn("reload: channel changes take effect at the next start");
                }
                match keys {
                    Ok(k) => me.keys = k,
                    Err(e) => crate::base::log::error(&format!("reload: {e}; keeping the old keys")),
                }
                me.s.keepalive = ns.keepalive;
                me.s.deadtime = ns.deadtime;
                me.s.redundancy = ns.redundancy;
                crate::base::log::info("configuration reloaded");
            }
            Some(Err(e)) => crate::base::log::error(&format!("reload: {e}; keeping the running configuration")),
            None => {}
        }
        if usr1 {
            crate::base::log::info(&format!(
                "status {} generation {} seq {} datagrams sent {} failed {} heartbeats by the second thread {}",
                me.status, me.gen, me.seq, me.sent, me.failed, me.by_second
            ));
        }
        if me.beat_if_due(now) {
            shared.stop.store(true, Ordering::SeqCst);
            return Ok(());
        }
    }
}

/// Start the second sending thread, pinned to another CPU than the main thread (which
/// is pinned too: two threads the scheduler put on one CPU would stall together).
fn spread(shared: &Arc<Shared>) -> Option<()> {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    if cpus.len() < 2 {
        crate::base::log::info("one CPU: heartbeats are sent from one thread");
        return None;
    }
    let pin = |cpu: usize| {
        let mut set = CpuSet::new();
        set.set(cpu).ok()?;
        sched_setaffinity(Pid::from_raw(0), &set).ok()
    };
    pin(cpus[0])?;
    let sh = Arc::clone(shared);
    let second = cpus[1];
    std::thread::Builder::new()
        .name("hb-send-2".into())
        .spawn(move || {
            // Threads start as ordinary ones (SCHED_RESET_ON_FORK): this one asks again.
            let _ = pin(second);
            crate::base::runloop::fifo_this_thread();
            while !sh.stop.load(Ordering::SeqCst) {
                let next = sh.lock().next;
                // A little after the main thread: it sends when it can; this one when
                // the main thread's CPU did not let it.
                sleep_until(next + SECOND_AFTER_NS);
                let mut me = sh.lock();
                if sh.stop.load(Ordering::SeqCst) {
                    return;
                }
                let now = mono_ns();
                if now >= me.next {
                    me.by_second += 1;
                    if me.beat_if_due(now) {
                        sh.stop.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        })
        .ok()
        .map(drop)
}

/// How long after a heartbeat is due the second thread sends it if nobody has.
const SECOND_AFTER_NS: u64 = 200_000;

fn sleep_until(t: u64) {
    let ts = nix::sys::time::TimeSpec::from(std::time::Duration::from_nanos(t));
    let _ = nix::time::clock_nanosleep(
        nix::time::ClockId::CLOCK_MONOTONIC,
        nix::time::ClockNanosleepFlags::TIMER_ABSTIME,
        &ts,
    );
}
