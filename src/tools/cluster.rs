//! What hb-send and hb-watch share: the flags that say where the cluster is described
//! and how to log, and their resolution with the file's `cluster` section — or with
//! Heartbeat's own ha.cf (`--ha-cf`).
//!
//! Precedence: a flag wins; then the YAML key or ha.cf's directive, and both giving
//! the same setting is an error at the key naming the ha.cf line (a migrating
//! operator's two descriptions must not disagree silently); then the default. With
//! --ha-cf the keys are the `authkeys` beside it unless --keys is given, and what
//! ha.cf does not say (the table, floors, FIFO, hooks) still comes from the YAML.

use crate::config::hacf::{At, HaCf};
use crate::config::{
    uname_node, ChannelSpec, Cluster, Error, File, Origin, Resolver, Source, DEFAULT_KEYS, DEFAULT_PORT, DEFAULT_TABLE,
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
    /// Heartbeat's ha.cf: its node, keepalive, deadtime, warntime, initdead, udpport,
    /// bcast, mcast, ucast, ping and deadping lines stand for the YAML's keys (a key given in
    /// both places is an error; flags still win), and its `authkeys` beside it for
    /// --keys. What hakit does not do (crm, respawn, serial, logfile, ...) is named with
    /// its line in a warning and skipped; auto_failback belongs to the composition
    /// (contrib/pair.sh --failback). It is read as Heartbeat 3.0.6 reads it: node names
    /// lowercased (this node's too), host names resolved once, a directive set twice
    /// taken last with a warning, warntime above deadtime clamped with one. Refused on
    /// purpose: an mcast port other than the one port hakit uses for every channel
    /// (udpport; without it 694 beside bcast or ucast). A bad line: FILE:LINE:COLUMN,
    /// exit status 2.
    #[arg(long = "ha-cf", value_name = "FILE")]
    pub ha_cf: Option<PathBuf>,
    /// The keys file, in Heartbeat's authkeys format, mode 0600. [default: /etc/hakit/authkeys,
    /// or the authkeys beside --ha-cf]
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

/// Where the cluster is described: the YAML file (if any) and ha.cf (with --ha-cf).
#[derive(Debug, Default)]
pub struct Described {
    pub file: File,
    pub src: Option<Source>,
    pub hacf: Option<HaCf>,
}

impl Described {
    /// What ha.cf says for one setting, with its place, for [`Resolver::pick_also`].
    pub fn hacf<T: Clone>(&self, get: impl Fn(&HaCf) -> Option<&At<T>>) -> Option<(T, Origin)> {
        let h = self.hacf.as_ref()?;
        get(h).map(|a| (a.value.clone(), origin(h, a)))
    }

    /// What ha.cf's repeated lines say (`node`, `ping`), at the first of them; none
    /// when it has no such line.
    pub fn hacf_all<T: Clone>(&self, get: impl Fn(&HaCf) -> &[At<T>]) -> Option<(Vec<T>, Origin)> {
        let h = self.hacf.as_ref()?;
        let all = get(h);
        let first = all.first()?;
        Some((all.iter().map(|a| a.value.clone()).collect(), origin(h, first)))
    }
}

fn origin<T>(h: &HaCf, a: &At<T>) -> Origin {
    Origin::At {
        file: h.path.clone(),
        line: a.line,
        col: a.col,
    }
}

impl ClusterArgs {
    /// Read the YAML file (--config, or the default one when it exists) and ha.cf
    /// (--ha-cf); what ha.cf says that hakit does not do is logged, with its line.
    pub fn load(&self) -> Result<Described, Error> {
        let (file, src) = crate::config::load_for(&self.config)?;
        let hacf = self.ha_cf.as_deref().map(crate::config::hacf::load).transpose()?;
        if let Some(h) = &hacf {
            let at = |line, col| format!("{}:{line}:{col}", h.path.display());
            for s in &h.skipped {
                crate::base::log::warn(&format!("{}: `{}` skipped: {}", at(s.line, s.col), s.what, s.why));
            }
            for w in &h.warnings {
                crate::base::log::warn(&format!("{}: {}", at(w.line, w.col), w.value));
            }
            if let Some(a) = &h.auto_failback {
                crate::base::log::warn(&format!(
                    "{}: auto_failback {} is the composition's: contrib/pair.sh --failback (on) or without it (off); hb-send and hb-watch move nothing",
                    at(a.line, a.col),
                    a.value
                ));
            }
        }
        Ok(Described { file, src, hacf })
    }

    /// The shared settings, checked: these flags, then the file's `cluster` section
    /// or ha.cf, then the defaults.
    pub fn resolve(&self, d: &Described) -> Result<Cluster, Error> {
        let (f, src) = (&d.file.cluster, d.src.as_ref());
        let r = Resolver::new(src, "cluster");
        let mut node = r.pick("--node", self.node.clone(), "node", f.node.clone(), uname_node);
        // Heartbeat lowercases node names, its own (uname) too: a cluster described by
        // ha.cf names this node as its peers hear it.
        if d.hacf.is_some() {
            node.value.make_ascii_lowercase();
        }
        if !crate::wire::hv::valid_name(&node.value) {
            return Err(r.error(
                &node.from,
                format!(
                    "`{}` is not a usable node name (letters, digits, - _ .; at most 64)",
                    node.value
                ),
            ));
        }
        let hacf_nodes = d.hacf_all(|h| &h.nodes);
        let nodes = r.pick_also(
            "--nodes",
            self.nodes.clone(),
            "nodes",
            f.nodes.clone(),
            hacf_nodes,
            Vec::new,
        )?;
        // Heartbeat refuses to start on a node its ha.cf does not list; so does hakit,
        // rather than be refused by every peer.
        if matches!(nodes.from, Origin::At { .. }) && !nodes.value.contains(&node.value) {
            return Err(r.error(
                &nodes.from,
                format!(
                    "this node `{}` ({}) is not among ha.cf's nodes",
                    node.value,
                    match node.from {
                        Origin::Default => "uname -n",
                        Origin::Flag(_) => "--node",
                        _ => "cluster.node",
                    }
                ),
            ));
        }
        for n in &nodes.value {
            if !crate::wire::hv::valid_name(n) {
                return Err(r.error(&nodes.from, format!("`{n}` is not a usable node name")));
            }
        }
        // As pick_also: the YAML and ha.cf both listing channels is refused, flags or not.
        let hacf_channels = d.hacf.as_ref().filter(|h| !h.channels.is_empty());
        if let (Some(h), false) = (hacf_channels, f.channels.is_empty()) {
            return Err(r.error(
                &r.file_origin("channels"),
                format!(
                    "`channels` are also given by {}:{}:{}; give them in one place",
                    h.path.display(),
                    h.channels[0].line,
                    h.channels[0].col
                ),
            ));
        }
        let (channels, channels_from) = if !self.channels.is_empty() {
            let c = self
                .channels
                .iter()
                .map(|c| ChannelSpec::parse(c).map_err(|m| r.error(&Origin::Flag("--channel"), m)))
                .collect::<Result<Vec<_>, _>>()?;
            (c, Origin::Flag("--channel"))
        } else if let Some(h) = hacf_channels {
            (
                h.channels.iter().map(|c| c.value.clone()).collect(),
                origin(h, &h.channels[0]),
            )
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
                "no channel: give --channel (e.g. --channel bcast:eth0), cluster.channels in the configuration, or bcast, mcast or ucast lines in ha.cf",
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
        let port = r.pick_also(
            "--port",
            self.port,
            "port",
            f.port,
            d.hacf(|h| h.udpport.as_ref()),
            || DEFAULT_PORT,
        )?;
        if port.value == 0 {
            return Err(r.error(&port.from, "port 0 is not a port"));
        }
        Ok(Cluster {
            node: node.value,
            nodes: nodes.value,
            keys: r
                .pick_also(
                    "--keys",
                    self.keys.clone(),
                    "keys",
                    f.keys.clone(),
                    d.hacf.as_ref().map(|h| (h.authkeys(), Origin::Default)),
                    || DEFAULT_KEYS.into(),
                )?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: ClusterArgs,
    }

    /// ha.cf `cf` (and the YAML `yaml`, if any) in a fresh directory, then `flags`.
    fn resolve(cf: &str, yaml: Option<&str>, flags: &[&str]) -> (Result<Cluster, String>, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ha.cf");
        std::fs::write(&p, cf).unwrap();
        let mut argv = vec!["t".to_string(), "--ha-cf".into(), p.display().to_string()];
        if let Some(y) = yaml {
            let y_path = d.path().join("h.yaml");
            std::fs::write(&y_path, y).unwrap();
            argv.extend(["--config".into(), y_path.display().to_string()]);
        } else {
            // Not the host's /etc/hakit/hakit.yaml.
            let empty = d.path().join("empty.yaml");
            std::fs::write(&empty, "").unwrap();
            argv.extend(["--config".into(), empty.display().to_string()]);
        }
        argv.extend(flags.iter().map(|s| s.to_string()));
        let a = T::try_parse_from(argv).unwrap().c;
        let r = a
            .load()
            .and_then(|d| a.resolve(&d))
            .map_err(|e| e.to_string().replace(&format!("{}/", d.path().display()), ""));
        (r, d.path().to_path_buf())
    }

    #[test]
    fn ha_cf_describes_the_cluster() {
        let (c, dir) = resolve(
            "udpport 695\nbcast eth0\nucast eth1 10.0.1.2\nnode n1\nnode n2\n",
            None,
            &["--node", "n1"],
        );
        let c = c.unwrap();
        assert_eq!(c.nodes, ["n1", "n2"]);
        assert_eq!(c.port, 695);
        assert_eq!(c.channels.len(), 2);
        assert_eq!(
            c.channels[1].mode,
            Mode::Ucast {
                peers: vec!["10.0.1.2".parse().unwrap()]
            }
        );
        // The keys: Heartbeat's, beside ha.cf.
        assert_eq!(c.keys, dir.join("authkeys"));
    }

    #[test]
    fn flags_win_and_two_files_giving_one_setting_is_an_error() {
        let cf = "udpport 695\nbcast eth0\nnode n1 n2\n";
        let (c, _) = resolve(
            cf,
            None,
            &[
                "--node",
                "n1",
                "--port",
                "40000",
                "--channel",
                "bcast:eth5",
                "--keys",
                "/k",
            ],
        );
        let c = c.unwrap();
        assert_eq!(
            (c.port, c.channels[0].dev.as_str(), c.keys.to_str()),
            (40000, "eth5", Some("/k"))
        );
        // What ha.cf does not say still comes from the YAML.
        let (c, _) = resolve(cf, Some("cluster:\n  table: /tmp/t.ast\n"), &["--node", "n1"]);
        assert_eq!(c.unwrap().table.to_str(), Some("/tmp/t.ast"));
        for (yaml, want) in [
            (
                "cluster:\n  port: 694\n",
                "h.yaml:2:3: `port` is also given by ha.cf:1:9; give it in one place",
            ),
            (
                "cluster:\n  nodes: [n1]\n",
                "h.yaml:2:3: `nodes` is also given by ha.cf:3:6; give it in one place",
            ),
            (
                "cluster:\n  channels:\n    - {dev: eth0, mode: bcast}\n",
                "h.yaml:2:3: `channels` are also given by ha.cf:2:7; give them in one place",
            ),
            (
                "cluster:\n  keys: /etc/k\n",
                "h.yaml:2:3: `keys` is also given by --ha-cf; give it in one place",
            ),
        ] {
            let (e, _) = resolve(cf, Some(yaml), &["--node", "n1", "--port", "1"]);
            assert_eq!(e.unwrap_err(), want);
        }
        // Heartbeat refuses a node its ha.cf does not list; so does hakit.
        let (e, _) = resolve(cf, None, &["--node", "n3"]);
        assert_eq!(
            e.unwrap_err(),
            "ha.cf:3:6: this node `n3` (--node) is not among ha.cf's nodes"
        );
        let (e, _) = resolve("node n1\n", None, &["--node", "n1"]);
        assert!(e.unwrap_err().starts_with("no channel: "));
    }

    /// Heartbeat lowercases every node name, this node's own too (flag or uname).
    #[test]
    fn with_ha_cf_this_nodes_name_is_lowercased() {
        let (c, _) = resolve("bcast eth0\nnode N1 n2\n", None, &["--node", "N1"]);
        let c = c.unwrap();
        assert_eq!(
            (c.node.as_str(), c.nodes.as_slice()),
            ("n1", ["n1".to_string(), "n2".into()].as_slice())
        );
    }
}
