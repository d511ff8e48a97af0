//! The cluster's configuration: one YAML file, each tool reading its own section and
//! the shared `cluster` section; every setting is also a flag, and flags win.
//!
//! This room holds what every tool shares: the file's shape (its sections), the one
//! loader, the one finder of a key's position, and [`Setting`], a value that remembers
//! where it came from (a flag, a key of the file, or the default) so that an error
//! names that place: `--keepalive: ...` or `hakit.yaml:4:3: ...`. Each tool resolves its
//! own settings, in one place in its room (`tools/<tool>/settings.rs`), from its flags
//! and its section; every error maps to exit status 2 and nothing is touched before the
//! settings are checked.

pub mod hacf;

use crate::base::exit::{ExitStatus, HasExitStatus};
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
/// hb-watch's replay floors, for the default table (another table's are beside it).
pub const DEFAULT_FLOORS: &str = "/var/lib/hakit/floors";
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
    pub fn at(src: &Source, pos: Option<(usize, usize)>, msg: impl Into<String>) -> Error {
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
    /// contrib/director.sh's, read by `lvs-ctl director`.
    #[serde(default)]
    pub director: Option<serde_yaml::Value>,
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
    /// Where an entry not from this file came from (haresources' line), for errors.
    #[serde(skip)]
    pub origin: Option<Origin>,
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
    pub fifo_group: Option<String>,
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
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub hook_timeout: Option<Duration>,
    pub hook_queue: Option<usize>,
    #[serde(default)]
    pub notify: Vec<String>,
    pub json: Option<bool>,
    pub realtime: Option<bool>,
    pub floors: Option<PathBuf>,
    #[serde(default)]
    pub ping: Vec<String>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub ping_interval: Option<Duration>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub ping_deadtime: Option<Duration>,
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
        self.position_in(section, |line| {
            let t = line.trim_start().trim_start_matches("- ");
            (t.starts_with(&format!("{key}:")) || t.starts_with(&format!("{key} :"))).then(|| line.len() - t.len())
        })
    }

    /// Line and column of `key:` in the `index`th entry (from 0) of the list `list:`
    /// inside `section:` — or of the entry itself with an empty `key` — so that an error
    /// about the third address points at the third address. Block lists (`- ` lines)
    /// only; otherwise (a flow list) the list's own line.
    pub fn locate_item(&self, section: &str, list: &str, index: usize, key: &str) -> Option<(usize, usize)> {
        let lines: Vec<&str> = self.text.lines().collect();
        let (list_line, _) = self.locate(section, list)?;
        let indent = |l: &str| l.len() - l.trim_start().len();
        let list_indent = indent(lines[list_line - 1]);
        let mut item = None;
        let mut seen = 0;
        // The entries' own indentation: a list nested inside an entry is not counted.
        let mut entry_indent = None;
        for (i, line) in lines.iter().enumerate().skip(list_line) {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if indent(line) < list_indent || (indent(line) == list_indent && !t.starts_with("- ")) {
                break;
            }
            if t.starts_with("- ") && *entry_indent.get_or_insert(indent(line)) == indent(line) {
                if seen == index {
                    if key.is_empty() {
                        return Some((i + 1, indent(line) + 1));
                    }
                    item = Some(indent(line));
                } else if item.is_some() {
                    break;
                }
                seen += 1;
            }
            if item.is_some() {
                let k = t.trim_start_matches("- ");
                if k.starts_with(&format!("{key}:")) || k.starts_with(&format!("{key} :")) {
                    return Some((i + 1, line.len() - k.len() + 1));
                }
                // A flow mapping on the entry's line: `- {name: n2, via: [...]}`.
                if let Some(at) = [
                    format!("{{{key}:"),
                    format!("{{ {key}:"),
                    format!(", {key}:"),
                    format!(",{key}:"),
                ]
                .iter()
                .find_map(|p| line.find(p.as_str()).map(|a| a + p.len() - key.len() - 1))
                {
                    return Some((i + 1, at + 1));
                }
            }
        }
        Some((list_line, list_indent + 1))
    }

    /// Line and column (from 1) of the first place inside `section:` where `find` finds
    /// something: `find` gets each line of the section (those after its top-level
    /// `section:` line, up to the next top-level line; every line for "") and returns
    /// the byte offset of what it looks for. Best effort, for error messages.
    pub fn position_in(&self, section: &str, find: impl Fn(&str) -> Option<usize>) -> Option<(usize, usize)> {
        let mut in_section = section.is_empty();
        for (i, line) in self.text.lines().enumerate() {
            let top = !line.is_empty() && !line.starts_with([' ', '\t', '#']);
            if top && !section.is_empty() {
                in_section = line.starts_with(&format!("{section}:"));
                continue;
            }
            if in_section {
                if let Some(at) = find(line) {
                    return Some((i + 1, at + 1));
                }
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

    /// Deserialize the file as `T`; an error names the file, line and column. Nesting
    /// deeper than [`MAX_DEPTH`] is refused before the parser sees it.
    pub fn yaml<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        if let Err((pos, limit)) = check_nesting(&self.text) {
            return Err(Error::at(self, Some(pos), format!("nesting deeper than {limit}")));
        }
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

/// How deep a configuration may nest (mappings, lists, flow collections). hakit's
/// deepest structure is five levels (mon-check's watches, services, alerts); 64 leaves
/// room for anything written by hand or generated, and stays under the deserializer's
/// own limit (128), which it only applies after the whole file is scanned: the YAML
/// scanner's cost grows with the square of the flow nesting (a 200 KB `[[[...]]]` took
/// half a minute), so the depth is checked here first, in one linear pass.
pub const MAX_DEPTH: usize = 64;

/// Brackets nested this deep, counted without regard to quotes or comments, are refused
/// too: whatever [`check_nesting`]'s reading of the YAML misses, the scanner's cost
/// stays bounded (4096² steps take milliseconds).
const MAX_RAW_BRACKETS: usize = 4096;

/// The first place where `text` nests deeper than [`MAX_DEPTH`] (or its raw brackets
/// deeper than [`MAX_RAW_BRACKETS`]), and that limit. The nesting is read as YAML does,
/// closely enough for a limit: block levels by indentation (and each `- ` of compact
/// lists), flow levels by `[`/`{` where a value starts or inside a flow collection;
/// quoted scalars, comments and block scalars (`|`, `>`) are skipped.
pub fn check_nesting(text: &str) -> Result<(), ((usize, usize), usize)> {
    #[derive(PartialEq)]
    enum Quote {
        No,
        Single,
        Double,
    }
    let mut quote = Quote::No;
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    let mut block_scalar: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let b = line.as_bytes();
        let indent = b.iter().take_while(|&&c| c == b' ').count();
        let blank = line.trim().is_empty();
        if let Some(parent) = block_scalar {
            if blank || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        let mut i = 0;
        let mut base = indents.len();
        // Where a node may start: a quote or a bracket there opens one.
        let mut node_start = true;
        if quote == Quote::No && flow == 0 {
            if blank || line.trim_start().starts_with('#') {
                continue;
            }
            while indents.last().is_some_and(|&t| t > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            base = indents.len();
            i = indent;
            if line.starts_with("---") || line.starts_with("...") {
                i = 3;
            }
            // `- - - x`: each entry indicator opens a list.
            while i < b.len()
                && (b[i] == b'-' || b[i] == b'?')
                && b.get(i + 1).is_none_or(|c| *c == b' ' || *c == b'\t')
            {
                base += 1;
                i += 1;
                while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                    i += 1;
                }
            }
            if base > MAX_DEPTH {
                return Err(((n + 1, indent + 1), MAX_DEPTH));
            }
        }
        let mut prev_space = true;
        while i < b.len() {
            let c = b[i];
            match quote {
                Quote::Single => {
                    if c == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            quote = Quote::No;
                            node_start = false;
                        }
                    }
                }
                Quote::Double => {
                    if c == b'\\' {
                        i += 1;
                    } else if c == b'"' {
                        quote = Quote::No;
                        node_start = false;
                    }
                }
                Quote::No => match c {
                    b' ' | b'\t' => {}
                    b'#' if prev_space => break,
                    b'\'' if node_start => quote = Quote::Single,
                    b'"' if node_start => quote = Quote::Double,
                    b'[' | b'{' if flow > 0 || node_start => {
                        flow += 1;
                        if base + flow > MAX_DEPTH {
                            return Err(((n + 1, i + 1), MAX_DEPTH));
                        }
                        node_start = true;
                    }
                    b']' | b'}' if flow > 0 => {
                        flow -= 1;
                        node_start = false;
                    }
                    b',' if flow > 0 => node_start = true,
                    b':' | b'-' | b'?' if b.get(i + 1).is_none_or(|c| *c == b' ' || *c == b'\t') => node_start = true,
                    b'|' | b'>' if flow == 0 && node_start => {
                        block_scalar = Some(indent);
                        break;
                    }
                    // An anchor or a tag comes before the node it names.
                    b'&' | b'!' if node_start => {
                        while i + 1 < b.len() && b[i + 1] != b' ' && b[i + 1] != b'\t' {
                            i += 1;
                        }
                    }
                    _ => node_start = false,
                },
            }
            prev_space = c == b' ' || c == b'\t';
            i += 1;
        }
    }
    // The reading above is YAML's only closely enough: a file it misreads must not
    // cost more than this either.
    let mut raw = 0usize;
    for (n, line) in text.lines().enumerate() {
        for (i, b) in line.bytes().enumerate() {
            match b {
                b'[' | b'{' => {
                    raw += 1;
                    if raw > MAX_RAW_BRACKETS {
                        return Err(((n + 1, i + 1), MAX_RAW_BRACKETS));
                    }
                }
                b']' | b'}' => raw = raw.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

pub fn parse(src: &Source) -> Result<File, Error> {
    if src.text.trim().is_empty() {
        return Ok(File::default());
    }
    src.yaml::<File>()
}

/// Load the file named by --config, or the default one when it exists.
pub fn load_for(arg: &Option<PathBuf>) -> Result<(File, Option<Source>), Error> {
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

    /// A channel made from its parts (ha.cf's lines), checked as a flag's is.
    pub fn new(name: String, dev: &str, mode: Mode) -> Result<ChannelSpec, String> {
        let spec = ChannelSpec {
            name,
            dev: dev.into(),
            mode,
        };
        spec.check()?;
        Ok(spec)
    }

    pub fn from_entry(e: &ChannelEntry) -> Result<ChannelSpec, String> {
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
        if !crate::net::addr::valid_ifname(&self.dev) {
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

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, named as typed (`--keepalive`).
    Flag(&'static str),
    /// A key of the configuration file's section.
    File { section: &'static str, key: &'static str },
    /// A key of one entry of a list in the section (`key` empty: the entry).
    Item {
        section: &'static str,
        list: &'static str,
        index: usize,
        key: &'static str,
    },
    /// A word of another file (Heartbeat's ha.cf): its line and column.
    At { file: PathBuf, line: usize, col: usize },
    /// Nobody set it.
    Default,
}

/// A value with the place it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub from: Origin,
}

/// Picks each setting of one tool from its flags, then its section of the file, then
/// the default, and turns a complaint about a setting into an error at its origin.
pub struct Resolver<'a> {
    src: Option<&'a Source>,
    section: &'static str,
}

impl<'a> Resolver<'a> {
    pub fn new(src: Option<&'a Source>, section: &'static str) -> Resolver<'a> {
        Resolver { src, section }
    }

    /// The flag's value if given, else the file's, else the default.
    pub fn pick<T>(
        &self,
        flag: &'static str,
        from_flag: Option<T>,
        key: &'static str,
        from_file: Option<T>,
        default: impl FnOnce() -> T,
    ) -> Setting<T> {
        match (from_flag, from_file) {
            (Some(value), _) => Setting {
                value,
                from: Origin::Flag(flag),
            },
            (None, Some(value)) => Setting {
                value,
                from: self.file_origin(key),
            },
            (None, None) => Setting {
                value: default(),
                from: Origin::Default,
            },
        }
    }

    /// Like [`Resolver::pick`], with a second file that may give the value too
    /// (`also`: Heartbeat's ha.cf, with the place it says it). The flag still wins; the
    /// YAML key and the other file both giving it is an error at the key, naming the
    /// other place, so that no value is silently overruled.
    #[allow(clippy::too_many_arguments)]
    pub fn pick_also<T>(
        &self,
        flag: &'static str,
        from_flag: Option<T>,
        key: &'static str,
        from_file: Option<T>,
        also: Option<(T, Origin)>,
        default: impl FnOnce() -> T,
    ) -> Result<Setting<T>, Error> {
        if let (Some(_), Some((_, at))) = (&from_file, &also) {
            let place = match at {
                Origin::At { file, line, col } => format!("{}:{line}:{col}", file.display()),
                _ => "--ha-cf".into(),
            };
            return Err(self.error(
                &self.file_origin(key),
                format!("`{key}` is also given by {place}; give it in one place"),
            ));
        }
        Ok(match (from_flag, from_file, also) {
            (None, None, Some((value, from))) => Setting { value, from },
            (from_flag, from_file, _) => self.pick(flag, from_flag, key, from_file, default),
        })
    }

    /// The origin of a value read from this tool's section of the file (or the flag
    /// when there is no file).
    pub fn file_origin(&self, key: &'static str) -> Origin {
        Origin::File {
            section: self.section,
            key,
        }
    }

    /// The origin of a key of the `index`th entry of the section's list `list`.
    pub fn item_origin(&self, list: &'static str, index: usize, key: &'static str) -> Origin {
        Origin::Item {
            section: self.section,
            list,
            index,
            key,
        }
    }

    /// An error about a value from `from`.
    pub fn error(&self, from: &Origin, msg: impl Into<String>) -> Error {
        let msg = msg.into();
        match (from, self.src) {
            (Origin::Flag(f), _) => Error::new(format!("{f}: {msg}")),
            (Origin::At { file, line, col }, _) => Error {
                file: Some(file.clone()),
                pos: Some((*line, *col)),
                msg,
            },
            (Origin::File { section, key }, Some(s)) => Error::at(s, s.locate(section, key), msg),
            (
                Origin::Item {
                    section,
                    list,
                    index,
                    key,
                },
                Some(s),
            ) => Error::at(s, s.locate_item(section, list, *index, key), msg),
            _ => Error::new(msg),
        }
    }

    /// An error about a relation between settings: blamed on the first of them that
    /// someone set (a default is nobody's mistake).
    pub fn error_among(&self, among: &[&Origin], msg: impl Into<String>) -> Error {
        let from = among
            .iter()
            .find(|o| ***o != Origin::Default)
            .copied()
            .cloned()
            .unwrap_or(Origin::Default);
        self.error(&from, msg)
    }
}

/// The node name `uname -n` gives, the default node name.
pub fn uname_node() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// For the tools' settings tests: `TOOL --channel bcast:eth0 --node n1`, then
/// `--config DIR/h.yaml` holding `file` if there is one, then `flags`.
#[cfg(test)]
pub fn test_argv(dir: &Path, tool: &str, file: Option<&str>, flags: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = [tool, "--channel", "bcast:eth0", "--node", "n1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(text) = file {
        let path = dir.join("h.yaml");
        std::fs::write(&path, text).unwrap();
        argv.extend(["--config".into(), path.display().to_string()]);
    }
    argv.extend(flags.iter().map(|s| s.to_string()));
    argv
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
    fn deep_nesting_is_refused_before_parsing() {
        let deep = |open: &str, close: &str, n: usize| format!("a: {}1{}\n", open.repeat(n), close.repeat(n));
        // 1 (the mapping) + 63 = 64: fine; one more is not.
        assert_eq!(check_nesting(&deep("[", "]", 63)), Ok(()));
        assert_eq!(check_nesting(&deep("[", "]", 64)), Err(((1, 67), 64)));
        assert_eq!(check_nesting(&deep("{b: ", "}", 64)).unwrap_err().1, 64);
        // Across lines, after an anchor, in a list entry.
        let t = format!("x:\n  - &a\n    {}\n", "[\n".repeat(70));
        assert_eq!(check_nesting(&t).unwrap_err().0 .0, 3 + 61);
        // Block nesting by indentation and compact lists.
        let mut t = String::new();
        for i in 0..70 {
            t += &format!("{}k{i}:\n", " ".repeat(i));
        }
        assert_eq!(check_nesting(&t).unwrap_err().0, (65, 65));
        assert!(check_nesting(&format!("{}x\n", "- ".repeat(70))).is_err());
        // Brackets in quotes, comments, block scalars and plain scalars are text.
        let text = format!(
            "a: '{o}'\nb: \"{o}\\\"{o}\"\n# {o}\nc: |\n  {o}\n  {o}\nd: echo {o}\ne: [x, '{o}', {{k: \"{o}\"}}]\nf: it's {o}\n",
            o = "[".repeat(100)
        );
        assert_eq!(check_nesting(&text), Ok(()), "{text}");
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(v["c"].as_str().unwrap().len(), 202);
        // A file of real shape passes, and its error still comes from the parser.
        let e = src("cluster:\n  channels:\n    - {dev: eth0, mode: bcast, peers: [10.0.0.1]}\n  nodez: 1\n")
            .yaml::<File>()
            .unwrap_err();
        assert!(e.msg.contains("nodez"), "{e}");
        // Brackets nested past any reading of YAML: refused on their count alone.
        let t = format!("a: '{}'\n", "[".repeat(5000));
        assert_eq!(check_nesting(&t), Err(((1, 4101), 4096)));
        let e = src(&deep("[", "]", 100)).yaml::<File>().unwrap_err();
        assert_eq!(e.to_string(), "hakit.yaml:1:67: nesting deeper than 64");
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
        let channels: Vec<_> = f
            .cluster
            .channels
            .iter()
            .map(|c| ChannelSpec::from_entry(c).unwrap())
            .collect();
        assert_eq!(channels.len(), 3);
        assert_eq!(
            channels[1].mode,
            Mode::Mcast {
                group: "225.0.0.1".parse().unwrap(),
                ttl: 1
            }
        );
    }

    #[test]
    fn locate_item_finds_the_entry() {
        let s = src("ipfake:\n  addresses:\n    - addr: 10.0.0.1/24\n      dev: eth0\n    # a comment\n    - addr: 10.0.0.2/24\n      routers: [x]\n      dev: eth1\ncluster:\n  node: a\n");
        assert_eq!(s.locate_item("ipfake", "addresses", 1, "routers"), Some((7, 7)));
        assert_eq!(s.locate_item("ipfake", "addresses", 1, "addr"), Some((6, 7)));
        assert_eq!(s.locate_item("ipfake", "addresses", 0, "dev"), Some((4, 7)));
        assert_eq!(s.locate_item("ipfake", "addresses", 1, ""), Some((6, 5)));
        // No such key in that entry: the list.
        assert_eq!(s.locate_item("ipfake", "addresses", 0, "routers"), Some((2, 3)));
        let flow = src("cluster:\n  channels: [{dev: eth0, mode: bcast}]\n");
        assert_eq!(flow.locate_item("cluster", "channels", 0, "dev"), Some((2, 3)));
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
