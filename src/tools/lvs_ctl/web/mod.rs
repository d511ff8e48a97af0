//! `lvs-ctl cgi`: the cluster's status page, a CGI program for any web server.
//!
//! No daemon of our own: the web server (lighttpd, Apache, nginx with fcgiwrap) does
//! TLS and authentication, better than we would, and starts this for each request; it
//! holds no state between requests. GET shows a [`snapshot`] as HTML (or `?format=json`),
//! POST takes one action: drain or enable a real server — a file named `IP:PORT` in
//! the lvs-ctl section's `maintenance-dir`, which a running `lvs-ctl follow` acts on
//! as the service's `on-failure`/`drain` say — or acknowledge a mon-check alert (its
//! control socket's `ack`). An action needs the web server's user (REMOTE_USER), the
//! page's CSRF token ([`csrf`]) and an Origin (or Referer) naming this Host; refused
//! otherwise with 403 and the reason, and nothing changes. After it, 303 back to the
//! page with the result in one line.

pub mod csrf;
pub mod render;
pub mod request;
mod settings;
pub mod snapshot;

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::{fsio, log};
use crate::tools::lvs_ctl::cli::CgiArgs;
use crate::tools::lvs_ctl::health;
use crate::tools::mon_check::sched::ctl;
use request::{Request, Response};
use settings::Settings;
use std::io::Write;
use std::net::SocketAddr;

/// Where the CSRF secret is kept unless `--secret` says.
pub const DEFAULT_SECRET: &str = "/var/lib/hakit/cgi-secret";

/// The one CGI request, answered on stdout. 0 when an answer was written (a refusal
/// is an answer), 2 for a configuration error (answered with 500), 1 if stdout failed.
pub fn main(a: &CgiArgs) -> ExitStatus {
    let req = Request::from_env();
    let (resp, status) = match settings::resolve(a) {
        Ok(s) => (answer(&s, &req, &mut std::io::stdin().lock()), ExitStatus::Success),
        Err(e) => {
            log::error(&e.to_string());
            (Response::text(500, &format!("lvs-ctl cgi: {e}")), e.exit_status())
        }
    };
    let mut out = std::io::stdout().lock();
    match out
        .write_all(&resp.to_bytes(req.method == "HEAD"))
        .and_then(|()| out.flush())
    {
        Ok(()) => status,
        Err(e) => {
            log::error(&format!("stdout: {e}"));
            ExitStatus::Failure
        }
    }
}

fn now_secs() -> u64 {
    crate::base::clock::unix_ms() / 1000
}

/// The answer to one request.
pub fn answer(s: &Settings, req: &Request, body: &mut dyn std::io::Read) -> Response {
    match req.method.as_str() {
        "GET" | "HEAD" => show(s, req),
        "POST" => match act(s, req, body) {
            Ok(result) => Response::see_other(&req.script, &result),
            Err((code, why)) => {
                log::warn(&format!(
                    "refused a POST from {}: {why}",
                    req.user.as_deref().unwrap_or("an unauthenticated user")
                ));
                Response::text(code, &format!("refused: {why}"))
            }
        },
        m => Response::text(405, &format!("method {m}: only GET and POST")).header("Allow", "GET, HEAD, POST"),
    }
}

fn show(s: &Settings, req: &Request) -> Response {
    let snap = snapshot::gather(s, req.user.as_deref());
    // A token only for an authenticated user: without one, no action is possible.
    let (token, secret_error) = match &req.user {
        Some(u) => match csrf::load_or_create(&s.secret) {
            Ok(k) => (Some(csrf::token(&k, u, now_secs())), None),
            Err(e) => {
                log::error(&e);
                (None, Some(e))
            }
        },
        None => (None, None),
    };
    let forms = render::Forms {
        script: &req.script,
        token: token.as_deref(),
    };
    if req.query("format") == Some("json") {
        return Response::new(200, "application/json", render::json(&snap, &forms));
    }
    // The result line only when the page's own redirect brought the browser here (its
    // Referer is this site): a link from elsewhere cannot put words on the page.
    let result = req
        .query("result")
        .filter(|_| req.same_origin().is_ok())
        .map(|r| r.chars().take(300).collect::<String>())
        .or(secret_error.map(|e| format!("no actions: {e}")));
    Response::new(
        200,
        "text/html; charset=utf-8",
        render::page(&snap, &forms, result.as_deref()),
    )
    .header("Content-Security-Policy", &render::csp())
    .header("X-Frame-Options", "DENY")
    .header("Referrer-Policy", "same-origin")
}

type Refusal = (u16, String);

/// The checks, then the action; Ok(the result line).
fn act(s: &Settings, req: &Request, body: &mut dyn std::io::Read) -> Result<String, Refusal> {
    let Some(user) = req.user.as_deref() else {
        return Err((
            403,
            "no authenticated user: actions need the web server's authentication (REMOTE_USER)".into(),
        ));
    };
    req.same_origin()
        .map_err(|e| (403, format!("cross-site request: {e}")))?;
    let form = req.read_body(body)?;
    let get = |k: &str| Request::param(&form, k);
    let secret = csrf::load_or_create(&s.secret).map_err(|e| (500, e))?;
    match get("token") {
        None => return Err((403, "no CSRF token: use the page's own buttons".into())),
        Some(t) if !csrf::verify(&secret, user, t, now_secs()) => {
            return Err((403, "the CSRF token is not valid (or too old): reload the page".into()))
        }
        Some(_) => {}
    }
    match get("action") {
        Some(a @ ("drain" | "enable")) => {
            let real = get("real").ok_or((400, "no real server named".to_string()))?;
            maintenance(s, user, real, a == "drain")
        }
        Some("ack") => {
            let (Some(group), Some(service)) = (get("group"), get("service")) else {
                return Err((400, "ack needs group and service".into()));
            };
            let r = ctl::Request::Ack {
                group: group.into(),
                service: service.into(),
                comment: format!("by {user} on the status page"),
            };
            match ctl::ask(&s.mon_socket, &r) {
                Ok((reply, _)) if reply.ok => Ok(reply.message.unwrap_or_else(|| "acknowledged".into())),
                Ok((reply, _)) => Ok(format!(
                    "not acknowledged: {}",
                    reply.error.unwrap_or_else(|| "refused".into())
                )),
                Err(e) => Ok(format!("not acknowledged: {e}")),
            }
        }
        Some(a) => Err((400, format!("no action {a:?}: drain, enable, ack"))),
        None => Err((400, "no action".into())),
    }
}

/// Drain (a maintenance file `IP:PORT`) or enable (the maintenance files naming the
/// real server with its port removed) a real server of the configuration.
fn maintenance(s: &Settings, user: &str, real: &str, drain: bool) -> Result<String, Refusal> {
    let cfg = s
        .lvs
        .as_ref()
        .ok_or((400, "no configuration: no real server to drain".to_string()))?;
    let dir = cfg
        .maintenance_dir
        .as_ref()
        .ok_or((400, "the lvs-ctl section has no maintenance-dir".to_string()))?;
    let addr: SocketAddr = real.parse().map_err(|_| (400, format!("{real:?} is not IP:PORT")))?;
    let r = cfg
        .services
        .iter()
        .flat_map(|v| &v.reals)
        .find(|r| SocketAddr::new(r.dest.addr, r.dest.port) == addr)
        .ok_or((400, format!("{addr} is no real server of the configuration")))?;
    // ldirectord's first name for it, as `maintenance_names` lists them.
    let names = health::maintenance_names(r);
    if drain {
        let path = dir.join(&names[0]);
        let note = format!(
            "drained by {user} on the status page at {}\n",
            crate::base::clock::rfc3339_ms(crate::base::clock::unix_ms())
        );
        return match fsio::create_once(&path, note.as_bytes(), 0o644) {
            Ok(true) => {
                log::info(&format!("{addr} drained by {user}: {}", path.display()));
                Ok(format!("{addr} drained: a running follow takes it out"))
            }
            Ok(false) => Ok(format!("{addr} was already in maintenance")),
            Err(e) => Err((500, e)),
        };
    }
    // Only names a maintenance file can have: a host name of the configuration with a
    // slash in it must not reach outside the directory. Only this port's: a file that
    // names the host alone takes out all its services, which this one button must not
    // put back (it is named instead).
    let port = format!(":{}", addr.port());
    let (mine, whole): (Vec<&String>, Vec<&String>) = names
        .iter()
        .filter(|n| health::is_maintenance_name(n))
        .partition(|n| n.ends_with(&port));
    let mut removed = 0;
    for n in mine {
        let path = dir.join(n);
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err((500, format!("{}: {e}", path.display()))),
        }
    }
    log::info(&format!(
        "{addr} enabled by {user} ({removed} maintenance files removed)"
    ));
    let held: Vec<&str> = whole
        .iter()
        .filter(|n| dir.join(n).exists())
        .map(|n| n.as_str())
        .collect();
    Ok(match (removed, held.is_empty()) {
        (_, false) => format!(
            "{addr}: still in maintenance by {} (a file for every port of the host; remove it by hand)",
            held.join(", ")
        ),
        (0, true) => format!("{addr} was not in maintenance"),
        _ => format!("{addr} enabled: a running follow puts it back"),
    })
}

#[cfg(test)]
mod tests;
