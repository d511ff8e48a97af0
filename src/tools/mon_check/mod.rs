//! mon-check: service checks as a plugin, as a mon monitor, or on a schedule.

pub mod check;
pub mod cli;
pub mod sched;
