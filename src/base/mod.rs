//! Plumbing every tool uses, written once.

pub mod clock;
pub mod duration;
pub mod exit;
pub mod fsio;
pub mod log;
pub mod pidfile;
pub mod privilege;
pub mod proc;
pub mod prom;
pub mod runloop;
pub mod signals;
