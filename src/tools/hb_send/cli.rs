use crate::tools::cluster::ClusterArgs;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Send heartbeats on every channel, and the messages written to a FIFO.
///
/// hb-send broadcasts a Heartbeat-compatible `t=status` message every keepalive on
/// every channel, signed with the keys file, stamped with a sequence number and a
/// generation that is bumped and saved at every start. Messages written to its FIFO
/// (`>>>` ... `<<<` blocks, as Heartbeat's ha_clustermsg writes them) go to the whole
/// cluster, stamped the same way; a `t=status` message there changes what this node
/// announces in every heartbeat from then on: its status (`st=standby`; `dead` is
/// refused, hb-send says it only when it stops) and what it holds (`held=` comma-separated
/// words of letters, digits and `. : / @ _ -`, such as service addresses; empty for
/// nothing), which every hb-watch reports in node-status and `hb-watch status`. Each
/// heartbeat also carries this node's view of the cluster and how many of its ping
/// nodes answer (`pn`), read from the local Active Stations Table, so that receivers can
/// tell a dead node from a cut link, and which side still reaches the network.
///
/// SIGTERM or SIGINT: announce `st=dead` once (peers fail over at once) and stop.
/// SIGHUP: read the configuration and keys again. SIGUSR1: log a status line.
///
/// Exit status: 0 stopped cleanly; 1 a runtime failure (a channel could not be opened,
/// the generation could not be saved); 2 a usage or configuration error.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "hb-send",
    version,
    after_help = "Example: hb-send --node n1 --keys /etc/hakit/authkeys --channel bcast:eth0 --channel bcast:eth1 --keepalive 200ms"
)]
pub struct HbSendArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Interval between heartbeats. [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub keepalive: Option<Duration>,
    /// The deadtime announced to receivers (`dt`): they declare this node's links dead
    /// after this much silence. More than twice --keepalive; with --redundancy, at least
    /// twice. [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = crate::base::duration::clap_parse)]
    pub deadtime: Option<Duration>,
    /// Send every message K+1 times on each channel, to survive K losses in a row.
    /// [default: 0]
    #[arg(long, value_name = "K")]
    pub redundancy: Option<u32>,
    /// The FIFO to read cluster messages from. hb-send creates it (mode 0600) and
    /// refuses an existing one that is not a FIFO, not its own, or writable by others.
    /// [default: /run/hakit/fifo]
    #[arg(long, value_name = "PATH")]
    pub fifo: Option<PathBuf>,
    /// Let this group write to the FIFO too (mode 0620), for scripts that do not run
    /// as hb-send's user.
    #[arg(long, value_name = "GROUP")]
    pub fifo_group: Option<String>,
    /// Read no FIFO.
    #[arg(long, conflicts_with = "fifo")]
    pub no_fifo: bool,
    /// Where the generation is saved (fsync) at every start. [default: /var/lib/hakit/generation]
    #[arg(long, value_name = "FILE")]
    pub generation_file: Option<PathBuf>,
    /// The status to announce at start (`st`). [default: active]
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Run with SCHED_FIFO and locked memory so that load does not delay heartbeats;
    /// with two CPUs or more, a second thread pinned to another CPU sends a heartbeat
    /// the main thread could not send on time (a CPU the host or a cgroup quota holds
    /// up for 100 ms would otherwise silence the node).
    #[arg(long)]
    pub realtime: bool,
    /// Send this many heartbeats, then stop (for scripts and tests).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}
