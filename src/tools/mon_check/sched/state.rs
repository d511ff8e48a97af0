//! What the scheduler must not forget over a restart: each service's failure episode
//! (since when, how many failures, which alerts went out and when), what is disabled
//! and acknowledged. Saved as JSON, atomically (write, fsync, rename, fsync the
//! directory), so a crash leaves the old state or the new one, never half of one.

use crate::tools::mon_check::check::Status;
use nix::fcntl::{Flock, FlockArg};
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

/// How large a state file is believed; a larger one is corruption (thousands of
/// services take a few MiB).
const STATE_MAX: u64 = 64 << 20;

/// Load the saved state. A missing file is a first start; a corrupt one (not JSON, not
/// UTF-8, not the state's shape, too large) is set aside (`state.json.corrupt`) and
/// reported, and the scheduler starts afresh rather than not at all. A file that is
/// not to be trusted (a symlink, another user's) is still a refusal.
pub fn load(dir: &Path) -> Result<State, String> {
    use std::io::Read;
    let p = path(dir);
    if std::fs::symlink_metadata(&p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(State::default());
    }
    // Not followed if a symlink, not believed if another user could have written it.
    // Read as bytes: invalid UTF-8 is for the parser to find, as corruption.
    let f = crate::base::fsio::open_read_trusted(&p, crate::base::fsio::Whose::Ours)?;
    let mut bytes = Vec::new();
    f.take(STATE_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
    let parsed = if bytes.len() as u64 > STATE_MAX {
        Err(format!("larger than {} MiB", STATE_MAX >> 20))
    } else {
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    match parsed {
        Ok(s) => Ok(s),
        Err(e) => {
            let aside = crate::base::fsio::set_aside(&p);
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

/// One scheduler per state directory: two would both alert and overwrite each other's
/// state. The lock is an flock on `lock` in the directory, so the kernel releases it
/// when its holder dies, however it dies: a lock file left behind never blocks. The
/// file holds the holder's pid, for the refusal to name it.
pub struct DirLock {
    _file: Flock<std::fs::File>,
}

pub fn lock(dir: &Path) -> Result<DirLock, String> {
    use std::os::unix::fs::FileExt;
    let p = dir.join("lock");
    // Created (with the directory) without following a symlink or opening a planted
    // FIFO, and refused if it is not ours; O_CLOEXEC, so no alert inherits the lock.
    let f = crate::base::fsio::open_or_create(&p, 0o644)?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(f) => {
            let pid = format!("{}\n", std::process::id());
            f.set_len(0)
                .and_then(|_| f.write_all_at(pid.as_bytes(), 0))
                .map_err(|e| format!("{}: cannot write: {e}", p.display()))?;
            Ok(DirLock { _file: f })
        }
        Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut buf = [0u8; 32];
            let n = f.read_at(&mut buf, 0).unwrap_or(0);
            let holder = std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .map_or("a process that has not yet written its pid".to_string(), |p| {
                    format!("pid {p}")
                });
            Err(format!(
                "{}: the state directory is in use by another mon-check run ({holder}); one scheduler per state directory",
                dir.display()
            ))
        }
        Err((_, e)) => Err(format!("{}: cannot lock: {e}", p.display())),
    }
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

    /// Bytes that are not UTF-8 are corruption like any other: set aside, not a refusal
    /// to start.
    #[test]
    fn non_utf8_state_is_set_aside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(path(d.path()), b"{\"services\": {\"\xff\xfe\": {}}}").unwrap();
        assert_eq!(load(d.path()).unwrap(), State::default());
        assert!(d.path().join("state.json.corrupt").exists());
        assert!(!path(d.path()).exists());
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
