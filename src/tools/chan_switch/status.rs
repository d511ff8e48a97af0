//! What a running chan-switch tells the rest of the node: its status file (every node's
//! channel as that node reported it, the order, the decider), rewritten atomically on
//! every change; and the commands that read it: `status`, `to`, `back`. A hand request
//! is a small file beside it and SIGUSR2 to the daemon (through its pid file, checked).

use super::node::Node;
use super::settings::CommonSettings;
use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::fsio::{self, Durability, Whose};
use crate::base::{clock, log, pidfile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum Error {
    /// No daemon runs, or its file cannot be read.
    NotRunning(String),
    /// Not every live node applied the request in time.
    Incomplete(String),
    Usage(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotRunning(m) | Error::Incomplete(m) | Error::Usage(m) => f.write_str(m),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage(_) => ExitStatus::Usage,
            _ => ExitStatus::Failure,
        }
    }
}

pub fn pid_path(status: &Path) -> PathBuf {
    status.with_extension("pid")
}

pub fn request_path(status: &Path) -> PathBuf {
    status.with_extension("request")
}

/// One node as the status file has it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// up, unreachable, dead, unknown: as this node's table has it.
    pub state: String,
    /// Whether the node has reported since it was last seen up.
    pub reported: bool,
    pub epoch: u64,
    pub by: String,
    /// The channel its traffic uses, as it reported.
    pub active: String,
    /// The channel of the order it applied.
    pub order: String,
    pub moved: String,
    pub deaf: Vec<String>,
    pub carrier_down: Vec<String>,
    pub took_us: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusFile {
    pub node: String,
    pub decider: String,
    pub policy: String,
    pub channels: Vec<String>,
    /// The channel `back` returns to.
    pub preferred: String,
    pub epoch: u64,
    pub by: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub moved: String,
    pub manual: bool,
    pub nodes: BTreeMap<String, NodeStatus>,
    pub updated_unix_ms: u64,
}

impl StatusFile {
    pub fn of(n: &Node) -> StatusFile {
        let names = n.names();
        let ch = |c: usize| names.get(c).cloned().unwrap_or_else(|| "?".into());
        let mut nodes = BTreeMap::new();
        for m in &n.s.members {
            let state = if m.name == n.s.node {
                "up".to_string()
            } else {
                n.seen.get(&m.name).map_or("unknown", |s| s.state.as_str()).to_string()
            };
            let st = match n.reports.get(&m.name) {
                Some(r) => NodeStatus {
                    state,
                    reported: true,
                    epoch: r.order.epoch,
                    by: r.order.by.clone(),
                    active: ch(r.active),
                    order: ch(r.order.use_),
                    moved: super::decide::moved_text(&r.order.moved, names),
                    deaf: r
                        .deaf
                        .iter()
                        .enumerate()
                        .flat_map(|(c, s)| s.iter().map(move |x| format!("{}/{x}", ch(c))))
                        .collect(),
                    carrier_down: r.carrier_down.iter().map(|&c| ch(c)).collect(),
                    took_us: r.took_us,
                },
                None => NodeStatus {
                    state,
                    reported: false,
                    epoch: 0,
                    by: String::new(),
                    active: String::new(),
                    order: String::new(),
                    moved: String::new(),
                    deaf: vec![],
                    carrier_down: vec![],
                    took_us: 0,
                },
            };
            nodes.insert(m.name.clone(), st);
        }
        StatusFile {
            node: n.s.node.clone(),
            decider: n.decider.clone(),
            policy: n.policy().as_str().into(),
            channels: names.to_vec(),
            preferred: ch(n.s.preferred),
            epoch: n.order.epoch,
            by: n.order.by.clone(),
            use_: ch(n.order.use_),
            moved: super::decide::moved_text(&n.order.moved, names),
            manual: n.order.manual,
            nodes,
            updated_unix_ms: clock::unix_ms(),
        }
    }

    pub fn render(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec_pretty(self).map_err(|e| e.to_string())
    }

    fn read(path: &Path) -> Result<StatusFile, Error> {
        match fsio::read_trusted_owned(path, Whose::OursOrTheDirectorys) {
            Ok(Some((text, _))) => {
                serde_json::from_str(&text).map_err(|e| Error::NotRunning(format!("{}: {e}", path.display())))
            }
            Ok(None) => Err(Error::NotRunning(format!(
                "{}: no such file: chan-switch run is not running here",
                path.display()
            ))),
            Err(e) => Err(Error::NotRunning(e)),
        }
    }

    /// The channel a node's traffic uses under this file's order.
    fn expected(&self, node: &str) -> &str {
        self.moved
            .split(',')
            .find_map(|e| e.strip_prefix(node).and_then(|r| r.strip_prefix(':')))
            .unwrap_or(&self.use_)
    }

    /// Whether every node this one hears applied this file's order, and uses the
    /// channel it says.
    fn complete(&self) -> Result<(), Vec<String>> {
        let waiting: Vec<String> = self
            .nodes
            .iter()
            .filter(|(n, s)| {
                s.state == "up"
                    && !(s.reported && s.epoch == self.epoch && s.by == self.by && s.active == self.expected(n))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting)
        }
    }
}

/// The one-line summary SIGUSR1 logs.
pub fn summary(n: &Node) -> String {
    let f = StatusFile::of(n);
    let nodes: Vec<String> = f
        .nodes
        .iter()
        .map(|(name, s)| {
            format!(
                "{name}:{}:{}",
                s.state,
                if s.active.is_empty() { "?" } else { &s.active }
            )
        })
        .collect();
    format!(
        "decider {} · order epoch {} by {} use {}{} · {}",
        f.decider,
        f.epoch,
        f.by,
        f.use_,
        if f.moved.is_empty() {
            String::new()
        } else {
            format!(" moved {}", f.moved)
        },
        nodes.join(" ")
    )
}

fn running(c: &CommonSettings) -> Result<pidfile::PidRecord, Error> {
    let p = pid_path(&c.status_file);
    match pidfile::read(&p) {
        Ok(Some(r)) if r.alive() => Ok(r),
        Ok(_) => Err(Error::NotRunning(format!(
            "{}: chan-switch run is not running here",
            p.display()
        ))),
        Err(e) => Err(Error::NotRunning(e)),
    }
}

/// `chan-switch status [--json]`: exit 0 if the daemon runs, 1 if not (the last state
/// it left is still shown).
pub fn status(c: &CommonSettings, json: bool) -> Result<(), Error> {
    let f = StatusFile::read(&c.status_file)?;
    let alive = running(c);
    if json {
        let mut v = serde_json::to_value(&f).map_err(|e| Error::NotRunning(e.to_string()))?;
        v["running"] = alive.is_ok().into();
        println!("{v}");
    } else {
        println!(
            "order: epoch {} by {}, cluster channel {}{}{} · policy {} · decider {}",
            f.epoch,
            if f.by.is_empty() { "-" } else { &f.by },
            f.use_,
            if f.moved.is_empty() {
                String::new()
            } else {
                format!(", moved {}", f.moved)
            },
            if f.manual { " (by hand)" } else { "" },
            f.policy,
            f.decider
        );
        println!(
            "{:<16} {:<12} {:<8} {:<8} {:>8} {:>10}  NOT HEARD",
            "NODE", "STATE", "ACTIVE", "ORDER", "EPOCH", "TOOK"
        );
        for (n, s) in &f.nodes {
            let dash = |v: &str| if v.is_empty() { "-".to_string() } else { v.to_string() };
            println!(
                "{:<16} {:<12} {:<8} {:<8} {:>8} {:>10}  {}",
                n,
                s.state,
                dash(&s.active),
                dash(&s.order),
                if s.reported { s.epoch.to_string() } else { "-".into() },
                if s.reported {
                    format!("{}us", s.took_us)
                } else {
                    "-".into()
                },
                dash(&s.deaf.join(","))
            );
        }
    }
    alive.map(|_| ())
}

/// Read and remove a waiting hand request: `Some(Some(c))` to, `Some(None)` back.
pub fn take_request(status: &Path, names: &[String]) -> Option<Option<usize>> {
    // Taken away first, then read: a request written meanwhile is the next one.
    let p = request_path(status);
    let taken = p.with_extension("taken");
    if std::fs::rename(&p, &taken).is_err() {
        return None;
    }
    let text = fsio::read_trusted(&taken);
    let _ = std::fs::remove_file(&taken);
    let text = match text {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            log::warn(&e);
            return None;
        }
    };
    let want = text.trim();
    if want == "home" {
        return Some(None);
    }
    match names.iter().position(|n| n == want) {
        Some(c) => Some(Some(c)),
        None => {
            log::warn(&format!("{}: `{want}` is not a channel; ignored", p.display()));
            None
        }
    }
}

/// `chan-switch to CH` / `back`: ask the running daemon, wait until every live node
/// applied it.
pub fn ask(c: &CommonSettings, to: Option<&str>, wait: Duration) -> Result<(), Error> {
    let before = StatusFile::read(&c.status_file)?;
    if let Some(ch) = to {
        if !before.channels.iter().any(|n| n == ch) {
            return Err(Error::Usage(format!(
                "`{ch}` is not a channel ({})",
                before.channels.join(", ")
            )));
        }
    }
    let daemon = running(c)?;
    let word = to.unwrap_or("home");
    // 0644: the daemon may run as another user (hakit) than the one asking (root); it
    // holds one word, and the daemon believes only its own or root's.
    fsio::write_atomic(
        &request_path(&c.status_file),
        format!("{word}\n").as_bytes(),
        0o644,
        Durability::Atomic,
    )
    .map_err(Error::NotRunning)?;
    match daemon.signal(nix::sys::signal::Signal::SIGUSR2) {
        Ok(true) => {}
        Ok(false) => return Err(Error::NotRunning("chan-switch run stopped".into())),
        Err(e) => return Err(Error::NotRunning(e)),
    }
    let want_use = to.map_or_else(|| before.preferred.clone(), str::to_string);
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(5));
        let now = StatusFile::read(&c.status_file)?;
        let newer = now.epoch > before.epoch || now.by != before.by;
        let right = now.use_ == want_use && now.moved.is_empty() && now.manual == to.is_some();
        if newer && right {
            match now.complete() {
                Ok(()) => {
                    println!("epoch {}: every live node uses {}", now.epoch, now.use_);
                    return Ok(());
                }
                Err(w) if start.elapsed() >= wait => {
                    return Err(Error::Incomplete(format!(
                        "epoch {} (use {}) not applied yet by {} after {}",
                        now.epoch,
                        now.use_,
                        w.join(", "),
                        crate::base::duration::format(wait)
                    )))
                }
                Err(_) => {}
            }
        } else if start.elapsed() >= wait {
            return Err(Error::Incomplete(format!(
                "no order for {word} after {} (is the decider, {}, running chan-switch?)",
                crate::base::duration::format(wait),
                now.decider
            )));
        }
    }
}
