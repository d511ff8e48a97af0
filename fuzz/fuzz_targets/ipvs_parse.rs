//! What the kernel answers IPVS's commands (services, real servers, stats, the daemon,
//! timeouts, info, the controller's family id): errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hakit::tools::lvs_ctl::ipvs::codec::parse_all(data);
});
