//! The loop every long-running tool waits in: one `ppoll` over the signal pipe and the
//! tool's own descriptors, until a CLOCK_MONOTONIC deadline with nanosecond precision.
//! Signals (see [`Signals`]) only set flags and wake the loop; the tool does the work.
//! Also the real-time priority hb-send and hb-watch may ask for.

use crate::base::clock::mono_ns;
use crate::base::privilege::Cap;
pub use crate::base::signals::Signals;
use nix::poll::{PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use std::os::fd::{AsFd, BorrowedFd};

/// Which of the sources given to [`RunLoop::wait`] are readable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready(u64);

impl Ready {
    /// Whether source `i` (its index in the slice given to `wait`) is readable.
    pub fn has(self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }
}

/// Signals and a wait.
pub struct RunLoop {
    signals: Signals,
}

impl RunLoop {
    /// Install the signal handlers (TERM/INT, HUP, USR1, CHLD).
    pub fn new() -> std::io::Result<RunLoop> {
        Ok(RunLoop {
            signals: Signals::install()?,
        })
    }

    /// The flags the signals set.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// Wait until a signal arrives, one of `sources` is readable (a `None` is not
    /// watched this time), or `deadline` (CLOCK_MONOTONIC ns; `u64::MAX` for ever).
    /// At most 63 sources.
    pub fn wait(&mut self, sources: &[Option<BorrowedFd<'_>>], deadline: u64) -> Ready {
        let mut fds = Vec::with_capacity(sources.len() + 1);
        let mut index = Vec::with_capacity(sources.len());
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        for (i, s) in sources.iter().enumerate().take(63) {
            if let Some(fd) = s {
                fds.push(PollFd::new(*fd, PollFlags::POLLIN));
                index.push(i);
            }
        }
        let timeout = (deadline != u64::MAX).then(|| {
            let left = deadline.saturating_sub(mono_ns());
            TimeSpec::new((left / 1_000_000_000) as _, (left % 1_000_000_000) as _)
        });
        // EINTR (a signal) is a wake-up like any other.
        let _ = nix::poll::ppoll(&mut fds, timeout, None);
        let mut ready = Ready(0);
        for (k, fd) in fds.iter().enumerate().skip(1) {
            if fd.revents().is_some_and(|r| !r.is_empty()) {
                ready.0 |= 1 << index[k - 1];
            }
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            self.signals.drain();
        }
        ready
    }
}

/// Ask for SCHED_FIFO and locked memory, as Heartbeat does; warn if refused (it needs
/// CAP_SYS_NICE and CAP_IPC_LOCK, or root).
pub fn go_realtime() {
    if !fifo_this_thread() {
        crate::base::log::warn(&format!(
            "cannot run SCHED_FIFO (needs {}): {}",
            Cap::SysNice.name(),
            std::io::Error::last_os_error()
        ));
    }
    use nix::sys::mman::{mlockall, MlockAllFlags};
    if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        crate::base::log::warn(&format!(
            "cannot lock memory (needs {} or LimitMEMLOCK): {e}",
            Cap::IpcLock.name()
        ));
    }
}

/// SCHED_FIFO for the calling thread (a thread started later asks for itself).
pub fn fifo_this_thread() -> bool {
    let param = libc::sched_param { sched_priority: 50 };
    // RESET_ON_FORK: hooks, plugins and alerts start as ordinary processes, so that a
    // busy one cannot starve the detector it was started by.
    let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
    // SAFETY: a plain system call on this process with a valid parameter; nix 0.29 has
    // no wrapper for sched_setscheduler.
    unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn wakes_for_a_source_and_for_a_deadline() {
        let mut l = RunLoop::new().unwrap();
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let t0 = mono_ns();
        let r = l.wait(&[Some(a.as_fd())], t0 + 20_000_000);
        assert!(!r.has(0));
        assert!(mono_ns() - t0 >= 19_000_000, "waited for the deadline");
        b.write_all(b"x").unwrap();
        let r = l.wait(&[None, Some(a.as_fd())], u64::MAX);
        assert!(r.has(1) && !r.has(0));
    }
}
