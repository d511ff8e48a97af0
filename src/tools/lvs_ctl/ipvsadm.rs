//! ipvsadm's command line, parsed once for both places it appears: the arguments of a
//! run, and each line of a `-R` file. The grammar is ipvsadm 1.31's (popt): a command
//! (`-A`, `-a`, `-L`, ...) and its options, short ones combinable (`-Ln`), `-p` with an
//! optional timeout, long options with `--opt value` or `--opt=value`. The options that
//! may go with each command are ipvsadm's own table; an option that does not belong is
//! refused by name, as ipvsadm does, but every refusal also names where it came from
//! (the flag, or `stdin:LINE:COLUMN` in a restore file).
//!
//! ipvsadm insists on the command coming first; this parser takes it anywhere. Options
//! are read as a whole, not in order: `-a -r 10.0.0.2 -t VIP:80 -m` gets the service's
//! port here, where ipvsadm (which has not read `-t` yet) gives it port 0.

use super::backend::Kind;
use super::model::*;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// What one option is, for the parser and for the man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    None,
    Required(&'static str),
    Optional(&'static str),
}

/// Which option (ipvsadm's OPTC_ names, plus the commands and hakit's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Id {
    // Commands.
    AddService,
    EditService,
    DelService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DelServer,
    Set,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Help,
    Version,
    // Options.
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Ipv6,
    Scheduler,
    Persistent,
    Netmask,
    Ops,
    Pe,
    SchedFlags,
    Real,
    Gatewaying,
    Ipip,
    Masquerading,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    McastInterface,
    SyncId,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunType,
    // hakit's own.
    Backend,
    Json,
}

pub struct Opt {
    pub short: Option<char>,
    pub long: &'static str,
    pub arg: Arg,
    pub id: Id,
    pub help: &'static str,
}

const fn o(short: Option<char>, long: &'static str, arg: Arg, id: Id, help: &'static str) -> Opt {
    Opt {
        short,
        long,
        arg,
        id,
        help,
    }
}

use Arg::{None as N, Optional as O, Required as R};

/// Every option, in the order ipvsadm's help lists them. The man page and the
/// completions are generated from this table too.
pub const OPTIONS: &[Opt] = &[
    o(Some('A'), "add-service", N, Id::AddService, "Add a virtual service"),
    o(Some('E'), "edit-service", N, Id::EditService, "Edit a virtual service"),
    o(Some('D'), "delete-service", N, Id::DelService, "Delete a virtual service"),
    o(Some('C'), "clear", N, Id::Clear, "Clear the whole table"),
    o(Some('R'), "restore", N, Id::Restore, "Restore rules from stdin, all or nothing: a bad line (named stdin:LINE:COLUMN) changes nothing, exit 2"),
    o(Some('S'), "save", N, Id::Save, "Save rules to stdout (-A/-a lines, as ipvsadm -S)"),
    o(Some('a'), "add-server", N, Id::AddServer, "Add a real server to a virtual service"),
    o(Some('e'), "edit-server", N, Id::EditServer, "Edit a real server of a virtual service"),
    o(Some('d'), "delete-server", N, Id::DelServer, "Delete a real server from a virtual service"),
    o(Some('L'), "list", N, Id::List, "List the table (one service with a service option), as ipvsadm -L prints it"),
    o(Some('l'), "list", N, Id::List, "Same as -L"),
    o(Some('Z'), "zero", N, Id::Zero, "Zero the counters of a service or of all"),
    o(None, "set", N, Id::Set, "Set the connection timeouts: --set TCP TCPFIN UDP (seconds, 0 = unchanged)"),
    o(None, "start-daemon", R("STATE"), Id::StartDaemon, "Start the connection synchronisation daemon (master or backup)"),
    o(None, "stop-daemon", R("STATE"), Id::StopDaemon, "Stop the connection synchronisation daemon (master or backup)"),
    o(Some('h'), "help", N, Id::Help, "Print ipvsadm's help"),
    o(Some('v'), "version", N, Id::Version, "Print the version"),
    o(Some('t'), "tcp-service", R("HOST:PORT"), Id::Tcp, "A TCP service: address[:port] (IPv6 as [addr]:port)"),
    o(Some('u'), "udp-service", R("HOST:PORT"), Id::Udp, "A UDP service"),
    o(None, "sctp-service", R("HOST:PORT"), Id::Sctp, "An SCTP service"),
    o(Some('f'), "fwmark-service", R("FWMARK"), Id::Fwmark, "A service of packets with this firewall mark"),
    o(Some('6'), "ipv6", N, Id::Ipv6, "The firewall-mark service is IPv6 (after -f)"),
    o(Some('s'), "scheduler", R("SCHED"), Id::Scheduler, "Scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh (default wlc)"),
    o(Some('p'), "persistent", O("TIMEOUT"), Id::Persistent, "Persistent service, timeout in seconds (default 360, ipvsadm's)"),
    o(Some('M'), "netmask", R("NETMASK"), Id::Netmask, "Persistence granularity: an IPv4 mask, an IPv6 prefix length"),
    o(Some('o'), "ops", N, Id::Ops, "One-packet scheduling (UDP)"),
    o(None, "pe", R("ENGINE"), Id::Pe, "Persistence engine (sip)"),
    o(Some('b'), "sched-flags", R("FLAGS"), Id::SchedFlags, "Scheduler flags: sh-fallback,sh-port / mh-fallback,mh-port / flag-1,flag-2,flag-3"),
    o(Some('r'), "real-server", R("HOST:PORT"), Id::Real, "The real server: address[:port] (the service's port if none)"),
    o(Some('g'), "gatewaying", N, Id::Gatewaying, "Direct routing (the default)"),
    o(Some('i'), "ipip", N, Id::Ipip, "IP-in-IP tunnel"),
    o(Some('m'), "masquerading", N, Id::Masquerading, "NAT"),
    o(None, "tun-type", R("TYPE"), Id::TunType, "Tunnel type: ipip (the only one lvs-ctl knows; with -i)"),
    o(Some('w'), "weight", R("WEIGHT"), Id::Weight, "Weight, 0 to 65535 (0: no new connections; default 1)"),
    o(Some('x'), "u-threshold", R("UTHRESHOLD"), Id::UThreshold, "Upper connection threshold (0: none)"),
    o(Some('y'), "l-threshold", R("LTHRESHOLD"), Id::LThreshold, "Lower connection threshold (0: none)"),
    o(Some('n'), "numeric", N, Id::Numeric, "Numeric addresses and ports (lvs-ctl never resolves names when listing)"),
    o(Some('c'), "connection", N, Id::Connection, "List the connections"),
    o(None, "timeout", N, Id::Timeout, "List the connection timeouts"),
    o(None, "daemon", N, Id::Daemon, "List the synchronisation daemons"),
    o(None, "stats", N, Id::Stats, "List with counters"),
    o(None, "rate", N, Id::Rate, "List with rates"),
    o(None, "thresholds", N, Id::Thresholds, "List with thresholds"),
    o(None, "persistent-conn", N, Id::PersistentConn, "List with persistent connections"),
    o(None, "nosort", N, Id::NoSort, "List in the kernel's order"),
    o(None, "sort", N, Id::Sort, "List sorted (the default)"),
    o(Some('X'), "exact", N, Id::Exact, "Exact counters (no K, M, G)"),
    o(None, "mcast-interface", R("IFNAME"), Id::McastInterface, "The sync daemon's interface"),
    o(None, "syncid", R("SID"), Id::SyncId, "The sync daemon's id, 0 to 255"),
    o(None, "mcast-group", R("ADDRESS"), Id::McastGroup, "The sync daemon's multicast group"),
    o(None, "mcast-port", R("PORT"), Id::McastPort, "The sync daemon's port"),
    o(None, "mcast-ttl", R("TTL"), Id::McastTtl, "The sync daemon's multicast TTL"),
    o(None, "sync-maxlen", R("SIZE"), Id::SyncMaxlen, "The sync daemon's largest message"),
    o(None, "backend", R("ipvs|nft"), Id::Backend, "The kernel table to drive (default: ipvs where the kernel has it, else nft; or the configuration's lvs-ctl.backend)"),
    o(None, "json", N, Id::Json, "Print listings as JSON"),
];

/// How a listing looks (ipvsadm's FMT_ flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    pub numeric: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub nosort: bool,
    pub exact: bool,
}

/// What a `-L` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListWhat {
    All,
    Service(ServiceKey),
    Connections,
    Timeouts,
    Daemons,
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Change(Change),
    List(ListWhat, Format),
    Save(Format),
    Restore,
    SetTimeouts(Timeouts),
    StartDaemon(Daemon),
    StopDaemon(u32),
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub backend: Option<Kind>,
    pub json: bool,
}

/// A refusal of the command line: what, and where (`-w`, `stdin:3:12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub place: String,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{}: {}", self.place, self.msg)
        }
    }
}

/// One word of the command line, and where it stands (a column in a `-R` line).
#[derive(Debug, Clone, Copy)]
pub struct Word<'a> {
    pub text: &'a str,
    pub col: usize,
}

/// Where words come from, to name them in errors.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// The process's arguments: errors name the option.
    Args,
    /// Line `n` of a restore file called `name`: errors name `name:n:column`.
    Line(&'a str, usize),
}

struct Seen {
    id: Id,
    value: Option<String>,
    place: String,
}

/// Parse ipvsadm's arguments (without the program name).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Invocation, ParseError> {
    let words: Vec<Word> = args
        .iter()
        .map(|a| Word {
            text: a.as_ref(),
            col: 0,
        })
        .collect();
    parse(&words, Origin::Args)
}

/// The words of a `-R` line as ipvsadm's config_stream reads them: split on blanks,
/// the word `ipvsadm` dropped. And, more than ipvsadm (whose reader never sees them),
/// `#` comments: nothing from a word holding `#` on.
pub fn split_line(line: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    let bytes = line.as_bytes();
    for i in 0..=bytes.len() {
        let blank = i == bytes.len() || matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n');
        match (start, blank) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                let text = &line[s..i];
                if let Some(h) = text.find('#') {
                    if h > 0 {
                        out.push(Word {
                            text: &text[..h],
                            col: s + 1,
                        });
                    }
                    return out;
                }
                if text != "ipvsadm" {
                    out.push(Word { text, col: s + 1 });
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Parse one command from `words`.
pub fn parse(words: &[Word], origin: Origin) -> Result<Invocation, ParseError> {
    let place = |w: &Word, name: &str| match origin {
        Origin::Args => name.to_string(),
        Origin::Line(f, n) => format!("{f}:{n}:{}", w.col),
    };
    let mut seen: Vec<Seen> = Vec::new();
    let mut positional: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let t = w.text;
        i += 1;
        if let Some(long) = t.strip_prefix("--") {
            if long.is_empty() {
                // popt: everything after `--` is an argument.
                positional.extend(words[i..].iter().map(|x| (x.text.to_string(), place(x, x.text))));
                break;
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let opt = find_long(name).ok_or_else(|| ParseError {
                place: place(&w, t),
                msg: format!("unknown option --{name}"),
            })?;
            let value = match (opt.arg, inline) {
                (Arg::None, Some(_)) => {
                    return Err(ParseError {
                        place: place(&w, t),
                        msg: format!("--{name} takes no value"),
                    })
                }
                (Arg::None, None) => None,
                (_, Some(v)) => Some(v.to_string()),
                (arg, None) => next_value(arg, words, &mut i).map_err(|m| ParseError {
                    place: place(&w, t),
                    msg: format!("--{name} needs a value ({m})"),
                })?,
            };
            seen.push(Seen {
                id: opt.id,
                value,
                place: place(&w, &format!("--{name}")),
            });
        } else if t.len() > 1 && t.starts_with('-') {
            let chars: Vec<char> = t[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                let opt = find_short(c).ok_or_else(|| ParseError {
                    place: place(&w, t),
                    msg: format!("unknown option -{c}"),
                })?;
                let rest: String = chars[k..].iter().collect();
                let value = match opt.arg {
                    Arg::None => None,
                    _ if !rest.is_empty() => {
                        k = chars.len();
                        Some(rest)
                    }
                    arg => next_value(arg, words, &mut i).map_err(|m| ParseError {
                        place: place(&w, &format!("-{c}")),
                        msg: format!("-{c} needs a value ({m})"),
                    })?,
                };
                seen.push(Seen {
                    id: opt.id,
                    value,
                    place: place(&w, &format!("-{c}")),
                });
            }
        } else {
            positional.push((t.to_string(), place(&w, t)));
        }
    }
    assemble(seen, positional, origin)
}

/// An option's value from the next word: always for a required one (Err: its metavar
/// when there is none), for an optional one (popt's rule) only if it is not an option.
fn next_value(arg: Arg, words: &[Word], i: &mut usize) -> Result<Option<String>, &'static str> {
    match (arg, words.get(*i)) {
        (Arg::Required(_), Some(v)) => {
            *i += 1;
            Ok(Some(v.text.to_string()))
        }
        (Arg::Required(m), None) => Err(m),
        (Arg::Optional(_), Some(v)) if !v.text.starts_with('-') => {
            *i += 1;
            Ok(Some(v.text.to_string()))
        }
        _ => Ok(None),
    }
}

fn find_long(name: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.long == name)
}

fn find_short(c: char) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

fn is_command(id: Id) -> bool {
    matches!(
        id,
        Id::AddService
            | Id::EditService
            | Id::DelService
            | Id::Clear
            | Id::List
            | Id::Zero
            | Id::AddServer
            | Id::EditServer
            | Id::DelServer
            | Id::Set
            | Id::Restore
            | Id::Save
            | Id::StartDaemon
            | Id::StopDaemon
            | Id::Help
            | Id::Version
    )
}

/// The option's name as ipvsadm's messages call it.
fn optname(id: Id) -> &'static str {
    match id {
        Id::Numeric => "numeric",
        Id::Connection => "connection",
        Id::Tcp | Id::Udp | Id::Sctp | Id::Fwmark => "service-address",
        Id::Scheduler => "scheduler",
        Id::Persistent => "persistent",
        Id::Netmask => "netmask",
        Id::Real => "real-server",
        Id::Gatewaying | Id::Ipip | Id::Masquerading => "forwarding-method",
        Id::Weight => "weight",
        Id::UThreshold => "u-threshold",
        Id::LThreshold => "l-threshold",
        Id::McastInterface => "mcast-interface",
        Id::Timeout => "timeout",
        Id::Daemon => "daemon",
        Id::Stats => "stats",
        Id::Rate => "rate",
        Id::Thresholds => "thresholds",
        Id::PersistentConn => "persistent-conn",
        Id::NoSort => "nosort",
        Id::SyncId => "syncid",
        Id::Exact => "exact",
        Id::Ops => "ops",
        Id::Pe => "pe",
        Id::SchedFlags => "sched-flags",
        Id::McastGroup => "mcast-group",
        Id::McastPort => "mcast-port",
        Id::McastTtl => "mcast-ttl",
        Id::SyncMaxlen => "sync-maxlen",
        Id::TunType => "tun-type",
        _ => "option",
    }
}

/// Which options each command may take (ipvsadm's commands_v_options); `Sort`, `Ipv6`,
/// `Backend` and `Json` go with any.
fn allowed(cmd: Id, opt: Id) -> bool {
    use Id::*;
    let svc = matches!(opt, Tcp | Udp | Sctp | Fwmark);
    let fwd = matches!(opt, Gatewaying | Ipip | Masquerading);
    match cmd {
        AddService | EditService => svc || matches!(opt, Scheduler | Persistent | Netmask | Ops | Pe | SchedFlags),
        DelService => svc,
        AddServer | EditServer => svc || fwd || matches!(opt, Real | Weight | UThreshold | LThreshold | TunType),
        DelServer => svc || opt == Real,
        List => {
            svc || matches!(
                opt,
                Numeric
                    | Connection
                    | Timeout
                    | Daemon
                    | Stats
                    | Rate
                    | Thresholds
                    | PersistentConn
                    | NoSort
                    | SyncId
                    | Exact
            )
        }
        Save => opt == Numeric,
        Zero => svc,
        StartDaemon => matches!(
            opt,
            McastInterface | SyncId | McastGroup | McastPort | McastTtl | SyncMaxlen
        ),
        StopDaemon => opt == SyncId,
        _ => false,
    }
}

fn bad(place: &str, msg: impl Into<String>) -> ParseError {
    ParseError {
        place: place.to_string(),
        msg: msg.into(),
    }
}

/// ipvsadm's string_to_number: a whole decimal number in [min, max].
fn number(s: &str, min: i64, max: i64) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (min..=max).contains(&n).then_some(n)
}

fn assemble(seen: Vec<Seen>, positional: Vec<(String, String)>, origin: Origin) -> Result<Invocation, ParseError> {
    let mut cmd: Option<&Seen> = None;
    for s in &seen {
        if is_command(s.id) {
            if cmd.is_some() {
                return Err(bad(&s.place, "multiple commands specified"));
            }
            cmd = Some(s);
        }
    }
    let mut backend = None;
    let mut json = false;
    let Some(cmd) = cmd else {
        // Only our own options, or nothing: ipvsadm with no command lists the table.
        for s in &seen {
            match s.id {
                Id::Backend => backend = Some(parse_backend(s)?),
                Id::Json => json = true,
                _ => return Err(bad(&s.place, "no command given (-A, -a, -L, ... ; see -h)")),
            }
        }
        if let Some((_, p)) = positional.first() {
            return Err(bad(p, "unexpected argument"));
        }
        return Ok(Invocation {
            command: Command::List(ListWhat::All, Format::default()),
            backend,
            json,
        });
    };
    let c = cmd.id;
    // Each option at most once (the three forwarding switches and the four service
    // kinds count as one each, as in ipvsadm).
    for (k, s) in seen.iter().enumerate() {
        if is_command(s.id) || matches!(s.id, Id::Sort | Id::Ipv6 | Id::Backend | Id::Json) {
            continue;
        }
        if !allowed(c, s.id) {
            return Err(bad(
                &s.place,
                format!("illegal '{}' option with the '{}' command", optname(s.id), cmdname(c)),
            ));
        }
        if seen[..k]
            .iter()
            .any(|p| optname(p.id) == optname(s.id) && !is_command(p.id))
        {
            return Err(bad(&s.place, format!("multiple '{}' options specified", optname(s.id))));
        }
    }
    let get = |id: Id| seen.iter().find(|s| s.id == id);
    let value = |s: &Seen| s.value.clone().unwrap_or_default();

    for s in &seen {
        match s.id {
            Id::Backend => backend = Some(parse_backend(s)?),
            Id::Json => json = true,
            _ => {}
        }
    }

    // The service.
    let mut key: Option<ServiceKey> = None;
    let svc_opt = seen
        .iter()
        .find(|s| matches!(s.id, Id::Tcp | Id::Udp | Id::Sctp | Id::Fwmark));
    if let Some(s) = svc_opt {
        let v = value(s);
        key = Some(match s.id {
            Id::Fwmark => {
                // ipvsadm prints a mark with %d, so one above 2^31 comes out negative in
                // its -S: read that back as the same mark (ipvsadm itself refuses it).
                let mark = number(&v, 1, u32::MAX as i64)
                    .or_else(|| number(&v, i32::MIN as i64, -1).map(|n| n as i32 as u32 as i64))
                    .ok_or_else(|| bad(&s.place, format!("invalid fwmark value `{v}' specified")))?;
                let v6 = match get(Id::Ipv6) {
                    Some(six)
                        if seen.iter().position(|x| x.id == Id::Ipv6)
                            < seen.iter().position(|x| x.id == Id::Fwmark) =>
                    {
                        return Err(bad(&six.place, "-6 used before -f"))
                    }
                    Some(_) => true,
                    None => false,
                };
                ServiceKey::Fwmark { mark: mark as u32, v6 }
            }
            id => {
                let proto = match id {
                    Id::Tcp => Proto::Tcp,
                    Id::Udp => Proto::Udp,
                    _ => Proto::Sctp,
                };
                let (addr, port) = parse_addr_port(&v, proto).ok_or_else(|| {
                    bad(
                        &s.place,
                        format!("illegal virtual server address[:port] specified: `{v}'"),
                    )
                })?;
                ServiceKey::Addr {
                    proto,
                    addr,
                    port: port.unwrap_or(0),
                }
            }
        });
    }
    if let (Some(six), false) = (get(Id::Ipv6), matches!(key, Some(ServiceKey::Fwmark { .. }))) {
        return Err(bad(&six.place, "-6 used before -f"));
    }
    let needs_service = matches!(
        c,
        Id::AddService | Id::EditService | Id::DelService | Id::AddServer | Id::EditServer | Id::DelServer
    );
    if needs_service && key.is_none() {
        return Err(bad(
            &cmd.place,
            format!("'{}' needs a service: -t, -u, --sctp-service or -f", cmdname(c)),
        ));
    }
    if matches!(c, Id::AddServer | Id::EditServer | Id::DelServer) && get(Id::Real).is_none() {
        return Err(bad(&cmd.place, format!("'{}' needs a real server: -r", cmdname(c))));
    }

    let leftover = |n: usize| -> Result<(), ParseError> {
        match positional.get(n) {
            Some((t, p)) => Err(bad(p, format!("unexpected argument {t}"))),
            None => Ok(()),
        }
    };

    let command = match c {
        Id::Help => Command::Help,
        Id::Version => Command::Version,
        Id::Clear => Command::Change(Change::Flush),
        Id::Restore => {
            if let Origin::Line(..) = origin {
                return Err(bad(&cmd.place, "-R inside a restore file"));
            }
            Command::Restore
        }
        Id::Zero => Command::Change(Change::Zero(key)),
        Id::DelService => Command::Change(Change::DelService(key.expect("checked"))),
        Id::AddService | Id::EditService => {
            let key = key.expect("checked");
            let mut s = Service::new(key);
            if let Some(x) = get(Id::Scheduler) {
                let v = value(x);
                if v.is_empty() || v.len() > 15 {
                    return Err(bad(&x.place, format!("invalid scheduler `{v}'")));
                }
                s.scheduler = v;
            }
            if let Some(x) = get(Id::Persistent) {
                s.flags |= F_PERSISTENT;
                s.timeout = match &x.value {
                    // ipvsadm 1.31's IPVS_SVC_PERSISTENT_TIMEOUT.
                    None => 360,
                    Some(v) => number(v, 1, 86400 * 31)
                        .ok_or_else(|| bad(&x.place, format!("invalid timeout value `{v}' specified")))?
                        as u32,
                };
            }
            if let Some(x) = get(Id::Netmask) {
                let v = value(x);
                s.netmask = if key.is_v6() {
                    number(&v, 1, 128).ok_or_else(|| bad(&x.place, "illegal ipv6 netmask specified"))? as u32
                } else {
                    let m: Ipv4Addr = v
                        .parse()
                        .map_err(|_| bad(&x.place, "illegal virtual server persistent mask specified"))?;
                    u32::from_ne_bytes(m.octets())
                };
            }
            if get(Id::Ops).is_some() {
                s.flags |= F_ONEPACKET;
            }
            if let Some(x) = get(Id::Pe) {
                s.pe_name = value(x);
            }
            if let Some(x) = get(Id::SchedFlags) {
                s.flags |= parse_sched_flags(&s.scheduler, &value(x)).map_err(|m| bad(&x.place, m))?;
            }
            if matches!(key, ServiceKey::Addr { port: 0, .. }) && s.flags & F_PERSISTENT == 0 {
                return Err(bad(&cmd.place, "Zero port specified for non-persistent service"));
            }
            if s.flags & F_ONEPACKET != 0 && key.proto().is_some_and(|p| p != Proto::Udp) {
                return Err(bad(
                    &get(Id::Ops).expect("set").place,
                    "One-Packet Scheduling is only for UDP virtual services",
                ));
            }
            Command::Change(if c == Id::AddService {
                Change::AddService(s)
            } else {
                Change::EditService(s)
            })
        }
        Id::AddServer | Id::EditServer | Id::DelServer => {
            let key = key.expect("checked");
            let r = get(Id::Real).expect("checked");
            let v = value(r);
            let proto = key.proto().unwrap_or(Proto::Tcp);
            let (addr, port) = parse_addr_port(&v, proto)
                .ok_or_else(|| bad(&r.place, format!("illegal real server address[:port] specified: `{v}'")))?;
            let svc_port = match key {
                ServiceKey::Addr { port, .. } => port,
                ServiceKey::Fwmark { .. } => 0,
            };
            let mut d = Dest::new(addr, port.unwrap_or(svc_port));
            if let Some(f) = seen
                .iter()
                .find(|s| matches!(s.id, Id::Gatewaying | Id::Ipip | Id::Masquerading))
            {
                d.fwd = match f.id {
                    Id::Gatewaying => Fwd::Route,
                    Id::Ipip => Fwd::Tunnel,
                    _ => Fwd::Masq,
                };
            }
            if let Some(x) = get(Id::Weight) {
                let v = value(x);
                d.weight = number(&v, 0, WEIGHT_MAX as i64)
                    .ok_or_else(|| bad(&x.place, format!("illegal weight specified: `{v}' (0 to 65535)")))?
                    as u32;
            }
            if let Some(x) = get(Id::UThreshold) {
                let v = value(x);
                d.u_thresh = number(&v, 0, i32::MAX as i64)
                    .ok_or_else(|| bad(&x.place, format!("illegal u_threshold specified: `{v}'")))?
                    as u32;
            }
            if let Some(x) = get(Id::LThreshold) {
                let v = value(x);
                d.l_thresh = number(&v, 0, i32::MAX as i64)
                    .ok_or_else(|| bad(&x.place, format!("illegal l_threshold specified: `{v}'")))?
                    as u32;
            }
            if let Some(x) = get(Id::TunType) {
                if value(x) != "ipip" {
                    return Err(bad(
                        &x.place,
                        format!("tunnel type `{}' is not supported (ipip only)", value(x)),
                    ));
                }
                if d.fwd != Fwd::Tunnel {
                    return Err(bad(&x.place, "Tunnel options conflict with forward method"));
                }
            }
            // Direct routing and tunnels cannot change the port: the packet is not
            // rewritten (ipvsadm does the same, silently, for -a and -e; -d names the
            // real server as it is).
            if c != Id::DelServer && matches!(key, ServiceKey::Addr { .. }) && matches!(d.fwd, Fwd::Route | Fwd::Tunnel)
            {
                d.port = svc_port;
            }
            if c != Id::DelServer && d.addr.is_ipv6() != key.is_v6() && d.fwd != Fwd::Tunnel {
                return Err(bad(
                    &r.place,
                    "Different address family is allowed only for tunneling servers",
                ));
            }
            Command::Change(match c {
                Id::AddServer => Change::AddDest(key, d),
                Id::EditServer => Change::EditDest(key, d),
                _ => Change::DelDest(key, d.addr, d.port),
            })
        }
        Id::List => {
            let format = format_of(&seen);
            if (get(Id::Connection).is_some() || get(Id::Timeout).is_some() || get(Id::Daemon).is_some())
                && (format.stats || format.rate || format.thresholds)
                || ((get(Id::Timeout).is_some() || get(Id::Daemon).is_some()) && format.persistent_conn)
            {
                return Err(bad(&cmd.place, "options conflicts in the list command"));
            }
            let exclusive = [
                get(Id::Connection).is_some(),
                key.is_some(),
                get(Id::Timeout).is_some(),
                get(Id::Daemon).is_some(),
            ];
            if exclusive.iter().filter(|x| **x).count() > 1 {
                return Err(bad(&cmd.place, "options conflicts in the list command"));
            }
            let what = if get(Id::Connection).is_some() {
                ListWhat::Connections
            } else if let Some(k) = key {
                ListWhat::Service(k)
            } else if get(Id::Timeout).is_some() {
                ListWhat::Timeouts
            } else if get(Id::Daemon).is_some() {
                ListWhat::Daemons
            } else {
                ListWhat::All
            };
            Command::List(what, format)
        }
        Id::Save => Command::Save(format_of(&seen)),
        Id::Set => {
            if positional.len() < 3 {
                return Err(bad(&cmd.place, "--set option requires 3 timeout values"));
            }
            let t = |n: usize| -> Result<u32, ParseError> {
                let (v, p) = &positional[n];
                number(v, 0, 86400 * 31)
                    .map(|x| x as u32)
                    .ok_or_else(|| bad(p, format!("invalid timeout value `{v}' specified")))
            };
            let timeouts = Timeouts {
                tcp: t(0)?,
                tcp_fin: t(1)?,
                udp: t(2)?,
            };
            leftover(3)?;
            return Ok(Invocation {
                command: Command::SetTimeouts(timeouts),
                backend,
                json,
            });
        }
        Id::StartDaemon | Id::StopDaemon => {
            let v = value(cmd);
            let state = match v.as_str() {
                "master" => DAEMON_MASTER,
                "backup" => DAEMON_BACKUP,
                _ => {
                    return Err(bad(
                        &cmd.place,
                        format!("illegal daemon state `{v}' (master or backup)"),
                    ))
                }
            };
            let mut d = Daemon {
                state,
                ifname: "eth0".into(),
                syncid: 0,
                sync_maxlen: 0,
                mcast_group: None,
                mcast_port: 0,
                mcast_ttl: 0,
            };
            if let Some(x) = get(Id::SyncId) {
                let v = value(x);
                d.syncid = number(&v, 0, 255).ok_or_else(|| bad(&x.place, "illegal syncid specified"))? as u32;
            }
            if c == Id::StopDaemon {
                leftover(0)?;
                return Ok(Invocation {
                    command: Command::StopDaemon(state),
                    backend,
                    json,
                });
            }
            if let Some(x) = get(Id::McastInterface) {
                let v = value(x);
                if v.is_empty() || v.len() > 15 || v.contains('/') {
                    return Err(bad(&x.place, format!("illegal interface name `{v}'")));
                }
                d.ifname = v;
            }
            if let Some(x) = get(Id::McastGroup) {
                let v = value(x);
                let a: IpAddr = v
                    .parse()
                    .ok()
                    .filter(|a: &IpAddr| a.is_multicast())
                    .ok_or_else(|| bad(&x.place, format!("invalid mcast-group `{v}'")))?;
                d.mcast_group = Some(a);
            }
            if let Some(x) = get(Id::McastPort) {
                d.mcast_port =
                    number(&value(x), 1, 65535).ok_or_else(|| bad(&x.place, "illegal mcast-port specified"))? as u16;
            }
            if let Some(x) = get(Id::McastTtl) {
                d.mcast_ttl =
                    number(&value(x), 1, 255).ok_or_else(|| bad(&x.place, "illegal mcast-ttl specified"))? as u8;
            }
            if let Some(x) = get(Id::SyncMaxlen) {
                d.sync_maxlen = number(&value(x), 1, 65535 - 20 - 8)
                    .ok_or_else(|| bad(&x.place, "illegal sync-maxlen specified"))?
                    as u16;
            }
            Command::StartDaemon(d)
        }
        _ => unreachable!("every command is matched"),
    };
    leftover(0)?;
    Ok(Invocation { command, backend, json })
}

fn parse_backend(s: &Seen) -> Result<Kind, ParseError> {
    match s.value.as_deref() {
        Some("ipvs") => Ok(Kind::Ipvs),
        Some("nft") => Ok(Kind::Nft),
        v => Err(bad(
            &s.place,
            format!("unknown backend `{}' (ipvs or nft)", v.unwrap_or("")),
        )),
    }
}

fn format_of(seen: &[Seen]) -> Format {
    let has = |id| seen.iter().any(|s| s.id == id);
    Format {
        numeric: has(Id::Numeric),
        stats: has(Id::Stats),
        rate: has(Id::Rate),
        thresholds: has(Id::Thresholds),
        persistent_conn: has(Id::PersistentConn),
        nosort: has(Id::NoSort),
        exact: has(Id::Exact),
    }
}

fn cmdname(id: Id) -> &'static str {
    match id {
        Id::AddService => "add-service",
        Id::EditService => "edit-service",
        Id::DelService => "delete-service",
        Id::Clear => "flush",
        Id::List => "list",
        Id::AddServer => "add-server",
        Id::DelServer => "delete-server",
        Id::EditServer => "edit-server",
        Id::Set => "set",
        Id::StartDaemon => "start-daemon",
        Id::StopDaemon => "stop-daemon",
        Id::Restore => "restore",
        Id::Save => "save",
        Id::Zero => "zero",
        Id::Help => "help",
        Id::Version => "version",
        _ => "?",
    }
}

/// ipvsadm's sched flags for `sched`.
pub fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, String> {
    let mut flags = 0;
    for f in arg.split(',').filter(|f| !f.is_empty()) {
        let (bit, only) = match f {
            "flag-1" => (F_SCHED1, None),
            "flag-2" => (F_SCHED2, None),
            "flag-3" => (F_SCHED3, None),
            "sh-fallback" => (F_SCHED1, Some("sh")),
            "sh-port" => (F_SCHED2, Some("sh")),
            "mh-fallback" => (F_SCHED1, Some("mh")),
            "mh-port" => (F_SCHED2, Some("mh")),
            _ => return Err(format!("invalid scheduler flag `{f}'")),
        };
        if only.is_some_and(|s| s != sched) {
            return Err(format!("incompatible scheduler flag `{f}'"));
        }
        flags |= bit;
    }
    Ok(flags)
}

/// `addr[:port]`, `[v6addr]:port` or a bare IPv6 address; a port may be a service
/// name from /etc/services. Host names are not resolved: a director's table is made of
/// addresses, and a lookup that hangs on a dead resolver is the last thing a failover
/// needs.
pub fn parse_addr_port(s: &str, proto: Proto) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (a, p) = rest.split_once(']')?;
        let addr: std::net::Ipv6Addr = a.parse().ok()?;
        let port = p.strip_prefix(':')?;
        return Some((IpAddr::V6(addr), Some(port_of(port, proto)?)));
    }
    if let Ok(a) = s.parse::<std::net::Ipv6Addr>() {
        return Some((IpAddr::V6(a), None));
    }
    match s.rsplit_once(':') {
        Some((a, p)) => Some((IpAddr::V4(parse_v4(a)?), Some(port_of(p, proto)?))),
        None => Some((IpAddr::V4(parse_v4(s)?), None)),
    }
}

fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

fn port_of(p: &str, proto: Proto) -> Option<u16> {
    if let Some(n) = number(p, 0, 65535) {
        return Some(n as u16);
    }
    service_port(p, proto)
}

/// A port by name from /etc/services.
fn service_port(name: &str, proto: Proto) -> Option<u16> {
    let want = match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
    };
    let text = std::fs::read_to_string("/etc/services").ok()?;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let (Some(n), Some(pp)) = (f.next(), f.next()) else {
            continue;
        };
        let Some((port, pr)) = pp.split_once('/') else { continue };
        if pr == want && (n == name || f.any(|alias| alias == name)) {
            return port.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Invocation, ParseError> {
        let args: Vec<&str> = s.split_whitespace().collect();
        parse_args(&args)
    }

    fn change(s: &str) -> Change {
        match p(s).unwrap().command {
            Command::Change(c) => c,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn services_as_ipvsadm_reads_them() {
        let Change::AddService(s) = change("-A -t 10.0.0.1:80 -s rr -p") else {
            panic!()
        };
        assert_eq!(s.scheduler, "rr");
        assert_eq!(s.persistent(), Some(360));
        assert_eq!(s.netmask, 0xffff_ffff);
        let Change::AddService(s) = change("-A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port -p 60 -M 64") else {
            panic!()
        };
        assert!(s.key.is_v6());
        assert_eq!(s.flags, F_PERSISTENT | F_SCHED1 | F_SCHED2);
        assert_eq!((s.timeout, s.netmask), (60, 64));
        let Change::AddService(s) = change("-A -f 7 -6 -s wlc") else {
            panic!()
        };
        assert_eq!(s.key, ServiceKey::Fwmark { mark: 7, v6: true });
        let Change::AddService(s) = change("-A -t 10.0.0.1:80 -p 10 -M 255.255.255.0") else {
            panic!()
        };
        assert_eq!(s.netmask.to_ne_bytes(), [255, 255, 255, 0]);
        assert_eq!(s.scheduler, "wlc", "ipvsadm's default");
        // -p's timeout is optional: the next word is taken only if it is not an option.
        let Change::AddService(s) = change("-A -t 10.0.0.1:80 -p -s rr") else {
            panic!()
        };
        assert_eq!((s.timeout, s.scheduler.as_str()), (360, "rr"));
        let Change::AddService(s) = change("-A -t10.0.0.1:http -p600") else {
            panic!()
        };
        assert_eq!((s.key.sort_key().4, s.timeout), (80, 600));
    }

    #[test]
    fn real_servers_as_ipvsadm_reads_them() {
        let Change::AddDest(k, d) = change("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 3 -x 10 -y 5") else {
            panic!()
        };
        assert_eq!(k.sort_key().4, 80);
        assert_eq!(
            (d.port, d.fwd, d.weight, d.u_thresh, d.l_thresh),
            (8080, Fwd::Masq, 3, 10, 5)
        );
        // Direct routing keeps the service's port whatever is written.
        let Change::AddDest(_, d) = change("-a -t 10.0.0.1:80 -r 10.0.0.2:8080") else {
            panic!()
        };
        assert_eq!((d.port, d.fwd, d.weight), (80, Fwd::Route, 1));
        let Change::AddDest(_, d) = change("-a -t 10.0.0.1:80 -r 10.0.0.2 -m") else {
            panic!()
        };
        assert_eq!(d.port, 80);
        let Change::DelDest(_, a, port) = change("-d -t 10.0.0.1:80 -r 10.0.0.2") else {
            panic!()
        };
        assert_eq!((a.to_string(), port), ("10.0.0.2".into(), 80));
        // -d names the real server by its own port (a NAT one may differ).
        let Change::DelDest(_, _, port) = change("-d -t 10.0.0.1:80 -r 10.0.0.2:8080") else {
            panic!()
        };
        assert_eq!(port, 8080);
        let Change::AddDest(_, d) = change("-a -t [2001:db8::1]:80 -r [2001:db8::2]:80 -g -w 0") else {
            panic!()
        };
        assert_eq!(d.weight, 0);
    }

    #[test]
    fn listings() {
        assert_eq!(
            p("-Ln").unwrap().command,
            Command::List(
                ListWhat::All,
                Format {
                    numeric: true,
                    ..Format::default()
                }
            )
        );
        let i = p("--backend nft -L -n --stats --exact --json").unwrap();
        assert_eq!(i.backend, Some(Kind::Nft));
        assert!(i.json);
        assert!(matches!(i.command, Command::List(ListWhat::All, f) if f.stats && f.exact));
        assert!(matches!(
            p("-L -t 10.0.0.1:80").unwrap().command,
            Command::List(ListWhat::Service(_), _)
        ));
        assert!(matches!(
            p("-l --timeout").unwrap().command,
            Command::List(ListWhat::Timeouts, _)
        ));
        assert!(matches!(
            p("-L -c -n").unwrap().command,
            Command::List(ListWhat::Connections, _)
        ));
        assert!(matches!(p("-S -n").unwrap().command, Command::Save(f) if f.numeric));
        assert!(matches!(p("").unwrap().command, Command::List(ListWhat::All, _)));
        assert_eq!(
            p("--set 900 120 300").unwrap().command,
            Command::SetTimeouts(Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            })
        );
        assert!(matches!(
            p("--start-daemon master --mcast-interface eth1 --syncid 3")
                .unwrap()
                .command,
            Command::StartDaemon(Daemon {
                state: 1,
                syncid: 3,
                ..
            })
        ));
    }

    #[test]
    fn refusals_name_the_option() {
        for (line, place, what) in [
            ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000", "-w", "illegal weight"),
            (
                "-A -t 10.0.0.1:80 -w 2",
                "-w",
                "illegal 'weight' option with the 'add-service' command",
            ),
            ("-A -t 10.0.0.1:80 -A", "-A", "multiple commands"),
            ("-A -t 10.0.0.1:80 -s rr -s wrr", "-s", "multiple 'scheduler'"),
            (
                "-A -t 10.0.0.1 -s rr",
                "-A",
                "Zero port specified for non-persistent service",
            ),
            ("-A -t 300.0.0.1:80", "-t", "illegal virtual server"),
            ("-a -t 10.0.0.1:80 -r 2001:db8::2", "-r", "Different address family"),
            ("-A -t 10.0.0.1:80 -o", "-o", "only for UDP"),
            (
                "-A -t 10.0.0.1:80 -s rr -b sh-port",
                "-b",
                "incompatible scheduler flag",
            ),
            ("-A -t 10.0.0.1:80 -p 0", "-p", "invalid timeout"),
            ("-A -f 0", "-f", "invalid fwmark"),
            ("-A -6 -f 1", "-6", "-6 used before -f"),
            ("-a -t 10.0.0.1:80", "-a", "needs a real server"),
            ("-L -t 10.0.0.1:80 --timeout", "-L", "conflicts"),
            ("-L --stats -c", "-L", "conflicts"),
            ("-Q", "-Q", "unknown option"),
            ("--weight", "--weight", "needs a value"),
            ("-L extra", "extra", "unexpected argument"),
            ("--backend lvs -L", "--backend", "unknown backend"),
            ("--set 1 2", "--set", "3 timeout values"),
            ("-n", "-n", "no command"),
        ] {
            let e = p(line).expect_err(line);
            assert_eq!(e.place, place, "{line}: {e}");
            assert!(e.msg.contains(what), "{line}: {e}");
        }
    }

    #[test]
    fn restore_lines_name_line_and_column() {
        let w = split_line("ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2 -w x  # comment -w 5");
        let texts: Vec<&str> = w.iter().map(|w| w.text).collect();
        assert_eq!(texts, ["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "x"]);
        let e = parse(&w, Origin::Line("stdin", 3)).unwrap_err();
        assert_eq!(e.to_string(), "stdin:3:39: illegal weight specified: `x' (0 to 65535)");
        assert!(split_line("   # only a comment").is_empty());
        assert!(split_line("").is_empty());
        let e = parse(&split_line("-R"), Origin::Line("stdin", 1)).unwrap_err();
        assert!(e.msg.contains("inside a restore file"));
    }

    #[test]
    fn every_option_is_findable_and_unique() {
        for (i, a) in OPTIONS.iter().enumerate() {
            for b in &OPTIONS[i + 1..] {
                if a.short.is_some() {
                    assert_ne!(a.short, b.short, "{}", a.long);
                }
                if a.long == b.long {
                    assert_eq!(a.id, b.id, "{}", a.long);
                }
            }
        }
    }
}

/// A quick fuzz that runs with the tests (the cargo-fuzz target `lvs_parse` goes
/// further): random words from ipvsadm's vocabulary and random bytes, never a panic.
#[cfg(test)]
mod shake {
    use super::*;

    #[test]
    fn random_command_lines_never_panic() {
        const VOCAB: &[&str] = &[
            "-A",
            "-E",
            "-D",
            "-a",
            "-e",
            "-d",
            "-L",
            "-l",
            "-S",
            "-R",
            "-C",
            "-Z",
            "-n",
            "-t",
            "-u",
            "-f",
            "-6",
            "-s",
            "-p",
            "-M",
            "-r",
            "-g",
            "-m",
            "-i",
            "-w",
            "-x",
            "-y",
            "-c",
            "-o",
            "-b",
            "--set",
            "--stats",
            "--rate",
            "--thresholds",
            "--persistent-conn",
            "--exact",
            "--timeout",
            "--daemon",
            "--start-daemon",
            "--stop-daemon",
            "master",
            "backup",
            "--syncid",
            "--mcast-group",
            "--tun-type",
            "ipip",
            "--backend",
            "nft",
            "ipvs",
            "--json",
            "--pe",
            "sip",
            "10.0.0.1:80",
            "10.0.0.1",
            "[2001:db8::1]:80",
            "2001:db8::1",
            "[::]:0",
            "0",
            "1",
            "65535",
            "65536",
            "-1",
            "rr",
            "sh",
            "sh-port,sh-fallback",
            "255.255.255.0",
            "128",
            "=",
            "--weight=3",
            "-Ln",
            "-p300",
            "-w",
            "#",
            "x#y",
            "\u{0}",
            "é",
        ];
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..20_000 {
            let n = (next() % 9) as usize;
            let words: Vec<String> = (0..n)
                .map(|_| {
                    let r = next();
                    if r % 11 == 0 {
                        (0..(r % 7))
                            .map(|k| char::from(((r >> (k * 8)) & 0x7f) as u8))
                            .collect()
                    } else {
                        VOCAB[(r % VOCAB.len() as u64) as usize].to_string()
                    }
                })
                .collect();
            let _ = parse_args(&words);
            let line = words.join(" ");
            let _ = parse(&split_line(&line), Origin::Line("stdin", 1));
        }
    }
}
