//! Where the events are printed: one line per event (or one JSON object per line) on
//! stdout, buffered and flushed after each batch (the events of one wake-up), so that a
//! `while read` loop sees them as they happen and a burst of a thousand costs one write.
//!
//! A reader that goes away (a broken pipe, a closed or full stdout: any write error) is
//! met once: logged once, and nothing more is printed. The tool keeps running — what
//! the events are for goes on without stdout (hb-watch's hook, notified processes and
//! table; mon-check's alerts and state) — so a closed stdout never stops a daemon, and
//! never panics one (Rust's runtime ignores SIGPIPE, so a write to a broken pipe is an
//! EPIPE error, handled here).

use crate::events::Event;
use std::io::Write;

pub struct Sink<W: Write = std::io::BufWriter<std::io::Stdout>> {
    out: W,
    json: bool,
    closed: bool,
    /// What still happens without stdout, for the one log line.
    still: &'static str,
}

impl Sink {
    /// Events on stdout, JSON lines if `json`. `still`: what goes on once stdout is
    /// closed, for the log line that says so (`the hook and the table still get them`).
    pub fn stdout(json: bool, still: &'static str) -> Sink {
        Sink::new(std::io::BufWriter::new(std::io::stdout()), json, still)
    }
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, json: bool, still: &'static str) -> Sink<W> {
        Sink {
            out,
            json,
            closed: false,
            still,
        }
    }

    /// Lines or JSON lines from now on (a reload).
    pub fn set_json(&mut self, json: bool) {
        self.json = json;
    }

    /// Print one event (buffered: [`flush`](Sink::flush) ends the batch). False once
    /// the output is closed (nothing is printed then).
    pub fn emit(&mut self, ev: &Event) -> bool {
        if self.closed {
            return false;
        }
        let mut line = if self.json { ev.to_json() } else { ev.to_line() };
        line.push('\n');
        let written = self.out.write_all(line.as_bytes());
        self.check(written)
    }

    /// Hand what was emitted to the reader now. False once the output is closed.
    pub fn flush(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let flushed = self.out.flush();
        self.check(flushed)
    }

    fn check(&mut self, r: std::io::Result<()>) -> bool {
        if let Err(e) = r {
            self.closed = true;
            crate::base::log::warn(&format!("stdout: {e}; events are no longer printed ({})", self.still));
            return false;
        }
        true
    }

    /// Whether the output has been found closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The writer (for tests).
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Kind;

    fn ev(subject: &str) -> Event {
        let mut e = Event::new(Kind::NodeUp, subject, 1_000).with("k", "v");
        e.unix_ms = 0;
        e
    }

    #[test]
    fn lines_and_json_lines() {
        let mut s = Sink::new(Vec::new(), false, "test");
        assert!(s.emit(&ev("n1")));
        s.set_json(true);
        assert!(s.emit(&ev("n2")));
        let text = String::from_utf8(s.get_ref().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "node-up n1 ts=1970-01-01T00:00:00.000Z mono=1 k=v");
        let j: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(
            (j["event"].as_str(), j["subject"].as_str()),
            (Some("node-up"), Some("n2"))
        );
        assert!(text.ends_with('\n'));
    }

    /// A writer whose reader has gone: every write fails with EPIPE.
    struct Broken(usize);
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            self.0 += 1;
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_is_met_once_and_then_left_alone() {
        let mut s = Sink::new(Broken(0), false, "test");
        assert!(!s.emit(&ev("n1")));
        assert!(s.is_closed());
        for _ in 0..10 {
            assert!(!s.emit(&ev("n1")));
        }
        assert_eq!(s.get_ref().0, 1, "no write is tried once it is closed");
    }
}
