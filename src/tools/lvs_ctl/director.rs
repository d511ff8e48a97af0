//! The `director` section of hakit.yaml: who the directors are, in which order they
//! take the virtual addresses over, what they hold, and how connection state follows
//! the active one. `contrib/director.sh` composes the tools; it reads this section only
//! through `lvs-ctl director show` (checked shell assignments) and `lvs-ctl director
//! conntrackd` (conntrackd's configuration), so that an error in it is one line with
//! `file:line:column` before anything starts.
//!
//! ```yaml
//! director:
//!   nodes:                              # the cascade, in order of roles
//!     - { name: d1, role: director }
//!     - { name: d2, role: primary-backup }
//!     - { name: d3, role: secondary-backup }
//!   failback: false                     # a better-ranked director back takes over again
//!   addresses:                          # what the active director holds (ipfake up)
//!     - { address: 192.0.2.10/24, dev: eth0 }   # the virtual address
//!     - { address: 10.0.0.1/24, dev: eth1 }     # the real servers' gateway (NAT)
//!   sync: conntrackd                    # conntrackd (nft NAT), ipvs (its sync daemon), none
//!   sync-dev: eth2                      # the link the state travels on
//!   sync-group: 225.0.0.50              # conntrackd's multicast group
//!   sync-port: 3780                     # its port (conntrackd's `Group`); ipvs: the syncid
//!   workers: [web7, web8]               # real servers that may join (`lvs-ctl join`)
//! ```
//!
//! Ranks: the director 0, the primary backup 1, secondary backups 2, 3, ... in the
//! order written. The active director is the live node of the lowest rank — with
//! failback; without it, the one that holds the addresses keeps them while it lives.
//! Either way a secondary backup takes over only when every node ranked before it is
//! dead: the cascade of seed 004.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::config::{Error, Source};
use crate::events::shell_word;
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

pub const SECTION: &str = "director";

#[derive(Debug, Default, Deserialize)]
struct FileView {
    director: Option<Section>,
    #[serde(default, rename = "mon-check")]
    mon_check: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Section {
    nodes: Vec<NodeEntry>,
    #[serde(default)]
    workers: Vec<String>,
    #[serde(default)]
    failback: bool,
    #[serde(default)]
    addresses: Vec<AddrEntry>,
    sync: Option<Sync>,
    sync_dev: Option<String>,
    sync_group: Option<Ipv4Addr>,
    sync_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    name: String,
    role: Role,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddrEntry {
    address: String,
    dev: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Director,
    PrimaryBackup,
    SecondaryBackup,
}

impl Role {
    pub fn word(self) -> &'static str {
        match self {
            Role::Director => "director",
            Role::PrimaryBackup => "primary-backup",
            Role::SecondaryBackup => "secondary-backup",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sync {
    Conntrackd,
    Ipvs,
    None,
}

impl Sync {
    fn word(self) -> &'static str {
        match self {
            Sync::Conntrackd => "conntrackd",
            Sync::Ipvs => "ipvs",
            Sync::None => "none",
        }
    }
}

/// One address the active director holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: String,
}

/// The section, checked.
#[derive(Debug, Clone)]
pub struct Director {
    /// In rank order.
    pub nodes: Vec<(String, Role)>,
    /// Real servers that may join at run time (`lvs-ctl join`): hb-watch hears them.
    pub workers: Vec<String>,
    pub failback: bool,
    pub addresses: Vec<Held>,
    pub sync: Sync,
    pub sync_dev: Option<String>,
    pub sync_group: Ipv4Addr,
    pub sync_port: u16,
    /// Whether the file has a `mon-check` section (director.sh runs `mon-check run`).
    pub mon_check: bool,
    /// Where `sync-dev` was written, for an error found later (no address on it).
    sync_dev_at: Option<(usize, usize)>,
    path: PathBuf,
}

#[derive(Debug)]
pub enum DirError {
    Config(Error),
    NotANode(String, String),
    Unusable(String),
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirError::Config(e) => e.fmt(f),
            DirError::NotANode(n, all) => write!(f, "--node {n}: not one of the director section's nodes ({all})"),
            DirError::Unusable(m) => f.write_str(m),
        }
    }
}

impl From<Error> for DirError {
    fn from(e: Error) -> Self {
        DirError::Config(e)
    }
}

impl HasExitStatus for DirError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

pub fn load(path: &Path) -> Result<Director, Error> {
    from_source(&Source::read(path)?)
}

pub fn from_source(src: &Source) -> Result<Director, Error> {
    let view: FileView = src.yaml()?;
    let sec = view.director.ok_or_else(|| Error {
        file: Some(src.path.clone()),
        pos: None,
        msg: "no `director` section".into(),
    })?;
    let mut d = resolve(sec, src)?;
    d.mon_check = view.mon_check.is_some();
    Ok(d)
}

/// An interface name (IFNAMSIZ - 1), of the characters names are made of in practice
/// (`eth0`, `bond0.100`, `br-lan`): director.sh splits `ADDR/PREFIX@DEV` words.
fn valid_dev(d: &str) -> bool {
    crate::net::addr::valid_ifname(d) && d.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn resolve(sec: Section, src: &Source) -> Result<Director, Error> {
    let at = |list: &str, i: usize, key: &str, msg: String| Error {
        file: Some(src.path.clone()),
        pos: src.locate_item(SECTION, list, i, key),
        msg,
    };
    let at_key = |key: &str, msg: String| Error::at(src, src.locate(SECTION, key), msg);
    if sec.nodes.len() < 2 {
        return Err(at_key(
            "nodes",
            "a director needs at least one backup: two nodes or more".into(),
        ));
    }
    let mut nodes: Vec<(String, Role)> = Vec::new();
    for (i, n) in sec.nodes.iter().enumerate() {
        if !crate::wire::hv::valid_name(&n.name) {
            return Err(at(
                "nodes",
                i,
                "name",
                format!(
                    "`{}` is not a usable node name (letters, digits, - _ .; at most 64)",
                    n.name
                ),
            ));
        }
        if nodes.iter().any(|(m, _)| *m == n.name) {
            return Err(at("nodes", i, "name", format!("node `{}` is given twice", n.name)));
        }
        let prev = nodes.last().map(|(_, r)| *r);
        let ok = match n.role {
            Role::Director => prev.is_none(),
            Role::PrimaryBackup => prev == Some(Role::Director),
            Role::SecondaryBackup => matches!(prev, Some(Role::PrimaryBackup | Role::SecondaryBackup)),
        };
        if !ok {
            return Err(at(
                "nodes",
                i,
                "role",
                format!(
                    "role {} out of order: the nodes are the cascade, the director first, then one primary-backup, then any secondary-backup",
                    n.role.word()
                ),
            ));
        }
        nodes.push((n.name.clone(), n.role));
    }
    for w in &sec.workers {
        if !crate::wire::hv::valid_name(w) || nodes.iter().any(|(n, _)| n == w) {
            return Err(at_key(
                "workers",
                format!("worker `{w}`: not a usable node name, or a director's"),
            ));
        }
    }
    if sec.addresses.is_empty() {
        return Err(at_key(
            "addresses",
            "no addresses: what would the active director hold?".into(),
        ));
    }
    let mut addresses: Vec<Held> = Vec::new();
    for (i, a) in sec.addresses.iter().enumerate() {
        let (ip, prefix) = a.address.split_once('/').ok_or_else(|| {
            at(
                "addresses",
                i,
                "address",
                format!(
                    "`{}`: an address with its prefix length, such as 192.0.2.10/24",
                    a.address
                ),
            )
        })?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| at("addresses", i, "address", format!("`{}`: not an IP address", a.address)))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix.parse().ok().filter(|p| (1..=max).contains(p)).ok_or_else(|| {
            at(
                "addresses",
                i,
                "address",
                format!("`{}`: a prefix length of 1 to {max}", a.address),
            )
        })?;
        crate::net::addr::check_unicast(ip, Some(prefix))
            .map_err(|m| at("addresses", i, "address", format!("`{}`: {m}", a.address)))?;
        if addresses.iter().any(|h| h.addr == ip) {
            return Err(at("addresses", i, "address", format!("address {ip} is given twice")));
        }
        if !valid_dev(&a.dev) {
            return Err(at(
                "addresses",
                i,
                "dev",
                format!("`{}` is not an interface name", a.dev),
            ));
        }
        addresses.push(Held {
            addr: ip,
            prefix,
            dev: a.dev.clone(),
        });
    }
    let sync = sec.sync.unwrap_or(Sync::None);
    if let Some(d) = &sec.sync_dev {
        if !valid_dev(d) {
            return Err(at_key("sync-dev", format!("`{d}` is not an interface name")));
        }
    }
    if sync != Sync::None && sec.sync_dev.is_none() {
        return Err(at_key(
            "sync",
            format!("sync: {} needs sync-dev, the link the state travels on", sync.word()),
        ));
    }
    let sync_group = sec.sync_group.unwrap_or(Ipv4Addr::new(225, 0, 0, 50));
    if !sync_group.is_multicast() {
        return Err(at_key(
            "sync-group",
            format!("sync-group {sync_group}: not a multicast group"),
        ));
    }
    let sync_port = match (sync, sec.sync_port) {
        (Sync::Ipvs, Some(p)) if p > 255 => {
            return Err(at_key(
                "sync-port",
                format!("sync-port {p}: with sync: ipvs it is the syncid, 0 to 255"),
            ))
        }
        (_, Some(0)) => return Err(at_key("sync-port", "sync-port 0: not a port".into())),
        (Sync::Ipvs, None) => 1,
        (_, p) => p.unwrap_or(3780),
    };
    Ok(Director {
        nodes,
        workers: sec.workers,
        failback: sec.failback,
        addresses,
        sync,
        sync_dev: sec.sync_dev,
        sync_group,
        sync_port,
        mon_check: false,
        sync_dev_at: src.locate(SECTION, "sync-dev"),
        path: src.path.clone(),
    })
}

impl Director {
    pub fn rank_of(&self, node: &str) -> Result<(usize, Role), DirError> {
        self.nodes
            .iter()
            .position(|(n, _)| n == node)
            .map(|i| (i, self.nodes[i].1))
            .ok_or_else(|| DirError::NotANode(node.into(), self.names().join(", ")))
    }

    fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Shell assignments for director.sh (`eval "$(lvs-ctl director show ...)"`): every
    /// value checked above and quoted, so the eval runs nothing but assignments.
    pub fn shell(&self, node: &str) -> Result<String, DirError> {
        let (rank, role) = self.rank_of(node)?;
        let mut s = String::new();
        let mut put = |k: &str, v: &str| {
            let _ = writeln!(s, "{k}={}", shell_word(v));
        };
        put("role", role.word());
        put("rank", &rank.to_string());
        put("nodes", &self.names().join(","));
        let mut watch = self.names();
        watch.extend(self.workers.iter().map(String::as_str));
        put("watch_nodes", &watch.join(","));
        put("failback", if self.failback { "1" } else { "0" });
        let addrs: Vec<String> = self
            .addresses
            .iter()
            .map(|h| format!("{}/{}@{}", h.addr, h.prefix, h.dev))
            .collect();
        put("addresses", &addrs.join(" "));
        put("sync", self.sync.word());
        put("sync_dev", self.sync_dev.as_deref().unwrap_or(""));
        put("sync_group", &self.sync_group.to_string());
        put("sync_port", &self.sync_port.to_string());
        put("mon_check", if self.mon_check { "1" } else { "0" });
        Ok(s)
    }

    /// conntrackd's configuration for this node: FTFW (reliable) over multicast on
    /// `sync-dev`, the external cache (committed to the kernel at takeover, each entry
    /// with conntrackd's estimate of its own timeout: a fixed CommitTimeout would keep
    /// closed connections for that long, and a reused port would meet them), its lock and
    /// control socket in `state_dir` (one per node, so that namespaces sharing a
    /// filesystem do not meet). The address conntrackd sends from is `sync-dev`'s first
    /// IPv4 address, read from the kernel now.
    pub fn conntrackd_conf(&self, node: &str, state_dir: &Path) -> Result<String, DirError> {
        self.rank_of(node)?;
        let dev = self.sync_dev.as_deref().unwrap_or_default();
        let place = |msg: String| match self.sync_dev_at {
            Some((l, c)) => format!("{}:{l}:{c}: {msg}", self.path.display()),
            None => format!("{}: {msg}", self.path.display()),
        };
        if self.sync != Sync::Conntrackd {
            return Err(DirError::Unusable(place(format!(
                "sync is {}, not conntrackd",
                self.sync.word()
            ))));
        }
        let local = interface_v4(dev).ok_or_else(|| {
            DirError::Unusable(place(format!(
                "sync-dev {dev}: no such interface here, or no IPv4 address on it"
            )))
        })?;
        Ok(conntrackd_text(dev, local, self.sync_group, self.sync_port, state_dir))
    }
}

fn interface_v4(dev: &str) -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|i| {
        if i.interface_name != dev {
            return None;
        }
        i.address?.as_sockaddr_in().map(|a| a.ip())
    })
}

/// The text itself (pure, for the unit test).
fn conntrackd_text(dev: &str, local: Ipv4Addr, group: Ipv4Addr, port: u16, state_dir: &Path) -> String {
    let d = state_dir.display();
    format!(
        "# Made by lvs-ctl director conntrackd from the director section; do not edit.\n\
Sync {{\n\
\tMode FTFW {{\n\
\t\tDisableExternalCache Off\n\
\t\tPurgeTimeout 5\n\
\t}}\n\
\tMulticast {{\n\
\t\tIPv4_address {group}\n\
\t\tGroup {port}\n\
\t\tIPv4_interface {local}\n\
\t\tInterface {dev}\n\
\t\tSndSocketBuffer 1249280\n\
\t\tRcvSocketBuffer 1249280\n\
\t\tChecksum on\n\
\t}}\n\
}}\n\
General {{\n\
\tSystemd off\n\
\tHashSize 32768\n\
\tHashLimit 131072\n\
\tLogFile off\n\
\tSyslog on\n\
\tLockFile {d}/conntrackd.lock\n\
\tUNIX {{\n\
\t\tPath {d}/conntrackd.ctl\n\
\t}}\n\
\tNetlinkBufferSize 2097152\n\
\tNetlinkBufferSizeMaxGrowth 8388608\n\
\tNetlinkOverrunResync On\n\
\tFilter From Userspace {{\n\
\t\tProtocol Accept {{\n\
\t\t\tTCP\n\
\t\t\tUDP\n\
\t\t}}\n\
\t\tAddress Ignore {{\n\
\t\t\tIPv4_address 127.0.0.1\n\
\t\t\tIPv4_address {local}\n\
\t\t}}\n\
\t}}\n\
}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: PathBuf::from("h.yaml"),
            text: text.into(),
        }
    }

    const GOOD: &str = "director:\n  nodes:\n    - { name: d1, role: director }\n    - { name: d2, role: primary-backup }\n    - { name: d3, role: secondary-backup }\n  addresses:\n    - { address: 192.0.2.10/24, dev: eth0 }\n    - { address: 10.0.0.1/24, dev: eth1 }\n  sync: conntrackd\n  sync-dev: eth2\n";

    #[test]
    fn a_cascade_reads_with_its_ranks() {
        let d = from_source(&src(GOOD)).unwrap();
        assert_eq!(d.rank_of("d3").unwrap(), (2, Role::SecondaryBackup));
        let sh = d.shell("d2").unwrap();
        assert!(
            sh.contains("role=primary-backup\nrank=1\nnodes=d1,d2,d3\nwatch_nodes=d1,d2,d3\nfailback=0\n"),
            "{sh}"
        );
        let w = from_source(&src(&format!("{GOOD}  workers: [w1, w2]\n"))).unwrap();
        assert!(w.shell("d1").unwrap().contains("\nwatch_nodes=d1,d2,d3,w1,w2\n"));
        let e = from_source(&src(&format!("{GOOD}  workers: [d2]\n")))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.yaml:11:") && e.contains("a director's"), "{e}");
        assert!(sh.contains("addresses='192.0.2.10/24@eth0 10.0.0.1/24@eth1'\n"), "{sh}");
        assert!(
            sh.contains("sync=conntrackd\nsync_dev=eth2\nsync_group=225.0.0.50\nsync_port=3780\n"),
            "{sh}"
        );
        assert!(matches!(d.shell("d9"), Err(DirError::NotANode(..))));
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let cases = [
            (
                GOOD.replace("role: primary-backup", "role: secondary-backup"),
                "h.yaml:4:",
                "out of order",
            ),
            (GOOD.replace("name: d3", "name: d1"), "h.yaml:5:", "given twice"),
            (GOOD.replace("10.0.0.1/24", "10.0.0.1"), "h.yaml:8:", "prefix length"),
            (GOOD.replace("10.0.0.1/24", "224.0.0.1/24"), "h.yaml:8:", "224.0.0.1"),
            (GOOD.replace("dev: eth1", "dev: 'a/b'"), "h.yaml:8:", "interface name"),
            (
                GOOD.replace("dev: eth1", "dev: 'eth1@x'"),
                "h.yaml:8:",
                "interface name",
            ),
            (GOOD.replace("  sync-dev: eth2\n", ""), "h.yaml:9:", "needs sync-dev"),
            (
                GOOD.replace("sync: conntrackd", "sync: rsync"),
                "h.yaml:9:",
                "unknown variant",
            ),
            (
                GOOD.replace(
                    "    - { name: d2, role: primary-backup }\n    - { name: d3, role: secondary-backup }\n",
                    "",
                ),
                "h.yaml:2:",
                "two nodes",
            ),
            (format!("{GOOD}  sync-group: 10.0.0.1\n"), "h.yaml:11:", "multicast"),
            (format!("{GOOD}  colour: red\n"), "h.yaml:", "colour"),
        ];
        for (text, place, what) in cases {
            let e = from_source(&src(&text)).unwrap_err().to_string();
            assert!(e.starts_with(place) && e.contains(what), "{e}\n--- for:\n{text}");
        }
    }

    #[test]
    fn the_ipvs_syncid_is_a_byte() {
        let t = GOOD.replace("sync: conntrackd", "sync: ipvs");
        assert_eq!(from_source(&src(&t)).unwrap().sync_port, 1);
        let e = from_source(&src(&format!("{t}  sync-port: 300\n")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 to 255"), "{e}");
    }

    #[test]
    fn conntrackd_text_keeps_its_files_in_the_state_dir() {
        let t = conntrackd_text(
            "eth2",
            Ipv4Addr::new(10, 9, 0, 1),
            Ipv4Addr::new(225, 0, 0, 50),
            3780,
            Path::new("/run/hakit/d1"),
        );
        assert!(t.contains("\tLockFile /run/hakit/d1/conntrackd.lock\n"));
        assert!(t.contains("\t\tPath /run/hakit/d1/conntrackd.ctl\n"));
        assert!(t.contains("\t\tIPv4_interface 10.9.0.1\n\t\tInterface eth2\n"));
        assert!(t.contains("DisableExternalCache Off"));
    }
}
