//! arp-announce: gratuitous ARP and unsolicited neighbour advertisements, and probes.

pub mod cli;
