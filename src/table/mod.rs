//! The Active Stations Table: one file, mapped into memory by one writer (hb-watch,
//! enforced by an exclusive lock) and any number of readers.
//!
//! Layout (little-endian, all fields naturally aligned 64-bit words):
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 8 | magic `HAKITAST` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | header size (512) |
//! | 16 | 4 | record size (512) |
//! | 20 | 4 | capacity (records the file holds) |
//! | 24 | 4 | channel count (at most 8) |
//! | 28 | 4 | writer pid |
//! | 32 | 8 | header sequence (seqlock over the header's mutable part) |
//! | 40 | 8 | node count |
//! | 48 | 8 | writer start, Unix ms |
//! | 64 | 128 | channel names, 16 bytes each, NUL padded |
//! | 192 | 64 | per channel: packets rejected before a node could be named |
//! | 256 | 64 | local node name |
//! | 512 | 512 × capacity | node records |
//!
//! A record is 64 words: word 0 its sequence (odd while being written), then name (8
//! words), state/flags/dt, status (2 words), generation, last sequence, load, last
//! change (Unix ms and monotonic ns), then five words per channel: last heard
//! (CLOCK_MONOTONIC ns), link state, lost, duplicate, rejected; then the node's ping
//! nodes (reachable u16 | configured u16, 0/0 when it announces none) and what it says
//! it holds (`held`, 40 bytes, cut with a trailing `+` when longer).
//!
//! Readers copy a record between two reads of its sequence and retry if it changed, so
//! they never block the writer and never see a torn record. A record whose sequence
//! stays odd (its writer was killed between its two stores) is reported torn after a
//! bounded wait, never spun on; the next writer repairs such records when it takes the
//! table. The file never shrinks while mapped: a writer only ever grows it.
//!
//! The file is created by its writer (mode 0644, no symlink followed) and neither the
//! writer nor a reader uses one that another user could have planted or can change
//! (see [`crate::base::fsio`]).

use crate::base::exit::{ExitStatus, HasExitStatus};
use nix::fcntl::{Flock, FlockArg};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};

pub const MAGIC: &[u8; 8] = b"HAKITAST";
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 512;
pub const RECORD_SIZE: usize = 512;
pub const RECORD_WORDS: usize = RECORD_SIZE / 8;
pub const MAX_CHANNELS: usize = 8;
pub const NAME_LEN: usize = 64;
pub const STATUS_LEN: usize = 16;
pub const CHANNEL_NAME_LEN: usize = 16;

// Header word indexes.
const H_VERSION_SIZES: usize = 1; // version u32 | header size u32
const H_REC_CAP: usize = 2; // record size u32 | capacity u32
const H_CHANS_PID: usize = 3; // channels u32 | writer pid u32
const H_SEQ: usize = 4;
const H_COUNT: usize = 5;
const H_STARTED: usize = 6;
const H_CHAN_NAMES: usize = 8; // 16 words
const H_CHAN_REJECTS: usize = 24; // 8 words
const H_LOCAL: usize = 32; // 8 words

// Record word indexes.
const R_SEQ: usize = 0;
const R_NAME: usize = 1; // 8 words
const R_STATE: usize = 9; // state u8 | flags u8 | _ | dt_ms u32
const R_STATUS: usize = 10; // 2 words
const R_GEN: usize = 12;
const R_LAST_SEQ: usize = 13;
const R_LOAD: usize = 14; // 3 x u16 hundredths
const R_CHANGED_MS: usize = 15;
const R_CHANGED_NS: usize = 16;
const R_LINKS: usize = 18; // 5 words per channel
const LINK_WORDS: usize = 5;
const R_PINGS: usize = 58; // reachable u16 | configured u16
const R_HELD: usize = 59; // 5 words
pub const HELD_LEN: usize = 40;
const _: () = assert!(R_LINKS + MAX_CHANNELS * LINK_WORDS == R_PINGS && R_HELD + HELD_LEN / 8 == RECORD_WORDS);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum NodeState {
    /// Configured but not heard yet.
    #[default]
    Unknown = 0,
    Up = 1,
    /// Not heard here, but another live node still hears it.
    Unreachable = 2,
    Dead = 3,
}

impl NodeState {
    pub fn from_u8(v: u8) -> NodeState {
        match v {
            1 => NodeState::Up,
            2 => NodeState::Unreachable,
            3 => NodeState::Dead,
            _ => NodeState::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Unknown => "unknown",
            NodeState::Up => "up",
            NodeState::Unreachable => "unreachable",
            NodeState::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum LinkState {
    #[default]
    Unknown = 0,
    Up = 1,
    /// Heartbeats later than warntime, not yet dead.
    Late = 2,
    Dead = 3,
}

impl LinkState {
    pub fn from_u8(v: u8) -> LinkState {
        match v {
            1 => LinkState::Up,
            2 => LinkState::Late,
            3 => LinkState::Dead,
            _ => LinkState::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Unknown => "unknown",
            LinkState::Up => "up",
            LinkState::Late => "late",
            LinkState::Dead => "dead",
        }
    }
    /// Whether heartbeats still arrive on the link.
    pub fn alive(self) -> bool {
        matches!(self, LinkState::Up | LinkState::Late)
    }
}

pub const FLAG_LOCAL: u8 = 1;
pub const FLAG_CONFIGURED: u8 = 2;
/// A ping node (an address hb-watch pings, as Heartbeat's `ping` directive), not a
/// cluster member: it sends no heartbeats and holds nothing.
pub const FLAG_PING: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkRecord {
    pub last_heard_ns: u64,
    pub state: LinkState,
    pub lost: u64,
    pub dup: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeRecord {
    pub name: String,
    pub state: NodeState,
    pub flags: u8,
    /// The deadtime the node announced (ms), 0 if none.
    pub dt_ms: u32,
    pub status: String,
    pub generation: u64,
    pub last_seq: u64,
    /// 1, 5 and 15 minute load averages, in hundredths.
    pub load: [u16; 3],
    pub changed_unix_ms: u64,
    pub changed_mono_ns: u64,
    pub links: [LinkRecord; MAX_CHANNELS],
    /// Ping nodes: how many of the configured ones the node reaches (the local node's
    /// as hb-watch measures them, a peer's as its heartbeats say).
    pub pings_up: u16,
    pub pings_total: u16,
    /// What the node says it holds (`held` in its heartbeats), as far as it fits.
    pub held: String,
}

impl NodeRecord {
    pub fn is_local(&self) -> bool {
        self.flags & FLAG_LOCAL != 0
    }
    pub fn is_ping(&self) -> bool {
        self.flags & FLAG_PING != 0
    }

    pub(crate) fn encode(&self, w: &mut [u64; RECORD_WORDS]) {
        *w = [0; RECORD_WORDS];
        put_str(&mut w[R_NAME..R_NAME + 8], &self.name);
        w[R_STATE] = self.state as u64 | (self.flags as u64) << 8 | (self.dt_ms as u64) << 32;
        put_str(&mut w[R_STATUS..R_STATUS + 2], &self.status);
        w[R_GEN] = self.generation;
        w[R_LAST_SEQ] = self.last_seq;
        w[R_LOAD] = self.load[0] as u64 | (self.load[1] as u64) << 16 | (self.load[2] as u64) << 32;
        w[R_CHANGED_MS] = self.changed_unix_ms;
        w[R_CHANGED_NS] = self.changed_mono_ns;
        for (i, l) in self.links.iter().enumerate() {
            let b = R_LINKS + i * LINK_WORDS;
            w[b] = l.last_heard_ns;
            w[b + 1] = l.state as u64;
            w[b + 2] = l.lost;
            w[b + 3] = l.dup;
            w[b + 4] = l.rejected;
        }
        w[R_PINGS] = self.pings_up as u64 | (self.pings_total as u64) << 16;
        if self.held.len() > HELD_LEN {
            let mut cut = HELD_LEN - 1;
            while !self.held.is_char_boundary(cut) {
                cut -= 1;
            }
            put_str(&mut w[R_HELD..R_HELD + 5], &format!("{}+", &self.held[..cut]));
        } else {
            put_str(&mut w[R_HELD..R_HELD + 5], &self.held);
        }
    }

    fn decode(w: &[u64; RECORD_WORDS]) -> NodeRecord {
        let mut links = [LinkRecord::default(); MAX_CHANNELS];
        for (i, l) in links.iter_mut().enumerate() {
            let b = R_LINKS + i * LINK_WORDS;
            *l = LinkRecord {
                last_heard_ns: w[b],
                state: LinkState::from_u8(w[b + 1] as u8),
                lost: w[b + 2],
                dup: w[b + 3],
                rejected: w[b + 4],
            };
        }
        NodeRecord {
            name: get_str(&w[R_NAME..R_NAME + 8]),
            state: NodeState::from_u8(w[R_STATE] as u8),
            flags: (w[R_STATE] >> 8) as u8,
            dt_ms: (w[R_STATE] >> 32) as u32,
            status: get_str(&w[R_STATUS..R_STATUS + 2]),
            generation: w[R_GEN],
            last_seq: w[R_LAST_SEQ],
            load: [w[R_LOAD] as u16, (w[R_LOAD] >> 16) as u16, (w[R_LOAD] >> 32) as u16],
            changed_unix_ms: w[R_CHANGED_MS],
            changed_mono_ns: w[R_CHANGED_NS],
            links,
            pings_up: w[R_PINGS] as u16,
            pings_total: (w[R_PINGS] >> 16) as u16,
            held: get_str(&w[R_HELD..R_HELD + 5]),
        }
    }
}

fn put_str(words: &mut [u64], s: &str) {
    let mut bytes = [0u8; NAME_LEN];
    let n = s.len().min(words.len() * 8);
    bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
    for (i, w) in words.iter_mut().enumerate() {
        *w = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
    }
}

fn get_str(words: &[u64]) -> String {
    let mut bytes = Vec::with_capacity(words.len() * 8);
    for w in words {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[derive(Debug)]
pub enum Error {
    Io(PathBuf, std::io::Error),
    Locked(PathBuf, u32),
    Foreign(PathBuf, String),
    /// Not a file we may use (a symlink, another user's, writable by others).
    Untrusted(String),
    /// The header stayed mid-write: its writer died while writing it.
    TornHeader(PathBuf),
    Full(usize),
}

/// A record whose writer died half way through writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    pub slot: usize,
}

/// How long a reader waits for a record (or the header) whose sequence stays odd while
/// a writer holds the table, before it calls it torn. A live writer holds a record odd
/// for well under a microsecond; this leaves room for one that is preempted or
/// throttled. With no writer (no lock holder) an odd record is torn at once.
const TORN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Locked(p, pid) => write!(
                f,
                "{}: the table is held by another writer (pid {pid}); one hb-watch per table",
                p.display()
            ),
            Error::Foreign(p, why) => write!(f, "{}: not a table this hakit can use: {why}", p.display()),
            Error::Untrusted(m) => f.write_str(m),
            Error::TornHeader(p) => write!(
                f,
                "{}: the header is half written (its writer died while writing it); starting hb-watch repairs it",
                p.display()
            ),
            Error::Full(cap) => write!(f, "the table is full ({cap} nodes); raise max-nodes"),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Io(..) | Error::Full(_) | Error::TornHeader(_) => ExitStatus::Failure,
            Error::Locked(..) | Error::Foreign(..) | Error::Untrusted(_) => ExitStatus::Usage,
        }
    }
}

/// The mapped words of a table file.
struct Mapped {
    map: memmap2::MmapRaw,
}

impl Mapped {
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page aligned, lives as long as self, and is only ever
        // accessed through atomics, so concurrent access from other processes is sound.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr() as *const AtomicU64, self.map.len() / 8) }
    }
    fn header(&self) -> &[AtomicU64] {
        &self.words()[..HEADER_SIZE / 8]
    }
    fn record(&self, slot: usize) -> &[AtomicU64] {
        let b = (HEADER_SIZE + slot * RECORD_SIZE) / 8;
        &self.words()[b..b + RECORD_WORDS]
    }
    fn capacity(&self) -> usize {
        (self.map.len() - HEADER_SIZE) / RECORD_SIZE
    }
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<usize, Error> {
    if bytes.len() < HEADER_SIZE {
        return Err(Error::Foreign(path.into(), "shorter than a table header".into()));
    }
    if &bytes[..8] != MAGIC {
        return Err(Error::Foreign(path.into(), "no HAKITAST magic".into()));
    }
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    if u32_at(8) != VERSION {
        return Err(Error::Foreign(
            path.into(),
            format!("version {} (this hakit reads {VERSION})", u32_at(8)),
        ));
    }
    if u32_at(12) as usize != HEADER_SIZE || u32_at(16) as usize != RECORD_SIZE {
        return Err(Error::Foreign(
            path.into(),
            format!(
                "header {} / record {} bytes (expected {HEADER_SIZE} / {RECORD_SIZE})",
                u32_at(12),
                u32_at(16)
            ),
        ));
    }
    Ok(u32_at(20) as usize)
}

/// Refuse a path that is there but is no file at all (a directory, a FIFO, a device),
/// saying what it is; before the open, which would say "Is a directory" or, mapped,
/// "No such device". A symlink is left to the open, which refuses it; the open's own
/// checks on its descriptor still decide.
fn not_a_table(path: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() && !m.file_type().is_symlink() => Err(Error::Untrusted(format!(
            "{}: not an Active Stations Table: is {}, not a regular file",
            path.display(),
            crate::base::fsio::kind(&m)
        ))),
        _ => Ok(()),
    }
}

/// The one writer of a table.
pub struct TableWriter {
    _file: Flock<File>,
    mapped: Mapped,
    count: usize,
    scratch: [u64; RECORD_WORDS],
}

impl TableWriter {
    /// Open or create the table, take the writer's lock, and make room for
    /// `capacity` nodes (growing an existing file, never shrinking it).
    pub fn create(path: &Path, capacity: usize, channels: &[String], local: &str) -> Result<TableWriter, Error> {
        let io = |e| Error::Io(path.into(), e);
        not_a_table(path)?;
        let file = crate::base::fsio::open_or_create(path, 0o644).map_err(Error::Untrusted)?;
        // The lock lives as long as the writer (dropping the Flock releases it).
        let file = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
            let pid = read_writer_pid(path).unwrap_or(0);
            Error::Locked(path.into(), pid)
        })?;
        let len = file.metadata().map_err(io)?.len() as usize;
        let mut existing_cap = 0;
        if len > 0 {
            let mut head = vec![0u8; HEADER_SIZE.min(len)];
            use std::io::Read;
            (&*file).read_exact(&mut head).map_err(io)?;
            existing_cap = check_header(path, &head)?;
            if len < HEADER_SIZE + existing_cap * RECORD_SIZE {
                return Err(Error::Foreign(path.into(), "shorter than its header says".into()));
            }
        }
        let cap = capacity.max(existing_cap);
        let want = HEADER_SIZE + cap * RECORD_SIZE;
        if want > len {
            file.set_len(want as u64).map_err(io)?;
        }
        let map = memmap2::MmapOptions::new().len(want).map_raw(&*file).map_err(io)?;
        let mapped = Mapped { map };
        let count = if existing_cap > 0 {
            (mapped.header()[H_COUNT].load(Ordering::Acquire) as usize).min(cap)
        } else {
            0
        };
        for slot in repair_torn(&mapped, count) {
            crate::base::log::warn(&format!(
                "{}: record {slot} was left half written by a writer that died; cleared (that node's replay floor is lost until it is heard again)",
                path.display()
            ));
        }
        let w = TableWriter {
            _file: file,
            mapped,
            count,
            scratch: [0; RECORD_WORDS],
        };
        w.write_header(cap, channels, local);
        Ok(w)
    }

    fn write_header(&self, cap: usize, channels: &[String], local: &str) {
        let h = self.mapped.header();
        let seq = h[H_SEQ].load(Ordering::Relaxed);
        h[H_SEQ].store(seq | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        h[H_VERSION_SIZES].store(VERSION as u64 | (HEADER_SIZE as u64) << 32, Ordering::Relaxed);
        h[H_REC_CAP].store(RECORD_SIZE as u64 | (cap as u64) << 32, Ordering::Relaxed);
        h[H_CHANS_PID].store(
            channels.len().min(MAX_CHANNELS) as u64 | (std::process::id() as u64) << 32,
            Ordering::Relaxed,
        );
        h[H_STARTED].store(crate::base::clock::unix_ms(), Ordering::Relaxed);
        let mut names = [0u64; 16];
        for (i, c) in channels.iter().take(MAX_CHANNELS).enumerate() {
            put_str(&mut names[i * 2..i * 2 + 2], c);
        }
        for (i, n) in names.iter().enumerate() {
            h[H_CHAN_NAMES + i].store(*n, Ordering::Relaxed);
        }
        let mut l = [0u64; 8];
        put_str(&mut l, local);
        for (i, n) in l.iter().enumerate() {
            h[H_LOCAL + i].store(*n, Ordering::Relaxed);
        }
        h[0].store(u64::from_le_bytes(*MAGIC), Ordering::Relaxed);
        h[H_SEQ].store((seq | 1) + 1, Ordering::Release);
    }

    pub fn capacity(&self) -> usize {
        self.mapped.capacity()
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Records left by an earlier writer (their generations and sequences are the
    /// floor under which a replayed packet is refused).
    pub fn existing(&self) -> Vec<NodeRecord> {
        (0..self.count)
            .filter_map(|s| read_record(&self.mapped, s, &|| true).ok())
            .collect()
    }

    /// Forget the earlier writer's records (after reading them with [`existing`]).
    pub fn clear(&mut self) {
        self.count = 0;
        self.mapped.header()[H_COUNT].store(0, Ordering::Release);
    }

    /// Write one record with the seqlock protocol. A new slot must be `count()`.
    pub fn write(&mut self, slot: usize, rec: &NodeRecord) -> Result<(), Error> {
        if slot >= self.mapped.capacity() {
            return Err(Error::Full(self.mapped.capacity()));
        }
        rec.encode(&mut self.scratch);
        let r = self.mapped.record(slot);
        let seq = r[R_SEQ].load(Ordering::Relaxed);
        let odd = (seq | 1).wrapping_add(if seq & 1 == 1 { 2 } else { 0 });
        r[R_SEQ].store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, w) in self.scratch.iter().enumerate().skip(1) {
            r[i].store(*w, Ordering::Relaxed);
        }
        r[R_SEQ].store(odd.wrapping_add(1), Ordering::Release);
        if slot >= self.count {
            self.count = slot + 1;
            self.mapped.header()[H_COUNT].store(self.count as u64, Ordering::Release);
        }
        Ok(())
    }

    /// Count `n` packets on `channel` rejected before a node could be named.
    pub fn count_rejects(&self, channel: usize, n: u64) {
        if channel < MAX_CHANNELS && n > 0 {
            self.mapped.header()[H_CHAN_REJECTS + channel].fetch_add(n, Ordering::Relaxed);
        }
    }
}

fn read_record(m: &Mapped, slot: usize, writer_alive: &dyn Fn() -> bool) -> Result<NodeRecord, Torn> {
    let mut w = [0u64; RECORD_WORDS];
    if !read_words(m.record(slot), &mut w, writer_alive) {
        return Err(Torn { slot });
    }
    Ok(NodeRecord::decode(&w))
}

/// Clear the records a dead writer left half written (odd sequence): their content is
/// a mix of two versions, a name included. Returns their slots.
fn repair_torn(m: &Mapped, count: usize) -> Vec<usize> {
    let mut torn = Vec::new();
    for slot in 0..count {
        let r = m.record(slot);
        let seq = r[R_SEQ].load(Ordering::Acquire);
        if seq & 1 == 1 {
            for w in &r[1..] {
                w.store(0, Ordering::Relaxed);
            }
            r[R_SEQ].store(seq.wrapping_add(1), Ordering::Release);
            torn.push(slot);
        }
    }
    torn
}

/// Retry a seqlock read until `attempt` succeeds (it returns Err with the sequence it
/// saw when not). Torn (false) at once if the sequence stays odd and `writer_alive`
/// says nobody holds the table (its writer died between its two stores), or once it has
/// stayed the same odd value for [`TORN_AFTER`] with a writer there. A sequence that
/// moves is a live writer, and the wait starts again. Spins first (a writer is fast),
/// then yields.
fn seqlock_retry(mut attempt: impl FnMut() -> Result<(), u64>, writer_alive: &dyn Fn() -> bool) -> bool {
    let mut stuck: Option<(u64, std::time::Instant)> = None;
    for i in 0u32.. {
        let seen = match attempt() {
            Ok(()) => return true,
            Err(seq) => seq,
        };
        if i < 128 {
            std::hint::spin_loop();
            continue;
        }
        let now = std::time::Instant::now();
        match stuck {
            Some((seq, since)) if seq == seen => {
                if now.duration_since(since) >= TORN_AFTER {
                    return false;
                }
                std::thread::yield_now();
            }
            _ => {
                if seen & 1 == 1 && !writer_alive() {
                    return false;
                }
                stuck = Some((seen, now));
            }
        }
    }
    false
}

/// Copy a record's words under its seqlock; false if the record is torn.
fn read_words(r: &[AtomicU64], out: &mut [u64; RECORD_WORDS], writer_alive: &dyn Fn() -> bool) -> bool {
    seqlock_retry(
        || {
            let s1 = r[R_SEQ].load(Ordering::Acquire);
            if s1 & 1 != 0 {
                return Err(s1);
            }
            for (i, o) in out.iter_mut().enumerate().skip(1) {
                *o = r[i].load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            let s2 = r[R_SEQ].load(Ordering::Relaxed);
            if s2 == s1 {
                out[0] = s1;
                Ok(())
            } else {
                Err(s2)
            }
        },
        writer_alive,
    )
}

fn read_writer_pid(path: &Path) -> Option<u32> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 32 {
        return None;
    }
    Some(u32::from_le_bytes(bytes[28..32].try_into().ok()?))
}

/// A reader: maps the file read-only and never takes a lock the writer waits on.
pub struct TableReader {
    path: PathBuf,
    file: File,
    mapped: Mapped,
}

/// The header as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub channels: Vec<String>,
    pub writer_pid: u32,
    pub started_unix_ms: u64,
    pub local: String,
    pub count: usize,
    pub capacity: usize,
    pub unattributed_rejects: Vec<u64>,
}

impl TableReader {
    pub fn open(path: &Path) -> Result<TableReader, Error> {
        not_a_table(path)?;
        let file =
            crate::base::fsio::open_read_trusted(path, crate::base::fsio::Whose::OursOrTheDirectorys).map_err(|m| {
                if std::fs::symlink_metadata(path).is_err() {
                    Error::Io(path.into(), std::io::Error::from(std::io::ErrorKind::NotFound))
                } else {
                    Error::Untrusted(m)
                }
            })?;
        let mapped = Self::map(path, &file)?;
        Ok(TableReader {
            path: path.into(),
            file,
            mapped,
        })
    }

    fn map(path: &Path, file: &File) -> Result<Mapped, Error> {
        let io = |e| Error::Io(path.into(), e);
        let len = file.metadata().map_err(io)?.len() as usize;
        if len < HEADER_SIZE {
            return Err(Error::Foreign(path.into(), "shorter than a table header".into()));
        }
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw_read_only(file)
            .map_err(io)?;
        let mapped = Mapped { map };
        let mut head = [0u8; 32];
        for (i, w) in mapped.header()[..4].iter().enumerate() {
            head[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
        }
        let mut full = vec![0u8; HEADER_SIZE];
        full[..32].copy_from_slice(&head);
        let cap = check_header(path, &full)?;
        if len < HEADER_SIZE + cap * RECORD_SIZE {
            return Err(Error::Foreign(path.into(), "shorter than its header says".into()));
        }
        Ok(mapped)
    }

    /// Whether a writer holds the table now (asked without blocking it).
    /// The uid that owns the file (its writer runs as that user).
    pub fn owner(&self) -> u32 {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().map(|m| m.uid()).unwrap_or(u32::MAX)
    }

    pub fn writer_alive(&self) -> bool {
        // A shared lock on a second descriptor, dropped (released) at once.
        match self.file.try_clone() {
            Ok(f) => Flock::lock(f, FlockArg::LockSharedNonblock).is_err(),
            Err(_) => false,
        }
    }

    pub fn count(&self) -> usize {
        (self.mapped.header()[H_COUNT].load(Ordering::Acquire) as usize).min(self.mapped.capacity())
    }

    /// Remap if a newer writer grew the file.
    pub fn refresh(&mut self) -> Result<(), Error> {
        let len = self.file.metadata().map_err(|e| Error::Io(self.path.clone(), e))?.len() as usize;
        if len != self.mapped.map.len() {
            self.mapped = Self::map(&self.path, &self.file)?;
        }
        Ok(())
    }

    /// The header; an error if it stays half written (its writer died writing it).
    pub fn header(&self) -> Result<Header, Error> {
        let h = self.mapped.header();
        let mut names = [0u64; 16];
        let mut local = [0u64; 8];
        let mut chans_pid = 0;
        let mut started = 0;
        let ok = seqlock_retry(
            || {
                let s1 = h[H_SEQ].load(Ordering::Acquire);
                if s1 & 1 != 0 {
                    return Err(s1);
                }
                for (i, n) in names.iter_mut().enumerate() {
                    *n = h[H_CHAN_NAMES + i].load(Ordering::Relaxed);
                }
                for (i, n) in local.iter_mut().enumerate() {
                    *n = h[H_LOCAL + i].load(Ordering::Relaxed);
                }
                chans_pid = h[H_CHANS_PID].load(Ordering::Relaxed);
                started = h[H_STARTED].load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                let s2 = h[H_SEQ].load(Ordering::Relaxed);
                if s2 == s1 {
                    Ok(())
                } else {
                    Err(s2)
                }
            },
            &|| self.writer_alive(),
        );
        if !ok {
            return Err(Error::TornHeader(self.path.clone()));
        }
        let nch = (chans_pid as u32 as usize).min(MAX_CHANNELS);
        Ok(Header {
            channels: (0..nch).map(|i| get_str(&names[i * 2..i * 2 + 2])).collect(),
            writer_pid: (chans_pid >> 32) as u32,
            started_unix_ms: started,
            local: get_str(&local),
            count: self.count(),
            capacity: self.mapped.capacity(),
            unattributed_rejects: (0..nch)
                .map(|i| h[H_CHAN_REJECTS + i].load(Ordering::Relaxed))
                .collect(),
        })
    }

    /// A consistent copy of one record; None past the last one.
    pub fn read(&self, slot: usize) -> Option<Result<NodeRecord, Torn>> {
        if slot >= self.count() {
            return None;
        }
        Some(read_record(&self.mapped, slot, &|| self.writer_alive()))
    }

    /// The raw words of one record, for callers that want no allocation: Ok(false)
    /// past the last one.
    pub fn read_raw(&self, slot: usize, out: &mut [u64; RECORD_WORDS]) -> Result<bool, Torn> {
        if slot >= self.count() {
            return Ok(false);
        }
        if !read_words(self.mapped.record(slot), out, &|| self.writer_alive()) {
            return Err(Torn { slot });
        }
        Ok(true)
    }

    /// Every record, a torn one as such.
    pub fn records(&self) -> Vec<Result<NodeRecord, Torn>> {
        (0..self.count())
            .map(|s| read_record(&self.mapped, s, &|| self.writer_alive()))
            .collect()
    }
}

/// Decode raw words read with [`TableReader::read_raw`].
pub fn decode(words: &[u64; RECORD_WORDS]) -> NodeRecord {
    NodeRecord::decode(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, n: u64) -> NodeRecord {
        let mut r = NodeRecord {
            name: name.into(),
            state: NodeState::Up,
            status: "active".into(),
            generation: n,
            last_seq: n,
            ..Default::default()
        };
        for l in r.links.iter_mut() {
            l.last_heard_ns = n;
            l.lost = n;
        }
        r
    }

    #[test]
    fn write_read_round_trip_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ast");
        let mut w = TableWriter::create(&p, 4, &["a".into(), "b".into()], "n1").unwrap();
        w.write(0, &rec("n1", 5)).unwrap();
        w.write(1, &rec("node-two", 7)).unwrap();
        assert!(matches!(TableWriter::create(&p, 4, &[], "x"), Err(Error::Locked(..))));
        let r = TableReader::open(&p).unwrap();
        assert!(r.writer_alive());
        assert_eq!(r.count(), 2);
        assert_eq!(r.read(1).unwrap().unwrap(), rec("node-two", 7));
        let h = r.header().unwrap();
        assert_eq!(h.channels, vec!["a", "b"]);
        assert_eq!(h.local, "n1");
        assert!(matches!(w.write(4, &rec("x", 1)), Err(Error::Full(4))));
        drop(w);
        assert!(!r.writer_alive());
        // A new writer keeps the records and grows, never shrinks.
        let w2 = TableWriter::create(&p, 2, &["a".into()], "n1").unwrap();
        assert_eq!(w2.capacity(), 4);
        assert_eq!(w2.existing().len(), 2);
    }

    #[test]
    fn refuses_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ast");
        std::fs::write(&p, vec![7u8; 4096]).unwrap();
        assert!(matches!(TableWriter::create(&p, 4, &[], "x"), Err(Error::Foreign(..))));
        assert!(matches!(TableReader::open(&p), Err(Error::Foreign(..))));
        let mut bad = vec![0u8; 4096];
        bad[..8].copy_from_slice(MAGIC);
        bad[8..12].copy_from_slice(&2u32.to_le_bytes());
        std::fs::write(&p, &bad).unwrap();
        let e = TableWriter::create(&p, 4, &[], "x").err().unwrap().to_string();
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn readers_never_see_torn_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ast");
        let mut w = TableWriter::create(&p, 1, &["a".into()], "n1").unwrap();
        w.write(0, &rec("n", 0)).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let reader = std::thread::spawn(move || {
            let r = TableReader::open(&p).unwrap();
            let mut seen = 0u64;
            let mut reads = 0;
            while !s2.load(Ordering::Relaxed) || reads < 1000 {
                let x = r.read(0).unwrap().unwrap();
                // Every field was written from one counter: a torn copy mixes two.
                assert_eq!(x.generation, x.last_seq);
                assert!(x
                    .links
                    .iter()
                    .all(|l| l.lost == x.generation && l.last_heard_ns == x.generation));
                assert!(x.generation >= seen);
                seen = x.generation;
                reads += 1;
            }
            reads
        });
        for n in 1..200_000u64 {
            w.write(0, &rec("n", n)).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() >= 1000);
    }

    /// What a writer killed between its two stores leaves: a record with an odd sequence.
    fn tear(path: &Path, slot: usize) {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start((HEADER_SIZE + slot * RECORD_SIZE) as u64))
            .unwrap();
        f.write_all(&7u64.to_le_bytes()).unwrap();
    }

    #[test]
    fn a_torn_record_is_reported_not_spun_on_and_repaired_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ast");
        let mut w = TableWriter::create(&p, 4, &["a".into()], "n1").unwrap();
        w.write(0, &rec("n1", 5)).unwrap();
        w.write(1, &rec("n2", 6)).unwrap();
        w.write(2, &rec("n3", 7)).unwrap();
        drop(w);
        tear(&p, 1);
        let r = TableReader::open(&p).unwrap();
        let t0 = std::time::Instant::now();
        assert_eq!(r.read(1), Some(Err(Torn { slot: 1 })));
        let all = r.records();
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(1),
            "bounded: {:?}",
            t0.elapsed()
        );
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].as_ref().unwrap().name, "n3");
        let mut words = [0u64; RECORD_WORDS];
        assert_eq!(r.read_raw(1, &mut words), Err(Torn { slot: 1 }));
        // The next writer clears it; the others stay as the replay floor.
        let w = TableWriter::create(&p, 4, &["a".into()], "n1").unwrap();
        let names: Vec<_> = w.existing().into_iter().map(|r| r.name).collect();
        assert_eq!(names, vec!["n1", "", "n3"]);
        assert!(r.read(1).unwrap().is_ok());
    }

    #[test]
    fn a_live_writer_that_stalls_mid_record_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ast");
        let mut w = TableWriter::create(&p, 4, &["a".into()], "n1").unwrap();
        w.write(0, &rec("n1", 5)).unwrap();
        w.write(1, &rec("n2", 6)).unwrap();
        // The writer is between its two stores (as if preempted there), and alive.
        tear(&p, 1);
        let r = TableReader::open(&p).unwrap();
        let t0 = std::time::Instant::now();
        let finish = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            w.write(1, &rec("n2", 7)).unwrap();
            w
        });
        let got = r.read(1).unwrap();
        assert_eq!(
            got.unwrap().generation,
            7,
            "read once the writer finished, not called torn"
        );
        assert!(t0.elapsed() >= std::time::Duration::from_millis(150));
        drop(finish.join().unwrap());
    }

    #[test]
    fn the_table_is_never_followed_or_adopted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        let link = dir.path().join("ast");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = TableWriter::create(&link, 4, &[], "n1").err().unwrap();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(e.exit_status(), ExitStatus::Usage);
        assert!(!victim.exists(), "nothing created where the link points");
        let open = dir.path().join("open");
        drop(TableWriter::create(&open, 4, &[], "n1").unwrap());
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = TableWriter::create(&open, 4, &[], "n1").err().unwrap();
        assert!(e.to_string().contains("other users write"), "{e}");
        assert!(TableReader::open(&open).is_err());
    }
}
