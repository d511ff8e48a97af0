//! Operator weights: a real server's weight set by hand — `lvs-ctl weight`, or an SNMP
//! SET of hakitRsWeight through `lvs-ctl snmp` (keepalived's realServerWeight) — that
//! stands in for the configured weight until it is reset.
//!
//! They live in one file beside follow's state file (`lvs-weights.json` in the
//! directory of `--state`, by default /run/hakit/lvs-weights.json), rewritten
//! atomically (base::fsio), mode 0644. [`health::desired`] reads them from
//! [`Health::weights`] in place of the configured weight, so neither `follow`'s drift
//! repair (it re-reads the file every `--interval`) nor the next `apply` undoes them; a
//! real server that its check or maintenance holds out stays out (weight 0) whatever
//! its operator weight, and gets that weight when it comes back. Like the state file
//! they are of this boot (/run): a reboot returns every server to its configured
//! weight.
//!
//! [`set`] is the one way they change: the file first, then the kernel, so that a
//! follower that wakes up in between already finds the new weight (it makes the same
//! change itself, or none); a kernel refusal puts the old file back.

use super::backend::{self, Backend};
use super::config::Config;
use super::health::{self, Health, RealId, Stamp};
use super::model::{Change, ServiceKey, WEIGHT_MAX};
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::fsio;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file's name, in the directory of follow's state file.
pub const FILE_NAME: &str = "lvs-weights.json";

/// Taken by [`set`] while it reads, writes and commits.
const LOCK_NAME: &str = "lvs-weights.lock";

/// Operator weights by real server.
pub type Weights = HashMap<RealId, u32>;

#[derive(Debug)]
pub enum Error {
    /// A bad weight, a service or real server that is neither configured nor in the
    /// kernel, or a weights file that cannot be believed (exit 2, nothing changed).
    Usage(String),
    /// The weights file cannot be written or locked (exit 1).
    File(String),
    Backend(backend::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::File(m) => f.write_str(m),
            Error::Backend(e) => e.fmt(f),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            Error::File(_) => ExitStatus::Failure,
            Error::Backend(e) => e.exit_status(),
        }
    }
}

impl From<backend::Error> for Error {
    fn from(e: backend::Error) -> Error {
        Error::Backend(e)
    }
}

/// Where the operator weights of the follower that keeps `state` are.
pub fn path_for(state: &Path) -> PathBuf {
    state.with_file_name(FILE_NAME)
}

#[derive(Serialize, Deserialize)]
struct Entry {
    service: String,
    real: String,
    weight: u32,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    weights: Vec<Entry>,
}

/// The file's text, sorted so that it reads the same every time.
pub fn render(w: &Weights) -> String {
    let mut weights: Vec<Entry> = w
        .iter()
        .map(|(id, &weight)| Entry {
            service: health::service_name(&id.service),
            real: id.real.to_string(),
            weight,
        })
        .collect();
    weights.sort_by(|a, b| (&a.service, &a.real).cmp(&(&b.service, &b.real)));
    let mut s = serde_json::to_string_pretty(&File { version: 1, weights }).unwrap_or_default();
    s.push('\n');
    s
}

/// Read the file's text; any entry that does not parse makes it an error (a hand-edited
/// file is not half believed).
pub fn parse(text: &str) -> Result<Weights, String> {
    let f: File = serde_json::from_str(text).map_err(|e| format!("not an operator weights file: {e}"))?;
    if f.version != 1 {
        return Err(format!("operator weights file version {}, not 1", f.version));
    }
    let mut w = Weights::new();
    for e in f.weights {
        let service =
            health::parse_service_name(&e.service).ok_or_else(|| format!("no such service `{}'", e.service))?;
        let real: SocketAddr = e
            .real
            .parse()
            .map_err(|_| format!("`{}' is not ADDRESS:PORT", e.real))?;
        if e.weight > WEIGHT_MAX {
            return Err(format!(
                "{} {}: weight {} is not 0 to {WEIGHT_MAX}",
                e.service, e.real, e.weight
            ));
        }
        w.insert(RealId { service, real }, e.weight);
    }
    Ok(w)
}

/// The operator weights in `path` (none when there is no file).
pub fn load(path: &Path) -> Result<Weights, String> {
    match fsio::read_trusted_owned(path, fsio::Whose::OursOrTheDirectorys)? {
        None => Ok(Weights::new()),
        Some((text, _)) => parse(&text).map_err(|e| format!("{}: {e}", path.display())),
    }
}

/// Replace the file atomically and durably enough for /run (no fsync needed there, but
/// a --state elsewhere survives a crash with the old or the new weights).
pub fn save(path: &Path, w: &Weights) -> Result<(), String> {
    fsio::write_atomic(path, render(w).as_bytes(), 0o644, fsio::Durability::Durable)
}

/// What [`set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The kernel's weight of the real server now (None: it is not in the kernel, e.g.
    /// removed while its check fails; it gets the weight when it comes back).
    pub kernel: Option<u32>,
    /// Whether the kernel was changed.
    pub changed: bool,
}

/// Set (`Some`) or reset (`None`) the operator weight of `real` in `service`, and make
/// the kernel say it: the weight `health::desired` gives with the configuration and a
/// live follower's health (kept at 0 while that holds the server out), or, for a real
/// server the configuration does not have, the weight itself. The file is written
/// before the kernel is changed; a refused commit restores it. Nothing changes for a
/// weight above 65535 or a real server that is neither configured nor in the kernel.
pub fn set(
    state: &Path,
    cfg: Option<&Config>,
    backend: &mut dyn Backend,
    service: ServiceKey,
    real: SocketAddr,
    weight: Option<u32>,
) -> Result<Outcome, Error> {
    let name = health::service_name(&service);
    if let Some(w) = weight.filter(|&w| w > WEIGHT_MAX) {
        return Err(Error::Usage(format!("weight {w}: 0 to {WEIGHT_MAX}")));
    }
    let path = path_for(state);
    // One change at a time (snmpd's SETs, `lvs-ctl weight` from a script): no update
    // is lost between one's read of the file and its write.
    let lock = fsio::open_or_create(&path.with_file_name(LOCK_NAME), 0o644).map_err(Error::File)?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
        Error::File(format!(
            "{}: cannot lock: {e}",
            path.with_file_name(LOCK_NAME).display()
        ))
    })?;
    let kernel = backend.read()?;
    let ks = kernel.service(&service);
    let kd = ks.and_then(|s| s.dest(real.ip(), real.port())).cloned();
    // A real server that joined at run time is the service's as a configured one is:
    // the health a live follower keeps decides its weight too.
    let mut health: Health = health::load_live_state(state).unwrap_or_default();
    let configured = cfg.and_then(|c| {
        c.services
            .iter()
            .find(|v| v.service.key == service)
            .map(|v| super::join::with_joined(&health, v))
            .filter(|v| {
                v.reals
                    .iter()
                    .any(|r| r.dest.addr == real.ip() && r.dest.port == real.port())
            })
            .map(|v| (c, v.into_owned()))
    });
    if configured.is_none() && kd.is_none() {
        return Err(Error::Usage(format!(
            "{name} {real}: no such real server in the configuration or the kernel"
        )));
    }
    let before = load(&path).map_err(Error::Usage)?;
    let mut after = before.clone();
    let id = RealId { service, real };
    match weight {
        Some(w) => after.insert(id, w),
        None => after.remove(&id),
    };
    if after != before {
        save(&path, &after).map_err(Error::File)?;
    }
    let target = match configured {
        Some((c, v)) => {
            health.weights = after.clone();
            let (s, _) = health::desired_service(c, &v, &health, Stamp::now());
            s.dest(real.ip(), real.port()).map(|d| d.weight)
        }
        // Not configured: nothing else decides its weight; a reset leaves it.
        None => weight.or(kd.as_ref().map(|d| d.weight)),
    };
    let (Some(mut d), Some(t)) = (kd, target) else {
        return Ok(Outcome {
            kernel: None,
            changed: false,
        });
    };
    if d.weight == t {
        return Ok(Outcome {
            kernel: Some(t),
            changed: false,
        });
    }
    d.weight = t;
    if let Err(e) = backend.commit(&kernel, &[Change::EditDest(service, d)]) {
        if after != before {
            if let Err(f) = save(&path, &before) {
                crate::base::log::error(&format!("the old operator weights were not put back: {f}"));
            }
        }
        return Err(e.into());
    }
    Ok(Outcome {
        kernel: Some(t),
        changed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::config::{OnFailure, Real, Virtual};
    use crate::tools::lvs_ctl::model::{Dest, Proto, Service, Table};
    use crate::tools::lvs_ctl::run::tests::Memory;

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        }
    }

    fn cfg() -> Config {
        let reals = (2..=3u8)
            .map(|i| {
                let mut d = Dest::new(format!("10.0.0.{i}").parse().unwrap(), 80);
                d.weight = 1;
                Real {
                    dest: d,
                    host: format!("web{i}"),
                }
            })
            .collect();
        Config {
            backend: None,
            maintenance_dir: None,
            depool_threshold: 0.0,
            services: vec![Virtual {
                service: Service::new(key()),
                reals,
                check: Some("web/http".into()),
                on_failure: OnFailure::Quiesce,
                drain: None,
                quorum: 0,
                sorry: None,
                join: None,
            }],
        }
    }

    fn mem(table: Table) -> Memory {
        Memory { table, ..Memory::new() }
    }

    fn kernel_of(c: &Config) -> Table {
        health::desired(c, &Health::default(), Stamp::now()).0
    }

    fn weight_in(t: &Table, last: u8) -> Option<u32> {
        t.service(&key())?
            .dest(format!("10.0.0.{last}").parse().unwrap(), 80)
            .map(|d| d.weight)
    }

    #[test]
    fn file_round_trips_and_refuses_what_it_cannot_believe() {
        let mut w = Weights::new();
        w.insert(
            RealId {
                service: key(),
                real: "10.0.0.2:80".parse().unwrap(),
            },
            7,
        );
        assert_eq!(parse(&render(&w)).unwrap(), w);
        for bad in [
            "{",
            r#"{"version":2,"weights":[]}"#,
            r#"{"version":1,"weights":[{"service":"tcp/x","real":"10.0.0.2:80","weight":1}]}"#,
            r#"{"version":1,"weights":[{"service":"tcp/192.0.2.10:80","real":"10.0.0.2","weight":1}]}"#,
            r#"{"version":1,"weights":[{"service":"tcp/192.0.2.10:80","real":"10.0.0.2:80","weight":65536}]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_operator_weight_stands_in_for_the_configured_one_until_reset() {
        let c = cfg();
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("lvs-follow.json");
        let mut m = mem(kernel_of(&c));
        let real: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let o = set(&state, Some(&c), &mut m, key(), real, Some(5)).unwrap();
        assert_eq!(
            o,
            Outcome {
                kernel: Some(5),
                changed: true
            }
        );
        assert_eq!(weight_in(&m.table, 2), Some(5));
        // What apply and follow compute with the file now agrees with the kernel.
        let h = Health {
            weights: load(&path_for(&state)).unwrap(),
            ..Health::default()
        };
        let (want, _) = health::desired(&c, &h, Stamp::now());
        assert!(m.table.diff(&want).is_empty(), "{:?}", m.table.diff(&want));
        // Without the override, apply would put 1 back: the override is what keeps it.
        assert_eq!(m.table.diff(&kernel_of(&c)).len(), 1);
        // 0 quiesces, as keepalived's realServerWeight.
        set(&state, Some(&c), &mut m, key(), real, Some(0)).unwrap();
        assert_eq!(weight_in(&m.table, 2), Some(0));
        // Reset: the configured weight again, and the file forgets it.
        let o = set(&state, Some(&c), &mut m, key(), real, None).unwrap();
        assert_eq!(o.kernel, Some(1));
        assert!(load(&path_for(&state)).unwrap().is_empty());
    }

    #[test]
    fn bad_requests_and_refusals_change_nothing() {
        let c = cfg();
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("lvs-follow.json");
        let mut m = mem(kernel_of(&c));
        let before = m.table.clone();
        let real: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let e = set(&state, Some(&c), &mut m, key(), real, Some(65536)).unwrap_err();
        assert_eq!(e.exit_status(), ExitStatus::Usage);
        let stranger: SocketAddr = "10.0.0.99:80".parse().unwrap();
        let e = set(&state, Some(&c), &mut m, key(), stranger, Some(3)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp/192.0.2.10:80 10.0.0.99:80: no such real server in the configuration or the kernel"
        );
        m.fail_at = Some(0);
        assert!(set(&state, Some(&c), &mut m, key(), real, Some(3)).is_err());
        assert_eq!(m.table, before);
        assert!(!path_for(&state).exists() || load(&path_for(&state)).unwrap().is_empty());
    }

    #[test]
    fn a_server_held_out_stays_at_zero_and_an_unconfigured_one_takes_the_weight() {
        let c = cfg();
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("lvs-follow.json");
        // A live follower (this process) says web3 is down.
        let mut h = Health::default();
        h.host_down("web/http", "web3", "CRITICAL", "refused", Stamp::now());
        let me = crate::base::pidfile::PidRecord::me(Vec::new());
        let w = health::Writer {
            pid: me.pid,
            start: me.start.unwrap(),
            since: Stamp::now(),
            written: Stamp::now(),
            boot: health::boot_id(),
        };
        health::save_state(&state, &h, &w).unwrap();
        let mut k = health::desired(&c, &h, Stamp::now()).0;
        let mut extra = Dest::new("10.0.0.77".parse().unwrap(), 80);
        extra.weight = 2;
        k.services[0].dests.push(extra);
        let mut m = mem(k);
        let o = set(&state, Some(&c), &mut m, key(), "10.0.0.3:80".parse().unwrap(), Some(9)).unwrap();
        assert_eq!(
            o,
            Outcome {
                kernel: Some(0),
                changed: false
            }
        );
        assert_eq!(
            load(&path_for(&state)).unwrap().values().copied().collect::<Vec<_>>(),
            [9]
        );
        let o = set(
            &state,
            Some(&c),
            &mut m,
            key(),
            "10.0.0.77:80".parse().unwrap(),
            Some(4),
        )
        .unwrap();
        assert_eq!(o.kernel, Some(4));
        assert_eq!(weight_in(&m.table, 77), Some(4));
    }
}
