//! The nftables backend: a table of its own, `inet hakit_lvs` (and `netdev hakit_lvs`
//! for direct routing), changed all or nothing: one nf_tables netlink transaction of
//! set elements, or one `nft -f -` batch when chains change.
//!
//! # Layout (see `layout.rs`)
//!
//! A fixed skeleton, made once with nft, whose size does not grow with the services:
//! `pre` (nat prerouting) and `out` (nat output) look a connection's first packet up in
//! `svcs4` (address . protocol . port; `fsvcs4` by mark; 6 for IPv6), which counts it,
//! and go to `nat4`. There a service with a chain of its own (persistence) is sent to
//! it through the `chains4` verdict map; every other service is matched by the rule of
//! its scheduler's (kind, L): `ip daddr . meta l4proto . th dport @m4_inc_10 dnat ip to
//! ip daddr . meta l4proto . th dport . numgen inc mod 10 map @slots4`, one rule per
//! (kind, L) in use, made before the first element that needs it (an unused rule
//! matches nothing, so the visible change stays one element transaction) and removed
//! lazily once more than [`layout::LAZY_RULES`] are unused. Kinds: `inc` (numgen inc:
//! rr, wrr, and fo with L = 1), `sh` (jhash of the client: sh, and mh with L = 1021),
//! `dh` (jhash of the destination). `slots4` holds every service's slots (service .
//! slot → real server . port). `post` (nat postrouting, first packets only) counts each
//! connection in `dcnt4` (service . real server . port) and refreshes persistence.
//!
//! Per-service state is elements only: the service's record (`lvs-service ...`) is the
//! comment of its `svcs4` element, each real server's (`lvs-dest ...`) the comment of its
//! `dests4` element (apart from `dcnt4`, so that a weight change, which rewrites the
//! record, keeps the counter), its key in one membership set, its slots in `slots4`.
//! [`Nft::read`] dumps these sets over netlink (`read.rs`, no nft, no JSON).
//!
//! A change plays only on the services it names ([`Nft::plan`]), each alone, and is one
//! netlink transaction: the service's slots that differ deleted and added, its key moved
//! between membership sets when L changed, its records. Slots are not read back (the
//! slot maps are the most elements, and a set's dump walks the set from its start for
//! every part, so it is quadratic in the kernel): they are taken to be what the records
//! say, and a change to a service whose slots were not made by this process deletes and
//! adds all of them, so that one missing (drift) is refused by the kernel (ENOENT), the
//! slots are read for real and the change planned again. Conntrack carries every
//! connection after its first packet, so a slot rewrite (a weight to 0, a server
//! removed) never moves one.
//!
//! Persistence cannot be elements only: it needs a client's timed entry per real server
//! and a rule per live server that sends a known client back, with the service's mask
//! and timeout. A persistent service keeps a chain of its own (and `q_` in postrouting
//! to refresh its clients), made by nft; they are few in practice, and only a change to
//! one of them is an nft batch (with everything else of that commit in it, still one
//! transaction). Its records, counters and slots are elements like every service's.
//!
//! DR (ipvsadm's `-g`, nftlb's dsr): an ingress chain on the interface holding the VIP
//! dispatches to the service's chain there: open flows first (`ip saddr . th sport` in
//! each real server's timed flow set, quiescent servers included), then persistence,
//! then the scheduler as a verdict map to the real server's chain, which counts the new
//! flow, records it and rewrites the Ethernet addresses (`fwd to` the interface towards
//! the server, whose MAC comes from the neighbour table: see `dr.rs`). There is no
//! conntrack before that hook, hence the flow sets (900 s idle, refreshed per packet).
//! DR keeps chains per service and its records in rule comments, read with `nft -j`
//! only when the netdev table exists; a change to a DR service is an nft batch.
//!
//! # Schedulers
//!
//! rr: `numgen inc` over the live servers. wrr: `numgen inc` over IPVS's interleaved
//! weighted sequence (one cycle, Σw/gcd slots, scaled to 512 if longer): deterministic
//! and exact per cycle, where `numgen random` over weight ranges would be off by a few
//! percent over 1,000 connections by chance alone. sh, dh: jhash (fixed seed) over that
//! weighted list. mh: a Maglev table of 1021 entries filled by each server's
//! permutation, so a server that leaves remaps little more than its own share. fo: the
//! highest weight. lc, wlc, sed, nq, lblc, lblcr and ovf need per-connection state at
//! scheduling time and are refused; so are tunnels, local forwarding, thresholds (`ct
//! count` limits a rule, it cannot send the connection to another server), persistence
//! engines, one-packet scheduling and the sched flags.
//!
//! The `numgen inc` counter belongs to the rule, so the rr/wrr services of one (kind, L)
//! share it: a service alone alternates exactly (the tests), but services taking
//! connections in turn each see the counter advanced by the others; each still gets
//! every slot over time unless its arrivals are locked in step with another service's
//! (two services of L = 2 always hit in turn would each see one slot). IPVS keeps a
//! counter per service; a per-service counter needs a rule per service, which is what
//! made the old layout slow.
//!
//! # Why this layout (measured, 10,000 services × 4, wrr 1:2:3:4, 2 vCPU, others building)
//!
//! The old layout had a chain per service with its NAT rules: the load took 8–9 s, one
//! weight to 0 2.2–2.8 s, read 14.5 s, because (a) nft fetches and parses a cache of
//! every chain before any batch, (b) adding a rule with a NAT statement makes the kernel
//! validate the whole table, every service chain behind the dispatch map, (c) `nft -j
//! list` of it all. Before that: an anonymous map per service (17.7 s to load: the
//! kernel names each by scanning every set), and one verdict map for all (each element
//! checked against every rule bound to the map: 30 s per change). Now tens of rules are
//! bound to `slots4` and the table validates in microseconds.
//!
//! `cargo test --release --test lvs_nft figures -- --ignored --nocapture` (through
//! [`Nft::commit`], load average 1.4–5 during the runs, others building): the load in
//! one transaction 0.89–1.10 s (plan 0.17–0.25 s for 200,000 elements, the transaction
//! 0.5–0.7 s, the skeleton by nft 4 ms); [`Nft::read`] 0.27–0.30 s (0.46–0.69 s when it
//! also dumped `slots4`); one weight to 0 or back 0.04–0.17 ms (16 elements), 24–30 ms
//! when its (kind, L) rule is new (nft, once per L).
//! `sudo contrib/bench-lvs.py nft` (load 2.1–3.7): `-R` 1.6–2.1 s as a whole process
//! (about 1 s of it is playing the 50,000 changes on the model before the commit:
//! `Table::apply` finds a service by a linear search), `-S -n` 395–440 ms, `-L -n`
//! 383–457 ms, `-e` 308–375 ms as a whole process (mostly its read), `follow`: event in
//! → kernel → event out median 0.17–0.29 ms, max 24–26 ms (the first: its rule new).
//!
//! # What is approximate
//!
//! Counters: `conns` of services and real servers (new connections; DR: new flows).
//! A service's counter starts again when its record changes (`-E`: the element is
//! deleted and added); a real server's stays through weight changes. Packets, bytes
//! and rates are 0, and so are ActiveConn/InActConn: this kernel has no
//! /proc/net/nf_conntrack and there is no conntrack tool; ctnetlink is the way (not
//! done). Persistence refreshes at each new connection of the client (IPVS: while any
//! is open). A quiescent server's persistent clients are scheduled anew (IPVS's
//! `expire_quiescent_template`); removing a server drops its persistence. In DR, a
//! removed server's open flows are scheduled anew (no conntrack to keep them). Slots
//! drifted beyond a service's L are left (unreachable). Info: version 1.2.1 (the
//! semantics of ipvsadm's interface), size 0 (no connection table of its own:
//! conntrack holds the connections).

mod dr;
pub mod layout;
pub mod parse;
pub mod read;
pub mod sched;

use super::backend::{Backend, Error, Kind, Result};
use super::model::ServiceKey;
use super::model::{Change, Fwd, Info, Table, F_ONEPACKET, F_SCHED1, F_SCHED2, F_SCHED3};
use crate::base::proc::{self, Capture, Leftovers, Limits};
use crate::net::nftables::nft_path;
use crate::net::nftables::{Family, Nftables, TxError};
use layout::{Network, Plan, Present, LAZY_RULES, TABLE};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// What `-L` prints as the version: ipvsadm's interface, whose semantics this keeps.
pub const INFO: Info = Info {
    version: 0x010201,
    size: 0,
};

/// Whether this backend can work here (nft is installed).
pub fn available() -> bool {
    nft_path().is_some()
}

/// The nftables backend.
pub struct Nft {
    nft: PathBuf,
    present: Present,
    net: Box<dyn Network>,
    nl: Option<Nftables>,
}

impl Nft {
    pub fn open() -> Result<Nft> {
        Nft::with_network(Box::new(dr::Live))
    }

    /// With another view of the network (tests render DR batches without one).
    pub fn with_network(net: Box<dyn Network>) -> Result<Nft> {
        let nft = nft_path().ok_or_else(|| Error::Unavailable("nft is not installed (no nft on PATH)".into()))?;
        // Until read, nothing is known: a commit reads what is there first.
        Ok(Nft {
            nft,
            present: Present::default(),
            net,
            nl: None,
        })
    }

    fn nl(&mut self) -> Result<&mut Nftables> {
        if self.nl.is_none() {
            let mut nl =
                Nftables::open().map_err(|e| Error::Kernel(format!("cannot open an nf_tables netlink socket: {e}")))?;
            nl.set_timeout(Duration::from_secs(30));
            self.nl = Some(nl);
        }
        Ok(self.nl.as_mut().expect("opened above"))
    }

    fn run(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Result<(bool, String)> {
        let mut cmd = Command::new(&self.nft);
        cmd.args(args);
        let limits = Limits {
            timeout: Duration::from_secs(300),
            max_output: 1 << 30,
            capture: Capture::Both,
            leftovers: Leftovers::Kill,
        };
        let f = proc::run(cmd, stdin, &limits).map_err(|e| Error::Kernel(format!("cannot run nft: {e}")))?;
        if f.timed_out || f.truncated {
            return Err(Error::Kernel(format!("nft {}: {}", args.join(" "), f.how())));
        }
        Ok((f.code == Some(0), String::from_utf8_lossy(&f.output).into_owned()))
    }

    /// One nft batch, all or nothing.
    fn batch_text(&self, text: String) -> Result<()> {
        let (ok, out) = self.run(&["-f", "-"], Some(text.into_bytes()))?;
        if !ok {
            let msg: Vec<&str> = out.lines().take(12).collect();
            return Err(Error::Kernel(format!(
                "nft refused the batch, nothing changed: {}",
                msg.join("\n")
            )));
        }
        Ok(())
    }

    /// The netdev table (DR) as nft's JSON, or None when it is not there. Only DR
    /// services have chains there, and they are few: nft's cache of it is small.
    fn list_netdev(&mut self) -> Result<Option<String>> {
        match self.nl()?.chains(Family::Netdev, TABLE) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::Kernel(format!("reading netdev {TABLE}: {e}"))),
            // A dump of a table that is not there is empty; ours has a chain per device.
            Ok(c) if c.is_empty() => return Ok(None),
            Ok(_) => {}
        }
        let (ok, out) = self.run(&["-j", "list", "table", "netdev", TABLE], None)?;
        if ok {
            return Ok(Some(out));
        }
        if out.contains("No such file or directory") {
            return Ok(None);
        }
        Err(Error::Kernel(format!("nft list table netdev {TABLE}: {}", out.trim())))
    }

    /// What the kernel holds: the model, and what the plans need to know of it.
    fn read_all(&mut self, slots: bool) -> Result<(Table, Vec<(String, u64)>)> {
        let inet = read::read(self.nl()?, slots).map_err(Error::Kernel)?;
        let netdev = self.list_netdev()?;
        let p = parse::parse(None, netdev.as_deref()).map_err(Error::Kernel)?;
        let mut present = p.present;
        present.known = true;
        let mut services = p.services;
        let mut handles = Vec::new();
        if let Some(i) = inet {
            present.inet = true;
            present.rules = i.rules.iter().map(|r| r.0.clone()).collect();
            present.actual = i.actual;
            present.count_uses();
            handles = i.rules;
            services.extend(i.services);
        }
        self.present = present;
        let mut t = Table { info: INFO, services };
        t.sort();
        Ok((t, handles))
    }

    /// The plan `commit` would carry out (for `--dry-run` and tests). Only the services
    /// the changes name are looked at, each on its own (a change names one service), so
    /// that a health change among 10,000 services costs what that service costs; a
    /// flush, or a change to a DR service, takes the whole table.
    pub fn plan(&mut self, current: &Table, changes: &[Change]) -> Result<Plan> {
        for c in changes {
            self.check(c)?;
        }
        let refused = |r: super::model::Refusal| Error::Kernel(r.to_string());
        let whole = |net: &mut dyn Network, present: &Present| -> Result<Plan> {
            let mut want = current.clone();
            let mut flush = false;
            for c in changes {
                flush |= matches!(c, Change::Flush);
                want.apply(c).map_err(refused)?;
            }
            layout::render(
                &current.services,
                &want.services,
                want.services.len(),
                present,
                flush,
                net,
            )
        };
        // Each service's changes, in order, played on that service alone.
        let mut order: Vec<ServiceKey> = Vec::new();
        let mut by: HashMap<ServiceKey, Vec<&Change>> = HashMap::new();
        for c in changes {
            let k = match c {
                Change::AddService(s) | Change::EditService(s) => s.key,
                Change::DelService(k) | Change::AddDest(k, _) | Change::EditDest(k, _) | Change::DelDest(k, ..) => *k,
                Change::Flush | Change::Zero(_) => return whole(self.net.as_mut(), &self.present),
            };
            by.entry(k)
                .or_insert_with(|| {
                    order.push(k);
                    Vec::new()
                })
                .push(c);
        }
        let index: HashMap<ServiceKey, &super::model::Service> = if order.len() > 8 {
            current.services.iter().map(|s| (s.key, s)).collect()
        } else {
            HashMap::new()
        };
        let find = |k: &ServiceKey| match index.is_empty() {
            true => current.services.iter().find(|s| s.key == *k),
            false => index.get(k).copied(),
        };
        let (mut cur, mut want) = (Vec::new(), Vec::new());
        for k in &order {
            let mut one = Table {
                info: INFO,
                services: find(k).cloned().into_iter().collect(),
            };
            cur.extend(one.services.iter().cloned());
            for c in &by[k] {
                one.apply(c).map_err(refused)?;
            }
            want.extend(one.services);
        }
        if cur.iter().chain(&want).any(|s| layout::path(s) == layout::Path::Dr) {
            return whole(self.net.as_mut(), &self.present);
        }
        let total = current.services.len() + want.len() - cur.len();
        layout::render(&cur, &want, total, &self.present, false, self.net.as_mut())
    }

    /// The `delete rule` lines of unused (kind, L) rules, by their handles now.
    fn drops(&mut self, unused: &[String]) -> Result<String> {
        if unused.is_empty() || !self.present.inet {
            return Ok(String::new());
        }
        let rules = self
            .nl()?
            .rules(Family::Inet, TABLE, None)
            .map_err(|e| Error::Kernel(format!("reading inet {TABLE}'s rules: {e}")))?;
        let mut t = String::new();
        for r in rules {
            if let Some(name) = r.comment.as_deref().and_then(|c| c.strip_prefix(layout::RULE_TAG)) {
                if unused.iter().any(|u| u == name) {
                    t.push_str(&layout::drop_rule(name, r.handle));
                }
            }
        }
        Ok(t)
    }

    /// The elements in one nf_tables transaction.
    fn transaction(&mut self, plan: &Plan) -> std::result::Result<(), TxRefused> {
        let ops = plan.elems.ops();
        let nl = self.nl().map_err(|error| TxRefused { errno: None, error })?;
        nl.transaction(&ops).map_err(|e| {
            let set = e.op().and_then(|i| plan.elems.op_set(i)).unwrap_or("the transaction");
            let (errno, tail) = match e {
                TxError::Io(_) => (None, "; whether it was done is not known: read the table again"),
                TxError::Refused(_) => (e.errno(), ", nothing changed"),
                TxError::Invalid(_) => (None, ", nothing changed"),
            };
            TxRefused {
                errno,
                error: Error::Kernel(format!("nf_tables refused a change to {set}: {e}{tail}")),
            }
        })
    }
}

/// A transaction not done, and the kernel's errno when it refused it.
struct TxRefused {
    errno: Option<i32>,
    error: Error,
}

fn usage(m: impl Into<String>) -> Error {
    Error::Usage(m.into())
}

impl Backend for Nft {
    fn kind(&self) -> Kind {
        Kind::Nft
    }

    fn read(&mut self) -> Result<Table> {
        Ok(self.read_all(false)?.0)
    }

    fn check(&self, c: &Change) -> Result<()> {
        match c {
            Change::AddService(s) | Change::EditService(s) => {
                if let Some(m) = sched::refusal(&s.scheduler) {
                    return Err(usage(m));
                }
                if !s.pe_name.is_empty() {
                    return Err(usage(format!(
                        "the nft backend has no persistence engines ({}); use --backend ipvs",
                        s.pe_name
                    )));
                }
                if s.flags & (F_ONEPACKET | F_SCHED1 | F_SCHED2 | F_SCHED3) != 0 {
                    return Err(usage(
                        "the nft backend cannot do one-packet scheduling or scheduler flags; use --backend ipvs",
                    ));
                }
            }
            Change::AddDest(k, d) | Change::EditDest(k, d) => {
                match d.fwd {
                    Fwd::Tunnel => return Err(usage(
                        "the nft backend cannot tunnel (-i); use -m (NAT) or -g (direct routing), or --backend ipvs",
                    )),
                    Fwd::Local => return Err(usage("the nft backend has no local forwarding; use --backend ipvs")),
                    _ => {}
                }
                if d.u_thresh != 0 || d.l_thresh != 0 {
                    return Err(usage(
                        "the nft backend cannot do connection thresholds (-x/-y): a full server cannot pass \
                         a new connection on to another; use --backend ipvs",
                    ));
                }
                if matches!(k, super::model::ServiceKey::Fwmark { .. }) && d.port != 0 {
                    return Err(usage(
                        "the nft backend keeps the client's port for firewall-mark services: give the real server no port",
                    ));
                }
            }
            Change::Zero(_) => return Err(self.lacks("way to zero counters")),
            Change::DelService(_) | Change::DelDest(..) | Change::Flush => {}
        }
        Ok(())
    }

    fn commit(&mut self, current: &Table, changes: &[Change]) -> Result<()> {
        if !self.present.known {
            self.read_all(false)?;
        }
        let plan = self.plan(current, changes)?;
        if !plan.fast() {
            // Chains change: everything in one nft batch, unused rules removed with it.
            let drops = self.drops(&plan.unused)?;
            self.batch_text(plan.text(&drops))?;
            self.present.apply(&plan);
            if !drops.is_empty() {
                self.present.dropped(&plan.unused);
            }
            return Ok(());
        }
        if !plan.prep.is_empty() {
            // Invisible until the elements use it; left in place if they are refused.
            self.batch_text(plan.prep.clone())?;
            self.present.inet = true;
            self.present.rules.extend(plan.rules_added.iter().cloned());
        }
        if let Err(e) = self.transaction(&plan) {
            // A slot or membership not as the records say (drift): read them for real
            // and plan again, once.
            let drift = matches!(
                &e,
                TxRefused {
                    errno: Some(libc::ENOENT | libc::EEXIST),
                    ..
                }
            );
            if !drift {
                return Err(e.error);
            }
            self.read_all(true)?;
            let plan = self.plan(current, changes)?;
            if !plan.fast() {
                return Err(e.error);
            }
            if !plan.prep.is_empty() {
                self.batch_text(plan.prep.clone())?;
            }
            self.transaction(&plan).map_err(|e| e.error)?;
            self.present.apply(&plan);
            return Ok(());
        }
        self.present.apply(&plan);
        if plan.unused.len() > LAZY_RULES {
            // Tidying: the change is done; a failure here leaves rules that match nothing.
            if let Ok(d) = self.drops(&plan.unused) {
                if !d.is_empty() && self.batch_text(d).is_ok() {
                    self.present.dropped(&plan.unused);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
