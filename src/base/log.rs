//! Logging: one line per record on stderr (journald reads the `<N>` priority prefix
//! when it captures a service's stderr), or to syslog with `--syslog`.

use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

static TOOL: OnceLock<String> = OnceLock::new();
static SYSLOG: AtomicBool = AtomicBool::new(false);
static PREFIX: AtomicBool = AtomicBool::new(false);
static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warn = 4,
    Info = 6,
    Debug = 7,
}

/// Set up logging once, at the start of a main.
pub fn init(tool: &str, syslog: bool, verbose: bool, quiet: bool) {
    let _ = TOOL.set(tool.to_string());
    LEVEL.store(
        if verbose {
            Level::Debug
        } else if quiet {
            Level::Warn
        } else {
            Level::Info
        } as u8,
        Ordering::Relaxed,
    );
    // Under systemd, stderr goes to the journal, which understands `<N>` prefixes.
    PREFIX.store(std::env::var_os("JOURNAL_STREAM").is_some(), Ordering::Relaxed);
    if syslog {
        let ident = CString::new(tool).unwrap_or_default();
        // openlog keeps the pointer: leak it, it lives as long as the process.
        let ident = Box::leak(Box::new(ident));
        // SAFETY: ident is a valid NUL-terminated string that is never freed; nix 0.29 has
        // no syslog wrapper.
        unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
        SYSLOG.store(true, Ordering::Relaxed);
    }
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

pub fn log(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    if SYSLOG.load(Ordering::Relaxed) {
        let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        // SAFETY: "%s" with one valid C string argument.
        unsafe { libc::syslog(level as i32, c"%s".as_ptr(), c.as_ptr()) };
        return;
    }
    let tool = TOOL.get().map(String::as_str).unwrap_or("hakit");
    let word = match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
    };
    let mut err = std::io::stderr().lock();
    let _ = if PREFIX.load(Ordering::Relaxed) {
        writeln!(err, "<{}>{tool}: {word}: {msg}", level as u8)
    } else {
        writeln!(err, "{tool}: {word}: {msg}")
    };
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}
pub fn info(msg: &str) {
    log(Level::Info, msg)
}
pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}
