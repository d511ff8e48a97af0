//! What nf_tables answers (a NEWSETELEM, NEWRULE or NEWCHAIN message's attributes):
//! errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hakit::net::nftables::decode_set_elems(data);
    let _ = hakit::net::nftables::decode_rule(data);
    let _ = hakit::net::nftables::decode_chain(data);
});
