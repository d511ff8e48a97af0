//! The receive path on arbitrary datagrams: parse (both wire forms), verify, apply to
//! a detector. Nothing may panic; a message that parses must verify consistently.
#![no_main]
use hakit::wire::authkeys::AuthKeys;
use hakit::tools::hb_watch::detector::{Config, Detector};
use hakit::tools::hb_watch::watch::Intake;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static KEYS: OnceLock<AuthKeys> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let keys = KEYS.get_or_init(|| AuthKeys::parse("auth 1\n1 crc\n2 sha1 k\n").unwrap());
    if let Ok(m) = hakit::wire::msg::Msg::parse(data) {
        let mut s = Vec::new();
        let _ = m.verify(keys, &mut s);
        let _ = m.get_hex("seq");
        for e in hakit::wire::hv::parse(m.get_str("hv").unwrap_or("")) {
            assert!(hakit::wire::hv::valid_name(e.name));
        }
    }
    // The whole intake, with crc (integrity only) so that crafted inputs get through.
    let cfg = Config {
        local: "me".into(),
        channels: vec!["a".into(), "b".into()],
        deadtime_ns: 30_000_000,
        warntime_ns: 15_000_000,
        initdead_ns: 60_000_000,
        nodes: vec![],
        capacity: 8,
    };
    let mut ik = Intake::new(keys.clone(), Detector::new(cfg, 0, &[]));
    let _ = ik.packet(1, 0, data);
    let _ = ik.packet(2, 1, data);
    ik.detector.tick(100_000_000);
});
