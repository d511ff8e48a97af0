//! The nftables backend: a table of its own, `inet hakit_lvs`, changed only in whole batches.
