//! One place where a check's command-line arguments become checked settings — for a
//! one-shot run, for `--mon`, and for the scheduler's built-in monitors, which are
//! written with the same flags.

use super::net::Family;
use super::{dns, exec, http, icmp, smtp, tcp, tls, Outcome, Status, Thresholds};
use crate::tools::mon_check::cli::{
    Command, MonCheckArgs, RedirectArg, StateArg, StyleArg, TimeThresholds, TimeoutState, VerifyArgs,
};
use clap::Parser;
use std::time::Duration;

/// A check ready to run against a host, and the state a timeout is reported as.
#[derive(Debug, Clone)]
pub struct Check {
    pub probe: Probe,
    /// CRITICAL unless `--timeout-state` says otherwise (the plugins' `-t N:STATE`).
    pub on_timeout: Status,
}

/// What a check does.
#[derive(Debug, Clone)]
pub enum Probe {
    Tcp(tcp::Settings),
    Udp(tcp::Settings),
    Http(Box<http::Settings>),
    Tls(tls::Settings),
    Icmp(icmp::Settings),
    Dns(dns::Settings),
    Smtp(smtp::Settings),
    Exec(exec::Settings),
}

/// The names of the built-in checks, as a scheduler's `monitor` may start with them.
pub const BUILT_IN: &[&str] = &["tcp", "udp", "http", "https", "tls", "icmp", "ping", "dns", "smtp"];

fn state(s: StateArg) -> Status {
    match s {
        StateArg::Ok => Status::Ok,
        StateArg::Warn => Status::Warning,
        StateArg::Crit => Status::Critical,
    }
}

fn thresholds(t: &TimeThresholds) -> Thresholds {
    Thresholds {
        warn: t.warning.clone(),
        crit: t.critical.clone(),
    }
}

impl Check {
    /// The settings of a check subcommand, and the hosts it names; None for the
    /// subcommands that are not checks.
    pub fn from_command(c: &Command) -> Result<Option<(Check, Vec<String>)>, String> {
        let on_timeout = match c {
            Command::Tcp(a) | Command::Udp(a) => a.target.bounds.timeout_state,
            Command::Http(a) | Command::Https(a) => a.target.bounds.timeout_state,
            Command::Tls(a) => a.target.bounds.timeout_state,
            Command::Icmp(a) => a.target.bounds.timeout_state,
            Command::Smtp(a) => a.target.bounds.timeout_state,
            Command::Dns(a) => a.bounds.timeout_state,
            Command::Exec(a) => a.timeout_state,
            Command::Run(_) | Command::Ctl(_) | Command::Import(_) => return Ok(None),
        };
        let on_timeout = match on_timeout {
            TimeoutState::Ok => Status::Ok,
            TimeoutState::Warning => Status::Warning,
            TimeoutState::Critical => Status::Critical,
            TimeoutState::Unknown => Status::Unknown,
        };
        let (probe, hosts) = match c {
            Command::Tcp(a) | Command::Udp(a) => {
                let esc = |s: &String| if a.escape { super::net::unescape(s) } else { s.clone() };
                let s = tcp::Settings {
                    port: a.port,
                    send: a.send.as_ref().map(esc),
                    expect: a.expect.iter().map(esc).collect(),
                    refuse: state(a.refuse),
                    mismatch: state(a.mismatch),
                    max_bytes: a.maxbytes.max(1),
                    thresholds: thresholds(&a.thresholds),
                    timeout: a.target.bounds.timeout,
                    family: Family::from_flags(a.target.bounds.ipv4, a.target.bounds.ipv6),
                };
                let hosts = hosts(&a.target.host, &a.target.hosts);
                if matches!(c, Command::Udp(_)) {
                    if s.send.is_none() {
                        return Err("udp needs a string to send (-s)".into());
                    }
                    (Probe::Udp(s), hosts)
                } else {
                    (Probe::Tcp(s), hosts)
                }
            }
            Command::Http(a) | Command::Https(a) => {
                let cert_days = match &a.certificate {
                    None => None,
                    Some(t) => Some(cert_days(t)?),
                };
                let regex = match &a.regex {
                    None => None,
                    Some(r) => Some(regex::Regex::new(r).map_err(|e| format!("bad regex `{r}`: {e}"))?),
                };
                for h in &a.header {
                    if !h.contains(':') || h.contains(['\r', '\n']) {
                        return Err(format!("`{h}` is not a header (write `Name: value`)"));
                    }
                }
                if !a.url.starts_with('/') || a.url.contains([' ', '\r', '\n']) {
                    return Err(format!("`{}` is not a path (it starts with /)", a.url));
                }
                if !a.method.bytes().all(|b| b.is_ascii_uppercase()) || a.method.is_empty() {
                    return Err(format!("`{}` is not an HTTP method", a.method));
                }
                let s = http::Settings {
                    tls: a.ssl || matches!(c, Command::Https(_)),
                    port: a.port,
                    ip: a.ip.clone(),
                    vhost: a.vhost.clone(),
                    path: a.url.clone(),
                    method: a.method.clone(),
                    expect: a.expect.clone(),
                    string: a.string.clone(),
                    regex,
                    invert_regex: a.invert_regex,
                    cert_days,
                    continue_after_cert: a.continue_after_certificate,
                    verify: verify(&a.verify),
                    onredirect: match a.onredirect {
                        RedirectArg::Ok => http::OnRedirect::Ok,
                        RedirectArg::Warning => http::OnRedirect::Warning,
                        RedirectArg::Critical => http::OnRedirect::Critical,
                        RedirectArg::Follow => http::OnRedirect::Follow,
                    },
                    headers: a.header.clone(),
                    auth: a.authorization.clone(),
                    max_body: a.max_body.max(1),
                    thresholds: thresholds(&a.thresholds),
                    timeout: a.target.bounds.timeout,
                    family: Family::from_flags(a.target.bounds.ipv4, a.target.bounds.ipv6),
                };
                if s.cert_days.is_some() && !s.tls {
                    return Err("-C needs TLS (use https or -S)".into());
                }
                (Probe::Http(Box::new(s)), hosts(&a.target.host, &a.target.hosts))
            }
            Command::Tls(a) => (
                Probe::Tls(tls::Settings {
                    port: a.port,
                    sni: a.sni.clone(),
                    cert_days: a.certificate.as_deref().map(cert_days).transpose()?,
                    verify: verify(&a.verify),
                    thresholds: thresholds(&a.thresholds),
                    timeout: a.target.bounds.timeout,
                    family: Family::from_flags(a.target.bounds.ipv4, a.target.bounds.ipv6),
                }),
                hosts(&a.target.host, &a.target.hosts),
            ),
            Command::Icmp(a) => (
                Probe::Icmp(icmp::Settings {
                    packets: a.packets,
                    interval: a.interval,
                    warn: a.warning,
                    crit: a.critical,
                    timeout: a.target.bounds.timeout,
                    family: Family::from_flags(a.target.bounds.ipv4, a.target.bounds.ipv6),
                }),
                hosts(&a.target.host, &a.target.hosts),
            ),
            Command::Dns(a) => {
                // No server: the one-shot asks resolv.conf's first (see report); in a
                // scheduler the servers are the watch's hosts.
                let servers = hosts(&a.server, &a.servers);
                (
                    Probe::Dns(dns::Settings {
                        name: a.name.clone(),
                        qtype: dns::QType::parse(&a.querytype)?,
                        expect: a.expect.clone(),
                        port: a.port,
                        thresholds: thresholds(&a.thresholds),
                        timeout: a.bounds.timeout,
                        family: Family::from_flags(a.bounds.ipv4, a.bounds.ipv6),
                    }),
                    servers,
                )
            }
            Command::Smtp(a) => (
                Probe::Smtp(smtp::Settings {
                    port: a.port,
                    expect: a.expect.clone(),
                    helo: a.helo.clone().unwrap_or_else(|| {
                        nix::unistd::gethostname()
                            .ok()
                            .and_then(|h| h.into_string().ok())
                            .unwrap_or_else(|| "localhost".into())
                    }),
                    starttls: a.starttls || a.certificate.is_some() || a.verify.verify || a.verify.ca_file.is_some(),
                    cert_days: a.certificate.as_deref().map(cert_days).transpose()?,
                    verify: verify(&a.verify),
                    sni: a.sni.clone(),
                    thresholds: thresholds(&a.thresholds),
                    timeout: a.target.bounds.timeout,
                    family: Family::from_flags(a.target.bounds.ipv4, a.target.bounds.ipv6),
                }),
                hosts(&a.target.host, &a.target.hosts),
            ),
            Command::Exec(a) => {
                // mon appends the hosts after everything configured: a `--hosts` word
                // ends the program's arguments and starts the hosts.
                let (argv, after) = match a.command.iter().position(|w| w == "--hosts") {
                    Some(i) => (a.command[..i].to_vec(), a.command[i + 1..].to_vec()),
                    None => (a.command.clone(), Vec::new()),
                };
                if argv.is_empty() {
                    return Err("exec needs a program to run".into());
                }
                (
                    Probe::Exec(exec::Settings {
                        argv,
                        style: match a.style {
                            StyleArg::Plugin => exec::Style::Plugin,
                            StyleArg::Mon => exec::Style::Mon,
                        },
                        timeout: a.timeout,
                        max_output: a.max_output,
                    }),
                    hosts(&a.host, &after),
                )
            }
            Command::Run(_) | Command::Ctl(_) | Command::Import(_) => return Ok(None),
        };
        Ok(Some((Check { probe, on_timeout }, hosts)))
    }

    /// A built-in monitor as a scheduler configuration writes it: `tcp -p 80 -t 5`.
    pub fn from_words(words: &[String]) -> Result<Check, String> {
        let argv = std::iter::once("mon-check".to_string()).chain(words.iter().cloned());
        let args = MonCheckArgs::try_parse_from(argv).map_err(|e| {
            let text = e.to_string();
            let line = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            format!("monitor `{}`: {line}", words.join(" "))
        })?;
        match Check::from_command(&args.command)? {
            Some((c, hosts)) if hosts.is_empty() => Ok(c),
            Some(_) => Err(format!(
                "monitor `{}`: the hosts come from the watch's host group, not the monitor",
                words.join(" ")
            )),
            None => Err(format!("monitor `{}` is not a check", words.join(" "))),
        }
    }

    /// The label and separator of its plugin line (`TCP OK - ...`, `HTTP OK: ...`).
    pub fn label(&self) -> (&'static str, &'static str) {
        match &self.probe {
            Probe::Tcp(_) => ("TCP", " - "),
            Probe::Udp(_) => ("UDP", " - "),
            Probe::Http(h) if h.cert_days.is_some() => ("SSL", " - "),
            Probe::Http(_) => ("HTTP", ": "),
            Probe::Tls(_) => ("TLS", " - "),
            Probe::Icmp(_) => ("PING", " - "),
            Probe::Dns(_) => ("DNS", ": "),
            Probe::Smtp(_) => ("SMTP", " - "),
            Probe::Exec(_) => ("EXEC", " - "),
        }
    }

    pub fn timeout(&self) -> Duration {
        match &self.probe {
            Probe::Tcp(s) | Probe::Udp(s) => s.timeout,
            Probe::Http(s) => s.timeout,
            Probe::Tls(s) => s.timeout,
            Probe::Icmp(s) => s.timeout,
            Probe::Dns(s) => s.timeout,
            Probe::Smtp(s) => s.timeout,
            Probe::Exec(s) => s.timeout,
        }
    }

    /// Run against one host (for exec: with `{host}` replaced, or the host appended
    /// when there is one).
    pub fn run(&self, host: &str) -> Outcome {
        let mut o = self.probe_run(host);
        if o.timed_out {
            o.status = self.on_timeout;
        }
        o
    }

    fn probe_run(&self, host: &str) -> Outcome {
        match &self.probe {
            Probe::Tcp(s) => tcp::run_tcp(s, host),
            Probe::Udp(s) => tcp::run_udp(s, host),
            Probe::Http(s) => http::run(s, host),
            Probe::Tls(s) => tls::run(s, host),
            Probe::Icmp(s) => icmp::run(s, host),
            Probe::Dns(s) => dns::run(s, host),
            Probe::Smtp(s) => smtp::run(s, host),
            Probe::Exec(s) => {
                let mut s = s.clone();
                if !host.is_empty() {
                    if s.argv.iter().any(|a| a.contains("{host}")) {
                        s.argv = s.argv.iter().map(|a| a.replace("{host}", host)).collect();
                    } else {
                        s.argv.push(host.to_string());
                    }
                }
                exec::run(&s)
            }
        }
    }
}

fn verify(v: &VerifyArgs) -> tls::Verify {
    match (&v.ca_file, v.verify) {
        (Some(f), _) => tls::Verify::Roots(f.clone()),
        (None, true) => tls::Verify::Roots(tls::SYSTEM_ROOTS.into()),
        (None, false) => tls::Verify::No,
    }
}

fn hosts(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().chain(b.iter()).cloned().collect()
}

/// `30,14` or `30`.
fn cert_days(t: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{t}` is not DAYS[,DAYS]");
    let mut it = t.split(',').map(|d| d.trim().parse::<u32>().map_err(|_| bad()));
    let warn = it.next().ok_or_else(bad)??;
    let crit = it.next().transpose()?.unwrap_or(warn);
    if it.next().is_some() {
        return Err(bad());
    }
    Ok((warn, crit))
}
