//! hakit: small Unix tools for high availability on Linux.
//!
//! The thin mains in `src/bin/` parse their flags and call `tools::<tool>`; everything
//! else is shared. See ARCHITECTURE.md for the rooms and the contracts between them.
//!
//! - [`base`]: plumbing every tool uses (exit statuses, logging, clocks, durations,
//!   the poll loop and signals).
//! - [`config`]: the one YAML file, its loader and its error positions.
//! - [`events`]: the events hb-watch (and mon-check) print, and the hooks they run.
//! - [`wire`]: what travels between nodes and from scripts to hb-send: messages, keys,
//!   the `hv` field, generations, the FIFO, channels.
//! - [`table`]: the Active Stations Table in shared memory.
//! - [`net`]: rtnetlink (addresses, carrier) and packet views (ARP, NDP).
//! - [`tools`]: one room per tool.

pub mod base;
pub mod config;
pub mod events;
pub mod net;
pub mod table;
pub mod tools;
pub mod wire;
