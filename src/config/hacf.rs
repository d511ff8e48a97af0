//! Heartbeat's own files, read as Heartbeat 3.0.6 reads them, so that a cluster moves
//! over without rewriting them: `ha.cf` (for hb-send and hb-watch, `--ha-cf`) and
//! `haresources` (for ipfake, `--haresources`). Pure: the text in, the values with
//! their `FILE:LINE:COL` out; what hakit does not do is returned as [`Skipped`] for the
//! tool to name, never silently dropped. Every error is one `FILE:LINE:COL: ...` line.

use crate::config::{ChannelSpec, Error, Mode};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value with the line and column (from 1) of the word it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub line: usize,
    pub col: usize,
}

/// A directive (or a haresources resource) hakit does not carry over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub col: usize,
    pub what: String,
    pub why: &'static str,
}

/// What an ha.cf says that hakit takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaCf {
    pub path: PathBuf,
    /// `node` lines, in order (a repeated name is an error).
    pub nodes: Vec<At<String>>,
    pub keepalive: Option<At<Duration>>,
    pub deadtime: Option<At<Duration>>,
    pub warntime: Option<At<Duration>>,
    pub initdead: Option<At<Duration>>,
    pub udpport: Option<At<u16>>,
    /// One channel per device and medium, in the order of their first line; several
    /// `ucast` lines on one device are one channel with all those peers.
    pub channels: Vec<At<ChannelSpec>>,
    /// `ping` lines: hb-watch's ping nodes; `deadping`, its --ping-deadtime.
    pub ping: Vec<At<IpAddr>>,
    pub deadping: Option<At<Duration>>,
    /// `auto_failback on|off|legacy`: for the composition (contrib/pair.sh --failback).
    pub auto_failback: Option<At<String>>,
    pub skipped: Vec<Skipped>,
    /// The ports of `mcast` lines, which must all be udpport's.
    mcast_ports: Vec<At<u16>>,
}

impl HaCf {
    /// An error at a place of this file.
    pub fn error<T>(&self, at: &At<T>, msg: impl Into<String>) -> Error {
        error_at(&self.path, at.line, at.col, msg)
    }

    /// The keys file Heartbeat would use: `authkeys` beside ha.cf.
    pub fn authkeys(&self) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join("authkeys")
    }
}

fn error_at(path: &Path, line: usize, col: usize, msg: impl Into<String>) -> Error {
    Error {
        file: Some(path.into()),
        pos: Some((line, col)),
        msg: msg.into(),
    }
}

/// Heartbeat 3.0.6's directives that hakit has no equivalent for, with the reason the
/// warning gives. Anything neither here nor taken is not Heartbeat's either: an error,
/// as Heartbeat itself refuses it.
const SKIPPED: &[(&str, &str)] = &[
    (
        "logfile",
        "hakit logs to stderr (journald) or, with --syslog, to syslog",
    ),
    (
        "debugfile",
        "hakit logs to stderr (journald) or, with --syslog, to syslog",
    ),
    (
        "logfacility",
        "hakit logs to stderr (journald) or, with --syslog, to syslog as daemon",
    ),
    (
        "use_logd",
        "hakit logs to stderr (journald) or, with --syslog, to syslog",
    ),
    ("conn_logd_time", "hakit has no logging daemon"),
    ("debug", "hakit's debug level is -v"),
    ("serial", "hakit has no serial channel"),
    ("baud", "hakit has no serial channel"),
    (
        "mcast6",
        "hakit's multicast channels are IPv4 (use ucast with IPv6 peers)",
    ),
    (
        "ping_group",
        "hakit counts ping nodes one by one (list them with `ping`)",
    ),
    ("hbaping", "hakit has no Fibre Channel ping"),
    (
        "crm",
        "hakit does not run Pacemaker's CRM (see contrib/ocf/ for Pacemaker)",
    ),
    (
        "pacemaker",
        "hakit does not run Pacemaker's CRM (see contrib/ocf/ for Pacemaker)",
    ),
    (
        "respawn",
        "hakit starts no helpers; a systemd unit or the composition does",
    ),
    ("apiauth", "hakit has no client API; scripts read events and the table"),
    ("stonith", "hakit does not fence"),
    ("stonith_host", "hakit does not fence"),
    ("watchdog", "hakit drives no watchdog"),
    ("hopfudge", "hakit does not relay messages"),
    ("realtime", "hb-send and hb-watch take --realtime"),
    ("rtprio", "hb-send and hb-watch take --realtime"),
    ("hbgenmethod", "hakit's generation is saved in its --generation-file"),
    ("msgfmt", "hakit sends the classic form and reads both"),
    ("compression", "hakit does not compress messages"),
    ("compression_threshold", "hakit does not compress messages"),
    ("traditional_compression", "hakit does not compress messages"),
    ("nice_failback", "for the composition: contrib/pair.sh --failback"),
    ("normalpoll", "hakit waits in ppoll"),
    ("log_badpack", "hakit logs refused messages at -v"),
    ("use_apphbd", "hakit does not register with apphbd"),
    ("coredumps", "hakit leaves core dumps to the system"),
    ("coreroot", "hakit leaves core dumps to the system"),
    (
        "autojoin",
        "hakit's members are the `node` lines (or any signer when none)",
    ),
    ("uuidfrom", "hakit names nodes, not UUIDs"),
    ("env", "hakit's hooks get their environment from hb-watch"),
    ("max_rexmit_delay", "hakit does not retransmit (hb-send --redundancy)"),
    ("record_config_changes", "Pacemaker's"),
    ("record_pengine_inputs", "Pacemaker's"),
    ("enable_config_writes", "Pacemaker's"),
    ("memreserve", "hakit locks its memory with --realtime"),
    ("quorum_server", "hakit has no quorum server"),
];

/// Words of a line with their columns (from 1); `#` starts a comment anywhere.
fn words(line: &str) -> Vec<(usize, &str)> {
    let line = line.split('#').next().unwrap_or("");
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s + 1, &line[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s + 1, &line[s..]));
    }
    out
}

/// The text of one of Heartbeat's files (`what` names it in the error).
fn read(path: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error {
        file: Some(path.into()),
        pos: None,
        msg: format!("cannot read {what}: {e}"),
    })
}

/// Read and parse an ha.cf.
pub fn load(path: &Path) -> Result<HaCf, Error> {
    parse(path, &read(path, "ha.cf")?)
}

/// Parse an ha.cf's text; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<HaCf, Error> {
    let mut cf = HaCf {
        path: path.into(),
        ..HaCf::default()
    };
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let w = words(raw);
        let Some(&(col, directive)) = w.first() else { continue };
        let args = &w[1..];
        let err = |c: usize, m: String| error_at(path, line, c, m);
        let need = |k: usize| -> Result<(), Error> {
            if args.len() < k {
                Err(err(
                    col,
                    format!("`{directive}` needs {k} value{}", if k > 1 { "s" } else { "" }),
                ))
            } else {
                Ok(())
            }
        };
        let one = || -> Result<(usize, &str), Error> {
            match args {
                [a] => Ok(*a),
                [] => Err(err(col, format!("`{directive}` needs a value"))),
                [_, (c, extra), ..] => Err(err(
                    *c,
                    format!("`{directive}` takes one value; `{extra}` is one too many"),
                )),
            }
        };
        let duration = |old: &Option<At<Duration>>| -> Result<At<Duration>, Error> {
            once(path, directive, old, line, col)?;
            let (c, v) = one()?;
            let d = crate::base::duration::parse(v).map_err(|m| err(c, m))?;
            Ok(At { value: d, line, col: c })
        };
        match directive {
            "node" => {
                need(1)?;
                for &(c, name) in args {
                    if !crate::wire::hv::valid_name(name) {
                        return Err(err(
                            c,
                            format!("`{name}` is not a node name hakit can use (letters, digits, - _ .; at most 64)"),
                        ));
                    }
                    if cf.nodes.iter().any(|n| n.value == name) {
                        return Err(err(c, format!("node `{name}` is listed twice")));
                    }
                    cf.nodes.push(At {
                        value: name.into(),
                        line,
                        col: c,
                    });
                }
            }
            "keepalive" => cf.keepalive = Some(duration(&cf.keepalive)?),
            "deadtime" => cf.deadtime = Some(duration(&cf.deadtime)?),
            "warntime" => cf.warntime = Some(duration(&cf.warntime)?),
            "initdead" => cf.initdead = Some(duration(&cf.initdead)?),
            "deadping" => cf.deadping = Some(duration(&cf.deadping)?),
            "udpport" => {
                once(path, directive, &cf.udpport, line, col)?;
                let (c, v) = one()?;
                let port = port(v).map_err(|m| err(c, m))?;
                cf.udpport = Some(At {
                    value: port,
                    line,
                    col: c,
                });
            }
            "bcast" => {
                need(1)?;
                for &(c, dev) in args {
                    add_channel(&mut cf, path, line, c, dev, Mode::Bcast)?;
                }
            }
            "mcast" => {
                // mcast DEV GROUP PORT TTL LOOP, all five, as Heartbeat requires.
                if args.len() != 5 {
                    return Err(err(col, "write `mcast DEV GROUP PORT TTL LOOP` (five values)".into()));
                }
                let (gc, g) = args[1];
                let group: Ipv4Addr = g
                    .parse()
                    .ok()
                    .filter(|a: &Ipv4Addr| a.is_multicast())
                    .ok_or_else(|| err(gc, format!("`{g}` is not an IPv4 multicast group (224.0.0.0/4)")))?;
                let (pc, p) = args[2];
                let mport = port(p).map_err(|m| err(pc, m))?;
                let (tc, t) = args[3];
                let ttl: u8 = t
                    .parse()
                    .ok()
                    .filter(|&t| t >= 1)
                    .ok_or_else(|| err(tc, format!("`{t}` is not a TTL (1..255)")))?;
                let (lc, l) = args[4];
                match l {
                    "0" => {}
                    "1" => cf.skipped.push(Skipped {
                        line,
                        col: lc,
                        what: "mcast loop 1".into(),
                        why: "hakit never loops its multicast back to this host",
                    }),
                    _ => return Err(err(lc, format!("`{l}` is not a loop flag (0 or 1)"))),
                }
                add_channel(&mut cf, path, line, args[0].0, args[0].1, Mode::Mcast { group, ttl })?;
                // hakit has one port for every channel: udpport (or another mcast
                // line) saying otherwise is refused below.
                cf.mcast_ports.push(At {
                    value: mport,
                    line,
                    col: pc,
                });
            }
            "ucast" => {
                if args.len() != 2 {
                    return Err(err(col, "write `ucast DEV PEER` (one peer a line)".into()));
                }
                let (pc, p) = args[1];
                let peer: IpAddr = p.parse().map_err(|_| {
                    err(
                        pc,
                        format!("`{p}` is not an IP address (hakit takes the peer's address, not its name)"),
                    )
                })?;
                crate::net::addr::check_unicast(peer, None).map_err(|m| err(pc, m))?;
                add_channel(
                    &mut cf,
                    path,
                    line,
                    args[0].0,
                    args[0].1,
                    Mode::Ucast { peers: vec![peer] },
                )?;
            }
            "ping" => {
                need(1)?;
                for &(c, a) in args {
                    let ip: IpAddr = a
                        .parse()
                        .map_err(|_| err(c, format!("ping node `{a}` is not an IP address")))?;
                    cf.ping.push(At {
                        value: ip,
                        line,
                        col: c,
                    });
                }
            }
            "auto_failback" => {
                once(path, directive, &cf.auto_failback, line, col)?;
                let (c, v) = one()?;
                let v = v.to_ascii_lowercase();
                if !["on", "off", "legacy", "yes", "no", "true", "false"].contains(&v.as_str()) {
                    return Err(err(c, format!("`{v}` is not on, off or legacy")));
                }
                cf.auto_failback = Some(At { value: v, line, col: c });
            }
            _ => match SKIPPED.iter().find(|(d, _)| *d == directive) {
                Some((_, why)) => cf.skipped.push(Skipped {
                    line,
                    col,
                    what: directive.into(),
                    why,
                }),
                None => return Err(err(col, format!("`{directive}` is not a Heartbeat directive"))),
            },
        }
    }
    check_ports(&mut cf)?;
    Ok(cf)
}

/// A directive that may appear once.
fn once<T>(path: &Path, directive: &str, old: &Option<At<T>>, line: usize, col: usize) -> Result<(), Error> {
    match old {
        Some(o) => Err(error_at(
            path,
            line,
            col,
            format!("`{directive}` is set twice (first at line {})", o.line),
        )),
        None => Ok(()),
    }
}

fn port(v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("`{v}` is not a UDP port (1..65535)"))
}

/// One channel per device and medium: a second `ucast` line on a device adds its peer
/// to that device's channel; a device carrying two media gets a second channel named
/// `MEDIUM-DEV` (channel names are unique and travel in heartbeats).
fn add_channel(cf: &mut HaCf, path: &Path, line: usize, col: usize, dev: &str, mode: Mode) -> Result<(), Error> {
    let same_medium = |a: &Mode, b: &Mode| std::mem::discriminant(a) == std::mem::discriminant(b);
    if let Some(c) = cf
        .channels
        .iter_mut()
        .find(|c| c.value.dev == dev && same_medium(&c.value.mode, &mode))
    {
        return match (&mut c.value.mode, mode) {
            (Mode::Ucast { peers }, Mode::Ucast { peers: new }) => {
                for p in new {
                    if peers.contains(&p) {
                        return Err(error_at(path, line, col, format!("ucast {dev} {p} is given twice")));
                    }
                    peers.push(p);
                }
                Ok(())
            }
            _ => Err(error_at(
                path,
                line,
                col,
                format!("{dev} has a channel of this medium already (line {})", c.line),
            )),
        };
    }
    let medium = match mode {
        Mode::Bcast => "bcast",
        Mode::Mcast { .. } => "mcast",
        Mode::Ucast { .. } => "ucast",
    };
    let name = if cf.channels.iter().any(|c| c.value.name == dev) {
        format!("{medium}-{dev}")
    } else {
        dev.to_string()
    };
    let spec = ChannelSpec::new(name, dev, mode).map_err(|m| error_at(path, line, col, m))?;
    if cf.channels.len() == crate::table::MAX_CHANNELS {
        return Err(error_at(
            path,
            line,
            col,
            format!("more than {} channels", crate::table::MAX_CHANNELS),
        ));
    }
    cf.channels.push(At { value: spec, line, col });
    Ok(())
}

/// hakit sends and listens on one port: every mcast line's port must be udpport's (the
/// first mcast line's port stands for udpport when there is no udpport line).
fn check_ports(cf: &mut HaCf) -> Result<(), Error> {
    let ports = std::mem::take(&mut cf.mcast_ports);
    for p in &ports {
        match &cf.udpport {
            None => cf.udpport = Some(p.clone()),
            Some(u) if u.value != p.value => {
                return Err(cf.error(
                    p,
                    format!(
                        "port {} differs from the port {} of line {}: hakit uses one port for every channel",
                        p.value, u.value, u.line
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// An address a haresources line gives to IPaddr or IPaddr2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaAddress {
    /// The line's preferred node.
    pub node: String,
    pub addr: IpAddr,
    /// Heartbeat finds what is not given from the routes; hakit takes it from the
    /// command line (`ipfake up ADDR/PREFIX dev IFACE`).
    pub prefix: Option<u8>,
    pub dev: Option<String>,
    /// `IPaddr::ADDR/24/eth0:web`: the label, as IPaddr gave it.
    pub label: Option<String>,
    pub line: usize,
    pub col: usize,
}

/// What a haresources file gives ipfake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaResources {
    pub path: PathBuf,
    pub addresses: Vec<HaAddress>,
    /// Resources that are not addresses (scripts, Filesystem::..., ...).
    pub skipped: Vec<Skipped>,
}

/// Read and parse a haresources file.
pub fn load_haresources(path: &Path) -> Result<HaResources, Error> {
    parse_haresources(path, &read(path, "haresources")?)
}

/// `NODE RESOURCE...` lines (a `\` at the end continues the line); a resource is
/// `NAME[::ARG...]`, and a bare IP address is `IPaddr::IP`. Positions name the
/// physical line and column of each word.
pub fn parse_haresources(path: &Path, text: &str) -> Result<HaResources, Error> {
    let mut out = HaResources {
        path: path.into(),
        ..HaResources::default()
    };
    // The words of one logical line, each with its own line and column.
    let mut group: Vec<(usize, usize, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (n, raw) in lines.iter().enumerate() {
        let (body, more) = match raw.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (*raw, false),
        };
        for (c, w) in words(body) {
            group.push((n + 1, c, w.to_string()));
        }
        if more && n + 1 < lines.len() {
            continue;
        }
        let g = std::mem::take(&mut group);
        let Some((nl, nc, node)) = g.first() else { continue };
        if !crate::wire::hv::valid_name(node) {
            return Err(error_at(path, *nl, *nc, format!("`{node}` is not a node name")));
        }
        for (l, c, r) in &g[1..] {
            let (name, args) = match r.split_once("::") {
                Some((n, a)) => (n, Some(a)),
                // A bare address (`10.0.0.5/24/eth0`): IPaddr is implied.
                None if r.split('/').next().is_some_and(|a| a.parse::<IpAddr>().is_ok()) => {
                    ("IPaddr", Some(r.as_str()))
                }
                None => (r.as_str(), None),
            };
            match (name, args) {
                ("IPaddr" | "IPaddr2", Some(a)) => {
                    let addr = ip_resource(a).map_err(|m| error_at(path, *l, *c, format!("{r}: {m}")))?;
                    if out.addresses.iter().any(|o| o.addr == addr.0) {
                        return Err(error_at(path, *l, *c, format!("{} is given twice", addr.0)));
                    }
                    out.addresses.push(HaAddress {
                        node: node.clone(),
                        addr: addr.0,
                        prefix: addr.1,
                        dev: addr.2,
                        label: addr.3,
                        line: *l,
                        col: *c,
                    });
                }
                ("IPaddr" | "IPaddr2", None) => return Err(error_at(path, *l, *c, format!("{r} names no address"))),
                _ => out.skipped.push(Skipped {
                    line: *l,
                    col: *c,
                    what: r.clone(),
                    why: "not an address; ipfake takes IPaddr and IPaddr2 only",
                }),
            }
        }
    }
    Ok(out)
}

type IpParts = (IpAddr, Option<u8>, Option<String>, Option<String>);

/// IPaddr's argument: `IP[/BITS[/DEV][/BROADCAST]]` (BITS may be a dotted netmask; DEV
/// may carry a label, `eth0:web`). The broadcast address is the kernel's business.
fn ip_resource(a: &str) -> Result<IpParts, String> {
    if a.contains("::") {
        return Err("IPaddr and IPaddr2 take one argument, IP/BITS/DEV/BROADCAST".into());
    }
    let mut parts = a.split('/');
    let ip_s = parts.next().unwrap_or("");
    let ip: IpAddr = ip_s.parse().map_err(|_| format!("`{ip_s}` is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match parts.next() {
        None => None,
        Some(b) => Some(
            b.parse::<u8>()
                .ok()
                .filter(|&p| p >= 1 && p <= max)
                .or_else(|| crate::net::addr::netmask_prefix(b).filter(|&p| p > 0))
                .ok_or_else(|| format!("`{b}` is not a prefix length (1..{max}) or a netmask"))?,
        ),
    };
    let (mut dev, mut label) = (None, None);
    for p in parts {
        if p.parse::<IpAddr>().is_ok() {
            continue; // the broadcast address
        }
        if dev.is_some() {
            return Err(format!("`{p}` is neither an interface nor a broadcast address"));
        }
        let d = p.split(':').next().unwrap_or(p);
        if d.is_empty() || d.len() >= libc::IFNAMSIZ {
            return Err(format!("`{p}` is not an interface name"));
        }
        if p.contains(':') {
            crate::tools::ipfake::settings::check_label(p, d)?;
            label = Some(p.to_string());
        }
        dev = Some(d.to_string());
    }
    crate::net::addr::check_unicast(ip, prefix)?;
    Ok((ip, prefix, dev, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cf(text: &str) -> Result<HaCf, String> {
        parse(Path::new("ha.cf"), text).map_err(|e| e.to_string())
    }

    fn at<T>(value: T, line: usize, col: usize) -> At<T> {
        At { value, line, col }
    }

    #[test]
    fn every_directive_hakit_takes() {
        let c = cf("# a comment\nnode n1 n2\nnode\tn3   # and another\nkeepalive 200ms\ndeadtime 2\nwarntime 1.5\ninitdead 10\nudpport 695\nbcast eth0 eth1\nmcast eth2 225.0.0.7 695 2 0\nucast eth3 10.0.3.2\nucast eth3 10.0.3.3\nping 10.0.9.1 10.0.9.2\nping 10.0.9.3\nauto_failback off\ndeadping 5\n")
            .unwrap();
        let names: Vec<_> = c.nodes.iter().map(|n| (n.value.as_str(), n.line, n.col)).collect();
        assert_eq!(names, [("n1", 2, 6), ("n2", 2, 9), ("n3", 3, 6)]);
        assert_eq!(c.keepalive, Some(at(Duration::from_millis(200), 4, 11)));
        assert_eq!(c.deadtime, Some(at(Duration::from_secs(2), 5, 10)));
        assert_eq!(c.warntime, Some(at(Duration::from_millis(1500), 6, 10)));
        assert_eq!(c.initdead, Some(at(Duration::from_secs(10), 7, 10)));
        assert_eq!(c.udpport, Some(at(695, 8, 9)));
        let ch: Vec<_> = c
            .channels
            .iter()
            .map(|c| (c.value.name.as_str(), c.value.mode.clone(), c.line))
            .collect();
        assert_eq!(
            ch,
            [
                ("eth0", Mode::Bcast, 9),
                ("eth1", Mode::Bcast, 9),
                (
                    "eth2",
                    Mode::Mcast {
                        group: "225.0.0.7".parse().unwrap(),
                        ttl: 2
                    },
                    10
                ),
                // Two ucast lines on one device: one channel, both peers.
                (
                    "eth3",
                    Mode::Ucast {
                        peers: vec!["10.0.3.2".parse().unwrap(), "10.0.3.3".parse().unwrap()]
                    },
                    11
                ),
            ]
        );
        assert_eq!(c.ping.len(), 3);
        assert_eq!(c.ping[2], at("10.0.9.3".parse().unwrap(), 14, 6));
        assert_eq!(c.auto_failback, Some(at("off".into(), 15, 15)));
        assert_eq!(c.deadping, Some(at(Duration::from_secs(5), 16, 10)));
        assert!(c.skipped.is_empty());
        assert_eq!(c.authkeys(), PathBuf::from("authkeys"));
    }

    #[test]
    fn two_media_on_one_device_are_two_channels() {
        let c = cf("bcast eth0\nucast eth0 10.0.0.2\nmcast eth0 225.0.0.1 694 1 0\n").unwrap();
        let names: Vec<_> = c.channels.iter().map(|c| c.value.name.as_str()).collect();
        assert_eq!(names, ["eth0", "ucast-eth0", "mcast-eth0"]);
        // The mcast line's port stands for udpport.
        assert_eq!(c.udpport.map(|p| p.value), Some(694));
    }

    #[test]
    fn what_hakit_does_not_do_is_named_and_skipped() {
        let c = cf("crm off\nlogfacility local0\nrespawn hacluster /usr/lib/heartbeat/ipfail\nserial /dev/ttyS0\n  compression bz2\nmcast eth0 225.0.0.1 694 1 1\n").unwrap();
        let s: Vec<_> = c.skipped.iter().map(|s| (s.line, s.col, s.what.as_str())).collect();
        assert_eq!(
            s,
            [
                (1, 1, "crm"),
                (2, 1, "logfacility"),
                (3, 1, "respawn"),
                (4, 1, "serial"),
                (5, 3, "compression"),
                (6, 28, "mcast loop 1")
            ]
        );
        assert!(c.skipped[3].why.contains("serial"));
    }

    #[test]
    fn bad_lines_are_one_error_at_their_line_and_column() {
        let bad = |t: &str| cf(t).unwrap_err();
        assert_eq!(
            bad("keepalive 2\nkeepalive 3\n"),
            "ha.cf:2:1: `keepalive` is set twice (first at line 1)"
        );
        assert_eq!(
            bad("deadtime 5 parsecs\n"),
            "ha.cf:1:12: `deadtime` takes one value; `parsecs` is one too many"
        );
        assert!(bad("warntime soon\n").starts_with("ha.cf:1:10: `soon` is not a duration"));
        assert_eq!(bad("initdead\n"), "ha.cf:1:1: `initdead` needs a value");
        assert_eq!(bad("udpport 0\n"), "ha.cf:1:9: `0` is not a UDP port (1..65535)");
        assert_eq!(
            bad("udpport 70000\n"),
            "ha.cf:1:9: `70000` is not a UDP port (1..65535)"
        );
        assert_eq!(
            bad("\n\nkeepaliv 2\n"),
            "ha.cf:3:1: `keepaliv` is not a Heartbeat directive"
        );
        assert_eq!(bad("node a b a\n"), "ha.cf:1:10: node `a` is listed twice");
        assert!(bad("node ok no/slash\n").starts_with("ha.cf:1:9: `no/slash` is not a node name"));
        assert_eq!(bad("node\n"), "ha.cf:1:1: `node` needs 1 value");
        assert_eq!(
            bad("mcast eth0 225.0.0.1 694 1\n"),
            "ha.cf:1:1: write `mcast DEV GROUP PORT TTL LOOP` (five values)"
        );
        assert_eq!(
            bad("mcast eth0 10.0.0.1 694 1 0\n"),
            "ha.cf:1:12: `10.0.0.1` is not an IPv4 multicast group (224.0.0.0/4)"
        );
        assert_eq!(
            bad("mcast eth0 225.0.0.1 694 0 0\n"),
            "ha.cf:1:26: `0` is not a TTL (1..255)"
        );
        assert_eq!(
            bad("mcast eth0 225.0.0.1 694 1 2\n"),
            "ha.cf:1:28: `2` is not a loop flag (0 or 1)"
        );
        assert_eq!(
            bad("udpport 694\nmcast eth0 225.0.0.1 695 1 0\n"),
            "ha.cf:2:22: port 695 differs from the port 694 of line 1: hakit uses one port for every channel"
        );
        assert_eq!(
            bad("ucast eth0 peer2\n"),
            "ha.cf:1:12: `peer2` is not an IP address (hakit takes the peer's address, not its name)"
        );
        assert!(bad("ucast eth0 224.0.0.1\n").starts_with("ha.cf:1:12: "));
        assert_eq!(
            bad("ucast eth0\n"),
            "ha.cf:1:1: write `ucast DEV PEER` (one peer a line)"
        );
        assert_eq!(
            bad("ucast eth0 10.0.0.2\nucast eth0 10.0.0.2\n"),
            "ha.cf:2:7: ucast eth0 10.0.0.2 is given twice"
        );
        assert_eq!(
            bad("bcast eth0\nbcast eth0\n"),
            "ha.cf:2:7: eth0 has a channel of this medium already (line 1)"
        );
        assert_eq!(
            bad("bcast a-sixteen-chars-dev\n"),
            "ha.cf:1:7: `a-sixteen-chars-dev` is not an interface name"
        );
        assert_eq!(
            bad("bcast e0 e1 e2 e3 e4 e5 e6 e7 e8\n"),
            "ha.cf:1:31: more than 8 channels"
        );
        assert_eq!(
            bad("ping 10.0.0.300\n"),
            "ha.cf:1:6: ping node `10.0.0.300` is not an IP address"
        );
        assert_eq!(
            bad("auto_failback maybe\n"),
            "ha.cf:1:15: `maybe` is not on, off or legacy"
        );
    }

    /// Debian's example ha.cf parses as it is, and so does every example directive in
    /// it once uncommented (each taken or named as skipped), but for the lines that
    /// name other systems' devices.
    #[test]
    fn debians_example_ha_cf() {
        let gz = Path::new("/usr/share/doc/heartbeat/ha.cf.gz");
        assert!(
            gz.exists(),
            "{} is missing: contrib/deps.sh installs Debian's heartbeat",
            gz.display()
        );
        let out = std::process::Command::new("zcat").arg(gz).output().expect("zcat");
        assert!(out.status.success(), "zcat {}", gz.display());
        let text = String::from_utf8(out.stdout).unwrap();
        let c = parse(Path::new("ha.cf"), &text).unwrap();
        assert_eq!(c.auto_failback.as_ref().map(|a| a.value.as_str()), Some("on"));
        assert_eq!(
            c.skipped.iter().map(|s| s.what.as_str()).collect::<Vec<_>>(),
            ["logfacility"]
        );
        // Uncommented: `#keepalive 2` → `keepalive 2`; Solaris's and FreeBSD's lines out.
        let mut seen = std::collections::HashSet::new();
        let uncommented: String = text
            .lines()
            .filter_map(|l| {
                let d = l.strip_prefix('#')?;
                let word = d.split_whitespace().next()?;
                let directive = word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && d.starts_with(word)
                    && d.len() > word.len()
                    && d[word.len()..].starts_with([' ', '\t']);
                let other_os = l.contains("Solaris") || l.contains("FreeBSD");
                // `#node ken3` is an example; keep the first of each once-only one.
                let once = ["keepalive", "deadtime", "warntime", "initdead", "udpport"];
                (directive && !other_os && (!once.contains(&word) || seen.insert(word))).then(|| format!("{d}\n"))
            })
            .collect();
        let c = parse(Path::new("ha.cf"), &uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(c.keepalive.map(|k| k.value), Some(Duration::from_secs(2)));
        assert_eq!(c.deadtime.map(|k| k.value), Some(Duration::from_secs(30)));
        assert_eq!(c.initdead.map(|k| k.value), Some(Duration::from_secs(120)));
        assert_eq!(
            c.nodes.iter().map(|n| n.value.as_str()).collect::<Vec<_>>(),
            ["ken3", "kathy"]
        );
        let names: Vec<_> = c.channels.iter().map(|c| c.value.name.as_str()).collect();
        assert_eq!(names, ["eth0", "eth1", "eth2", "mcast-eth0", "ucast-eth0"]);
        assert_eq!(c.ping.len(), 1);
        for d in [
            "debugfile",
            "logfile",
            "baud",
            "serial",
            "stonith",
            "stonith_host",
            "watchdog",
            "ping_group",
        ] {
            assert!(c.skipped.iter().any(|s| s.what == d), "{d} not named as skipped");
        }
    }

    #[test]
    fn haresources_addresses() {
        let text = "# comment\nnode1 IPaddr::192.168.1.10/24/eth0 IPaddr2::10.0.0.5/24 httpd\nnode2 135.9.216.3/28/eth0/135.9.216.12 \\\n   10.0.1.7 Filesystem::/dev/sda1::/data1::ext2\nnode2 IPaddr::10.0.2.9/255.255.255.0/eth1:web\n";
        let h = parse_haresources(Path::new("haresources"), text).unwrap();
        let a: Vec<_> = h
            .addresses
            .iter()
            .map(|a| {
                (
                    a.node.as_str(),
                    a.addr.to_string(),
                    a.prefix,
                    a.dev.as_deref(),
                    a.label.as_deref(),
                    a.line,
                    a.col,
                )
            })
            .collect();
        assert_eq!(
            a,
            [
                ("node1", "192.168.1.10".into(), Some(24), Some("eth0"), None, 2, 7),
                ("node1", "10.0.0.5".into(), Some(24), None, None, 2, 36),
                ("node2", "135.9.216.3".into(), Some(28), Some("eth0"), None, 3, 7),
                ("node2", "10.0.1.7".into(), None, None, None, 4, 4),
                (
                    "node2",
                    "10.0.2.9".into(),
                    Some(24),
                    Some("eth1"),
                    Some("eth1:web"),
                    5,
                    7
                ),
            ]
        );
        let s: Vec<_> = h.skipped.iter().map(|s| (s.line, s.col, s.what.as_str())).collect();
        assert_eq!(s, [(2, 57, "httpd"), (4, 13, "Filesystem::/dev/sda1::/data1::ext2")]);
        // A word with a slash that is no address is a resource like any other.
        let h = parse_haresources(Path::new("haresources"), "n1 drbddisk/r0\n").unwrap();
        assert_eq!((h.addresses.len(), h.skipped.len()), (0, 1));
        let bad = |t: &str| parse_haresources(Path::new("haresources"), t).unwrap_err().to_string();
        assert_eq!(
            bad("n1 IPaddr::10.0.0.300/24\n"),
            "haresources:1:4: IPaddr::10.0.0.300/24: `10.0.0.300` is not an IP address"
        );
        assert_eq!(
            bad("n1 IPaddr::10.0.0.1/33\n"),
            "haresources:1:4: IPaddr::10.0.0.1/33: `33` is not a prefix length (1..32) or a netmask"
        );
        assert!(bad("n1 10.0.0.0/24\n").starts_with("haresources:1:4: 10.0.0.0/24: 10.0.0.0 is the"));
        assert_eq!(bad("n1 IPaddr\n"), "haresources:1:4: IPaddr names no address");
        assert_eq!(
            bad("n1 10.0.0.1\nn2 IPaddr2::10.0.0.1/24\n"),
            "haresources:2:4: 10.0.0.1 is given twice"
        );
        assert_eq!(bad("n/1 10.0.0.1\n"), "haresources:1:1: `n/1` is not a node name");
        assert!(bad("n1 IPaddr::10.0.0.1/24/eth0/eth1\n").contains("`eth1` is neither"));
    }

    #[test]
    fn the_interop_tests_files() {
        // The ha.cf tests/heartbeat_interop.rs gives Heartbeat 3.0.6.
        let c = cf("logfile /tmp/x/ha-log\nkeepalive 200ms\nwarntime 1\ndeadtime 2\ninitdead 4\nudpport 694\nbcast eth0\nnode hbpeer\nnode n1\ncrm off\nauto_failback off\n").unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(
            c.skipped.iter().map(|s| s.what.as_str()).collect::<Vec<_>>(),
            ["logfile", "crm"]
        );
        let h = parse_haresources(Path::new("haresources"), "").unwrap();
        assert!(h.addresses.is_empty());
    }
}
