//! hakit: small Unix tools for high availability on Linux.
//!
//! All the logic lives here, shared by the thin mains in `src/bin/`. Each module
//! holds one thing and, where it can fail, one error type that maps to an exit status
//! through [`exit::ExitStatus`].

pub mod addr;
pub mod arp;
pub mod authkeys;
pub mod channel;
pub mod check;
pub mod cli;
pub mod config;
pub mod detector;
pub mod docgen;
pub mod duration;
pub mod events;
pub mod exit;
pub mod fakecfg;
pub mod fifo;
pub mod generation;
pub mod hooks;
pub mod log;
pub mod mon;
pub mod msg;
pub mod ndp;
pub mod netlink;
pub mod sched;
pub mod sender;
pub mod signals;
pub mod status;
pub mod table;
pub mod takeover;
pub mod time;
pub mod view;
pub mod watcher;
