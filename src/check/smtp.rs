//! The smtp check: the banner, then EHLO, then QUIT, as check_smtp does.

use super::net::{self, Fail, Family};
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
    pub thresholds: Thresholds,
    pub timeout: Duration,
    pub family: Family,
}

pub fn run(s: &Settings, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let mut o = match talk(s, host, deadline) {
        Ok(Ok(banner)) => {
            let t = start.elapsed().as_secs_f64();
            Outcome::new(
                s.thresholds.status(t),
                format!("{t:.3} sec. response time, {}", banner.trim_end()),
            )
            .with_perf(
                Perf::new("time", t, "s")
                    .thresholds(&s.thresholds)
                    .bounds(Some(0.0), None),
            )
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

/// Ok(Ok(banner)) when the server answered as it should, Ok(Err(outcome)) when it
/// answered wrongly.
fn talk(s: &Settings, host: &str, deadline: Instant) -> Result<Result<String, Outcome>, Fail> {
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
    // QUIT is a courtesy: its reply is not waited for.
    let _ = stream.write_all(b"QUIT\r\n");
    Ok(Ok(first_line(&banner).to_string()))
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
