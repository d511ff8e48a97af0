//! The cluster's configuration: one YAML file, each tool reading its own section and
//! the shared `cluster` section; every setting is also a flag, and flags win.
//!
//! Every error names the file, line and column where there is one, and maps to exit
//! status 2. Settings are checked here, in one place, before a tool touches anything.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::tools::cluster_args::ClusterArgs;
use crate::tools::hb_send::cli::HbSendArgs;
use crate::tools::hb_watch::cli::RunArgs;
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "/etc/hakit/hakit.yaml";
pub const DEFAULT_KEYS: &str = "/etc/hakit/authkeys";
pub const DEFAULT_TABLE: &str = "/run/hakit/ast";
pub const DEFAULT_FIFO: &str = "/run/hakit/fifo";
pub const DEFAULT_GENERATION: &str = "/var/lib/hakit/generation";
pub const DEFAULT_PORT: u16 = 694;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: Option<PathBuf>,
    pub pos: Option<(usize, usize)>,
    pub msg: String,
}

impl Error {
    pub fn new(msg: impl Into<String>) -> Error {
        Error {
            file: None,
            pos: None,
            msg: msg.into(),
        }
    }
    fn at(src: &Source, pos: Option<(usize, usize)>, msg: impl Into<String>) -> Error {
        Error {
            file: Some(src.path.clone()),
            pos,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match (&self.file, self.pos) {
            (Some(p), Some((l, c))) => write!(f, "{}:{l}:{c}: {}", p.display(), self.msg),
            (Some(p), None) => write!(f, "{}: {}", p.display(), self.msg),
            _ => f.write_str(&self.msg),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(default, rename = "hb-send")]
    pub hb_send: HbSendSection,
    #[serde(default, rename = "hb-watch")]
    pub hb_watch: HbWatchSection,
    // The other tools' sections, read by those tools.
    #[serde(default, rename = "arp-announce")]
    pub arp_announce: Option<serde_yaml::Value>,
    #[serde(default)]
    pub ipfake: IpfakeSection,
    #[serde(default, rename = "chan-switch")]
    pub chan_switch: Option<serde_yaml::Value>,
    #[serde(default, rename = "lvs-ctl")]
    pub lvs_ctl: Option<serde_yaml::Value>,
    #[serde(default, rename = "mon-check")]
    pub mon_check: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    pub node: Option<String>,
    pub nodes: Option<Vec<String>>,
    pub keys: Option<PathBuf>,
    pub port: Option<u16>,
    pub table: Option<PathBuf>,
    #[serde(default)]
    pub channels: Vec<ChannelEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEntry {
    pub name: Option<String>,
    pub dev: String,
    pub mode: ModeName,
    pub group: Option<Ipv4Addr>,
    pub ttl: Option<u8>,
    #[serde(default)]
    pub peers: Vec<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    Bcast,
    Mcast,
    Ucast,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IpfakeSection {
    pub pid_dir: Option<PathBuf>,
    #[serde(default)]
    pub addresses: Vec<AddressEntry>,
}

/// One address ipfake may take over, as the configuration describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AddressEntry {
    /// `192.0.2.10/24`
    pub addr: String,
    pub dev: String,
    pub label: Option<String>,
    pub count: Option<u32>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub refresh: Option<Duration>,
    #[serde(default)]
    pub routers: Vec<String>,
    pub probe: Option<bool>,
}

/// The `ipfake` section of the configuration named (or the default one when it
/// exists), with the file's text for error positions.
pub fn ipfake_section(config: &Option<PathBuf>) -> Result<(IpfakeSection, Option<Source>), Error> {
    let (f, src) = load_for(config)?;
    Ok((f.ipfake, src))
}

/// An error about the `ipfake` section, pointing at `key` in the file when there is one.
pub fn ipfake_error(src: &Option<Source>, key: &str, msg: String) -> Error {
    match src {
        Some(s) => Error::at(s, s.locate("ipfake", key), msg),
        None => Error::new(msg),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HbSendSection {
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub keepalive: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub deadtime: Option<Duration>,
    pub redundancy: Option<u32>,
    pub fifo: Option<PathBuf>,
    pub generation_file: Option<PathBuf>,
    pub status: Option<String>,
    pub realtime: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HbWatchSection {
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub deadtime: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub warntime: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub initdead: Option<Duration>,
    pub max_nodes: Option<usize>,
    pub exec: Option<PathBuf>,
    #[serde(default)]
    pub notify: Vec<String>,
    pub json: Option<bool>,
    pub realtime: Option<bool>,
}

/// The text of a loaded file, kept to point at a key's line in semantic errors.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// Line and column of `key:` inside `section:` (best effort, for error messages).
    pub fn locate(&self, section: &str, key: &str) -> Option<(usize, usize)> {
        let mut in_section = section.is_empty();
        for (i, line) in self.text.lines().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if indent == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
                in_section = section.is_empty() || trimmed.starts_with(&format!("{section}:"));
                if section.is_empty() && trimmed.starts_with(&format!("{key}:")) {
                    return Some((i + 1, 1));
                }
                continue;
            }
            let t = trimmed.trim_start_matches("- ");
            if in_section && (t.starts_with(&format!("{key}:")) || t.starts_with(&format!("{key} :"))) {
                return Some((i + 1, indent + 1 + (trimmed.len() - t.len())));
            }
        }
        None
    }
}

/// Read and parse a configuration file.
pub fn load(path: &Path) -> Result<(File, Source), Error> {
    let src = Source::read(path)?;
    let file = parse(&src)?;
    Ok((file, src))
}

impl Source {
    /// Read a configuration file.
    pub fn read(path: &Path) -> Result<Source, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error {
            file: Some(path.into()),
            pos: None,
            msg: format!("cannot read the configuration: {e}"),
        })?;
        Ok(Source {
            path: path.into(),
            text,
        })
    }

    /// Deserialize the file as `T`; an error names the file, line and column.
    pub fn yaml<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_yaml::from_str::<T>(&self.text).map_err(|e| {
            let pos = e.location().map(|l| (l.line(), l.column()));
            // serde_yaml appends " at line L column C"; the position is already in front.
            let msg = e.to_string();
            let msg = match msg.find(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            Error::at(self, pos, msg)
        })
    }
}

pub fn parse(src: &Source) -> Result<File, Error> {
    if src.text.trim().is_empty() {
        return Ok(File::default());
    }
    src.yaml::<File>()
}

/// Load the file named by --config, or the default one when it exists.
fn load_for(arg: &Option<PathBuf>) -> Result<(File, Option<Source>), Error> {
    match arg {
        Some(p) => load(p).map(|(f, s)| (f, Some(s))),
        None if Path::new(DEFAULT_CONFIG).exists() => load(Path::new(DEFAULT_CONFIG)).map(|(f, s)| (f, Some(s))),
        None => Ok((File::default(), None)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Bcast,
    Mcast { group: Ipv4Addr, ttl: u8 },
    Ucast { peers: Vec<IpAddr> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub name: String,
    pub dev: String,
    pub mode: Mode,
}

impl ChannelSpec {
    /// `[NAME=]bcast:DEV`, `[NAME=]mcast:DEV:GROUP[:TTL]`, `[NAME=]ucast:DEV:PEER[,PEER]`
    pub fn parse(s: &str) -> Result<ChannelSpec, String> {
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) => (Some(n.to_string()), r),
            None => (None, s),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let bad =
            || format!("`{s}` is not a channel (write bcast:DEV, mcast:DEV:GROUP[:TTL] or ucast:DEV:PEER[,PEER...])");
        if parts.len() < 2 || parts[1].is_empty() {
            return Err(bad());
        }
        let dev = parts[1].to_string();
        let mode = match (parts[0], parts.len()) {
            ("bcast", 2) => Mode::Bcast,
            ("mcast", 3 | 4) => {
                let group: Ipv4Addr = parts[2]
                    .parse()
                    .map_err(|_| format!("`{}` is not an IPv4 multicast group", parts[2]))?;
                let ttl = match parts.get(3) {
                    Some(t) => t.parse().map_err(|_| format!("`{t}` is not a TTL (0..255)"))?,
                    None => 1,
                };
                Mode::Mcast { group, ttl }
            }
            ("ucast", 3) => {
                let peers = parts[2]
                    .split(',')
                    .map(|p| p.parse::<IpAddr>().map_err(|_| format!("`{p}` is not an IP address")))
                    .collect::<Result<Vec<_>, _>>()?;
                Mode::Ucast { peers }
            }
            _ => return Err(bad()),
        };
        let spec = ChannelSpec {
            name: name.unwrap_or_else(|| dev.clone()),
            dev,
            mode,
        };
        spec.check()?;
        Ok(spec)
    }

    fn from_entry(e: &ChannelEntry) -> Result<ChannelSpec, String> {
        let mode = match e.mode {
            ModeName::Bcast => Mode::Bcast,
            ModeName::Mcast => Mode::Mcast {
                group: e.group.ok_or("an mcast channel needs `group`")?,
                ttl: e.ttl.unwrap_or(1),
            },
            ModeName::Ucast => {
                if e.peers.is_empty() {
                    return Err("a ucast channel needs `peers`".into());
                }
                Mode::Ucast { peers: e.peers.clone() }
            }
        };
        let spec = ChannelSpec {
            name: e.name.clone().unwrap_or_else(|| e.dev.clone()),
            dev: e.dev.clone(),
            mode,
        };
        spec.check()?;
        Ok(spec)
    }

    fn check(&self) -> Result<(), String> {
        if self.dev.is_empty() || self.dev.len() >= libc::IFNAMSIZ || self.dev.contains('/') {
            return Err(format!("`{}` is not an interface name", self.dev));
        }
        if self.name.is_empty() || self.name.len() > crate::table::CHANNEL_NAME_LEN {
            return Err(format!("channel name `{}` must be 1 to 16 characters", self.name));
        }
        if let Mode::Mcast { group, .. } = self.mode {
            if !group.is_multicast() {
                return Err(format!("{group} is not a multicast group (224.0.0.0/4)"));
            }
        }
        Ok(())
    }
}

/// The settings every heartbeat tool shares, checked.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub node: String,
    pub nodes: Vec<String>,
    pub keys: PathBuf,
    pub port: u16,
    pub table: PathBuf,
    pub channels: Vec<ChannelSpec>,
}

fn uname_node() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn resolve_cluster(a: &ClusterArgs, f: &ClusterSection, src: Option<&Source>) -> Result<Cluster, Error> {
    let err = |key: &str, msg: String| match src {
        Some(s) => Error::at(s, s.locate("cluster", key), msg),
        None => Error::new(msg),
    };
    let node = a.node.clone().or_else(|| f.node.clone()).unwrap_or_else(uname_node);
    if !crate::wire::hv::valid_name(&node) {
        return Err(err(
            "node",
            format!("`{node}` is not a usable node name (letters, digits, - _ .; at most 64)"),
        ));
    }
    let nodes = a.nodes.clone().or_else(|| f.nodes.clone()).unwrap_or_default();
    for n in &nodes {
        if !crate::wire::hv::valid_name(n) {
            return Err(err("nodes", format!("`{n}` is not a usable node name")));
        }
    }
    let channels = if !a.channels.is_empty() {
        a.channels
            .iter()
            .map(|c| ChannelSpec::parse(c).map_err(|m| Error::new(format!("--channel: {m}"))))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        f.channels
            .iter()
            .map(|c| ChannelSpec::from_entry(c).map_err(|m| err("channels", m)))
            .collect::<Result<Vec<_>, _>>()?
    };
    if channels.is_empty() {
        return Err(Error::new(
            "no channel: give --channel (e.g. --channel bcast:eth0) or cluster.channels in the configuration",
        ));
    }
    if channels.len() > crate::table::MAX_CHANNELS {
        return Err(err(
            "channels",
            format!("{} channels; at most {}", channels.len(), crate::table::MAX_CHANNELS),
        ));
    }
    for (i, c) in channels.iter().enumerate() {
        if channels[..i].iter().any(|o| o.name == c.name) {
            return Err(err(
                "channels",
                format!("two channels are named `{}`; name them (NAME=...)", c.name),
            ));
        }
    }
    let port = a.port.or(f.port).unwrap_or(DEFAULT_PORT);
    if port == 0 {
        return Err(err("port", "port 0 is not a port".into()));
    }
    Ok(Cluster {
        node,
        nodes,
        keys: a
            .keys
            .clone()
            .or_else(|| f.keys.clone())
            .unwrap_or_else(|| DEFAULT_KEYS.into()),
        port,
        table: a
            .table
            .clone()
            .or_else(|| f.table.clone())
            .unwrap_or_else(|| DEFAULT_TABLE.into()),
        channels,
    })
}

/// hb-send's checked settings.
#[derive(Debug, Clone)]
pub struct SendSettings {
    pub cluster: Cluster,
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub redundancy: u32,
    pub fifo: Option<PathBuf>,
    pub generation_file: PathBuf,
    pub status: String,
    pub realtime: bool,
    pub count: Option<u64>,
    pub config: Option<PathBuf>,
}

impl SendSettings {
    pub fn resolve(a: &HbSendArgs) -> Result<SendSettings, Error> {
        let (f, src) = load_for(&a.cluster.config)?;
        let cluster = resolve_cluster(&a.cluster, &f.cluster, src.as_ref())?;
        let s = &f.hb_send;
        let err = |key: &str, msg: String| match &src {
            Some(sr) => Error::at(sr, sr.locate("hb-send", key), msg),
            None => Error::new(format!("--{key}: {msg}")),
        };
        let keepalive = a.keepalive.or(s.keepalive).unwrap_or(Duration::from_secs(1));
        let deadtime = a.deadtime.or(s.deadtime).unwrap_or(Duration::from_secs(30));
        if keepalive < Duration::from_micros(500) {
            return Err(err(
                "keepalive",
                format!(
                    "keepalive {} is below the 500us floor",
                    crate::base::duration::format(keepalive)
                ),
            ));
        }
        if deadtime <= keepalive * 2 {
            return Err(err(
                "deadtime",
                format!(
                    "deadtime {} must be more than twice keepalive {}",
                    crate::base::duration::format(deadtime),
                    crate::base::duration::format(keepalive)
                ),
            ));
        }
        let redundancy = a.redundancy.or(s.redundancy).unwrap_or(0);
        if redundancy > 9 {
            return Err(err("redundancy", format!("redundancy {redundancy} is more than 9")));
        }
        let status = a
            .status
            .clone()
            .or_else(|| s.status.clone())
            .unwrap_or_else(|| "active".into());
        if status.is_empty()
            || status.len() > crate::table::STATUS_LEN
            || !status
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(err("status", format!("`{status}` is not a status word")));
        }
        Ok(SendSettings {
            cluster,
            keepalive,
            deadtime,
            redundancy,
            fifo: if a.no_fifo {
                None
            } else {
                Some(
                    a.fifo
                        .clone()
                        .or_else(|| s.fifo.clone())
                        .unwrap_or_else(|| DEFAULT_FIFO.into()),
                )
            },
            generation_file: a
                .generation_file
                .clone()
                .or_else(|| s.generation_file.clone())
                .unwrap_or_else(|| DEFAULT_GENERATION.into()),
            status,
            realtime: a.realtime || s.realtime.unwrap_or(false),
            count: a.count,
            config: src.map(|s| s.path),
        })
    }
}

/// hb-watch's checked settings.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    pub cluster: Cluster,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    pub max_nodes: usize,
    pub exec: Option<PathBuf>,
    pub notify: Vec<crate::events::hooks::NotifyTarget>,
    pub json: bool,
    pub realtime: bool,
    pub config: Option<PathBuf>,
}

impl WatchSettings {
    pub fn resolve(a: &RunArgs) -> Result<WatchSettings, Error> {
        let (f, src) = load_for(&a.cluster.config)?;
        let cluster = resolve_cluster(&a.cluster, &f.cluster, src.as_ref())?;
        let w = &f.hb_watch;
        let err = |key: &str, msg: String| match &src {
            Some(sr) => Error::at(sr, sr.locate("hb-watch", key), msg),
            None => Error::new(format!("--{key}: {msg}")),
        };
        let deadtime = a.deadtime.or(w.deadtime).unwrap_or(Duration::from_secs(30));
        if deadtime < Duration::from_millis(1) {
            return Err(err("deadtime", "deadtime must be at least 1ms".into()));
        }
        let warntime = a.warntime.or(w.warntime).unwrap_or(deadtime / 2);
        if warntime > deadtime {
            return Err(err("warntime", "warntime must not exceed deadtime".into()));
        }
        let initdead = a.initdead.or(w.initdead).unwrap_or(deadtime * 2);
        if initdead < deadtime {
            return Err(err("initdead", "initdead must be at least deadtime".into()));
        }
        let max_nodes = a.max_nodes.or(w.max_nodes).unwrap_or(256);
        if !(2..=65_536).contains(&max_nodes) || max_nodes < cluster.nodes.len() {
            return Err(err(
                "max-nodes",
                format!("max-nodes {max_nodes} must be 2..65536 and hold every listed node"),
            ));
        }
        let notify_src = if a.notify.is_empty() { &w.notify } else { &a.notify };
        let notify = notify_src
            .iter()
            .map(|n| crate::events::hooks::NotifyTarget::parse(n).map_err(|m| err("notify", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let exec = a.exec.clone().or_else(|| w.exec.clone());
        if let Some(e) = &exec {
            if !is_executable(e) {
                return Err(err("exec", format!("{} is not an executable file", e.display())));
            }
        }
        Ok(WatchSettings {
            cluster,
            deadtime,
            warntime,
            initdead,
            max_nodes,
            exec,
            notify,
            json: a.json || w.json.unwrap_or(false),
            realtime: a.realtime || w.realtime.unwrap_or(false),
            config: src.map(|s| s.path),
        })
    }
}

/// Only the table's path, for `hb-watch status`.
pub fn table_path(arg: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(t) = arg {
        return Ok(t.clone());
    }
    let (f, _) = load_for(config)?;
    Ok(f.cluster.table.unwrap_or_else(|| DEFAULT_TABLE.into()))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: "hakit.yaml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn unknown_key_has_position() {
        let e = parse(&src("cluster:\n  node: a\n  nodez: b\n")).unwrap_err();
        assert_eq!(e.pos.map(|p| p.0), Some(3), "{e}");
        assert!(e.to_string().starts_with("hakit.yaml:3:"), "{e}");
        assert!(e.msg.contains("nodez"), "{e}");
    }

    #[test]
    fn bad_duration_has_position() {
        let e = parse(&src("hb-send:\n  keepalive: 5 parsecs\n")).unwrap_err();
        assert_eq!(e.pos.map(|p| p.0), Some(2), "{e}");
        assert!(e.msg.contains("unit"), "{e}");
    }

    #[test]
    fn full_file() {
        let f = parse(&src(
            "cluster:\n  node: n1\n  nodes: [n1, n2]\n  channels:\n    - {dev: eth0, mode: bcast}\n    - {name: b, dev: eth1, mode: mcast, group: 225.0.0.1}\n    - {dev: eth2, mode: ucast, peers: [10.9.0.2]}\nhb-send:\n  keepalive: 250ms\n  deadtime: 2\nhb-watch:\n  deadtime: 2s\nmon-check:\n  anything: goes\n",
        ))
        .unwrap();
        assert_eq!(f.hb_send.keepalive, Some(Duration::from_millis(250)));
        assert_eq!(f.hb_send.deadtime, Some(Duration::from_secs(2)));
        let c = resolve_cluster(&ClusterArgs::default(), &f.cluster, None).unwrap();
        assert_eq!(c.channels.len(), 3);
        assert_eq!(
            c.channels[1].mode,
            Mode::Mcast {
                group: "225.0.0.1".parse().unwrap(),
                ttl: 1
            }
        );
    }

    #[test]
    fn locate_finds_keys() {
        let s = src("cluster:\n  node: a\nhb-send:\n  keepalive: 1s\n  deadtime: 1s\n");
        assert_eq!(s.locate("hb-send", "deadtime"), Some((5, 3)));
        assert_eq!(s.locate("cluster", "deadtime"), None);
    }

    #[test]
    fn channel_specs() {
        assert_eq!(ChannelSpec::parse("bcast:eth0").unwrap().mode, Mode::Bcast);
        assert_eq!(ChannelSpec::parse("a=bcast:eth0").unwrap().name, "a");
        assert!(ChannelSpec::parse("mcast:eth0:10.0.0.1").is_err());
        assert!(ChannelSpec::parse("ucast:eth0:nothost").is_err());
        assert!(ChannelSpec::parse("pigeon:eth0").is_err());
        assert!(ChannelSpec::parse("bcast:").is_err());
        assert_eq!(
            ChannelSpec::parse("ucast:eth1:10.1.0.2,10.1.0.3").unwrap().mode,
            Mode::Ucast {
                peers: vec!["10.1.0.2".parse().unwrap(), "10.1.0.3".parse().unwrap()]
            }
        );
    }
}
