//! The CGI request (RFC 3875): what the web server put in the environment and on
//! stdin, read into plain values; and the response, written back in CGI's form.
//! Pure but for [`Request::from_env`], so that every check is unit-tested.

use std::io::Read;

/// The most a POST body may hold (the forms send a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub method: String,
    pub query: Vec<(String, String)>,
    /// Set only when the web server authenticated the user.
    pub user: Option<String>,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub referer: Option<String>,
    /// The page's own path (SCRIPT_NAME), where forms post and redirects go.
    pub script: String,
    pub content_length: Option<usize>,
    pub content_type: Option<String>,
}

impl Request {
    /// From CGI's variables (`get` reads one; empty counts as unset).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Request {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        Request {
            method: get("REQUEST_METHOD").unwrap_or_else(|| "GET".into()),
            query: form(&get("QUERY_STRING").unwrap_or_default()),
            user: get("REMOTE_USER"),
            host: get("HTTP_HOST"),
            origin: get("HTTP_ORIGIN"),
            referer: get("HTTP_REFERER"),
            script: get("SCRIPT_NAME").unwrap_or_default(),
            content_length: get("CONTENT_LENGTH").and_then(|v| v.trim().parse().ok()),
            content_type: get("CONTENT_TYPE"),
        }
    }

    pub fn from_env() -> Request {
        Request::from_vars(|k| std::env::var(k).ok())
    }

    pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        Request::param(&self.query, name)
    }

    /// The body of a POST, as CONTENT_LENGTH says (refused above [`MAX_BODY`]).
    pub fn read_body(&self, input: &mut dyn Read) -> Result<Vec<(String, String)>, (u16, String)> {
        let n = self.content_length.unwrap_or(0);
        if n > MAX_BODY {
            return Err((413, format!("a body of {n} bytes; at most {MAX_BODY}")));
        }
        if let Some(t) = &self.content_type {
            if !t.trim_start().starts_with("application/x-www-form-urlencoded") {
                return Err((415, format!("content type {t}: only the page's forms are taken")));
            }
        }
        let mut body = vec![0; n];
        input
            .read_exact(&mut body)
            .map_err(|e| (400, format!("the body ended early: {e}")))?;
        Ok(form(&String::from_utf8_lossy(&body)))
    }

    /// Where a state-changing request came from must be this page's own site: the
    /// Origin (or, without one, the Referer) must name the Host the request went to.
    pub fn same_origin(&self) -> Result<(), String> {
        let Some(host) = &self.host else {
            return Err("no Host header".into());
        };
        let (what, url) = match (&self.origin, &self.referer) {
            (Some(o), _) => ("Origin", o),
            (None, Some(r)) => ("Referer", r),
            (None, None) => return Err("neither Origin nor Referer: where the request came from is not known".into()),
        };
        match authority(url) {
            Some(a) if a.eq_ignore_ascii_case(host) => Ok(()),
            _ => Err(format!("{what} {url} is not this site ({host})")),
        }
    }
}

/// `host[:port]` of an absolute http(s) URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let a = &rest[..end];
    // Credentials in the URL would let `user@evil` pass for a host name.
    (!a.is_empty() && !a.contains('@')).then_some(a)
}

/// application/x-www-form-urlencoded (a query string too).
pub fn form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 2;
            }
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// One answer to the web server.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        _ => "",
    }
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                ("Cache-Control".into(), "no-store".into()),
                ("X-Content-Type-Options".into(), "nosniff".into()),
            ],
            body: body.into(),
        }
    }

    /// A refusal or an error, in one line of plain text that says why.
    pub fn text(status: u16, line: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{line}\n"))
    }

    /// After a POST, back to the page with a one-line result (303: the browser GETs it).
    pub fn see_other(script: &str, result: &str) -> Response {
        let result: String = result.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let result = result.as_str();
        let mut r = Response::text(303, result);
        r.headers
            .push(("Location".into(), format!("{script}?result={}", encode(result))));
        r
    }

    pub fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// CGI's form: a Status header, the others, a blank line, the body.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!("Status: {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            // A header value never carries a line break (the Location holds user text).
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut b = out.into_bytes();
        if !head_only {
            b.extend_from_slice(&self.body);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn req(vars: &[(&str, &str)]) -> Request {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Request::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn forms_and_queries_decode() {
        assert_eq!(
            form("a=1&b=x+y%2Fz&c&=d&e=%zz%4"),
            [("a", "1"), ("b", "x y/z"), ("c", ""), ("", "d"), ("e", "%zz%4")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(form("r=%E2%9C%93"), [("r".to_string(), "✓".to_string())]);
        let s = "drained 10.0.0.2:80 & <b>ok</b>\r\nX: y";
        assert_eq!(form(&format!("r={}", encode(s)))[0].1, s);
    }

    #[test]
    fn the_origin_must_be_this_site() {
        let ok = req(&[("HTTP_HOST", "10.0.0.1:8080"), ("HTTP_ORIGIN", "http://10.0.0.1:8080")]);
        assert_eq!(ok.same_origin(), Ok(()));
        let by_referer = req(&[
            ("HTTP_HOST", "Status.Example"),
            ("HTTP_REFERER", "https://status.example/cgi-bin/status?x=1"),
        ]);
        assert_eq!(by_referer.same_origin(), Ok(()));
        for (origin, referer) in [
            (Some("http://evil.example"), None),
            (Some("null"), None),
            (Some("http://10.0.0.1:8080.evil.example"), None),
            (Some("http://10.0.0.1:8081"), None),
            (None, Some("http://10.0.0.1:8080@evil.example/")),
            (None, Some("http://evil.example/http://10.0.0.1:8080/")),
            // The Origin wins over a Referer that would pass.
            (Some("http://evil.example"), Some("http://10.0.0.1:8080/")),
            (None, None),
        ] {
            let mut v = vec![("HTTP_HOST", "10.0.0.1:8080")];
            v.extend(origin.map(|o| ("HTTP_ORIGIN", o)));
            v.extend(referer.map(|r| ("HTTP_REFERER", r)));
            assert!(req(&v).same_origin().is_err(), "{origin:?} {referer:?}");
        }
        assert!(req(&[("HTTP_ORIGIN", "http://a")]).same_origin().is_err(), "no Host");
    }

    #[test]
    fn the_environment_is_read_as_cgi_says() {
        let r = req(&[
            ("REQUEST_METHOD", "POST"),
            ("QUERY_STRING", "format=json"),
            ("REMOTE_USER", ""),
            ("CONTENT_LENGTH", "7"),
            ("SCRIPT_NAME", "/cgi-bin/status"),
        ]);
        assert_eq!(r.user, None, "an empty REMOTE_USER is no user");
        assert_eq!(r.query("format"), Some("json"));
        assert_eq!(r.read_body(&mut &b"a=1&b=2tail"[..]), Ok(form("a=1&b=2")));
        assert!(r.read_body(&mut &b"a=1"[..]).is_err(), "shorter than CONTENT_LENGTH");
        let big = req(&[("CONTENT_LENGTH", "99999999")]);
        assert_eq!(big.read_body(&mut std::io::empty()).unwrap_err().0, 413);
        let json = req(&[("CONTENT_LENGTH", "2"), ("CONTENT_TYPE", "application/json")]);
        assert_eq!(json.read_body(&mut &b"{}"[..]).unwrap_err().0, 415);
    }

    #[test]
    fn a_response_is_cgis_and_headers_carry_no_line_breaks() {
        let r = Response::see_other("/s", "done\r\nSet-Cookie: x=1");
        let b = String::from_utf8(r.to_bytes(false)).unwrap();
        assert!(b.starts_with("Status: 303 See Other\r\n"), "{b}");
        assert!(
            b.contains("Location: /s?result=done%20%20Set-Cookie%3A%20x%3D1\r\n"),
            "{b}"
        );
        assert!(!b.contains("\r\nSet-Cookie"), "{b}");
        assert!(!String::from_utf8(r.to_bytes(true)).unwrap().ends_with("x=1\n"));
    }
}
