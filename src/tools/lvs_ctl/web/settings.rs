//! `lvs-ctl cgi`'s settings, in one place: flags (the web server's CGI line or a
//! wrapper script), else the configuration file, else the defaults.

use crate::config::Error;
use crate::tools::lvs_ctl::backend::{self, Kind};
use crate::tools::lvs_ctl::cli::CgiArgs;
use crate::tools::lvs_ctl::config::{self, Config};
use crate::tools::mon_check::sched::ctl;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Settings {
    /// The lvs-ctl section (None: no configuration file; the kernel's table alone).
    pub lvs: Option<Config>,
    pub table: PathBuf,
    pub state: PathBuf,
    pub mon_socket: PathBuf,
    pub secret: PathBuf,
    pub backend: Kind,
}

/// Checked before anything is read or changed; an error names its file:line:column.
pub fn resolve(a: &CgiArgs) -> Result<Settings, Error> {
    let path = crate::tools::lvs_ctl::main::config_path(&a.config);
    let lvs = match &path {
        Some(p) => Some(config::load(p)?),
        None => None,
    };
    let backend = backend::choose(a.common.backend, lvs.as_ref().and_then(|c| c.backend));
    Ok(Settings {
        lvs,
        table: a.table.clone(),
        state: a.state.clone(),
        mon_socket: ctl::socket_path(a.mon_socket.as_deref(), path.as_deref()),
        secret: a.secret.clone(),
        backend,
    })
}
