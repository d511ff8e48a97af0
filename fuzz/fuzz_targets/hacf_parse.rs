//! Heartbeat's ha.cf and haresources: errors (one line, at a line and column of the
//! text), never panics; what parses keeps hakit's limits.
#![no_main]
use hakit::config::hacf;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.lines().count();
    let check = |e: hakit::config::Error| {
        let (l, c) = e.pos.expect("every error has a line and column");
        assert!(l >= 1 && l <= lines.max(1) && c >= 1, "{e} outside the text");
        assert!(!e.to_string().contains('\n'), "a two-line error: {e:?}");
    };
    match hacf::parse(Path::new("ha.cf"), text) {
        Ok(cf) => {
            assert!(cf.channels.len() <= 8);
            for (i, c) in cf.channels.iter().enumerate() {
                assert!(cf.channels[..i].iter().all(|o| o.value.name != c.value.name), "two channels named {}", c.value.name);
            }
        }
        Err(e) => check(e),
    }
    if let Err(e) = hacf::parse_haresources(Path::new("haresources"), text) {
        check(e);
    }
});
