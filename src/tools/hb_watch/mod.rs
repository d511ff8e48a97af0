//! hb-watch: receive, verify, detect, keep the table, report; `hb-watch status`.

pub mod cli;
pub mod detector;
pub mod floors;
pub mod ping;
pub mod settings;
pub mod status;
pub mod watch;
