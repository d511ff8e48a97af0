//! Running other programs — monitoring plugins, mon monitors, alert scripts — with a
//! bound on their time and on what they print, through [`crate::base::proc`]: a
//! program that runs past its time is killed with its whole process group; output past
//! the bound is read and dropped so that the program is not blocked writing it; and
//! when the program exits, what it left running in its process group is ended with it
//! (a background child holding the output pipe neither delays the result nor piles up
//! under the scheduler).

use super::{Outcome, Status};
use crate::base::proc::{self, Capture, Leftovers, Limits};
use std::io;
use std::process::Command;
use std::time::Duration;

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
        proc::how(self.code, self.signal, self.timed_out)
    }
}

/// Run `argv` with `env` added, `stdin` written to it (or /dev/null), and wait for
/// it at most `timeout`; when it exits, its process group goes with it.
pub fn spawn_bounded(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    max_output: usize,
) -> io::Result<Ran> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no program to run"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    let limits = Limits {
        timeout,
        max_output,
        capture: Capture::Both,
        leftovers: Leftovers::Kill,
    };
    let f = proc::run(cmd, stdin, &limits)?;
    Ok(Ran {
        code: f.code,
        signal: f.signal,
        output: String::from_utf8_lossy(&f.output).into_owned(),
        truncated: f.truncated,
        timed_out: f.timed_out,
        elapsed: f.elapsed,
    })
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
