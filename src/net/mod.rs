//! The kernel's network interfaces: rtnetlink and packet views.

pub mod addr;
pub mod arp;
pub mod linkwatch;
pub mod ndp;
