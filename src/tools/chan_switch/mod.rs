//! chan-switch: the cluster-wide switch to the standby channel.
//!
//! settings (flags + file) → run (the loop: stdin, carrier, table) → node (one node's
//! state: orders, reports, what it decides) → decide (the matrix, the policies, the
//! hold-down: pure) and routes (an order as rules); msg is what travels, status what
//! the daemon leaves for `status`, `to` and `back`.

pub mod cli;
pub mod decide;
pub mod msg;
pub mod node;
pub mod routes;
pub mod run;
pub mod settings;
pub mod status;
