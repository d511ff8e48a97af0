//! Running checks in parallel — every host of a `--mon` run, every service of a
//! scheduler round — one thread per check, at most a bounded number at once, and no
//! result waited for past its check's timeout.

use super::spec::Check;
use super::{Outcome, Status};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
pub fn spawn<T: Send + 'static>(
    check: Arc<Check>,
    host: String,
    limit: Arc<Limit>,
    tag: T,
    tx: mpsc::Sender<(T, Outcome)>,
) {
    let reply = Reply { tag: Some(tag), tx };
    let _ = std::thread::Builder::new()
        .name("check".into())
        .stack_size(STACK)
        .spawn(move || {
            let permit = limit.acquire();
            let o = check.run(&host);
            drop(permit);
            reply.send(o);
        });
}

/// Run `check` on every host at once and return the outcomes in the hosts' order.
/// A check that has not answered by its timeout (and a grace second) is reported as
/// timed out; its thread ends on its own.
pub fn run_all(check: &Check, hosts: &[String], max_parallel: usize) -> Vec<Outcome> {
    run_all_with(Arc::new(check.clone()), hosts, Limit::new(max_parallel), max_parallel)
}

/// [`run_all`] under a limit shared with other runs (the scheduler's).
pub fn run_all_with(check: Arc<Check>, hosts: &[String], limit: Arc<Limit>, max_parallel: usize) -> Vec<Outcome> {
    let (tx, rx) = mpsc::channel();
    for (i, h) in hosts.iter().enumerate() {
        spawn(check.clone(), h.clone(), limit.clone(), i, tx.clone());
    }
    drop(tx);
    let mut out: Vec<Option<Outcome>> = vec![None; hosts.len()];
    // Waiting for a free slot counts: a round of N over a limit of L lasts N/L timeouts.
    let rounds = hosts.len().div_ceil(max_parallel.max(1)) as u32;
    let deadline = Instant::now() + (check.timeout() + Duration::from_secs(1)) * rounds.max(1);
    let mut left = hosts.len();
    while left > 0 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok((i, o)) => {
                out[i] = Some(o);
                left -= 1;
            }
            Err(_) => break,
        }
    }
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| super::timed_out(check.timeout())))
        .collect()
}

/// The worst status of a set of outcomes (OK for none).
pub fn worst(outcomes: &[Outcome]) -> Status {
    outcomes.iter().fold(Status::Ok, |w, o| w.worst(o.status))
}
