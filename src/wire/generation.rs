//! The generation (`hg`): bumped and saved durably at every start of a sender, so that
//! receivers can tell a restart from a replay of old messages.
//!
//! The new generation is the larger of the saved one plus one and the current Unix
//! time in seconds: even if the file is lost, a restarted node still announces a higher
//! generation than before (as long as the clock is sane) instead of being refused as a
//! replay by every peer.

use crate::base::exit::{ExitStatus, HasExitStatus};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Error(PathBuf, String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.0.display(), self.1)
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }
}

/// Read, bump, save with fsync (file and directory), and return the new generation.
pub fn bump(path: &Path) -> Result<u64, Error> {
    let e = |m: String| Error(path.into(), m);
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| e(format!("`{}` is not a generation number", s.trim())))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
        Err(err) => return Err(e(format!("cannot read: {err}"))),
    };
    let now = crate::base::clock::unix_ms() / 1000;
    let new = (old + 1).max(now);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| e(format!("cannot create {}: {err}", dir.display())))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|err| e(format!("cannot write: {err}")))?;
    writeln!(f, "{new}")
        .and_then(|_| f.sync_all())
        .map_err(|err| e(format!("cannot write: {err}")))?;
    std::fs::rename(&tmp, path).map_err(|err| e(format!("cannot save: {err}")))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bumps_and_survives_loss() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/gen");
        let a = super::bump(&p).unwrap();
        let b = super::bump(&p).unwrap();
        assert!(b > a);
        std::fs::write(&p, "garbage").unwrap();
        assert!(super::bump(&p).is_err());
        std::fs::remove_file(&p).unwrap();
        assert!(super::bump(&p).unwrap() >= a);
    }
}
