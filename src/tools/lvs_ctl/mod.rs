//! lvs-ctl: Linux Virtual Server control on IPVS and on nftables, with ipvsadm's command
//! line and output, declarative apply, and a follower of mon-check's events.

pub mod backend;
pub mod ipvs;
pub mod model;
pub mod nft;
