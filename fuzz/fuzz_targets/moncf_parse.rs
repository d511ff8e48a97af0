//! mon-check's configuration, a mon.cf to import, and the small languages inside them
//! (periods, dependencies, ranges, alertafter, words): errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(mut cf) = hakit::tools::mon_check::sched::import::parse(text, "fuzz.cf") {
            // Whatever the mon.cf, the YAML written from it must read back.
            let y = hakit::tools::mon_check::sched::import::to_yaml(&mut cf, "fuzz.cf");
            if let Err(e) = hakit::tools::mon_check::sched::import::reads_back(&y) {
                panic!("import wrote YAML that does not read back: {e}\n{y}");
            }
        }
        let src = hakit::config::Source { path: "fuzz.yaml".into(), text: text.to_string() };
        let _ = hakit::tools::mon_check::sched::config::from_source(&src, &None, &None);
        let _ = hakit::tools::mon_check::sched::period::Period::parse(text).map(|p| p.contains_unix(1_795_000_000));
        let _ = hakit::tools::mon_check::sched::depend::Expr::parse(text);
        let _ = hakit::tools::mon_check::sched::config::AlertAfter::parse(text);
        let _ = hakit::tools::mon_check::sched::config::split_words(text);
        let _ = hakit::tools::mon_check::check::range::Range::parse(text);
        let _ = hakit::tools::mon_check::check::icmp::Limit::parse(text);
        let _ = hakit::tools::mon_check::check::dns::query(1, text, hakit::tools::mon_check::check::dns::QType::A);
    }
});
