use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Take over an IP address: add it, announce it, keep announcing while it is held.
///
/// `ipfake up ADDR/PREFIX dev IFACE` adds the address (already present is not an
/// error), sends a burst of gratuitous ARP at once (send_arp's request/reply pairs, to
/// the broadcast and to every `--router`), then stays in the foreground re-announcing
/// every `--refresh` for as long as it holds the address, as Fake's loop did: caches
/// expire, and a half-dead former owner could win the ARP race. A lost carrier (a
/// pulled cable) does not release the address: ipfake keeps it, and a burst that went
/// nowhere (sent while the carrier was out, or refused for now: ENOBUFS) is sent whole
/// when the link takes frames again; one that went out is not repeated after a blip,
/// since another node may have taken the address meanwhile. SIGTERM or SIGINT
/// releases the address (removes it if ipfake added it) and exits 0; SIGKILL leaves the
/// address and the pid file behind — the next `ipfake up` takes it over (and removes
/// it when it releases), `ipfake down` removes it.
///
/// `ipfake down ADDR` stops the holder and removes the address if ipfake added it (one
/// configured before stays), and with `--owner-mac` announces the original owner's MAC
/// so that traffic goes back at once. The pid file (`PID STARTTIME`, the interface, the
/// prefix, `added` or `found`) lets `down` and a new `up` know the holder: a pid reused
/// by another process since is never taken for it nor signalled.
/// `ipfake status [ADDR]` lists the addresses held here.
///
/// Exit status: 0 done (status: the address is held); 1 the takeover failed, the
/// address is in use by another host (`--probe`), or is not held; 2 a usage error (no
/// such interface, a bad address, no privilege).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ipfake",
    version,
    after_help = "Examples:\n  ipfake up 192.0.2.10/24 dev eth0 --probe &\n  ipfake status 192.0.2.10 && echo held\n  ipfake down 192.0.2.10"
)]
pub struct IpfakeArgs {
    #[command(subcommand)]
    pub command: Command,
    /// Where pid files live (`ipfake.<ADDR>.pid`); made if missing, refused if it is
    /// not a directory. [default: ipfake.pid-dir in the configuration, else /run/hakit]
    #[arg(long, global = true, value_name = "DIR")]
    pub pid_dir: Option<PathBuf>,
    /// The configuration file (YAML; its `ipfake.addresses` describe addresses by
    /// name). [default: /etc/hakit/hakit.yaml when it exists]
    #[arg(short = 'c', long, global = true, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Heartbeat's haresources: its IPaddr and IPaddr2 resources (and bare
    /// addresses) describe addresses as `ipfake.addresses` entries do, so that `ipfake
    /// up 192.168.1.10` takes `IPaddr::192.168.1.10/24/eth0`. Every line is read,
    /// whichever its preferred node: the preferred node says who holds an address
    /// while both are up, and a takeover is precisely the other node's line. Other
    /// resources (httpd, Filesystem::...) are named with file:line:column and skipped;
    /// an address without its prefix or interface (Heartbeat finds them from the
    /// routes) takes them from the command line. An address also in
    /// `ipfake.addresses` is an error.
    #[arg(long, global = true, value_name = "FILE")]
    pub haresources: Option<PathBuf>,
    /// Log only warnings and errors.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Take the address over and hold it until stopped.
    Up(UpArgs),
    /// Stop the holder of the address and remove it.
    Down(DownArgs),
    /// Which addresses this node holds; exit 0 if the one asked about is held.
    Status(StatusArgs),
    /// Do what Fake's `fake IP` (or `fake remove IP`) does, from Fake's own `.fakerc` and
    /// `instance_config/IP.cfg`.
    Fake(FakeArgs),
    /// Roll-forward for UDP services: the active node copies every request to the
    /// standby, which processes it silently, so that it answers with current state
    /// when it takes over.
    ///
    /// Both modes copy every datagram to the address's UDP `--service` ports, as it
    /// arrives, to each `--peer` (nftables `dup to PEER device DEV` in `ip hakit_mirror`'s
    /// prerouting: the copy keeps its destination, the address, and goes to the peer's
    /// MAC, so the peers must be on DEV's link; it leaves with TTL 1, and a datagram with
    /// TTL 1 is never copied, so copies are not bounced back). `active` lets this node's
    /// answers out. `standby` makes this node take the copies (the address on `lo` as a
    /// /32 labelled `lo:hakit-mirror`) and say nothing as the address on `--dev`: every
    /// IPv4 packet from it and every ARP packet naming it as the sender is dropped at the
    /// device's egress (`netdev hakit_mirror`), so the service sees no error (UDP hides a
    /// drop there) and no ARP cache learns this node for the address; what still reaches
    /// a standby (a stale ARP cache after a handover) is copied on to the active node,
    /// so both go on processing every request. The service must answer from the address
    /// (bind it, with IP_FREEBIND if it starts first, or answer with IP_PKTINFO).
    ///
    /// Takeover: `ipfake up ADDR/PREFIX dev DEV --mirror udp/PORT --mirror-peer PEER`
    /// (armed, or not) makes this node active and then adds the address, so answers
    /// flow before the clients' caches move; it also removes the `lo` copy. Releasing:
    /// `ipfake mirror standby` first, then `ipfake down`. Give every mode the same
    /// `--dev`, `--peer` and `--service`: the tables are then made once (by nft) and a
    /// takeover deletes one set element (one nf_tables netlink transaction). The device
    /// and the peers belong to the node, shared by every address it mirrors.
    ///
    /// TCP is refused: two TCP stacks cannot share one connection (the standby's stack
    /// chose other sequence numbers than the master's, so it would answer the client's
    /// segments with resets). Fragmented datagrams are copied only where conntrack has
    /// reassembled them (the copy is made at priority -150, after defragmentation).
    /// IPv4 only.
    ///
    /// Exit status: 0 done (status: the address is mirrored here); 1 the kernel refused, a
    /// table of that name is not ours, or (status) not mirrored; 2 a usage error, nothing
    /// changed.
    Mirror(MirrorArgs),
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  ipfake mirror active --vip 192.0.2.10 --service udp/53 --peer 192.0.2.2 --dev eth0\n  ipfake mirror standby --vip 192.0.2.10 --peer 192.0.2.1 --dev eth0\n  ipfake mirror status 192.0.2.10\n  ipfake mirror off --vip 192.0.2.10"
)]
pub struct MirrorArgs {
    #[command(subcommand)]
    pub mode: MirrorMode,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MirrorMode {
    /// Answer, and copy every request to the peers.
    Active(MirrorSetArgs),
    /// Process the copies, say nothing as the address, and still copy what arrives to
    /// the peers.
    Standby(MirrorSetArgs),
    /// Remove the address's mirroring (with no --vip: all of it): the tables go when
    /// nothing is left in them, and so does the `lo` copy.
    Off(MirrorOffArgs),
    /// Each mirrored address with its mode; exit 0 if the one asked about is mirrored.
    Status(MirrorStatusArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MirrorSetArgs {
    #[command(flatten)]
    pub node: MirrorNodeArgs,
    /// The UDP ports copied to the peers: `udp/PORT`, comma-separated or repeated.
    #[arg(long = "service", value_name = "udp/PORT", value_delimiter = ',', required = true)]
    pub services: Vec<String>,
}

/// The address, its device and the peers.
#[derive(Debug, Clone, Args)]
pub struct MirrorNodeArgs {
    /// The service address (IPv4, one host's).
    #[arg(long, value_name = "ADDR")]
    pub vip: String,
    /// Where the copies go (comma-separated or repeated; at most 4). Give every mode
    /// the same: the tables are made for them once, and a takeover changes one set
    /// element. Without it the node's peers stay what they were.
    #[arg(long = "peer", value_name = "ADDR", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// The interface the address and the peers are on.
    #[arg(long, value_name = "IFACE")]
    pub dev: String,
    /// Check the settings and exit (0, or 2 with the error), changing nothing.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MirrorOffArgs {
    /// The address; without it, every address this node mirrors.
    #[arg(long, value_name = "ADDR")]
    pub vip: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MirrorStatusArgs {
    /// The address to ask about.
    #[arg(value_name = "ADDR")]
    pub vip: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct FakeArgs {
    /// Fake's `.fakerc`. [default: /etc/fake/.fakerc, then ~/.fakerc]
    #[arg(long, value_name = "FILE")]
    pub rc: Option<PathBuf>,
    /// Release the address instead (Fake's `fake remove IP`), announcing
    /// FOREIGN_MACADDR if the instance file sets it.
    #[arg(long)]
    pub remove: bool,
    /// The address, as named in `instance_config/<IP>.cfg`.
    #[arg(value_name = "IP")]
    pub ip: String,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// The address with its prefix length, e.g. 192.0.2.10/24; the prefix and the
    /// interface may be left to the configuration's `ipfake.addresses` entry. One
    /// host's unicast address: the unspecified, broadcast, multicast and loopback
    /// addresses, IPv4-mapped IPv6, a /0 prefix, and the subnet's network (IPv6:
    /// subnet-router anycast) and broadcast addresses below /31 (/127) are refused.
    #[arg(value_name = "ADDR[/PREFIX]")]
    pub addr: String,
    /// The word `dev`, as in `ip addr add`.
    #[arg(value_name = "dev", value_parser = ["dev"], requires = "iface")]
    pub dev_word: Option<String>,
    /// The interface.
    #[arg(value_name = "IFACE")]
    pub iface: Option<String>,
    /// An IPv4 label for the address (`eth0:vip`), as Fake's TARGET_INTERFACE: the
    /// interface's name or `IFACE:...`, at most 15 characters (the kernel's limit).
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// Announcements in the first burst. [default: 5]
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,
    /// Time between the burst's announcements. [default: 200ms]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub interval: Option<Duration>,
    /// Re-announce this often while holding the address (0 = never). [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub refresh: Option<Duration>,
    /// Also announce straight to this router's MAC (repeatable; one host's: not a
    /// broadcast, multicast or all-zero MAC).
    #[arg(long = "router", value_name = "MAC", value_parser = crate::net::arp::parse_mac)]
    pub routers: Vec<pnet_base::MacAddr>,
    /// First ask whether another host answers for the address; refuse (exit 1) if so.
    #[arg(long)]
    pub probe: bool,
    /// With --probe: take the address even if another host answers.
    #[arg(long, requires = "probe")]
    pub force: bool,
    /// Announce the burst, then exit leaving the address up.
    #[arg(long)]
    pub once: bool,
    /// Get everything ready (the link open, the capabilities checked), then wait for
    /// SIGUSR1 before taking the address (the pid file is written once it is taken): a hot standby that takes over without
    /// starting a process. SIGTERM before then exits without touching the address.
    #[arg(long, conflicts_with = "probe")]
    pub armed: bool,
    /// Roll-forward: before the address is added, make this node the active one of
    /// `ipfake mirror` for it on IFACE, copying these UDP ports (`udp/PORT`,
    /// comma-separated) to the --mirror-peer: `ipfake mirror active` done in this
    /// process, one element transaction, so an armed takeover still starts nothing.
    #[arg(long, value_name = "udp/PORT", value_delimiter = ',')]
    pub mirror: Vec<String>,
    /// With --mirror: where the copies go (comma-separated or repeated); without it the
    /// node's peers stay what they were.
    #[arg(long, value_name = "ADDR", value_delimiter = ',', requires = "mirror")]
    pub mirror_peer: Vec<String>,
    /// Check the settings and that the interface exists, and exit (0, or 2 with the
    /// error), changing nothing: what a resource agent's validate-all asks.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// The address (a prefix is accepted and ignored).
    #[arg(value_name = "ADDR", value_parser = parse_addr)]
    pub addr: IpAddr,
    /// Announce the address at this MAC (the original owner's) after releasing it.
    #[arg(long, value_name = "MAC", value_parser = crate::net::arp::parse_mac)]
    pub owner_mac: Option<pnet_base::MacAddr>,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The address to ask about.
    #[arg(value_name = "ADDR", value_parser = parse_addr)]
    pub addr: Option<IpAddr>,
}

pub use crate::net::addr::parse_prefixed;

fn parse_addr(s: &str) -> Result<IpAddr, String> {
    let a = s.split('/').next().unwrap_or(s);
    a.parse().map_err(|_| format!("`{a}` is not an IP address"))
}

impl MirrorArgs {
    /// Only check the settings (`--check`).
    pub fn check_only(&self) -> bool {
        match &self.mode {
            MirrorMode::Active(a) | MirrorMode::Standby(a) => a.node.check,
            MirrorMode::Off(_) | MirrorMode::Status(_) => false,
        }
    }
}
