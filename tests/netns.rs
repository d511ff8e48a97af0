//! Heartbeat behaviour in real network namespaces: two bridges for two channels,
//! links cut, nodes killed, forged and replayed packets, carrier loss, cross-check,
//! hooks and signals, FIFO messages.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::net::UdpSocket;
use std::time::Duration;

const KA: &str = "50ms";
const DT: &str = "300ms";
const S: Duration = Duration::from_secs(1);

fn start(net: &mut Net, nodes: &[usize]) {
    for &i in nodes {
        net.send(i, &["--keepalive", KA, "--deadtime", DT]);
    }
}

fn bcast_socket(dev: &str) -> UdpSocket {
    let s = UdpSocket::bind("0.0.0.0:694").unwrap();
    s.set_broadcast(true).unwrap();
    nix::sys::socket::setsockopt(
        &s,
        nix::sys::socket::sockopt::BindToDevice,
        &std::ffi::OsString::from(dev),
    )
    .unwrap();
    s
}

#[test]
fn one_channel_cut_is_a_link_death_not_a_node_death() {
    let mut net = Net::new(2, 2);
    let mut ev = net.watch(1, &["--deadtime", DT]);
    start(&mut net, &[1, 2]);
    ev.expect("node-up n2", 3 * S);
    ev.expect_n("link-up n2 ", 2, 3 * S);
    ev.clear();
    net.cut(2, 1);
    let l = ev.expect("link-dead n2", 3 * S);
    assert_eq!(field(&l, "channel"), Some("b"), "{l}");
    let rest = ev.gather(Duration::from_millis(1000));
    assert!(
        !rest.iter().chain(ev.seen.iter()).any(|l| l.starts_with("node-dead")),
        "{:?}",
        ev.seen
    );
    assert_eq!(ev.count("link-dead"), 1, "{:?}", ev.seen);
    // The table agrees, and answers scripts through the exit status.
    let table = net.path("n1.ast").display().to_string();
    let ns = net.ns(1).to_string();
    let up = net.run(&ns, &bin("hb-watch"), &["status", "n2", "--table", &table]);
    assert_eq!(up.status.code(), Some(0), "{}", String::from_utf8_lossy(&up.stdout));
    let link = net.run(
        &ns,
        &bin("hb-watch"),
        &["status", "n2", "--link", "b", "--table", &table],
    );
    assert_eq!(link.status.code(), Some(1));
    let link = net.run(
        &ns,
        &bin("hb-watch"),
        &["status", "n2", "--link", "a", "--table", &table],
    );
    assert_eq!(link.status.code(), Some(0));
    // Both cut: the node is dead.
    net.cut(2, 0);
    let d = ev.expect("node-dead n2", 3 * S);
    assert_eq!(field(&d, "reason"), Some("deadtime"), "{d}");
    let st = net.run(&ns, &bin("hb-watch"), &["status", "n2", "--table", &table]);
    assert_eq!(st.status.code(), Some(1));
    // Mended: back up.
    net.mend(2, 0);
    net.mend(2, 1);
    ev.expect("node-up n2", 3 * S);
}

#[test]
fn kill9_is_node_death_and_restart_is_reported() {
    let mut net = Net::new(2, 2);
    let mut ev = net.watch(1, &["--deadtime", DT]);
    start(&mut net, &[1]);
    let p2 = net.send(2, &["--keepalive", KA, "--deadtime", DT]);
    ev.expect("node-up n2", 3 * S);
    // node-up comes with the first heartbeat on either channel: wait for both links, or a
    // link never heard cannot die.
    ev.expect_n("link-up n2", 2, 3 * S);
    ev.clear();
    net.kill(p2, Signal::SIGKILL);
    ev.expect("node-dead n2", 3 * S);
    assert_eq!(ev.count("link-dead n2"), 2, "{:?}", ev.seen);
    ev.clear();
    net.send(2, &["--keepalive", KA, "--deadtime", DT]);
    let r = ev.expect("node-restart n2", 3 * S);
    ev.expect("node-up n2", 3 * S);
    let pos = |p: &str| ev.seen.iter().position(|l| l.starts_with(p)).unwrap();
    assert!(pos("node-restart n2") < pos("node-up n2"), "{:?}", ev.seen);
    assert!(field(&r, "gen").is_some());
}

#[test]
fn sigterm_announces_the_stop_at_once() {
    let mut net = Net::new(2, 1);
    let mut ev = net.watch(1, &["--deadtime", "5s"]);
    let p2 = net.send(2, &["--keepalive", KA, "--deadtime", "5s"]);
    ev.expect("node-up n2", 3 * S);
    net.kill(p2, Signal::SIGTERM);
    let d = ev.expect("node-dead n2", S);
    assert_eq!(field(&d, "reason"), Some("shutdown"), "{d}");
}

#[test]
fn forged_replayed_and_garbage_packets_are_counted_and_ignored() {
    let mut net = Net::new(3, 1);
    // Node 3 is the attacker's namespace: on the segment, but runs no hakit.
    let mut ev = net.watch(1, &["--deadtime", DT, "--nodes", "n1,n2"]);
    let p2 = net.send(2, &["--keepalive", KA, "--deadtime", DT]);
    ev.expect("node-up n2", 3 * S);
    let attacker = net.ns(3).to_string();
    // Capture some of n2's real heartbeats.
    let captured: Vec<Vec<u8>> = in_netns(&attacker, || {
        let s = bcast_socket("eth0");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while out.len() < 10 {
            let (n, _) = s.recv_from(&mut buf).unwrap();
            if buf[..n].windows(7).any(|w| w == b"src=n2\n") {
                out.push(buf[..n].to_vec());
            }
        }
        out
    });
    net.kill(p2, Signal::SIGKILL);
    ev.expect("node-dead n2", 3 * S);
    ev.clear();
    // Replay the captured heartbeats, forge new ones with a wrong key, send garbage.
    let sent = in_netns(&attacker, move || {
        let s = bcast_socket("eth0");
        let to = "255.255.255.255:694";
        let mut sent = 0;
        for round in 0..20 {
            for p in &captured {
                s.send_to(p, to).unwrap();
                sent += 1;
            }
            let forged = format!(
                ">>>\nt=status\nst=active\nsrc=n2\nseq={:x}\nhg=ffffffffff\nauth=1 {}\n<<<\n\0",
                1000 + round,
                "00".repeat(32)
            );
            s.send_to(forged.as_bytes(), to).unwrap();
            s.send_to(b"\x00\xff garbage \x13\x37", to).unwrap();
            s.send_to(b">>>\nt=status\n", to).unwrap();
            s.send_to(&[b'A'; 1500], to).unwrap();
            let intruder = ">>>\nt=status\nsrc=mallory\nseq=1\nhg=1\nauth=1 00\n<<<\n";
            s.send_to(intruder.as_bytes(), to).unwrap();
            sent += 5;
            std::thread::sleep(Duration::from_millis(20));
        }
        sent
    });
    let after = ev.gather(Duration::from_millis(500));
    assert!(
        !after
            .iter()
            .any(|l| l.contains(" n2 ") && (l.starts_with("node-up") || l.starts_with("link-up"))),
        "{after:?}"
    );
    assert!(!after.iter().any(|l| l.contains("mallory")), "{after:?}");
    // Every refusal was counted: replays as duplicates/rejections on n2's link, the rest unattributed.
    let ns = net.ns(1).to_string();
    let out = net.run(
        &ns,
        &bin("hb-watch"),
        &["status", "--json", "--table", &net.path("n1.ast").display().to_string()],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n2 = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "n2")
        .unwrap();
    let l = &n2["links"][0];
    let on_n2 = l["duplicate"].as_u64().unwrap() + l["rejected"].as_u64().unwrap();
    let unattributed = v["rejected_unattributed"][0].as_u64().unwrap();
    assert!(on_n2 >= 200 + 20, "replays and forgeries counted on n2: {l}");
    assert!(unattributed >= 80, "garbage and intruders counted: {unattributed}");
    assert!(
        on_n2 + unattributed >= sent as u64 - 10,
        "{on_n2} + {unattributed} < {sent}"
    );
    // The real node still gets through.
    net.send(2, &["--keepalive", KA, "--deadtime", DT]);
    ev.expect("node-up n2", 3 * S);
}

#[test]
fn carrier_loss_kills_the_channel_at_once() {
    let mut net = Net::new(2, 2);
    // A long deadtime: only the carrier can explain a quick link-dead.
    let mut ev = net.watch(1, &["--deadtime", "10s"]);
    net.send(2, &["--keepalive", KA, "--deadtime", "10s"]);
    ev.expect_n("link-up n2 ", 2, 3 * S);
    ev.gather(Duration::from_millis(300));
    ev.clear();
    let ns1 = net.ns(1).to_string();
    let t0 = std::time::Instant::now();
    net.ip(&ns1, &["link", "set", "eth1", "down"]);
    let l = ev.expect("link-dead n2", S);
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert_eq!(field(&l, "reason"), Some("carrier"), "{l}");
    assert_eq!(field(&l, "channel"), Some("b"), "{l}");
    assert_eq!(ev.count("node-dead"), 0);
    net.ip(&ns1, &["link", "set", "eth1", "up"]);
    let u = ev.expect("link-up n2", 3 * S);
    assert_eq!(field(&u, "channel"), Some("b"), "{u}");
}

#[test]
fn three_nodes_cross_check_unreachable_then_dead() {
    // Slower timing than the other tests: the verdict rests on n2's view of n3, which
    // a loaded test machine (every test runs at once, none real-time) can delay by a
    // good fraction of a 300 ms deadtime.
    let (ka, dt) = ("100ms", "1s");
    let mut net = Net::new(3, 2);
    let mut ev = net.watch(1, &["--deadtime", dt]);
    net.watch(2, &["--deadtime", dt]);
    net.watch(3, &["--deadtime", dt]);
    for i in [1, 2] {
        net.send(i, &["--keepalive", ka, "--deadtime", dt]);
    }
    let p3 = net.send(3, &["--keepalive", ka, "--deadtime", dt]);
    ev.expect("node-up n3", 3 * S);
    ev.expect("node-up n2", 3 * S);
    std::thread::sleep(Duration::from_millis(500));
    ev.clear();
    // n1 stops hearing n3 on both channels; n2 still does.
    let ns1 = net.ns(1).to_string();
    net.nft(&ns1, "table inet hkcut {\n chain in {\n  type filter hook input priority 0;\n  ip saddr { 10.77.1.3, 10.77.2.3 } drop\n }\n}\n");
    let u = ev.expect("node-unreachable n3", 3 * S);
    assert_eq!(field(&u, "via"), Some("n2"), "{u}");
    ev.gather(Duration::from_millis(1500));
    assert_eq!(ev.count("node-dead n3"), 0, "{:?}", ev.seen);
    // Now n3 really dies: nobody hears it.
    net.kill(p3, Signal::SIGKILL);
    ev.expect("node-dead n3", 3 * S);
}

#[test]
fn hook_and_notified_process_get_every_event() {
    let mut net = Net::new(2, 2);
    let log = net.path("hook.log");
    let hook = net.path("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$1 $2 $HA_EVENT $HA_SUBJECT $HA_channel $HA_st $HA_src\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    set_mode(&hook, 0o755);
    // A process that counts SIGUSR2.
    let count = net.path("signals");
    let script = format!(
        "n=0; trap 'n=$((n+1)); echo $n > {}' USR2; while :; do sleep 0.05; done",
        count.display()
    );
    let ns1 = net.ns(1).to_string();
    let counter = net.spawn(
        &ns1,
        std::path::Path::new("/bin/bash"),
        &["-c".into(), script],
        std::process::Stdio::null(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let notify = counter.to_string();
    let mut ev = net.watch(
        1,
        &[
            "--deadtime",
            DT,
            "--exec",
            &hook.display().to_string(),
            "--notify",
            &notify,
        ],
    );
    let p2 = net.send(2, &["--keepalive", KA, "--deadtime", DT]);
    ev.expect("node-up n2", 3 * S);
    net.kill(p2, Signal::SIGKILL);
    ev.expect("node-dead n2", 3 * S);
    std::thread::sleep(Duration::from_millis(700));
    let events = ev.seen.len();
    let lines = std::fs::read_to_string(&log).unwrap();
    let got: Vec<&str> = lines.lines().collect();
    assert_eq!(got.len(), events, "hook runs {got:?} vs events {:?}", ev.seen);
    // In order, with Heartbeat's variables.
    for (l, e) in got.iter().zip(ev.seen.iter()) {
        let kind = e.split(' ').next().unwrap();
        assert!(l.starts_with(&format!("{kind} n2 {kind} n2")), "{l} vs {e}");
    }
    assert!(got.contains(&"node-dead n2 node-dead n2  dead n2"), "{got:?}");
    assert!(
        got.iter().any(|l| l.starts_with("link-dead n2 link-dead n2 b dead n2")),
        "{got:?}"
    );
    let n: usize = std::fs::read_to_string(&count).unwrap().trim().parse().unwrap();
    // Signals may merge while one is pending; at least one per burst, never more than events.
    assert!(n >= 2 && n <= events, "{n} signals for {events} events");
}

#[test]
fn fifo_messages_reach_the_cluster() {
    let mut net = Net::new(2, 2);
    let mut ev = net.watch(1, &["--deadtime", DT]);
    net.send(2, &["--keepalive", "100ms", "--deadtime", "1s"]);
    ev.expect("node-up n2", 3 * S);
    let fifo = net.path("n2.fifo");
    std::fs::write(&fifo, ">>>\nt=takeover\nresource=vip1\nsrc=forged\n<<<\n").unwrap();
    let m = ev.expect("message n2", 2 * S);
    assert_eq!(field(&m, "t"), Some("takeover"), "{m}");
    assert_eq!(field(&m, "resource"), Some("vip1"), "{m}");
    assert_eq!(field(&m, "src"), Some("n2"), "the sender stamps src: {m}");
    assert_eq!(
        ev.count("message n2"),
        1,
        "sent on two channels, delivered once: {:?}",
        ev.seen
    );
    // The node-status that follows every node-up (status=active) is behind us.
    ev.clear();
    std::fs::write(&fifo, ">>>\nt=status\nst=standby\n<<<\n").unwrap();
    let s = ev.expect("node-status n2", 2 * S);
    assert_eq!(field(&s, "status"), Some("standby"), "{s}");
}

#[test]
fn redundancy_copies_are_counted_once() {
    let mut net = Net::new(2, 1);
    let mut ev = net.watch(1, &["--deadtime", DT]);
    net.send(2, &["--keepalive", KA, "--deadtime", DT, "--redundancy", "2"]);
    ev.expect("node-up n2", 3 * S);
    std::thread::sleep(Duration::from_millis(500));
    let ns = net.ns(1).to_string();
    let out = net.run(
        &ns,
        &bin("hb-watch"),
        &[
            "status",
            "n2",
            "--json",
            "--table",
            &net.path("n1.ast").display().to_string(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seq = v["last_seq"].as_u64().unwrap();
    let dup = v["links"][0]["duplicate"].as_u64().unwrap();
    assert!(seq >= 8, "{v}");
    // Two extra copies per message arrive as duplicates; nothing is lost.
    assert!(dup >= 2 * (seq - 2) && dup <= 2 * seq + 2, "{v}");
    assert_eq!(v["links"][0]["lost"], 0, "{v}");
}

#[test]
fn multicast_and_unicast_channels() {
    let mut net = Net::new(2, 2);
    let chans = |_i: usize| {
        vec![
            "--channel".to_string(),
            "a=mcast:eth0:225.0.0.7".to_string(),
            "--channel".to_string(),
            // Every node lists every peer, itself included: its own entry is skipped.
            "b=ucast:eth1:10.77.2.1,10.77.2.2".to_string(),
        ]
    };
    let args = |i: usize, tool: &str| {
        let mut a: Vec<String> = net.common(i).into_iter().take(7).collect();
        a.extend(chans(i));
        if tool == "hb-send" {
            a.extend(
                ["--keepalive", KA, "--deadtime", DT, "--no-fifo", "--generation-file"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            a.push(net.path(&format!("n{i}.gen")).display().to_string());
        } else {
            a.extend(["--deadtime", DT, "--json"].iter().map(|s| s.to_string()));
        }
        a
    };
    let w = args(1, "hb-watch");
    let s1 = args(1, "hb-send");
    let s2 = args(2, "hb-send");
    let ns1 = net.ns(1).to_string();
    let ns2 = net.ns(2).to_string();
    let pid = net.spawn(&ns1, &bin("hb-watch"), &w, std::process::Stdio::piped());
    let mut ev = net.watch_pid(pid);
    net.spawn(&ns1, &bin("hb-send"), &s1, std::process::Stdio::null());
    net.spawn(&ns2, &bin("hb-send"), &s2, std::process::Stdio::null());
    // JSON lines: both channels come up.
    let mut chans_up = std::collections::BTreeSet::new();
    let end = std::time::Instant::now() + 3 * S;
    while chans_up.len() < 2 && std::time::Instant::now() < end {
        let l = ev.expect("{", S);
        ev.seen.clear();
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        if v["event"] == "link-up" && v["subject"] == "n2" {
            chans_up.insert(v["channel"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(chans_up.into_iter().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn sighup_reloads_and_sigusr1_dumps() {
    let mut net = Net::new(2, 1);
    let cfg = net.path("hakit.yaml");
    let log_a = net.path("a.log");
    let log_b = net.path("b.log");
    for (name, log) in [("a.sh", &log_a), ("b.sh", &log_b)] {
        let p = net.path(name);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"$HA_EVENT $HA_SUBJECT\" >> {}\n", log.display()),
        )
        .unwrap();
        set_mode(&p, 0o755);
    }
    let dir = net.dir.path().to_path_buf();
    let write_cfg = |hook: &str| {
        std::fs::write(
            &cfg,
            format!("hb-watch:\n  deadtime: {DT}\n  exec: {}\n", dir.join(hook).display()),
        )
        .unwrap();
    };
    write_cfg("a.sh");
    let ns1 = net.ns(1).to_string();
    let mut args = net.common(1);
    args.retain(|a| a != "-q");
    args.extend(["--config".to_string(), cfg.display().to_string()]);
    let errlog = net.path("stderr");
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns1])
        .arg(bin("hb-watch"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errlog).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let p2 = net.send(2, &["--keepalive", KA, "--deadtime", DT]);
    std::thread::sleep(Duration::from_millis(800));
    assert!(std::fs::read_to_string(&log_a)
        .unwrap_or_default()
        .contains("node-up n2"));
    write_cfg("b.sh");
    net.kill(pid, Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    net.kill(p2, Signal::SIGKILL);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        std::fs::read_to_string(&log_b)
            .unwrap_or_default()
            .contains("node-dead n2"),
        "the new hook runs"
    );
    assert!(
        !std::fs::read_to_string(&log_a).unwrap().contains("node-dead"),
        "the old hook no longer runs"
    );
    // A broken configuration on reload keeps the running one.
    std::fs::write(&cfg, "hb-watch:\n  deadtime: soon\n").unwrap();
    net.kill(pid, Signal::SIGHUP);
    net.kill(pid, Signal::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    net.kill(pid, Signal::SIGTERM);
    let mut child = child;
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "a clean stop");
    let err = std::fs::read_to_string(&errlog).unwrap();
    assert!(err.contains("configuration reloaded"), "{err}");
    assert!(
        err.contains("keeping the running configuration") && err.contains(":2:"),
        "{err}"
    );
    assert!(
        err.contains("n2 dead status=active"),
        "the USR1 dump lists nodes: {err}"
    );
}

#[test]
fn three_nodes_a_killed_node_is_dead_not_unreachable() {
    // Every survivor's view of the dead node ages like ours: no live node vouches for
    // it, so the cross-check must not delay or soften the verdict.
    let mut net = Net::new(3, 2);
    let mut ev = net.watch(1, &["--deadtime", DT]);
    net.watch(2, &["--deadtime", DT]);
    net.watch(3, &["--deadtime", DT]);
    start(&mut net, &[1, 2]);
    let p3 = net.send(3, &["--keepalive", KA, "--deadtime", DT]);
    ev.expect("node-up n3", 3 * S);
    ev.expect("node-up n2", 3 * S);
    std::thread::sleep(Duration::from_millis(500));
    ev.clear();
    net.kill(p3, Signal::SIGKILL);
    ev.expect("node-dead n3", 3 * S);
    ev.gather(Duration::from_millis(300));
    assert_eq!(ev.count("node-unreachable"), 0, "{:?}", ev.seen);
    // A stopped hb-watch leaves a stale table: `status` says so through exit 1.
    let pid = ev.pid;
    net.kill(pid, Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let ns = net.ns(1).to_string();
    let out = net.run(
        &ns,
        &bin("hb-watch"),
        &["status", "n2", "--table", &net.path("n1.ast").display().to_string()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stale"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
