//! Pid files, and signalling the process a pid file names — only if it is still that
//! process.
//!
//! A pid file written here holds `PID STARTTIME` on its first line (the start time in
//! clock ticks since boot, field 22 of `/proc/PID/stat`), then lines of the tool's own.
//! A pid that has been reused since (the holder was killed with SIGKILL, another process
//! got its number) has another start time, so it is never taken for the holder and
//! never signalled. The signal goes through a pidfd opened before the start time is
//! checked, so the process checked is the process signalled.
//!
//! Pid files of other programs (hb-watch's `--notify /run/app.pid`) hold a bare pid;
//! those are trusted only if owned by us or root and not writable by others.

use crate::base::fsio;
use nix::sys::signal::Signal;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// A process as a pid file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidRecord {
    pub pid: i32,
    /// None for a bare pid (another program's pid file): not checked.
    pub start: Option<u64>,
    /// The lines after the first.
    pub extra: Vec<String>,
}

/// The start time of a process, in clock ticks since boot, or None if it is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 (state) on; starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl PidRecord {
    /// This process, with its start time.
    pub fn me(extra: Vec<String>) -> PidRecord {
        let pid = std::process::id() as i32;
        PidRecord {
            pid,
            start: start_time(pid),
            extra,
        }
    }

    fn render(&self) -> String {
        let mut s = match self.start {
            Some(t) => format!("{} {t}\n", self.pid),
            None => format!("{}\n", self.pid),
        };
        for l in &self.extra {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    fn parse(text: &str) -> Option<PidRecord> {
        let mut lines = text.lines();
        let mut first = lines.next()?.split_whitespace();
        let pid: i32 = first.next()?.parse().ok()?;
        let start = match first.next() {
            Some(t) => Some(t.parse().ok()?),
            None => None,
        };
        if pid <= 1 {
            return None;
        }
        Some(PidRecord {
            pid,
            start,
            extra: lines.map(str::to_string).collect(),
        })
    }

    /// Whether the process is alive and, where the start time is recorded, is still
    /// the one that wrote the file.
    pub fn alive(&self) -> bool {
        match (start_time(self.pid), self.start) {
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Signal the process if it is still the one recorded. `Ok(false)`: it is gone (or
    /// its pid now belongs to another process), nothing was signalled.
    pub fn signal(&self, sig: Signal) -> Result<bool, String> {
        let Some(fd) = pidfd_open(self.pid) else {
            return Ok(false);
        };
        // The pidfd holds on to whichever process had the pid when it was opened: if
        // that one is still ours, it is the one the signal reaches.
        if !self.alive() {
            return Ok(false);
        }
        pidfd_send_signal(&fd, sig).map_err(|e| format!("cannot signal pid {}: {e}", self.pid))?;
        Ok(true)
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1;
    // nix 0.29 has no wrapper for it.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(fd: &OwnedFd, sig: Signal) -> std::io::Result<()> {
    // SAFETY: a valid pidfd, a valid signal number, no siginfo, no flags; nix 0.29 has
    // no wrapper for it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Write this process's pid file (atomically, never through a symlink).
pub fn write(path: &Path, extra: Vec<String>) -> Result<PidRecord, String> {
    let r = PidRecord::me(extra);
    fsio::write_atomic(path, r.render().as_bytes(), 0o644)?;
    Ok(r)
}

/// Read a pid file; `Ok(None)` if it does not exist; an error if it is not trusted or
/// not a pid file.
pub fn read(path: &Path) -> Result<Option<PidRecord>, String> {
    match fsio::read_trusted(path)? {
        None => Ok(None),
        Some(text) => PidRecord::parse(&text)
            .map(Some)
            .ok_or_else(|| format!("{}: not a pid file", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_is_not_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.pid");
        let r = write(&p, vec!["eth0".into()]).unwrap();
        let back = read(&p).unwrap().unwrap();
        assert_eq!(back, r);
        assert!(back.alive());
        // Same pid, another start time: what a reused pid looks like.
        let stranger = PidRecord {
            start: back.start.map(|t| t + 1),
            ..back.clone()
        };
        assert!(!stranger.alive());
        assert_eq!(stranger.signal(Signal::SIGTERM), Ok(false));
    }

    #[test]
    fn parses_bare_pids_and_refuses_nonsense() {
        assert_eq!(PidRecord::parse("123\n").unwrap().start, None);
        assert!(PidRecord::parse("1\n").is_none());
        assert!(PidRecord::parse("x\n").is_none());
        assert!(PidRecord::parse("12 y\n").is_none());
    }
}
