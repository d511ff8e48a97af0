//! What the scheduler must not forget over a restart: each service's failure episode
//! (since when, how many failures, which alerts went out and when), what is disabled
//! and acknowledged. Saved as JSON, atomically (write, fsync, rename, fsync the
//! directory), so a crash leaves the old state or the new one, never half of one.

use crate::tools::mon_check::check::Status;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One host's last result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostResult {
    pub status: Status,
    pub line: String,
}

/// Per period of a service: what was alerted in the current episode.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PeriodState {
    pub last_alert: Option<i64>,
    pub last_summary: Option<String>,
    pub alerts: u32,
    pub down_alerted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ack {
    pub at: i64,
    pub comment: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceState {
    /// Never run yet.
    pub untested: bool,
    pub failing: bool,
    pub last_check: Option<i64>,
    pub last_success: Option<i64>,
    pub last_failure: Option<i64>,
    /// The start of the current failure episode.
    pub first_failure: Option<i64>,
    pub consecutive_failures: u32,
    /// Times of the failures of this episode (the last 64), for `alertafter N T`.
    pub failure_times: Vec<i64>,
    pub summary: String,
    pub output: String,
    pub retval: Option<i32>,
    pub hosts: BTreeMap<String, HostResult>,
    pub ack: Option<Ack>,
    pub periods: Vec<PeriodState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Disable {
    pub since: i64,
    pub until: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Disabled {
    pub hosts: BTreeMap<String, Disable>,
    /// Keyed `group/service`.
    pub services: BTreeMap<String, Disable>,
    pub watches: BTreeMap<String, Disable>,
}

impl Disabled {
    /// Drop what has expired; true when something did.
    pub fn expire(&mut self, now: i64) -> bool {
        let mut changed = false;
        for m in [&mut self.hosts, &mut self.services, &mut self.watches] {
            let before = m.len();
            m.retain(|_, d| d.until.is_none_or(|u| u > now));
            changed |= m.len() != before;
        }
        changed
    }
    /// The earliest expiry, to wake for it.
    pub fn next_expiry(&self) -> Option<i64> {
        [&self.hosts, &self.services, &self.watches]
            .iter()
            .flat_map(|m| m.values().filter_map(|d| d.until))
            .min()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub services: BTreeMap<String, ServiceState>,
    pub disabled: Disabled,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Load the saved state. A missing file is a first start; a corrupt one is set aside
/// (`state.json.corrupt`) and reported, and the scheduler starts afresh rather than
/// not at all.
pub fn load(dir: &Path) -> Result<State, String> {
    let p = path(dir);
    // Not followed if a symlink, not believed if another user could have written it.
    let text = match crate::base::fsio::read_trusted(&p)? {
        Some(t) => t,
        None => return Ok(State::default()),
    };
    match serde_json::from_str(&text) {
        Ok(s) => Ok(s),
        Err(e) => {
            let aside = p.with_extension("json.corrupt");
            let _ = std::fs::rename(&p, &aside);
            crate::base::log::error(&format!(
                "{}: unreadable state ({e}); moved to {} and starting afresh",
                p.display(),
                aside.display()
            ));
            Ok(State::default())
        }
    }
}

/// Save the state through `base::fsio::write_atomic`: a new O_EXCL temporary (never a
/// planted file or a symlink written through), fsync, rename, fsync of the directory.
/// Mode 0600: acknowledgements and reasons are the operators' business.
pub fn save(dir: &Path, s: &State) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(s).map_err(|e| format!("cannot save the state: {e}"))?;
    crate::base::fsio::write_atomic(&path(dir), &bytes, 0o600, crate::base::fsio::Durability::Durable)
        .map_err(|e| format!("cannot save the state in {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let d = tempfile::tempdir().unwrap();
        let mut s = State::default();
        s.services.insert(
            "web/http".into(),
            ServiceState {
                failing: true,
                first_failure: Some(5),
                ..Default::default()
            },
        );
        s.disabled.hosts.insert(
            "w1".into(),
            Disable {
                since: 1,
                until: Some(10),
                reason: Some("disk".into()),
            },
        );
        save(d.path(), &s).unwrap();
        assert_eq!(load(d.path()).unwrap(), s);
        std::fs::write(path(d.path()), "{ not json").unwrap();
        assert_eq!(load(d.path()).unwrap(), State::default());
        assert!(d.path().join("state.json.corrupt").exists());
        let mut dis = s.disabled.clone();
        assert!(dis.expire(11) && dis.hosts.is_empty());
    }

    /// The temporary is never written through a symlink planted where it used to be
    /// made (`.state.json.tmp`), and the state is still saved.
    #[test]
    fn a_planted_symlink_is_not_written_through() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join(".state.json.tmp")).unwrap();
        let mut s = State::default();
        s.services.insert("web/http".into(), ServiceState::default());
        save(d.path(), &s).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let m = std::fs::symlink_metadata(path(d.path())).unwrap();
        assert!(m.is_file(), "state.json is a file of its own");
        assert_eq!(load(d.path()).unwrap(), s);
    }
}
