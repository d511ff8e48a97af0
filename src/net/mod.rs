//! The kernel's network interfaces: one netlink socket type and what is built on it
//! (addresses, carrier, routes, policy rules and neighbours), and packet views (ARP,
//! NDP) on an AF_PACKET link.

pub mod addr;
pub mod arp;
pub mod icmp;
pub mod linkwatch;
pub mod ndp;
pub mod netlink;
pub mod nftables;
pub mod route;
