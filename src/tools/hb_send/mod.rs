//! hb-send: heartbeats and cluster messages out on every channel.

pub mod cli;
pub mod send;
pub mod settings;
