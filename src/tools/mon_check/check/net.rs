//! Network plumbing the checks share: name resolution and socket I/O, every step
//! bounded by the check's deadline.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Which address family a check may use (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    pub fn from_flags(v4: bool, v6: bool) -> Family {
        match (v4, v6) {
            (true, false) => Family::V4,
            (false, true) => Family::V6,
            _ => Family::Any,
        }
    }
    fn allows(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Why a network step failed.
#[derive(Debug)]
pub enum Fail {
    /// The deadline passed.
    Timeout,
    /// The name does not resolve (to the family asked for).
    Resolve(String),
    Io(io::Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Fail::Timeout,
            _ => Fail::Io(e),
        }
    }
}

/// The time left before `deadline`, or a timeout when none is.
pub fn remaining(deadline: Instant) -> Result<Duration, Fail> {
    let now = Instant::now();
    if now >= deadline {
        Err(Fail::Timeout)
    } else {
        Ok(deadline - now)
    }
}

/// An address literal (`192.0.2.1`, `::1`, `[::1]`), when `host` is one.
pub fn literal(host: &str) -> Option<IpAddr> {
    let h = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    h.parse().ok()
}

/// Resolve `host` to socket addresses of the family asked for. A literal needs no
/// lookup; a name is looked up on a thread of its own because getaddrinfo has no
/// timeout — if it hangs past the deadline, the check reports the timeout and the
/// thread finishes on its own later.
pub fn resolve(host: &str, port: u16, family: Family, deadline: Instant) -> Result<Vec<SocketAddr>, Fail> {
    if let Some(ip) = literal(host) {
        return if family.allows(&ip) {
            Ok(vec![SocketAddr::new(ip, port)])
        } else {
            Err(Fail::Resolve(format!(
                "{host} is not an address of the family asked for"
            )))
        };
    }
    if host.is_empty() || host.len() > 253 {
        return Err(Fail::Resolve(format!("`{host}` is not a host name")));
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("resolve".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
        })
        .map_err(Fail::Io)?;
    let found = rx.recv_timeout(remaining(deadline)?).map_err(|_| Fail::Timeout)?;
    let addrs: Vec<SocketAddr> = match found {
        Ok(a) => a.into_iter().filter(|a| family.allows(&a.ip())).collect(),
        Err(e) => return Err(Fail::Resolve(format!("{host}: {}", resolve_reason(&e)))),
    };
    if addrs.is_empty() {
        return Err(Fail::Resolve(format!("{host}: no address of the family asked for")));
    }
    Ok(addrs)
}

fn resolve_reason(e: &io::Error) -> String {
    // std wraps gai_strerror's text as "failed to lookup address information: ..."
    let s = e.to_string();
    s.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&s)
        .to_string()
}

/// Connect to the first address that answers before the deadline.
pub fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<(TcpStream, SocketAddr), Fail> {
    let mut last = Fail::Timeout;
    for a in addrs {
        match TcpStream::connect_timeout(a, remaining(deadline)?) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok((s, *a));
            }
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// Read into `buf` until `done(buf)` says so, the peer closes, `max` bytes have come,
/// or the deadline passes (a timeout only when nothing at all has come).
pub fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
    done: impl Fn(&[u8]) -> bool,
) -> Result<(), Fail> {
    let mut chunk = [0u8; 4096];
    while buf.len() < max && !done(buf) {
        s.set_read_timeout(Some(remaining(deadline)?))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n.min(max - buf.len())]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `\n`, `\r`, `\t` and `\\` in a send or expect string (check_tcp's `-E`).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// The text of an I/O error without Rust's " (os error N)" tail, as C tools print it.
pub fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A socket whose every read and write ends by a deadline, for protocols read through
/// layers that loop on their own (TLS, `read_exact`).
pub struct Bounded {
    pub s: TcpStream,
    pub deadline: Instant,
}

impl Bounded {
    fn left(&self) -> io::Result<Duration> {
        remaining(self.deadline).map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timeout"))
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.s.set_read_timeout(Some(left))?;
        self.s.read(buf)
    }
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.s.set_write_timeout(Some(left))?;
        self.s.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.s.flush()
    }
}
