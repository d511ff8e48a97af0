//! contrib/pair.sh started on a node of a [`Net`], for the tests that compose it.

use super::{bin, Net};
use std::process::{Child, Command, Stdio};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/pair.sh");

/// Start pair.sh on node `me` (peer `3 - me`) for `cidr` on eth0 with `opts` for the
/// pair; its stderr goes to `pairN.log` in the test's directory. The child is returned,
/// not adopted, so that a test can wait for its exit status (Net's drop still ends what
/// is left in the namespaces).
pub fn start(net: &Net, me: usize, cidr: &str, opts: &[&str], tools: &[&str]) -> Child {
    let path = format!(
        "{}:{}",
        bin("hb-send").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let state = net.path(&format!("pair{me}")).display().to_string();
    let lib = net.path(&format!("lib{me}")).display().to_string();
    let keys = net.keys().display().to_string();
    let (node, peer) = (format!("n{me}"), format!("n{}", 3 - me));
    let mut args: Vec<&str> = vec![
        "bash",
        SCRIPT,
        "run",
        "--node",
        &node,
        "--peer",
        &peer,
        "--vip",
        cidr,
        "--dev",
        "eth0",
        "--state-dir",
        &state,
        "--lib-dir",
        &lib,
    ];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--", "--keys", &keys, "-q"]);
    args.extend_from_slice(tools);
    let log = std::fs::File::create(net.path(&format!("pair{me}.log"))).unwrap();
    Command::new("ip")
        .args([
            "netns",
            "exec",
            net.ns(me),
            "env",
            &format!("PATH={path}"),
            "PAIR_DEBUG=1",
        ])
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// What pair.sh on node `me` has logged so far.
pub fn log_of(net: &Net, me: usize) -> String {
    std::fs::read_to_string(net.path(&format!("pair{me}.log"))).unwrap_or_default()
}
