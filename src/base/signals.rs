//! Signal handling shared by the long-running tools: TERM/INT stop cleanly, HUP
//! reloads, USR1 is the tool's own (a status dump, or an armed ipfake's go), USR2 a
//! tool's second (chan-switch: a hand request is waiting). Handlers
//! only set flags and wake the poll loop through a self-pipe; the loop does the work.
//! (Child processes are watched through pidfds by `base::proc`, not SIGCHLD.)
//!
//! Also: the one-shot commands die quietly of SIGPIPE when their reader goes away
//! (`hb-watch status | head -1`), as a C tool does, instead of Rust's panic on a
//! failed print; the daemons keep SIGPIPE ignored and handle the error (see
//! `events::Sink`).

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::io::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    usr1: Arc<AtomicBool>,
    usr2: Arc<AtomicBool>,
    wake_rx: UnixStream,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        let s = Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
            usr1: Arc::new(AtomicBool::new(false)),
            usr2: Arc::new(AtomicBool::new(false)),
            wake_rx: rx,
        };
        for (sig, flag) in [
            (SIGTERM, &s.stop),
            (SIGINT, &s.stop),
            (SIGHUP, &s.reload),
            (SIGUSR1, &s.usr1),
            (SIGUSR2, &s.usr2),
        ] {
            signal_hook::flag::register(sig, flag.clone())?;
            signal_hook::low_level::pipe::register_raw(sig, tx.try_clone()?.into_raw_fd())?;
        }
        Ok(s)
    }

    /// Empty the wake-up pipe.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        use std::io::Read;
        while let Ok(n) = (&self.wake_rx).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }

    pub fn stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::Relaxed)
    }
    /// SIGUSR1 arrived: a status dump for the daemons, "take it now" for an armed ipfake.
    pub fn take_usr1(&self) -> bool {
        self.usr1.swap(false, Ordering::Relaxed)
    }
    /// SIGUSR2 arrived (hb-watch's --notify sends it too: a tool that takes it must
    /// look for its own reason, and find none on a notification).
    pub fn take_usr2(&self) -> bool {
        self.usr2.swap(false, Ordering::Relaxed)
    }
}

impl AsFd for Signals {
    /// The wake-up pipe: readable after any signal.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wake_rx.as_fd()
    }
}

/// A one-shot command's answer, whole, to `out` (stdout), flushed: a reader that went
/// away (EPIPE, where SIGPIPE is still ignored: `lvs-ctl -L -n | head`) ends the
/// answer, not in an error. The error is one line (`stdout: ...`).
pub fn write_answer(out: &mut dyn std::io::Write, text: &[u8]) -> Result<(), String> {
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

/// For a one-shot command: a reader that goes away ends the process (SIGPIPE's
/// default) instead of making a print panic.
pub fn die_on_broken_pipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_DFL installs no handler, so nothing can run in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
