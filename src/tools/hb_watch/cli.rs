use crate::tools::cluster::ClusterArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Receive heartbeats, keep the Active Stations Table, report node and link failures.
///
/// hb-watch listens on every channel, verifies every message, drops replays and
/// duplicates, and decides per node and channel: a late heartbeat after warntime, a
/// link dead after deadtime without heartbeats on it (or at once when the channel's
/// device loses its carrier), a node dead when no channel hears it and no other live
/// node does (unreachable when another still does), a node back up, a node restarted.
///
/// Every change is printed on stdout as one line (`EVENT NODE ts=... key=value...`, or
/// JSON with --json), run through the --exec hook with the fields in its environment
/// (`HA_<field>`, plus Heartbeat's HA_t, HA_st, HA_src), and signalled to every
/// --notify process. The table (see hakit-table(5)) is kept up to date for any reader.
///
/// Events: node-up, node-dead, node-unreachable, node-restart, node-status, link-up,
/// link-late, link-dead, message, ping-up, ping-dead. node-status comes with the first
/// heartbeat after node-up and whenever what the node announces changes: its status,
/// what it holds (`held`, set by its scripts through hb-send's FIFO) and how many of
/// its ping nodes it reaches (`pings=UP/OF`); node-dead and node-unreachable name what
/// the node held when last heard (`held`). contrib/pair.sh settles a healed partition
/// from these alone: when both nodes hold the address, with failback the preferred
/// node keeps it, without it the one that took it over last; the other releases.
///
/// Generations more than a day ahead of this node's clock are refused (a forged
/// message would otherwise lock the real node out); every peer's floor is saved in
/// --floors, so that a reboot that empties /run does not let old heartbeats back in.
///
/// SIGTERM or SIGINT: stop (the table is left for readers, marked without a writer).
/// SIGHUP: read the configuration again (timing, hooks, notify). SIGUSR1: log the
/// table.
///
/// Exit status: 0 stopped cleanly; 1 a runtime failure; 2 a usage or configuration
/// error. `hb-watch status NODE`: 0 the node is up, 1 it is not, 2 no such node or no
/// table.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "hb-watch",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Example: hb-watch --node n1 --keys /etc/hakit/authkeys --channel bcast:eth0 --channel bcast:eth1 --deadtime 2s --exec /etc/hakit/hook | while read ev node rest; do ...; done"
)]
pub struct HbWatchArgs {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Silence after which a link is dead (a peer's announced `dt` wins). [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub deadtime: Option<Duration>,
    /// Silence after which a heartbeat is reported late. [default: deadtime/2]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub warntime: Option<Duration>,
    /// Deadtime right after start, while links come up. [default: 2 x deadtime]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub initdead: Option<Duration>,
    /// Room in the table. [default: 256]
    #[arg(long, value_name = "N")]
    pub max_nodes: Option<usize>,
    /// Run this program for every event, one at a time, in order, with the event's
    /// fields in its environment.
    #[arg(long, value_name = "PROGRAM")]
    pub exec: Option<PathBuf>,
    /// A hook still running after this long is killed with its process group, and
    /// reported. [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub hook_timeout: Option<Duration>,
    /// Events waiting for the hook at most; one more is dropped, counted and logged
    /// (stdout and --notify never wait for hooks). [default: 1024]
    #[arg(long, value_name = "N")]
    pub hook_queue: Option<usize>,
    /// Signal this process on every event: a PID or a pid file, optionally `:SIGNAL`
    /// (default SIGUSR2). Repeatable.
    #[arg(long, value_name = "PID|PIDFILE[:SIG]")]
    pub notify: Vec<String>,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Run with SCHED_FIFO and locked memory so that load does not delay detection.
    #[arg(long)]
    pub realtime: bool,
    /// Where every peer's generation and sequence floor is kept across restarts and
    /// reboots, so that old heartbeats replayed to a fresh table are refused. Keep it
    /// on a disk, not in /run. [default: /var/lib/hakit/floors for the default table,
    /// else TABLE.floors]
    #[arg(long, value_name = "FILE")]
    pub floors: Option<PathBuf>,
    /// A ping node: an address on the service network (the gateway, say) pinged every
    /// --ping-interval, as Heartbeat's `ping`. Its state is a record in the table, a
    /// `ping-up` or `ping-dead` event, and travels in this node's heartbeats (`pn`),
    /// so that a pair can tell which side still reaches the network. Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub ping: Vec<String>,
    /// How often each ping node is pinged. [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub ping_interval: Option<Duration>,
    /// A ping node that has not answered for this long is dead. [default: 3 x
    /// ping-interval]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub ping_deadtime: Option<Duration>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print the Active Stations Table (like cl_status), or answer whether a node (or
    /// one of its links) is up through the exit status.
    Status(StatusArgs),
    /// Clear a node's replay floor (its generation and sequence), when a node can no
    /// longer be heard because a floor was set above anything it sends (a forged
    /// generation, a clock that was far ahead). A running hb-watch applies it at once
    /// (it is sent SIGHUP), a stopped one at its next start.
    Forget(ForgetArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ForgetArgs {
    /// The node whose floor to clear.
    pub node: String,
    /// The floors file. [default: as hb-watch's --floors]
    #[arg(long, value_name = "FILE")]
    pub floors: Option<PathBuf>,
    /// The Active Stations Table file (its writer is told). [default: /run/hakit/ast]
    #[arg(short = 't', long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// The configuration file, for the paths.
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The node to ask about: exit 0 if it is up, 1 if not.
    pub node: Option<String>,
    /// With NODE: ask about this channel's link (its name or number) instead.
    #[arg(long, value_name = "CHANNEL", requires = "node")]
    pub link: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the table in Prometheus' text format: nodes (state, what they hold,
    /// generation, load, ping nodes), links (state, last heard, lost, duplicate and
    /// rejected messages), packets rejected before a node could be named, ping nodes,
    /// and whether a writer holds the table (hakit_table_writer_up).
    #[arg(long, conflicts_with_all = ["json", "node"])]
    pub prometheus: bool,
    /// As --prometheus, written to FILE (named *.prom) by replacing it atomically, for
    /// node_exporter's textfile collector (/var/lib/prometheus/node-exporter/ on
    /// Debian), which may read it at any moment.
    #[arg(long, value_name = "FILE", value_parser = crate::base::prom::out_path, conflicts_with_all = ["json", "node", "prometheus"])]
    pub prometheus_out: Option<PathBuf>,
    /// The Active Stations Table file. [default: /run/hakit/ast]
    #[arg(short = 't', long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// The configuration file, for the table's path.
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
}
