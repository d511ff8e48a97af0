//! The `lvs-ctl` section of hakit.yaml: the virtual services a director should have, and
//! how `follow` treats their real servers when mon-check says one is down. Checked in
//! one place, before anything is touched; an error names `file:line:column`.
//!
//! ```yaml
//! lvs-ctl:
//!   backend: nft                 # or ipvs (default: ipvs where the kernel has it)
//!   maintenance-dir: /etc/hakit/lvs-maintenance
//!   depool-threshold: 0.5        # never take more than half of a pool out
//!   services:
//!     - service: tcp 192.0.2.10:80   # udp/sctp ADDR:PORT, or "fwmark 1 [ipv6]"
//!       scheduler: wrr
//!       persistent: 300
//!       forward: masq                # the real servers' default (route, masq, tunnel)
//!       check: web/http              # the mon-check service whose events move them
//!       on-failure: quiesce          # weight 0 (open connections go on), or remove
//!       drain: 30s                   # with remove: quiesce first, remove after this
//!       quorum: 2                    # live weight below this brings the sorry server in
//!       sorry: 10.0.0.9:80
//!       reals:
//!         - address: 10.0.0.2:80
//!           weight: 1
//!         - { address: 10.0.0.3:80, weight: 2, host: web3 }
//!       # who may join at run time (lvs-ctl join; see join.rs): node names, CIDRs
//!       # holding the joiner's address, or '*'; no `join` key: nobody. Needs `check`.
//!       join: {allow: [web7, 10.0.1.0/24], weight-max: 10, lease: 20s}
//! ```

use super::backend::Kind;
use super::ipvsadm::{parse_addr_port, parse_sched_flags};
use super::model::*;
use crate::config::{Error, Source};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The section's name in the file.
pub const SECTION: &str = "lvs-ctl";

#[derive(Debug, Default, Deserialize)]
struct FileView {
    #[serde(default, rename = "lvs-ctl")]
    lvs_ctl: Option<Section>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Section {
    pub backend: Option<Kind>,
    pub maintenance_dir: Option<PathBuf>,
    pub depool_threshold: Option<f64>,
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceEntry {
    pub service: String,
    pub scheduler: Option<String>,
    pub persistent: Option<u32>,
    pub netmask: Option<String>,
    pub sched_flags: Option<String>,
    pub ops: Option<bool>,
    pub forward: Option<FwdName>,
    pub check: Option<String>,
    pub on_failure: Option<OnFailure>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub drain: Option<Duration>,
    pub quorum: Option<u64>,
    pub sorry: Option<String>,
    pub sorry_forward: Option<FwdName>,
    #[serde(default)]
    pub reals: Vec<RealEntry>,
    /// Who may join the pool at run time (lvs-ctl join); absent: nobody.
    pub join: Option<JoinEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JoinEntry {
    /// Node names, CIDRs (the joiner's address must be inside), or `*` (any node with
    /// the cluster key).
    pub allow: Vec<String>,
    pub weight_max: Option<u32>,
    #[serde(default, deserialize_with = "crate::base::duration::deserialize_opt")]
    pub lease: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RealEntry {
    pub address: String,
    pub weight: Option<u32>,
    pub forward: Option<FwdName>,
    pub upper: Option<u32>,
    pub lower: Option<u32>,
    /// The name mon-check's events give this real server (its address by default).
    pub host: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FwdName {
    Route,
    Masq,
    Tunnel,
    /// ipvsadm's word for route.
    Gate,
}

impl FwdName {
    fn fwd(self) -> Fwd {
        match self {
            FwdName::Route | FwdName::Gate => Fwd::Route,
            FwdName::Masq => Fwd::Masq,
            FwdName::Tunnel => Fwd::Tunnel,
        }
    }
}

/// What `follow` does with a real server that fails its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Weight 0: no new connections, the open ones go on (ldirectord's quiescent=yes,
    /// keepalived's inhibit_on_failure).
    Quiesce,
    /// Out of the table (after `drain`, if set).
    Remove,
}

/// One real server as the configuration wants it, and how mon-check names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real {
    pub dest: Dest,
    pub host: String,
}

/// One virtual service as the configuration wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Virtual {
    /// The settings, with no real servers (they are in `reals`).
    pub service: Service,
    pub reals: Vec<Real>,
    /// The mon-check service key (`GROUP/SERVICE`) whose host events move the reals.
    pub check: Option<String>,
    pub on_failure: OnFailure,
    pub drain: Option<Duration>,
    pub quorum: u64,
    pub sorry: Option<Dest>,
    /// Who may join at run time, and how (None: nobody).
    pub join: Option<super::join::JoinRule>,
}

impl Virtual {
    /// What happens to a failed real server, in one word (events, status).
    pub fn on_failure_word(&self) -> &'static str {
        match (self.on_failure, self.drain) {
            (OnFailure::Quiesce, _) => "quiesce",
            (OnFailure::Remove, Some(_)) => "drain",
            (OnFailure::Remove, None) => "remove",
        }
    }
}

/// The checked section.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub backend: Option<Kind>,
    pub maintenance_dir: Option<PathBuf>,
    /// The share of a pool that always stays in (0 to 1).
    pub depool_threshold: f64,
    pub services: Vec<Virtual>,
}

/// Read the `lvs-ctl` section of `path`.
pub fn load(path: &Path) -> Result<Config, Error> {
    from_source(&Source::read(path)?)
}

pub fn from_source(src: &Source) -> Result<Config, Error> {
    let view: FileView = src.yaml()?;
    let sec = view.lvs_ctl.ok_or_else(|| Error {
        file: Some(src.path.clone()),
        pos: None,
        msg: "no `lvs-ctl` section".into(),
    })?;
    resolve(sec, src)
}

/// Only the backend, for ipvsadm's command line (which has no other use for the file);
/// a file that does not parse is an error there too.
pub fn backend_of(src: &Source) -> Result<Option<Kind>, Error> {
    let view: FileView = src.yaml()?;
    Ok(view.lvs_ctl.and_then(|s| s.backend))
}

fn resolve(sec: Section, src: &Source) -> Result<Config, Error> {
    let at_item = |i: usize, key: &str, msg: String| Error {
        file: Some(src.path.clone()),
        pos: src.locate_item(SECTION, "services", i, key),
        msg,
    };
    let depool_threshold = match sec.depool_threshold {
        None => 0.0,
        Some(x) if (0.0..=1.0).contains(&x) => x,
        Some(x) => {
            return Err(Error::at(
                src,
                src.locate(SECTION, "depool-threshold"),
                format!("depool-threshold {x}: a share of the pool, from 0 to 1"),
            ))
        }
    };
    let mut services: Vec<Virtual> = Vec::new();
    for (i, e) in sec.services.iter().enumerate() {
        let key = parse_key(&e.service).map_err(|m| at_item(i, "service", m))?;
        if services.iter().any(|v| v.service.key == key) {
            return Err(at_item(i, "service", format!("service `{}' is given twice", e.service)));
        }
        let mut s = Service::new(key);
        if let Some(sched) = &e.scheduler {
            if !IPVS_SCHEDULERS.contains(&sched.as_str()) {
                return Err(at_item(
                    i,
                    "scheduler",
                    format!("unknown scheduler `{sched}' (one of {})", IPVS_SCHEDULERS.join(" ")),
                ));
            }
            s.scheduler.clone_from(sched);
        }
        if let Some(t) = e.persistent {
            if t == 0 || t > 86400 * 31 {
                return Err(at_item(
                    i,
                    "persistent",
                    format!("persistent {t}: 1 to 2678400 seconds"),
                ));
            }
            s.flags |= F_PERSISTENT;
            s.timeout = t;
        }
        if let Some(m) = &e.netmask {
            s.netmask = if key.is_v6() {
                m.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=128).contains(n))
                    .ok_or_else(|| at_item(i, "netmask", format!("netmask `{m}': an IPv6 prefix length, 1 to 128")))?
            } else {
                let a: std::net::Ipv4Addr = m
                    .parse()
                    .map_err(|_| at_item(i, "netmask", format!("netmask `{m}': an IPv4 mask")))?;
                u32::from_ne_bytes(a.octets())
            };
        }
        if let Some(f) = &e.sched_flags {
            s.flags |= parse_sched_flags(&s.scheduler, f).map_err(|m| at_item(i, "sched-flags", m))?;
        }
        if e.ops == Some(true) {
            if key.proto().is_some_and(|p| p != Proto::Udp) {
                return Err(at_item(
                    i,
                    "ops",
                    "one-packet scheduling is only for UDP services".into(),
                ));
            }
            s.flags |= F_ONEPACKET;
        }
        if let ServiceKey::Addr { port: 0, .. } = key {
            if s.flags & F_PERSISTENT == 0 {
                return Err(at_item(i, "service", "port 0 is for persistent services only".into()));
            }
        }
        let fwd = e.forward.map(FwdName::fwd).unwrap_or(Fwd::Route);
        // A real server's error points at the line that names it.
        let at_addr = |addr: &str, key_name: &str, msg: String| Error {
            file: Some(src.path.clone()),
            pos: src
                .position_in(SECTION, |line| {
                    line.find(addr).map(|_| line.len() - line.trim_start().len())
                })
                .or_else(|| src.locate_item(SECTION, "services", i, key_name)),
            msg,
        };
        let dest_of = |addr: &str, fwd: Fwd, key_name: &str| -> Result<Dest, Error> {
            let proto = key.proto().unwrap_or(Proto::Tcp);
            let (a, p) = parse_addr_port(addr, proto)
                .ok_or_else(|| at_addr(addr, key_name, format!("`{addr}': not an address[:port]")))?;
            let svc_port = match key {
                ServiceKey::Addr { port, .. } => port,
                ServiceKey::Fwmark { .. } => 0,
            };
            let mut d = Dest::new(a, p.unwrap_or(svc_port));
            d.fwd = fwd;
            if matches!(key, ServiceKey::Addr { .. }) && matches!(fwd, Fwd::Route | Fwd::Tunnel) && d.port != svc_port {
                return Err(at_addr(
                    addr,
                    key_name,
                    format!("`{addr}': direct routing and tunnels keep the service's port {svc_port}"),
                ));
            }
            if a.is_ipv6() != key.is_v6() && fwd != Fwd::Tunnel {
                return Err(at_addr(
                    addr,
                    key_name,
                    format!("`{addr}': another address family than the service's (only tunnels may)"),
                ));
            }
            Ok(d)
        };
        let mut reals: Vec<Real> = Vec::new();
        for r in &e.reals {
            let mut d = dest_of(&r.address, r.forward.map(FwdName::fwd).unwrap_or(fwd), "reals")?;
            if let Some(w) = r.weight {
                if w > WEIGHT_MAX {
                    return Err(at_addr(
                        &r.address,
                        "reals",
                        format!("`{}': weight {w}: 0 to 65535", r.address),
                    ));
                }
                d.weight = w;
            }
            d.u_thresh = r.upper.unwrap_or(0);
            d.l_thresh = r.lower.unwrap_or(0);
            if reals.iter().any(|x| x.dest.addr == d.addr && x.dest.port == d.port) {
                return Err(at_item(
                    i,
                    "reals",
                    format!("real server `{}' is given twice", r.address),
                ));
            }
            let host = r.host.clone().unwrap_or_else(|| d.addr.to_string());
            reals.push(Real { dest: d, host });
        }
        let sorry = match &e.sorry {
            None => None,
            Some(a) => Some(dest_of(a, e.sorry_forward.map(FwdName::fwd).unwrap_or(fwd), "sorry")?),
        };
        if let Some(sd) = &sorry {
            if reals.iter().any(|r| r.dest.addr == sd.addr && r.dest.port == sd.port) {
                return Err(at_item(
                    i,
                    "sorry",
                    "the sorry server is one of the real servers".into(),
                ));
            }
        }
        let on_failure = e.on_failure.unwrap_or(OnFailure::Quiesce);
        if e.drain.is_some() && on_failure != OnFailure::Remove {
            return Err(at_item(
                i,
                "drain",
                "drain is for on-failure: remove (quiesce keeps the server)".into(),
            ));
        }
        let quorum = e.quorum.unwrap_or(if sorry.is_some() { 1 } else { 0 });
        let join = match &e.join {
            None => None,
            Some(j) => {
                if e.check.is_none() {
                    return Err(at_item(
                        i,
                        "join",
                        "join needs the service's check: a joiner goes in only once it passes".into(),
                    ));
                }
                Some(super::join::JoinRule::resolve(j, fwd).map_err(|m| at_item(i, "join", m))?)
            }
        };
        services.push(Virtual {
            service: s,
            reals,
            check: e.check.clone(),
            on_failure,
            drain: e.drain,
            quorum,
            sorry,
            join,
        });
    }
    Ok(Config {
        backend: sec.backend,
        maintenance_dir: sec.maintenance_dir,
        depool_threshold,
        services,
    })
}

/// `tcp 192.0.2.10:80`, `udp [2001:db8::1]:53`, `sctp ...`, `fwmark 1`, `fwmark 1 ipv6`.
pub fn parse_key(s: &str) -> Result<ServiceKey, String> {
    let w: Vec<&str> = s.split_whitespace().collect();
    let bad = || format!("service `{s}': write `tcp ADDR:PORT', `udp ...', `sctp ...' or `fwmark N [ipv6]'");
    match w.as_slice() {
        ["fwmark", n] | ["fwmark", n, "ipv6"] => {
            let mark: u32 = n.parse().ok().filter(|m| *m > 0).ok_or_else(bad)?;
            Ok(ServiceKey::Fwmark { mark, v6: w.len() == 3 })
        }
        [p, a] => {
            let proto = match *p {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                "sctp" => Proto::Sctp,
                _ => return Err(bad()),
            };
            let (addr, port): (IpAddr, Option<u16>) = parse_addr_port(a, proto).ok_or_else(bad)?;
            Ok(ServiceKey::Addr {
                proto,
                addr,
                port: port.unwrap_or(0),
            })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(t: &str) -> Result<Config, Error> {
        from_source(&Source {
            path: "/etc/hakit/hakit.yaml".into(),
            text: t.into(),
        })
    }

    const GOOD: &str = "lvs-ctl:
  backend: nft
  depool-threshold: 0.5
  services:
    - service: tcp 192.0.2.10:80
      scheduler: wrr
      forward: masq
      check: web/http
      on-failure: remove
      drain: 30s
      sorry: 10.0.0.9:80
      reals:
        - address: 10.0.0.2:8080
          weight: 3
        - { address: 10.0.0.3, host: web3 }
    - service: fwmark 7 ipv6
      scheduler: sh
      sched-flags: sh-port
";

    #[test]
    fn a_good_section() {
        let c = load_text(GOOD).unwrap();
        assert_eq!(c.backend, Some(Kind::Nft));
        let v = &c.services[0];
        assert_eq!(v.reals[0].dest.port, 8080);
        assert_eq!(v.reals[0].dest.weight, 3);
        assert_eq!(v.reals[1].dest.port, 80);
        assert_eq!(v.reals[1].host, "web3");
        assert_eq!(v.reals[0].host, "10.0.0.2");
        assert_eq!(v.quorum, 1, "a sorry server alone means: when nothing is live");
        assert_eq!(v.drain, Some(Duration::from_secs(30)));
        assert_eq!(c.services[1].service.flags, F_SCHED2);
        let (t, _) = crate::tools::lvs_ctl::health::desired(
            &c,
            &Default::default(),
            crate::tools::lvs_ctl::health::Stamp::now(),
        );
        assert_eq!(t.services[0].dests.len(), 2);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        for (text, want, line) in [
            (
                GOOD.replace("scheduler: wrr", "scheduler: wxx"),
                "unknown scheduler `wxx'",
                6,
            ),
            (GOOD.replace("weight: 3", "weight: 70000"), "weight 70000", 13),
            (GOOD.replace("fwmark 7 ipv6", "tcp 192.0.2.10:80"), "given twice", 16),
            (GOOD.replace("10.0.0.3,", "2001:db8::3,"), "address family", 15),
            (
                GOOD.replace("depool-threshold: 0.5", "depool-threshold: 2"),
                "depool-threshold 2",
                3,
            ),
            (
                GOOD.replace("on-failure: remove", "on-failure: quiesce"),
                "drain is for",
                10,
            ),
            (
                GOOD.replace("check: web/http", "colour: red"),
                "unknown field `colour`",
                8,
            ),
        ] {
            let e = load_text(&text).expect_err(want).to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.starts_with(&format!("/etc/hakit/hakit.yaml:{line}:")), "{e}");
        }
    }

    #[test]
    fn a_join_rule_and_its_errors() {
        let text = GOOD.replace(
            "      reals:\n        - address: 10.0.0.2:8080",
            "      join: {allow: [w7, 10.0.1.0/24, '*'], weight-max: 4, lease: 30s}\n      reals:\n        - address: 10.0.0.2:8080",
        );
        let c = load_text(&text).unwrap();
        let j = c.services[0].join.as_ref().unwrap();
        assert_eq!(j.weight_max, 4);
        assert_eq!(j.lease, Duration::from_secs(30));
        assert_eq!(j.fwd, Fwd::Masq, "the service's forward");
        assert_eq!(j.allow.len(), 3);
        assert!(c.services[1].join.is_none(), "no join key: nobody may join");
        for (t, want, line) in [
            (text.replace("w7,", "'w 7',"), "join.allow: `w 7'", 12),
            (
                text.replace("weight-max: 4", "weight-max: 70000"),
                "join.weight-max 70000",
                12,
            ),
            (
                text.replace("      check: web/http\n", ""),
                "join needs the service's check",
                11,
            ),
            (text.replace("lease: 30s", "colour: red"), "unknown field `colour`", 12),
        ] {
            let e = load_text(&t).expect_err(want).to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.starts_with(&format!("/etc/hakit/hakit.yaml:{line}:")), "{want}: {e}");
        }
    }
}
