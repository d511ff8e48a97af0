//! What servers send a check — DNS answers, HTTP answers, certificates: errors,
//! never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hakit::tools::mon_check::check::dns::parse(data);
    let _ = hakit::tools::mon_check::check::http::parses(data);
    let _ = hakit::tools::mon_check::check::x509::validity(data);
});
