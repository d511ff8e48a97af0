//! Fake's own configuration, so that a Fake setup moves over unchanged: `.fakerc`
//! (ARP_DELAY, PID_DIR, INSTANCE_CONFIG_DIR, CLEAR_ROUTERS_FILE) and
//! `instance_config/<IP>.cfg` (SPOOF_IP, TARGET_INTERFACE, SPOOF_NETMASK,
//! SPOOF_BROADCAST, FOREIGN_MACADDR). Fake cleared its routers' ARP caches over rsh;
//! ipfake announces to each router of CLEAR_ROUTERS_FILE directly instead. Both are shell fragments of `NAME=value` lines.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A takeover as Fake's files describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: String,
    pub label: Option<String>,
    pub arp_delay: Duration,
    pub pid_dir: Option<PathBuf>,
    pub foreign_mac: Option<pnet_base::MacAddr>,
    /// Routers from CLEAR_ROUTERS_FILE whose MAC could be found: Fake ran
    /// `rsh ROUTER clear arp-cache` on them; ipfake announces to them directly.
    pub routers: Vec<pnet_base::MacAddr>,
}

/// The MAC of `ip` in this namespace's ARP table, if it is there.
fn arp_table_mac(ip: Ipv4Addr) -> Option<pnet_base::MacAddr> {
    let table = std::fs::read_to_string("/proc/net/arp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 4 && w[0].parse::<Ipv4Addr>().ok()? == ip)
            .then(|| w[3].parse().ok())
            .flatten()
            // An incomplete entry shows the all-zero MAC: not known.
            .filter(|m| crate::net::arp::check_unicast_mac(*m).is_ok())
    })
}

/// Each line of a clear_routers file: a MAC, or an IPv4 address looked up in the ARP
/// table. What cannot be resolved is reported and left to the broadcast; a MAC that is
/// not one host's (broadcast, multicast, zero) is an error.
fn routers(path: &Path) -> Result<Vec<pnet_base::MacAddr>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, l) in text.lines().enumerate() {
        let w = l.split('#').next().unwrap_or("").trim();
        if w.is_empty() {
            continue;
        }
        let mac = match w.parse::<pnet_base::MacAddr>() {
            Ok(m) => {
                crate::net::arp::check_unicast_mac(m).map_err(|e| format!("{}:{}:1: {e}", path.display(), n + 1))?;
                Some(m)
            }
            Err(_) => w.parse::<Ipv4Addr>().ok().and_then(arp_table_mac),
        };
        match mac {
            Some(m) => out.push(m),
            None => crate::base::log::warn(&format!(
                "{}:{}: no MAC known for router `{w}`; it gets the broadcast announcements only",
                path.display(),
                n + 1
            )),
        }
    }
    Ok(out)
}

type Vars = HashMap<String, (String, usize)>;

/// `NAME=value` lines; `#` comments, `export`, and single or double quotes as the
/// shell reads them in these files.
fn parse(path: &Path) -> Result<Vars, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut vars = HashMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{}:{}:1: expected NAME=value", path.display(), n + 1));
        };
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("{}:{}:1: `{k}` is not a variable name", path.display(), n + 1));
        }
        let v = v.split(" #").next().unwrap_or("").trim();
        let v = v.trim_matches('"').trim_matches('\'');
        vars.insert(k.to_string(), (v.to_string(), n + 1));
    }
    Ok(vars)
}

/// Read `.fakerc` (the given file, or /etc/fake/.fakerc then ~/.fakerc) and the
/// instance file for `ip`.
pub fn load(rc: Option<&Path>, ip: &str) -> Result<Instance, String> {
    let rc_path = match rc {
        Some(p) => p.to_path_buf(),
        None => {
            let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".fakerc"));
            [Some(PathBuf::from("/etc/fake/.fakerc")), home]
                .into_iter()
                .flatten()
                .find(|p| p.exists())
                .ok_or("no .fakerc in /etc/fake or $HOME (give --rc FILE)")?
        }
    };
    let rcv = parse(&rc_path)?;
    let get = |v: &Vars, k: &str| v.get(k).map(|(s, _)| s.clone());
    let dir = get(&rcv, "INSTANCE_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| rc_path.parent().unwrap_or(Path::new(".")).join("instance_config"));
    let cfg = dir.join(format!("{ip}.cfg"));
    let iv = parse(&cfg)?;
    let need = |k: &str| {
        get(&iv, k)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{}: {k} is not set", cfg.display()))
    };
    let at = |k: &str| iv.get(k).map(|(_, l)| *l).unwrap_or(1);
    let addr: IpAddr = need("SPOOF_IP")?
        .parse()
        .map_err(|_| format!("{}:{}:1: SPOOF_IP is not an IP address", cfg.display(), at("SPOOF_IP")))?;
    let target = need("TARGET_INTERFACE")?;
    let mask = need("SPOOF_NETMASK")?;
    let prefix = crate::net::addr::netmask_prefix(&mask).ok_or_else(|| {
        format!(
            "{}:{}:1: SPOOF_NETMASK `{mask}` is not a netmask",
            cfg.display(),
            at("SPOOF_NETMASK")
        )
    })?;
    crate::net::addr::check_unicast(addr, Some(prefix))
        .map_err(|e| format!("{}:{}:1: SPOOF_IP {addr}/{prefix}: {e}", cfg.display(), at("SPOOF_IP")))?;
    let (dev, label) = match target.split_once(':') {
        Some((d, _)) => (d.to_string(), Some(target.clone())),
        None => (target.clone(), None),
    };
    if let Some(l) = &label {
        crate::tools::ipfake::settings::check_label(l, &dev)
            .map_err(|e| format!("{}:{}:1: TARGET_INTERFACE: {e}", cfg.display(), at("TARGET_INTERFACE")))?;
    }
    let arp_delay = match get(&rcv, "ARP_DELAY") {
        Some(d) => crate::base::duration::parse(&d).map_err(|e| format!("{}: ARP_DELAY: {e}", rc_path.display()))?,
        None => Duration::from_secs(1),
    };
    let foreign_mac = match get(&iv, "FOREIGN_MACADDR").filter(|s| !s.is_empty()) {
        Some(m) => Some(
            crate::net::arp::parse_mac(&m)
                .map_err(|e| format!("{}:{}:1: FOREIGN_MACADDR: {e}", cfg.display(), at("FOREIGN_MACADDR")))?,
        ),
        None => None,
    };
    let routers = match get(&rcv, "CLEAR_ROUTERS_FILE").filter(|s| !s.is_empty()) {
        Some(f) => routers(Path::new(&f))?,
        None => Vec::new(),
    };
    Ok(Instance {
        addr,
        prefix,
        dev,
        label,
        arp_delay,
        pid_dir: get(&rcv, "PID_DIR").map(PathBuf::from),
        foreign_mac,
        routers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_fake_setup() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("instance_config")).unwrap();
        std::fs::write(d.path().join("routers"), "# routers\n02:00:00:00:00:fe\n").unwrap();
        std::fs::write(
            d.path().join(".fakerc"),
            format!(
                "# fake\nARP_DELAY=2\nPID_DIR=/var/run\nCLEAR_ROUTERS_FILE={}\n",
                d.path().join("routers").display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.path().join("instance_config/192.0.2.10.cfg"),
            "SPOOF_IP=192.0.2.10\nTARGET_INTERFACE=\"eth0:2\"\nSPOOF_NETMASK=255.255.255.0\nSPOOF_BROADCAST=192.0.2.255\nFOREIGN_MACADDR=02:00:00:00:00:01\n",
        )
        .unwrap();
        let i = load(Some(&d.path().join(".fakerc")), "192.0.2.10").unwrap();
        assert_eq!(i.prefix, 24);
        assert_eq!(i.dev, "eth0");
        assert_eq!(i.label.as_deref(), Some("eth0:2"));
        assert_eq!(i.arp_delay, Duration::from_secs(2));
        assert_eq!(i.pid_dir, Some(PathBuf::from("/var/run")));
        assert!(i.foreign_mac.is_some());
        assert_eq!(i.routers, vec![pnet_base::MacAddr(2, 0, 0, 0, 0, 0xfe)]);
        // A missing variable is one clear error naming the file.
        std::fs::write(d.path().join("instance_config/192.0.2.11.cfg"), "SPOOF_IP=192.0.2.11\n").unwrap();
        let e = load(Some(&d.path().join(".fakerc")), "192.0.2.11").unwrap_err();
        assert!(e.ends_with("192.0.2.11.cfg: TARGET_INTERFACE is not set"), "{e}");
        assert_eq!(crate::net::addr::netmask_prefix("255.255.0.0"), Some(16));
        assert_eq!(crate::net::addr::netmask_prefix("255.0.255.0"), None);
    }
}
