//! Heartbeat's `ha_msg` on the wire: the classic text form (sent and accepted) and the
//! netstring form (accepted), with their signatures.
//!
//! Parsing borrows from the datagram and never panics on any input: every way a packet
//! can be wrong is a [`ParseError`] that the receiver counts as a rejection.

use crate::wire::authkeys::{AuthKeys, Reject};
use base64::Engine;
use std::borrow::Cow;
use std::fmt;

/// The largest datagram accepted or built (Heartbeat's MAXMSG is larger, but a UDP
/// heartbeat never needs more than this).
pub const MAX_MSG: usize = 64 * 1024;
/// The most fields a message may carry.
pub const MAX_FIELDS: usize = 256;
/// The longest field name.
pub const MAX_NAME: usize = 64;

/// Field types, as the one-digit prefix `(N)` writes them.
pub const T_STRING: u8 = 0;
pub const T_BINARY: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Classic,
    Netstring,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub ty: u8,
    /// The value as printed in classic form (binary values base64-encoded).
    pub value: Cow<'a, [u8]>,
}

#[derive(Debug, Clone)]
pub struct Msg<'a> {
    pub form: Form,
    pub fields: Vec<Field<'a>>,
    /// The `auth` field's value, kept apart from the signed fields.
    pub auth: Option<&'a [u8]>,
    /// The classic body as it stood in the datagram when it can be signed as is
    /// (classic form, auth line last): saves rebuilding it.
    signed_slice: Option<&'a [u8]>,
    /// The netstring form's trailing signature and the bytes it covers.
    trailer: Option<(&'a [u8], &'a [u8])>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    TooLarge,
    NotAMessage,
    Unterminated,
    BadLine,
    BadType,
    BadName,
    TooManyFields,
    BadNetstring,
    BadBase64,
}

impl ParseError {
    pub fn as_str(self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::TooLarge => "too-large",
            ParseError::NotAMessage => "not-a-message",
            ParseError::Unterminated => "truncated",
            ParseError::BadLine => "bad-line",
            ParseError::BadType => "bad-type",
            ParseError::BadName => "bad-name",
            ParseError::TooManyFields => "too-many-fields",
            ParseError::BadNetstring => "bad-netstring",
            ParseError::BadBase64 => "bad-base64",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const CLASSIC_START: &[u8] = b">>>\n";
const CLASSIC_END: &[u8] = b"<<<\n";
const NS_START: &[u8] = b"###\n";
const NS_END: &[u8] = b"%%%\n";

impl<'a> Msg<'a> {
    /// Parse a datagram in either form, chosen by its first bytes.
    pub fn parse(buf: &'a [u8]) -> Result<Msg<'a>, ParseError> {
        if buf.is_empty() {
            return Err(ParseError::Empty);
        }
        if buf.len() > MAX_MSG {
            return Err(ParseError::TooLarge);
        }
        // The datagram ends with one NUL byte after the terminator; tolerate none.
        let buf = buf.strip_suffix(b"\0").unwrap_or(buf);
        if buf.starts_with(CLASSIC_START) {
            Self::parse_classic(buf)
        } else if buf.starts_with(NS_START) {
            Self::parse_netstring(buf)
        } else {
            Err(ParseError::NotAMessage)
        }
    }

    fn parse_classic(buf: &'a [u8]) -> Result<Msg<'a>, ParseError> {
        let body_all = &buf[CLASSIC_START.len()..];
        // The terminator must close the message: `<<<\n` (or `<<<` at the very end).
        let end = if body_all.ends_with(CLASSIC_END) {
            body_all.len() - CLASSIC_END.len()
        } else if body_all.ends_with(b"<<<") {
            body_all.len() - 3
        } else {
            return Err(ParseError::Unterminated);
        };
        let body = &body_all[..end];
        if !body.is_empty() && !body.ends_with(b"\n") {
            return Err(ParseError::BadLine);
        }
        let mut fields = Vec::with_capacity(16);
        let mut auth = None;
        let mut auth_last = false;
        let mut signed_end = body.len();
        let mut pos = 0;
        while pos < body.len() {
            let nl = body[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .ok_or(ParseError::BadLine)?
                + pos;
            let line = &body[pos..nl];
            let (ty, rest) = split_type(line)?;
            let eq = rest.iter().position(|&b| b == b'=').ok_or(ParseError::BadLine)?;
            let name = &rest[..eq];
            check_name(name)?;
            let value = &rest[eq + 1..];
            if name == b"auth" && ty == T_STRING {
                if auth.is_some() {
                    return Err(ParseError::BadLine);
                }
                auth = Some(value);
                signed_end = pos;
                auth_last = nl + 1 == body.len();
            } else {
                if ty == 0 && line.starts_with(b"(0)") {
                    // `(0)` is not allowed in the text form.
                    return Err(ParseError::BadType);
                }
                if fields.len() == MAX_FIELDS {
                    return Err(ParseError::TooManyFields);
                }
                fields.push(Field {
                    name,
                    ty,
                    value: Cow::Borrowed(value),
                });
            }
            pos = nl + 1;
        }
        let signed_slice = if auth.is_none() || auth_last {
            Some(&body[..signed_end])
        } else {
            None
        };
        Ok(Msg {
            form: Form::Classic,
            fields,
            auth,
            signed_slice,
            trailer: None,
        })
    }

    fn parse_netstring(buf: &'a [u8]) -> Result<Msg<'a>, ParseError> {
        let mut pos = NS_START.len();
        let mut fields = Vec::with_capacity(16);
        let mut auth = None;
        loop {
            if buf[pos..].starts_with(NS_END) {
                pos += NS_END.len();
                break;
            }
            let (item, next) = netstring(buf, pos)?;
            pos = next;
            let (ty, rest) = split_type(item)?;
            let eq = rest.iter().position(|&b| b == b'=').ok_or(ParseError::BadLine)?;
            let name = &rest[..eq];
            check_name(name)?;
            let raw = &rest[eq + 1..];
            if name == b"auth" && ty == T_STRING {
                auth = Some(raw);
                continue;
            }
            if fields.len() == MAX_FIELDS {
                return Err(ParseError::TooManyFields);
            }
            let value = if ty == T_BINARY {
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(raw).into_bytes())
            } else {
                Cow::Borrowed(raw)
            };
            fields.push(Field { name, ty, value });
        }
        let covered = &buf[..pos];
        let trailer = if pos < buf.len() {
            let (sig, next) = netstring(buf, pos)?;
            if next != buf.len() && !buf[next..].iter().all(|&b| b == b'\n' || b == 0) {
                return Err(ParseError::BadNetstring);
            }
            Some((sig, covered))
        } else {
            None
        };
        Ok(Msg {
            form: Form::Netstring,
            fields,
            auth,
            signed_slice: None,
            trailer,
        })
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.name == name.as_bytes())
            .map(|f| &*f.value)
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A lower-case hex number field (`seq`, `hg`, `ts`, `dt`).
    pub fn get_hex(&self, name: &str) -> Option<u64> {
        let v = self.get(name)?;
        if v.is_empty() || v.len() > 16 {
            return None;
        }
        let mut n: u64 = 0;
        for &b in v {
            let d = (b as char).to_digit(16)?;
            n = (n << 4) | d as u64;
        }
        Some(n)
    }

    /// The bytes the `auth` field signs: the classic lines without the auth line.
    pub fn signed_data<'b>(&'b self, scratch: &'b mut Vec<u8>) -> &'b [u8] {
        if let Some(s) = self.signed_slice {
            return s;
        }
        scratch.clear();
        for f in &self.fields {
            write_field(scratch, f.name, f.ty, &f.value);
        }
        scratch
    }

    /// Verify the signature. The netstring form's trailer, when present, is checked
    /// over the bytes it covers; otherwise the classic `auth` field.
    pub fn verify(&self, keys: &AuthKeys, scratch: &mut Vec<u8>) -> Result<(), Reject> {
        if let Some((sig, covered)) = self.trailer {
            if keys.verify(Some(sig), covered).is_ok() {
                return Ok(());
            }
        }
        keys.verify(self.auth, self.signed_data(scratch))
    }
}

fn split_type(line: &[u8]) -> Result<(u8, &[u8]), ParseError> {
    if line.first() == Some(&b'(') {
        if line.len() < 3 || line[2] != b')' || !line[1].is_ascii_digit() || line[1] > b'5' {
            return Err(ParseError::BadType);
        }
        Ok((line[1] - b'0', &line[3..]))
    } else {
        Ok((T_STRING, line))
    }
}

fn check_name(name: &[u8]) -> Result<(), ParseError> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(ParseError::BadName);
    }
    Ok(())
}

/// One netstring `<len>:<bytes>,` at `pos`; returns the bytes and the next position.
fn netstring(buf: &[u8], pos: usize) -> Result<(&[u8], usize), ParseError> {
    let rest = &buf[pos..];
    let colon = rest
        .iter()
        .take(8)
        .position(|&b| b == b':')
        .ok_or(ParseError::BadNetstring)?;
    if colon == 0 || !rest[..colon].iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadNetstring);
    }
    let len: usize = std::str::from_utf8(&rest[..colon])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ParseError::BadNetstring)?;
    let start = colon + 1;
    let end = start.checked_add(len).ok_or(ParseError::BadNetstring)?;
    if end >= rest.len() || rest[end] != b',' {
        return Err(ParseError::BadNetstring);
    }
    Ok((&rest[start..end], pos + end + 1))
}

fn write_field(out: &mut Vec<u8>, name: &[u8], ty: u8, value: &[u8]) {
    if ty != T_STRING {
        out.extend_from_slice(&[b'(', b'0' + ty, b')']);
    }
    out.extend_from_slice(name);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Builds a classic-form message: the caller's fields, then the sender's stamp, then
/// the signature over everything before it.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    body: Vec<u8>,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            body: Vec::with_capacity(512),
        }
    }

    /// Add a string field. Newlines inside the value are carried as 0x13, as
    /// Heartbeat does; a name must be a plain word.
    pub fn add(&mut self, name: &str, value: &str) -> &mut Self {
        debug_assert!(check_name(name.as_bytes()).is_ok());
        let v: Cow<[u8]> = if value.contains('\n') {
            Cow::Owned(value.bytes().map(|b| if b == b'\n' { 0x13 } else { b }).collect())
        } else {
            Cow::Borrowed(value.as_bytes())
        };
        write_field(&mut self.body, name.as_bytes(), T_STRING, &v);
        self
    }

    pub fn add_binary(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let enc = base64::engine::general_purpose::STANDARD.encode(value);
        write_field(&mut self.body, name.as_bytes(), T_BINARY, enc.as_bytes());
        self
    }

    /// Add an already-printed field (from a FIFO message) with its type.
    pub fn add_raw(&mut self, name: &[u8], ty: u8, value: &[u8]) -> &mut Self {
        write_field(&mut self.body, name, ty, value);
        self
    }

    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// Sign and frame: `>>>\n` fields `auth=...\n<<<\n\0`.
    pub fn finish(&self, keys: &AuthKeys, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(CLASSIC_START);
        out.extend_from_slice(&self.body);
        out.extend_from_slice(b"auth=");
        out.extend_from_slice(keys.sign(&self.body).as_bytes());
        out.push(b'\n');
        out.extend_from_slice(CLASSIC_END);
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AuthKeys {
        AuthKeys::parse("auth 1\n1 sha1 SecretKey\n").unwrap()
    }

    #[test]
    fn round_trip_classic() {
        let mut b = Builder::new();
        b.add("t", "status")
            .add("st", "active")
            .add_binary("srcuuid", &[1, 2, 3, 250])
            .add("info", "a\nb");
        let mut out = Vec::new();
        b.finish(&keys(), &mut out);
        let m = Msg::parse(&out).unwrap();
        assert_eq!(m.form, Form::Classic);
        assert_eq!(m.get_str("t"), Some("status"));
        assert_eq!(m.get("info"), Some(&b"a\x13b"[..]));
        assert_eq!(m.fields[2].ty, T_BINARY);
        let mut s = Vec::new();
        assert_eq!(m.verify(&keys(), &mut s), Ok(()));
        // Any change to the signed part breaks the signature.
        let mut bad = out.clone();
        bad[6] = b'X';
        if let Ok(m) = Msg::parse(&bad) {
            assert!(m.verify(&keys(), &mut s).is_err());
        }
    }

    #[test]
    fn auth_not_last_is_rebuilt() {
        let k = keys();
        let sig = k.sign(b"t=status\nseq=1a\n");
        let text = format!(">>>\nt=status\nauth={sig}\nseq=1a\n<<<\n\0");
        let m = Msg::parse(text.as_bytes()).unwrap();
        assert_eq!(m.get_hex("seq"), Some(0x1a));
        assert_eq!(m.verify(&k, &mut Vec::new()), Ok(()));
    }

    #[test]
    fn netstring_form() {
        let k = keys();
        let uuid = [7u8; 16];
        let b64 = base64::engine::general_purpose::STANDARD.encode(uuid);
        let classic = format!("t=status\nsrc=n1\n(1)srcuuid={b64}\n");
        let auth = k.sign(classic.as_bytes());
        let mut ns = b"###\n".to_vec();
        for item in [b"(0)t=status".to_vec(), b"(0)src=n1".to_vec()] {
            ns.extend_from_slice(format!("{}:", item.len()).as_bytes());
            ns.extend_from_slice(&item);
            ns.push(b',');
        }
        let mut bin = b"(1)srcuuid=".to_vec();
        bin.extend_from_slice(&uuid);
        ns.extend_from_slice(format!("{}:", bin.len()).as_bytes());
        ns.extend_from_slice(&bin);
        ns.push(b',');
        let a = format!("(0)auth={auth}");
        ns.extend_from_slice(format!("{}:{a},", a.len()).as_bytes());
        ns.extend_from_slice(b"%%%\n");
        let m = Msg::parse(&ns).unwrap();
        assert_eq!(m.form, Form::Netstring);
        assert_eq!(m.get_str("src"), Some("n1"));
        assert_eq!(m.verify(&k, &mut Vec::new()), Ok(()));
        // With a trailer over ### .. %%%\n.
        let sig = k.sign(&ns);
        let mut with = ns.clone();
        with.extend_from_slice(format!("{}:{sig},", sig.len()).as_bytes());
        let m = Msg::parse(&with).unwrap();
        assert_eq!(m.verify(&k, &mut Vec::new()), Ok(()));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b">>>\nt=status\n",
            b">>>\nt=status<<<\n",
            b">>>\nnoequals\n<<<\n",
            b">>>\n(9)x=1\n<<<\n",
            b">>>\n(0)x=1\n<<<\n",
            b">>>\n=1\n<<<\n",
            b"###\n6:(0)t=,%%%\n",
            b"###\n99999999999:x,%%%\n",
            b"###\n3:abc",
            b"GET / HTTP/1.0\r\n",
        ] {
            assert!(Msg::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
