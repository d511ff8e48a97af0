//! One room per tool. Each has `cli.rs` (its flags as clap reads them) and the work;
//! nothing outside a room imports its cli types.

pub mod arp_announce;
pub mod chan_switch;
pub mod cluster;
pub mod docgen;
pub mod hb_send;
pub mod hb_watch;
pub mod ipfake;
pub mod lvs_ctl;
pub mod mon_check;
