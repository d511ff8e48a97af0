//! ipfake's settings: for `up`, the flags, then the configuration's entry for the
//! address, then the defaults; the pid directory for every command.

use crate::config::{self, Error as ConfigError, IpfakeSection, Resolver, Source};
use crate::tools::ipfake::cli::{IpfakeArgs, MirrorArgs, MirrorMode, MirrorNodeArgs, UpArgs};
use crate::tools::ipfake::mirror::Error as MirrorError;
use crate::tools::ipfake::takeover::Error;
use pnet_base::MacAddr;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// The pid directory: `--pid-dir`, then `ipfake.pid-dir`, then /run/hakit; refused
/// (naming where it came from) if something other than a directory is there. A
/// missing one is made when a pid file is first written.
pub fn pid_dir(args: &IpfakeArgs, section: &IpfakeSection, src: Option<&Source>) -> Result<PathBuf, ConfigError> {
    let r = Resolver::new(src, "ipfake");
    let s = r.pick(
        "--pid-dir",
        args.pid_dir.clone(),
        "pid-dir",
        section.pid_dir.clone(),
        || "/run/hakit".into(),
    );
    check_dir(&s.value).map_err(|m| match s.from {
        config::Origin::Flag(f) => ConfigError::new(format!("{f} {}: {m}", s.value.display())),
        _ => r.error(&s.from, format!("pid-dir {}: {m}", s.value.display())),
    })?;
    Ok(s.value)
}

/// A directory, or nothing yet (it is made when needed).
pub fn check_dir(p: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err("is not a directory".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            Err("is not a directory (a part of the path is a file)".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The longest label the kernel takes (IFNAMSIZ - 1; longer ones it refuses with
/// ERANGE, "Numerical result out of range").
pub const LABEL_MAX: usize = 15;

/// An IPv4 label for an address on `dev`: at most [`LABEL_MAX`] characters, and `dev`
/// itself or `dev:...`. The kernel takes any label, but ip(8) refuses one that does not
/// start with the device's name, and ifconfig and `ip addr show label` take the part
/// before the colon for the device: a label naming another shows the address there.
pub fn check_label(label: &str, dev: &str) -> Result<(), String> {
    if label.len() > LABEL_MAX {
        return Err(format!(
            "`{label}` is {} characters; a label has at most {LABEL_MAX} characters (IFNAMSIZ-1)",
            label.len()
        ));
    }
    if label != dev && !label.strip_prefix(dev).is_some_and(|r| r.starts_with(':')) {
        return Err(format!(
            "`{label}` must be `{dev}` or start with `{dev}:` (the device's name)"
        ));
    }
    Ok(())
}

/// The `ipfake` section of the configuration named (or the default one when it
/// exists), with the file's text for error positions, and the addresses of
/// `--haresources` added after its own entries.
pub fn section(
    config: &Option<PathBuf>,
    haresources: Option<&std::path::Path>,
) -> Result<(IpfakeSection, Option<Source>), ConfigError> {
    let (f, src) = config::load_for(config)?;
    let mut section = f.ipfake;
    if let Some(p) = haresources {
        add_haresources(&mut section, src.as_ref(), &config::hacf::load_haresources(p)?)?;
    }
    Ok((section, src))
}

/// haresources' addresses as entries (checked by its parser, so an error in one can
/// only be about the command line); what is not an address is named and skipped.
fn add_haresources(
    section: &mut IpfakeSection,
    src: Option<&Source>,
    h: &config::hacf::HaResources,
) -> Result<(), ConfigError> {
    let at = |line, col| format!("{}:{line}:{col}", h.path.display());
    for s in &h.skipped {
        crate::base::log::warn(&format!("{}: `{}` skipped: {}", at(s.line, s.col), s.what, s.why));
    }
    let r = Resolver::new(src, "ipfake");
    let own = section.addresses.len();
    for a in &h.addresses {
        let bare = a.addr.to_string();
        if let Some(i) = section.addresses[..own]
            .iter()
            .position(|e| e.addr.split('/').next() == Some(bare.as_str()))
        {
            let e = r.error(&r.item_origin("addresses", i, "addr"), "");
            return Err(ConfigError {
                file: Some(h.path.clone()),
                pos: Some((a.line, a.col)),
                msg: format!(
                    "{bare} is also an ipfake.addresses entry ({}); describe it in one place",
                    e.to_string().trim_end_matches(": ")
                ),
            });
        }
        // Without a prefix there is nothing to add the address with; without an
        // interface, `ipfake up ... dev IFACE` gives it.
        let Some(prefix) = a.prefix else {
            crate::base::log::info(&format!(
                "{}: {bare} has no prefix length (Heartbeat finds it from the routes): give it to ipfake up ({bare}/PREFIX dev IFACE)",
                at(a.line, a.col)
            ));
            continue;
        };
        section.addresses.push(config::AddressEntry {
            addr: format!("{bare}/{prefix}"),
            dev: a.dev.clone().unwrap_or_default(),
            label: a.label.clone(),
            count: None,
            interval: None,
            refresh: None,
            routers: Vec::new(),
            probe: None,
            origin: Some(config::Origin::At {
                file: h.path.clone(),
                line: a.line,
                col: a.col,
            }),
        });
    }
    Ok(())
}

/// A takeover with every setting decided: flags, then the configuration's entry for
/// the address, then the defaults.
#[derive(Debug, Clone)]
pub struct Takeover {
    pub addr: (IpAddr, u8),
    pub iface: String,
    pub label: Option<String>,
    pub count: u32,
    pub interval: Duration,
    pub refresh: Duration,
    pub routers: Vec<MacAddr>,
    pub probe: bool,
    pub force: bool,
    pub once: bool,
    pub armed: bool,
    /// `--mirror`: made the active one of `ipfake mirror` before the address is added.
    pub mirror: Option<MirrorOrder>,
}

impl Takeover {
    pub fn resolve(a: &UpArgs, section: &IpfakeSection, src: Option<&Source>) -> Result<Takeover, Error> {
        let usage = |m: String| Error::Usage(m);
        let r = Resolver::new(src, "ipfake");
        let bare = a.addr.split('/').next().unwrap_or("");
        let ip: IpAddr = bare
            .parse()
            .map_err(|_| usage(format!("`{bare}` is not an IP address")))?;
        let index = section
            .addresses
            .iter()
            .position(|e| e.addr.split('/').next() == Some(bare));
        let entry = index.map(|i| &section.addresses[i]);
        // An error in the entry points at that entry's key, not the first entry's.
        // An entry from haresources: at its word there.
        let cfg_err = |key: &'static str, m: String| {
            let from = match entry.and_then(|e| e.origin.clone()) {
                Some(o) => o,
                None => r.item_origin("addresses", index.unwrap_or(0), key),
            };
            Error::Usage(r.error(&from, m).to_string())
        };
        let prefixed = if a.addr.contains('/') {
            a.addr.clone()
        } else if let Some(e) = entry {
            e.addr.clone()
        } else {
            return Err(usage(format!(
                "`{}` has no prefix length (write 192.0.2.10/24) and no ipfake.addresses entry",
                a.addr
            )));
        };
        let (addr, prefix) = crate::tools::ipfake::cli::parse_prefixed(&prefixed).map_err(|m| {
            if a.addr.contains('/') {
                usage(m)
            } else {
                cfg_err("addr", m)
            }
        })?;
        if addr != ip {
            return Err(usage(format!("{addr} does not match {ip}")));
        }
        crate::net::addr::check_unicast(addr, Some(prefix)).map_err(|m| {
            if a.addr.contains('/') {
                usage(format!("ADDR `{prefixed}`: {m}"))
            } else {
                cfg_err("addr", m)
            }
        })?;
        let iface = match (&a.iface, entry) {
            (Some(i), _) => i.clone(),
            (None, Some(e)) if !e.dev.is_empty() => e.dev.clone(),
            (None, Some(_)) => return Err(cfg_err("dev", format!("{ip} names no interface: give `dev IFACE`"))),
            (None, None) => {
                return Err(usage(format!(
                    "no interface for {ip}: give `dev IFACE` or an ipfake.addresses entry"
                )))
            }
        };
        let mut routers = a.routers.clone();
        if routers.is_empty() {
            if let Some(e) = entry {
                for r in &e.routers {
                    routers.push(crate::net::arp::parse_mac(r).map_err(|m| cfg_err("routers", m))?);
                }
            }
        }
        let label = match (&a.label, entry.and_then(|e| e.label.as_ref())) {
            (Some(l), _) => {
                check_label(l, &iface).map_err(|m| usage(format!("--label: {m}")))?;
                Some(l.clone())
            }
            (None, Some(l)) => {
                check_label(l, &iface).map_err(|m| cfg_err("label", m))?;
                Some(l.clone())
            }
            (None, None) => None,
        };
        let mirror = up_mirror(a, addr, &iface).map_err(|e| usage(e.to_string()))?;
        Ok(Takeover {
            addr: (addr, prefix),
            iface,
            label,
            count: a.count.or_else(|| entry.and_then(|e| e.count)).unwrap_or(5),
            interval: a
                .interval
                .or_else(|| entry.and_then(|e| e.interval))
                .unwrap_or(Duration::from_millis(200)),
            refresh: a
                .refresh
                .or_else(|| entry.and_then(|e| e.refresh))
                .unwrap_or(Duration::from_secs(10)),
            routers,
            probe: a.probe || entry.and_then(|e| e.probe).unwrap_or(false),
            force: a.force,
            once: a.once,
            armed: a.armed,
            mirror,
        })
    }
}

/// What `ipfake mirror` is to do, every flag checked, before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorOrder {
    Active { node: MirrorNode, ports: Vec<u16> },
    Standby { node: MirrorNode, ports: Vec<u16> },
    Off(Option<Ipv4Addr>),
    Status(Option<Ipv4Addr>),
}

/// An address's mirroring on this node: its device and the peers copies go to (none:
/// keep the node's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorNode {
    pub vip: Ipv4Addr,
    pub dev: String,
    pub peers: Vec<Ipv4Addr>,
}

/// At most this many peers (the table's comment, which names them, has 128 bytes).
pub const MIRROR_PEERS_MAX: usize = 4;

/// Why TCP cannot be mirrored, for the refusal.
pub const TCP_REFUSED: &str = "TCP cannot be mirrored: two TCP stacks cannot share one connection (the standby's stack chose other sequence numbers than the master's, so it would answer the client's segments with resets); mirror UDP services only";

impl MirrorOrder {
    pub fn resolve(a: &MirrorArgs) -> Result<MirrorOrder, MirrorError> {
        Ok(match &a.mode {
            MirrorMode::Active(m) => MirrorOrder::Active {
                node: mirror_node(&m.node, "--peer")?,
                ports: ports("--service", &m.services)?,
            },
            MirrorMode::Standby(m) => MirrorOrder::Standby {
                node: mirror_node(&m.node, "--peer")?,
                ports: ports("--service", &m.services)?,
            },
            MirrorMode::Off(m) => MirrorOrder::Off(m.vip.as_deref().map(|v| vip("--vip", v)).transpose()?),
            MirrorMode::Status(m) => MirrorOrder::Status(m.vip.as_deref().map(|v| vip("ADDR", v)).transpose()?),
        })
    }
}

fn vip(flag: &str, s: &str) -> Result<Ipv4Addr, MirrorError> {
    let usage = |m: String| MirrorError::Usage(format!("{flag} `{s}`: {m}"));
    let ip: IpAddr = s.parse().map_err(|_| usage("not an IP address".into()))?;
    crate::net::addr::check_unicast(ip, None).map_err(usage)?;
    match ip {
        IpAddr::V4(v4) => Ok(v4),
        IpAddr::V6(_) => Err(usage(
            "IPv6 is not mirrored (the standby would have to keep quiet in neighbour discovery for it); IPv4 only"
                .into(),
        )),
    }
}

/// `ipfake up --mirror`: the active mode for the address taken, on its interface.
fn up_mirror(a: &UpArgs, vip: IpAddr, dev: &str) -> Result<Option<MirrorOrder>, MirrorError> {
    if a.mirror.is_empty() {
        return Ok(None);
    }
    let node = MirrorNodeArgs {
        vip: vip.to_string(),
        peers: a.mirror_peer.clone(),
        dev: dev.to_string(),
        check: false,
    };
    Ok(Some(MirrorOrder::Active {
        node: mirror_node(&node, "--mirror-peer")?,
        ports: ports("--mirror", &a.mirror)?,
    }))
}

fn mirror_node(a: &MirrorNodeArgs, peer_flag: &str) -> Result<MirrorNode, MirrorError> {
    let (vip, dev) = (self::vip("--vip", &a.vip)?, a.dev.as_str());
    let mut ps = Vec::new();
    for p in &a.peers {
        let a = self::vip(peer_flag, p)?;
        if a == vip {
            return Err(MirrorError::Usage(format!(
                "{peer_flag} `{p}` is the mirrored address itself"
            )));
        }
        if !ps.contains(&a) {
            ps.push(a);
        }
    }
    if ps.len() > MIRROR_PEERS_MAX {
        return Err(MirrorError::Usage(format!(
            "{peer_flag}: {} peers; at most {MIRROR_PEERS_MAX}",
            ps.len()
        )));
    }
    // nft quotes the name; one it cannot quote (or no such interface) is refused here.
    if dev.is_empty() || dev.contains(['"', '\\']) || dev.chars().any(|c| c.is_control()) {
        return Err(MirrorError::Usage(format!(
            "--dev `{dev}`: not an interface name nft can quote"
        )));
    }
    nix::net::if_::if_nametoindex(dev).map_err(|_| MirrorError::Usage(format!("--dev `{dev}`: no such interface")))?;
    Ok(MirrorNode {
        vip,
        dev: dev.to_string(),
        peers: ps,
    })
}

fn ports(flag: &str, services: &[String]) -> Result<Vec<u16>, MirrorError> {
    let mut ports = Vec::new();
    for s in services {
        let p = service_port(flag, s)?;
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    Ok(ports)
}

/// `udp/PORT` → PORT; TCP refused with the reason.
fn service_port(flag: &str, s: &str) -> Result<u16, MirrorError> {
    let usage = |m: &str| MirrorError::Usage(format!("{flag} `{s}`: {m}"));
    let (proto, port) = s.split_once('/').ok_or_else(|| usage("write udp/PORT"))?;
    match proto.to_ascii_lowercase().as_str() {
        "udp" => {}
        "tcp" => return Err(usage(TCP_REFUSED)),
        _ => return Err(usage("only udp/PORT is mirrored")),
    }
    port.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| usage("the port is 1 to 65535"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ipfake::cli::Command;
    use clap::Parser;

    #[test]
    fn labels_and_pid_dirs() {
        assert_eq!(check_label("eth0", "eth0"), Ok(()));
        assert_eq!(check_label("eth0:vip", "eth0"), Ok(()));
        assert_eq!(check_label("eth0:abcdefghij", "eth0"), Ok(()));
        assert!(check_label("eth0:abcdefghijk", "eth0")
            .unwrap_err()
            .contains("15 characters"));
        assert!(check_label("eth01", "eth0").unwrap_err().contains("start with `eth0:`"));
        assert!(check_label("vip", "eth0").is_err());
        let d = tempfile::tempdir().unwrap();
        assert_eq!(check_dir(d.path()), Ok(()));
        assert_eq!(check_dir(&d.path().join("not-yet")), Ok(()));
        let f = d.path().join("f");
        std::fs::write(&f, "").unwrap();
        assert_eq!(check_dir(&f), Err("is not a directory".into()));
        assert!(check_dir(&f.join("x")).unwrap_err().starts_with("is not a directory"));
        let src = Source {
            path: "h.yaml".into(),
            text: format!("ipfake:\n  pid-dir: {}\n", f.display()),
        };
        let section = config::parse(&src).unwrap().ipfake;
        let args = IpfakeArgs::try_parse_from(["ipfake", "status"]).unwrap();
        let e = pid_dir(&args, &section, Some(&src)).unwrap_err().to_string();
        assert!(
            e.starts_with("h.yaml:2:3: pid-dir ") && e.ends_with("is not a directory"),
            "{e}"
        );
    }

    fn mirror(args: &[&str]) -> Result<MirrorOrder, String> {
        let a = IpfakeArgs::try_parse_from(["ipfake", "mirror"].iter().chain(args)).unwrap();
        let Command::Mirror(m) = &a.command else { panic!() };
        MirrorOrder::resolve(m).map_err(|e| e.to_string())
    }

    #[test]
    fn mirror_settings_are_checked_before_anything() {
        let ok = mirror(&[
            "standby",
            "--vip",
            "10.0.0.100",
            "--dev",
            "lo",
            "--peer",
            "10.0.0.1,10.0.0.2",
            "--peer",
            "10.0.0.1",
            "--service",
            "udp/53,udp/5300",
            "--service",
            "UDP/53",
        ])
        .unwrap();
        assert_eq!(
            ok,
            MirrorOrder::Standby {
                node: MirrorNode {
                    vip: "10.0.0.100".parse().unwrap(),
                    dev: "lo".into(),
                    peers: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
                },
                ports: vec![53, 5300],
            }
        );
        let base = ["active", "--vip", "10.0.0.100", "--dev", "lo"];
        let bad = |more: &[&str]| mirror(&[&base[..], more].concat()).unwrap_err();
        assert!(bad(&["--service", "tcp/53"])
            .starts_with("--service `tcp/53`: TCP cannot be mirrored: two TCP stacks cannot share one connection"));
        assert_eq!(
            bad(&["--service", "udp/0"]),
            "--service `udp/0`: the port is 1 to 65535"
        );
        assert_eq!(bad(&["--service", "53"]), "--service `53`: write udp/PORT");
        assert_eq!(
            bad(&["--service", "sctp/53"]),
            "--service `sctp/53`: only udp/PORT is mirrored"
        );
        assert_eq!(
            bad(&[
                "--service",
                "udp/53",
                "--peer",
                "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5"
            ]),
            "--peer: 5 peers; at most 4"
        );
        assert_eq!(
            bad(&["--service", "udp/53", "--peer", "224.0.0.1"]).split(':').next(),
            Some("--peer `224.0.0.1`")
        );
        let e = mirror(&[
            "active",
            "--vip",
            "10.0.0.100",
            "--dev",
            "no\"such",
            "--service",
            "udp/53",
        ])
        .unwrap_err();
        assert_eq!(e, "--dev `no\"such`: not an interface name nft can quote");
        let e = mirror(&["off", "--vip", "fe80::1"]).unwrap_err();
        assert!(e.starts_with("--vip `fe80::1`: IPv6 is not mirrored"), "{e}");
        assert_eq!(mirror(&["status"]).unwrap(), MirrorOrder::Status(None));
    }

    #[test]
    fn haresources_addresses_are_entries() {
        let d = tempfile::tempdir().unwrap();
        let (yaml, hr) = (d.path().join("h.yaml"), d.path().join("haresources"));
        std::fs::write(
            &yaml,
            "ipfake:\n  addresses:\n    - addr: 10.0.0.9/24\n      dev: eth9\n",
        )
        .unwrap();
        std::fs::write(
            &hr,
            "node1 IPaddr::192.168.1.10/24/eth0:web httpd\nnode2 IPaddr2::10.0.0.5/24/eth1 10.0.0.6\n",
        )
        .unwrap();
        let (sect, src) = section(&Some(yaml.clone()), Some(&hr)).unwrap();
        let up = |addr: &str| {
            let args = IpfakeArgs::try_parse_from(["ipfake", "up", addr]).unwrap();
            let Command::Up(up) = &args.command else { panic!() };
            Takeover::resolve(up, &sect, src.as_ref()).map_err(|e| e.to_string())
        };
        // Both nodes' lines: node2 takes node1's address over.
        let t = up("192.168.1.10").unwrap();
        assert_eq!(
            (t.addr.1, t.iface.as_str(), t.label.as_deref()),
            (24, "eth0", Some("eth0:web"))
        );
        assert_eq!(up("10.0.0.5").unwrap().iface, "eth1");
        // The YAML's entries are still there; an address with no prefix or interface
        // in haresources takes them from the command line.
        assert_eq!(up("10.0.0.9").unwrap().iface, "eth9");
        assert!(up("10.0.0.6").unwrap_err().contains("has no prefix length"));
        // A prefix without an interface: the prefix is kept, the interface comes from
        // the command line, and errors about the entry name its haresources word.
        let hr_s = hr.display().to_string();
        std::fs::write(&hr, "n1 IPaddr::10.0.0.7/28\nnode1 IPaddr::192.168.1.10/24/eth0:web\n").unwrap();
        let (sect, src) = section(&Some(yaml.clone()), Some(&hr)).unwrap();
        let up = |argv: &[&str]| {
            let args = IpfakeArgs::try_parse_from([&["ipfake", "up"], argv].concat()).unwrap();
            let Command::Up(up) = &args.command else { panic!() };
            Takeover::resolve(up, &sect, src.as_ref()).map_err(|e| e.to_string())
        };
        let t = up(&["10.0.0.7", "dev", "eth3"]).unwrap();
        assert_eq!((t.addr.1, t.iface.as_str()), (28, "eth3"));
        assert_eq!(
            up(&["10.0.0.7"]).unwrap_err(),
            format!("{hr_s}:1:4: 10.0.0.7 names no interface: give `dev IFACE`")
        );
        assert_eq!(
            up(&["192.168.1.10", "dev", "eth5"]).unwrap_err(),
            format!("{hr_s}:2:7: `eth0:web` must be `eth5` or start with `eth5:` (the device's name)")
        );
        // An address in both is refused, at its haresources line, naming the entry.
        std::fs::write(&hr, "node1 IPaddr::10.0.0.9/24/eth0\n").unwrap();
        let e = section(&Some(yaml), Some(&hr)).unwrap_err().to_string();
        assert!(
            e.contains("haresources:1:7: 10.0.0.9 is also an ipfake.addresses entry (")
                && e.ends_with("h.yaml:3:7); describe it in one place"),
            "{e}"
        );
    }

    #[test]
    fn an_error_in_an_entry_points_at_that_entry() {
        let src = Source {
            path: "h.yaml".into(),
            text: "ipfake:\n  addresses:\n    - addr: 10.0.0.1/24\n      dev: eth0\n      routers: [aa:bb:cc:dd:ee:ff]\n    - addr: 10.0.0.2/24\n      dev: eth1\n      routers: [nonsense]\n".into(),
        };
        let section = config::parse(&src).unwrap().ipfake;
        let args = IpfakeArgs::try_parse_from(["ipfake", "up", "10.0.0.2"]).unwrap();
        let Command::Up(up) = &args.command else { panic!() };
        let e = Takeover::resolve(up, &section, Some(&src)).unwrap_err().to_string();
        assert!(e.starts_with("h.yaml:8:7: `nonsense` is not a MAC address"), "{e}");
    }
}
