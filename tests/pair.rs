//! contrib/pair.sh, the two-node active/standby pair, in network namespaces with a
//! client: takeover at start, failover when the primary's cable is pulled, failback
//! when it returns, standby by hand.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const VIP: &str = "10.77.1.100";

fn holds(net: &Net, node: usize) -> bool {
    net.has_addr(node, &format!("{VIP}/24"))
}

fn wait_until(what: &str, within: Duration, f: impl FnMut() -> bool) {
    assert!(wait_for(f, within), "{what}: not within {within:?}");
}

fn client_reaches(net: &Net) -> bool {
    net.pings(3, VIP)
}

#[test]
fn the_pair_fails_over_and_back() {
    let mut net = Net::new(3, 1);
    let path = format!(
        "{}:{}",
        bin("hb-send").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/pair.sh");
    let keys = net.keys().display().to_string();
    let start = |net: &mut Net, me: usize, peer: usize, preferred: bool| {
        let state = net.path(&format!("pair{me}")).display().to_string();
        let mut args: Vec<String> = [
            "bash",
            script,
            "run",
            "--node",
            &format!("n{me}"),
            "--peer",
            &format!("n{peer}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(
            [
                "--vip",
                "10.77.1.100/24",
                "--dev",
                "eth0",
                "--failback",
                "--keepalive",
                "50ms",
                "--deadtime",
                "300ms",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.extend(["--state-dir".to_string(), state]);
        if preferred {
            args.push("--preferred".into());
        }
        args.extend(
            ["--", "--keys", &keys, "--channel", "a=bcast:eth0", "-q"]
                .iter()
                .map(|s| s.to_string()),
        );
        let ns = net.ns(me).to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "env", &format!("PATH={path}")])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        net.adopt(child);
    };
    start(&mut net, 1, 2, true);
    start(&mut net, 2, 1, false);
    wait_until("the preferred node takes the address", Duration::from_secs(5), || {
        holds(&net, 1)
    });
    assert!(!holds(&net, 2));
    assert!(client_reaches(&net));
    // The primary's cable is pulled: the standby takes over and the client follows.
    net.cut(1, 0);
    wait_until("the standby takes over", Duration::from_secs(3), || holds(&net, 2));
    wait_until("the client reaches the standby", Duration::from_secs(5), || {
        client_reaches(&net)
    });
    // The primary returns: with --failback the address goes back to it, once.
    net.mend(1, 0);
    wait_until("failback", Duration::from_secs(5), || !holds(&net, 2) && holds(&net, 1));
    wait_until("the client reaches the primary again", Duration::from_secs(5), || {
        client_reaches(&net)
    });
    // Standby by hand on the primary: it releases, the peer takes the address.
    let st = Command::new("bash")
        .args([
            script,
            "standby",
            "--state-dir",
            &net.path("pair1").display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    wait_until(
        "the peer takes over from a standby node",
        Duration::from_secs(3),
        || holds(&net, 2) && !holds(&net, 1),
    );
    wait_until("the client follows", Duration::from_secs(5), || client_reaches(&net));
}
