//! Running checks in parallel — every host of a `--mon` run, every service of a
//! scheduler round — one thread per check, at most a bounded number at once, and no
//! result waited for past its check's timeout.

use super::spec::Check;
use super::{Outcome, Status};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

/// A counting semaphore bounding the checks running at once across the process.
#[derive(Debug)]
pub struct Limit {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Limit {
    pub fn new(n: usize) -> Arc<Limit> {
        Arc::new(Limit {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        })
    }
    /// Wait for a slot; it is given back when the permit drops (also if the check
    /// panics).
    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

/// A slot of a [`Limit`], held while a check runs.
pub struct Permit<'a>(&'a Limit);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

/// Check threads need little stack; a small one lets a round run thousands at once.
pub const STACK: usize = 256 * 1024;

/// Where a check's outcome goes. If the check never reports — its thread could not
/// be started, or it panicked — dropping this reports UNKNOWN, so no result is lost.
struct Reply<T> {
    tag: Option<T>,
    tx: mpsc::Sender<(T, Outcome)>,
}

impl<T> Reply<T> {
    fn send(mut self, o: Outcome) {
        if let Some(t) = self.tag.take() {
            let _ = self.tx.send((t, o));
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(t) = self.tag.take() {
            let _ = self
                .tx
                .send((t, Outcome::new(Status::Unknown, "the check could not run")));
        }
    }
}

/// Start `check` on `host` in a thread of its own; the outcome comes on `tx` with `tag`.
/// `started` gets the CLOCK_MONOTONIC time (ns) at which it got its slot and began.
pub fn spawn<T: Send + 'static>(
    check: Arc<Check>,
    host: String,
    limit: Arc<Limit>,
    tag: T,
    tx: mpsc::Sender<(T, Outcome)>,
    started: Arc<AtomicU64>,
) {
    let reply = Reply { tag: Some(tag), tx };
    let _ = std::thread::Builder::new()
        .name("check".into())
        .stack_size(STACK)
        .spawn(move || {
            let permit = limit.acquire();
            started.store(crate::base::clock::mono_ns().max(1), Ordering::Relaxed);
            let o = check.run(&host);
            drop(permit);
            reply.send(o);
        });
}

/// Run `check` on every host at once and return the outcomes in the hosts' order.
/// A check that has not answered by its timeout (and a grace second) after it began is
/// reported as timed out; its thread ends on its own. Time spent waiting for a slot
/// does not count against it.
pub fn run_all(check: &Check, hosts: &[String], max_parallel: usize) -> Vec<Outcome> {
    run_all_with(Arc::new(check.clone()), hosts, Limit::new(max_parallel))
}

/// [`run_all`] under a limit shared with other runs (the scheduler's).
pub fn run_all_with(check: Arc<Check>, hosts: &[String], limit: Arc<Limit>) -> Vec<Outcome> {
    let (tx, rx) = mpsc::channel();
    let started: Vec<Arc<AtomicU64>> = hosts.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    for (i, h) in hosts.iter().enumerate() {
        spawn(
            check.clone(),
            h.clone(),
            limit.clone(),
            i,
            tx.clone(),
            started[i].clone(),
        );
    }
    drop(tx);
    let grace = (check.timeout() + Duration::from_secs(1)).as_nanos() as u64;
    let mut out: Vec<Option<Outcome>> = vec![None; hosts.len()];
    let mut left = hosts.len();
    while left > 0 {
        // Give up on the checks that began more than their timeout ago; wait for the
        // next one to answer or to reach that point.
        let now = crate::base::clock::mono_ns();
        let mut wait = grace;
        for (i, o) in out.iter_mut().enumerate() {
            let s = started[i].load(Ordering::Relaxed);
            if o.is_some() || s == 0 {
                continue;
            }
            if now >= s + grace {
                let mut t = super::timed_out(check.timeout());
                t.status = check.on_timeout;
                *o = Some(t);
                left -= 1;
            } else {
                wait = wait.min(s + grace - now);
            }
        }
        if left == 0 {
            break;
        }
        match rx.recv_timeout(Duration::from_nanos(wait)) {
            Ok((i, o)) => {
                if out[i].is_none() {
                    out[i] = Some(o);
                    left -= 1;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every sender is gone: whatever has not answered never will.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::new(Status::Unknown, "the check could not run")))
        .collect()
}

/// The worst status of a set of outcomes (OK for none).
pub fn worst(outcomes: &[Outcome]) -> Status {
    outcomes.iter().fold(Status::Ok, |w, o| w.worst(o.status))
}
