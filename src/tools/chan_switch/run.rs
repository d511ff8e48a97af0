//! `chan-switch run`: the daemon. One poll loop over stdin (hb-watch's events), the
//! carrier of the channels' devices (rtnetlink) and the signals; the Active Stations
//! Table read after every batch of events; everything decided in [`Node`].

use super::msg;
use super::node::{Io, Node, Saved, Seen};
use super::routes;
use super::settings::RunSettings;
use super::status::{self, StatusFile};
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::fsio::{self, Durability};
use crate::base::runloop::RunLoop;
use crate::base::{clock, log};
use crate::events::read::{self, Lines};
use crate::events::Sink;
use crate::net::linkwatch::{LinkChange, LinkWatch};
use crate::net::route::{Routes, Rule};
use crate::table::TableReader;
use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A missing interface, a table of other channels: nothing was changed.
    Usage(String),
    /// The kernel refused, a file could not be written.
    Failed(String),
    /// stdin ended: hb-watch is gone.
    InputClosed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
            Error::InputClosed => f.write_str(
                "stdin closed: hb-watch is gone and no more news of the links will come; the routes are left as they are",
            ),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            _ => ExitStatus::Failure,
        }
    }
}

/// Neighbour entries on every LAN are refreshed this often, so that the first packet
/// after a switch finds its peer's MAC (a stale entry is probed again when touched).
const NEIGH_EVERY_NS: u64 = 5_000_000_000;

/// Files written off the loop: replacing a file can block for milliseconds (an fsync,
/// or a filesystem that discards the old blocks at the rename), and the loop must not
/// wait between applying an order and acknowledging it. The newest content of each path
/// wins; what must be on disk before the loop goes on (an epoch reservation) is written
/// in the loop instead.
struct Writer {
    tx: Option<std::sync::mpsc::Sender<(PathBuf, Vec<u8>, u32)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start() -> Result<Writer, Error> {
        let (tx, rx) = std::sync::mpsc::channel::<(PathBuf, Vec<u8>, u32)>();
        let thread = std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Everything queued meanwhile: only the newest of each file.
                    let mut batch = BTreeMap::new();
                    batch.insert(first.0.clone(), first);
                    while let Ok(next) = rx.try_recv() {
                        batch.insert(next.0.clone(), next);
                    }
                    for (path, bytes, mode) in batch.into_values() {
                        if let Err(e) = fsio::write_atomic(&path, &bytes, mode, Durability::Atomic) {
                            log::warn(&e);
                        }
                    }
                }
            })
            .map_err(|e| Error::Failed(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn write(&self, path: &Path, bytes: Vec<u8>, mode: u32) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((path.to_path_buf(), bytes, mode));
        }
    }

    /// Write what is queued, and stop.
    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct RealIo {
    routes: Routes,
    fifo: crate::wire::fifo::Writer,
    state: PathBuf,
    writer: Writer,
}

impl Io for RealIo {
    fn send(&mut self, block: &str) {
        self.fifo.write(block);
    }
    fn rules(&mut self, delete: &[Rule], add: &[Rule]) -> Result<(), String> {
        self.routes.change_rules(delete, add).map_err(|e| e.to_string())
    }
    fn save(&mut self, saved: &Saved, durable: bool) -> Result<(), String> {
        let text = serde_json::to_string(saved).map_err(|e| e.to_string())?;
        if durable {
            fsio::write_atomic(&self.state, text.as_bytes(), 0o644, Durability::Durable)
        } else {
            self.writer.write(&self.state, text.into_bytes(), 0o644);
            Ok(())
        }
    }
    fn now(&self) -> u64 {
        clock::mono_ns()
    }
}

fn load_saved(path: &Path) -> Saved {
    match fsio::read_trusted(path) {
        Ok(None) => Saved::default(),
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                let to = fsio::set_aside(path);
                log::warn(&format!(
                    "{}: {e}; set aside as {}, starting from epoch 0 (the others' reports raise it)",
                    path.display(),
                    to.display()
                ));
                Saved::default()
            }
        },
        Err(e) => {
            log::warn(&format!("{e}; starting without it"));
            Saved::default()
        }
    }
}

fn ifindex(dev: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(dev).ok().filter(|&i| i != 0)
}

/// Strict reverse-path filtering drops what comes back on the other LAN while the
/// nodes switch one after the other: say so once.
fn check_rp_filter(devs: &[String]) {
    let read = |d: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{d}/rp_filter"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let all = read("all");
    for d in devs {
        if all.max(read(d)) == 1 {
            log::warn(&format!(
                "net.ipv4.conf.{d}.rp_filter is strict (1): while the nodes switch one after the other, \
                 replies that come back on the other LAN are dropped; set it to 2 (loose)"
            ));
        }
    }
}

/// Read the table: every member peer's state and links, in our channel order.
fn read_table(reader: &mut Option<TableReader>, s: &RunSettings, said: &mut bool) -> Option<BTreeMap<String, Seen>> {
    if reader.is_none() {
        match TableReader::open(&s.table) {
            Ok(r) => *reader = Some(r),
            Err(e) => {
                if !*said {
                    log::warn(&format!("{e}; waiting for hb-watch to make it"));
                    *said = true;
                }
                return None;
            }
        }
    }
    let r = reader.as_mut()?;
    let _ = r.refresh();
    let h = r.header().ok()?;
    let map: Vec<Option<usize>> = s
        .channels
        .iter()
        .map(|c| h.channels.iter().position(|n| *n == c.name))
        .collect();
    if map.iter().any(|m| m.is_none()) && !*said {
        log::error(&format!(
            "the table's channels ({}) are not chan-switch's ({}): a channel missing there counts as dead",
            h.channels.join(", "),
            s.channel_names().join(", ")
        ));
        *said = true;
    }
    let mut out = BTreeMap::new();
    for rec in r.records().into_iter().flatten() {
        if rec.is_local() || rec.is_ping() || rec.name == s.node || !s.members.iter().any(|m| m.name == rec.name) {
            continue;
        }
        let links = map
            .iter()
            .map(|m| m.is_some_and(|i| rec.links[i].state.alive()))
            .collect();
        out.insert(
            rec.name.clone(),
            Seen {
                state: rec.state,
                links,
            },
        );
    }
    Some(out)
}

/// Take one event line of hb-watch's.
fn take_line(node: &mut Node, io: &mut RealIo, line: &str, now: u64) -> bool {
    let Ok(ev) = read::parse(line) else {
        return false;
    };
    if ev.event != "message" {
        // node-*, link-*: the table says the rest.
        return ev.event.starts_with("node-") || ev.event.starts_with("link-");
    }
    let from = ev.subject.as_str();
    // The sender as hb-send stamped it (a script cannot set `src`), and a member.
    if ev.get("src") != Some(from) || !node.s.members.iter().any(|m| m.name == from) {
        return false;
    }
    let names = node.names().to_vec();
    let bad = |what: &str, e: String| log::warn(&format!("a {what} from {from}: {e}; ignored"));
    match ev.get("t") {
        Some(msg::T_ORDER) => match msg::read_order(&ev.fields, &names) {
            Ok(o) => node.order_in(io, o, from, now),
            Err(e) => bad("chan-switch order", e),
        },
        Some(msg::T_STATE) => match msg::read_state(&ev.fields, &names) {
            Ok((r, age)) => node.state_in(io, r, age, from, now),
            Err(e) => bad("chan-state report", e),
        },
        Some(msg::T_REQUEST) => match msg::read_request(&ev.fields, &names) {
            Ok(to) => node.request(io, to, from, now),
            Err(e) => bad("chan-request", e),
        },
        _ => return false,
    }
    true
}

pub fn run(s: RunSettings, reload: impl Fn() -> Result<RunSettings, crate::config::Error>) -> Result<(), Error> {
    let mut rl = RunLoop::new().map_err(|e| Error::Failed(format!("cannot install the signal handlers: {e}")))?;
    // Everything is checked before anything is changed.
    let missing = crate::base::privilege::missing(&[crate::base::privilege::Cap::NetAdmin]);
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "switching routes needs CAP_NET_ADMIN; this process lacks {} (run as root, or grant it: AmbientCapabilities= in a unit, setpriv --ambient-caps)",
            crate::base::privilege::describe(&missing)
        )));
    }
    let mut ix = Vec::new();
    for c in &s.channels {
        ix.push(
            ifindex(&c.dev)
                .ok_or_else(|| Error::Usage(format!("channel {}: no interface {} on this node", c.name, c.dev)))?,
        );
    }
    let lo = ifindex("lo").ok_or_else(|| Error::Usage("no loopback interface".into()))?;
    check_rp_filter(&s.channels.iter().map(|c| c.dev.clone()).collect::<Vec<_>>());
    let mut routes = Routes::open().map_err(|e| Error::Failed(format!("rtnetlink: {e}")))?;
    let me = s.me().clone();
    let host = if me.addr.is_ipv4() { 32 } else { 128 };
    crate::net::addr::add(lo, me.addr, host, None)
        .map_err(|e| Error::Failed(format!("cannot put the cluster address {}/{host} on lo: {e}", me.addr)))?;
    install_tables(&mut routes, &s, &ix)?;
    // Every rule of ours, at any priority: one a run with another --rule-priority left
    // would otherwise outrank this one's (the first change deletes what is not wanted).
    let existing = routes
        .rules(0..=u32::MAX)
        .map_err(|e| Error::Failed(format!("cannot read the routing rules: {e}")))?;
    let saved = load_saved(&s.state);
    let now = clock::mono_ns();
    let pid_path = status::pid_path(&s.status_file);
    crate::base::pidfile::write(&pid_path, vec![])
        .map_err(|e| Error::Failed(format!("{}: {e}", pid_path.display())))?;
    let mut io = RealIo {
        routes,
        fifo: crate::wire::fifo::Writer::new(&s.fifo, "orders and reports"),
        state: s.state.clone(),
        writer: Writer::start()?,
    };
    let mut sink = Sink::stdout(s.json, "the routes are still switched");
    let mut node = Node::new(s, saved, now);
    node.rules_now = existing;
    node.start(&mut io, now).map_err(Error::Failed)?;
    let mut lw = LinkWatch::open().map_err(|e| Error::Failed(format!("rtnetlink (carrier): {e}")))?;
    let mut reader = None;
    let mut table_said = false;
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut changes = Vec::new();
    let mut next_neigh = now;
    let mut status_dirty = true;
    let stdin = std::io::stdin();
    let result = loop {
        let now = clock::mono_ns();
        if now >= next_neigh {
            touch(&mut io.routes, &node.s, &ix);
            next_neigh = now + NEIGH_EVERY_NS;
        }
        let deadline = node.next_deadline(now).min(next_neigh);
        let ready = rl.wait(&[Some(stdin.as_fd()), Some(lw.as_fd())], deadline);
        // The table is read at every keepalive too, not only after hb-watch's events.
        let due = clock::mono_ns() >= deadline;
        if rl.signals().stop() {
            break Ok(());
        }
        let now = clock::mono_ns();
        if rl.signals().take_reload() {
            match reload() {
                Ok(new) if !reloadable(&node.s, &new) => log::error(
                    "the node, channels, members, preferred channel, route tables or rule priority changed: \
                     restart chan-switch for that (the routes are built on them); the configuration in use is kept",
                ),
                Ok(new) => {
                    log::info("configuration reloaded");
                    sink.set_json(new.json);
                    node.reload(new);
                }
                Err(e) => log::error(&format!("{e}; the configuration in use is kept")),
            }
        }
        if rl.signals().take_usr1() {
            log::info(&status::summary(&node));
        }
        if rl.signals().take_usr2() {
            if let Some(to) = status::take_request(&node.s.status_file, node.names()) {
                let me = node.me().to_string();
                node.request(&mut io, to, &me, now);
            }
        }
        if ready.has(1) {
            changes.clear();
            if let Err(e) = lw.read(&mut changes) {
                log::warn(&format!("rtnetlink (carrier): {e}"));
            }
            for ch in &changes {
                if let LinkChange::Carrier { ifindex, carrier } = *ch {
                    if let Some(c) = ix.iter().position(|&i| i == ifindex) {
                        if carrier {
                            // An interface set down lost its routes with it.
                            if let Err(e) = install_tables(&mut io.routes, &node.s, &ix) {
                                log::error(&format!("{e}"));
                            }
                        }
                        node.carrier(&mut io, c, carrier, now);
                    }
                }
            }
        }
        let mut touched = false;
        if ready.has(0) {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) => break Err(Error::InputClosed),
                Ok(n) => {
                    for l in lines.feed(&buf[..n]).into_iter().flatten() {
                        touched |= take_line(&mut node, &mut io, &l, now);
                    }
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => break Err(Error::Failed(format!("stdin: {e}"))),
            }
        }
        if touched || reader.is_none() || due {
            if let Some(seen) = read_table(&mut reader, &node.s, &mut table_said) {
                node.table(&mut io, seen, now);
            }
        }
        node.decide(&mut io, now);
        status_dirty |= std::mem::take(&mut node.dirty);
        if !node.events.is_empty() {
            status_dirty = true;
            for ev in node.events.drain(..) {
                sink.emit(&ev);
            }
            sink.flush();
        }
        if status_dirty {
            status_dirty = false;
            match StatusFile::of(&node).render() {
                Ok(bytes) => io.writer.write(&node.s.status_file, bytes, 0o644),
                Err(e) => log::warn(&e),
            }
        }
    };
    if let Ok(bytes) = StatusFile::of(&node).render() {
        io.writer.write(&node.s.status_file, bytes, 0o644);
    }
    io.writer.finish();
    result
}

/// What a reload may change: timing and policy, not what the routes are built on.
fn reloadable(old: &RunSettings, new: &RunSettings) -> bool {
    old.node == new.node
        && old.channels == new.channels
        && old.members == new.members
        && old.preferred == new.preferred
        && old.route_table == new.route_table
        && old.rule_priority == new.rule_priority
}

fn install_tables(routes: &mut Routes, s: &RunSettings, ix: &[u32]) -> Result<(), Error> {
    routes.replace(&routes::tables(s, ix)).map_err(|e| {
        Error::Failed(format!(
            "cannot install the routes of tables {}..{}: {e}",
            s.route_table,
            s.route_table + ix.len() as u32 - 1
        ))
    })
}

/// Keep the neighbour entry of every peer on every LAN fresh.
fn touch(routes: &mut Routes, s: &RunSettings, ix: &[u32]) {
    let which: Vec<(u32, std::net::IpAddr)> = s
        .members
        .iter()
        .filter(|m| m.name != s.node)
        .flat_map(|m| ix.iter().enumerate().map(move |(c, &i)| (i, m.via[c])))
        .collect();
    if let Err(e) = routes.touch_neighbours(&which) {
        log::debug(&format!("neighbours: {e}"));
    }
}
