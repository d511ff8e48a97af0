//! The IPVS backend: generic netlink family `IPVS`, version 1, on the house netlink
//! socket. One socket for the whole run (ipvsadm opens one per message and resolves the
//! family each time); a commit goes out pipelined ([`Netlink::batch`]), and a refusal
//! part way is rolled back by undoing, in reverse, what was done.

pub mod codec;

use self::codec::{cmd, Message};
use super::backend::{Backend, Error, Kind, Result};
use super::model::{Change, Daemon, Info, Service, ServiceKey, Table, Timeouts, IPVS_SCHEDULERS};
use crate::net::netlink::{BatchError, Netlink};
use netlink_packet_generic::GenlMessage;
use netlink_sys::protocols::NETLINK_GENERIC;
use std::io;

/// What a kernel without IPVS says.
pub const NO_IPVS: &str = "this kernel has no IPVS (no generic netlink family IPVS; modprobe ip_vs?)";

/// The persistence engines IPVS has.
pub const IPVS_PERSISTENCE_ENGINES: &[&str] = &["sip"];

type Socket = Netlink<GenlMessage<Message>>;

const RECEIVE_BUFFER: usize = 4096;

fn wrap(m: Message) -> GenlMessage<Message> {
    GenlMessage::from_payload(m)
}

/// The kernel's IP Virtual Server.
pub struct Ipvs {
    nl: Socket,
    family: u16,
    info: Info,
}

/// Whether this kernel has IPVS (the family resolves; the kernel loads ip_vs to answer,
/// as it does for ipvsadm).
pub fn available() -> bool {
    Netlink::open(NETLINK_GENERIC).is_ok_and(|mut nl| resolve(&mut nl).is_ok())
}

fn resolve(nl: &mut Socket) -> Result<u16> {
    match nl.get(wrap(Message::get_family(codec::FAMILY_NAME))) {
        Ok(answers) => answers
            .iter()
            .find_map(|a| codec::family_id(&a.payload.attrs).ok())
            .ok_or_else(|| Error::Unavailable("the generic netlink controller did not name IPVS's id".into())),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(Error::Unavailable(NO_IPVS.into())),
        Err(e) => Err(Error::Unavailable(format!("the generic netlink controller: {e}"))),
    }
}

/// A commit that failed: the index of the change the kernel refused (None when the
/// socket failed, not the kernel), and the error as [`Backend::commit`] returns it.
#[derive(Debug)]
pub struct CommitError {
    pub index: Option<usize>,
    pub error: Error,
}

impl Ipvs {
    /// One generic netlink socket, IPVS's family resolved, and its version asked (which
    /// needs CAP_NET_ADMIN, so a missing privilege shows here).
    pub fn open() -> Result<Ipvs> {
        let mut nl =
            Netlink::open(NETLINK_GENERIC).map_err(|e| Error::Unavailable(format!("a generic netlink socket: {e}")))?;
        // Every IPVS answer fits a page (the kernel makes them NLMSG_GOODSIZE at most),
        // and page-sized reads keep the kernel's dump parts to a page each (32 KiB,
        // multi-page, after a larger read): a read of the table is a dump per service.
        nl.set_receive_buffer(RECEIVE_BUFFER);
        let family = resolve(&mut nl)?;
        let answers = nl
            .get(wrap(Message::bare(family, cmd::GET_INFO)))
            .map_err(|e| refusal(cmd::GET_INFO, &e))?;
        let info = answers
            .first()
            .ok_or_else(|| Error::Kernel("IPVS did not answer GET_INFO".into()))
            .and_then(|a| codec::info(&a.payload.attrs))?;
        Ok(Ipvs { nl, family, info })
    }

    /// IPVS's version and connection table size (fixed while ip_vs is loaded).
    pub fn info(&self) -> Info {
        self.info
    }

    fn request(&mut self, m: Message) -> Result<()> {
        let c = m.cmd;
        self.nl.request(wrap(m), 0).map_err(|e| refusal(c, &e))
    }

    fn dump(&mut self, m: Message) -> Result<Vec<GenlMessage<Message>>> {
        let c = m.cmd;
        self.nl.dump(wrap(m)).map_err(|e| refusal(c, &e))
    }

    fn dests(&mut self, s: &mut Service) -> Result<()> {
        let v6 = s.key.is_v6();
        for a in self.dump(Message::get_dests(self.family, &s.key))? {
            s.dests.push(codec::dest(&a.payload.attrs, v6)?);
        }
        s.dests.sort_by_key(|d| d.sort_key());
        Ok(())
    }

    /// One service with its real servers (`-L -t ADDR:PORT`), None if there is none.
    pub fn read_service(&mut self, key: &ServiceKey) -> Result<Option<Service>> {
        let mut s = match self.nl.get(wrap(Message::get_service(self.family, key))) {
            Ok(a) => match a.first() {
                Some(a) => codec::service(&a.payload.attrs)?,
                None => return Ok(None),
            },
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(refusal(cmd::GET_SERVICE, &e)),
        };
        match self.dests(&mut s) {
            Err(Error::Kernel(m)) if m == strerror(cmd::GET_DEST, libc::ESRCH) => Ok(None),
            r => r.map(|()| Some(s)),
        }
    }

    /// [`Backend::commit`], saying which change the kernel refused.
    pub fn commit_indexed(&mut self, current: &Table, changes: &[Change]) -> std::result::Result<(), CommitError> {
        let b = match self.send(changes) {
            Ok(()) => return Ok(()),
            Err(b) => b,
        };
        let (index, mut msg) = match (b.refused.first(), &b.error) {
            (Some((i, e)), _) => (Some(*i), refusal_text(command(&changes[*i]), e)),
            (None, Some(e)) => (None, format!("IPVS: {e}")),
            (None, None) => (None, "IPVS: the batch stopped".into()),
        };
        let back = if b.unknown == 0 {
            self.undo(current, changes, b.known, &b.refused)
        } else {
            // Some outcomes are not known: put back what the kernel is seen to hold.
            self.restore(current)
        };
        if let Err(e) = back {
            msg.push_str(&format!("; and the table could not be put back as it was: {e}"));
        }
        Err(CommitError {
            index,
            error: Error::Kernel(msg),
        })
    }

    fn send(&mut self, changes: &[Change]) -> std::result::Result<(), BatchError> {
        let family = self.family;
        self.nl
            .batch(changes.iter().map(|c| wrap(Message::change(family, c))), 0)
            .map(|_| ())
    }

    /// Undo, in reverse, the first `known` changes but the refused ones, each undone
    /// against the table as it was before it; if that fails, restore from a fresh read.
    fn undo(
        &mut self,
        current: &Table,
        changes: &[Change],
        known: usize,
        refused: &[(usize, io::Error)],
    ) -> Result<()> {
        let mut table = current.clone();
        let mut steps = Vec::new();
        let mut refused = refused.iter().map(|r| r.0).peekable();
        for (i, c) in changes[..known.min(changes.len())].iter().enumerate() {
            if refused.next_if_eq(&i).is_some() {
                continue;
            }
            steps.push(c.undo(&table));
            // The kernel took it, so the model should too; if the model was stale the
            // later undos are the best guess, and a failure falls back to a restore.
            let _ = table.apply(c);
        }
        let steps: Vec<Change> = steps.into_iter().rev().flatten().collect();
        match self.send(&steps) {
            Ok(()) => Ok(()),
            Err(_) => self.restore(current),
        }
    }

    /// Make the kernel's table `want` again from what it holds now.
    fn restore(&mut self, want: &Table) -> Result<()> {
        let now = self.read()?;
        let fix = now.diff(want);
        self.send(&fix).map_err(|b| match (b.refused.first(), b.error) {
            (Some((i, e)), _) => Error::Kernel(refusal_text(command(&fix[*i]), e)),
            (None, Some(e)) => Error::Kernel(format!("IPVS: {e}")),
            (None, None) => Error::Kernel("IPVS: the batch stopped".into()),
        })
    }
}

impl Backend for Ipvs {
    fn kind(&self) -> Kind {
        Kind::Ipvs
    }

    /// GET_SERVICE (one dump), then one GET_DEST dump per service.
    fn read(&mut self) -> Result<Table> {
        let mut services = Vec::new();
        for a in self.dump(Message::bare(self.family, cmd::GET_SERVICE))? {
            services.push(codec::service(&a.payload.attrs)?);
        }
        let mut kept = Vec::with_capacity(services.len());
        for mut s in services {
            match self.dests(&mut s) {
                Ok(()) => kept.push(s),
                // Deleted by someone else between the two dumps.
                Err(Error::Kernel(m)) if m == strerror(cmd::GET_DEST, libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
        let mut t = Table {
            info: self.info,
            services: kept,
        };
        t.sort();
        Ok(t)
    }

    fn check(&self, c: &Change) -> Result<()> {
        check(c)
    }

    fn commit(&mut self, current: &Table, changes: &[Change]) -> Result<()> {
        self.commit_indexed(current, changes).map_err(|e| e.error)
    }

    fn timeouts(&mut self) -> Result<Timeouts> {
        let a = self
            .nl
            .get(wrap(Message::bare(self.family, cmd::GET_CONFIG)))
            .map_err(|e| refusal(cmd::GET_CONFIG, &e))?;
        a.first()
            .ok_or_else(|| Error::Kernel("IPVS did not answer GET_CONFIG".into()))
            .and_then(|a| codec::timeouts(&a.payload.attrs))
    }

    fn set_timeouts(&mut self, t: Timeouts) -> Result<()> {
        self.request(Message::set_timeouts(self.family, &t))
    }

    fn daemons(&mut self) -> Result<Vec<Daemon>> {
        self.dump(Message::bare(self.family, cmd::GET_DAEMON))?
            .iter()
            .map(|a| codec::daemon(&a.payload.attrs))
            .collect()
    }

    fn start_daemon(&mut self, d: &Daemon) -> Result<()> {
        if d.ifname.len() > codec::NAME_MAX {
            return Err(Error::Usage(format!("interface name '{}' is too long", d.ifname)));
        }
        self.request(Message::new_daemon(self.family, d))
    }

    fn stop_daemon(&mut self, state: u32) -> Result<()> {
        self.request(Message::del_daemon(self.family, state))
    }
}

/// Whether IPVS can make `c` at all: its schedulers and persistence engines, and what
/// the kernel refuses outright.
pub fn check(c: &Change) -> Result<()> {
    match c {
        Change::AddService(s) | Change::EditService(s) => {
            if !IPVS_SCHEDULERS.contains(&s.scheduler.as_str()) {
                return Err(Error::Usage(format!(
                    "unknown scheduler '{}' (IPVS has {})",
                    s.scheduler,
                    IPVS_SCHEDULERS.join(", ")
                )));
            }
            if !s.pe_name.is_empty() && !IPVS_PERSISTENCE_ENGINES.contains(&s.pe_name.as_str()) {
                return Err(Error::Usage(format!(
                    "unknown persistence engine '{}' (IPVS has {})",
                    s.pe_name,
                    IPVS_PERSISTENCE_ENGINES.join(", ")
                )));
            }
            if s.key.is_v6() && !(1..=128).contains(&s.netmask) {
                return Err(Error::Usage(format!("illegal ipv6 netmask {}", s.netmask)));
            }
        }
        Change::AddDest(_, d) | Change::EditDest(_, d) => {
            if d.weight > i32::MAX as u32 {
                return Err(Error::Usage(format!("illegal weight {}", d.weight)));
            }
            // The kernel refuses it with ERANGE (a 0 upper threshold is no limit,
            // so a lower one needs an upper one).
            if d.l_thresh > d.u_thresh {
                return Err(Error::Usage(format!(
                    "the lower threshold {} is above the upper threshold {}",
                    d.l_thresh, d.u_thresh
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The command a change is sent as.
fn command(c: &Change) -> u8 {
    match c {
        Change::AddService(_) => cmd::NEW_SERVICE,
        Change::EditService(_) => cmd::SET_SERVICE,
        Change::DelService(_) => cmd::DEL_SERVICE,
        Change::AddDest(..) => cmd::NEW_DEST,
        Change::EditDest(..) => cmd::SET_DEST,
        Change::DelDest(..) => cmd::DEL_DEST,
        Change::Flush => cmd::FLUSH,
        Change::Zero(_) => cmd::ZERO,
    }
}

fn refusal(c: u8, e: &io::Error) -> Error {
    Error::Kernel(refusal_text(c, e))
}

fn refusal_text(c: u8, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => strerror(c, errno),
        None => format!("IPVS: {e}"),
    }
}

/// What ipvsadm 1.31 prints for the kernel's `errno` to command `c` (libipvs's
/// ipvs_strerror), but that a missing privilege names the capability.
pub fn strerror(c: u8, errno: i32) -> String {
    use libc::*;
    let m = match (c, errno) {
        (cmd::NEW_SERVICE, EEXIST) => "Service already exists",
        (cmd::NEW_SERVICE | cmd::SET_SERVICE, ENOENT) => "Scheduler or persistence engine not found",
        (cmd::SET_SERVICE | cmd::DEL_SERVICE | cmd::ZERO, ESRCH) => "No such service",
        (cmd::NEW_DEST | cmd::SET_DEST | cmd::DEL_DEST, ESRCH) => "Service not defined",
        (cmd::NEW_DEST, EEXIST) => "Destination already exists",
        (cmd::SET_DEST | cmd::DEL_DEST, ENOENT) => "No such destination",
        (cmd::NEW_DAEMON, EEXIST) => "Daemon has already run",
        (cmd::DEL_DAEMON, ESRCH) => "No daemon is running",
        (cmd::GET_SERVICE | cmd::GET_DEST, ESRCH) => "No such service",
        (_, EPERM) => "Permission denied (IPVS needs CAP_NET_ADMIN)",
        (_, EINVAL) => "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        (_, ENOPROTOOPT) => "Protocol not available",
        (_, ENOMEM) => "Memory allocation problem",
        (_, EOPNOTSUPP) => "Operation not supported with IPv6",
        (_, EAFNOSUPPORT) => "Operation not supported with specified address family",
        (_, EMSGSIZE) => "Module is wrong version",
        _ => return io::Error::from_raw_os_error(errno).to_string(),
    };
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::model::{Dest, Proto};

    #[test]
    fn refusals_read_as_ipvsadm_prints_them() {
        assert_eq!(strerror(cmd::NEW_SERVICE, libc::EEXIST), "Service already exists");
        assert_eq!(strerror(cmd::DEL_SERVICE, libc::ESRCH), "No such service");
        assert_eq!(strerror(cmd::NEW_DEST, libc::ESRCH), "Service not defined");
        assert_eq!(strerror(cmd::DEL_DEST, libc::ENOENT), "No such destination");
        assert_eq!(strerror(cmd::NEW_DEST, libc::ENOMEM), "Memory allocation problem");
        assert!(strerror(cmd::FLUSH, libc::EPERM).contains("CAP_NET_ADMIN"));
        // Others as strerror(3) has them.
        assert!(
            strerror(cmd::NEW_DEST, libc::ERANGE).contains("range"),
            "{}",
            strerror(cmd::NEW_DEST, libc::ERANGE)
        );
    }

    #[test]
    fn without_ipvs_the_backend_is_unavailable() {
        // These build machines' kernels have no IPVS; inside the VM it is there.
        match Ipvs::open() {
            Err(Error::Unavailable(m)) => {
                assert_eq!(m, NO_IPVS);
                assert!(!available());
            }
            Ok(_) => assert!(available()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn check_refuses_what_ipvs_cannot_do() {
        let key = ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let mut s = Service::new(key);
        s.scheduler = "lc2".into();
        let e = check(&Change::AddService(s.clone())).unwrap_err();
        assert!(matches!(e, Error::Usage(ref m) if m.contains("'lc2'")), "{e}");
        s.scheduler = "mh".into();
        check(&Change::AddService(s)).unwrap();
        let mut d = Dest::new("10.0.0.2".parse().unwrap(), 80);
        d.l_thresh = 5;
        assert!(matches!(check(&Change::AddDest(key, d)), Err(Error::Usage(_))));
    }
}
