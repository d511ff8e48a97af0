//! lvs-ctl's inputs from people: ipvsadm's command line, a `-R` file and the `lvs-ctl`
//! section of hakit.yaml: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split_whitespace().collect();
    let _ = hakit::tools::lvs_ctl::ipvsadm::parse_args(&args);
    for (n, line) in text.lines().enumerate() {
        let words = hakit::tools::lvs_ctl::ipvsadm::split_line(line);
        let _ = hakit::tools::lvs_ctl::ipvsadm::parse(&words, hakit::tools::lvs_ctl::ipvsadm::Origin::Line("stdin", n + 1));
    }
    let src = hakit::config::Source {
        path: "fuzz.yaml".into(),
        text: text.into_owned(),
    };
    let _ = hakit::tools::lvs_ctl::config::from_source(&src);
});
