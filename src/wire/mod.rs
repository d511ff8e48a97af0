//! What travels between nodes, and from scripts to hb-send (DESIGN.md's wire contract).

pub mod authkeys;
pub mod channel;
pub mod fifo;
pub mod generation;
pub mod hv;
pub mod msg;

// What a node announces about itself in every heartbeat, beside `st`.

/// The heartbeat field that carries what a node holds: comma-separated words (service
/// addresses, resource names) set by the node's scripts through the FIFO.
pub const HELD: &str = "held";
/// The heartbeat field that carries the node's ping nodes: `REACHABLE/CONFIGURED`.
pub const PINGS: &str = "pn";
/// The longest `held` hb-send accepts (one datagram carries it every keepalive).
pub const HELD_MAX: usize = 255;

/// A `held` value: comma-separated words of letters, digits and `. : / @ _ -`.
pub fn valid_held(h: &str) -> Result<(), String> {
    if h.len() > HELD_MAX {
        return Err(format!("longer than {HELD_MAX} bytes"));
    }
    if let Some(c) = h
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || ".:/@_-,".contains(c)))
    {
        return Err(format!("{c:?} is not allowed (letters, digits and . : / @ _ - , only)"));
    }
    Ok(())
}
