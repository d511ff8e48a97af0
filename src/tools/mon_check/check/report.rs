//! The two ways a check is run from the command line and reported: once, as a
//! monitoring plugin, and over many hosts, as a mon monitor.

use super::many;
use super::spec::{Check, Probe};
use super::{Outcome, Status};
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

#[derive(Serialize)]
struct JsonResult<'a> {
    check: &'a str,
    host: &'a str,
    code: i32,
    line: String,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

fn json(check: &Check, host: &str, o: &Outcome) -> String {
    let (label, sep) = check.label();
    serde_json::to_string(&JsonResult {
        check: label,
        host,
        code: o.status.code(),
        line: o.plugin_line(label, sep),
        outcome: o,
    })
    .unwrap_or_default()
}

fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// A guard for the whole process: whatever happens inside a check, the plugin answers
/// by its timeout (and a grace second), as plugins do with alarm().
fn watchdog(label: &'static str, timeout: Duration, state: Status) {
    let _ = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
        std::thread::sleep(timeout + Duration::from_secs(1));
        print(&format!(
            "{label} {state} - Plugin timed out after {} seconds\n",
            super::fmt_secs(timeout)
        ));
        std::process::exit(state.code());
    });
}

/// Run once against one host and print the plugin line (and detail with -v).
pub fn one_shot(check: &Check, hosts: &[String], json_out: bool, verbose: u8) -> Status {
    let (label, sep) = check.label();
    let resolver;
    let host = match (&check.probe, hosts) {
        (Probe::Exec(_), []) => "",
        // A DNS check without a server asks the system's first resolver.
        (Probe::Dns(_), []) => match super::dns::default_server() {
            Some(s) => {
                resolver = s;
                resolver.as_str()
            }
            None => return usage(label, "no server given (-s) and none in /etc/resolv.conf"),
        },
        (_, [h]) => h.as_str(),
        (_, []) => return usage(label, "no host given (-H HOST)"),
        _ => return usage(label, "more than one host: use --mon to check several"),
    };
    watchdog(label, check.timeout(), check.on_timeout);
    let o = check.run(host);
    if json_out {
        print(&format!("{}\n", json(check, host, &o)));
        return o.status;
    }
    let mut text = match &o.verbatim {
        Some(v) if verbose > 0 => v.trim_end().to_string(),
        _ => o.plugin_line(label, sep),
    };
    if verbose > 0 && o.verbatim.is_none() {
        for d in &o.detail {
            text.push('\n');
            text.push_str(d);
        }
    }
    print(&format!("{text}\n"));
    o.status
}

/// mon's contract: every host at once, the failed ones on the first line, one line of
/// detail for each after it, exit nonzero on any failure.
pub fn mon(check: &Check, hosts: &[String], json_out: bool, verbose: u8) -> Status {
    let (label, sep) = check.label();
    if hosts.is_empty() {
        return usage(label, "no hosts given");
    }
    let outcomes = many::run_all(check, hosts, 4096);
    let worst = many::worst(&outcomes);
    if json_out {
        let all: Vec<serde_json::Value> = hosts
            .iter()
            .zip(&outcomes)
            .filter_map(|(h, o)| serde_json::from_str(&json(check, h, o)).ok())
            .collect();
        print(&format!("{}\n", serde_json::Value::Array(all)));
        return worst;
    }
    let failed: Vec<&str> = hosts
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.status != Status::Ok)
        .map(|(h, _)| h.as_str())
        .collect();
    if failed.is_empty() && verbose == 0 {
        return Status::Ok;
    }
    let mut text = failed.join(" ");
    text.push('\n');
    for (h, o) in hosts.iter().zip(&outcomes) {
        if o.status != Status::Ok || verbose > 0 {
            text.push_str(&format!("{h}: {}\n", o.plugin_line(label, sep)));
            for d in &o.detail {
                text.push_str(&format!("{h}:   {d}\n"));
            }
        }
    }
    print(&text);
    worst
}

fn usage(label: &str, why: &str) -> Status {
    print(&format!("{label} UNKNOWN - {why}\n"));
    Status::Unknown
}
