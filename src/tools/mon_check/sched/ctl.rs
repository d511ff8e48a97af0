//! `mon-check ctl`: requests to the running scheduler over a local socket, one JSON
//! line each way. Access is the socket file's permissions (0600, or 0660 to the
//! `socket-group`), checked again on every connection with the peer's credentials.
//!
//! The wire format is this module's own ([`Request`], [`Kind`], [`Reply`]), with
//! stable names: `{"cmd":"disable","kind":"host","names":["web3"],"for_secs":7200,
//! "reason":"disk"}`. The command line's clap types are turned into it in one place
//! (`From<&CtlRequest> for Request`), so that a change to the command line cannot
//! change what a running scheduler of another version reads.

use super::config::Config;
use super::scheduler::Msg;
use super::state::{Ack, Disabled, HostResult, State};
use crate::tools::mon_check::check::Status;
use crate::tools::mon_check::cli::{self, CtlArgs, CtlRequest};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

/// What a disable or an enable names, on the wire: `"host"`, `"service"`, `"watch"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Host,
    Service,
    Watch,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Service => "service",
            Kind::Watch => "watch",
        }
    }
}

impl From<cli::Kind> for Kind {
    fn from(k: cli::Kind) -> Kind {
        match k {
            cli::Kind::Host => Kind::Host,
            cli::Kind::Service => Kind::Service,
            cli::Kind::Watch => Kind::Watch,
        }
    }
}

/// A request, on the wire: an object with its `cmd` and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    List,
    Disable {
        kind: Kind,
        names: Vec<String>,
        for_secs: Option<u64>,
        reason: Option<String>,
    },
    Enable {
        kind: Kind,
        names: Vec<String>,
    },
    Ack {
        group: String,
        service: String,
        comment: String,
    },
    Test {
        group: String,
        service: String,
        up: bool,
    },
    Check {
        group: String,
        service: String,
    },
    Reload,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusList>,
}

impl Reply {
    pub fn ok(m: String) -> Reply {
        Reply {
            ok: true,
            message: Some(m),
            error: None,
            status: None,
        }
    }
    pub fn err(e: String) -> Reply {
        Reply {
            ok: false,
            message: None,
            error: Some(e),
            status: None,
        }
    }
    pub fn status(s: StatusList) -> Reply {
        Reply {
            ok: true,
            message: None,
            error: None,
            status: Some(s),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    pub line: String,
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub group: String,
    pub service: String,
    pub description: String,
    /// ok, failing, untested, disabled
    pub state: String,
    pub summary: String,
    pub since: Option<i64>,
    pub last_check: Option<i64>,
    pub ack: Option<Ack>,
    /// Of the current failure episode (0 when ok); absent from an older scheduler.
    #[serde(default)]
    pub consecutive_failures: u32,
    pub hosts: Vec<HostStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusList {
    pub services: Vec<ServiceStatus>,
    pub disabled: Disabled,
}

/// Everything, in one answer (one of mon's wishes).
pub fn status(cfg: &Config, st: &State) -> StatusList {
    let services = cfg
        .services
        .iter()
        .map(|svc| {
            let s = st.services.get(&svc.key);
            let disabled = st.disabled.services.contains_key(&svc.key) || st.disabled.watches.contains_key(&svc.group);
            let state = match s {
                _ if disabled => "disabled",
                None => "untested",
                Some(x) if x.last_check.is_none() => "untested",
                Some(x) if x.failing => "failing",
                Some(_) => "ok",
            };
            let hosts = cfg
                .hostgroups
                .get(&svc.group)
                .map(|hs| {
                    hs.iter()
                        .filter(|h| !svc.exclude_hosts.contains(h))
                        .map(|h| {
                            let r: Option<&HostResult> = s.and_then(|x| x.hosts.get(h));
                            HostStatus {
                                host: h.clone(),
                                status: r.map(|r| r.status),
                                line: r.map(|r| r.line.clone()).unwrap_or_default(),
                                disabled: st.disabled.hosts.contains_key(h),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            ServiceStatus {
                group: svc.group.clone(),
                service: svc.name.clone(),
                description: svc.description.clone(),
                state: state.into(),
                summary: s.map(|x| x.summary.clone()).unwrap_or_default(),
                since: s.and_then(|x| if x.failing { x.first_failure } else { x.last_success }),
                last_check: s.and_then(|x| x.last_check),
                ack: s.and_then(|x| x.ack.clone()),
                consecutive_failures: s.map_or(0, |x| x.consecutive_failures),
                hosts,
            }
        })
        .collect();
    StatusList {
        services,
        disabled: st.disabled.clone(),
    }
}

/// The listening half, kept by the scheduler; the socket file goes with it.
pub struct Listener {
    path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listen on `path` and pass every request to the scheduler on `tx`.
pub fn serve(path: &Path, group: Option<u32>, tx: Sender<Msg>) -> Result<Listener, String> {
    if UnixStream::connect(path).is_ok() {
        return Err(format!("{}: another scheduler is listening there", path.display()));
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(path);
    // Bind under a tight umask so that the socket is never open to others, not even
    // between bind() and chmod().
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    if let Some(gid) = group {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(|e| format!("{}: cannot give it to the socket group: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let me = nix::unistd::geteuid().as_raw();
    std::thread::Builder::new()
        .name("ctl".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let tx = tx.clone();
                let _ = std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || answer(conn, tx, me, group));
            }
        })
        .map_err(|e| format!("cannot start the control thread: {e}"))?;
    Ok(Listener { path: path.into() })
}

fn answer(mut conn: UnixStream, tx: Sender<Msg>, me: u32, group: Option<u32>) {
    let reply = |conn: &mut UnixStream, r: &Reply| {
        let mut line = serde_json::to_string(r).unwrap_or_default();
        line.push('\n');
        let _ = conn.write_all(line.as_bytes());
    };
    let allowed = nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials)
        .map(|c| c.uid() == 0 || c.uid() == me || group.is_some_and(|g| member(c.uid(), c.gid(), g)))
        .unwrap_or(false);
    if !allowed {
        crate::base::log::warn("control request refused: the peer has no access");
        reply(&mut conn, &Reply::err("permission denied".into()));
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let read = BufReader::new((&conn).take(64 * 1024)).read_line(&mut line);
    if read.is_err() || line.is_empty() {
        return;
    }
    let req: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => return reply(&mut conn, &Reply::err(format!("bad request: {e}"))),
    };
    let (rtx, rrx) = mpsc::channel();
    if tx.send(Msg::Ctl { req, reply: rtx }).is_err() {
        return reply(&mut conn, &Reply::err("the scheduler is stopping".into()));
    }
    match rrx.recv_timeout(Duration::from_secs(10)) {
        Ok(r) => reply(&mut conn, &r),
        Err(_) => reply(&mut conn, &Reply::err("the scheduler did not answer".into())),
    }
}

/// Whether the user is in group `g`, as its primary group or a supplementary one.
fn member(uid: u32, gid: u32, g: u32) -> bool {
    if gid == g {
        return true;
    }
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
        .map(|gs| gs.iter().any(|x| x.as_raw() == g))
        .unwrap_or(false)
}

/// The one place the command line becomes a request.
impl From<&CtlRequest> for Request {
    fn from(r: &CtlRequest) -> Request {
        match r.clone() {
            CtlRequest::List(_) => Request::List,
            CtlRequest::Disable {
                kind,
                names,
                for_,
                reason,
            } => Request::Disable {
                kind: kind.into(),
                names,
                for_secs: for_.map(|d| d.as_secs().max(1)),
                reason,
            },
            CtlRequest::Enable { kind, names } => Request::Enable {
                kind: kind.into(),
                names,
            },
            CtlRequest::Ack {
                group,
                service,
                comment,
            } => Request::Ack {
                group,
                service,
                comment: comment.join(" "),
            },
            CtlRequest::Test { group, service, up } => Request::Test { group, service, up },
            CtlRequest::Check { group, service } => Request::Check { group, service },
            CtlRequest::Reload => Request::Reload,
        }
    }
}

/// The socket a client talks to: the one given, else the configuration's, else the
/// default file's, else /run/hakit/mon.sock.
pub fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> PathBuf {
    socket
        .map(Path::to_path_buf)
        .or_else(|| config.and_then(super::config::socket_of))
        .or_else(|| super::config::socket_of(Path::new(crate::config::DEFAULT_CONFIG)))
        .unwrap_or_else(|| super::config::DEFAULT_SOCKET.into())
}

/// One request to the scheduler at `path` and its reply (with the reply's line as it
/// came): the client half, for `mon-check ctl` and lvs-ctl's status page.
pub fn ask(path: &Path, req: &Request) -> Result<(Reply, String), String> {
    let mut conn = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the scheduler at {}: {}",
            path.display(),
            crate::tools::mon_check::check::net::io_text(&e)
        )
    })?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(15)));
    let mut line = serde_json::to_string(req).unwrap_or_default();
    line.push('\n');
    conn.write_all(line.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut answer = String::new();
    let _ = BufReader::new((&conn).take(16 << 20)).read_line(&mut answer);
    match serde_json::from_str(&answer) {
        Ok(r) => Ok((r, answer)),
        Err(_) => Err(format!("{}: no answer from the scheduler", path.display())),
    }
}

/// `mon-check ctl`: 0 done, 2 refused or unreachable, 3 a usage error (`--json` with
/// `--prometheus`).
pub fn client(a: &CtlArgs, json: bool) -> Status {
    let prom = match &a.request {
        CtlRequest::List(l) if l.prometheus || l.prometheus_out.is_some() => Some(l.prometheus_out.as_deref()),
        _ => None,
    };
    if json && prom.is_some() {
        crate::base::log::error("--json and --prometheus: one output at a time");
        return Status::Unknown;
    }
    let path = socket_path(a.socket.as_deref(), a.config.as_deref());
    let (reply, answer) = match ask(&path, &Request::from(&a.request)) {
        Ok(r) => r,
        Err(e) => {
            crate::base::log::error(&e);
            return Status::Critical;
        }
    };
    if let Some(out) = prom {
        match &reply.status {
            Some(s) => {
                if let Err(e) = crate::base::prom::publish(&prometheus(s), out) {
                    crate::base::log::error(&e.to_string());
                    return Status::Critical;
                }
            }
            // Never an empty exposition for a broken answer (a refusal is said below).
            None if reply.ok => {
                crate::base::log::error(&format!("{}: the scheduler's answer has no status", path.display()));
                return Status::Critical;
            }
            None => {}
        }
    } else if json {
        println!("{}", answer.trim_end());
    } else if let Some(s) = &reply.status {
        print!("{}", render(s));
    } else if let Some(m) = &reply.message {
        println!("{m}");
    }
    if !reply.ok {
        crate::base::log::error(reply.error.as_deref().unwrap_or("refused"));
        return Status::Critical;
    }
    Status::Ok
}

/// A Unix time for people, to the second (`-` for none).
pub fn when(t: Option<i64>) -> String {
    match t {
        None => "-".into(),
        Some(t) => crate::base::clock::rfc3339_ms(t.max(0) as u64 * 1000)
            .get(..19)
            .unwrap_or("-")
            .replace('T', " "),
    }
}

const SERVICE_STATES: [&str; 4] = ["ok", "failing", "untested", "disabled"];
const HOST_STATUSES: [&str; 4] = ["ok", "warning", "critical", "unknown"];

/// The status in Prometheus' text format (`ctl list --prometheus`): times as Unix
/// timestamps, as the scheduler records them (an age would be wrong as soon as the
/// file has been lying in the collector's directory for a while).
pub fn prometheus(s: &StatusList) -> crate::base::prom::Exposition {
    let mut e = crate::base::prom::Exposition::new();
    for svc in &s.services {
        let l = [("group", svc.group.as_str()), ("service", svc.service.as_str())];
        e.states(
            "hakit_check_state",
            "A mon-check service: 1 for its state (ok, failing, untested, disabled).",
            &l,
            &SERVICE_STATES,
            &svc.state,
        );
        if let Some(t) = svc.last_check {
            e.gauge(
                "hakit_check_last_run_timestamp_seconds",
                "When the service's monitor last ran (Unix time).",
                &l,
                t as f64,
            );
        }
        if let Some(t) = svc.since {
            e.gauge(
                "hakit_check_state_since_timestamp_seconds",
                "Since when the service is failing (its first failure) or ok (its last success), Unix time.",
                &l,
                t as f64,
            );
        }
        e.gauge(
            "hakit_check_consecutive_failures",
            "Failures of the service's current failure episode (0 when ok).",
            &l,
            svc.consecutive_failures,
        );
        e.gauge(
            "hakit_check_acknowledged",
            "1 if the failing service is acknowledged (ctl ack): no more failure alerts until it recovers.",
            &l,
            svc.ack.is_some(),
        );
        for h in &svc.hosts {
            let hl = [
                ("group", svc.group.as_str()),
                ("service", svc.service.as_str()),
                ("host", h.host.as_str()),
            ];
            if let Some(st) = h.status {
                e.states(
                    "hakit_check_host_status",
                    "A host's last result for the service: 1 for its status (ok, warning, critical, unknown).",
                    &hl,
                    &HOST_STATUSES,
                    &st.name().to_ascii_lowercase(),
                );
            }
            e.gauge(
                "hakit_check_host_disabled",
                "1 if the host is disabled (ctl disable host).",
                &hl,
                h.disabled,
            );
        }
    }
    e
}

/// The status as a table a person reads at three in the morning.
pub fn render(s: &StatusList) -> String {
    let mut out = format!("{:<28} {:<9} {:<19} SUMMARY\n", "GROUP/SERVICE", "STATE", "SINCE");
    for svc in &s.services {
        let mut state = svc.state.clone();
        if svc.ack.is_some() {
            state.push_str("(ack)");
        }
        out.push_str(&format!(
            "{:<28} {:<9} {:<19} {}\n",
            format!("{}/{}", svc.group, svc.service),
            state,
            when(svc.since),
            svc.summary
        ));
        for h in &svc.hosts {
            let st = match (&h.status, h.disabled) {
                (_, true) => "disabled".to_string(),
                (Some(s), _) => s.to_string(),
                (None, _) => "-".into(),
            };
            out.push_str(&format!("    {:<24} {:<9} {}\n", h.host, st, h.line));
        }
    }
    let d = &s.disabled;
    for (kind, m) in [("host", &d.hosts), ("service", &d.services), ("watch", &d.watches)] {
        for (name, x) in m {
            out.push_str(&format!(
                "disabled {kind} {name} since {}{}{}\n",
                when(Some(x.since)),
                x.until.map(|u| format!(" until {}", when(Some(u)))).unwrap_or_default(),
                x.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::mon_check::cli::{Command, MonCheckArgs};
    use clap::Parser;

    fn wire(argv: &[&str]) -> String {
        let a = MonCheckArgs::try_parse_from([&["mon-check", "ctl"], argv].concat()).unwrap();
        let Command::Ctl(c) = a.command else { panic!("not ctl") };
        serde_json::to_string(&Request::from(&c.request)).unwrap()
    }

    /// A scheduler that answers `reply` once; `ctl list --prometheus-out` against it.
    fn list_against(reply: &str) -> (Status, std::path::PathBuf, tempfile::TempDir) {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("mon.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let reply = format!("{reply}\n");
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut req = String::new();
            BufReader::new(&c).read_line(&mut req).unwrap();
            c.write_all(reply.as_bytes()).unwrap();
        });
        let out = d.path().join("checks.prom");
        let a = MonCheckArgs::try_parse_from([
            "mon-check",
            "ctl",
            "--socket",
            sock.to_str().unwrap(),
            "list",
            "--prometheus-out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        let Command::Ctl(c) = a.command else { panic!("not ctl") };
        let st = client(&c, false);
        t.join().unwrap();
        (st, out, d)
    }

    #[test]
    fn an_answer_without_status_is_critical_and_writes_nothing() {
        let (st, out, _d) = list_against(r#"{"ok":true,"message":"reloaded"}"#);
        assert_eq!(st, Status::Critical);
        assert!(!out.exists());
        let (st, out, _d) = list_against(r#"{"ok":false,"error":"busy"}"#);
        assert_eq!(st, Status::Critical);
        assert!(!out.exists());
        let empty = StatusList {
            services: vec![],
            disabled: Disabled::default(),
        };
        let whole = format!(r#"{{"ok":true,"status":{}}}"#, serde_json::to_string(&empty).unwrap());
        let (st, out, _d) = list_against(&whole);
        assert_eq!(st, Status::Ok);
        assert!(out.exists(), "a whole answer is written");
    }

    #[test]
    fn checks_in_prometheus_format() {
        let host = |h: &str, st: Option<Status>, disabled| HostStatus {
            host: h.into(),
            status: st,
            line: String::new(),
            disabled,
        };
        let s = StatusList {
            services: vec![ServiceStatus {
                group: "web".into(),
                service: "http".into(),
                description: String::new(),
                state: "failing".into(),
                summary: "web3".into(),
                since: Some(1_795_000_000),
                last_check: Some(1_795_000_060),
                ack: Some(Ack {
                    at: 1_795_000_030,
                    comment: "on it".into(),
                }),
                consecutive_failures: 4,
                hosts: vec![
                    host("web2", Some(Status::Ok), false),
                    host("web3", Some(Status::Critical), false),
                    host("web4", None, true),
                ],
            }],
            disabled: Disabled::default(),
        };
        let t = prometheus(&s).render().unwrap();
        let svc = "group=\"web\",service=\"http\"";
        for line in [
            format!("hakit_check_state{{{svc},state=\"failing\"}} 1\n"),
            format!("hakit_check_state{{{svc},state=\"ok\"}} 0\n"),
            format!("hakit_check_last_run_timestamp_seconds{{{svc}}} 1795000060\n"),
            format!("hakit_check_state_since_timestamp_seconds{{{svc}}} 1795000000\n"),
            format!("hakit_check_consecutive_failures{{{svc}}} 4\n"),
            format!("hakit_check_acknowledged{{{svc}}} 1\n"),
            format!("hakit_check_host_status{{{svc},host=\"web3\",state=\"critical\"}} 1\n"),
            format!("hakit_check_host_status{{{svc},host=\"web2\",state=\"ok\"}} 1\n"),
            format!("hakit_check_host_disabled{{{svc},host=\"web4\"}} 1\n"),
        ] {
            assert!(t.contains(&line), "{line} in\n{t}");
        }
        assert!(!t.contains("host=\"web4\",state="), "never checked: no status\n{t}");
        // A scheduler of before consecutive_failures answers without it.
        let old: ServiceStatus = serde_json::from_str(
            r#"{"group":"g","service":"s","description":"","state":"ok","summary":"","since":null,"last_check":null,"ack":null,"hosts":[]}"#,
        )
        .unwrap();
        assert_eq!(old.consecutive_failures, 0);
    }

    /// What goes over the socket, for every request: these strings are the protocol.
    #[test]
    fn the_wire_format_is_stable() {
        for (argv, json) in [
            (&["list"][..], r#"{"cmd":"list"}"#),
            (
                &["disable", "host", "web3", "--for", "2h", "--reason", "disk"][..],
                r#"{"cmd":"disable","kind":"host","names":["web3"],"for_secs":7200,"reason":"disk"}"#,
            ),
            (
                &["disable", "service", "web", "http"][..],
                r#"{"cmd":"disable","kind":"service","names":["web","http"],"for_secs":null,"reason":null}"#,
            ),
            (
                &["enable", "watch", "web"][..],
                r#"{"cmd":"enable","kind":"watch","names":["web"]}"#,
            ),
            (
                &["ack", "web", "http", "looking", "at", "it"][..],
                r#"{"cmd":"ack","group":"web","service":"http","comment":"looking at it"}"#,
            ),
            (
                &["test", "web", "http", "--up"][..],
                r#"{"cmd":"test","group":"web","service":"http","up":true}"#,
            ),
            (
                &["check", "web", "http"][..],
                r#"{"cmd":"check","group":"web","service":"http"}"#,
            ),
            (&["reload"][..], r#"{"cmd":"reload"}"#),
        ] {
            assert_eq!(wire(argv), json, "{argv:?}");
            let back: Request = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }
}
