//! The scheduler side of mon-check: mon's model of host groups, watches, services,
//! periods and alerts, its control socket, its saved state, and the import of a
//! mon.cf. The checks themselves are in [`crate::tools::mon_check::check`].

pub mod alert;
pub mod config;
pub mod ctl;
pub mod depend;
pub mod import;
pub mod period;
pub mod scheduler;
pub mod state;
