//! ipfake: take an address over (add, announce, keep announcing), release it, tell
//! which addresses are held — Fake and IPaddr2 rebuilt on netlink and AF_PACKET.
//!
//! A holder writes `ipfake.<ADDR>.pid` (pid, interface, prefix, whether it added the
//! address) in the pid directory; `down` and a new `up` find it there.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::pidfile::{self, PidRecord};
use crate::base::privilege::{self, Cap};
use crate::base::runloop::RunLoop;
use crate::net::addr::{self, Added};
use crate::net::arp::{self, Form, Link};
use crate::net::linkwatch::LinkChange;
use crate::tools::ipfake::cli::{DownArgs, FakeArgs, StatusArgs};
use crate::tools::ipfake::settings::MirrorOrder;
use crate::tools::ipfake::settings::Takeover;
use nix::sys::signal::Signal;
use pnet_base::MacAddr;
use std::fmt;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum Error {
    Usage(String),
    /// The capabilities missing.
    Privilege(String),
    Arp(arp::Error),
    InUse(IpAddr, MacAddr),
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Io(m) => f.write_str(m),
            Error::Privilege(m) => write!(
                f,
                "taking over an address needs CAP_NET_ADMIN and CAP_NET_RAW; this process lacks {m} (run as root, or grant them: AmbientCapabilities= in a unit, setpriv --ambient-caps)"
            ),
            Error::Arp(e) => e.fmt(f),
            Error::InUse(a, m) => write!(
                f,
                "{a} is in use by {m}; refusing to take it over (--force to take it anyway)"
            ),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) | Error::Privilege(_) => ExitStatus::Usage,
            Error::Arp(e) => e.exit_status(),
            Error::InUse(..) | Error::Io(_) => ExitStatus::Failure,
        }
    }
}

fn pid_path(dir: &Path, a: IpAddr) -> PathBuf {
    dir.join(format!("ipfake.{a}.pid"))
}

/// A holder as its pid file describes it: `PID STARTTIME`, the interface, the prefix
/// length, and whether it added the address (`added`) or found it there (`found`).
#[derive(Debug, Clone)]
struct Holder {
    proc: PidRecord,
    iface: String,
    prefix: u8,
    /// Whether the holder added the address (or took over from one that had): only
    /// then is it ours to remove.
    added: bool,
    /// For a pid file of an older ipfake (no start time): when it was written.
    legacy: Option<std::time::SystemTime>,
}

impl Holder {
    /// Alive and still the process that wrote the file (not a stranger that got its
    /// pid since). A pid file of an older ipfake (a bare pid, no start time) is
    /// believed if the process is an ipfake that started before the file was written.
    fn alive(&self) -> bool {
        match self.proc.start {
            Some(_) => self.proc.alive(),
            None => self
                .legacy
                .is_some_and(|written| pidfile::is_program_started_before(self.proc.pid, "ipfake", written)),
        }
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    let rec = match pidfile::read(path) {
        Ok(r) => r?,
        Err(m) => {
            crate::base::log::warn(&m);
            return None;
        }
    };
    let mut l = rec.extra.iter();
    let legacy = match rec.start {
        Some(_) => None,
        None => std::fs::symlink_metadata(path).and_then(|m| m.modified()).ok(),
    };
    Some(Holder {
        iface: l.next()?.trim().to_string(),
        prefix: l.next()?.trim().parse().ok()?,
        // An older ipfake did not say; it removed the address at `down`, and so do we.
        added: l.next().map(|s| s.trim() == "added").unwrap_or(legacy.is_some()),
        legacy,
        proc: rec,
    })
}

/// Stop a running holder and wait (at most 2 s) for it to release. An error if it
/// could not be signalled or did not stop: then nothing of its may be touched.
fn stop_holder(h: &Holder) -> Result<(), Error> {
    if !h.alive() || h.proc.pid == std::process::id() as i32 {
        return Ok(());
    }
    let signalled = if h.proc.start.is_some() {
        h.proc.signal(Signal::SIGTERM).map_err(Error::Io)?
    } else {
        // An older ipfake's bare pid, checked above by name and start: plain kill(2).
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(h.proc.pid), Signal::SIGTERM).is_ok()
    };
    if !signalled {
        return Ok(());
    }
    let end = Instant::now() + Duration::from_secs(2);
    while h.alive() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    if h.alive() {
        return Err(Error::Io(format!(
            "the holder (pid {}) did not stop within 2 s; leaving its address and pid file",
            h.proc.pid
        )));
    }
    Ok(())
}

/// The capabilities taking an address over needs, checked before anything is done.
fn need_caps() -> Result<(), Error> {
    let missing = privilege::missing(&[Cap::NetAdmin, Cap::NetRaw]);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Privilege(privilege::describe(&missing)))
    }
}

fn ifindex(name: &str) -> Result<u32, Error> {
    nix::net::if_::if_nametoindex(name).map_err(|_| Error::Usage(format!("no interface `{name}`")))
}

/// Broadcast and aimed announcements of `ip` at our MAC (ARP pairs, or IPv6
/// unsolicited neighbour advertisements).
fn announce(link: &mut Link, ip: IpAddr, routers: &[MacAddr]) -> Result<(), Error> {
    let mut frames = arp::frames_for(ip, Form::Both, link.mac, MacAddr::broadcast(), link.mac);
    for r in routers {
        frames.extend(arp::frames_for(ip, Form::Both, link.mac, *r, link.mac));
    }
    for f in &frames {
        link.send(f).map_err(Error::Arp)?;
    }
    Ok(())
}

/// `ipfake up --check`: what `up` refuses before it touches anything, short of the
/// privilege (a check may run unprivileged).
pub fn check(a: &Takeover) -> Result<(), Error> {
    ifindex(&a.iface).map(|_| ())
}

/// The announcements a holder owes its clients (see `up`).
struct Owed {
    left: u32,
    delivered: bool,
}

/// `ipfake up`: returns when released (SIGTERM/SIGINT) or, with --once, after the burst.
pub fn up(a: &Takeover, pid_dir: &Path) -> Result<(), Error> {
    let (addr, prefix) = a.addr;
    let ip = addr;
    need_caps()?;
    let index = ifindex(&a.iface)?;
    let mut link = Link::open(&a.iface, Duration::from_millis(10)).map_err(Error::Arp)?;
    if a.probe {
        let probe = match ip {
            IpAddr::V4(v4) => arp::probe(link.mac, v4).to_vec(),
            IpAddr::V6(v6) => crate::net::ndp::dad_probe(link.mac, v6),
        };
        let mut taken = None;
        for _ in 0..2 {
            link.send(&probe).map_err(Error::Arp)?;
            taken = link
                .watch_claims(ip, Instant::now() + Duration::from_millis(100))
                .map_err(Error::Arp)?;
            if taken.is_some() {
                break;
            }
        }
        if let Some(mac) = taken {
            if !a.force {
                return Err(Error::InUse(ip, mac));
            }
            crate::base::log::warn(&format!("{ip} is in use by {mac}; taking it over anyway (--force)"));
        }
    }
    let mut rl = RunLoop::new().map_err(|e| Error::Io(format!("signals: {e}")))?;
    if a.armed {
        crate::base::log::info(&format!("armed for {addr}/{prefix} on {}; SIGUSR1 takes it", a.iface));
        loop {
            rl.wait(&[], u64::MAX);
            if rl.signals().stop() {
                return Ok(());
            }
            if rl.signals().take_usr1() {
                break;
            }
        }
    }
    // Roll-forward: this node's answers flow before the address (and the clients)
    // come. Whatever ends the holding (a failure below, a stop) makes it a standby
    // again, so that it never answers beside the master.
    let mirror_err = |e: crate::tools::ipfake::mirror::Error| match e.exit_status() {
        ExitStatus::Usage => Error::Usage(e.to_string()),
        _ => Error::Io(e.to_string()),
    };
    if let Some(m) = &a.mirror {
        crate::tools::ipfake::mirror::run(m).map_err(mirror_err)?;
    }
    let unmirror = || {
        if let Some(MirrorOrder::Active { node, ports }) = &a.mirror {
            let back = MirrorOrder::Standby {
                node: node.clone(),
                ports: ports.clone(),
            };
            if let Err(e) = crate::tools::ipfake::mirror::run(&back) {
                crate::base::log::error(&format!("cannot make the mirror of {addr} a standby again: {e}"));
            }
        }
    };
    let pid_file = pid_path(pid_dir, addr);
    let old = read_holder(&pid_file);
    let added = old
        .as_ref()
        // Fake's rule: a new instance for the same address replaces the running one.
        .map_or(Ok(()), stop_holder)
        .and_then(|()| {
            addr::add(index, addr, prefix, a.label.as_deref())
                .map_err(|e| Error::Io(format!("cannot add {addr}/{prefix} to {}: {e}", a.iface)))
        });
    let added = match added {
        Ok(x) => x,
        Err(e) => {
            unmirror();
            return Err(e);
        }
    };
    // Found there, but left by a holder that had added it and died (SIGKILL, and a
    // restart): it is still ipfake's to remove.
    let ours = added == Added::Now || old.as_ref().is_some_and(|o| o.added);
    let release = |why: &str| {
        unmirror();
        if ours {
            if let Err(e) = addr::del(index, addr, prefix) {
                crate::base::log::error(&format!("cannot remove {addr}/{prefix} from {}: {e}", a.iface));
            }
        }
        // Only our own pid file (ours while it names our pid: we are alive): a new holder
        // that replaced us may have written its own.
        if read_holder(&pid_file).is_some_and(|h| h.proc.pid == std::process::id() as i32) {
            let _ = std::fs::remove_file(&pid_file);
        }
        crate::base::log::info(&format!("released {addr} ({why})"));
    };
    // A holder whose link loses its frames for now (a cable out for a moment) keeps
    // the address. Only a burst that never reached the clients is owed, and sent whole
    // once the link takes frames again; one that went out is not repeated after a
    // later blip: the clients have it, and a holder cut off may have been replaced
    // meanwhile (announcing again would pull them back to it). Only a one-shot
    // (--once) fails on it.
    let mut owed = Owed {
        left: 0,
        delivered: false,
    };
    let count = a.count.max(1);
    let say = |link: &mut Link, owed: &mut Owed| -> Result<(), Error> {
        match announce(link, ip, &a.routers) {
            Err(Error::Arp(e)) if e.is_transient() && !a.once => {
                if owed.left == 0 {
                    crate::base::log::warn(&format!("announcing {ip}: {e}; holding it and sending again"));
                }
                if !owed.delivered {
                    owed.left = count;
                }
                Ok(())
            }
            Ok(()) => {
                if owed.left > 0 {
                    owed.left -= 1;
                    owed.delivered = owed.left == 0;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    // From here on, a failure removes what was added: nothing is left half-done.
    let hold = (|| -> Result<(), Error> {
        // The first announcement before anything else: it is what clients wait for.
        say(&mut link, &mut owed)?;
        // A mirror standby's copy of the address on lo is not needed once it is held.
        crate::tools::ipfake::mirror::drop_lo_copy_after_up(ip);
        if !a.once {
            let how = if ours { "added" } else { "found" };
            pidfile::write(&pid_file, vec![a.iface.clone(), prefix.to_string(), how.into()]).map_err(Error::Io)?;
        }
        for _ in 1..a.count.max(1) {
            std::thread::sleep(a.interval);
            say(&mut link, &mut owed)?;
        }
        Ok(())
    })();
    if let Err(e) = hold {
        release("the takeover failed");
        return Err(e);
    }
    crate::base::log::info(&format!("holding {addr}/{prefix} on {}", a.iface));
    if a.once {
        link.detach_teardown();
        return Ok(());
    }
    // Sent whole; the carrier's first report says whether it went anywhere.
    owed.delivered = owed.left == 0;
    // The link's carrier: frames sent while it is out are lost without an error on
    // most devices (a veth, a NIC with its cable out), so its return owes the clients
    // the whole burst again.
    let mut watch = crate::net::linkwatch::LinkWatch::open()
        .map_err(|e| crate::base::log::warn(&format!("cannot watch the carrier of {}: {e}", a.iface)))
        .ok();
    let mut carrier: Option<bool> = None;
    let mut changes = Vec::new();
    let refresh = a.refresh.as_nanos() as u64;
    let retry = (a.interval.as_nanos() as u64).max(10_000_000);
    let mut next = crate::base::clock::mono_ns() + if refresh == 0 { u64::MAX / 2 } else { refresh };
    loop {
        let owing = owed.left > 0 && carrier != Some(false);
        let wake = if owing {
            next.min(crate::base::clock::mono_ns() + retry)
        } else {
            next
        };
        rl.wait(&[watch.as_ref().map(|w| w.as_fd())], wake);
        if rl.signals().stop() {
            release("stopped");
            return Ok(());
        }
        if let Some(w) = watch.as_mut() {
            changes.clear();
            if let Err(e) = w.read(&mut changes) {
                crate::base::log::warn(&format!("carrier of {}: {e}", a.iface));
            }
            for c in &changes {
                match *c {
                    LinkChange::Carrier { ifindex, carrier: up } if ifindex == index && Some(up) != carrier => {
                        let first = carrier.is_none();
                        carrier = Some(up);
                        if !up {
                            crate::base::log::warn(&format!("{} has no carrier; still holding {ip}", a.iface));
                            // Out from the start: the burst went nowhere.
                            if first {
                                owed.delivered = false;
                            }
                        } else if !first && !owed.delivered {
                            crate::base::log::info(&format!("{} has its carrier again; announcing {ip}", a.iface));
                            owed.left = count;
                        }
                    }
                    _ => {}
                }
            }
        }
        let now = crate::base::clock::mono_ns();
        // Nothing is sent into a link without its carrier: it would count towards a
        // burst that reaches nobody.
        if carrier != Some(false) && (owed.left > 0 || now >= next) {
            if let Err(e) = say(&mut link, &mut owed) {
                crate::base::log::warn(&format!("re-announcing {ip}: {e}"));
            }
        }
        if now >= next {
            next = now + refresh;
        }
    }
}

/// `ipfake down`: stop the holder, make sure the address is gone, optionally hand it
/// back to its owner's MAC.
pub fn down(a: &DownArgs, pid_dir: &Path) -> Result<(), Error> {
    let ip = a.addr;
    if a.owner_mac.is_some() {
        // It is announced: the same check as `up`'s.
        crate::net::addr::check_unicast(ip, None).map_err(|m| Error::Usage(format!("ADDR `{ip}`: {m}")))?;
    }
    need_caps()?;
    let pid_file = pid_path(pid_dir, a.addr);
    let holder = read_holder(&pid_file);
    if let Some(h) = &holder {
        stop_holder(h)?;
        let _ = std::fs::remove_file(&pid_file);
    }
    // A holder killed with SIGKILL left the address behind: remove it here — if it was
    // the holder that added it. One that was configured before stays.
    let iface = holder.as_ref().map(|h| h.iface.clone());
    if addr::present(a.addr) {
        if let Some(h) = holder.as_ref().filter(|h| h.added) {
            addr::del(ifindex(&h.iface)?, a.addr, h.prefix)
                .map_err(|e| Error::Io(format!("cannot remove {}: {e}", a.addr)))?;
        } else if holder.is_some() {
            crate::base::log::info(&format!("{} was configured before ipfake took it; leaving it", a.addr));
        } else {
            crate::base::log::warn(&format!(
                "{} is configured here but no ipfake holds it; leaving it",
                a.addr
            ));
        }
    }
    if let Some(mac) = a.owner_mac {
        let Some(iface) = iface else {
            return Err(Error::Usage(format!(
                "--owner-mac: no holder of {} recorded which interface to use",
                a.addr
            )));
        };
        let mut link = Link::open(&iface, Duration::from_millis(10)).map_err(Error::Arp)?;
        for f in arp::frames_for(ip, Form::Both, link.mac, MacAddr::broadcast(), mac) {
            link.send(&f).map_err(Error::Arp)?;
        }
    }
    Ok(())
}

/// `ipfake status`: print the addresses held here; the exit status answers for one.
pub fn status(a: &StatusArgs, pid_dir: &Path) -> ExitStatus {
    let mut held_asked = false;
    let mut entries: Vec<_> = std::fs::read_dir(pid_dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(addr) = name
            .strip_prefix("ipfake.")
            .and_then(|n| n.strip_suffix(".pid"))
            .and_then(|n| n.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let Some(h) = read_holder(&e.path()) else { continue };
        let live = h.alive() && addr::present(addr);
        if a.addr.is_none() || a.addr == Some(addr) {
            println!(
                "{addr}/{} dev {} pid {} {}",
                h.prefix,
                h.iface,
                h.proc.pid,
                if live {
                    "held"
                } else {
                    "stale (holder gone; `ipfake down` cleans up)"
                }
            );
        }
        if a.addr == Some(addr) && live {
            held_asked = true;
        }
    }
    match a.addr {
        Some(_) if !held_asked => ExitStatus::Failure,
        _ => ExitStatus::Success,
    }
}

/// `ipfake fake`: Fake's files, turned into `up` (Fake's loop: one announcement every
/// ARP_DELAY) or `down`.
pub fn fake(a: &FakeArgs, pid_dir: &Path) -> Result<(), Error> {
    let i = crate::tools::ipfake::fakecfg::load(a.rc.as_deref(), &a.ip).map_err(Error::Usage)?;
    let dir = i.pid_dir.clone().unwrap_or_else(|| pid_dir.to_path_buf());
    crate::tools::ipfake::settings::check_dir(&dir)
        .map_err(|m| Error::Usage(format!("PID_DIR {}: {m}", dir.display())))?;
    if a.remove {
        return down(
            &DownArgs {
                addr: i.addr,
                owner_mac: i.foreign_mac,
            },
            &dir,
        );
    }
    let up_args = Takeover {
        addr: (i.addr, i.prefix),
        iface: i.dev.clone(),
        label: i.label.clone(),
        count: 1,
        interval: i.arp_delay,
        refresh: i.arp_delay,
        routers: i.routers.clone(),
        probe: false,
        force: false,
        once: false,
        armed: false,
        mirror: None,
    };
    up(&up_args, &dir)
}
