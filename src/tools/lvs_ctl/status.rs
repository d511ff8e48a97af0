//! `lvs-ctl status`: the services, their real servers with the configured weight and
//! the kernel's, connection counts, and the health as a live `follow` knows it (from
//! its state file; without a live follower the health is not known and says so).
//! Services of the kernel that the configuration does not name are listed too.

use super::backend::{self, Backend};
use super::cli::StatusArgs;
use super::config::Config;
use super::health::{self, Health, Note, Placement, Stamp, Why, Writer};
use super::model::{AddrPort, Dest, Service, ServiceKey, Table};
use super::weights::Weights;
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::prom::Exposition;
use serde::Serialize;
use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;

#[derive(Debug)]
pub enum Error {
    Backend(backend::Error),
    Io(String),
    Prom(crate::base::prom::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Backend(e) => e.fmt(f),
            Error::Io(m) => f.write_str(m),
            Error::Prom(e) => e.fmt(f),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Backend(e) => e.exit_status(),
            Error::Io(_) => ExitStatus::Failure,
            Error::Prom(e) => e.exit_status(),
        }
    }
}

impl From<backend::Error> for Error {
    fn from(e: backend::Error) -> Error {
        Error::Backend(e)
    }
}

/// Who follows, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FollowerView {
    pub pid: i32,
    pub since: String,
    pub written: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SorryView {
    pub real: String,
    pub in_kernel: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RealView {
    pub real: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub forward: &'static str,
    /// The configured weight (None: not in the configuration).
    pub weight: Option<u32>,
    /// The kernel's (None: not in the kernel).
    pub kernel_weight: Option<u32>,
    /// The operator's (`lvs-ctl weight`, SNMP SET), which stands in for `weight`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_weight: Option<u32>,
    pub active: u32,
    pub inactive: u32,
    /// up, down, maintenance; None when no live follower says.
    pub health: Option<&'static str>,
    /// How follow holds it: in, quiesced, draining, removed, depool-refused (down but
    /// kept in), quorum (healthy, out while the sorry server has the service).
    pub state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The node that joined it at run time (lvs-ctl join), with its lease's end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceView {
    pub service: String,
    pub scheduler: String,
    pub configured: bool,
    pub in_kernel: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u64>,
    /// The kernel's: the weights of its real servers but the sorry server.
    pub live_weight: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sorry: Option<SorryView>,
    pub reals: Vec<RealView>,
    #[serde(skip)]
    key: Option<ServiceKey>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub backend: &'static str,
    pub follower: Option<FollowerView>,
    pub services: Vec<ServiceView>,
}

fn fwd_word(d: &Dest) -> &'static str {
    d.fwd.name()
}

fn real_of(d: &Dest, host: Option<&str>, weight: Option<u32>, kernel: Option<&Dest>) -> RealView {
    RealView {
        real: SocketAddr::new(d.addr, d.port).to_string(),
        host: host.map(str::to_string),
        forward: fwd_word(d),
        weight,
        kernel_weight: kernel.map(|k| k.weight),
        operator_weight: None,
        active: kernel.map_or(0, |k| k.active),
        inactive: kernel.map_or(0, |k| k.inactive),
        health: None,
        state: None,
        since: None,
        reason: None,
        file: None,
        until: None,
        joined_by: None,
        lease_until: None,
    }
}

fn follow_health(r: &mut RealView, note: Option<&Note>) {
    let (health, state, why) = match note {
        None => ("up", "in", None),
        Some(Note::Out { why, placement, .. }) => {
            if let Placement::Draining { until } = placement {
                r.until = Some(until.rfc3339());
            }
            // Out for the quorum is `quorum` however it went out (drained too), as the
            // metric's HELP and the man page say.
            let state = match (why, placement) {
                (Why::Quorum, _) => "quorum",
                (_, Placement::Quiesced) => "quiesced",
                (_, Placement::Draining { .. }) => "draining",
                (_, Placement::Removed) => "removed",
            };
            (why.word(), state, Some(why))
        }
        Some(Note::DepoolRefused { why, .. }) => (why.word(), "depool-refused", Some(why)),
        Some(Note::SorryIn { .. }) => return,
    };
    r.health = Some(if health == "quorum" { "up" } else { health });
    r.state = Some(state);
    match why {
        Some(Why::Down(d)) => {
            r.since = Some(d.since.rfc3339());
            r.reason = Some(d.reason());
        }
        Some(Why::Maintenance { file, since }) => {
            r.since = Some(since.rfc3339());
            r.file = Some(file.clone());
        }
        _ => {}
    }
}

/// What status shows, from the configuration (if any), the kernel's table and a live
/// follower's health (if any).
pub fn report(
    cfg: Option<&Config>,
    kernel: &Table,
    follower: Option<&(Health, Writer)>,
    backend: &'static str,
    now: Stamp,
) -> Report {
    report_weighted(cfg, kernel, follower, &Weights::new(), backend, now)
}

/// [`report`] with the operator weights (tools::lvs_ctl::weights).
pub fn report_weighted(
    cfg: Option<&Config>,
    kernel: &Table,
    follower: Option<&(Health, Writer)>,
    weights: &Weights,
    backend: &'static str,
    now: Stamp,
) -> Report {
    let mut services = Vec::new();
    let health = follower.map(|(h, _)| Health {
        weights: weights.clone(),
        ..h.clone()
    });
    for v in cfg.map(|c| c.services.as_slice()).unwrap_or(&[]) {
        let k = kernel.service(&v.service.key);
        let notes = match (cfg, &health) {
            (Some(c), Some(h)) => Some(health::desired_service(c, v, h, now).1),
            _ => None,
        };
        let mut reals = Vec::new();
        // The joiners a live follower holds are real servers of the service too.
        let v = match follower {
            Some((h, _)) => super::join::with_joined(h, v),
            None => std::borrow::Cow::Borrowed(v),
        };
        for r in &v.reals {
            let kd = k.and_then(|s| s.dest(r.dest.addr, r.dest.port));
            let mut rv = real_of(&r.dest, Some(&r.host), Some(r.dest.weight), kd);
            let id = health::RealId::of(&v, r);
            if let Some(j) = follower.and_then(|(h, _)| h.joined.get(&id)) {
                rv.joined_by = Some(j.node.clone());
                rv.lease_until = Some(j.lease_until.rfc3339());
            }
            rv.operator_weight = weights.get(&id).copied();
            if let Some(notes) = &notes {
                let me = SocketAddr::new(r.dest.addr, r.dest.port);
                let note = notes.iter().find(|n| match n {
                    Note::Out { real, .. } | Note::DepoolRefused { real, .. } => *real == me,
                    Note::SorryIn { .. } => false,
                });
                follow_health(&mut rv, note);
            }
            reals.push(rv);
        }
        // Real servers in the kernel that the configuration does not have.
        for d in k.map(|s| s.dests.as_slice()).unwrap_or(&[]) {
            let configured = v.reals.iter().any(|r| r.dest.addr == d.addr && r.dest.port == d.port);
            let sorry = v.sorry.as_ref().is_some_and(|s| s.addr == d.addr && s.port == d.port);
            if !configured && !sorry {
                let mut rv = real_of(d, None, None, Some(d));
                rv.operator_weight = weights
                    .get(&health::RealId {
                        service: v.service.key,
                        real: SocketAddr::new(d.addr, d.port),
                    })
                    .copied();
                reals.push(rv);
            }
        }
        services.push(ServiceView {
            service: health::service_name(&v.service.key),
            scheduler: k.map_or(&v.service.scheduler, |s| &s.scheduler).clone(),
            configured: true,
            in_kernel: k.is_some(),
            check: v.check.clone(),
            on_failure: Some(v.on_failure_word()),
            quorum: v.sorry.as_ref().map(|_| v.quorum),
            live_weight: k.map_or(0, |s| {
                s.live_weight(v.sorry.as_ref().map(|d| std::net::SocketAddr::new(d.addr, d.port)))
            }),
            sorry: v.sorry.as_ref().map(|s| SorryView {
                real: SocketAddr::new(s.addr, s.port).to_string(),
                in_kernel: k.is_some_and(|ks| ks.dest(s.addr, s.port).is_some()),
            }),
            reals,
            key: Some(v.service.key),
        });
    }
    let mut others: Vec<&Service> = kernel
        .services
        .iter()
        .filter(|s| !services.iter().any(|v| v.key == Some(s.key)))
        .collect();
    others.sort_by_key(|s| s.key.sort_key());
    for s in others {
        services.push(ServiceView {
            service: health::service_name(&s.key),
            scheduler: s.scheduler.clone(),
            configured: false,
            in_kernel: true,
            check: None,
            on_failure: None,
            quorum: None,
            live_weight: s.live_weight(None),
            sorry: None,
            reals: s
                .dests
                .iter()
                .map(|d| {
                    let mut rv = real_of(d, None, None, Some(d));
                    rv.operator_weight = weights
                        .get(&health::RealId {
                            service: s.key,
                            real: SocketAddr::new(d.addr, d.port),
                        })
                        .copied();
                    rv
                })
                .collect(),
            key: Some(s.key),
        });
    }
    Report {
        backend,
        follower: follower.map(|(_, w)| FollowerView {
            pid: w.pid,
            since: w.since.rfc3339(),
            written: w.written.rfc3339(),
        }),
        services,
    }
}

fn opt<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".to_string(), |x| x.to_string())
}

/// `TCP  192.0.2.10:80`, as `-L -n` heads a service.
fn heading(sv: &ServiceView) -> String {
    match sv.key {
        Some(ServiceKey::Addr { proto, addr, port }) => format!("{}  {}", proto.upper(), AddrPort(addr, port)),
        Some(ServiceKey::Fwmark { mark, v6 }) => format!("FWM  {mark}{}", if v6 { " IPv6" } else { "" }),
        None => sv.service.clone(),
    }
}

/// For people.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    match &r.follower {
        Some(f) => {
            let _ = writeln!(
                s,
                "backend {}; followed by pid {} since {} (state written {})",
                r.backend, f.pid, f.since, f.written
            );
        }
        None => {
            let _ = writeln!(s, "backend {}; no follower running: health not known", r.backend);
        }
    }
    for sv in &r.services {
        let mut h = format!("{} {}", heading(sv), sv.scheduler);
        if !sv.configured {
            h.push_str("  (not in the configuration)");
        } else if !sv.in_kernel {
            h.push_str("  (not in the kernel)");
        }
        if let Some(c) = &sv.check {
            let _ = write!(h, "  check {c}");
        }
        if let Some(o) = sv.on_failure {
            let _ = write!(h, ", on failure {o}");
        }
        if let Some(q) = sv.quorum {
            let _ = write!(h, ", quorum {q}");
        }
        let _ = write!(h, ", live weight {}", sv.live_weight);
        let _ = writeln!(s, "{h}");
        let _ = writeln!(
            s,
            "  {:<30} {:<7} {:>6} {:>6} {:>10} {:>10}  Health",
            "-> RemoteAddress:Port", "Forward", "Weight", "Kernel", "ActiveConn", "InActConn"
        );
        for rv in &sv.reals {
            let mut health = match (rv.health, rv.state) {
                (Some(h), Some("in")) => h.to_string(),
                (Some(h), Some(st)) => format!("{h}, {st}"),
                _ if rv.weight.is_none() => "not in the configuration".to_string(),
                _ => "-".to_string(),
            };
            if let Some(since) = &rv.since {
                let _ = write!(health, " since {since}");
            }
            if let Some(until) = &rv.until {
                let _ = write!(health, " until {until}");
            }
            if let Some(f) = &rv.file {
                let _ = write!(health, " (file {f})");
            }
            if let Some(why) = &rv.reason {
                let _ = write!(health, ": {why}");
            }
            if let (Some(n), Some(l)) = (&rv.joined_by, &rv.lease_until) {
                let _ = write!(health, " (joined by {n}, lease until {l})");
            }
            if let Some(w) = rv.operator_weight {
                let _ = write!(health, " (operator weight {w})");
            }
            let name = match &rv.host {
                Some(h) if *h != rv.real.split(':').next().unwrap_or("") && !rv.real.starts_with('[') => {
                    format!("{} ({h})", rv.real)
                }
                _ => rv.real.clone(),
            };
            let _ = writeln!(
                s,
                "  -> {:<27} {:<7} {:>6} {:>6} {:>10} {:>10}  {health}",
                name,
                rv.forward,
                opt(rv.weight),
                opt(rv.kernel_weight),
                rv.active,
                rv.inactive
            );
        }
        if let Some(sorry) = &sv.sorry {
            let _ = writeln!(
                s,
                "  -> {:<27} {:<7} {:>6} {:>6} {:>10} {:>10}  sorry server, {}",
                sorry.real,
                "",
                "",
                "",
                "",
                "",
                if sorry.in_kernel { "in" } else { "out" }
            );
        }
    }
    s
}

pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string(r).unwrap_or_default();
    s.push('\n');
    s
}

const REAL_STATES: [&str; 6] = ["in", "quiesced", "draining", "removed", "depool-refused", "quorum"];
const REAL_HEALTH: [&str; 3] = ["up", "down", "maintenance"];

/// The report in Prometheus' text format. Health and state only where a live follower
/// says them, connections only from a backend that counts them (nft does not).
pub fn prometheus(r: &Report) -> Exposition {
    let mut e = Exposition::new();
    e.gauge(
        "hakit_lvs_follower_up",
        "1 while a live lvs-ctl follow keeps the real servers' health; 0: health is not known.",
        &[],
        r.follower.is_some(),
    );
    let counts = r.backend == backend::Kind::Ipvs.name();
    for sv in &r.services {
        let l = [("service", sv.service.as_str())];
        e.gauge(
            "hakit_lvs_service_info",
            "A virtual service, with its scheduler and the backend holding it.",
            &[
                ("service", &sv.service),
                ("scheduler", &sv.scheduler),
                ("backend", r.backend),
            ],
            1u64,
        );
        e.gauge(
            "hakit_lvs_service_configured",
            "1 if the configuration names the service.",
            &l,
            sv.configured,
        );
        e.gauge(
            "hakit_lvs_service_in_kernel",
            "1 if the kernel's table has the service.",
            &l,
            sv.in_kernel,
        );
        e.gauge(
            "hakit_lvs_service_live_weight",
            "The sum of the kernel's weights of the service's real servers (the sorry server's aside).",
            &l,
            sv.live_weight,
        );
        if let Some(q) = sv.quorum {
            e.gauge(
                "hakit_lvs_service_quorum",
                "The live weight below which the sorry server takes the service.",
                &l,
                q,
            );
        }
        if let Some(s) = &sv.sorry {
            e.gauge(
                "hakit_lvs_sorry_in_kernel",
                "1 while the sorry server has the service.",
                &[("service", &sv.service), ("real", &s.real)],
                s.in_kernel,
            );
        }
        for rv in &sv.reals {
            let l = [("service", sv.service.as_str()), ("real", rv.real.as_str())];
            e.gauge(
                "hakit_lvs_real_info",
                "A real server of a service: its host name (as configured) and forwarding method.",
                &[
                    ("service", &sv.service),
                    ("real", &rv.real),
                    ("host", rv.host.as_deref().unwrap_or("")),
                    ("forward", rv.forward),
                ],
                1u64,
            );
            if let Some(w) = rv.weight {
                e.gauge(
                    "hakit_lvs_real_configured_weight",
                    "The real server's weight in the configuration.",
                    &l,
                    w,
                );
            }
            if let Some(w) = rv.operator_weight {
                e.gauge(
                    "hakit_lvs_real_operator_weight",
                    "The operator's weight (lvs-ctl weight, SNMP SET), which stands in for the configured one.",
                    &l,
                    w,
                );
            }
            e.gauge(
                "hakit_lvs_real_in_kernel",
                "1 if the kernel's table has the real server.",
                &l,
                rv.kernel_weight.is_some(),
            );
            if let Some(w) = rv.kernel_weight {
                e.gauge(
                    "hakit_lvs_real_kernel_weight",
                    "The kernel's weight of the real server.",
                    &l,
                    w,
                );
                if counts {
                    e.gauge(
                        "hakit_lvs_real_active_connections",
                        "The kernel's active connections to the real server.",
                        &l,
                        rv.active,
                    );
                    e.gauge(
                        "hakit_lvs_real_inactive_connections",
                        "The kernel's inactive connections to the real server.",
                        &l,
                        rv.inactive,
                    );
                }
            }
            if let Some(h) = rv.health {
                e.states(
                    "hakit_lvs_real_health",
                    "The real server's health as follow knows it: 1 for the one it has.",
                    &l,
                    &REAL_HEALTH,
                    h,
                );
            }
            if let Some(st) = rv.state {
                e.states(
                    "hakit_lvs_real_state",
                    "How follow holds the real server (in; out: quiesced, draining, removed; depool-refused; quorum): 1 for the one.",
                    &l,
                    &REAL_STATES,
                    st,
                );
            }
        }
    }
    e
}

/// Print the status (text, or JSON with `--json`).
pub fn run(args: &StatusArgs, cfg: Option<Config>, backend: &mut dyn Backend) -> Result<(), Error> {
    let kernel = backend.read().map_err(backend::Error::naming_the_capability)?;
    let live = health::load_live(&args.state);
    // A report says what it can: an unreadable weights file is named, and the table is
    // shown without operator weights rather than not at all (metrics go on too).
    let weights = super::weights::load(&super::weights::path_for(&args.state)).unwrap_or_else(|e| {
        crate::base::log::warn(&format!("operator weights not shown: {e}"));
        Weights::new()
    });
    let r = report_weighted(
        cfg.as_ref(),
        &kernel,
        live.as_ref(),
        &weights,
        backend.kind().name(),
        Stamp::now(),
    );
    if args.prometheus || args.prometheus_out.is_some() {
        return crate::base::prom::publish(&prometheus(&r), args.prometheus_out.as_deref()).map_err(Error::Prom);
    }
    let out = if args.json { json(&r) } else { text(&r) };
    crate::base::signals::write_answer(&mut std::io::stdout().lock(), out.as_bytes()).map_err(Error::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::lvs_ctl::config::{OnFailure, Real, Virtual};
    use crate::tools::lvs_ctl::model::{Fwd, Proto};

    /// A drain for the quorum is `quorum` (the HELP's word), with its end.
    #[test]
    fn out_for_the_quorum_is_quorum_however_placed() {
        let d = Dest::new("10.0.0.2".parse().unwrap(), 80);
        let until = Stamp::now();
        for (why, placement, want) in [
            (Why::Quorum, Placement::Draining { until }, "quorum"),
            (Why::Quorum, Placement::Quiesced, "quorum"),
            (
                Why::Maintenance {
                    file: "web2".into(),
                    since: until,
                },
                Placement::Draining { until },
                "draining",
            ),
        ] {
            let mut r = real_of(&d, Some("web2"), None, None);
            let note = Note::Out {
                service: key(80),
                real: "10.0.0.2:80".parse().unwrap(),
                host: "web2".into(),
                why,
                placement,
            };
            follow_health(&mut r, Some(&note));
            assert_eq!(r.state, Some(want));
            assert_eq!(r.until.is_some(), matches!(placement, Placement::Draining { .. }));
        }
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Proto::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port,
        }
    }

    fn cfg() -> Config {
        let mut s = Service::new(key(80));
        s.scheduler = "wrr".into();
        let mut reals = Vec::new();
        for (i, host) in [(2u8, "web2"), (3, "web3")] {
            let mut d = Dest::new(format!("10.0.0.{i}").parse().unwrap(), 80);
            d.fwd = Fwd::Masq;
            d.weight = i as u32;
            reals.push(Real {
                dest: d,
                host: host.into(),
            });
        }
        Config {
            backend: None,
            maintenance_dir: None,
            depool_threshold: 0.0,
            services: vec![Virtual {
                service: s,
                reals,
                check: Some("web/http".into()),
                on_failure: OnFailure::Quiesce,
                drain: None,
                quorum: 1,
                sorry: Some(Dest::new("10.0.0.9".parse().unwrap(), 80)),
                join: None,
            }],
        }
    }

    fn kernel(c: &Config) -> Table {
        let (mut t, _) = crate::tools::lvs_ctl::health::desired(c, &Default::default(), Stamp::now());
        t.services[0].dests[1].weight = 0;
        t.services[0].dests[0].active = 3;
        t.services[0].dests[0].inactive = 12;
        t.services[0].dests.push(Dest::new("10.0.0.77".parse().unwrap(), 80));
        let mut other = Service::new(ServiceKey::Fwmark { mark: 5, v6: false });
        other.dests.push(Dest::new("10.1.0.1".parse().unwrap(), 0));
        t.services.push(other);
        t
    }

    fn stamp(s: u64) -> Stamp {
        Stamp {
            mono_ns: s * 1_000_000_000,
            unix_ms: 1_795_000_000_000 + s * 1000,
        }
    }

    #[test]
    fn reports_configuration_kernel_and_followed_health() {
        let c = cfg();
        let k = kernel(&c);
        let mut h = Health::default();
        h.host_down("web/http", "web3", "CRITICAL", "refused", stamp(1));
        let w = Writer {
            pid: 4242,
            start: 1,
            since: stamp(0),
            written: stamp(1),
            boot: 0,
        };
        let live = (h, w);
        let r = report(Some(&c), &k, Some(&live), "nft", stamp(2));
        assert_eq!(r.services.len(), 2);
        let s = &r.services[0];
        assert_eq!(s.service, "tcp/192.0.2.10:80");
        assert_eq!((s.configured, s.in_kernel), (true, true));
        assert_eq!(s.live_weight, 3, "2 + 0 + the stranger's 1");
        let web2 = &s.reals[0];
        assert_eq!(
            (web2.weight, web2.kernel_weight, web2.active, web2.inactive),
            (Some(2), Some(2), 3, 12)
        );
        assert_eq!((web2.health, web2.state), (Some("up"), Some("in")));
        let web3 = &s.reals[1];
        assert_eq!((web3.health, web3.state), (Some("down"), Some("quiesced")));
        assert_eq!(web3.reason.as_deref(), Some("CRITICAL: refused"));
        assert_eq!(s.reals[2].real, "10.0.0.77:80");
        assert_eq!(s.reals[2].weight, None, "in the kernel only");
        assert_eq!(s.sorry.as_ref().map(|x| x.in_kernel), Some(false));
        assert!(!r.services[1].configured);

        let t = text(&r);
        assert!(t.starts_with("backend nft; followed by pid 4242 since "), "{t}");
        assert!(
            t.contains("TCP  192.0.2.10:80 wrr  check web/http, on failure quiesce, quorum 1, live weight 3\n"),
            "{t}"
        );
        assert!(t.contains("-> 10.0.0.3:80 (web3)"), "{t}");
        assert!(t.contains("down, quiesced since 2026-"), "{t}");
        assert!(t.contains(": CRITICAL: refused\n"), "{t}");
        assert!(t.contains("not in the configuration"), "{t}");
        assert!(t.contains("FWM  5 wlc  (not in the configuration)"), "{t}");

        let j: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(j["follower"]["pid"], 4242);
        assert_eq!(j["services"][0]["reals"][1]["health"], "down");
        assert_eq!(j["services"][0]["reals"][1]["kernel_weight"], 0);
        assert_eq!(j["services"][0]["reals"][2]["weight"], serde_json::Value::Null);

        let p = prometheus(&report(Some(&c), &k, Some(&live), "ipvs", stamp(2)))
            .render()
            .unwrap();
        let real = |r: &str| format!("{{service=\"tcp/192.0.2.10:80\",real=\"{r}\"}}");
        for line in [
            "hakit_lvs_follower_up 1\n".to_string(),
            "hakit_lvs_service_info{service=\"tcp/192.0.2.10:80\",scheduler=\"wrr\",backend=\"ipvs\"} 1\n".into(),
            "hakit_lvs_service_live_weight{service=\"tcp/192.0.2.10:80\"} 3\n".into(),
            "hakit_lvs_service_quorum{service=\"tcp/192.0.2.10:80\"} 1\n".into(),
            "hakit_lvs_sorry_in_kernel{service=\"tcp/192.0.2.10:80\",real=\"10.0.0.9:80\"} 0\n".into(),
            "hakit_lvs_service_configured{service=\"fwmark/5\"} 0\n".into(),
            format!("hakit_lvs_real_configured_weight{} 2\n", real("10.0.0.2:80")),
            format!("hakit_lvs_real_kernel_weight{} 0\n", real("10.0.0.3:80")),
            format!("hakit_lvs_real_active_connections{} 3\n", real("10.0.0.2:80")),
            format!("hakit_lvs_real_inactive_connections{} 12\n", real("10.0.0.2:80")),
            "hakit_lvs_real_health{service=\"tcp/192.0.2.10:80\",real=\"10.0.0.3:80\",state=\"down\"} 1\n".into(),
            "hakit_lvs_real_state{service=\"tcp/192.0.2.10:80\",real=\"10.0.0.3:80\",state=\"quiesced\"} 1\n".into(),
            "hakit_lvs_real_info{service=\"tcp/192.0.2.10:80\",real=\"10.0.0.3:80\",host=\"web3\",forward=\"Masq\"} 1\n".into(),
        ] {
            assert!(p.contains(&line), "{line} in\n{p}");
        }
        // A stranger of the kernel has no configured weight; nft counts no connections.
        assert!(
            !p.contains(&format!("hakit_lvs_real_configured_weight{}", real("10.0.0.77:80"))),
            "{p}"
        );
        let p = prometheus(&report(Some(&c), &k, None, "nft", stamp(2)))
            .render()
            .unwrap();
        assert!(
            !p.contains("_connections") && !p.contains("hakit_lvs_real_health"),
            "{p}"
        );
        assert!(p.contains("hakit_lvs_follower_up 0\n"), "{p}");

        // Without a follower: no health, and it says so.
        let r = report(Some(&c), &k, None, "nft", stamp(2));
        assert_eq!(r.services[0].reals[1].health, None);
        assert!(text(&r).starts_with("backend nft; no follower running: health not known\n"));
        // Without a configuration: the kernel's table alone.
        let r = report(None, &k, None, "ipvs", stamp(2));
        assert_eq!(r.services.len(), 2);
        assert!(r.services.iter().all(|s| !s.configured));
    }
}
