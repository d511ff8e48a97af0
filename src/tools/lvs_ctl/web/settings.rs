//! `lvs-ctl cgi`'s settings, in one place: flags (the web server's CGI line or a
//! wrapper script), else the configuration file (the lvs-ctl section, `cluster.table`,
//! mon-check's `socket`), else the defaults.

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
    let (lvs, file, src) = match &path {
        Some(p) => {
            let (f, src) = crate::config::load(p)?;
            (Some(config::from_source(&src)?), f, Some(src))
        }
        None => (None, Default::default(), None),
    };
    let table = crate::config::Resolver::new(src.as_ref(), "cluster")
        .pick("--table", a.table.clone(), "table", file.cluster.table, || {
            crate::config::DEFAULT_TABLE.into()
        })
        .value;
    let backend = backend::choose(a.common.backend, lvs.as_ref().and_then(|c| c.backend));
    Ok(Settings {
        lvs,
        table,
        state: a.state.clone(),
        mon_socket: ctl::socket_path(a.mon_socket.as_deref(), path.as_deref()),
        secret: a.secret.clone(),
        backend,
    })
}
