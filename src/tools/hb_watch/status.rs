//! `hb-watch status`: the table for people (like `cl_status`) and for scripts (JSON,
//! and an exit status that answers "is node X up?"), read without disturbing the
//! writer.

use crate::base::clock::mono_ns;
use crate::base::exit::ExitStatus;
use crate::table::{LinkState, NodeRecord, NodeState, TableReader};
use std::path::Path;

/// How long ago `then` (monotonic ns) was: `120ms`, `42s`, `never`.
pub fn age(now: u64, then: u64) -> String {
    if then == 0 {
        return "never".into();
    }
    let ms = now.saturating_sub(then) / 1_000_000;
    if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}

/// One node on one line, for the USR1 dump and the table view.
pub fn one_line(r: &NodeRecord, channels: &[String], now: u64) -> String {
    if r.is_ping() {
        return format!("{} (ping node) {}", r.name, r.state.as_str());
    }
    let mut s = format!(
        "{}{} {} status={} gen={} seq={} load={:.2}",
        r.name,
        if r.is_local() { " (local)" } else { "" },
        r.state.as_str(),
        if r.status.is_empty() { "-" } else { &r.status },
        r.generation,
        r.last_seq,
        r.load[0] as f64 / 100.0
    );
    if !r.held.is_empty() {
        s.push_str(&format!(" held={}", r.held));
    }
    if r.pings_total > 0 {
        s.push_str(&format!(" pings={}/{}", r.pings_up, r.pings_total));
    }
    if !r.is_local() {
        for (i, c) in channels.iter().enumerate() {
            let l = &r.links[i];
            s.push_str(&format!(
                " {c}={}({} lost={} dup={} rej={})",
                l.state.as_str(),
                age(now, l.last_heard_ns),
                l.lost,
                l.dup,
                l.rejected
            ));
        }
    }
    s
}

/// One node as JSON (`hb-watch status --json`, and the status page's snapshot).
pub fn json(r: &NodeRecord, channels: &[String], now: u64) -> serde_json::Value {
    let links: Vec<serde_json::Value> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let l = &r.links[i];
            serde_json::json!({
                "channel": c,
                "state": l.state.as_str(),
                "last_heard_ms_ago": if l.last_heard_ns == 0 { None } else { Some(now.saturating_sub(l.last_heard_ns) / 1_000_000) },
                "lost": l.lost, "duplicate": l.dup, "rejected": l.rejected,
            })
        })
        .collect();
    serde_json::json!({
        "node": r.name,
        "local": r.is_local(),
        "ping_node": r.is_ping(),
        "state": r.state.as_str(),
        "held": if r.held.is_empty() { vec![] } else { r.held.split(',').collect::<Vec<_>>() },
        "pings": if r.pings_total == 0 { serde_json::Value::Null } else { serde_json::json!({"reachable": r.pings_up, "configured": r.pings_total}) },
        "status": r.status,
        "generation": r.generation,
        "last_seq": r.last_seq,
        "dt_ms": r.dt_ms,
        "load": [r.load[0] as f64 / 100.0, r.load[1] as f64 / 100.0, r.load[2] as f64 / 100.0],
        "changed": crate::base::clock::rfc3339_ms(r.changed_unix_ms),
        "links": if r.is_local() || r.is_ping() { vec![] } else { links },
    })
}

/// Print the table or answer about one node; returns the exit status.
pub fn run(table: &Path, node: Option<&str>, link: Option<&str>, as_json: bool) -> ExitStatus {
    let reader = match TableReader::open(table) {
        Ok(r) => r,
        Err(e) => {
            crate::base::log::error(&format!("{e}"));
            return ExitStatus::Usage;
        }
    };
    let live = reader.writer_alive();
    let h = match reader.header() {
        Ok(h) => h,
        Err(e) => {
            crate::base::log::error(&format!("{e}"));
            return ExitStatus::Failure;
        }
    };
    let now = mono_ns();
    let (recs, torn): (Vec<_>, Vec<_>) = reader.records().into_iter().partition(|r| r.is_ok());
    let recs: Vec<NodeRecord> = recs.into_iter().flatten().collect();
    let torn: Vec<usize> = torn.into_iter().filter_map(|r| r.err()).map(|t| t.slot).collect();
    if !live {
        crate::base::log::warn(&format!("no hb-watch holds {}: what follows is stale", table.display()));
    }
    for slot in &torn {
        crate::base::log::warn(&format!(
            "{}: record {slot} is half written (its writer died while writing it); unreadable",
            table.display()
        ));
    }
    if let Some(name) = node {
        let Some(r) = recs.iter().find(|r| r.name == name) else {
            if !torn.is_empty() {
                // It may be the unreadable one: not up, as far as anyone can tell.
                crate::base::log::error(&format!("no readable record of `{name}` in {}", table.display()));
                return ExitStatus::Failure;
            }
            crate::base::log::error(&format!("no node `{name}` in {}", table.display()));
            return ExitStatus::Usage;
        };
        let up = match link {
            None => r.state == NodeState::Up,
            Some(l) => {
                let idx = h
                    .channels
                    .iter()
                    .position(|c| c == l)
                    .or_else(|| l.parse::<usize>().ok().filter(|&i| i < h.channels.len()));
                let Some(i) = idx else {
                    crate::base::log::error(&format!("no channel `{l}` (channels: {})", h.channels.join(", ")));
                    return ExitStatus::Usage;
                };
                r.is_local() || matches!(r.links[i].state, LinkState::Up | LinkState::Late)
            }
        };
        if as_json {
            println!("{}", json(r, &h.channels, now));
        } else {
            println!("{}", one_line(r, &h.channels, now));
        }
        return if up && live {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        };
    }
    if as_json {
        let v = serde_json::json!({
            "local": h.local,
            "writer_pid": if live { Some(h.writer_pid) } else { None },
            "started": crate::base::clock::rfc3339_ms(h.started_unix_ms),
            "channels": h.channels,
            "rejected_unattributed": h.unattributed_rejects,
            "nodes": recs.iter().map(|r| json(r, &h.channels, now)).collect::<Vec<_>>(),
            "unreadable_records": torn,
        });
        println!("{v}");
    } else {
        println!(
            "{:<16} {:<12} {:<10} {:>6}  {:<7} {:<20} links ({})",
            "NODE",
            "STATE",
            "STATUS",
            "LOAD",
            "PINGS",
            "HELD",
            h.channels.join(" ")
        );
        for r in &recs {
            let mut l = String::new();
            if r.is_local() {
                l.push_str("(local)");
            } else if r.is_ping() {
                l.push_str("(ping node)");
            } else {
                for (i, c) in h.channels.iter().enumerate() {
                    let k = &r.links[i];
                    l.push_str(&format!("{c}:{}/{} ", k.state.as_str(), age(now, k.last_heard_ns)));
                }
            }
            let pings = if r.pings_total > 0 {
                format!("{}/{}", r.pings_up, r.pings_total)
            } else {
                "-".into()
            };
            println!(
                "{:<16} {:<12} {:<10} {:>6.2}  {:<7} {:<20} {}",
                r.name,
                r.state.as_str(),
                if r.status.is_empty() { "-" } else { &r.status },
                r.load[0] as f64 / 100.0,
                pings,
                if r.held.is_empty() { "-" } else { &r.held },
                l.trim_end()
            );
        }
        let rej: u64 = h.unattributed_rejects.iter().sum();
        if rej > 0 {
            println!("rejected before a node could be named: {rej}");
        }
    }
    if live && torn.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}
