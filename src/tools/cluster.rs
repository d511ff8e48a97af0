//! The flags hb-send and hb-watch share: where the cluster is described and how to log.

use clap::Args;
use std::path::PathBuf;

/// Options every heartbeat tool shares: where the cluster is described and how to log.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// The configuration file (YAML); flags given here win over it.
    /// [default: /etc/hakit/hakit.yaml when it exists]
    #[arg(short = 'c', long, value_name = "FILE", env = "HAKIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's name. [default: `uname -n`]
    #[arg(short = 'n', long, value_name = "NAME")]
    pub node: Option<String>,
    /// The cluster's members, comma separated; messages from anyone else are refused.
    /// [default: any node that signs with a known key]
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub nodes: Option<Vec<String>>,
    /// The keys file, in Heartbeat's authkeys format, mode 0600. [default: /etc/hakit/authkeys]
    #[arg(short = 'k', long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// A channel: `bcast:DEV`, `mcast:DEV:GROUP[:TTL]` or `ucast:DEV:PEER[,PEER...]`,
    /// optionally named `NAME=...`. Repeat for every channel, in the same order on
    /// every node.
    #[arg(long = "channel", value_name = "SPEC")]
    pub channels: Vec<String>,
    /// The UDP port. [default: 694]
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: Option<u16>,
    /// The Active Stations Table file. [default: /run/hakit/ast]
    #[arg(short = 't', long, value_name = "FILE")]
    pub table: Option<PathBuf>,
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
