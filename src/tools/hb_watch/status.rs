//! `hb-watch status`: the table for people (like `cl_status`) and for scripts (JSON,
//! and an exit status that answers "is node X up?"), read without disturbing the
//! writer.

use crate::base::clock::mono_ns;
use crate::base::exit::ExitStatus;
use crate::base::prom::Exposition;
use crate::table::{Header, LinkState, NodeRecord, NodeState, TableReader};
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

/// The table as read once: whether a writer holds it, its header, the readable
/// records and the slots of the torn ones (each warned about, as is a stale table).
struct Snapshot {
    live: bool,
    h: Header,
    recs: Vec<NodeRecord>,
    torn: Vec<usize>,
    now: u64,
}

fn snapshot(table: &Path) -> Result<Snapshot, ExitStatus> {
    let reader = TableReader::open(table).map_err(|e| {
        crate::base::log::error(&format!("{e}"));
        ExitStatus::Usage
    })?;
    let live = reader.writer_alive();
    let h = reader.header().map_err(|e| {
        crate::base::log::error(&format!("{e}"));
        ExitStatus::Failure
    })?;
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
    Ok(Snapshot {
        live,
        h,
        recs,
        torn,
        now,
    })
}

/// Print the table or answer about one node; returns the exit status.
pub fn run(table: &Path, node: Option<&str>, link: Option<&str>, as_json: bool) -> ExitStatus {
    let Snapshot {
        live,
        h,
        recs,
        torn,
        now,
    } = match snapshot(table) {
        Ok(s) => s,
        Err(st) => return st,
    };
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

const NODE_STATES: [&str; 4] = ["unknown", "up", "unreachable", "dead"];
const LINK_STATES: [&str; 4] = ["unknown", "up", "late", "dead"];

fn age_seconds(now: u64, then: u64) -> f64 {
    now.saturating_sub(then) as f64 / 1e9
}

/// What a node says it holds, one address (or resource) a word, without pair.sh's and
/// director.sh's `@EPOCH.RANK`; the table keeps 40 bytes of `held` and marks a longer
/// one's cut with a final `+`: that last word is left out rather than shown wrong.
pub fn held_words(held: &str) -> Vec<&str> {
    let mut words: Vec<&str> = held.split(',').collect();
    if held.ends_with('+') {
        words.pop();
    }
    let mut out: Vec<&str> = Vec::new();
    for w in words {
        let a = w.split('@').next().unwrap_or("");
        if !a.is_empty() && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The table in Prometheus' text format: only what the table holds (restarts, for
/// one, are events, not kept in it).
pub fn prometheus(live: bool, h: &Header, recs: &[NodeRecord], torn: usize, now: u64) -> Exposition {
    let mut e = Exposition::new();
    e.gauge(
        "hakit_table_writer_up",
        "1 while an hb-watch holds the Active Stations Table; 0: the rest is stale.",
        &[],
        live,
    );
    if h.started_unix_ms > 0 {
        e.gauge(
            "hakit_table_started_timestamp_seconds",
            "When the table's writer started (Unix time).",
            &[],
            h.started_unix_ms as f64 / 1000.0,
        );
    }
    e.gauge(
        "hakit_table_unreadable_records",
        "Records left half written by a writer that died while writing them.",
        &[],
        torn,
    );
    for (i, c) in h.channels.iter().enumerate() {
        e.counter(
            "hakit_channel_rejected_unnamed_total",
            "Packets a channel rejected before a node could be named (not a message, no valid source).",
            &[("channel", c)],
            h.unattributed_rejects.get(i).copied().unwrap_or(0),
        );
    }
    for r in recs.iter().filter(|r| r.is_ping()) {
        let l = [("ping", r.name.as_str())];
        e.states(
            "hakit_ping_node_state",
            "A ping node of this node, as hb-watch pings it: 1 for its state.",
            &l,
            &["unknown", "up", "dead"],
            r.state.as_str(),
        );
    }
    for r in recs.iter().filter(|r| !r.is_ping()) {
        let l = [("node", r.name.as_str())];
        e.states(
            "hakit_node_state",
            "A cluster node's state: 1 for the one it is in.",
            &l,
            &NODE_STATES,
            r.state.as_str(),
        );
        e.gauge(
            "hakit_node_info",
            "A cluster node: whether it is this one (local), the status it announces (st).",
            &[
                ("node", &r.name),
                ("local", if r.is_local() { "true" } else { "false" }),
                ("status", &r.status),
            ],
            1u64,
        );
        if r.changed_unix_ms > 0 {
            e.gauge(
                "hakit_node_state_changed_timestamp_seconds",
                "When the node's state last changed (Unix time).",
                &l,
                r.changed_unix_ms as f64 / 1000.0,
            );
        }
        // What a node announces is known only once it was heard.
        if r.generation != 0 {
            e.gauge(
                "hakit_node_generation",
                "The generation the node announces (bumped at each of its starts).",
                &l,
                r.generation,
            );
            for (name, help, v) in [
                (
                    "hakit_node_load1",
                    "The node's 1-minute load average, as it announces it.",
                    r.load[0],
                ),
                (
                    "hakit_node_load5",
                    "The node's 5-minute load average, as it announces it.",
                    r.load[1],
                ),
                (
                    "hakit_node_load15",
                    "The node's 15-minute load average, as it announces it.",
                    r.load[2],
                ),
            ] {
                e.gauge(name, help, &l, v as f64 / 100.0);
            }
        }
        if r.dt_ms > 0 {
            e.gauge(
                "hakit_node_deadtime_seconds",
                "The deadtime the node announces (dt).",
                &l,
                r.dt_ms as f64 / 1000.0,
            );
        }
        if r.pings_total > 0 {
            e.gauge(
                "hakit_node_ping_nodes",
                "Ping nodes the node has configured.",
                &l,
                r.pings_total,
            );
            e.gauge(
                "hakit_node_ping_nodes_reachable",
                "Ping nodes the node reaches (the local node's as measured, a peer's as announced).",
                &l,
                r.pings_up,
            );
        }
        for a in held_words(&r.held) {
            e.gauge(
                "hakit_node_holds",
                "What the node says it holds (held), one series an address or resource.",
                &[("node", &r.name), ("address", a)],
                1u64,
            );
        }
        if r.is_local() {
            continue;
        }
        let heard = r
            .links
            .iter()
            .take(h.channels.len())
            .map(|k| k.last_heard_ns)
            .filter(|&t| t != 0)
            .max();
        if let Some(t) = heard {
            e.gauge(
                "hakit_node_last_heard_age_seconds",
                "Seconds since the node was last heard on any channel.",
                &l,
                age_seconds(now, t),
            );
        }
        for (i, c) in h.channels.iter().enumerate() {
            let k = &r.links[i];
            let l = [("node", r.name.as_str()), ("channel", c.as_str())];
            e.states(
                "hakit_link_state",
                "The link to a node on a channel: 1 for its state (late: after warntime, dead: after deadtime).",
                &l,
                &LINK_STATES,
                k.state.as_str(),
            );
            if k.last_heard_ns != 0 {
                e.gauge(
                    "hakit_link_last_heard_age_seconds",
                    "Seconds since the node was last heard on the channel.",
                    &l,
                    age_seconds(now, k.last_heard_ns),
                );
            }
            e.counter(
                "hakit_link_messages_lost_total",
                "Messages of the node missed on the channel (gaps in its sequence).",
                &l,
                k.lost,
            );
            e.counter(
                "hakit_link_messages_duplicate_total",
                "Duplicate or replayed messages of the node refused on the channel.",
                &l,
                k.dup,
            );
            e.counter(
                "hakit_link_messages_rejected_total",
                "Messages naming the node refused on the channel (bad signature, bad form).",
                &l,
                k.rejected,
            );
        }
    }
    e
}

/// `hb-watch status --prometheus`: the table on stdout, or written atomically to
/// `out`; 0 when a live writer holds a whole table, else 1 (written all the same, with
/// hakit_table_writer_up 0), 2 no table.
pub fn run_prometheus(table: &Path, out: Option<&Path>) -> ExitStatus {
    let s = match snapshot(table) {
        Ok(s) => s,
        Err(st) => return st,
    };
    let e = prometheus(s.live, &s.h, &s.recs, s.torn.len(), s.now);
    if let Err(err) = crate::base::prom::publish(&e, out) {
        return crate::base::exit::report(&err);
    }
    if s.live && s.torn.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{LinkRecord, FLAG_LOCAL, FLAG_PING, HELD_LEN};

    /// `held` as the table stores and gives it back.
    fn stored_held(held: &str) -> String {
        let rec = NodeRecord {
            held: held.into(),
            ..Default::default()
        };
        let mut w = [0; crate::table::RECORD_WORDS];
        rec.encode(&mut w);
        crate::table::decode(&w).held
    }

    #[test]
    fn held_words_are_addresses_once_and_never_a_cut_one() {
        assert_eq!(held_words("10.77.1.100@3.1,web"), vec!["10.77.1.100", "web"]);
        assert_eq!(held_words("a@1.0,a@2.0,,b"), vec!["a", "b"]);
        assert!(held_words("").is_empty());
        // Exactly 40 bytes is kept whole; a longer one is cut, marked `+`: that word
        // goes. Both through the table's own encoding.
        let whole = "192.0.2.10@1.0,192.0.2.11@1.0,192.0.2.12";
        assert_eq!(whole.len(), HELD_LEN);
        assert_eq!(stored_held(whole), whole);
        assert_eq!(
            held_words(&stored_held(whole)),
            vec!["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        );
        let long = format!("{whole}3");
        let cut = stored_held(&long);
        assert!(cut.ends_with('+'), "{cut}");
        assert_eq!(held_words(&cut), vec!["192.0.2.10", "192.0.2.11"]);
    }

    #[test]
    fn only_what_the_table_holds() {
        let h = Header {
            channels: vec!["a".into(), "b".into()],
            writer_pid: 1,
            started_unix_ms: 1_795_000_000_500,
            local: "n1".into(),
            count: 4,
            capacity: 8,
            unattributed_rejects: vec![2, 0],
        };
        let now = 10_000_000_000;
        let local = NodeRecord {
            name: "n1".into(),
            state: NodeState::Up,
            flags: FLAG_LOCAL,
            ..Default::default()
        };
        let mut peer = NodeRecord {
            name: "n\"2".into(),
            state: NodeState::Up,
            generation: 7,
            dt_ms: 1500,
            load: [150, 0, 0],
            pings_up: 1,
            pings_total: 2,
            held: "vip@1.0".into(),
            changed_unix_ms: 1_795_000_001_000,
            ..Default::default()
        };
        peer.links[0] = LinkRecord {
            last_heard_ns: now - 250_000_000,
            state: LinkState::Up,
            lost: 3,
            dup: 1,
            rejected: 2,
        };
        peer.links[1].state = LinkState::Dead;
        let never = NodeRecord {
            name: "n3".into(),
            ..Default::default()
        };
        let ping = NodeRecord {
            name: "192.0.2.1".into(),
            state: NodeState::Dead,
            flags: FLAG_PING,
            ..Default::default()
        };
        let t = prometheus(true, &h, &[local, peer, never, ping], 0, now)
            .render()
            .unwrap();
        for line in [
            "hakit_table_writer_up 1\n",
            "hakit_table_started_timestamp_seconds 1795000000.5\n",
            "hakit_channel_rejected_unnamed_total{channel=\"a\"} 2\n",
            "hakit_ping_node_state{ping=\"192.0.2.1\",state=\"dead\"} 1\n",
            "hakit_node_state{node=\"n\\\"2\",state=\"up\"} 1\n",
            "hakit_node_state{node=\"n3\",state=\"unknown\"} 1\n",
            "hakit_node_generation{node=\"n\\\"2\"} 7\n",
            "hakit_node_load1{node=\"n\\\"2\"} 1.5\n",
            "hakit_node_deadtime_seconds{node=\"n\\\"2\"} 1.5\n",
            "hakit_node_ping_nodes_reachable{node=\"n\\\"2\"} 1\n",
            "hakit_node_holds{node=\"n\\\"2\",address=\"vip\"} 1\n",
            "hakit_node_last_heard_age_seconds{node=\"n\\\"2\"} 0.25\n",
            "hakit_link_state{node=\"n\\\"2\",channel=\"b\",state=\"dead\"} 1\n",
            "hakit_link_messages_lost_total{node=\"n\\\"2\",channel=\"a\"} 3\n",
            "hakit_link_messages_duplicate_total{node=\"n\\\"2\",channel=\"a\"} 1\n",
            "hakit_link_messages_rejected_total{node=\"n\\\"2\",channel=\"a\"} 2\n",
        ] {
            assert!(t.contains(line), "{line} in\n{t}");
        }
        // Never heard: nothing it would have announced, no age; the local node has no
        // links of its own; a ping node is no cluster node.
        for absent in [
            "hakit_node_generation{node=\"n3\"}",
            "hakit_node_load1{node=\"n3\"}",
            "hakit_node_last_heard_age_seconds{node=\"n3\"}",
            "hakit_link_last_heard_age_seconds{node=\"n3\"",
            "hakit_link_state{node=\"n1\"",
            "hakit_node_state{node=\"192.0.2.1\"",
            "hakit_node_holds{node=\"n1\"",
        ] {
            assert!(!t.contains(absent), "{absent} in\n{t}");
        }
    }
}
