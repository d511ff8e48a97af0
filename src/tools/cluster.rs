//! What hb-send and hb-watch share: the flags that say where the cluster is described
//! and how to log, and their resolution with the file's `cluster` section.

use crate::config::{
    uname_node, ChannelSpec, Cluster, ClusterSection, Error, Origin, Resolver, Source, DEFAULT_KEYS, DEFAULT_PORT,
    DEFAULT_TABLE,
};
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

impl ClusterArgs {
    /// The shared settings, checked: these flags, then the file's `cluster` section,
    /// then the defaults.
    pub fn resolve(&self, f: &ClusterSection, src: Option<&Source>) -> Result<Cluster, Error> {
        let r = Resolver::new(src, "cluster");
        let node = r.pick("--node", self.node.clone(), "node", f.node.clone(), uname_node);
        if !crate::wire::hv::valid_name(&node.value) {
            return Err(r.error(
                &node.from,
                format!(
                    "`{}` is not a usable node name (letters, digits, - _ .; at most 64)",
                    node.value
                ),
            ));
        }
        let nodes = r.pick("--nodes", self.nodes.clone(), "nodes", f.nodes.clone(), Vec::new);
        for n in &nodes.value {
            if !crate::wire::hv::valid_name(n) {
                return Err(r.error(&nodes.from, format!("`{n}` is not a usable node name")));
            }
        }
        let (channels, channels_from) = if !self.channels.is_empty() {
            let c = self
                .channels
                .iter()
                .map(|c| ChannelSpec::parse(c).map_err(|m| r.error(&Origin::Flag("--channel"), m)))
                .collect::<Result<Vec<_>, _>>()?;
            (c, Origin::Flag("--channel"))
        } else {
            let from = r.file_origin("channels");
            let c = f
                .channels
                .iter()
                .enumerate()
                .map(|(i, c)| ChannelSpec::from_entry(c).map_err(|m| r.error(&r.item_origin("channels", i, ""), m)))
                .collect::<Result<Vec<_>, _>>()?;
            (c, from)
        };
        if channels.is_empty() {
            return Err(Error::new(
                "no channel: give --channel (e.g. --channel bcast:eth0) or cluster.channels in the configuration",
            ));
        }
        if channels.len() > crate::table::MAX_CHANNELS {
            return Err(r.error(
                &channels_from,
                format!("{} channels; at most {}", channels.len(), crate::table::MAX_CHANNELS),
            ));
        }
        for (i, c) in channels.iter().enumerate() {
            if channels[..i].iter().any(|o| o.name == c.name) {
                return Err(r.error(
                    &channels_from,
                    format!("two channels are named `{}`; name them (NAME=...)", c.name),
                ));
            }
        }
        let port = r.pick("--port", self.port, "port", f.port, || DEFAULT_PORT);
        if port.value == 0 {
            return Err(r.error(&port.from, "port 0 is not a port"));
        }
        Ok(Cluster {
            node: node.value,
            nodes: nodes.value,
            keys: r
                .pick("--keys", self.keys.clone(), "keys", f.keys.clone(), || {
                    DEFAULT_KEYS.into()
                })
                .value,
            port: port.value,
            table: r
                .pick("--table", self.table.clone(), "table", f.table.clone(), || {
                    DEFAULT_TABLE.into()
                })
                .value,
            channels,
        })
    }
}
