//! Replay floors: for every peer the highest generation and sequence this node has
//! accepted, kept on disk (not in /run with the table), so that heartbeats captured
//! before a reboot and replayed to a fresh table are still refused.
//!
//! The file is text, one `NODE GENERATION SEQUENCE` line per peer, replaced
//! atomically and durably by hb-watch: when a peer's generation changes, when a peer
//! dies (its last sequence is then the end of what can be replayed), when hb-watch
//! stops, and every [`SAVE_EVERY`] otherwise. `hb-watch forget NODE` leaves the name in
//! `FLOORS.forget`; hb-watch applies that file at start and on SIGHUP, and removes it.

use crate::base::fsio::{self, Durability};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often floors that moved are saved when nothing else made us save them.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    pub node: String,
    pub gen: u64,
    pub seq: u64,
}

/// The floors in `path`; none if it does not exist. A line that is not
/// `NODE GEN SEQ` is an error naming `path:line`.
pub fn load(path: &Path) -> Result<Vec<Floor>, String> {
    match fsio::read_trusted(path)? {
        Some(text) => parse(path, &text),
        None => Ok(Vec::new()),
    }
}

/// The floors in `text` (read from `path`, which errors name).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Floor>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut w = line.split_whitespace();
        let parsed = (|| {
            let node = w.next()?;
            let gen = w.next()?.parse().ok()?;
            let seq = w.next()?.parse().ok()?;
            (w.next().is_none() && crate::wire::hv::valid_name(node)).then(|| Floor {
                node: node.into(),
                gen,
                seq,
            })
        })();
        match parsed {
            Some(f) => out.push(f),
            None => return Err(format!("{}:{}: not `NODE GENERATION SEQUENCE`", path.display(), i + 1)),
        }
    }
    Ok(out)
}

/// Replace the file, durably: a floor is only worth something if a power cut keeps it.
pub fn save(path: &Path, floors: &[Floor]) -> Result<(), String> {
    let mut s =
        String::from("# hb-watch's replay floors: NODE GENERATION SEQUENCE (hb-watch forget NODE clears one)\n");
    for f in floors {
        s.push_str(&format!("{} {} {}\n", f.node, f.gen, f.seq));
    }
    fsio::ensure_parent(path)?;
    fsio::write_atomic(path, s.as_bytes(), 0o600, Durability::Durable)
}

fn forget_path(floors: &Path) -> PathBuf {
    let mut p = floors.as_os_str().to_owned();
    p.push(".forget");
    p.into()
}

/// Ask that `node`'s floor be cleared (by a running hb-watch, or the next one).
pub fn request_forget(floors: &Path, node: &str) -> Result<(), String> {
    let path = forget_path(floors);
    let mut names: Vec<String> = fsio::read_trusted(&path)?
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    if !names.iter().any(|n| n == node) {
        names.push(node.into());
    }
    fsio::ensure_parent(&path)?;
    fsio::write_atomic(
        &path,
        format!("{}\n", names.join("\n")).as_bytes(),
        0o600,
        Durability::Durable,
    )
}

/// Whether a request for `node` is still waiting.
pub fn forget_pending(floors: &Path, node: &str) -> bool {
    matches!(fsio::read_trusted(&forget_path(floors)), Ok(Some(t)) if t.lines().any(|l| l == node))
}

/// The names waiting to be forgotten, and the request removed (the caller saves
/// floors without them right after).
pub fn take_forgets(floors: &Path) -> Result<Vec<String>, String> {
    let path = forget_path(floors);
    let Some(text) = fsio::read_trusted(&path)? else {
        return Ok(Vec::new());
    };
    let names = text
        .lines()
        .map(str::trim)
        .filter(|l| crate::wire::hv::valid_name(l))
        .map(str::to_string)
        .collect();
    std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(names)
}

/// `hb-watch forget NODE`: leave the request, and have the table's live writer apply
/// it now (SIGHUP, to the pid the table names once it is checked to be an hb-watch
/// that holds the table and runs as the table's owner).
pub fn forget_command(table: &Path, floors: &Path, node: &str) -> crate::base::exit::ExitStatus {
    use crate::base::exit::ExitStatus;
    use crate::base::log;
    if !crate::wire::hv::valid_name(node) {
        log::error(&format!("`{node}` is not a node name"));
        return ExitStatus::Usage;
    }
    if let Err(e) = request_forget(floors, node) {
        log::error(&e);
        return ExitStatus::Failure;
    }
    let writer = crate::table::TableReader::open(table)
        .ok()
        .filter(|r| r.writer_alive())
        .and_then(|r| r.header().ok().map(|h| (r, h)));
    let Some((reader, h)) = writer else {
        println!(
            "{node}: its floor will be forgotten when hb-watch next starts on {}",
            table.display()
        );
        return ExitStatus::Success;
    };
    let pid = h.writer_pid as i32;
    let started = std::time::UNIX_EPOCH + Duration::from_millis(h.started_unix_ms);
    if !crate::base::pidfile::is_program_started_before(pid, "hb-watch", started) {
        log::error(&format!(
            "{}: its writer pid {pid} is not the hb-watch that started it; not signalled (the request waits for the next start)",
            table.display()
        ));
        return ExitStatus::Failure;
    }
    let rec = crate::base::pidfile::PidRecord {
        pid,
        start: crate::base::pidfile::start_time(pid),
        extra: Vec::new(),
        owner: Some(reader.owner()),
    };
    match rec.signal(nix::sys::signal::Signal::SIGHUP) {
        Ok(true) => {}
        Ok(false) => {
            println!("{node}: hb-watch (pid {pid}) has just stopped; its floor will be forgotten at its next start");
            return ExitStatus::Success;
        }
        Err(e) => {
            log::error(&format!("hb-watch pid {pid}: {e}"));
            return ExitStatus::Failure;
        }
    }
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < end {
        if !forget_pending(floors, node) {
            println!("{node}: floor forgotten by hb-watch (pid {pid}); its next heartbeat is accepted");
            return ExitStatus::Success;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log::error(&format!(
        "hb-watch pid {pid} did not take the request within 3s (is --floors {} its floors file?)",
        floors.display()
    ));
    ExitStatus::Failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forget() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lib/floors");
        assert!(load(&p).unwrap().is_empty());
        let f = vec![Floor {
            node: "n2".into(),
            gen: 7,
            seq: 99,
        }];
        save(&p, &f).unwrap();
        assert_eq!(load(&p).unwrap(), f);
        request_forget(&p, "n2").unwrap();
        request_forget(&p, "n2").unwrap();
        assert!(forget_pending(&p, "n2"));
        assert_eq!(take_forgets(&p).unwrap(), vec!["n2".to_string()]);
        assert!(!forget_pending(&p, "n2"));
        std::fs::write(&p, "n2 7\n").unwrap();
        assert!(load(&p)
            .unwrap_err()
            .ends_with("floors:1: not `NODE GENERATION SEQUENCE`"));
    }
}
