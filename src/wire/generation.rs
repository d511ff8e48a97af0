//! The generation (`hg`): bumped and saved durably at every start of a sender, so that
//! receivers can tell a restart from a replay of old messages.
//!
//! The new generation is the larger of the saved one plus one and the current Unix
//! time in seconds: even if the file is lost, a restarted node still announces a higher
//! generation than before (as long as the clock is sane) instead of being refused as a
//! replay by every peer.

use crate::base::exit::{ExitStatus, HasExitStatus};
use std::fmt;
use std::path::Path;

/// One line that names the file (fsio's messages name it already).
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }
}

/// Read, bump, save with fsync (file and directory), and return the new generation.
/// The file is read without following a symlink and only if no other user can have
/// written it; it is replaced through a new temporary (see [`crate::base::fsio`]).
pub fn bump(path: &Path) -> Result<u64, Error> {
    let old = match crate::base::fsio::read_trusted(path).map_err(Error)? {
        Some(s) => s.trim().parse::<u64>().map_err(|_| {
            // One line, however long or odd the file: its start, escaped.
            let shown: String = s.trim().chars().take(40).collect();
            Error(format!("{}: {shown:?} is not a generation number", path.display()))
        })?,
        None => 0,
    };
    let now = crate::base::clock::unix_ms() / 1000;
    let new = (old + 1).max(now);
    crate::base::fsio::write_atomic(
        path,
        format!("{new}\n").as_bytes(),
        0o644,
        crate::base::fsio::Durability::Durable,
    )
    .map_err(Error)?;
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

    #[test]
    fn the_temporary_is_never_written_through_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("gen");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        // Where the temporary went before (GEN.tmp), and a symlink as the file itself.
        std::os::unix::fs::symlink(&victim, d.path().join("gen.tmp")).unwrap();
        super::bump(&p).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let e = super::bump(&p).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
