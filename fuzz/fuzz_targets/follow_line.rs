//! lvs-ctl follow's input: any line (mon-check's text or JSON events, or anything
//! else) is a host event or a reason to skip it, never a panic; what events::Event
//! prints reads back as the same host, check and reason line; and the state file's
//! parser refuses what is not one.
#![no_main]
use hakit::events::{Event, Kind};
use hakit::tools::lvs_ctl::{follow, health};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.lines() {
        let _ = follow::parse_line(line);
        let _ = follow::split_words(line);
    }
    let _ = health::parse_state(text);
    // HOST \x01 LINE: printed by the events' own code, read back by follow's.
    if let Some((host, reason)) = text.split_once('\x01') {
        if host.trim().is_empty() || host.contains('=') {
            return;
        }
        let ev = Event::new(Kind::HostDown, host, 1)
            .with("service", "web/http")
            .with("status", "CRITICAL")
            .with("line", reason);
        let clean = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
        let back = follow::parse_line(&ev.to_json()).expect("its own JSON reads back");
        assert_eq!((back.host.as_str(), back.line.as_str()), (host, reason));
        let back = follow::parse_line(&ev.to_line()).expect("its own line reads back");
        assert_eq!(back.host, clean(host));
        assert_eq!(back.line, clean(reason));
        assert_eq!(back.check, "web/http");
    }
});
