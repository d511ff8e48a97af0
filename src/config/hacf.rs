//! Heartbeat's own files, read as Heartbeat 3.0.6 reads them, so that a cluster moves
//! over without rewriting them: `ha.cf` (for hb-send and hb-watch, `--ha-cf`) and
//! `haresources` (for ipfake, `--haresources`). Pure but for [`load`]'s resolving of
//! host names: the text in, the values with
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
    /// What Heartbeat takes but hakit reads with a correction (a directive given
    /// twice: the last wins; warntime above deadtime: clamped), for the tool to log.
    pub warnings: Vec<At<String>>,
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
    (
        "syslogmsgfmt",
        "hakit logs to stderr (journald) or, with --syslog, to syslog",
    ),
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

/// Heartbeat's WHITESPACE (config.c); a non-ASCII space is part of a word there.
const SPACE: &[char] = &[' ', '\t', '\n', '\r', '\x0c'];

/// Words of a line split at `seps`, with their columns (characters, from 1); `#`
/// starts a comment anywhere.
fn split_cols<'a>(line: &'a str, seps: &[char]) -> Vec<(usize, &'a str)> {
    let line = line.split('#').next().unwrap_or("");
    let mut out = Vec::new();
    let mut start = None;
    for (n, (i, c)) in line.char_indices().enumerate() {
        if seps.contains(&c) {
            if let Some((s, col)) = start.take() {
                out.push((col, &line[s..i]));
            }
        } else if start.is_none() {
            start = Some((i, n + 1));
        }
    }
    if let Some((s, col)) = start {
        out.push((col, &line[s..]));
    }
    out
}

fn words(line: &str) -> Vec<(usize, &str)> {
    split_cols(line, SPACE)
}

/// Heartbeat's DELIMS: its list directives (node, ping, bcast) split at commas too.
fn items(line: &str) -> Vec<(usize, &str)> {
    let mut seps = SPACE.to_vec();
    seps.push(',');
    split_cols(line, &seps)
}

/// A duration as Heartbeat writes it (`2`, `500ms`, `500msec`, `2000MS`, `10usec`), for
/// base::duration.
fn hb_duration(v: &str) -> Result<Duration, String> {
    let l = v.to_ascii_lowercase();
    let l = match l.strip_suffix("msec").or_else(|| l.strip_suffix("usec")) {
        Some(n) => format!("{n}{}", &l[l.len() - 4..l.len() - 2]),
        None => l,
    };
    crate::base::duration::parse(&l).map_err(|_| format!("`{v}` is not a duration (write 2, 500ms, 500msec)"))
}

/// Heartbeat's initdead when ha.cf has none (config.c): 12 s below a deadtime of 6 s,
/// twice deadtime up to 10 s, deadtime itself above (run: `cl_status hbparameter -p
/// initdead` says 12000ms, 16000ms, 20000ms for deadtimes 2, 8, 20).
pub fn default_initdead(deadtime: Duration) -> Duration {
    if deadtime > Duration::from_secs(10) {
        deadtime
    } else if deadtime < Duration::from_secs(6) {
        Duration::from_secs(12)
    } else {
        deadtime * 2
    }
}

/// How a peer's or ping node's name becomes its address.
pub type Resolve<'a> = &'a dyn Fn(&str) -> Result<IpAddr, String>;

/// An address only: [`parse`] stays pure (the fuzz target sends no DNS query).
fn literal(name: &str) -> Result<IpAddr, String> {
    name.parse()
        .map_err(|_| format!("`{name}` is not an IP address (a host name is resolved only when ha.cf is loaded)"))
}

/// A peer or ping node: an address, or a name resolved once, at load, as Heartbeat
/// resolves it (gethostbyname: IPv4; /etc/hosts answers without a network).
pub fn host(name: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = name.parse() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    let found = (name, 0)
        .to_socket_addrs()
        .map_err(|e| format!("`{name}` is neither an IP address nor a host name that resolves: {e}"))?;
    found
        .map(|a| a.ip())
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| format!("`{name}` has no IPv4 address"))
}

/// The text of one of Heartbeat's files (`what` names it in the error).
fn read(path: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error {
        file: Some(path.into()),
        pos: None,
        msg: format!("cannot read {what}: {e}"),
    })
}

/// Read and parse an ha.cf, resolving host names.
pub fn load(path: &Path) -> Result<HaCf, Error> {
    parse_with(path, &read(path, "ha.cf")?, &host)
}

/// Parse an ha.cf's text; `path` names it in errors. Peers and ping nodes must be
/// addresses here ([`load`] resolves names).
pub fn parse(path: &Path, text: &str) -> Result<HaCf, Error> {
    parse_with(path, text, &literal)
}

/// Parse an ha.cf's text, peers' and ping nodes' names (what is not an address)
/// resolved by `resolve`.
pub fn parse_with(path: &Path, text: &str, resolve: Resolve) -> Result<HaCf, Error> {
    let mut cf = HaCf {
        path: path.into(),
        ..HaCf::default()
    };
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let w = words(raw);
        let Some(&(col, word)) = w.first() else { continue };
        // Heartbeat's own renamings: "directive 'udp' replaced by 'bcast'"; the v6
        // forms take what their v4 forms take.
        let directive = match word {
            "udp" => "bcast",
            "ping6" => "ping",
            "ucast6" => "ucast",
            d => d,
        };
        let args = &w[1..];
        // The rest of the line at Heartbeat's DELIMS (commas too), columns kept.
        let rest = || -> Vec<(usize, &str)> {
            let skip = raw
                .char_indices()
                .nth(col - 1 + word.chars().count())
                .map_or(raw.len(), |(i, _)| i);
            let prefix = raw[..skip].chars().count();
            items(&raw[skip..]).into_iter().map(|(c, v)| (c + prefix, v)).collect()
        };
        let err = |c: usize, m: String| error_at(path, line, c, m);
        let need = |list: &[(usize, &str)]| -> Result<(), Error> {
            if list.is_empty() {
                Err(err(col, format!("`{word}` needs a value")))
            } else {
                Ok(())
            }
        };
        // A single-value directive given twice (or with two values) is set twice
        // by Heartbeat: the last one wins (run: `keepalive 300ms 400ms` is 400ms),
        // with a warning naming both.
        let last = |warnings: &mut Vec<At<String>>, old: Option<(usize, usize)>| -> Result<(usize, &str), Error> {
            let list = rest();
            need(&list)?;
            let mut prev = old;
            for &(c, _) in &list {
                if let Some((l, pc)) = prev {
                    warnings.push(At {
                        value: format!("`{word}` is set again (first at {l}:{pc}); the last one is taken"),
                        line,
                        col: c,
                    });
                }
                prev = Some((line, c));
            }
            Ok(*list.last().expect("checked"))
        };
        let place = |a: &Option<At<Duration>>| a.as_ref().map(|a| (a.line, a.col));
        let duration = |warnings: &mut Vec<At<String>>, old: &Option<At<Duration>>| -> Result<At<Duration>, Error> {
            let (c, v) = last(warnings, place(old))?;
            let d = hb_duration(v).map_err(|m| err(c, m))?;
            Ok(At { value: d, line, col: c })
        };
        match directive {
            "node" => {
                let list = rest();
                need(&list)?;
                for (c, name) in list {
                    // Heartbeat lowercases node names (`node N1` sends `src=n1`).
                    let name = name.to_ascii_lowercase();
                    if !crate::wire::hv::valid_name(&name) {
                        return Err(err(
                            c,
                            format!("`{name}` is not a node name hakit can use (letters, digits, - _ .; at most 64)"),
                        ));
                    }
                    if let Some(o) = cf.nodes.iter().find(|n| n.value == name) {
                        return Err(err(
                            c,
                            format!(
                                "node `{name}` is listed twice (first at {}:{}; Heartbeat lowercases names)",
                                o.line, o.col
                            ),
                        ));
                    }
                    cf.nodes.push(At {
                        value: name,
                        line,
                        col: c,
                    });
                }
            }
            "keepalive" => cf.keepalive = Some(duration(&mut cf.warnings, &cf.keepalive)?),
            "deadtime" => cf.deadtime = Some(duration(&mut cf.warnings, &cf.deadtime)?),
            "warntime" => cf.warntime = Some(duration(&mut cf.warnings, &cf.warntime)?),
            "initdead" => cf.initdead = Some(duration(&mut cf.warnings, &cf.initdead)?),
            "deadping" => cf.deadping = Some(duration(&mut cf.warnings, &cf.deadping)?),
            "udpport" => {
                let (c, v) = last(&mut cf.warnings, cf.udpport.as_ref().map(|a| (a.line, a.col)))?;
                let port = port(v).map_err(|m| err(c, m))?;
                cf.udpport = Some(At {
                    value: port,
                    line,
                    col: c,
                });
            }
            "bcast" => {
                let list = rest();
                need(&list)?;
                for (c, dev) in list {
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
                // Heartbeat's mcast takes 0..4 ("bad ttl" above).
                let ttl: u8 = t
                    .parse()
                    .ok()
                    .filter(|&t| t <= 4)
                    .ok_or_else(|| err(tc, format!("`{t}` is not a TTL Heartbeat takes (0..4)")))?;
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
                    return Err(err(col, format!("write `{word} DEV PEER` (one peer a line)")));
                }
                let (pc, p) = args[1];
                let peer = p.parse().or_else(|_| resolve(p)).map_err(|m| err(pc, m))?;
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
                let list = rest();
                need(&list)?;
                for (c, a) in list {
                    let ip = a
                        .parse()
                        .or_else(|_| resolve(a))
                        .map_err(|m| err(c, format!("ping node: {m}")))?;
                    cf.ping.push(At {
                        value: ip,
                        line,
                        col: c,
                    });
                }
            }
            "auto_failback" => {
                let (c, v) = last(&mut cf.warnings, cf.auto_failback.as_ref().map(|a| (a.line, a.col)))?;
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
    // Heartbeat corrects a warntime above deadtime (with a warning); so does hakit.
    if let (Some(w), Some(d)) = (&mut cf.warntime, &cf.deadtime) {
        if w.value > d.value {
            cf.warnings.push(At {
                value: format!(
                    "warntime {} exceeds the deadtime {} of line {}: taken as {}",
                    crate::base::duration::format(w.value),
                    crate::base::duration::format(d.value),
                    d.line,
                    crate::base::duration::format(d.value)
                ),
                line: w.line,
                col: w.col,
            });
            w.value = d.value;
        }
    }
    Ok(cf)
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

/// hakit sends and listens on one port: every mcast line's port must be udpport's.
/// Without udpport, Heartbeat's bcast and ucast stay on 694 while the first mcast
/// line's port becomes the port of the mcast channels only: with no other medium, it
/// stands for udpport; beside one, it must be 694.
fn check_ports(cf: &mut HaCf) -> Result<(), Error> {
    let ports = std::mem::take(&mut cf.mcast_ports);
    let others = cf
        .channels
        .iter()
        .find(|c| !matches!(c.value.mode, Mode::Mcast { .. }))
        .cloned();
    for p in &ports {
        match (&cf.udpport, &others) {
            (None, None) => cf.udpport = Some(p.clone()),
            (None, Some(o)) if p.value != crate::config::DEFAULT_PORT => {
                return Err(cf.error(
                    p,
                    format!(
                        "port {} differs from the port {} that line {}'s channel keeps without udpport: hakit uses one port for every channel",
                        p.value,
                        crate::config::DEFAULT_PORT,
                        o.line
                    ),
                ))
            }
            (Some(u), _) if u.value != p.value => {
                return Err(cf.error(
                    p,
                    format!(
                        "port {} differs from the port {} of line {}: hakit uses one port for every channel",
                        p.value, u.value, u.line
                    ),
                ))
            }
            _ => {}
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
    // The words of one logical line, each with its own line and column. As
    // ResourceManager reads it: the comment goes first, then a `\\` that is the very
    // last character joins the next line.
    let mut group: Vec<(usize, usize, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (n, raw) in lines.iter().enumerate() {
        let body = raw.split('#').next().unwrap_or("");
        let (body, more) = match body.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (body, false),
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
                    if out.addresses.iter().any(|o| o.addr == addr.ip) {
                        return Err(error_at(path, *l, *c, format!("{} is given twice", addr.ip)));
                    }
                    if let Some(b) = addr.broadcast {
                        out.skipped.push(Skipped {
                            line: *l,
                            col: *c,
                            what: format!("broadcast {b}"),
                            why: "ipfake lets the kernel derive the broadcast address from the prefix",
                        });
                    }
                    out.addresses.push(HaAddress {
                        node: node.clone(),
                        addr: addr.ip,
                        prefix: addr.prefix,
                        dev: addr.dev,
                        label: addr.label,
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

/// IPaddr's argument, taken apart.
struct IpParts {
    ip: IpAddr,
    prefix: Option<u8>,
    dev: Option<String>,
    label: Option<String>,
    broadcast: Option<IpAddr>,
}

/// IPaddr's argument: `IP[/BITS[/DEV][/BROADCAST]]` (BITS may be a dotted netmask; DEV
/// may carry a label, `eth0:web`). Empty fields are dropped, as IPaddr's sed drops a
/// repeated `/` (`IP/24//BCAST`).
fn ip_resource(a: &str) -> Result<IpParts, String> {
    if a.contains("::") {
        return Err("IPaddr and IPaddr2 take one argument, IP/BITS/DEV/BROADCAST".into());
    }
    let mut parts = a.split('/').filter(|p| !p.is_empty());
    let ip_s = parts.next().unwrap_or("");
    let ip: IpAddr = ip_s.parse().map_err(|_| format!("`{ip_s}` is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match parts.next() {
        None => None,
        Some(b) => Some(
            crate::net::addr::parse_prefixed(&format!("{ip_s}/{b}"))
                .ok()
                .map(|(_, p)| p)
                .or_else(|| crate::net::addr::netmask_prefix(b))
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("`{b}` is not a prefix length (1..{max}) or a netmask"))?,
        ),
    };
    let mut out = IpParts {
        ip,
        prefix,
        dev: None,
        label: None,
        broadcast: None,
    };
    for p in parts {
        if let Ok(b) = p.parse::<IpAddr>() {
            out.broadcast = Some(b);
            continue;
        }
        if out.dev.is_some() {
            return Err(format!("`{p}` is neither an interface nor a broadcast address"));
        }
        let d = p.split(':').next().unwrap_or(p);
        if !crate::net::addr::valid_ifname(d) {
            return Err(format!("`{p}` is not an interface name"));
        }
        if p.contains(':') {
            crate::tools::ipfake::settings::check_label(p, d)?;
            out.label = Some(p.to_string());
        }
        out.dev = Some(d.to_string());
    }
    crate::net::addr::check_unicast(ip, prefix)?;
    Ok(out)
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
        // bcast and ucast keep 694 without udpport: the mcast port agrees, none is set.
        assert_eq!(c.udpport, None);
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
        // A second value is another setting of it (the last wins), a bad one an error.
        assert!(bad("deadtime 5 parsecs\n").starts_with("ha.cf:1:12: `parsecs` is not a duration"));
        assert!(bad("warntime soon\n").starts_with("ha.cf:1:10: `soon` is not a duration"));
        assert_eq!(bad("initdead\n"), "ha.cf:1:1: `initdead` needs a value");
        assert_eq!(bad("node\n"), "ha.cf:1:1: `node` needs a value");
        assert_eq!(bad("udpport 0\n"), "ha.cf:1:9: `0` is not a UDP port (1..65535)");
        assert_eq!(
            bad("udpport 70000\n"),
            "ha.cf:1:9: `70000` is not a UDP port (1..65535)"
        );
        assert_eq!(
            bad("\n\nkeepaliv 2\n"),
            "ha.cf:3:1: `keepaliv` is not a Heartbeat directive"
        );
        assert_eq!(
            bad("node a b a\n"),
            "ha.cf:1:10: node `a` is listed twice (first at 1:6; Heartbeat lowercases names)"
        );
        assert!(bad("node ok no/slash\n").starts_with("ha.cf:1:9: `no/slash` is not a node name"));
        assert_eq!(
            bad("mcast eth0 225.0.0.1 694 1\n"),
            "ha.cf:1:1: write `mcast DEV GROUP PORT TTL LOOP` (five values)"
        );
        assert_eq!(
            bad("mcast eth0 10.0.0.1 694 1 0\n"),
            "ha.cf:1:12: `10.0.0.1` is not an IPv4 multicast group (224.0.0.0/4)"
        );
        assert_eq!(
            bad("mcast eth0 225.0.0.1 694 5 0\n"),
            "ha.cf:1:26: `5` is not a TTL Heartbeat takes (0..4)"
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
            "ha.cf:1:12: `peer2` is not an IP address (a host name is resolved only when ha.cf is loaded)"
        );
        assert!(bad("ucast eth0 224.0.0.1\n").starts_with("ha.cf:1:12: "));
        assert_eq!(
            bad("ucast eth0\n"),
            "ha.cf:1:1: write `ucast DEV PEER` (one peer a line)"
        );
        assert_eq!(
            bad("ucast6 eth0\n"),
            "ha.cf:1:1: write `ucast6 DEV PEER` (one peer a line)"
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
        assert!(bad("ping 10.0.0.300\n").starts_with("ha.cf:1:6: ping node: `10.0.0.300` is not an IP address"));
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
        assert_eq!(
            s,
            [
                (2, 57, "httpd"),
                (3, 7, "broadcast 135.9.216.12"),
                (4, 13, "Filesystem::/dev/sda1::/data1::ext2")
            ]
        );
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
        // The ha.cf tests/heartbeat_interop.rs gives Heartbeat 3.0.6 (its logfile line
        // added last).
        let text = concat!(
            include_str!("../../tests/heartbeat-interop.ha.cf"),
            "logfile /tmp/x/ha-log\n"
        );
        let c = cf(text).unwrap();
        assert_eq!(
            c.nodes.iter().map(|n| n.value.as_str()).collect::<Vec<_>>(),
            ["hbpeer", "n1"]
        );
        assert_eq!(c.udpport.as_ref().map(|p| p.value), Some(695));
        assert_eq!(c.keepalive.as_ref().map(|k| k.value), Some(Duration::from_millis(200)));
        assert_eq!(
            c.skipped.iter().map(|s| s.what.as_str()).collect::<Vec<_>>(),
            ["crm", "logfile"]
        );
        assert!(c.warnings.is_empty());
        let h = parse_haresources(Path::new("haresources"), "").unwrap();
        assert!(h.addresses.is_empty());
    }

    /// Heartbeat lowercases node names: `node N1` is n1, and `node A a` one node twice.
    #[test]
    fn node_names_are_lowercased() {
        let c = cf("node N1 Web-2\n").unwrap();
        assert_eq!(c.nodes, [at("n1".into(), 1, 6), at("web-2".into(), 1, 9)]);
        assert_eq!(
            cf("node A a\n").unwrap_err(),
            "ha.cf:1:8: node `a` is listed twice (first at 1:6; Heartbeat lowercases names)"
        );
    }

    /// Without udpport, bcast and ucast stay on 694; the mcast port only stands for
    /// udpport when mcast is the only medium.
    #[test]
    fn the_mcast_port_without_udpport() {
        let c = cf("mcast eth0 225.0.0.1 700 1 0\nmcast eth1 225.0.0.2 700 1 0\n").unwrap();
        assert_eq!(c.udpport, Some(at(700, 1, 22)));
        let one = "hakit uses one port for every channel";
        for (text, want) in [
            (
                "bcast eth1\nmcast eth0 225.0.0.1 700 1 0\n",
                format!(
                    "ha.cf:2:22: port 700 differs from the port 694 that line 1's channel keeps without udpport: {one}"
                ),
            ),
            (
                "mcast eth0 225.0.0.1 700 1 0\nucast eth1 10.0.0.2\n",
                format!(
                    "ha.cf:1:22: port 700 differs from the port 694 that line 2's channel keeps without udpport: {one}"
                ),
            ),
            (
                "mcast eth0 225.0.0.1 700 1 0\nmcast eth1 225.0.0.2 701 1 0\n",
                format!("ha.cf:2:22: port 701 differs from the port 700 of line 1: {one}"),
            ),
        ] {
            assert_eq!(cf(text).unwrap_err(), want, "{text:?}");
        }
        // An explicit udpport is every channel's.
        let c = cf("udpport 700\nbcast eth1\nmcast eth0 225.0.0.1 700 1 0\n").unwrap();
        assert_eq!(c.udpport.map(|p| p.value), Some(700));
    }

    /// Heartbeat's list directives split at commas too.
    #[test]
    fn lists_split_at_commas() {
        let c = cf("node xx,n1\nping 127.0.0.1,127.0.0.2\nbcast eth0,eth1\n").unwrap();
        assert_eq!(c.nodes, [at("xx".into(), 1, 6), at("n1".into(), 1, 9)]);
        assert_eq!(
            c.ping,
            [
                at("127.0.0.1".parse().unwrap(), 2, 6),
                at("127.0.0.2".parse().unwrap(), 2, 16)
            ]
        );
        let devs: Vec<_> = c.channels.iter().map(|c| (c.value.dev.as_str(), c.col)).collect();
        assert_eq!(devs, [("eth0", 7), ("eth1", 12)]);
        assert_eq!(cf("node ,\n").unwrap_err(), "ha.cf:1:1: `node` needs a value");
    }

    /// Heartbeat's units, in any case: ms, msec, us, usec; a bare number is seconds.
    #[test]
    fn heartbeats_durations() {
        let c = cf("keepalive 500msec\ndeadtime 2000MS\nwarntime 900000usec\ninitdead 30\ndeadping 7Sec\n").unwrap();
        assert_eq!(c.keepalive.map(|d| d.value), Some(Duration::from_millis(500)));
        assert_eq!(c.deadtime.map(|d| d.value), Some(Duration::from_secs(2)));
        assert_eq!(c.warntime.map(|d| d.value), Some(Duration::from_millis(900)));
        assert_eq!(c.initdead.map(|d| d.value), Some(Duration::from_secs(30)));
        assert_eq!(c.deadping.map(|d| d.value), Some(Duration::from_secs(7)));
        assert_eq!(
            cf("keepalive 2fortnights\n").unwrap_err(),
            "ha.cf:1:11: `2fortnights` is not a duration (write 2, 500ms, 500msec)"
        );
    }

    /// What Heartbeat accepts under another name is read as what it stands for.
    #[test]
    fn renamed_directives() {
        let c = cf("syslogmsgfmt true\nudp eth0\nping6 fe80::1\nucast6 eth1 2001:db8::2\n").unwrap();
        assert_eq!(
            c.skipped.iter().map(|s| s.what.as_str()).collect::<Vec<_>>(),
            ["syslogmsgfmt"]
        );
        assert_eq!(c.channels[0].value.mode, Mode::Bcast);
        assert_eq!(c.ping, [at("fe80::1".parse().unwrap(), 3, 7)]);
        assert_eq!(
            c.channels[1].value.mode,
            Mode::Ucast {
                peers: vec!["2001:db8::2".parse().unwrap()]
            }
        );
    }

    /// Heartbeat's initdead without an initdead line (config.c).
    #[test]
    fn initdead_default_is_heartbeats() {
        let s = Duration::from_secs;
        assert_eq!(default_initdead(s(2)), s(12));
        assert_eq!(default_initdead(Duration::from_millis(5999)), s(12));
        assert_eq!(default_initdead(s(6)), s(12));
        assert_eq!(default_initdead(s(8)), s(16));
        assert_eq!(default_initdead(s(10)), s(20));
        assert_eq!(default_initdead(s(11)), s(11));
        assert_eq!(default_initdead(s(30)), s(30));
    }

    /// A single-value directive set again: the last wins, the warning names both.
    #[test]
    fn the_last_setting_wins() {
        let c = cf("keepalive 1\nkeepalive 2\nudpport 700 701\n").unwrap();
        assert_eq!(c.keepalive, Some(at(Duration::from_secs(2), 2, 11)));
        assert_eq!(c.udpport, Some(at(701, 3, 13)));
        let w: Vec<_> = c.warnings.iter().map(|w| (w.line, w.col, w.value.as_str())).collect();
        assert_eq!(
            w,
            [
                (2, 11, "`keepalive` is set again (first at 1:11); the last one is taken"),
                (3, 13, "`udpport` is set again (first at 3:9); the last one is taken"),
            ]
        );
    }

    /// warntime above deadtime: clamped to it, with a warning at warntime's line.
    #[test]
    fn warntime_above_deadtime_is_clamped() {
        let c = cf("deadtime 2\nwarntime 5\n").unwrap();
        assert_eq!(c.warntime, Some(at(Duration::from_secs(2), 2, 10)));
        assert_eq!(
            c.warnings,
            [at(
                "warntime 5s exceeds the deadtime 2s of line 1: taken as 2s".to_string(),
                2,
                10
            )]
        );
        assert!(cf("deadtime 2\nwarntime 2\n").unwrap().warnings.is_empty());
    }

    /// Heartbeat's mcast TTL is 0..4.
    #[test]
    fn mcast_ttl_is_0_to_4() {
        for t in ["0", "4"] {
            let c = cf(&format!("mcast eth0 225.0.0.1 694 {t} 0\n")).unwrap();
            assert!(matches!(c.channels[0].value.mode, Mode::Mcast { ttl, .. } if ttl.to_string() == t));
        }
        for t in ["5", "255", "-1"] {
            assert_eq!(
                cf(&format!("mcast eth0 225.0.0.1 694 {t} 0\n")).unwrap_err(),
                format!("ha.cf:1:26: `{t}` is not a TTL Heartbeat takes (0..4)")
            );
        }
    }

    /// Host names are resolved once, at load; a name that does not resolve is an
    /// error at its word. The resolver is a table here (no DNS query from a test);
    /// `host` itself is asked only for what /etc/hosts answers.
    #[test]
    fn host_names_are_resolved() {
        let table = |n: &str| match n {
            "peer2" => Ok("10.0.0.2".parse().unwrap()),
            _ => Err(format!("`{n}` does not resolve")),
        };
        let c = parse_with(Path::new("ha.cf"), "ucast eth0 peer2\nping peer2,10.0.0.9\n", &table).unwrap();
        assert_eq!(
            c.channels[0].value.mode,
            Mode::Ucast {
                peers: vec!["10.0.0.2".parse().unwrap()]
            }
        );
        assert_eq!(
            c.ping,
            [
                at("10.0.0.2".parse().unwrap(), 2, 6),
                at("10.0.0.9".parse().unwrap(), 2, 12)
            ]
        );
        let e = parse_with(Path::new("ha.cf"), "ping 10.0.0.9 gw\n", &table).unwrap_err();
        assert_eq!(e.to_string(), "ha.cf:1:15: ping node: `gw` does not resolve");
        assert_eq!(host("localhost"), Ok("127.0.0.1".parse().unwrap()));
        assert_eq!(host("10.1.2.3"), Ok("10.1.2.3".parse().unwrap()));
    }

    /// Columns count characters, and only ASCII blanks separate words.
    #[test]
    fn columns_are_characters() {
        let name = "is not a node name hakit can use (letters, digits, - _ .; at most 64)";
        for (text, want) in [
            ("# é\nnode é1\n", format!("ha.cf:2:6: `é1` {name}")),
            // `é` is two bytes: the peer is at the 9th character, the 10th byte.
            (
                "ucast é 10.0.0.300\n",
                "ha.cf:1:9: `10.0.0.300` is not an IP address (a host name is resolved only when ha.cf is loaded)"
                    .into(),
            ),
            ("node \u{e9} \u{e9}\n", format!("ha.cf:1:6: `\u{e9}` {name}")),
            // A no-break space is no blank to Heartbeat: one word.
            (
                "node\u{a0}n1 x\n",
                "ha.cf:1:1: `node\u{a0}n1` is not a Heartbeat directive".into(),
            ),
        ] {
            assert_eq!(cf(text).unwrap_err(), want, "{text:?}");
        }
        // A form feed separates, as in Heartbeat's WHITESPACE.
        assert_eq!(
            cf("keepalive\u{c}1\n").unwrap().keepalive,
            Some(at(Duration::from_secs(1), 1, 11))
        );
    }

    fn hr(text: &str) -> HaResources {
        parse_haresources(Path::new("haresources"), text).unwrap()
    }

    #[test]
    fn haresources_comments_and_continuations() {
        // The comment goes first: a `\\` inside it continues nothing, and one before
        // it (then the last character) does.
        let h = hr("n1 10.0.0.1/24/eth0 # not joined \\\nn2 10.0.0.2/24/eth0 \\# joined\n 10.0.0.3/24/eth0\nn3 10.0.0.4/24/eth0 \\ \nn4 10.0.0.5/24/eth0\n");
        let a: Vec<_> = h
            .addresses
            .iter()
            .map(|a| (a.node.as_str(), a.addr.to_string(), a.line))
            .collect();
        assert_eq!(
            a,
            [
                ("n1", "10.0.0.1".into(), 1),
                ("n2", "10.0.0.2".into(), 2),
                ("n2", "10.0.0.3".into(), 3),
                ("n3", "10.0.0.4".into(), 4),
                ("n4", "10.0.0.5".into(), 5),
            ]
        );
        // `\\ ` (a blank after it) joins nothing: the backslash is a resource.
        assert_eq!(
            h.skipped.iter().map(|s| (s.line, s.what.as_str())).collect::<Vec<_>>(),
            [(4, "\\")]
        );
    }

    #[test]
    fn haresources_empty_fields_and_the_broadcast() {
        let h = hr("n1 IPaddr::10.0.0.5/24//10.0.0.255\nn1 IPaddr::10.0.1.5//24/eth1\nn1 IPaddr::10.0.2.5/24\n");
        let a: Vec<_> = h
            .addresses
            .iter()
            .map(|a| (a.addr.to_string(), a.prefix, a.dev.as_deref()))
            .collect();
        assert_eq!(
            a,
            [
                ("10.0.0.5".into(), Some(24), None),
                ("10.0.1.5".into(), Some(24), Some("eth1")),
                ("10.0.2.5".into(), Some(24), None),
            ]
        );
        let s: Vec<_> = h
            .skipped
            .iter()
            .map(|s| (s.line, s.col, s.what.as_str(), s.why))
            .collect();
        assert_eq!(
            s,
            [(
                1,
                4,
                "broadcast 10.0.0.255",
                "ipfake lets the kernel derive the broadcast address from the prefix"
            )]
        );
    }
}
