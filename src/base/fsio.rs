//! Files the tools create or rewrite — tables, FIFOs, pid files, state, generations —
//! made so that another local user cannot steer them: no symlink is followed, a
//! temporary is always a new file (O_EXCL), and nothing is adopted that someone else
//! owns or can write.
//!
//! Errors are one line naming the path; callers wrap them in their module's error.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// What may share a file with its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Only the owner may write (group and others may read).
    OwnerOnly,
    /// The file's group may write too (a FIFO shared with a group of scripts).
    GroupWrite,
}

/// The effective user, whose files the tools trust.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Refuse a file that another user owns or that others can write: such a file may have
/// been planted to be adopted. Trusted owners: the effective user, root (which can
/// write anything anyway), and the owner of the directory the file is in (who can
/// replace it anyway: a table in `/run/hakit` owned by the `hakit` user is read by
/// root's `hb-watch status`; a file in a sticky `/tmp` owned by someone else is not).
pub fn check_trusted(path: &Path, m: &Metadata, share: Share) -> Result<(), String> {
    let me = euid();
    let dir_owner = path
        .parent()
        .map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d })
        .and_then(|d| std::fs::metadata(d).ok())
        .map(|d| d.uid());
    if m.uid() != me && m.uid() != 0 && Some(m.uid()) != dir_owner {
        return Err(format!(
            "{}: owned by uid {}, not by this user (uid {me}); refusing to use it",
            path.display(),
            m.uid()
        ));
    }
    let mode = m.mode() & 0o7777;
    let forbidden = match share {
        Share::OwnerOnly => 0o022,
        Share::GroupWrite => 0o002,
    };
    if mode & forbidden != 0 {
        return Err(format!(
            "{}: mode {mode:04o} lets other users write it; refusing to use it",
            path.display()
        ));
    }
    Ok(())
}

/// Open a regular file to read, refusing a symlink and a file [`check_trusted`] refuses.
pub fn open_read_trusted(path: &Path) -> Result<File, String> {
    let f = open_read(path).map_err(|e| open_error(path, e))?;
    let m = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    check_trusted(path, &m, Share::OwnerOnly)?;
    Ok(f)
}

/// Create a file's directory if missing (mode 0755, the parents too).
pub fn ensure_parent(path: &Path) -> Result<(), String> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("{}: cannot create the directory: {e}", dir.display())),
        _ => Ok(()),
    }
}

/// Open a regular file read-write, creating it with `mode` if missing; a symlink is
/// refused (O_NOFOLLOW), and so is an existing file that is not ours or that others
/// can write. The checks are made on the open descriptor, so nothing can be swapped
/// in between.
pub fn open_or_create(path: &Path, mode: u32) -> Result<File, String> {
    ensure_parent(path)?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let m = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    check_trusted(path, &m, Share::OwnerOnly)?;
    Ok(f)
}

/// Open a file to read, without following a symlink.
pub fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Read a small file that must be trusted (ours or root's, not writable by others);
/// `Ok(None)` if it does not exist.
pub fn read_trusted(path: &Path) -> Result<Option<String>, String> {
    if let Err(e) = std::fs::symlink_metadata(path) {
        if e.kind() == io::ErrorKind::NotFound {
            return Ok(None);
        }
    }
    let f = open_read_trusted(path)?;
    let mut s = String::new();
    f.take(1 << 20)
        .read_to_string(&mut s)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    Ok(Some(s))
}

fn open_error(path: &Path, e: io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) {
        format!("{}: is a symbolic link; refusing to follow it", path.display())
    } else {
        format!("{}: {e}", path.display())
    }
}

static TMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Replace `path` with `bytes` atomically and durably: write a new temporary beside it
/// (created with O_EXCL, so neither a planted file nor a symlink is ever written
/// through), fsync, rename over the target (rename replaces a symlink, never follows
/// it), fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    ensure_parent(path)?;
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?
        .to_string_lossy();
    let mut last = None;
    for _ in 0..8 {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp);
        let mut f = match f {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(format!("{}: cannot create: {e}", tmp.display())),
        };
        let written = f.write_all(bytes).and_then(|_| f.sync_all());
        let renamed = written.and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{}: cannot write: {e}", path.display()));
        }
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        return Ok(());
    }
    Err(format!(
        "{}: cannot create a temporary beside it: {}",
        path.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// Whether the file at `path` is a FIFO (without following a symlink).
pub fn is_fifo(m: &Metadata) -> bool {
    m.file_type().is_fifo()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn open_or_create_refuses_symlinks_and_writable_files() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_or_create(&link, 0o644).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

        let open = d.path().join("open");
        std::fs::write(&open, "").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = open_or_create(&open, 0o644).unwrap_err();
        assert!(e.contains("other users write"), "{e}");

        let fresh = d.path().join("sub/fresh");
        open_or_create(&fresh, 0o644).unwrap();
        assert!(fresh.is_file());
    }

    #[test]
    fn write_atomic_never_writes_through_a_link() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let p = d.path().join("state");
        // A symlink where the file goes is replaced, not followed.
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        // Nothing is left beside it.
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 2);
    }

    #[test]
    fn read_trusted_refuses_what_others_can_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        assert_eq!(read_trusted(&p).unwrap(), None);
        std::fs::write(&p, "1").unwrap();
        assert_eq!(read_trusted(&p).unwrap().as_deref(), Some("1"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o646)).unwrap();
        assert!(read_trusted(&p).is_err());
    }
}
