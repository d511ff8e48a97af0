//! Exit statuses shared by every tool except mon-check (which follows the
//! monitoring-plugin codes). Documented in every man page.

use std::fmt;

/// The process exit status of hakit's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The asked thing was done, or is so.
    Success = 0,
    /// The asked thing failed, or is not so (a node is not up, a send failed).
    Failure = 1,
    /// A usage or configuration error: nothing was changed.
    Usage = 2,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s as u8)
    }
}

/// Every module's error type says which exit status it stands for.
pub trait HasExitStatus: fmt::Display {
    fn exit_status(&self) -> ExitStatus;
}

/// Log a module error as one line (the logger prefixes the tool's name) and return
/// the exit status it maps to.
pub fn report<E: HasExitStatus>(err: &E) -> ExitStatus {
    crate::base::log::error(&format!("{err}"));
    err.exit_status()
}
