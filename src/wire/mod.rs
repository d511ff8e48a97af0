//! What travels between nodes, and from scripts to hb-send (DESIGN.md's wire contract).

pub mod authkeys;
pub mod channel;
pub mod fifo;
pub mod generation;
pub mod hv;
pub mod msg;
