//! The nft backend's reading of `nft -j list table`: whatever the text, an error or a
//! model, never a panic. The first byte picks which table the rest is the listing of.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let _ = match pick % 3 {
        0 => hakit::tools::lvs_ctl::nft::parse::parse(Some(text), None),
        1 => hakit::tools::lvs_ctl::nft::parse::parse(None, Some(text)),
        _ => hakit::tools::lvs_ctl::nft::parse::parse(Some(text), Some(text)),
    };
    let _ = hakit::tools::lvs_ctl::nft::parse::service_record(text);
    let _ = hakit::tools::lvs_ctl::nft::parse::dest_record(text);
});
