//! ipfake's settings: for `up`, the flags, then the configuration's entry for the
//! address, then the defaults; the pid directory for every command.

use crate::config::{self, Error as ConfigError, IpfakeSection, Resolver, Source};
use crate::tools::ipfake::cli::{IpfakeArgs, UpArgs};
use crate::tools::ipfake::takeover::Error;
use pnet_base::MacAddr;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The pid directory: `--pid-dir`, then `ipfake.pid-dir`, then /run/hakit.
pub fn pid_dir(args: &IpfakeArgs, section: &IpfakeSection) -> PathBuf {
    args.pid_dir
        .clone()
        .or_else(|| section.pid_dir.clone())
        .unwrap_or_else(|| "/run/hakit".into())
}

/// The `ipfake` section of the configuration named (or the default one when it
/// exists), with the file's text for error positions.
pub fn section(config: &Option<PathBuf>) -> Result<(IpfakeSection, Option<Source>), ConfigError> {
    let (f, src) = config::load_for(config)?;
    Ok((f.ipfake, src))
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
        let cfg_err = |key: &'static str, m: String| {
            Error::Usage(
                r.error(&r.item_origin("addresses", index.unwrap_or(0), key), m)
                    .to_string(),
            )
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
        let iface = a
            .iface
            .clone()
            .or_else(|| entry.map(|e| e.dev.clone()))
            .ok_or_else(|| {
                usage(format!(
                    "no interface for {ip}: give `dev IFACE` or an ipfake.addresses entry"
                ))
            })?;
        let mut routers = a.routers.clone();
        if routers.is_empty() {
            if let Some(e) = entry {
                for r in &e.routers {
                    routers.push(crate::net::arp::parse_mac(r).map_err(|m| cfg_err("routers", m))?);
                }
            }
        }
        Ok(Takeover {
            addr: (addr, prefix),
            iface,
            label: a.label.clone().or_else(|| entry.and_then(|e| e.label.clone())),
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ipfake::cli::Command;
    use clap::Parser;

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
