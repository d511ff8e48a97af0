//! Acting on events outside the process: a hook program run for every event and
//! signals to the processes that asked to be told (the fault detector signalling its
//! users, as in the dual-channel design).
//!
//! Hooks run one at a time and in the order of the events (Heartbeat's scripts rely on
//! it), on a worker thread of their own, so that a slow hook never holds up detection,
//! the event lines or the signals. Each hook has a time limit: one still running then is
//! killed with its process group (what it started in the background goes too) and
//! reported in one line naming the event and the limit; the next event's hook runs.
//! What a hook that ends in time leaves in the background (a service it started) is
//! left alone. A hook's stdout goes to /dev/null (stdout carries the events), its
//! stderr to the tool's.
//!
//! At most `queue` events wait for the hook; when that many wait, the event is dropped
//! for the hook only (stdout, the notified processes and the table still get it),
//! counted, and logged — at once for the first, then at most every ten seconds with
//! the count, and once more when the queue has run empty — so nothing is lost silently.

use crate::base::pidfile::{self, PidRecord};
use crate::base::proc::{self, Capture, Leftovers, Limits};
use crate::events::Event;
use nix::sys::signal::Signal;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often dropped events are reported while the queue stays full.
const REPORT_EVERY: Duration = Duration::from_secs(10);

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

    /// Signal the target; a target that is gone is not an error worth more than a log.
    /// A pid file is read as `base::pidfile` reads one: refused if another user owns it
    /// or others can write it; the signal goes through a pidfd.
    pub fn send(&self) -> Result<(), String> {
        let rec = match &self.whom {
            Whom::Pid(pid) => PidRecord {
                pid: *pid,
                start: None,
                extra: Vec::new(),
                owner: None,
            },
            Whom::PidFile(f) => {
                pidfile::read(f)?.ok_or_else(|| format!("{}: no pid file, nobody to signal", f.display()))?
            }
        };
        if rec.signal(self.signal)? {
            Ok(())
        } else {
            Err(format!("pid {} is gone; nothing signalled", rec.pid))
        }
    }
}

/// One event for the hook, with the hook and the limit in force when it happened.
struct Job {
    ev: Event,
    program: Arc<PathBuf>,
    timeout: Duration,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A hook is running.
    running: bool,
    /// No more jobs: the worker ends once the queue is empty.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    /// Dropped since the last report.
    unreported: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Log the events dropped since the last report: at once the first time, then at
    /// most every REPORT_EVERY, or now if `now`.
    fn report_drops(&self, now: bool) {
        if self.unreported.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        if !now && last.is_some_and(|t| t.elapsed() < REPORT_EVERY) {
            return;
        }
        let n = self.unreported.swap(0, Ordering::Relaxed);
        if n == 0 {
            return;
        }
        *last = Some(Instant::now());
        crate::base::log::warn(&format!(
            "hook queue full ({} events waiting): {n} event(s) not given to the hook, {} in all \
             (stdout, --notify and the table had them)",
            self.capacity,
            self.dropped.load(Ordering::Relaxed)
        ));
    }
}

/// Runs the hook for each event in order, one at a time, on a worker thread, each
/// within its time limit; at most `queue` events wait.
pub struct HookRunner {
    program: Option<Arc<PathBuf>>,
    timeout: Duration,
    shared: Arc<Shared>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl HookRunner {
    /// Start the worker. `program`: the hook (None: events are not queued);
    /// `timeout`: each hook's time limit; `queue`: events waiting at most.
    pub fn start(program: Option<PathBuf>, timeout: Duration, queue: usize) -> HookRunner {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            capacity: queue.max(1),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            last_report: Mutex::new(None),
        });
        let for_worker = shared.clone();
        let worker = std::thread::Builder::new()
            .name("hooks".into())
            .stack_size(256 * 1024)
            .spawn(move || work(&for_worker));
        let worker = match worker {
            Ok(w) => Some(w),
            Err(e) => {
                crate::base::log::error(&format!("cannot start the hook thread ({e}); hooks will not run"));
                None
            }
        };
        HookRunner {
            program: program.map(Arc::new),
            timeout,
            shared,
            worker,
        }
    }

    /// A reload: the hook and its time limit for the events from now on (those already
    /// waiting run as they were queued).
    pub fn configure(&mut self, program: Option<PathBuf>, timeout: Duration) {
        self.program = program.map(Arc::new);
        self.timeout = timeout;
    }

    /// Queue the hook for `ev`; never blocks. A full queue drops it for the hook only.
    pub fn push(&mut self, ev: &Event) {
        let Some(program) = &self.program else { return };
        if self.worker.is_none() {
            return;
        }
        let mut q = self.shared.lock();
        if q.jobs.len() >= self.shared.capacity {
            drop(q);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            self.shared.unreported.fetch_add(1, Ordering::Relaxed);
            self.shared.report_drops(false);
            return;
        }
        q.jobs.push_back(Job {
            ev: ev.clone(),
            program: program.clone(),
            timeout: self.timeout,
        });
        drop(q);
        self.shared.changed.notify_all();
    }

    /// Events dropped for the hook so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// At a clean stop: let the hooks still queued run, for at most `limit` in all.
    /// What is then still waiting is dropped (and said so); a hook still running is
    /// left running, no longer watched.
    pub fn finish(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        let mut q = self.shared.lock();
        q.closed = true;
        self.shared.changed.notify_all();
        while (q.running || !q.jobs.is_empty()) && self.worker.is_some() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            q = self
                .shared
                .changed
                .wait_timeout(q, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let (left, running) = (q.jobs.len(), q.running);
        q.jobs.clear();
        drop(q);
        self.shared.report_drops(true);
        if left > 0 || running {
            crate::base::log::warn(&format!(
                "stopping: {left} event(s) still waiting for the hook are dropped{}",
                if running {
                    "; the running hook is left to finish"
                } else {
                    ""
                }
            ));
        } else if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for HookRunner {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

/// The worker: one hook at a time, in order, until the queue is closed and empty.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    q.running = true;
                    break j;
                }
                if q.closed {
                    return;
                }
                q = shared.changed.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        run_one(&job);
        let empty = {
            let mut q = shared.lock();
            q.running = false;
            q.jobs.is_empty()
        };
        shared.changed.notify_all();
        shared.report_drops(empty);
    }
}

fn run_one(job: &Job) {
    let ev = &job.ev;
    let mut cmd = Command::new(&*job.program);
    cmd.arg(ev.kind.as_str()).arg(&ev.subject).envs(ev.env());
    let limits = Limits {
        timeout: job.timeout,
        max_output: 0,
        capture: Capture::Nothing,
        leftovers: Leftovers::Leave,
    };
    let what = || format!("hook {} for {} {}", job.program.display(), ev.kind.as_str(), ev.subject);
    match proc::run(cmd, None, &limits) {
        Ok(f) if f.timed_out => crate::base::log::warn(&format!(
            "{}: still running at its time limit of {}; killed with its process group",
            what(),
            crate::base::duration::format(job.timeout)
        )),
        Ok(f) if f.code != Some(0) => crate::base::log::warn(&format!("{}: {}", what(), f.how())),
        Ok(_) => {}
        Err(e) => crate::base::log::warn(&format!("{}: cannot run it: {e}", what())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    use std::path::Path;
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

    #[test]
    fn notify_reads_pid_files_as_base_pidfile_does() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::ExitStatusExt;
        let d = tempfile::tempdir().unwrap();
        let pidf = d.path().join("app.pid");
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(&pidf, format!("{}\n", child.id())).unwrap();
        std::fs::set_permissions(&pidf, std::fs::Permissions::from_mode(0o666)).unwrap();
        let t = NotifyTarget::parse(&format!("{}:TERM", pidf.display())).unwrap();
        let e = t.send().unwrap_err();
        assert!(e.contains("other users write"), "{e}");
        std::fs::set_permissions(&pidf, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(t.send(), Ok(()));
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
        let e = t.send().unwrap_err();
        assert!(e.contains("gone"), "{e}");
        let e = NotifyTarget::parse(&format!("{}/none.pid", d.path().display()))
            .unwrap()
            .send()
            .unwrap_err();
        assert!(e.contains("no pid file"), "{e}");
    }

    fn event(subject: &str) -> Event {
        Event::new(crate::events::Kind::NodeDead, subject, 0)
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("hook.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn wait_until(f: impl Fn() -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !f() {
            if std::time::Instant::now() > end {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        true
    }

    /// Issue 8, defect 7: a hook that never ends is killed at its time limit (with what
    /// it started), and the next event's hook still runs.
    #[test]
    fn a_hung_hook_is_killed_and_the_next_one_runs() {
        let d = tempfile::tempdir().unwrap();
        let (log, pidf) = (d.path().join("log"), d.path().join("pid"));
        let hook = script(
            d.path(),
            &format!(
                "echo \"$HA_EVENT $HA_SUBJECT\" >> {}\nif [ \"$HA_SUBJECT\" = hang ]; then sleep 1000 & echo $! > {}; wait; fi",
                log.display(),
                pidf.display()
            ),
        );
        let mut h = HookRunner::start(Some(hook), std::time::Duration::from_millis(300), 16);
        let t = std::time::Instant::now();
        h.push(&event("hang"));
        h.push(&event("after"));
        h.finish(std::time::Duration::from_secs(5));
        let took = t.elapsed();
        let sleeper: Option<i32> = std::fs::read_to_string(&pidf).ok().and_then(|s| s.trim().parse().ok());
        let gone = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z ") || s.contains(") X "))
                .unwrap_or(true)
        };
        let sleeper_gone = sleeper.is_some_and(|p| wait_until(|| gone(p)));
        if let (Some(p), false) = (sleeper, sleeper_gone) {
            // The test's own script started it: end it here.
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        assert_eq!(
            std::fs::read_to_string(&log).unwrap_or_default(),
            "node-dead hang\nnode-dead after\n"
        );
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
        assert!(sleeper_gone, "what the hung hook started was killed with it");
    }

    /// A full queue drops the event for the hook only, and counts it.
    #[test]
    fn a_full_queue_drops_and_counts() {
        let d = tempfile::tempdir().unwrap();
        let (log, gate) = (d.path().join("log"), d.path().join("gate"));
        let hook = script(
            d.path(),
            &format!(
                "echo \"$HA_SUBJECT\" >> {}\nwhile [ ! -e {} ]; do sleep 0.02; done",
                log.display(),
                gate.display()
            ),
        );
        // However the test ends, the gate opens and the hook ends.
        struct Open<'a>(&'a Path);
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                let _ = std::fs::write(self.0, "");
            }
        }
        let _open = Open(&gate);
        let mut h = HookRunner::start(Some(hook), std::time::Duration::from_secs(10), 1);
        h.push(&event("e1"));
        assert!(wait_until(
            || std::fs::read_to_string(&log).unwrap_or_default() == "e1\n"
        ));
        for e in ["e2", "e3", "e4"] {
            h.push(&event(e));
        }
        assert_eq!(h.dropped(), 2);
        std::fs::write(&gate, "").unwrap();
        h.finish(std::time::Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "e1\ne2\n");
    }
}
