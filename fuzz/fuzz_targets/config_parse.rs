//! Configuration, keys and floors files on arbitrary text: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let src = hakit::config::Source { path: "fuzz.yaml".into(), text: text.to_string() };
        let _ = hakit::config::parse(&src);
        if let Ok(d) = hakit::tools::lvs_ctl::director::from_source(&src) {
            for (n, _) in &d.nodes {
                let _ = d.shell(n);
            }
        }
        let _ = hakit::wire::authkeys::AuthKeys::parse(text);
        let _ = hakit::base::duration::parse(text);
        let _ = hakit::config::ChannelSpec::parse(text);
        let _ = hakit::wire::fifo::split_blocks(data);
        let _ = hakit::tools::hb_watch::floors::parse(std::path::Path::new("floors"), text);
        let _ = hakit::wire::valid_held(text);
    }
});
