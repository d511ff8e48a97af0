//! The keys file, in Heartbeat's `authkeys` format, and message signatures.
//!
//! ```text
//! auth 1
//! 1 sha256 SecretKey
//! 2 sha1 SecretKey
//! 3 crc
//! ```
//! `sha256` (HMAC-SHA256) is hakit's own method and its default; `sha1` and `md5`
//! (HMACs, as Heartbeat computes them) and `crc` (integrity only) are there for mixed
//! clusters with Heartbeat nodes; a crc key is warned about at every load, since
//! anyone on the LAN can sign with it. The file is refused unless it is a regular file
//! (not a symlink: opened without following one, and without blocking on a FIFO), owned
//! by the running user or root (another user could read and replace the key), that
//! only its owner can read; and unless exactly one `auth` line selects the signing key.

use crate::base::exit::{ExitStatus, HasExitStatus};
use crate::base::fsio;
use hmac::{Hmac, Mac};
use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The highest key index (Heartbeat allows 16 of them, 0 to 15).
pub const MAX_INDEX: u8 = 15;

/// A keys file is 17 short lines; more than this is not one.
const MAX_FILE: u64 = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sha256,
    Sha1,
    Md5,
    Crc,
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" => Some(Method::Sha256),
            "sha1" => Some(Method::Sha1),
            "md5" => Some(Method::Md5),
            "crc" => Some(Method::Crc),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Method::Sha256 => "sha256",
            Method::Sha1 => "sha1",
            Method::Md5 => "md5",
            Method::Crc => "crc",
        }
    }
}

#[derive(Clone)]
pub struct Key {
    pub method: Method,
    secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // Never print a secret, not even in a debug dump.
        write!(f, "Key({})", self.method.name())
    }
}

#[derive(Debug, Clone)]
pub struct AuthKeys {
    active: u8,
    keys: [Option<Key>; MAX_INDEX as usize + 1],
}

#[derive(Debug)]
pub enum Error {
    Io(PathBuf, std::io::Error),
    Mode(PathBuf, u32),
    /// Not a regular file, or not ours or root's: fsio's one-line refusal.
    Untrusted(String),
    Syntax {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: cannot read the keys file: {e}", p.display()),
            Error::Mode(p, m) => write!(
                f,
                "{}: keys file has mode {:04o}; refusing it unless only its owner can read it (chmod 600)",
                p.display(),
                m & 0o7777
            ),
            Error::Untrusted(m) => f.write_str(m),
            Error::Syntax { path, line, col, msg } => write!(f, "{}:{line}:{col}: {msg}", path.display()),
        }
    }
}

impl HasExitStatus for Error {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Usage
    }
}

/// Why a message's signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Missing,
    Malformed,
    UnknownIndex,
    BadDigest,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Missing => "no-auth",
            Reject::Malformed => "bad-auth-field",
            Reject::UnknownIndex => "unknown-key",
            Reject::BadDigest => "bad-signature",
        }
    }
}

impl AuthKeys {
    /// Read and check a keys file.
    pub fn load(path: &Path) -> Result<AuthKeys, Error> {
        // Checked on the open descriptor (nothing swapped in between); O_NONBLOCK so
        // that a FIFO is refused rather than waited on.
        let mut f = fsio::open_read(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::Untrusted(format!(
                "{}: the keys file is a symbolic link; refusing to follow it",
                path.display()
            )),
            _ => Error::Io(path.into(), e),
        })?;
        let meta = f.metadata().map_err(|e| Error::Io(path.into(), e))?;
        if !meta.is_file() {
            return Err(Error::Untrusted(format!(
                "{}: the keys file is {}, not a regular file",
                path.display(),
                fsio::kind(&meta)
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(Error::Mode(path.into(), meta.mode()));
        }
        fsio::check_trusted(path, &meta, fsio::Whose::Ours).map_err(Error::Untrusted)?;
        let mut text = String::new();
        (&mut f)
            .take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::Io(path.into(), e))?;
        if text.len() as u64 > MAX_FILE {
            return Err(Error::Untrusted(format!(
                "{}: the keys file is larger than {} KiB",
                path.display(),
                MAX_FILE >> 10
            )));
        }
        let keys = Self::parse(&text).map_err(|(line, col, msg)| Error::Syntax {
            path: path.into(),
            line,
            col,
            msg,
        })?;
        if let Some(idx) = keys
            .keys
            .iter()
            .position(|k| k.as_ref().is_some_and(|k| k.method == Method::Crc))
        {
            crate::base::log::warn(&format!(
                "{}: key {idx} is crc, which authenticates nothing: anyone on the LAN can forge heartbeats signed with it (use sha256)",
                path.display()
            ));
        }
        Ok(keys)
    }

    /// Parse the text of a keys file; errors carry (line, column, message).
    pub fn parse(text: &str) -> Result<AuthKeys, (usize, usize, String)> {
        let mut active: Option<(u8, usize, usize)> = None;
        let mut keys: [Option<Key>; MAX_INDEX as usize + 1] = Default::default();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let body = raw.split('#').next().unwrap_or("");
            let mut words = Words::new(body);
            let Some((c1, w1)) = words.next() else {
                continue;
            };
            if w1 == "auth" {
                if let Some((_, first, _)) = active {
                    return Err((
                        line,
                        c1,
                        format!("a second `auth` line (the first is on line {first}); one selects the signing key"),
                    ));
                }
                let (c2, w2) = words
                    .next()
                    .ok_or((line, body.len() + 1, "`auth` needs a key index".to_string()))?;
                let idx = parse_index(w2).ok_or((line, c2, format!("`{w2}` is not a key index 0..15")))?;
                if let Some((c3, w3)) = words.next() {
                    return Err((line, c3, format!("unexpected `{w3}` after `auth {w2}`")));
                }
                active = Some((idx, line, c2));
                continue;
            }
            let idx =
                parse_index(w1).ok_or((line, c1, format!("expected `auth N` or `N METHOD [KEY]`, found `{w1}`")))?;
            let (c2, w2) = words.next().ok_or((
                line,
                body.len() + 1,
                format!("key {idx} needs a method (sha256, sha1, md5, crc)"),
            ))?;
            let method = Method::parse(w2).ok_or((
                line,
                c2,
                format!("unknown method `{w2}` (use sha256, sha1, md5 or crc)"),
            ))?;
            // The key is the rest of the line, as Heartbeat reads it.
            let secret = words.rest().trim_end().as_bytes().to_vec();
            if method != Method::Crc && secret.is_empty() {
                return Err((line, body.len() + 1, format!("key {idx} ({w2}) needs a secret")));
            }
            if keys[idx as usize].is_some() {
                return Err((line, c1, format!("key {idx} is defined twice")));
            }
            keys[idx as usize] = Some(Key { method, secret });
        }
        let (idx, line, col) = active.ok_or((1, 1, "no `auth N` line selects the signing key".to_string()))?;
        if keys[idx as usize].is_none() {
            return Err((line, col, format!("`auth {idx}` selects a key that is not defined")));
        }
        Ok(AuthKeys { active: idx, keys })
    }

    pub fn active_method(&self) -> Method {
        self.keys[self.active as usize]
            .as_ref()
            .map(|k| k.method)
            .unwrap_or(Method::Crc)
    }

    /// The value of the `auth` field for `data` (the classic text form without the
    /// `>>>`/`<<<` lines and without the auth line).
    pub fn sign(&self, data: &[u8]) -> String {
        let key = self.keys[self.active as usize]
            .as_ref()
            .expect("active key checked at load");
        format!("{} {}", self.active, hex(&digest(key, data)))
    }

    /// Check an `auth` field against `data`, in constant time for the digest.
    pub fn verify(&self, auth: Option<&[u8]>, data: &[u8]) -> Result<(), Reject> {
        let auth = auth.ok_or(Reject::Missing)?;
        let sp = auth.iter().position(|&b| b == b' ').ok_or(Reject::Malformed)?;
        let idx = std::str::from_utf8(&auth[..sp])
            .ok()
            .and_then(parse_index)
            .ok_or(Reject::Malformed)?;
        let key = self.keys[idx as usize].as_ref().ok_or(Reject::UnknownIndex)?;
        let want = hex(&digest(key, data));
        let got = &auth[sp + 1..];
        let got = got.strip_suffix(b"\n").unwrap_or(got);
        // crc prints %lx (no leading zeros); compare it on its numeric value.
        if key.method == Method::Crc {
            let g = std::str::from_utf8(got)
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok());
            let w = u32::from_str_radix(&want, 16).ok();
            return if g.is_some() && g == w {
                Ok(())
            } else {
                Err(Reject::BadDigest)
            };
        }
        if got.len() == want.len() && bool::from(got.ct_eq(want.as_bytes())) {
            Ok(())
        } else {
            Err(Reject::BadDigest)
        }
    }
}

fn parse_index(s: &str) -> Option<u8> {
    s.parse::<u8>().ok().filter(|&i| i <= MAX_INDEX)
}

fn digest(key: &Key, data: &[u8]) -> Vec<u8> {
    match key.method {
        Method::Sha256 => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key.secret).expect("hmac takes any key");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Method::Sha1 => {
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(&key.secret).expect("hmac takes any key");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Method::Md5 => {
            let mut m = Hmac::<md5::Md5>::new_from_slice(&key.secret).expect("hmac takes any key");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Method::Crc => crc32_posix(data).to_be_bytes().to_vec(),
    }
}

/// CRC-32/POSIX (polynomial 0x04C11DB7, not reflected, init 0, inverted), as
/// Heartbeat's crc method computes it.
pub fn crc32_posix(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    !crc
}

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// Whitespace-separated words with their 1-based columns.
struct Words<'a> {
    s: &'a str,
    pos: usize,
}
impl<'a> Words<'a> {
    fn new(s: &'a str) -> Self {
        Words { s, pos: 0 }
    }
    fn next(&mut self) -> Option<(usize, &'a str)> {
        let rest = &self.s[self.pos..];
        let start = self.pos + rest.len() - rest.trim_start().len();
        if start >= self.s.len() {
            return None;
        }
        let end = self.s[start..]
            .find(char::is_whitespace)
            .map(|e| start + e)
            .unwrap_or(self.s.len());
        self.pos = end;
        Some((start + 1, &self.s[start..end]))
    }
    fn rest(&self) -> &'a str {
        self.s[self.pos..].trim_start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heartbeat_keys() {
        let k = AuthKeys::parse("# comment\nauth 2\n1 md5 abc\n2 sha1 Secret Key\n3 crc\n").unwrap();
        assert_eq!(k.active_method(), Method::Sha1);
        let sig = k.sign(b"t=status\n");
        assert!(sig.starts_with("2 "));
        assert_eq!(k.verify(Some(sig.as_bytes()), b"t=status\n"), Ok(()));
        assert_eq!(k.verify(Some(sig.as_bytes()), b"t=statuz\n"), Err(Reject::BadDigest));
        assert_eq!(k.verify(Some(b"9 00"), b"x"), Err(Reject::UnknownIndex));
        assert_eq!(k.verify(Some(b"junk"), b"x"), Err(Reject::Malformed));
        assert_eq!(k.verify(None, b"x"), Err(Reject::Missing));
    }

    #[test]
    fn hmac_known_answer() {
        // RFC 4231 test case 2.
        let k = AuthKeys::parse("auth 1\n1 sha256 Jefe\n").unwrap();
        assert_eq!(
            k.sign(b"what do ya want for nothing?"),
            "1 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 2202 test case 2 for HMAC-SHA1 and HMAC-MD5.
        let k = AuthKeys::parse("auth 1\n1 sha1 Jefe\n").unwrap();
        assert_eq!(
            k.sign(b"what do ya want for nothing?"),
            "1 effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let k = AuthKeys::parse("auth 1\n1 md5 Jefe\n").unwrap();
        assert_eq!(
            k.sign(b"what do ya want for nothing?"),
            "1 750c783e6ab0b503eaa86e310a5db738"
        );
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32_posix(b"123456789"), 0x765E_7680);
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(AuthKeys::parse("auth 1\n1 rot13 k\n").unwrap_err().0, 2);
        assert_eq!(AuthKeys::parse("auth 1\n1 rot13 k\n").unwrap_err().1, 3);
        assert!(AuthKeys::parse("1 sha1 k\n").is_err());
        assert!(AuthKeys::parse("auth 4\n1 sha1 k\n").is_err());
        assert!(AuthKeys::parse("auth 1\n1 sha1\n").is_err());
        assert!(AuthKeys::parse("auth 16\n").is_err());
        // Two `auth` lines: which one signs? Refused at the second.
        let e = AuthKeys::parse("auth 1\n1 sha1 k\n2 sha1 j\n  auth 2\n").unwrap_err();
        assert_eq!((e.0, e.1), (4, 3));
        assert!(e.2.contains("second `auth`") && e.2.contains("line 1"), "{}", e.2);
    }

    #[test]
    fn load_refuses_what_is_not_our_regular_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, "auth 1\n1 sha256 k\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(AuthKeys::load(&p).unwrap().active_method(), Method::Sha256);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = AuthKeys::load(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let e = AuthKeys::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        let e = AuthKeys::load(&d.path().join("none")).unwrap_err();
        assert!(matches!(e, Error::Io(..)), "{e}");
        assert_eq!(e.exit_status(), ExitStatus::Usage);
    }
}
