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
    /// `ping` lines: hb-watch's ping nodes.
    pub ping: Vec<At<IpAddr>>,
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
    ("logfile", "hakit logs to stderr (journald) or, with --syslog, to syslog"),
    ("debugfile", "hakit logs to stderr (journald) or, with --syslog, to syslog"),
    (
        "logfacility",
        "hakit logs to stderr (journald) or, with --syslog, to syslog as daemon",
    ),
    ("use_logd", "hakit logs to stderr (journald) or, with --syslog, to syslog"),
    ("conn_logd_time", "hakit has no logging daemon"),
    ("debug", "hakit's debug level is -v"),
    ("serial", "hakit has no serial channel"),
    ("baud", "hakit has no serial channel"),
    ("mcast6", "hakit's multicast channels are IPv4 (use ucast with IPv6 peers)"),
    (
        "ping_group",
        "hakit counts ping nodes one by one (list them with `ping`)",
    ),
    ("hbaping", "hakit has no Fibre Channel ping"),
    ("crm", "hakit does not run Pacemaker's CRM (see contrib/ocf/ for Pacemaker)"),
    ("pacemaker", "hakit does not run Pacemaker's CRM (see contrib/ocf/ for Pacemaker)"),
    ("respawn", "hakit starts no helpers; a systemd unit or the composition does"),
    ("apiauth", "hakit has no client API; scripts read events and the table"),
    ("stonith", "hakit does not fence"),
    ("stonith_host", "hakit does not fence"),
    ("watchdog", "hakit drives no watchdog"),
    ("hopfudge", "hakit does not relay messages"),
    ("deadping", "hb-watch's --ping-deadtime"),
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
    ("autojoin", "hakit's members are the `node` lines (or any signer when none)"),
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

/// Read and parse an ha.cf.
pub fn load(path: &Path) -> Result<HaCf, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error {
        file: Some(path.into()),
        pos: None,
        msg: format!("cannot read ha.cf: {e}"),
    })?;
    parse(path, &text)
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
                Err(err(col, format!("`{directive}` needs {k} value{}", if k > 1 { "s" } else { "" })))
            } else {
                Ok(())
            }
        };
        let one = || -> Result<(usize, &str), Error> {
            match args {
                [a] => Ok(*a),
                [] => Err(err(col, format!("`{directive}` needs a value"))),
                [_, (c, extra), ..] => Err(err(*c, format!("`{directive}` takes one value; `{extra}` is one too many"))),
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
            "udpport" => {
                once(path, directive, &cf.udpport, line, col)?;
                let (c, v) = one()?;
                let port = port(v).map_err(|m| err(c, m))?;
                cf.udpport = Some(At { value: port, line, col: c });
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
                add_channel(&mut cf, path, line, args[0].0, args[0].1, Mode::Ucast { peers: vec![peer] })?;
            }
            "ping" => {
                need(1)?;
                for &(c, a) in args {
                    let ip: IpAddr = a.parse().map_err(|_| {
                        err(c, format!("ping node `{a}` is not an IP address"))
                    })?;
                    cf.ping.push(At { value: ip, line, col: c });
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
    let text = std::fs::read_to_string(path).map_err(|e| Error {
        file: Some(path.into()),
        pos: None,
        msg: format!("cannot read haresources: {e}"),
    })?;
    parse_haresources(path, &text)
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
                None if r.parse::<IpAddr>().is_ok() || r.contains('/') => ("IPaddr", Some(r.as_str())),
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
                ("IPaddr" | "IPaddr2", None) => {
                    return Err(error_at(path, *l, *c, format!("{r} names no address")))
                }
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
