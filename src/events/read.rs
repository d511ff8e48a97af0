//! Reading events back: the lines a tool prints (events::Event's text form, or its
//! JSON with --json), as the next tool in a pipe reads them (lvs-ctl follow reads
//! mon-check's, chan-switch reads hb-watch's).

/// A line longer than this is no event line of ours (values are cut well below).
pub const LINE_MAX: usize = 64 * 1024;

/// One event line, read back: the event's name, its subject and its fields in order
/// (`ts` and `mono` among them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub event: String,
    pub subject: String,
    pub fields: Vec<(String, String)>,
}

impl Parsed {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

/// An event line in either form; JSON is told by its leading `{`.
pub fn parse(line: &str) -> Result<Parsed, &'static str> {
    let line = line.trim_start();
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|_| "a line that is not JSON")?;
        let obj = v.as_object().ok_or("a JSON line that is not an object")?;
        let s = |k: &str| obj.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let event = s("event").ok_or("a JSON line without \"event\"")?;
        let subject = s("subject").unwrap_or_default();
        let fields = obj
            .iter()
            .filter(|(k, _)| *k != "event" && *k != "subject")
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect();
        return Ok(Parsed { event, subject, fields });
    }
    let words = split_words(line)?;
    let mut it = words.into_iter();
    let event = it.next().ok_or("an empty line")?;
    let subject = it.next().unwrap_or_default();
    let mut fields = Vec::new();
    for w in it {
        let (k, v) = w.split_once('=').ok_or("a field without `=`")?;
        fields.push((k.to_string(), v.to_string()));
    }
    Ok(Parsed { event, subject, fields })
}

/// Split a line as `sh` would the words events::shell_word writes: plain words,
/// '...' (no escapes inside), backslash escapes outside quotes, and "..." for good
/// measure. Concatenated pieces (`'a'\''b'`) make one word.
pub fn split_words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("an unterminated quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("an unterminated quote"),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("an unterminated quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some(c) => cur.push(c),
                    None => return Err("a backslash at the end of the line"),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Bytes to lines, with a bound on a line's length.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
    /// Inside a line too long, thrown away up to its newline.
    skipping: bool,
}

impl Lines {
    /// Complete lines of `data`; `Err(())` in the list for one too long or not UTF-8.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Result<String, &'static str>> {
        let mut out = Vec::new();
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(nl);
            rest = &tail[1..];
            if self.skipping {
                self.skipping = false;
                self.buf.clear();
                continue;
            }
            self.buf.extend_from_slice(head);
            out.push(Self::text(std::mem::take(&mut self.buf)));
        }
        if !self.skipping {
            self.buf.extend_from_slice(rest);
            if self.buf.len() > LINE_MAX {
                self.buf.clear();
                self.skipping = true;
                out.push(Err("a line longer than 64 KiB"));
            }
        }
        out
    }

    /// What is left at the end of the input.
    pub fn finish(&mut self) -> Option<Result<String, &'static str>> {
        let b = std::mem::take(&mut self.buf);
        (!self.skipping && !b.is_empty()).then(|| Self::text(b))
    }

    fn text(mut b: Vec<u8>) -> Result<String, &'static str> {
        if b.last() == Some(&b'\r') {
            b.pop();
        }
        String::from_utf8(b).map_err(|_| "a line that is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms() {
        let t = parse("link-dead n3 ts=2026-12-01T00:00:00.000Z mono=5 channel=a reason=deadtime note='a b'").unwrap();
        assert_eq!((t.event.as_str(), t.subject.as_str()), ("link-dead", "n3"));
        assert_eq!(t.get("channel"), Some("a"));
        assert_eq!(t.get("note"), Some("a b"));
        let j = parse(r#"{"event":"link-dead","subject":"n3","mono":5,"channel":"a"}"#).unwrap();
        assert_eq!(j.get("channel"), Some("a"));
        assert_eq!(j.get("mono"), Some("5"));
        assert!(parse("").is_err());
        assert!(parse("x y novalue").is_err());
        assert!(parse("{\"subject\":1}").is_err());
    }
}
