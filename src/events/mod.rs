//! Events — hb-watch's node and link events, mon-check's host and service events: one
//! per line on stdout, easy to read in a shell `while read` loop —
//! the event name, the subject, then `key=value` fields beginning with the timestamp —
//! or JSON lines with `--json`. Hooks get the same fields in their environment.

pub mod hooks;
pub mod read;
pub mod sink;

pub use sink::Sink;

use std::fmt::Write as _;

/// What happened. The names are the first word of each event line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NodeUp,
    NodeDead,
    NodeUnreachable,
    NodeRestart,
    NodeStatus,
    LinkUp,
    LinkLate,
    LinkDead,
    Message,
    /// hb-watch: a ping node answers again, or stopped answering.
    PingUp,
    PingDead,
    /// mon-check: a host of a service stopped answering as it should, or came back.
    HostDown,
    HostUp,
    /// mon-check: a service began failing on some host, or stopped failing.
    ServiceFailing,
    ServiceUp,
    /// lvs-ctl follow: a real server taken out (its check failed), or back in.
    RealDown,
    RealUp,
    /// lvs-ctl follow: a draining real server's time is over; it is removed.
    RealDrained,
    /// lvs-ctl follow: a real server taken out, or let back, by the maintenance directory.
    MaintenanceIn,
    MaintenanceOut,
    /// lvs-ctl follow: a real server that should go out stays in (the depool threshold).
    DepoolRefused,
    /// lvs-ctl follow: a service's live weight fell below its quorum and the sorry server
    /// took it, or came back to it.
    SorryIn,
    SorryOut,
    /// lvs-ctl follow: the kernel's table of a service differed from what follow had
    /// put there, and was put back.
    DriftRepaired,
    /// lvs-ctl follow: a real server that joined at run time passed its check and is in
    /// the pool; it left (its leave, its node's death, its lease, the configuration); a
    /// join that may not be.
    RealJoined,
    RealLeft,
    JoinRefused,
    /// chan-switch: the decider saw a fault that a switch would mend, and waits for it
    /// to settle (subject: the channel it would use).
    ChanProposed,
    /// chan-switch: a switch waits for the hold-down to end.
    ChanHeldDown,
    /// chan-switch: an order was given (on the decider) or received (subject: the
    /// cluster's channel).
    ChanOrdered,
    /// chan-switch: a node applied an order (subject: the node), with the time it took.
    ChanApplied,
    /// chan-switch: every live node applied the order.
    ChanComplete,
    /// chan-switch: some live node has not applied an order after a while.
    ChanStuck,
    /// chan-switch: the cluster went back to the preferred channel.
    ChanSwitchedBack,
    /// chan-switch: this node's device of a channel lost (or regained) its carrier;
    /// its own traffic moved at once.
    ChanCarrier,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NodeUp => "node-up",
            Kind::NodeDead => "node-dead",
            Kind::NodeUnreachable => "node-unreachable",
            Kind::NodeRestart => "node-restart",
            Kind::NodeStatus => "node-status",
            Kind::LinkUp => "link-up",
            Kind::LinkLate => "link-late",
            Kind::LinkDead => "link-dead",
            Kind::Message => "message",
            Kind::PingUp => "ping-up",
            Kind::PingDead => "ping-dead",
            Kind::HostDown => "host-down",
            Kind::HostUp => "host-up",
            Kind::ServiceFailing => "service-failing",
            Kind::ServiceUp => "service-up",
            Kind::RealDown => "real-down",
            Kind::RealUp => "real-up",
            Kind::RealDrained => "real-drained",
            Kind::MaintenanceIn => "maintenance-in",
            Kind::MaintenanceOut => "maintenance-out",
            Kind::DepoolRefused => "depool-refused",
            Kind::SorryIn => "sorry-in",
            Kind::SorryOut => "sorry-out",
            Kind::DriftRepaired => "drift-repaired",
            Kind::RealJoined => "real-joined",
            Kind::RealLeft => "real-left",
            Kind::JoinRefused => "join-refused",
            Kind::ChanProposed => "chan-proposed",
            Kind::ChanHeldDown => "chan-held-down",
            Kind::ChanOrdered => "chan-ordered",
            Kind::ChanApplied => "chan-applied",
            Kind::ChanComplete => "chan-complete",
            Kind::ChanStuck => "chan-stuck",
            Kind::ChanSwitchedBack => "chan-switched-back",
            Kind::ChanCarrier => "chan-carrier",
        }
    }

    /// Heartbeat's `st` value for the status message its scripts expect.
    fn heartbeat_st(self) -> Option<&'static str> {
        match self {
            Kind::NodeUp | Kind::NodeRestart => Some("active"),
            Kind::NodeDead => Some("dead"),
            Kind::LinkUp => Some("up"),
            Kind::LinkDead => Some("dead"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    /// The node the event is about.
    pub subject: String,
    /// Extra fields, in order (the timestamp is added when printed).
    pub fields: Vec<(String, String)>,
    pub unix_ms: u64,
    /// CLOCK_MONOTONIC when the event was decided, for latency measurements.
    pub mono_ns: u64,
}

impl Event {
    pub fn new(kind: Kind, subject: &str, now_ns: u64) -> Event {
        Event {
            kind,
            subject: subject.to_string(),
            fields: Vec::new(),
            unix_ms: crate::base::clock::unix_ms(),
            mono_ns: now_ns,
        }
    }

    pub fn with(mut self, k: &str, v: impl ToString) -> Event {
        self.fields.push((k.to_string(), v.to_string()));
        self
    }

    pub fn field(&self, k: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// `node-dead node2 ts=2026-11-20T22:30:00.123Z mono=... reason=deadtime`
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(96);
        s.push_str(self.kind.as_str());
        s.push(' ');
        s.push_str(&shell_word(&self.subject));
        let _ = write!(
            s,
            " ts={} mono={}",
            crate::base::clock::rfc3339_ms(self.unix_ms),
            self.mono_ns / 1000
        );
        for (k, v) in &self.fields {
            let _ = write!(s, " {k}={}", shell_word(v));
        }
        s
    }

    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.fields {
            m.insert(k.clone(), v.clone().into());
        }
        // The event's own keys last, so that no field (a cluster message's `subject`,
        // say) can stand in for them.
        m.insert("event".into(), self.kind.as_str().into());
        m.insert("subject".into(), self.subject.clone().into());
        m.insert("ts".into(), crate::base::clock::rfc3339_ms(self.unix_ms).into());
        m.insert("mono".into(), (self.mono_ns / 1000).into());
        serde_json::Value::Object(m).to_string()
    }

    /// The environment a hook gets: `HA_EVENT`, `HA_SUBJECT`, `HA_ts`, every field as
    /// `HA_<field>`, and for node events the `HA_t`/`HA_st`/`HA_src` of the status
    /// message Heartbeat's scripts read.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("HA_EVENT".to_string(), self.kind.as_str().to_string()),
            ("HA_SUBJECT".to_string(), self.subject.clone()),
            ("HA_ts".to_string(), crate::base::clock::rfc3339_ms(self.unix_ms)),
        ];
        if let Some(st) = self.kind.heartbeat_st() {
            v.push(("HA_t".into(), "status".into()));
            v.push(("HA_st".into(), st.into()));
            v.push(("HA_src".into(), self.subject.clone()));
        }
        for (k, val) in &self.fields {
            let key = format!(
                "HA_{}",
                k.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
            );
            v.retain(|(n, _)| *n != key);
            v.push((key, val.replace('\0', "")));
        }
        v
    }
}

/// A value printed so that `read` splits the line where a reader expects and `eval`
/// gets it back whole: plain words as they are, anything else in single quotes.
pub fn shell_word(v: &str) -> String {
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/,@+%^".contains(&b))
    {
        v.to_string()
    } else {
        let clean: String = v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("'{}'", clean.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn line_and_json() {
        let mut e = Event::new(Kind::NodeDead, "node2", 5_000_000)
            .with("reason", "deadtime")
            .with("info", "a b'c");
        e.unix_ms = 0;
        assert_eq!(
            e.to_line(),
            "node-dead node2 ts=1970-01-01T00:00:00.000Z mono=5000 reason=deadtime info='a b'\\''c'"
        );
        let j: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(j["event"], "node-dead");
        let forged = Event::new(Kind::Message, "n3", 1)
            .with("subject", "n1")
            .with("event", "node-dead");
        let f: serde_json::Value = serde_json::from_str(&forged.to_json()).unwrap();
        assert_eq!(
            (f["subject"].as_str(), f["event"].as_str()),
            (Some("n3"), Some("message"))
        );
        assert_eq!(j["reason"], "deadtime");
        let env = e.env();
        assert!(env.contains(&("HA_st".into(), "dead".into())));
        assert!(env.contains(&("HA_src".into(), "node2".into())));
        assert!(env.contains(&("HA_reason".into(), "deadtime".into())));
    }
}
