//! TLS for the checks (rustls with ring): a handshake bounded by the check's deadline,
//! the server's certificate read for its days to expiry, and the chain verified only
//! when asked (`--verify`, against the system's roots or a CA file). By default it is
//! read, not verified, as check_http does: a monitor must be able to watch a
//! self-signed service and warn before it expires.

use super::net::{self, Bounded, Fail, Family};
use super::x509;
use super::{timed_out, Outcome, Perf, Status, Thresholds};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The system's roots, as Debian's ca-certificates writes them.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Whether the certificate chain is verified, and against which roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verify {
    /// Read the certificate, accept any (check_http's behaviour).
    #[default]
    No,
    /// Verify the chain and the name against the roots in this PEM file.
    Roots(PathBuf),
}

type Stream = rustls::StreamOwned<rustls::ClientConnection, Bounded>;

/// Start TLS on a connected socket and finish the handshake, all by the socket's
/// deadline.
pub fn connect(sock: Bounded, name: &str, verify: &Verify) -> Result<Stream, Fail> {
    let server = match net::literal(name) {
        Some(ip) => ServerName::IpAddress(ip.into()),
        None => ServerName::try_from(name.to_string()).map_err(|_| {
            Fail::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is not a TLS server name"),
            ))
        })?,
    };
    let config = match verify {
        Verify::No => read_only_config(),
        Verify::Roots(file) => verifying_config(file),
    }
    .map_err(|e| Fail::Io(io::Error::other(e)))?;
    let conn =
        rustls::ClientConnection::new(config, server).map_err(|e| Fail::Io(io::Error::other(format!("TLS: {e}"))))?;
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).map_err(err)?;
    }
    Ok(stream)
}

/// The server certificate's notAfter, as Unix seconds.
pub fn not_after(s: &Stream) -> Option<i64> {
    s.conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| x509::validity(c))
        .map(|v| v.not_after)
}

/// A verifying configuration per roots file, loaded once.
fn verifying_config(file: &PathBuf) -> Result<Arc<rustls::ClientConfig>, String> {
    type Cache = Mutex<HashMap<PathBuf, Arc<rustls::ClientConfig>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(file) {
        return Ok(c.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(file).map_err(|e| format!("{}: {e}", file.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("{}: {e}", file.display()))?;
        // A root the library cannot use is skipped, as the system's bundle has a few.
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(format!("{}: no usable certificate in it", file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(file.clone(), config.clone());
    Ok(config)
}

/// What the `tls` check does: a handshake on any TLS port, its certificate's days.
#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    /// The TLS server name; [default: the host].
    pub sni: Option<String>,
    pub cert_days: Option<(u32, u32)>,
    pub verify: Verify,
    pub thresholds: Thresholds,
    pub timeout: Duration,
    pub family: Family,
}

/// The `tls` check: connect, shake hands, judge the certificate and the time taken.
pub fn run(s: &Settings, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = start + s.timeout;
    let name = s.sni.clone().unwrap_or_else(|| host.to_string());
    let result = (|| -> Result<Option<i64>, Fail> {
        let addrs = net::resolve(host, s.port, s.family, deadline)?;
        let (sock, _) = net::connect(&addrs, deadline)?;
        let mut stream = connect(Bounded { s: sock, deadline }, &name, &s.verify)?;
        let na = not_after(&stream);
        stream.conn.send_close_notify();
        let _ = stream.flush();
        Ok(na)
    })();
    let t = start.elapsed().as_secs_f64();
    let mut o = match result {
        Err(Fail::Timeout) => timed_out(s.timeout),
        Err(Fail::Resolve(why)) => Outcome::new(Status::Critical, format!("cannot resolve {why}")),
        Err(Fail::Io(e)) => Outcome::new(Status::Critical, net::io_text(&e)),
        Ok(None) => Outcome::new(Status::Critical, "Cannot read the server certificate"),
        Ok(Some(na)) => {
            let (warn, crit) = s.cert_days.unwrap_or((0, 0));
            let mut o = cert_outcome(&name, na, warn, crit);
            if o.status == Status::Ok {
                o.status = s.thresholds.status(t);
            }
            o.text = format!("{t:.3} second handshake on {host} port {}. {}", s.port, o.text);
            o.perf.insert(
                0,
                Perf::new("time", t, "s")
                    .thresholds(&s.thresholds)
                    .bounds(Some(0.0), Some(s.timeout.as_secs_f64())),
            );
            o
        }
    };
    o.elapsed = start.elapsed();
    o
}

pub fn cert_outcome(name: &str, not_after: i64, warn: u32, crit: u32) -> Outcome {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let left = not_after - now;
    let days = left.div_euclid(86_400);
    let (status, text) = if left < 0 {
        (
            Status::Critical,
            format!("Certificate '{name}' expired on {}.", date(not_after)),
        )
    } else {
        let status = if days < crit as i64 {
            Status::Critical
        } else if days < warn as i64 {
            Status::Warning
        } else {
            Status::Ok
        };
        (
            status,
            format!(
                "Certificate '{name}' will expire in {days} days, on {}.",
                date(not_after)
            ),
        )
    };
    Outcome::new(status, text).with_perf(Perf::new("days", days as f64, "").bounds(Some(0.0), None))
}

/// `2026-12-01 12:00 UTC`
fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // civil_from_days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

pub fn err(e: io::Error) -> Fail {
    if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
        Fail::Timeout
    } else {
        Fail::Io(io::Error::new(e.kind(), format!("TLS: {}", net::io_text(&e))))
    }
}

/// One client configuration for the process that reads certificates without verifying
/// them.
fn read_only_config() -> Result<Arc<rustls::ClientConfig>, String> {
    type Config = Result<Arc<rustls::ClientConfig>, String>;
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    Arc::new(
                        b.dangerous()
                            .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
                            .with_no_client_auth(),
                    )
                })
                .map_err(|e| format!("TLS configuration: {e}"))
        })
        .clone()
}

/// Accepts any certificate; the signatures of the handshake are still checked.
#[derive(Debug)]
struct ReadOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(20_778 * 86_400 + 3661), "2026-11-21 01:01 UTC");
    }
}
