//! Bad input at the command line and in files: one clear line, the documented exit
//! status, nothing left behind.

mod common;
use common::*;
use std::process::Command;

fn run(bin_name: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin(bin_name)).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn keys(dir: &std::path::Path, mode: u32) -> String {
    let p = dir.join("authkeys");
    std::fs::write(&p, "auth 1\n1 sha256 k\n").unwrap();
    set_mode(&p, mode);
    p.display().to_string()
}

#[test]
fn help_and_version() {
    for b in ["hb-send", "hb-watch", "arp-announce", "ipfake"] {
        let (code, out, _) = run(b, &["--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Exit status"), "{b} --help documents exit status");
        assert_eq!(run(b, &["--version"]).0, 0);
    }
}

#[test]
fn wrong_flag_is_usage_error() {
    let (code, _, err) = run("hb-send", &["--keepalive", "fast"]);
    assert_eq!(code, 2);
    assert!(err.contains("fast"), "{err}");
    assert_eq!(run("hb-watch", &["--no-such-flag"]).0, 2);
    let (code, _, err) = run("arp-announce", &["-i", "lo", "--to", "not-a-mac", "192.0.2.1"]);
    assert_eq!(code, 2);
    assert!(err.contains("not-a-mac"), "{err}");
    let (code, _, err) = run("arp-announce", &["-i", "lo", "2001:db8::1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no Ethernet address"), "{err}");
    assert_eq!(run("arp-announce", &[]).0, 2);
}

#[test]
fn config_errors_name_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("hakit.yaml");
    std::fs::write(&cfg, "cluster:\n  node: n1\n  chanels: []\n").unwrap();
    let (code, _, err) = run("hb-watch", &["--config", &cfg.display().to_string()]);
    assert_eq!(code, 2);
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(line.contains(&format!("{}:3:", cfg.display())), "{err}");
    assert!(line.contains("chanels"), "{err}");
    // A semantic error points at its key.
    std::fs::write(
        &cfg,
        "cluster:\n  channels:\n    - {dev: lo, mode: bcast}\nhb-send:\n  keepalive: 1s\n  deadtime: 1500ms\n",
    )
    .unwrap();
    let (code, _, err) = run("hb-send", &["--config", &cfg.display().to_string()]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}:6:3:", cfg.display())) && err.contains("twice keepalive"),
        "{err}"
    );
    // A missing file.
    let (code, _, err) = run("hb-send", &["--config", "/nonexistent/hakit.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/hakit.yaml"), "{err}");
}

#[test]
fn loose_keys_file_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let k = keys(d.path(), 0o644);
    let t = d.path().join("ast").display().to_string();
    let (code, _, err) = run(
        "hb-watch",
        &["--keys", &k, "--channel", "bcast:lo", "--table", &t, "--port", "40694"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!std::path::Path::new(&t).exists(), "nothing left behind");
}

#[test]
fn missing_interface_is_a_configuration_error() {
    let d = tempfile::tempdir().unwrap();
    let k = keys(d.path(), 0o600);
    let g = d.path().join("gen");
    let (code, _, err) = run(
        "hb-send",
        &[
            "--keys",
            &k,
            "--channel",
            "bcast:nosuchdev0",
            "--no-fifo",
            "--generation-file",
            &g.display().to_string(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no interface `nosuchdev0`"), "{err}");
    assert!(!g.exists(), "a failed start uses no generation");
}

#[test]
fn table_of_another_version_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let k = keys(d.path(), 0o600);
    let t = d.path().join("ast");
    let mut bad = vec![0u8; 4096];
    bad[..8].copy_from_slice(b"HAKITAST");
    bad[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(&t, &bad).unwrap();
    let ts = t.display().to_string();
    let (code, _, err) = run(
        "hb-watch",
        &["--keys", &k, "--channel", "bcast:lo", "--table", &ts, "--port", "40695"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("version 9"), "{err}");
    assert_eq!(std::fs::read(&t).unwrap(), bad, "the foreign table is left untouched");
    let (code, _, err) = run("hb-watch", &["status", "--table", &ts]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run("hb-watch", &["status", "--table", "/nonexistent/ast"]);
    assert_eq!(code, 2);
}

#[test]
fn bad_channel_spec_and_notify_target() {
    assert_eq!(run("hb-watch", &["--channel", "pigeon:eth0"]).0, 2);
    let d = tempfile::tempdir().unwrap();
    let k = keys(d.path(), 0o600);
    let (code, _, err) = run("hb-watch", &["--keys", &k, "--channel", "bcast:lo", "--notify", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("pid 1"), "{err}");
}

#[test]
fn ipfake_up_check_changes_nothing_and_needs_no_privilege() {
    // As nobody: what `up` would refuse, refused the same way (one line, exit 2);
    // what it would take, 0 — and nothing is added or written.
    let d = tempfile::tempdir().unwrap();
    let pids = d.path().join("pids").display().to_string();
    let check = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("ipfake"))
            .args(["--pid-dir", &pids, "up"])
            .args(args)
            .arg("--check")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = check(&["192.0.2.10/24", "dev", "lo", "--probe"]);
    assert_eq!(code, Some(0), "{err}");
    for (args, words) in [
        (&["192.0.2.10/24", "dev", "nosuch0"][..], "no interface `nosuch0`"),
        (&["192.0.2.255/24", "dev", "lo"][..], "broadcast address"),
        (&["192.0.2.10/24", "dev", "lo", "--label", "eth0:x"][..], "--label"),
    ] {
        let (code, err) = check(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!std::path::Path::new(&pids).exists(), "no pid directory made");
}

#[test]
fn ipfake_without_privilege_is_refused_cleanly() {
    // As nobody: one line, exit 2, before anything is touched.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("ipfake"))
        .args(["--pid-dir", "/tmp", "up", "192.0.2.10/24", "dev", "lo", "--once"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_reader_that_goes_away_ends_a_one_shot_command_quietly() {
    // `hb-watch status | head -0`: the print fails; the tool ends as a C tool does
    // (SIGPIPE), not with a Rust panic on stderr.
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("ast");
    let mut w = hakit::table::TableWriter::create(&t, 600, &["a".into()], "n0").unwrap();
    for i in 0..600 {
        let r = hakit::table::NodeRecord {
            name: format!("node{i}"),
            ..Default::default()
        };
        w.write(i, &r).unwrap();
    }
    let mut child = Command::new(bin("hb-watch"))
        .args(["status", "-t", &t.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{err}");
}
