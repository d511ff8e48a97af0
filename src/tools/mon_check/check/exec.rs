//! Running other programs — monitoring plugins, mon monitors, alert scripts — with a
//! bound on their time and on what they print. A program that runs past its time is
//! killed with its whole process group; output past the bound is read and dropped so
//! that the program is not blocked writing it.

use super::{Outcome, Status};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The default bound on what a program may print (a monitor's output goes to every
/// alert's stdin; mon has none and a runaway monitor could fill the memory).
pub const MAX_OUTPUT: usize = 256 * 1024;

/// How a program's exit code is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Plugin,
    /// mon's monitors: 0 fine, anything else a failure.
    Mon,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub argv: Vec<String>,
    pub style: Style,
    pub timeout: Duration,
    pub max_output: usize,
}

/// What happened to a program.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// stdout and stderr together, as mon gives them, cut at the bound.
    pub output: String,
    pub truncated: bool,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Ran {
    /// Why it failed, for a message: `exit 2`, `killed by signal 9`.
    pub fn how(&self) -> String {
        match (self.code, self.signal) {
            _ if self.timed_out => "timed out".into(),
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "unknown end".into(),
        }
    }
}

/// Run `argv` with `env` added, `stdin` written to it (or /dev/null), and wait for
/// it at most `timeout`.
pub fn spawn_bounded(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    max_output: usize,
) -> io::Result<Ran> {
    let start = Instant::now();
    let deadline = start + timeout;
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no program to run"))?;
    let (rd, wr) = nix::unistd::pipe().map_err(io::Error::from)?;
    let wr2 = wr.try_clone()?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::from(wr))
        .stderr(Stdio::from(wr2))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .process_group(0);
    let mut child = cmd.spawn()?;
    // The parent's copies of the write end must go, or EOF never comes.
    drop(cmd);
    let pgid = child.id() as i32;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that does not read its stdin must not block us: write from a
        // thread that ends when the pipe closes.
        let _ = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let mut ran = Ran::default();
    let mut buf = Vec::new();
    let eof = drain(&rd, &mut buf, max_output, deadline, &mut ran.truncated);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if !eof || Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let status = match status {
        Some(st) => st,
        None => {
            ran.timed_out = true;
            // SAFETY: kill(2) on the process group we created for the child.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            child.wait()?
        }
    };
    ran.code = status.code();
    ran.signal = status.signal();
    ran.output = String::from_utf8_lossy(&buf).into_owned();
    ran.elapsed = start.elapsed();
    Ok(ran)
}

/// Read the pipe until EOF (true) or the deadline (false), keeping `max` bytes.
fn drain(fd: &OwnedFd, buf: &mut Vec<u8>, max: usize, deadline: Instant, truncated: &mut bool) -> bool {
    let mut file = std::fs::File::from(match fd.try_clone() {
        Ok(f) => f,
        Err(_) => return false,
    });
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            continue;
        }
        match file.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => {
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
                if n > room {
                    *truncated = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// `mon-check exec`: run a plugin or a monitor and take its result.
pub fn run(s: &Settings) -> Outcome {
    let name = s.argv.first().cloned().unwrap_or_default();
    match spawn_bounded(&s.argv, &[], None, s.timeout, s.max_output) {
        Err(e) => Outcome::new(
            Status::Unknown,
            format!("cannot run {name}: {}", super::net::io_text(&e)),
        ),
        Ok(ran) => outcome(&ran, s.style, &name, s.timeout),
    }
}

/// A program's run as an outcome.
pub fn outcome(ran: &Ran, style: Style, name: &str, timeout: Duration) -> Outcome {
    let mut o = if ran.timed_out {
        Outcome::new(
            Status::Critical,
            format!(
                "{name} timed out after {} seconds and was killed",
                super::fmt_secs(timeout)
            ),
        )
    } else {
        let status = match style {
            Style::Plugin => Status::from_code(ran.code),
            Style::Mon if ran.code == Some(0) => Status::Ok,
            Style::Mon => Status::Critical,
        };
        let mut o = Outcome::new(status, ran.output.lines().next().unwrap_or("").to_string());
        o.verbatim = Some(ran.output.clone());
        if ran.code.is_none() || ran.output.trim().is_empty() {
            // Killed, or said nothing: say what happened instead of an empty line.
            o.text = format!("{name} {}", ran.how());
            o.verbatim = None;
        }
        o
    };
    o.detail = ran.output.lines().skip(1).map(str::to_string).collect();
    if ran.truncated {
        o.detail.push(format!("(output cut at {} bytes)", ran.output.len()));
    }
    o.elapsed = ran.elapsed;
    o
}
