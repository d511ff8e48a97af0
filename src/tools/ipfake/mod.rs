//! ipfake: take an address over, keep announcing it, release it; Fake's own files.

pub mod cli;
pub mod fakecfg;
pub mod mirror;
pub mod settings;
pub mod takeover;
