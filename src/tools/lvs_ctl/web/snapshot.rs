//! What the page shows, gathered at one moment from where each part lives: the Active
//! Stations Table (read without disturbing its writer), the kernel's virtual services
//! with a live follower's health (`status::report`), mon-check's scheduler over its
//! control socket. A part that cannot be read says why; the others still show.

use super::settings::Settings;
use crate::table::{NodeRecord, TableReader};
use crate::tools::lvs_ctl::health::{self, Stamp};
use crate::tools::lvs_ctl::status::{self, Report};
use crate::tools::lvs_ctl::{backend, follow};
use crate::tools::mon_check::sched::ctl::{self, Request, StatusList};
use serde::Serialize;

/// One part of the page, or why it is missing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part<T> {
    Ok(T),
    Error(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub table: String,
    pub writer_alive: bool,
    pub local: String,
    pub channels: Vec<String>,
    /// As `hb-watch status --json` prints them.
    pub nodes: Vec<serde_json::Value>,
    /// Records a dying writer left half written.
    pub torn: Vec<usize>,
    #[serde(skip)]
    pub records: Vec<NodeRecord>,
    #[serde(skip)]
    pub now_mono_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub generated: String,
    pub user: Option<String>,
    pub cluster: Part<Cluster>,
    pub lvs: Part<Report>,
    pub mon: Part<StatusList>,
    /// The maintenance directory (None: not configured, so no drain or enable).
    pub maintenance_dir: Option<String>,
    /// The real servers (`IP:PORT`) with a maintenance file of that name.
    pub drained: Vec<String>,
}

fn cluster(path: &std::path::Path) -> Result<Cluster, String> {
    let reader = TableReader::open(path).map_err(|e| e.to_string())?;
    let h = reader.header().map_err(|e| e.to_string())?;
    let now = crate::base::clock::mono_ns();
    let mut records = Vec::new();
    let mut torn = Vec::new();
    for r in reader.records() {
        match r {
            Ok(r) => records.push(r),
            Err(t) => torn.push(t.slot),
        }
    }
    Ok(Cluster {
        table: path.display().to_string(),
        writer_alive: reader.writer_alive(),
        local: h.local,
        nodes: records
            .iter()
            .map(|r| crate::tools::hb_watch::status::json(r, &h.channels, now))
            .collect(),
        channels: h.channels,
        torn,
        records,
        now_mono_ns: now,
    })
}

fn lvs(s: &Settings) -> Result<Report, String> {
    let why = |e: backend::Error| e.naming_the_capability().to_string();
    let mut b = backend::open(s.backend).map_err(why)?;
    let kernel = b.read().map_err(why)?;
    let live = health::load_live(&s.state);
    Ok(status::report(
        s.lvs.as_ref(),
        &kernel,
        live.as_ref(),
        b.kind().name(),
        Stamp::now(),
    ))
}

fn mon(s: &Settings) -> Result<StatusList, String> {
    let (reply, _) = ctl::ask(&s.mon_socket, &Request::List)?;
    match (reply.ok, reply.status) {
        (true, Some(st)) => Ok(st),
        _ => Err(format!(
            "mon-check at {}: {}",
            s.mon_socket.display(),
            reply.error.as_deref().unwrap_or("no status in its answer")
        )),
    }
}

fn part<T>(r: Result<T, String>) -> Part<T> {
    match r {
        Ok(x) => Part::Ok(x),
        Err(e) => Part::Error(e),
    }
}

/// Everything, now.
pub fn gather(s: &Settings, user: Option<&str>) -> Snapshot {
    let dir = s.lvs.as_ref().and_then(|c| c.maintenance_dir.clone());
    let drained = match &dir {
        Some(d) => follow::scan_maintenance(d, &mut Default::default())
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    Snapshot {
        generated: crate::base::clock::rfc3339_ms(crate::base::clock::unix_ms()),
        user: user.map(str::to_string),
        cluster: part(cluster(&s.table)),
        lvs: part(lvs(s)),
        mon: part(mon(s)),
        maintenance_dir: dir.map(|d| d.display().to_string()),
        drained,
    }
}
