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
//! A pid file is believed if it is ours, root's, or its directory's owner's (the
//! unprivileged units keep theirs in a /run/hakit of their own, which root's `ipfake
//! down` reads), and not writable by others; the process it names is signalled only if
//! it runs as the file's owner (or the file is root's), so a pid file can never make
//! us signal a process its writer could not have signalled itself.
//!
//! Pid files of other programs (hb-watch's `--notify /run/app.pid`) hold a bare pid.

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
    /// Who owns the file (None: this process's own record, not read from a file).
    pub owner: Option<u32>,
}

/// The start time of a process, in clock ticks since boot, or None if it is gone (a
/// zombie is gone: it holds nothing any more).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // Fields from 3 (state) on; starttime is field 22.
    if matches!(f.next()?, "Z" | "X") {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// Whether `pid` runs `program` (its command name) and started before `t`: how a bare
/// pid in a pid file of an older version is believed to be the one that wrote it.
pub fn is_program_started_before(pid: i32, program: &str, t: std::time::SystemTime) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim_end() != program {
        return false;
    }
    let Some(ticks) = start_time(pid) else { return false };
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())
    });
    let Some(boot) = boot else { return false };
    // USER_HZ, which /proc counts start times in, is 100 on every Linux ABI.
    let started = std::time::UNIX_EPOCH + std::time::Duration::from_millis(boot * 1000 + ticks * 10);
    // btime is whole seconds: allow one.
    started <= t + std::time::Duration::from_secs(1)
}

/// The real and effective uids of a process.
fn uids(pid: i32) -> Option<(u32, u32)> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = st.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut w = line.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some((w.next()??, w.next()??))
}

impl PidRecord {
    /// This process, with its start time.
    pub fn me(extra: Vec<String>) -> PidRecord {
        let pid = std::process::id() as i32;
        PidRecord {
            pid,
            start: start_time(pid),
            extra,
            owner: None,
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
            owner: None,
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

    /// Signal the process if it is still the one recorded and runs as the pid file's
    /// owner. `Ok(false)`: it is gone (or its pid now belongs to another process),
    /// nothing was signalled; an error: it could not be signalled (it is not the file
    /// owner's, or the kernel refused).
    pub fn signal(&self, sig: Signal) -> Result<bool, String> {
        let fd = match pidfd_open(self.pid) {
            Ok(fd) => Some(fd),
            Err(nix::errno::Errno::ESRCH) => return Ok(false),
            // Before Linux 5.3: no pidfds; kill(2) after the check below, a window of
            // microseconds for the pid to be reused.
            Err(nix::errno::Errno::ENOSYS) => None,
            Err(e) => return Err(format!("cannot signal pid {}: pidfd_open: {e}", self.pid)),
        };
        // The pidfd holds on to whichever process had the pid when it was opened: if
        // that one is still ours, it is the one the signal reaches.
        if !self.alive() {
            return Ok(false);
        }
        if let Some(owner) = self.owner.filter(|o| *o != 0) {
            match uids(self.pid) {
                Some((r, e)) if r == owner || e == owner => {}
                _ => {
                    return Err(format!(
                        "pid {} does not run as uid {owner}, who wrote its pid file; not signalling it",
                        self.pid
                    ))
                }
            }
        }
        let sent = match &fd {
            Some(fd) => pidfd_send_signal(fd, sig),
            None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig),
        };
        match sent {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(e) => Err(format!("cannot signal pid {}: {e}", self.pid)),
        }
    }
}

/// A descriptor for the process that has `pid` now (see pidfd_open(2)).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, nix::errno::Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (always
    // close-on-exec) or -1; nix 0.29 has no wrapper for it.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(fd: &OwnedFd, sig: Signal) -> Result<(), nix::errno::Errno> {
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
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}

/// Write this process's pid file (atomically, never through a symlink).
pub fn write(path: &Path, extra: Vec<String>) -> Result<PidRecord, String> {
    let r = PidRecord::me(extra);
    fsio::write_atomic(path, r.render().as_bytes(), 0o644, fsio::Durability::Atomic)?;
    Ok(r)
}

/// Read a pid file; `Ok(None)` if it does not exist; an error if it is not trusted or
/// not a pid file.
pub fn read(path: &Path) -> Result<Option<PidRecord>, String> {
    match fsio::read_trusted_owned(path, fsio::Whose::OursOrTheDirectorys)? {
        None => Ok(None),
        Some((text, owner)) => PidRecord::parse(&text)
            .map(|r| {
                Some(PidRecord {
                    owner: Some(owner),
                    ..r
                })
            })
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
        assert_eq!(
            PidRecord {
                owner: None,
                ..back.clone()
            },
            r
        );
        assert_eq!(back.owner, Some(fsio::euid()));
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
    fn a_pid_file_never_gets_a_process_of_another_user_signalled() {
        // nobody writes (in a directory of nobody's, so it is read) a pid file that
        // names a process of ours, a child we started: it is not signalled.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("a_pid_file_never_gets_a_process_of_another_user_signalled: SKIPPED, needs root");
            return;
        }
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
        let d = tempfile::tempdir().unwrap();
        nix::unistd::chown(d.path(), Some(nobody), None).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let p = d.path().join("x.pid");
        std::fs::write(&p, format!("{pid} {}\n", start_time(pid).unwrap())).unwrap();
        nix::unistd::chown(&p, Some(nobody), None).unwrap();
        let rec = read(&p).unwrap().unwrap();
        assert_eq!(rec.owner, Some(nobody.as_raw()));
        let e = rec.signal(Signal::SIGTERM).unwrap_err();
        assert!(e.contains("does not run as uid"), "{e}");
        assert!(child.try_wait().unwrap().is_none(), "still running");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn parses_bare_pids_and_refuses_nonsense() {
        assert_eq!(PidRecord::parse("123\n").unwrap().start, None);
        assert!(PidRecord::parse("1\n").is_none());
        assert!(PidRecord::parse("x\n").is_none());
        assert!(PidRecord::parse("12 y\n").is_none());
    }
}
