//! The http and https checks: a status line, a string or regex in the body, a
//! certificate's days to expiry, redirects, all within the timeout. HTTP/1.1 is
//! spoken by hand (a request, `Connection: close`); the answer's head is parsed by
//! httparse and its body framed by RFC 9112 (Content-Length, chunked, or to the close),
//! so a cut or ambiguous answer is CRITICAL with the reason, never taken as OK. TLS is
//! in [`super::tls`].

use super::net::{self, Bounded, Fail, Family};
use super::tls;
use super::{timed_out, Outcome, Perf, Status, Thresholds};
use regex::Regex;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// What to do with a 3xx answer (check_http's `-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedirect {
    Ok,
    Warning,
    Critical,
    Follow,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub tls: bool,
    pub port: Option<u16>,
    /// Connect here instead of the host (check_http's `-I`).
    pub ip: Option<String>,
    /// The Host header and TLS server name; [default: the host].
    pub vhost: Option<String>,
    pub path: String,
    pub method: String,
    /// Status codes (or prefixes like `20`) that are OK; empty: 2xx and 3xx.
    pub expect: Vec<String>,
    pub string: Option<String>,
    pub regex: Option<Regex>,
    pub invert_regex: bool,
    /// Certificate days to expiry: warning, critical.
    pub cert_days: Option<(u32, u32)>,
    /// Whether and against what the certificate chain is verified.
    pub verify: tls::Verify,
    /// With `cert_days`, check the page too (otherwise only the certificate).
    pub continue_after_cert: bool,
    pub onredirect: OnRedirect,
    pub headers: Vec<String>,
    /// `user:password` for basic authentication.
    pub auth: Option<String>,
    pub max_body: usize,
    pub thresholds: Thresholds,
    pub timeout: Duration,
    pub family: Family,
}

struct Response {
    status_line: String,
    code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Bytes of the whole answer, headers included (check_http's size).
    size: usize,
    not_after: Option<i64>,
}

pub fn run(s: &Settings, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let mut o = match check(s, host, deadline, start) {
        Ok(o) => o,
        Err(Fail::Timeout) => timed_out(s.timeout),
        Err(Fail::Resolve(why)) => Outcome::new(Status::Critical, format!("cannot resolve {why}")),
        Err(Fail::Io(e)) => Outcome::new(Status::Critical, net::io_text(&e)),
    };
    o.elapsed = start.elapsed();
    o
}

fn check(s: &Settings, host: &str, deadline: Instant, start: Instant) -> Result<Outcome, Fail> {
    let port = s.port.unwrap_or(if s.tls { 443 } else { 80 });
    let vhost = s.vhost.clone().unwrap_or_else(|| host.to_string());
    let connect_to = s.ip.clone().unwrap_or_else(|| host.to_string());
    let mut target = (s.tls, connect_to, vhost, port, s.path.clone());
    let mut redirects = 0;
    loop {
        let (tls, ref to, ref vh, port, ref path) = target;
        let r = fetch(s, tls, to, vh, port, path, deadline)?;
        if let (Some((warn, crit)), Some(na)) = (s.cert_days, r.not_after) {
            let cert = tls::cert_outcome(vh, na, warn, crit);
            if !s.continue_after_cert || cert.status != Status::Ok {
                return Ok(cert);
            }
        } else if s.cert_days.is_some() && tls {
            return Ok(Outcome::new(Status::Critical, "Cannot read the server certificate"));
        }
        if (300..400).contains(&r.code) && s.onredirect == OnRedirect::Follow {
            let loc = header(&r.headers, "location").unwrap_or_default();
            redirects += 1;
            if loc.is_empty() || redirects > 15 {
                return Ok(Outcome::new(
                    Status::Critical,
                    format!("{} - too many redirects or no Location", r.status_line),
                ));
            }
            target = follow(&target, &loc);
            continue;
        }
        return Ok(judge(s, &r, start.elapsed().as_secs_f64()));
    }
}

type Target = (bool, String, String, u16, String);

/// The next target after a redirect to `loc` (absolute or relative).
fn follow(cur: &Target, loc: &str) -> Target {
    let (tls, to, vh, port, path) = cur.clone();
    for (scheme, t, p) in [("https://", true, 443u16), ("http://", false, 80u16)] {
        if let Some(rest) = loc.strip_prefix(scheme) {
            let (hostport, path) = match rest.find('/') {
                Some(i) => (&rest[..i], rest[i..].to_string()),
                None => (rest, "/".to_string()),
            };
            let (h, port) = split_host_port(hostport, p);
            return (t, h.clone(), h, port, path);
        }
    }
    if loc.starts_with('/') {
        (tls, to, vh, port, loc.to_string())
    } else {
        let base = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
        (tls, to, vh, port, format!("{base}{loc}"))
    }
}

fn split_host_port(hp: &str, default: u16) -> (String, u16) {
    if let Some(rest) = hp.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            let port = p.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default);
            return (h.to_string(), port);
        }
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().unwrap_or(default)),
        _ => (hp.to_string(), default),
    }
}

fn judge(s: &Settings, r: &Response, t: f64) -> Outcome {
    let body = String::from_utf8_lossy(&r.body);
    let mut status = if !s.expect.is_empty() {
        let code = r.code.to_string();
        if s.expect
            .iter()
            .any(|e| code.starts_with(e.as_str()) || r.status_line.contains(e.as_str()))
        {
            Status::Ok
        } else {
            Status::Critical
        }
    } else {
        match r.code {
            200..=299 => Status::Ok,
            300..=399 => match s.onredirect {
                OnRedirect::Ok | OnRedirect::Follow => Status::Ok,
                OnRedirect::Warning => Status::Warning,
                OnRedirect::Critical => Status::Critical,
            },
            400..=499 => Status::Warning,
            _ => Status::Critical,
        }
    };
    let mut why = String::new();
    if status == Status::Ok {
        if let Some(want) = &s.string {
            if !body.contains(want.as_str()) {
                status = Status::Critical;
                why = format!("string '{want}' not found on '{}' - ", s.path);
            }
        }
    }
    if status == Status::Ok {
        if let Some(re) = &s.regex {
            if re.is_match(&body) == s.invert_regex {
                status = Status::Critical;
                why = format!("pattern {}found - ", if s.invert_regex { "" } else { "not " });
            }
        }
    }
    if status == Status::Ok {
        status = s.thresholds.status(t);
    }
    let text = format!(
        "{}{} - {} bytes in {t:.3} second response time ",
        why, r.status_line, r.size
    );
    Outcome::new(status, text)
        .with_perf(
            Perf::new("time", t, "s")
                .thresholds(&s.thresholds)
                .bounds(Some(0.0), Some(s.timeout.as_secs_f64())),
        )
        .with_perf(Perf::new("size", r.size as f64, "B").bounds(Some(0.0), None))
}

fn header(h: &[(String, String)], name: &str) -> Option<String> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

#[allow(clippy::too_many_arguments)]
fn fetch(
    s: &Settings,
    tls: bool,
    to: &str,
    vhost: &str,
    port: u16,
    path: &str,
    deadline: Instant,
) -> Result<Response, Fail> {
    let addrs = net::resolve(to, port, s.family, deadline)?;
    let (stream, _) = net::connect(&addrs, deadline)?;
    let sock = Bounded { s: stream, deadline };
    let host_header = if net::literal(vhost).is_some_and(|ip| ip.is_ipv6()) && !vhost.starts_with('[') {
        format!("[{vhost}]")
    } else {
        vhost.to_string()
    };
    let default_port = if tls { 443 } else { 80 };
    let host_header = if port == default_port {
        host_header
    } else {
        format!("{host_header}:{port}")
    };
    let mut req = format!(
        "{} {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: mon-check/{} (hakit)\r\nAccept: */*\r\nConnection: close\r\n",
        s.method,
        path,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(a) = &s.auth {
        use base64::Engine;
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        ));
    }
    for h in &s.headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let head = s.method.eq_ignore_ascii_case("HEAD");
    if tls {
        let mut stream = tls::connect(sock, vhost, &s.verify)?;
        stream.write_all(req.as_bytes()).map_err(tls::err)?;
        stream.flush().map_err(tls::err)?;
        let mut r = receive(&mut stream, s.max_body, head)?;
        r.not_after = tls::not_after(&stream);
        Ok(r)
    } else {
        let mut stream = sock;
        stream.write_all(req.as_bytes())?;
        receive(&mut stream, s.max_body, head)
    }
}

/// Read the answer until its framing says it is complete (RFC 9112 §6.3), the server
/// closes, or `max` bytes have come (what came is then judged as it is). A peer that
/// closes TLS without close_notify is tolerated, as browsers do, once something has
/// come: the framing still tells a cut answer from a whole one.
fn receive(r: &mut impl Read, max: usize, head: bool) -> Result<Response, Fail> {
    let mut buf = Vec::new();
    let mut framing = Framing::new(head);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(r) = framing.advance(&buf, End::Open).map_err(invalid)? {
            return Ok(r);
        }
        let end = match r.read(&mut chunk) {
            Ok(0) => End::Closed,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n.min(max - buf.len())]);
                if buf.len() < max {
                    continue;
                }
                End::Capped
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !buf.is_empty() => End::Closed,
            Err(e) => return Err(tls::err(e)),
        };
        return framing
            .advance(&buf, end)
            .map_err(invalid)?
            .ok_or_else(|| invalid("Invalid HTTP response received from host".into()));
    }
}

fn invalid(why: String) -> Fail {
    Fail::Io(io::Error::new(io::ErrorKind::InvalidData, why))
}

/// For the fuzzer: whether an answer parses (it must never panic).
#[doc(hidden)]
pub fn parses(raw: &[u8]) -> bool {
    receive(&mut io::Cursor::new(raw), 4 << 20, false).is_ok()
}

/// Why reading stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// More may come.
    Open,
    /// The server closed: what is missing will not come.
    Closed,
    /// We stopped at `--max-body`: what is missing was not read, not wrong.
    Capped,
}

/// Where the body of an answer ends.
enum Body {
    /// HEAD, 1xx, 204 and 304: none, whatever the headers say.
    Empty,
    Length(usize),
    Chunked(Dechunk),
    /// No length: the body ends when the server closes.
    UntilClose,
}

/// The answer read so far: its head once complete (after any interim 1xx answers),
/// then its body as its framing says.
struct Framing {
    head_request: bool,
    /// Where the final answer's head starts (past interim 1xx answers).
    offset: usize,
    head: Option<(Response, usize, Body)>,
}

const MAX_HEADERS: usize = 128;

impl Framing {
    fn new(head_request: bool) -> Framing {
        Framing {
            head_request,
            offset: 0,
            head: None,
        }
    }

    /// The answer, once complete (or at the end of what can be read); `None` if more
    /// must be read.
    fn advance(&mut self, buf: &[u8], end: End) -> Result<Option<Response>, String> {
        while self.head.is_none() {
            match parse_head(&buf[self.offset..], self.head_request)? {
                None if end == End::Open => return Ok(None),
                None => return Err("Invalid HTTP response received from host: the headers do not end".into()),
                // An interim answer (103 Early Hints, 100 Continue): the final one follows.
                Some((r, len, _)) if (100..200).contains(&r.code) && r.code != 101 => self.offset += len,
                Some((r, len, body)) => self.head = Some((r, self.offset + len, body)),
            }
        }
        let Some((r, start, body)) = &mut self.head else {
            return Ok(None);
        };
        let got = &buf[*start..];
        let (body, used) = match body {
            Body::Empty => (Vec::new(), 0),
            Body::Length(n) if got.len() >= *n => (got[..*n].to_vec(), *n),
            Body::Length(n) => match end {
                End::Open => return Ok(None),
                End::Capped => (got.to_vec(), got.len()),
                End::Closed => {
                    return Err(format!(
                        "the body ends after {} of the {n} bytes of its Content-Length (connection closed early)",
                        got.len()
                    ))
                }
            },
            Body::Chunked(d) => match (d.advance(got)?, end) {
                (true, _) | (false, End::Capped) => (std::mem::take(&mut d.out), d.pos),
                (false, End::Open) => return Ok(None),
                (false, End::Closed) if d.last_seen => (std::mem::take(&mut d.out), d.pos),
                (false, End::Closed) => {
                    return Err("the chunked body ends before its last chunk (connection closed early)".into())
                }
            },
            Body::UntilClose if end == End::Open => return Ok(None),
            Body::UntilClose => (got.to_vec(), got.len()),
        };
        let mut r = std::mem::replace(
            r,
            Response {
                status_line: String::new(),
                code: 0,
                headers: Vec::new(),
                body: Vec::new(),
                size: 0,
                not_after: None,
            },
        );
        r.body = body;
        r.size = *start + used;
        Ok(Some(r))
    }
}

/// The status line and headers (parsed by httparse) and how the body is framed;
/// `None` while incomplete.
fn parse_head(raw: &[u8], head_request: bool) -> Result<Option<(Response, usize, Body)>, String> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut p = httparse::Response::new(&mut hs);
    let len = match p.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("Invalid HTTP response received from host: {e}")),
    };
    let version = p.version.unwrap_or(1);
    let code = p.code.unwrap_or(0);
    let status_line = format!("HTTP/1.{version} {code} {}", p.reason.unwrap_or(""))
        .trim_end()
        .to_string();
    let headers: Vec<(String, String)> = p
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    let body = framing(&headers, version, code, head_request)?;
    let r = Response {
        status_line,
        code,
        headers,
        body: Vec::new(),
        size: 0,
        not_after: None,
    };
    Ok(Some((r, len, body)))
}

/// How the body is framed, by RFC 9112 §6.3; what could frame it two ways is refused,
/// as the RFC asks of a user agent (the answer is discarded, not guessed at).
fn framing(headers: &[(String, String)], version: u8, code: u16, head_request: bool) -> Result<Body, String> {
    fn all<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    if head_request || (100..200).contains(&code) || code == 204 || code == 304 {
        return Ok(Body::Empty);
    }
    // Every Content-Length line and every element of each list: identical values are
    // one length (RFC 9110 §8.6), different ones a conflict.
    let mut length: Option<usize> = None;
    for v in all(headers, "content-length").flat_map(|v| v.split(',')).map(str::trim) {
        let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<usize>().ok())
            .flatten()
            .ok_or_else(|| format!("invalid Content-Length '{v}'"))?;
        match length {
            Some(m) if m != n => return Err(format!("conflicting Content-Length headers ({m} and {n})")),
            _ => length = Some(n),
        }
    }
    let codings: Vec<&str> = all(headers, "transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if !codings.is_empty() {
        if length.is_some() {
            // A sender must not send both (RFC 9110 §8.6); it is how answers are smuggled.
            return Err("both Transfer-Encoding and Content-Length".into());
        }
        if version == 0 {
            return Err("Transfer-Encoding in an HTTP/1.0 answer".into());
        }
        return Ok(match codings.last() {
            Some(c) if c.eq_ignore_ascii_case("chunked") => Body::Chunked(Dechunk::default()),
            _ => Body::UntilClose,
        });
    }
    Ok(length.map_or(Body::UntilClose, Body::Length))
}

/// A chunked body decoded as it comes (RFC 9112 §7.1): `pos` is how far the body has
/// been consumed, `out` the data so far.
#[derive(Default)]
struct Dechunk {
    pos: usize,
    out: Vec<u8>,
    /// The last chunk (size 0) has come; only the trailer section is left.
    last_seen: bool,
}

/// The line at the start of `b`, without its CRLF (or bare LF), and the length
/// consumed; `None` until its end has come.
fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let i = b.iter().position(|&c| c == b'\n')?;
    let l = &b[..i];
    Some((l.strip_suffix(b"\r").unwrap_or(l), i + 1))
}

impl Dechunk {
    /// Consume what has come of the body; true once it is complete.
    fn advance(&mut self, b: &[u8]) -> Result<bool, String> {
        loop {
            let rest = &b[self.pos..];
            if self.last_seen {
                // The trailer section: fields, then an empty line.
                let Some((l, used)) = line(rest) else { return Ok(false) };
                self.pos += used;
                if l.is_empty() {
                    return Ok(true);
                }
                continue;
            }
            let Some((l, used)) = line(rest) else {
                // A size line cannot be long: more than this is not one still coming.
                if rest.len() > 1024 {
                    return Err("chunk size line too long".into());
                }
                return Ok(false);
            };
            let text = String::from_utf8_lossy(l);
            // chunk-size [ BWS ";" chunk-ext ]
            let digits = text.split(';').next().unwrap_or("").trim_end_matches([' ', '\t']);
            let size = (!digits.is_empty() && digits.len() <= 16 && digits.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| usize::from_str_radix(digits, 16).ok())
                .flatten()
                .ok_or_else(|| format!("invalid chunk size '{}'", text.chars().take(40).collect::<String>()))?;
            if size == 0 {
                self.pos += used;
                self.last_seen = true;
                continue;
            }
            let data = &rest[used..];
            if data.len() < size {
                return Ok(false);
            }
            match &data[size..] {
                [b'\r', b'\n', ..] | [b'\n', ..] => {}
                [] | [b'\r'] => return Ok(false),
                _ => return Err(format!("a chunk of {size} bytes is not followed by CRLF")),
            }
            self.out.extend_from_slice(&data[..size]);
            self.pos += used + size + if data[size] == b'\r' { 2 } else { 1 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], max: usize) -> Result<Response, String> {
        receive(&mut io::Cursor::new(raw), max, false).map_err(|e| match e {
            Fail::Io(e) => e.to_string(),
            _ => "other".into(),
        })
    }

    #[test]
    fn responses_parse() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            1 << 20,
        )
        .unwrap();
        assert_eq!(r.code, 200);
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.body, b"hello world");
        assert!(parse(b"garbage\r\n\r\n", 1 << 20).is_err());
        assert!(parse(b"HTTP/1.1 200 OK", 1 << 20).is_err());
        assert!(parse(b"HTTP/1.1 99999 OK\r\n\r\n", 1 << 20).is_err());
        // Without a length the body runs to the close; a 204 has none whatever it says.
        assert_eq!(
            parse(b"HTTP/1.0 200 OK\r\n\r\nall of it", 1 << 20).unwrap().body,
            b"all of it"
        );
        let r = parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", 1 << 20).unwrap();
        assert!(r.body.is_empty());
    }

    /// Stopping at --max-body is not a cut answer: what came is judged.
    #[test]
    fn the_cap_is_not_a_short_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        assert_eq!(parse(raw, raw.len() - 5).unwrap().body, b"01234");
        let e = parse(raw, 1 << 20).err().unwrap();
        assert!(e.contains("after 10 of the 100 bytes"), "{e}");
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n";
        assert_eq!(parse(raw, raw.len()).unwrap().body, b"0123456789");
    }

    #[test]
    fn chunk_framing_errors() {
        for (raw, why) in [
            (&b"5\r\nhelloX0\r\n\r\n"[..], "not followed by CRLF"),
            (b"-1\r\n", "invalid chunk size '-1'"),
            (b" 5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
            (b"5\r\nhel", "before its last chunk"),
        ] {
            let mut a = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            a.extend_from_slice(raw);
            let e = parse(&a, 1 << 20).err().unwrap();
            assert!(e.contains(why), "{why}: {e}");
        }
        // The last chunk without the trailer's empty line: the body is whole.
        let a = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\n0\r\n";
        assert_eq!(parse(a, 1 << 20).unwrap().body, b"ok");
    }

    #[test]
    fn redirects_resolve() {
        let cur: Target = (false, "a".into(), "a".into(), 80, "/x/y".into());
        assert_eq!(follow(&cur, "z").4, "/x/z");
        assert_eq!(follow(&cur, "/q").4, "/q");
        let t = follow(&cur, "https://b.example:8443/p");
        assert_eq!((t.0, t.1.as_str(), t.3, t.4.as_str()), (true, "b.example", 8443, "/p"));
        let t = follow(&cur, "http://[::1]:81");
        assert_eq!((t.1.as_str(), t.3, t.4.as_str()), ("::1", 81, "/"));
    }
}
