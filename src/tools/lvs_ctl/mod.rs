//! lvs-ctl: Linux Virtual Server control on IPVS and on nftables, with ipvsadm's command
//! line and output, declarative apply, and a follower of mon-check's events.
//!
//! model (the table, changes) ← ipvsadm (the command line) / config (the file) →
//! run, apply, follow → backend::Backend ← ipvs | nft; format prints ipvsadm's text.

pub mod apply;
pub mod backend;
pub mod cli;
pub mod config;
pub mod director;
pub mod follow;
pub mod format;
pub mod health;
pub mod ipvs;
pub mod ipvsadm;
pub mod main;
pub mod model;
pub mod nft;
pub mod run;
pub mod status;
pub mod web;

/// Where `follow` keeps the health of the real servers for `apply` and `status`.
pub const DEFAULT_STATE: &str = "/run/hakit/lvs-follow.json";
