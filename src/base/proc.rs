//! One bounded child process, written once: mon-check's plugins, monitors and alerts
//! and hb-watch's hooks all run through [`run`].
//!
//! The child gets a process group of its own. It has until a deadline: then the whole
//! group is killed (SIGKILL) and the run is reported as timed out. Its output (stdout,
//! and stderr if asked) is read as it comes, kept up to a byte cap and drained past it,
//! so that the child never blocks writing. When the child itself exits, the run ends at
//! once: a background child that still holds the output pipe does not keep us waiting,
//! and what the child left in its group is killed too ([`Leftovers::Kill`]) unless the
//! caller wants it left alone ([`Leftovers::Leave`]).
//!
//! Only processes of the group this module created are ever signalled: the group is
//! killed while the child is not yet reaped (its zombie keeps its pid, which is the
//! group's id, from being reused), and nothing outside it joins a group uninvited.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What is kept of the child's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// Nothing: stdout goes to /dev/null, stderr is inherited (a hook).
    Nothing,
    /// stdout; stderr is inherited.
    Stdout,
    /// stdout and stderr in one buffer, in the order written (as mon gives them).
    Both,
}

/// What becomes of the processes the child leaves in its group when it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// Killed with the group (a plugin's stray background children).
    Kill,
    /// Left running (a hook may start a service). If the output is captured, they
    /// lose the pipe's reader: a later write gets EPIPE.
    Leave,
}

/// The bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the spawn; at the deadline the whole group is killed.
    pub timeout: Duration,
    /// Bytes of output kept; the rest is read and dropped.
    pub max_output: usize,
    pub capture: Capture,
    pub leftovers: Leftovers,
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The child's pid (and its group's id).
    pub pid: i32,
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did (SIGKILL after a timeout).
    pub signal: Option<i32>,
    /// It ran to the deadline and was killed with its group.
    pub timed_out: bool,
    /// What it printed (see [`Capture`]), cut at the cap.
    pub output: Vec<u8>,
    /// There was more than the cap.
    pub truncated: bool,
    pub elapsed: Duration,
}

impl Finished {
    /// Why it ended, for a message: `timed out`, `exit 2`, `killed by signal 9`.
    pub fn how(&self) -> String {
        how(self.code, self.signal, self.timed_out)
    }
}

/// Why a child ended, for a message: `timed out`, `exit 2`, `killed by signal 9`.
pub fn how(code: Option<i32>, signal: Option<i32>, timed_out: bool) -> String {
    match (code, signal) {
        _ if timed_out => "timed out".into(),
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown end".into(),
    }
}

/// The process groups of the children `run` is waiting for, in every thread. Each is
/// listed while its leader is not reaped, so the group id cannot be someone else's.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<i32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// End every child `run` is still waiting for, with its group: for a daemon that stops
/// while checks run in its threads (a plugin must not outlive its scheduler).
pub fn end_running() {
    for &g in running().iter() {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
}

/// Spawn `cmd` in a process group of its own, with `stdin` written to it (or
/// /dev/null), and wait for it within `limits`. Its stdout and stderr are set here, as
/// `limits.capture` says. An error: it could not be started, or waiting for it failed.
pub fn run(mut cmd: Command, stdin: Option<Vec<u8>>, limits: &Limits) -> io::Result<Finished> {
    let start = Instant::now();
    let deadline = start + limits.timeout;
    // Close-on-exec, so that children spawned meanwhile by other threads do not get
    // the write end and hold the pipe open.
    let pipe = match limits.capture {
        Capture::Nothing => {
            cmd.stdout(Stdio::null());
            None
        }
        c => {
            let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            // Only our end is non-blocking: the child writes as to any pipe.
            fcntl(rd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            if c == Capture::Both {
                cmd.stderr(Stdio::from(wr.try_clone()?));
            }
            cmd.stdout(Stdio::from(wr));
            Some(std::fs::File::from(rd))
        }
    };
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .process_group(0);
    let mut child = cmd.spawn()?;
    // The Command holds our copies of the pipe's write end: EOF needs them gone.
    drop(cmd);
    let pid = Pid::from_raw(child.id() as i32);
    running().push(pid.as_raw());
    if let (Some(data), Some(mut to_child)) = (stdin, child.stdin.take()) {
        // A child that does not read its stdin must not block us: write from a thread
        // that ends when the pipe closes (at the latest when the group is killed).
        let spawned = std::thread::Builder::new()
            .name("child-stdin".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = to_child.write_all(&data);
            });
        if let Err(e) = spawned {
            crate::base::log::warn(&format!("cannot feed pid {pid} its input: {e}"));
        }
    }
    let exit_fd = pidfd_open(pid);
    let mut fin = Finished {
        pid: pid.as_raw(),
        ..Finished::default()
    };
    let mut eof = pipe.is_none();
    loop {
        if exited(pid)? {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            fin.timed_out = true;
            break;
        }
        // Without a pidfd (before Linux 5.3), look at the child now and then.
        let mut wait = deadline - now;
        if exit_fd.is_none() {
            wait = wait.min(Duration::from_millis(20));
        }
        let mut fds = Vec::with_capacity(2);
        if let Some(fd) = &exit_fd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if let (Some(rd), false) = (&pipe, eof) {
            fds.push(PollFd::new(rd.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            std::thread::sleep(wait);
            continue;
        }
        let ms = (wait.as_nanos().div_ceil(1_000_000)).clamp(1, i32::MAX as u128) as i32;
        match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                // Nothing sensible is left to wait with: end it rather than leak it.
                end(pid);
                return Err(e.into());
            }
        }
        drop(fds);
        if let (Some(rd), false) = (&pipe, eof) {
            eof = read_available(rd, &mut fin.output, limits.max_output, &mut fin.truncated);
        }
    }
    if fin.timed_out || limits.leftovers == Leftovers::Kill {
        // The child is not reaped yet, so the group is still ours, whatever is in it.
        let _ = killpg(pid, Signal::SIGKILL);
    }
    // What was written before the end is in the pipe: take it, without waiting for
    // writers that may still be dying (or, left alone, live on).
    if let (Some(rd), false) = (&pipe, eof) {
        read_available(rd, &mut fin.output, limits.max_output, &mut fin.truncated);
    }
    let status = reap(pid)?;
    match status {
        WaitStatus::Exited(_, c) => fin.code = Some(c),
        WaitStatus::Signaled(_, s, _) => fin.signal = Some(s as i32),
        _ => {}
    }
    fin.elapsed = start.elapsed();
    Ok(fin)
}

/// Whether the child has exited, without reaping it (its zombie keeps the group's id).
fn exited(pid: Pid) -> io::Result<bool> {
    loop {
        match waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Kill the group and reap the child, on a path that gives up on it.
fn end(pid: Pid) {
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = reap(pid);
}

/// Reap the child; out of [`RUNNING`] first, while its group id is still its own.
fn reap(pid: Pid) -> io::Result<WaitStatus> {
    running().retain(|&g| g != pid.as_raw());
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            other => return Ok(other?),
        }
    }
}

/// Read what the pipe holds now; true at EOF (or an error: nothing more will come).
fn read_available(mut rd: &std::fs::File, buf: &mut Vec<u8>, max: usize, truncated: &mut bool) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match rd.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => {
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
                if n > room {
                    *truncated = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// A descriptor that becomes readable when the child exits; None before Linux 5.3.
fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    crate::base::pidfile::pidfd_open(pid.as_raw()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    fn limits(timeout_ms: u64) -> Limits {
        Limits {
            timeout: Duration::from_millis(timeout_ms),
            max_output: 1000,
            capture: Capture::Both,
            leftovers: Leftovers::Kill,
        }
    }

    fn gone(pid: i32) -> bool {
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().chars().next()))
                .flatten();
            if matches!(state, None | Some('Z') | Some('X')) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn output_status_and_the_cap() {
        let f = run(sh("echo out; echo err >&2; exit 3"), None, &limits(5000)).unwrap();
        assert_eq!((f.code, f.signal, f.timed_out), (Some(3), None, false));
        assert_eq!(String::from_utf8_lossy(&f.output), "out\nerr\n");
        let f = run(sh("yes | head -c 300000"), None, &limits(5000)).unwrap();
        assert_eq!(f.code, Some(0));
        assert!(f.truncated && f.output.len() == 1000);
        let mut l = limits(5000);
        l.capture = Capture::Stdout;
        let f = run(sh("cat; echo err >&2"), Some(b"in\n".to_vec()), &l).unwrap();
        assert_eq!(String::from_utf8_lossy(&f.output), "in\n");
        let f = run(Command::new("/nonexistent/program"), None, &l);
        assert!(f.is_err());
    }

    #[test]
    fn the_deadline_kills_the_whole_group() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pid");
        let t = Instant::now();
        let script = format!("sleep 100 & echo $! > {}; sleep 100", p.display());
        let f = run(sh(&script), None, &limits(300)).unwrap();
        assert!(f.timed_out && f.signal == Some(9), "{f:?}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let bg: i32 = std::fs::read_to_string(&p).unwrap().trim().parse().unwrap();
        assert!(gone(bg));
    }

    #[test]
    fn an_exit_ends_the_run_and_its_leftovers_unless_asked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pid");
        let script = format!("sleep 100 & echo $! > {}; echo done", p.display());
        let t = Instant::now();
        let f = run(sh(&script), None, &limits(5000)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!((f.code, f.timed_out), (Some(0), false));
        assert_eq!(String::from_utf8_lossy(&f.output), "done\n");
        let bg: i32 = std::fs::read_to_string(&p).unwrap().trim().parse().unwrap();
        assert!(gone(bg));
        // Left alone: it lives on (and is ended here, by the test that started it).
        let mut l = limits(5000);
        l.leftovers = Leftovers::Leave;
        l.capture = Capture::Nothing;
        let t = Instant::now();
        let f = run(sh(&script), None, &l).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(f.code, Some(0));
        let bg: i32 = std::fs::read_to_string(&p).unwrap().trim().parse().unwrap();
        assert!(!gone_now(bg));
        let _ = killpg(Pid::from_raw(f.pid), Signal::SIGKILL);
        assert!(gone(bg));
    }

    fn gone_now(pid: i32) -> bool {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }
}
