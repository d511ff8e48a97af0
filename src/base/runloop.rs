//! Scheduling shared by the long-running tools: real-time priority, and waiting on
//! descriptors until a CLOCK_MONOTONIC deadline with nanosecond precision.

use crate::base::clock::mono_ns;

/// Ask for SCHED_FIFO and locked memory, as Heartbeat does; warn if refused.
pub fn go_realtime() {
    let param = libc::sched_param { sched_priority: 50 };
    // SAFETY: plain system calls on this process with valid arguments.
    unsafe {
        if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
            crate::base::log::warn(&format!("cannot run SCHED_FIFO: {}", std::io::Error::last_os_error()));
        }
        if libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) != 0 {
            crate::base::log::warn(&format!("cannot lock memory: {}", std::io::Error::last_os_error()));
        }
    }
}

/// Wait for any of `fds` to be readable, at most until `deadline` (CLOCK_MONOTONIC
/// ns; `u64::MAX` for ever), with nanosecond precision.
pub fn wait(fds: &mut [libc::pollfd], deadline: u64) -> usize {
    let now = mono_ns();
    let ts;
    let tsp = if deadline == u64::MAX {
        std::ptr::null()
    } else {
        let left = deadline.saturating_sub(now);
        ts = libc::timespec {
            tv_sec: (left / 1_000_000_000) as libc::time_t,
            tv_nsec: (left % 1_000_000_000) as libc::c_long,
        };
        &ts as *const libc::timespec
    };
    // SAFETY: fds is a valid slice of pollfd; tsp is null or points at ts.
    let r = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, tsp, std::ptr::null()) };
    r.max(0) as usize
}
