//! man/ and completions/ are generated from the clap definitions and committed; this
//! test fails when they are out of date. `HAKIT_REGENERATE=1 cargo test --test
//! generated` rewrites them.

use std::path::Path;

#[test]
fn man_pages_and_completions_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regenerate = std::env::var_os("HAKIT_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (rel, content) in hakit::tools::docgen::generate() {
        let path = root.join(&rel);
        if regenerate {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&content[..]) {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; run HAKIT_REGENERATE=1 cargo test --test generated"
    );
}

#[test]
fn every_command_definition_is_consistent() {
    // clap checks its own rules (conflicting flags, positional order) only when a
    // command is built; do it for every tool and subcommand here, not in the field.
    for cmd in hakit::tools::docgen::commands() {
        cmd.debug_assert();
    }
}
