//! Acting on events outside the process: a hook program run for every event (one at a
//! time, in order, never blocking detection) and signals to the processes that asked
//! to be told (the fault detector signalling its users, as in the dual-channel design).

use crate::events::Event;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;

/// The most events that wait for a slow hook; older ones are dropped with a warning.
const MAX_QUEUE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whom {
    Pid(i32),
    PidFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub whom: Whom,
    pub signal: Signal,
}

impl NotifyTarget {
    /// `1234`, `1234:USR1`, `/run/app.pid`, `/run/app.pid:SIGHUP`.
    pub fn parse(s: &str) -> Result<NotifyTarget, String> {
        let (who, sig) = match s.rsplit_once(':') {
            Some((w, sg)) if !sg.contains('/') => (w, Some(sg)),
            _ => (s, None),
        };
        let signal = match sig {
            None => Signal::SIGUSR2,
            Some(name) => {
                let up = name.to_ascii_uppercase();
                let full = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
                Signal::from_str(&full).map_err(|_| format!("`{name}` is not a signal name"))?
            }
        };
        let whom = if let Ok(pid) = who.parse::<i32>() {
            if pid <= 1 {
                return Err(format!("refusing to signal pid {pid}"));
            }
            Whom::Pid(pid)
        } else if who.contains('/') {
            Whom::PidFile(who.into())
        } else {
            return Err(format!("`{who}` is neither a pid nor a pid file path"));
        };
        Ok(NotifyTarget { whom, signal })
    }

    fn pid(&self) -> Option<i32> {
        match &self.whom {
            Whom::Pid(p) => Some(*p),
            Whom::PidFile(f) => std::fs::read_to_string(f)
                .ok()?
                .trim()
                .parse()
                .ok()
                .filter(|&p: &i32| p > 1),
        }
    }

    /// Signal the target; a target that is gone is not an error worth more than a log.
    pub fn send(&self) -> Result<(), String> {
        let pid = self.pid().ok_or_else(|| format!("{:?}: no pid to signal", self.whom))?;
        kill(Pid::from_raw(pid), self.signal).map_err(|e| format!("cannot signal pid {pid}: {e}"))
    }
}

/// Runs the hook for each event in order, one at a time.
pub struct HookRunner {
    program: Option<PathBuf>,
    queue: VecDeque<Event>,
    running: Option<Child>,
    dropped: u64,
}

impl HookRunner {
    pub fn new(program: Option<PathBuf>) -> HookRunner {
        HookRunner {
            program,
            queue: VecDeque::new(),
            running: None,
            dropped: 0,
        }
    }

    pub fn set_program(&mut self, program: Option<PathBuf>) {
        self.program = program;
    }

    pub fn push(&mut self, ev: &Event) {
        if self.program.is_none() {
            return;
        }
        if self.queue.len() >= MAX_QUEUE {
            self.queue.pop_front();
            self.dropped += 1;
            crate::base::log::warn(&format!("hook too slow: {} events dropped so far", self.dropped));
        }
        self.queue.push_back(ev.clone());
        self.pump();
    }

    /// Reap a finished hook and start the next one. Call on SIGCHLD and now and then.
    pub fn pump(&mut self) {
        if let Some(child) = &mut self.running {
            match child.try_wait() {
                Ok(Some(st)) => {
                    if !st.success() {
                        crate::base::log::warn(&format!("hook exited with {st}"));
                    }
                    self.running = None;
                }
                Ok(None) => return,
                Err(e) => {
                    crate::base::log::warn(&format!("hook: {e}"));
                    self.running = None;
                }
            }
        }
        let Some(program) = self.program.clone() else { return };
        while let Some(ev) = self.queue.pop_front() {
            match spawn(&program, &ev) {
                Ok(child) => {
                    self.running = Some(child);
                    return;
                }
                Err(e) => crate::base::log::warn(&format!("cannot run hook {}: {e}", program.display())),
            }
        }
    }

    pub fn busy(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }

    /// Wait for the hooks still queued (at a clean stop), for at most `limit`.
    pub fn finish(&mut self, limit: std::time::Duration) {
        let end = std::time::Instant::now() + limit;
        while self.busy() && std::time::Instant::now() < end {
            self.pump();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

fn spawn(program: &Path, ev: &Event) -> std::io::Result<Child> {
    let mut cmd = Command::new(program);
    cmd.arg(ev.kind.as_str())
        .arg(&ev.subject)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in ev.env() {
        cmd.env(k, v);
    }
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn notify_targets() {
        assert_eq!(
            NotifyTarget::parse("1234").unwrap(),
            NotifyTarget {
                whom: Whom::Pid(1234),
                signal: Signal::SIGUSR2
            }
        );
        assert_eq!(NotifyTarget::parse("1234:usr1").unwrap().signal, Signal::SIGUSR1);
        assert_eq!(
            NotifyTarget::parse("/run/a.pid:SIGHUP").unwrap().whom,
            Whom::PidFile("/run/a.pid".into())
        );
        assert!(NotifyTarget::parse("1").is_err());
        assert!(NotifyTarget::parse("1234:NOPE").is_err());
        assert!(NotifyTarget::parse("name").is_err());
    }
}
