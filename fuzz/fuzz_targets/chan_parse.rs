//! chan-switch's input: hb-watch's event lines (either form) and the cluster messages
//! inside them are read or refused, never a panic; an order or a report written reads
//! back the same; and the decision never leaves more broken pairs than it found.
#![no_main]
use hakit::events::read;
use hakit::tools::chan_switch::decide::{desired, Matrix, Order, Policy};
use hakit::tools::chan_switch::msg;
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};

fn names() -> Vec<String> {
    vec!["a".into(), "b".into(), "c".into()]
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            if let Ok(ev) = read::parse(line) {
                if let Ok(o) = msg::read_order(&ev.fields, &names()) {
                    let block = msg::order_block(&o, &names());
                    let fields: Vec<(String, String)> = block
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(msg::read_order(&fields, &names()).as_ref(), Ok(&o));
                }
                let _ = msg::read_state(&ev.fields, &names());
                let _ = msg::read_request(&ev.fields, &names());
            }
        }
    }
    // The matrix: byte 0 the node count (2..=6) and policy, byte 1 the current order,
    // then one bit per (node, channel, node): deaf.
    if data.len() < 2 {
        return;
    }
    let n = 2 + (data[0] as usize % 5);
    let policy = if data[0] & 0x80 != 0 { Policy::PerPeer } else { Policy::All };
    let chans = 2 + (data[0] as usize >> 3 & 1);
    let name = |i: usize| format!("n{i}");
    let mut bits = data[2..].iter().flat_map(|b| (0..8).map(move |k| b >> k & 1 == 1));
    let mut m = Matrix::new(chans);
    for x in 0..n {
        let mut deaf = vec![BTreeSet::new(); chans];
        for d in deaf.iter_mut() {
            for y in 0..n {
                if y != x && bits.next().unwrap_or(false) {
                    d.insert(name(y));
                }
            }
        }
        m.node(&name(x), deaf);
    }
    let mut cur = Order {
        epoch: 1,
        by: "n0".into(),
        use_: data[1] as usize % chans,
        moved: BTreeMap::new(),
        manual: data[1] & 0x40 != 0,
    };
    if data[1] & 0x80 != 0 {
        cur.moved.insert(name((data[1] as usize >> 2) % n), (data[1] as usize >> 4) % chans);
    }
    let before = m.broken_under(&cur).len();
    let want = desired(&m, policy, &cur);
    let after = m.broken_under(&want).len();
    assert!(after <= before, "{before} broken pairs became {after}");
    assert!(want.use_ < chans && want.moved.values().all(|&c| c < chans));
    if before == 0 {
        assert!(want.same_routes(&cur));
    }
    if policy == Policy::All {
        assert!(want.moved.is_empty() || want.same_routes(&cur));
    }
});
