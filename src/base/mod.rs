//! Plumbing every tool uses, written once.

pub mod clock;
pub mod duration;
pub mod exit;
pub mod log;
pub mod runloop;
pub mod signals;
