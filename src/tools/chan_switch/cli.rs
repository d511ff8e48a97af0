use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Move the cluster's traffic to the standby channel when one fails, on every node.
///
/// Every node has two (or more) LANs, the channels hb-send and hb-watch use, and a
/// cluster address (a /32 or /128 on `lo`) that the other nodes reach through one of
/// them. chan-switch routes the cluster addresses by policy routing: one table per
/// channel (every peer's cluster address via its address on that LAN) and one rule
/// that says which table the cluster's traffic uses. A switch is one netlink datagram
/// on each node. Heartbeats are not touched: they stay bound to their own channel, so
/// that a failed channel is still watched and its recovery seen.
///
/// One node decides: the lowest-named live node of the Active Stations Table. From the
/// per-channel matrix of who hears whom (its own table, and every node's reports) it
/// orders a switch — `t=chan-switch` with the channel and an epoch that only grows and
/// is kept on disk — through hb-send's FIFO, so that the order travels on every
/// channel. Nodes apply an order once, acknowledge it and ignore older ones; the
/// decider sends it again until every live node has. A node whose device loses its
/// carrier moves its own traffic at once and reports. No decision flaps: after an
/// automatic switch the next waits the hold-down (at least 3 x deadtime, doubled on
/// every flap); switching back happens by hand, or with --back after the preferred
/// channel has carried every pair for that long. A node whose channels all failed is
/// dead (hb-watch says so), not a reason to switch.
///
/// `chan-switch run` reads hb-watch's events on stdin (`hb-watch ... | chan-switch
/// run`) and prints its own in the same form: chan-proposed, chan-held-down,
/// chan-ordered, chan-applied (per node, with the time it took), chan-complete,
/// chan-stuck, chan-switched-back, chan-carrier.
///
/// SIGTERM or SIGINT: stop, leaving the routes as they are (the cluster keeps talking).
/// SIGHUP: read the configuration again. SIGUSR1: log the state.
///
/// Exit status: 0 done; 1 failed (for run: hb-watch's events ended, so the pipeline
/// restarts as a unit; for to/back: not every node applied in time; for status: not
/// running); 2 a usage or configuration error, nothing changed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chan-switch",
    version,
    after_help = "Example: hb-watch --deadtime 30ms | chan-switch run --fifo /run/hakit/fifo"
)]
pub struct ChanSwitchArgs {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Follow hb-watch's events on stdin, decide, order and apply switches.
    Run(Box<RunArgs>),
    /// The active channel of every node, as each node reported it.
    Status(StatusArgs),
    /// Switch the whole cluster to this channel by hand (maintenance); it stays until
    /// `back` or a failure of that channel.
    To(ToArgs),
    /// Switch the whole cluster back to the preferred channel, nobody moved.
    Back(BackArgs),
}

/// Where a running chan-switch keeps its state, and how to reach it.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// The configuration file (YAML); flags given here win over it.
    /// [default: /etc/hakit/hakit.yaml when it exists]
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's name. [default: the cluster section's, else `uname -n`]
    #[arg(short = 'n', long, value_name = "NAME")]
    pub node: Option<String>,
    /// What the running chan-switch reports (every node's channel, the order), for
    /// status, to and back. [default: /run/hakit/chan-switch.json]
    #[arg(long, value_name = "FILE")]
    pub status_file: Option<PathBuf>,
    /// Log to syslog instead of stderr.
    #[arg(long)]
    pub syslog: bool,
    /// Log more (debug).
    #[arg(short = 'v', long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Log only warnings and errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// A channel, `NAME=DEV` (or the cluster section's), in the channels' order.
    /// Repeat for every channel.
    #[arg(long = "channel", value_name = "NAME=DEV")]
    pub channels: Vec<String>,
    /// A node: `NAME=CLUSTER_ADDR,ADDR_ON_CHANNEL_1,ADDR_ON_CHANNEL_2...`. Repeat for
    /// every node (this one too).
    #[arg(long = "member", value_name = "NAME=ADDR,ADDR...")]
    pub members: Vec<String>,
    /// `all`: every node moves to the standby channel; `per-peer`: only the traffic
    /// to and from the node whose link failed. [default: all]
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<String>,
    /// The preferred channel, which `back` returns to. [default: the first]
    #[arg(long, value_name = "CHANNEL")]
    pub preferred: Option<String>,
    /// Switch back to the preferred channel by itself once it has carried every pair
    /// for this long (`none`: only by hand). [default: none]
    #[arg(long, value_name = "DURATION|none")]
    pub back: Option<String>,
    /// The hb-watch deadtime the cluster runs with (for the hold-down and the start).
    /// [default: hb-watch's section, else 30s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub deadtime: Option<Duration>,
    /// The hb-send keepalive (orders are sent again after two). [default: hb-send's
    /// section, else 1s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub keepalive: Option<Duration>,
    /// The least time between two automatic switches; each flap doubles it.
    /// [default: 3 x deadtime, which is also the least]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub hold_down: Option<Duration>,
    /// How long a fault must last before it is acted on, so that a node dying (all
    /// its links at once) is not taken for a channel failure. [default: keepalive/2]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub settle: Option<Duration>,
    /// hb-send's FIFO, through which orders and reports go to every channel.
    /// [default: hb-send's section, else /run/hakit/fifo]
    #[arg(long, value_name = "FILE")]
    pub fifo: Option<PathBuf>,
    /// The Active Stations Table. [default: the cluster section's, else /run/hakit/ast]
    #[arg(short = 't', long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Where the epoch and the last order are kept across restarts (on a disk).
    /// [default: /var/lib/hakit/chan-switch]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The routing table of the first channel; channel i uses this + i. [default: 6940]
    #[arg(long, value_name = "N")]
    pub route_table: Option<u32>,
    /// The priority of chan-switch's rules (it owns this one and the next 15).
    /// [default: 1000]
    #[arg(long, value_name = "N")]
    pub rule_priority: Option<u32>,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Run with SCHED_FIFO and locked memory, as hb-send and hb-watch do, so that load
    /// does not delay a switch (needs CAP_SYS_NICE and CAP_IPC_LOCK).
    #[arg(long)]
    pub realtime: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ToArgs {
    /// The channel (its name) every node's cluster traffic should use.
    pub channel: String,
    #[command(flatten)]
    pub common: Common,
    /// How long to wait for every live node to apply it. [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub wait: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct BackArgs {
    #[command(flatten)]
    pub common: Common,
    /// How long to wait for every live node to apply it. [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub wait: Option<Duration>,
}
