//! The one interface both kernels' tables are driven through. A backend reads its whole
//! table and commits a list of changes all or nothing; everything above it (ipvsadm's
//! commands, `-R`, `apply`, `follow`) is written once against this trait.

use super::model::{Change, Daemon, Table, Timeouts};
use crate::base::exit::{ExitStatus, HasExitStatus};
use std::fmt;

/// Which kernel facility holds the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The kernel's IP Virtual Server, over generic netlink.
    Ipvs,
    /// An nftables table of hakit's own (`inet hakit_lvs`).
    Nft,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ipvs => "ipvs",
            Kind::Nft => "nft",
        }
    }
}

/// A backend's error. `Usage` is a change the backend cannot make at all (a scheduler
/// or forwarding method it lacks): exit 2, nothing changed. `Kernel` is a refusal or
/// failure of the kernel (exit 1; what was committed was rolled back).
#[derive(Debug)]
pub enum Error {
    Usage(String),
    Kernel(String),
    /// The backend is not there (no IPVS in this kernel, no nft).
    Unavailable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Kernel(m) | Error::Unavailable(m) => f.write_str(m),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            Error::Kernel(_) | Error::Unavailable(_) => ExitStatus::Failure,
        }
    }
}

impl Error {
    /// A kernel's refusal said as the capability that is missing, when it is (reading
    /// either backend's table is for CAP_NET_ADMIN only; EPERM alone says less).
    pub fn naming_the_capability(self) -> Error {
        use crate::base::privilege::{self, Cap};
        match (privilege::missing(&[Cap::NetAdmin]), self) {
            (m, Error::Kernel(e)) if !m.is_empty() => Error::Kernel(format!(
                "{e} (reading the kernel's table needs {})",
                privilege::describe(&m)
            )),
            (m, Error::Unavailable(e)) if !m.is_empty() => Error::Unavailable(format!(
                "{e} (reading the kernel's table needs {})",
                privilege::describe(&m)
            )),
            (_, e) => e,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A kernel table of virtual services.
pub trait Backend {
    fn kind(&self) -> Kind;

    /// The whole table, in the kernel's order (listings sort it as ipvsadm does,
    /// unless `--nosort`), each service with its real servers, counters and connection
    /// counts.
    fn read(&mut self) -> Result<Table>;

    /// Whether this backend can make `c` at all (scheduler, forwarding method, family,
    /// protocol); checked for every change before any is sent.
    fn check(&self, c: &Change) -> Result<()>;

    /// Apply `changes` (already checked and played on `current`, the table as
    /// [`Backend::read`] returned it) all or nothing: either every change is in the
    /// kernel when this returns Ok, or none is.
    fn commit(&mut self, current: &Table, changes: &[Change]) -> Result<()>;

    /// Connection timeouts (`--set`, `-L --timeout`).
    fn timeouts(&mut self) -> Result<Timeouts> {
        Err(self.lacks("connection timeouts"))
    }
    fn set_timeouts(&mut self, _t: Timeouts) -> Result<()> {
        Err(self.lacks("connection timeouts"))
    }

    /// The connection-synchronisation daemons (`--start-daemon`, `-L --daemon`).
    fn daemons(&mut self) -> Result<Vec<Daemon>> {
        Err(self.lacks("sync daemon"))
    }
    fn start_daemon(&mut self, _d: &Daemon) -> Result<()> {
        Err(self.lacks("sync daemon"))
    }
    fn stop_daemon(&mut self, _state: u32) -> Result<()> {
        Err(self.lacks("sync daemon"))
    }

    /// The refusal of something this backend does not have.
    fn lacks(&self, what: &str) -> Error {
        Error::Usage(format!("the {} backend has no {what}", self.kind().name()))
    }
}

/// The backend to use: the flag, else the configuration's, else IPVS where the kernel
/// has it (the family resolves), else nftables.
pub fn choose(flag: Option<Kind>, file: Option<Kind>) -> Kind {
    flag.or(file).unwrap_or_else(|| {
        if super::ipvs::available() {
            Kind::Ipvs
        } else {
            Kind::Nft
        }
    })
}

/// Open the backend `kind`.
pub fn open(kind: Kind) -> Result<Box<dyn Backend>> {
    Ok(match kind {
        Kind::Ipvs => Box::new(super::ipvs::Ipvs::open()?),
        Kind::Nft => Box::new(super::nft::Nft::open()?),
    })
}
