//! Files the tools create or rewrite — tables, FIFOs, pid files, state, generations —
//! made so that another local user cannot steer them: no symlink is followed, a
//! temporary is always a new file (O_EXCL), and nothing is adopted that someone else
//! owns or can write.
//!
//! Errors are one line naming the path; callers wrap them in their module's error.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whose files are believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// Ours (the effective user's) or root's: for a file we adopt, rewrite or act on
    /// alone (the table we write, a generation, saved state).
    Ours,
    /// Also the owner of the directory it is in, who decides what lives there anyway:
    /// what a tool running as another user wrote for us to read (root's `hb-watch
    /// status` reading the table that hb-watch, as `hakit`, keeps in its /run/hakit).
    /// The directory is looked at without following a symlink.
    OursOrTheDirectorys,
}

/// The effective user, whose files the tools trust.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The owner of the directory `path` is in, looked at without following a symlink.
fn dir_owner(path: &Path) -> Option<u32> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .ok()?;
    d.metadata().ok().map(|m| m.uid())
}

/// Refuse a file that someone we do not believe owns, or that others can write
/// (group or world): such a file may have been planted to be adopted.
pub fn check_trusted(path: &Path, m: &Metadata, whose: Whose) -> Result<(), String> {
    let me = euid();
    let owner_ok =
        m.uid() == me || m.uid() == 0 || (whose == Whose::OursOrTheDirectorys && Some(m.uid()) == dir_owner(path));
    if !owner_ok {
        return Err(format!(
            "{}: owned by uid {}, not by this user (uid {me}); refusing to use it",
            path.display(),
            m.uid()
        ));
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{}: mode {mode:04o} lets other users write it; refusing to use it",
            path.display()
        ));
    }
    Ok(())
}

/// What a file is, for a refusal: "a directory", "a FIFO", ...
pub fn kind(m: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "something else"
    }
}

/// Open a regular file to read, refusing a symlink, a FIFO or device (opened without
/// blocking, then refused), and a file [`check_trusted`] refuses.
pub fn open_read_trusted(path: &Path, whose: Whose) -> Result<File, String> {
    let f = open_read(path).map_err(|e| open_error(path, e))?;
    let m = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!("{}: is {}, not a regular file", path.display(), kind(&m)));
    }
    check_trusted(path, &m, whose)?;
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
        // O_NONBLOCK: a FIFO planted here must not hang the open; it is refused below.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| open_error(path, e))?;
    let m = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    check_trusted(path, &m, Whose::Ours)?;
    Ok(f)
}

/// Open a file to read, without following a symlink, and without blocking if it is a
/// FIFO (reads of a regular file are not affected by O_NONBLOCK).
pub fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// How much of a trusted file is read at most (saved state is the largest).
const READ_MAX: u64 = 64 << 20;

/// Read a file that must be trusted (see [`Whose`]); `Ok(None)` if it does not exist.
/// Also returns its owner.
pub fn read_trusted_owned(path: &Path, whose: Whose) -> Result<Option<(String, u32)>, String> {
    if let Err(e) = std::fs::symlink_metadata(path) {
        if e.kind() == io::ErrorKind::NotFound {
            return Ok(None);
        }
    }
    let f = open_read_trusted(path, whose)?;
    let owner = f.metadata().map(|m| m.uid()).unwrap_or(u32::MAX);
    let mut s = String::new();
    f.take(READ_MAX + 1)
        .read_to_string(&mut s)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if s.len() as u64 > READ_MAX {
        return Err(format!("{}: larger than {} MiB", path.display(), READ_MAX >> 20));
    }
    Ok(Some((s, owner)))
}

/// [`read_trusted_owned`] for a file of our own, without its owner.
pub fn read_trusted(path: &Path) -> Result<Option<String>, String> {
    Ok(read_trusted_owned(path, Whose::Ours)?.map(|(s, _)| s))
}

fn open_error(path: &Path, e: io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) {
        format!("{}: is a symbolic link; refusing to follow it", path.display())
    } else {
        format!("{}: {e}", path.display())
    }
}

static TMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Remove the temporaries of `name` that a process killed between creating and
/// renaming one left behind: ours (owned by us, a regular file), named after a
/// process that is gone.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let ours = std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_file() && m.uid() == euid());
        if ours && pid != std::process::id() as i32 && crate::base::pidfile::start_time(pid).is_none() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// How much a replaced file must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A crash or power loss keeps either the old or the new content (fsync of the file
    /// and the directory): generations, saved state.
    Durable,
    /// Atomic for readers, no fsync: pid files, which mean nothing after a reboot and
    /// are written on the takeover path, where an fsync costs milliseconds.
    Atomic,
}

/// Replace `path` with `bytes` atomically (and, if `Durable`, durably): write a new
/// temporary beside it (created with O_EXCL, so neither a planted file nor a symlink is
/// ever written through), fsync, rename over the target (rename replaces a symlink,
/// never follows it), fsync the directory.
/// Move a file that cannot be read as what it should be out of the way, to
/// `PATH.corrupt` (replacing an older one), so that a fresh start is possible and the
/// bad copy is still there to look at. Returns where it went.
pub fn set_aside(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".corrupt");
    let p = std::path::PathBuf::from(p);
    let _ = std::fs::rename(path, &p);
    p
}

pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, durability: Durability) -> Result<(), String> {
    let (dir, name, tmp) = write_temporary(path, bytes, mode, durability)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: cannot write: {e}", path.display()));
    }
    finish_temporary(&dir, &name, durability);
    Ok(())
}

/// Create `path` with `bytes` only if it does not exist, whole or not at all: the
/// temporary is hard-linked into place (link(2) never replaces), so of two writers
/// racing the first wins and a reader never sees half a file. False if it existed.
pub fn create_once(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, String> {
    let (dir, name, tmp) = write_temporary(path, bytes, mode, Durability::Durable)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            finish_temporary(&dir, &name, Durability::Durable);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!("{}: cannot create: {e}", path.display())),
    }
}

/// A new temporary beside `path` (O_EXCL, never through a link) holding `bytes`.
fn write_temporary(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> Result<(PathBuf, String, PathBuf), String> {
    ensure_parent(path)?;
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?
        .to_string_lossy()
        .into_owned();
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
        // The mode given to open(2) is masked by the umask (077 would keep a .prom file
        // from node_exporter): every caller means its mode exactly.
        let written = f
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .and_then(|_| f.write_all(bytes))
            .and_then(|_| {
                if durability == Durability::Durable {
                    f.sync_all()
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{}: cannot write: {e}", path.display()));
        }
        return Ok((dir, name, tmp));
    }
    Err(format!(
        "{}: cannot create a temporary beside it: {}",
        path.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// After the temporary took its place: the directory synced (if durable), stale
/// temporaries of killed writers removed.
fn finish_temporary(dir: &Path, name: &str, durability: Durability) {
    if durability == Durability::Durable {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    remove_stale_temporaries(dir, name);
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
        write_atomic(&p, b"new", 0o600, Durability::Durable).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        // Nothing is left beside it.
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 2);
        // A temporary left by a writer killed before its rename (a pid that is gone) is
        // cleared by the next write; one named after a live process (pid 1) stays.
        let stale = d.path().join(".state.999999999.0.tmp");
        std::fs::write(&stale, "half").unwrap();
        let other = d.path().join(".state.1.0.tmp");
        std::fs::write(&other, "pid 1 lives").unwrap();
        write_atomic(&p, b"newer", 0o600, Durability::Atomic).unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
    }

    /// Under umask 077 (in a child of this test binary: the umask is the process's) the
    /// files have exactly the mode asked for.
    #[test]
    fn the_mode_is_exact_whatever_the_umask() {
        if let Some(dir) = std::env::var_os("HAKIT_FSIO_UMASK_DIR") {
            let d = Path::new(&dir);
            assert_eq!(nix::sys::stat::umask(nix::sys::stat::Mode::empty()).bits(), 0o077);
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
            write_atomic(&d.join("a.prom"), b"x", 0o644, Durability::Atomic).unwrap();
            assert!(create_once(&d.join("b"), b"x", 0o644).unwrap());
            write_atomic(&d.join("c"), b"x", 0o600, Durability::Atomic).unwrap();
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "base::fsio::tests::the_mode_is_exact_whatever_the_umask"])
            .env("HAKIT_FSIO_UMASK_DIR", d.path());
        // SAFETY: umask(2) is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut child, || {
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
                Ok(())
            });
        }
        let out = child.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains("1 passed"), "{said}");
        let mode = |n: &str| std::fs::metadata(d.path().join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("a.prom"), mode("b"), mode("c")), (0o644, 0o644, 0o600));
    }

    #[test]
    fn create_once_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        assert!(create_once(&p, b"first", 0o600).unwrap());
        assert!(!create_once(&p, b"second", 0o600).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(
            !create_once(&link, b"x", 0o600).unwrap(),
            "a symlink there is not written through"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3, "no temporary left");
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
