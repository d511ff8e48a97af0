//! The http and https checks: a status line, a string or regex in the body, a
//! certificate's days to expiry, redirects, all within the timeout. HTTP/1.1 is
//! spoken by hand (a request, `Connection: close`, a body read to its end); TLS is in
//! [`super::tls`].

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
    if tls {
        let mut stream = tls::connect(sock, vhost, &s.verify)?;
        stream.write_all(req.as_bytes()).map_err(tls::err)?;
        stream.flush().map_err(tls::err)?;
        let raw = read_all(&mut stream, s.max_body)?;
        let mut r = parse_response(&raw)?;
        r.not_after = tls::not_after(&stream);
        Ok(r)
    } else {
        let mut stream = sock;
        stream.write_all(req.as_bytes())?;
        let raw = read_all(&mut stream, s.max_body)?;
        parse_response(&raw)
    }
}

/// Read the answer to its end (the server closes: `Connection: close`), at most
/// `max` bytes of it. A peer that closes TLS without close_notify is tolerated, as
/// browsers do, once something has come.
fn read_all(r: &mut impl Read, max: usize) -> Result<Vec<u8>, Fail> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() >= max {
                    buf.truncate(max);
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !buf.is_empty() => break,
            Err(e) => return Err(tls::err(e)),
        }
    }
    Ok(buf)
}

/// For the fuzzer: whether an answer parses (it must never panic).
#[doc(hidden)]
pub fn parses(raw: &[u8]) -> bool {
    parse_response(raw).is_ok()
}

fn parse_response(raw: &[u8]) -> Result<Response, Fail> {
    let bad = |m: &str| Fail::Io(io::Error::new(io::ErrorKind::InvalidData, m.to_string()));
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad("Invalid HTTP response received from host"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("").to_string();
    let code = status_line
        .strip_prefix("HTTP/")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..1000).contains(c))
        .ok_or_else(|| bad("Invalid HTTP response received from host"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Ok(Response {
        status_line,
        code,
        headers,
        body,
        size: raw.len(),
        not_after: None,
    })
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Decode a chunked body as far as it goes.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = find(b, b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..i]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        b = &b[i + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .ok()
        .unwrap();
        assert_eq!(r.code, 200);
        assert_eq!(r.body, b"hello world");
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK").is_err());
        assert!(parse_response(b"HTTP/1.1 99999 OK\r\n\r\n").is_err());
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
