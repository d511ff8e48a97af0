use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::time::Duration;

/// Send gratuitous ARP for addresses on an interface, or probe whether one is in use.
///
/// Each announcement is the pair Heartbeat's send_arp sends — an ARP request and an
/// ARP reply, both with sender IP = target IP = the address, to the Ethernet broadcast
/// — because some hosts and switches honour only one form. `--to` aims the frames at one
/// host's MAC (the gateway whose cache must change, what Fake's clear_routers was for);
/// `--mac` announces another MAC than the interface's (to hand an address back to its
/// owner, as Fake's FOREIGN_ARP did).
///
/// IPv6 addresses are announced with unsolicited neighbour advertisements (override flag
/// set, to all nodes); `--form` does not apply to them.
///
/// `arp-announce probe` asks (RFC 5227; for IPv6, duplicate address detection) whether
/// another host answers for the address.
///
/// Exit status: 0 sent (probe: the address is free); 1 a send failed (probe: the
/// address is in use, and the MAC that answered is printed); 2 a usage error (no such
/// interface, a bad address or MAC).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "arp-announce",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  arp-announce -i eth0 192.0.2.10\n  arp-announce -i eth0 --count 1 --to 52:54:00:12:34:56 192.0.2.10\n  arp-announce probe -i eth0 192.0.2.10 || echo taken"
)]
pub struct ArpAnnounceArgs {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub announce: AnnounceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormArg {
    Request,
    Reply,
    Both,
}

#[derive(Debug, Clone, Args)]
pub struct AnnounceArgs {
    /// The interface to announce on.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// The addresses to announce (IPv6 ones by unsolicited neighbour advertisements):
    /// one host's each, not the unspecified, a broadcast, multicast or loopback address.
    #[arg(value_name = "ADDR", value_parser = crate::net::addr::parse_unicast)]
    pub addrs: Vec<IpAddr>,
    /// How many announcements (each a request/reply pair with --form both).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 5)]
    pub count: u32,
    /// Time between announcements.
    #[arg(short = 'w', long, value_name = "DURATION", default_value = "200ms", value_parser = crate::base::duration::clap_parse)]
    pub interval: Duration,
    /// Which ARP operation to send.
    #[arg(long, value_enum, default_value_t = FormArg::Both)]
    pub form: FormArg,
    /// Send to this host's MAC instead of the Ethernet broadcast (one host's: not a
    /// broadcast, multicast or all-zero MAC).
    #[arg(long, value_name = "MAC", value_parser = crate::net::arp::parse_mac)]
    pub to: Option<pnet_base::MacAddr>,
    /// Announce this MAC instead of the interface's (one host's: not a broadcast,
    /// multicast or all-zero MAC).
    #[arg(long, value_name = "MAC", value_parser = crate::net::arp::parse_mac)]
    pub mac: Option<pnet_base::MacAddr>,
    /// Log only errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Is the address in use on the link? Exit 0 if free, 1 if taken (the MAC that
    /// answered is printed).
    Probe(ProbeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The interface to probe on.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: String,
    /// The address to probe (IPv6: duplicate address detection); one host's.
    #[arg(value_name = "ADDR", value_parser = crate::net::addr::parse_unicast)]
    pub addr: IpAddr,
    /// How many probes. (RFC 5227 sends 3, 1 to 2 s apart; a takeover cannot wait that long.)
    #[arg(short = 'c', long, value_name = "N", default_value_t = 2)]
    pub count: u32,
    /// Time between probes.
    #[arg(short = 'w', long, value_name = "DURATION", default_value = "100ms", value_parser = crate::base::duration::clap_parse)]
    pub interval: Duration,
    /// How long to wait for an answer after the last probe.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = crate::base::duration::clap_parse)]
    pub wait: Duration,
}
