//! The FIFO that scripts write cluster messages to, in the form Heartbeat's
//! `ha_clustermsg` writes them:
//!
//! ```text
//! >>>
//! t=mymessage
//! key=value
//! <<<
//! ```
//!
//! It is opened read-write so that it never reports end-of-file when the last writer
//! closes, and read without blocking from the sender's poll loop. hb-send creates it
//! itself and refuses one that someone else could have planted (see [`Fifo::open`]).

use crate::base::exit::{ExitStatus, HasExitStatus};
use nix::sys::stat::Mode;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A message longer than this is thrown away.
const MAX_BLOCK: usize = 32 * 1024;
/// Fields the sender stamps itself: a script cannot set them.
pub const STAMPED: &[&str] = &["src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"];

#[derive(Debug)]
pub struct Error(PathBuf, String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.0.display(), self.1)
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

/// One field of a message from the FIFO: name, type digit, value as printed.
pub type FieldBuf = (String, u8, String);

pub struct Fifo {
    file: File,
    buf: Vec<u8>,
}

impl Fifo {
    /// Open the FIFO, creating it if missing: mode 0600, or 0620 with `group` (its gid)
    /// so that the group's scripts may write too. An existing one is used only if it is
    /// a FIFO (not a symlink), owned by our effective user, and nobody else can write
    /// it; anything else is refused, since whatever is written there is signed and sent
    /// to every peer (a `t=takeover` or `st=standby` from a stranger).
    pub fn open(path: &Path, group: Option<u32>) -> Result<Fifo, Error> {
        let e = |m: String| Error(path.into(), m);
        let mode = if group.is_some() { 0o620 } else { 0o600 };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => return Err(e("is a symbolic link; refusing to follow it".into())),
            Ok(m) if !m.file_type().is_fifo() => return Err(e("exists and is not a FIFO".into())),
            Ok(_) => {}
            Err(_) => {
                crate::base::fsio::ensure_parent(path).map_err(|m| Error(path.into(), m))?;
                nix::unistd::mkfifo(path, Mode::from_bits_truncate(mode))
                    .map_err(|err| e(format!("cannot create the FIFO: {err}")))?;
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|err| e(format!("cannot open: {err}")))?;
        // Checked on the open descriptor: what we checked is what we read from.
        let m = file.metadata().map_err(|err| e(format!("cannot stat: {err}")))?;
        let me = crate::base::fsio::euid();
        if !m.file_type().is_fifo() {
            return Err(e("exists and is not a FIFO".into()));
        }
        if m.uid() != me {
            return Err(e(format!(
                "owned by uid {}, not by this user (uid {me}); remove it and let hb-send create it",
                m.uid()
            )));
        }
        let writable_by_group = m.mode() & 0o020 != 0 && group != Some(m.gid());
        if m.mode() & 0o002 != 0 || writable_by_group {
            return Err(e(format!(
                "mode {:04o} lets other users write it; remove it and let hb-send create it",
                m.mode() & 0o7777
            )));
        }
        // Ours: make it exactly what we would have created (umask, an older mode).
        if let Some(g) = group {
            nix::unistd::fchown(file.as_raw_fd(), None, Some(nix::unistd::Gid::from_raw(g)))
                .map_err(|err| e(format!("cannot give it to group {g}: {err}")))?;
        }
        nix::sys::stat::fchmod(file.as_raw_fd(), Mode::from_bits_truncate(mode))
            .map_err(|err| e(format!("cannot set its mode: {err}")))?;
        Ok(Fifo { file, buf: Vec::new() })
    }

    /// Read what is there and return the complete messages. Malformed ones are
    /// logged and skipped.
    pub fn read_messages(&mut self) -> Vec<Vec<FieldBuf>> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::base::log::warn(&format!("FIFO read: {e}"));
                    break;
                }
            }
        }
        let (msgs, consumed) = split_blocks(&self.buf);
        self.buf.drain(..consumed);
        if self.buf.len() > MAX_BLOCK {
            crate::base::log::warn("FIFO: a message over 32 KiB without its `<<<` was thrown away");
            self.buf.clear();
        }
        msgs
    }
}

impl std::os::fd::AsFd for Fifo {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Split complete `>>>` ... `<<<` blocks out of `buf`; returns them and how many bytes
/// were consumed.
pub fn split_blocks(buf: &[u8]) -> (Vec<Vec<FieldBuf>>, usize) {
    let mut out = Vec::new();
    let mut consumed = 0;
    let text = String::from_utf8_lossy(buf);
    let mut lines_done = 0usize;
    let mut current: Option<Vec<FieldBuf>> = None;
    let mut bad = false;
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break;
        }
        lines_done += line.len();
        let l = line.trim_end_matches(['\n', '\r']);
        match (&mut current, l) {
            (None, ">>>") => {
                current = Some(Vec::new());
                bad = false;
            }
            (None, _) => consumed = lines_done, // noise between messages
            (Some(_), "<<<") => {
                let fields = current.take().unwrap_or_default();
                if bad || fields.is_empty() {
                    crate::base::log::warn("FIFO: a malformed message was skipped");
                } else {
                    out.push(fields);
                }
                consumed = lines_done;
            }
            (Some(fields), l) => match parse_line(l) {
                Some(f) if fields.len() < crate::wire::msg::MAX_FIELDS => {
                    if !STAMPED.contains(&f.0.as_str()) {
                        fields.push(f);
                    }
                }
                _ => bad = true,
            },
        }
    }
    // Lossy decoding may change lengths; only consume what was valid UTF-8 anyway.
    (out, consumed.min(buf.len()))
}

fn parse_line(l: &str) -> Option<FieldBuf> {
    let (ty, rest) = match l.strip_prefix('(') {
        Some(r) => {
            let (d, rest) = r.split_once(')')?;
            let t: u8 = d.parse().ok()?;
            if t > 5 {
                return None;
            }
            (t, rest)
        }
        None => (0, l),
    };
    let (name, value) = rest.split_once('=')?;
    let ok = !name.is_empty()
        && name.len() <= crate::wire::msg::MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    ok.then(|| (name.to_string(), ty, value.to_string()))
}

// ---- The writing side: scripts' and tools' messages to hb-send ----

/// `>>>` / `key=value` lines / `<<<`, as hb-send reads its FIFO. Values are names,
/// numbers and separators: no newline may get in (debug-checked).
pub fn block(t: &str, fields: &[(&str, String)]) -> String {
    let mut s = format!(">>>\nt={t}\n");
    for (k, v) in fields {
        debug_assert!(!v.contains('\n'));
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('\n');
    }
    s.push_str("<<<\n");
    s
}

/// The fields of a block, as hb-watch's message event gives them back (for tests of
/// the tools that write blocks).
#[cfg(test)]
pub fn block_fields(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Why hb-send's FIFO could not be opened for writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not there, or nobody reads it (hb-send is not running): may change.
    Absent(String),
    /// Something we must not write to (a symlink, not a FIFO, another user's).
    Refused(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            OpenError::Absent(m) | OpenError::Refused(m) => f.write_str(m),
        }
    }
}

/// Open a FIFO to write to without blocking: it must be a FIFO (no symlink followed),
/// ours or root's, and read by someone (hb-send), else ENXIO.
pub fn open_writer(path: &Path) -> Result<File, OpenError> {
    // Looked at first too, so that a planted FIFO nobody reads is refused rather than
    // waited for; the descriptor is checked again below (what we write to is that).
    if let Ok(m) = std::fs::symlink_metadata(path) {
        check_writer_target(path, &m)?;
    }
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => {
                OpenError::Absent(format!("{}: nobody reads it (is hb-send running?)", path.display()))
            }
            Some(libc::ENOENT) => OpenError::Absent(format!("{}: no such FIFO (is hb-send running?)", path.display())),
            Some(libc::ELOOP) => OpenError::Refused(format!("{}: a symbolic link; refused", path.display())),
            _ => OpenError::Refused(format!("{}: {e}", path.display())),
        })?;
    let m = f
        .metadata()
        .map_err(|e| OpenError::Refused(format!("{}: {e}", path.display())))?;
    check_writer_target(path, &m)?;
    Ok(f)
}

fn check_writer_target(path: &Path, m: &std::fs::Metadata) -> Result<(), OpenError> {
    if m.file_type().is_symlink() {
        return Err(OpenError::Refused(format!(
            "{}: a symbolic link; refused",
            path.display()
        )));
    }
    if !m.file_type().is_fifo() {
        return Err(OpenError::Refused(format!(
            "{}: not a FIFO ({})",
            path.display(),
            crate::base::fsio::kind(m)
        )));
    }
    if m.uid() != crate::base::fsio::euid() && m.uid() != 0 {
        return Err(OpenError::Refused(format!(
            "{}: owned by uid {}, not by us or root; refused",
            path.display(),
            m.uid()
        )));
    }
    Ok(())
}

/// hb-send's FIFO as a tool writes to it: opened when needed (and again after hb-send
/// restarts), each block written whole or dropped (counted), never blocking.
pub struct Writer {
    path: PathBuf,
    file: Option<File>,
    said: bool,
    dropped: u64,
    /// What is lost while the FIFO cannot be opened, for the one log line.
    what: &'static str,
}

impl Writer {
    /// `what`: what is not sent meanwhile (`orders and reports`), for the log.
    pub fn new(path: &Path, what: &'static str) -> Writer {
        Writer {
            path: path.to_path_buf(),
            file: None,
            said: false,
            dropped: 0,
            what,
        }
    }

    /// The file, opened now if it is not; an error is logged once until it opens.
    pub fn open(&mut self) -> Result<&mut File, OpenError> {
        if self.file.is_none() {
            match open_writer(&self.path) {
                Ok(f) => {
                    if self.said {
                        crate::base::log::info(&format!("{}: hb-send reads it again", self.path.display()));
                    }
                    self.said = false;
                    self.file = Some(f);
                }
                Err(e) => {
                    if !self.said {
                        crate::base::log::error(&format!("{e}; {} are not sent until it is", self.what));
                        self.said = true;
                    }
                    return Err(e);
                }
            }
        }
        self.file.as_mut().ok_or_else(|| OpenError::Absent(String::new()))
    }

    /// Write one block; true if it went whole to hb-send.
    pub fn write(&mut self, block: &str) -> bool {
        let path = self.path.clone();
        let Ok(f) = self.open() else {
            self.dropped += 1;
            return false;
        };
        // A block is far below PIPE_BUF: written whole or not at all, never mixed with
        // another writer's (pair.sh, chan-switch and lvs-ctl join may share it).
        match f.write(block.as_bytes()) {
            Ok(n) if n == block.len() => return true,
            Ok(_) => self.dropped += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    crate::base::log::warn(&format!(
                        "{}: full (hb-send is not reading); {} message(s) dropped so far",
                        path.display(),
                        self.dropped
                    ));
                }
            }
            Err(e) => {
                // EPIPE: hb-send went away; opened again next time.
                crate::base::log::error(&format!("{}: {e}", path.display()));
                self.file = None;
                self.dropped += 1;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn splits_blocks() {
        let (m, n) = split_blocks(b">>>\nt=hello\nsrc=forged\nx=1\n<<<\n>>>\nt=partial\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0], vec![("t".into(), 0, "hello".into()), ("x".into(), 0, "1".into())]);
        assert_eq!(n, ">>>\nt=hello\nsrc=forged\nx=1\n<<<\n".len());
        let (m, _) = split_blocks(b">>>\nno equals\n<<<\n");
        assert!(m.is_empty());
    }
}
