//! The smtp check: the banner, then EHLO, then QUIT, as check_smtp does; with
//! `--starttls` (or `-C`) it upgrades the session and judges the certificate too.

use super::net::{self, Bounded, Fail, Family};
use super::tls;
use super::{timed_out, Outcome, Perf, Status, Thresholds};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    /// What the banner must start with.
    pub expect: String,
    /// The name given in EHLO.
    pub helo: String,
    /// Upgrade with STARTTLS (CRITICAL if the server does not offer it).
    pub starttls: bool,
    /// With STARTTLS: the certificate's days to expiry, warning and critical.
    pub cert_days: Option<(u32, u32)>,
    /// With STARTTLS: whether the chain is verified.
    pub verify: tls::Verify,
    /// The TLS server name. [default: the host]
    pub sni: Option<String>,
    pub thresholds: Thresholds,
    pub timeout: Duration,
    pub family: Family,
}

pub fn run(s: &Settings, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let mut o = match talk(s, host, deadline) {
        Ok(Ok((banner, not_after))) => {
            let t = start.elapsed().as_secs_f64();
            let mut o = Outcome::new(
                s.thresholds.status(t),
                format!("{t:.3} sec. response time, {}", banner.trim_end()),
            )
            .with_perf(
                Perf::new("time", t, "s")
                    .thresholds(&s.thresholds)
                    .bounds(Some(0.0), None),
            );
            if let Some(na) = not_after {
                let name = s.sni.clone().unwrap_or_else(|| host.to_string());
                let (warn, crit) = s.cert_days.unwrap_or((0, 0));
                let cert = tls::cert_outcome(&name, na, warn, crit);
                o.status = o.status.worst(cert.status);
                o.text = format!("{}; {}", o.text, cert.text);
                o.perf.extend(cert.perf);
            }
            o
        }
        Ok(Err(o)) => o,
        Err(Fail::Timeout) => timed_out(s.timeout),
        Err(Fail::Resolve(why)) => Outcome::new(Status::Critical, format!("cannot resolve {why}")),
        Err(Fail::Io(e)) => Outcome::new(
            Status::Critical,
            format!("connect to address {host} and port {}: {}", s.port, net::io_text(&e)),
        ),
    };
    o.elapsed = start.elapsed();
    o
}

/// Ok(Ok((banner, certificate's notAfter with STARTTLS))) when the server answered as
/// it should, Ok(Err(outcome)) when it answered wrongly.
type Talked = Result<(String, Option<i64>), Outcome>;

fn talk(s: &Settings, host: &str, deadline: Instant) -> Result<Talked, Fail> {
    let addrs = net::resolve(host, s.port, s.family, deadline)?;
    let (mut stream, _) = net::connect(&addrs, deadline)?;
    let banner = reply(&mut stream, deadline)?;
    if !banner.starts_with(&s.expect) {
        return Ok(Err(Outcome::new(
            Status::Warning,
            format!("Invalid SMTP response received from host: {}", first_line(&banner)),
        )));
    }
    stream.set_write_timeout(Some(net::remaining(deadline)?))?;
    stream.write_all(format!("EHLO {}\r\n", s.helo).as_bytes())?;
    let ehlo = reply(&mut stream, deadline)?;
    if !ehlo.starts_with("250") {
        return Ok(Err(Outcome::new(
            Status::Warning,
            format!("EHLO refused: {}", first_line(&ehlo)),
        )));
    }
    let banner = first_line(&banner).to_string();
    if !s.starttls {
        // QUIT is a courtesy: its reply is not waited for.
        let _ = stream.write_all(b"QUIT\r\n");
        return Ok(Ok((banner, None)));
    }
    if !ehlo
        .lines()
        .any(|l| l.get(4..).is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS")))
    {
        return Ok(Err(Outcome::new(
            Status::Critical,
            "the server does not offer STARTTLS",
        )));
    }
    stream.write_all(b"STARTTLS\r\n")?;
    let go = reply(&mut stream, deadline)?;
    if !go.starts_with("220") {
        return Ok(Err(Outcome::new(
            Status::Critical,
            format!("STARTTLS refused: {}", first_line(&go)),
        )));
    }
    let name = s.sni.clone().unwrap_or_else(|| host.to_string());
    let mut tls = tls::connect(Bounded { s: stream, deadline }, &name, &s.verify)?;
    let not_after = tls::not_after(&tls);
    let _ = tls.write_all(b"QUIT\r\n");
    let _ = tls.flush();
    match not_after {
        Some(na) => Ok(Ok((banner, Some(na)))),
        None => Ok(Err(Outcome::new(
            Status::Critical,
            "Cannot read the server certificate",
        ))),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim_end()
}

/// One SMTP reply: lines `250-...` continue it, `250 ...` ends it.
fn reply(stream: &mut TcpStream, deadline: Instant) -> Result<String, Fail> {
    let mut buf = Vec::new();
    net::read_until(stream, &mut buf, 16 * 1024, deadline, |b| {
        let text = String::from_utf8_lossy(b);
        text.ends_with('\n')
            && text
                .lines()
                .last()
                .is_some_and(|l| l.len() < 4 || l.as_bytes()[3] != b'-')
    })?;
    if buf.is_empty() {
        return Err(Fail::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        )));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
