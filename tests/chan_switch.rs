//! chan-switch in network namespaces: 3 to 5 nodes on two bridges (LAN a = eth0,
//! LAN b = eth1), each running hb-send, and hb-watch piped into chan-switch run; a
//! numbered UDP probe every 1 ms between every pair of cluster addresses says which
//! LAN carried the traffic and what was lost, in every case: silent loss, one-way loss,
//! carrier loss, the whole LAN down, flapping, the decider killed half way, both LANs
//! of one node down, per-peer, back by hand and by policy.
//!
//! Timing here is for correctness on a loaded 2-core machine (keepalive 20 ms,
//! deadtime 100 ms); the figures at 10/30 ms are contrib/bench-chanswitch.py's.

mod common;

use common::chan::{cluster_ip, lan_ip, mono_ns, ChanLab, Probes};
use common::{bin, field, Events};
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

const MS: u64 = 1_000_000;
const KEEPALIVE: &str = "20ms";
const DEADTIME: &str = "100ms";

struct Node {
    events: Events,
    pids: Vec<u32>,
}

struct Cluster {
    lab: ChanLab,
    nodes: Vec<Node>,
}

fn members(n: usize) -> Vec<String> {
    (1..=n)
        .flat_map(|i| {
            [
                "--member".to_string(),
                format!("n{i}={},{},{}", cluster_ip(i), lan_ip(i, 0), lan_ip(i, 1)),
            ]
        })
        .collect()
}

impl Cluster {
    fn start(n: usize, extra: &[&str]) -> Cluster {
        let mut lab = ChanLab::new(n);
        let mut nodes = Vec::new();
        for i in 1..=n {
            nodes.push(start_node(&mut lab, i, extra));
        }
        let c = Cluster { lab, nodes };
        // Ready: every node hears every other on both channels and has its report.
        for i in 1..=n {
            let ok = common::wait_for(
                || {
                    c.status(i).is_some_and(|s| {
                        (1..=n).all(|j| {
                            let st = &s["nodes"][format!("n{j}")];
                            st["state"] == "up"
                                && st["reported"] == true
                                && st["deaf"].as_array().is_some_and(|d| d.is_empty())
                        })
                    })
                },
                Duration::from_secs(10),
            );
            assert!(ok, "n{i} never saw the whole cluster: {:?}", c.status(i));
        }
        // The decider waits 2 x deadtime after its start before it decides anything.
        sleep(Duration::from_millis(250));
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.lab.net.path(name)
    }

    fn status(&self, i: usize) -> Option<serde_json::Value> {
        let t = std::fs::read_to_string(self.path(&format!("n{i}.chan.json"))).ok()?;
        serde_json::from_str(&t).ok()
    }

    fn ev(&mut self, i: usize) -> &mut Events {
        &mut self.nodes[i - 1].events
    }

    /// Drop everything node i sends and receives on LAN c at the switch; its link
    /// stays up (silent loss).
    fn drop_port(&self, table: &str, ports: &[(usize, usize)], dirs: &[&str]) {
        let mut rules = String::new();
        for (i, c) in ports {
            for d in dirs {
                rules += &format!("    {d}name n{i}c{c} drop\n");
            }
        }
        self.lab.net.nft(
            &self.lab.net.switch,
            &format!(
                "table bridge {table} {{\n  chain f {{\n    type filter hook forward priority 0;\n{rules}  }}\n}}\n"
            ),
        );
    }

    fn heal(&self, table: &str) {
        common::sh(&[
            "ip",
            "netns",
            "exec",
            &self.lab.net.switch,
            "nft",
            "delete",
            "table",
            "bridge",
            table,
        ]);
    }

    /// Probes for `ms`: every pair among `nodes` carried only over `ifname` in the last
    /// three quarters of that time.
    fn flows_over(&mut self, nodes: &[usize], ifname: &str, ms: u64) {
        let probes = self.lab.probes();
        sleep(Duration::from_millis(ms));
        let t1 = mono_ns();
        let p = probes.stop();
        all_over(&p, nodes, ifname, t1 - ms * 3 / 4 * MS, t1).unwrap_or_else(|e| panic!("{e}"));
    }

    fn kill_node(&mut self, i: usize) {
        for pid in self.nodes[i - 1].pids.clone() {
            self.lab.net.kill(pid, Signal::SIGKILL);
        }
    }

    /// `chan-switch ARGS --node n<i> --status-file ...` on node i; its output and status.
    fn cmd(&self, i: usize, args: &[&str]) -> std::process::Output {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--node".into(),
            format!("n{i}"),
            "--status-file".into(),
            self.path(&format!("n{i}.chan.json")).display().to_string(),
        ]);
        self.lab.net.run(
            self.lab.ns(i),
            &bin("chan-switch"),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }
}

fn start_node(lab: &mut ChanLab, i: usize, extra: &[&str]) -> Node {
    let net = &mut lab.net;
    let fifo = net.path(&format!("n{i}.fifo"));
    let send = net.send(i, &["--keepalive", KEEPALIVE, "--deadtime", DEADTIME]);
    let mut wargs = net.common(i);
    wargs.extend([
        "--deadtime".into(),
        DEADTIME.into(),
        "--floors".into(),
        net.path(&format!("n{i}.floors")).display().to_string(),
    ]);
    let ns = net.ns(i).to_string();
    let mut watch = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(bin("hb-watch"))
        .args(&wargs)
        .stdout(Stdio::piped())
        .spawn()
        .expect("hb-watch");
    let watch_out = watch.stdout.take().unwrap();
    let watch_pid = watch.id();
    net.adopt(watch);
    let mut sargs: Vec<String> = vec![
        "run".into(),
        "--node".into(),
        format!("n{i}"),
        "--channel".into(),
        "a=bcast:eth0".into(),
        "--channel".into(),
        "b=bcast:eth1".into(),
        "--deadtime".into(),
        DEADTIME.into(),
        "--keepalive".into(),
        KEEPALIVE.into(),
        "--fifo".into(),
        fifo.display().to_string(),
        "--table".into(),
        net.path(&format!("n{i}.ast")).display().to_string(),
        "--state".into(),
        net.path(&format!("n{i}.chan.state")).display().to_string(),
        "--status-file".into(),
        net.path(&format!("n{i}.chan.json")).display().to_string(),
    ];
    sargs.extend(members(lab.n));
    sargs.extend(extra.iter().map(|s| s.to_string()));
    let mut sw = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(bin("chan-switch"))
        .args(&sargs)
        .stdin(Stdio::from(watch_out))
        .stdout(Stdio::piped())
        .spawn()
        .expect("chan-switch");
    let out = sw.stdout.take().unwrap();
    let pid = sw.id();
    net.adopt(sw);
    Node {
        events: Events::new(out, pid),
        pids: vec![pid, watch_pid, send],
    }
}

/// Every pair among `nodes` carried only over `ifname` for probes sent in [from, to).
fn all_over(p: &Probes, nodes: &[usize], ifname: &str, from: u64, to: u64) -> Result<(), String> {
    for &i in nodes {
        for &j in nodes {
            if i == j {
                continue;
            }
            let by = p.carried(i, j, from, to);
            if by.keys().any(|k| k != ifname) || by.get(ifname).copied().unwrap_or(0) == 0 {
                return Err(format!("n{i}->n{j} carried {by:?}, not only {ifname}"));
            }
        }
    }
    Ok(())
}

#[test]
fn silent_loss_on_one_node_moves_every_pair_to_lan_b() {
    let mut c = Cluster::start(4, &[]);
    let probes = c.lab.probes();
    sleep(Duration::from_millis(300));
    let t0 = mono_ns();
    c.drop_port("cut", &[(3, 0)], &["iif", "oif"]);
    let ordered = c.ev(1).expect("chan-ordered b", Duration::from_secs(3));
    assert_eq!(field(&ordered, "by"), Some("n1"), "{ordered}");
    c.ev(1).expect("chan-complete b", Duration::from_secs(3));
    for i in 2..=4 {
        c.ev(i).expect(&format!("chan-applied n{i}"), Duration::from_secs(3));
    }
    sleep(Duration::from_millis(400));
    let t1 = mono_ns();
    let p = probes.stop();
    let all = [1, 2, 3, 4];
    all_over(&p, &all, "eth0", p.start_ns, t0).unwrap_or_else(|e| panic!("before: {e}\n{}", p.summary(p.start_ns, t0)));
    all_over(&p, &all, "eth1", t1 - 300 * MS, t1).unwrap_or_else(|e| panic!("after: {e}\n{}", p.summary(t0, t1)));
    let flowing = p.all_on("eth1", t0).expect("every pair over eth1");
    assert!(
        flowing - t0 < 1_000 * MS,
        "{} ms to move every pair",
        (flowing - t0) / MS
    );
    // Pairs that never lost their LAN lose nothing in the switch.
    for (i, j) in [(1, 2), (2, 1), (1, 4), (4, 2)] {
        assert!(
            p.lost(i, j, t0, t1) <= 2,
            "n{i}->n{j} lost {}\n{}",
            p.lost(i, j, t0, t1),
            p.summary(t0, t1)
        );
    }
    // No failover: every node is still up in n1's table, and every node reports b.
    let out = c.lab.net.run(
        c.lab.ns(1),
        &bin("hb-watch"),
        &["status", "n3", "--table", &c.path("n1.ast").display().to_string()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = c.cmd(2, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for j in 1..=4 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("n{j} ")))
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(line.split_whitespace().nth(2), Some("b"), "{text}");
    }
}

#[test]
fn per_peer_moves_only_the_failed_nodes_traffic() {
    let mut c = Cluster::start(4, &["--policy", "per-peer"]);
    let probes = c.lab.probes();
    sleep(Duration::from_millis(200));
    let t0 = mono_ns();
    c.drop_port("cut", &[(3, 0)], &["iif", "oif"]);
    let o = c.ev(1).expect("chan-ordered a", Duration::from_secs(3));
    assert_eq!(field(&o, "moved"), Some("n3:b"), "{o}");
    c.ev(1).expect("chan-complete", Duration::from_secs(3));
    sleep(Duration::from_millis(400));
    let t1 = mono_ns();
    let p = probes.stop();
    let w = t1 - 300 * MS;
    all_over(&p, &[1, 2, 4], "eth0", w, t1).unwrap_or_else(|e| panic!("{e}\n{}", p.summary(t0, t1)));
    for j in [1, 2, 4] {
        all_over(&p, &[3, j], "eth1", w, t1).unwrap_or_else(|e| panic!("{e}\n{}", p.summary(t0, t1)));
    }
    assert!(p.lost(1, 2, t0, t1) <= 2, "{}", p.summary(t0, t1));
}

#[test]
fn carrier_loss_moves_that_node_at_once_and_the_others_after_the_order() {
    let mut c = Cluster::start(3, &[]);
    let probes = c.lab.probes();
    sleep(Duration::from_millis(200));
    let t0 = mono_ns();
    c.lab.net.cut(2, 0);
    let l = c.ev(2).expect("chan-carrier n2", Duration::from_secs(2));
    assert_eq!(
        (field(&l, "channel"), field(&l, "carrier"), field(&l, "active")),
        (Some("a"), Some("down"), Some("b")),
        "{l}"
    );
    c.ev(1).expect("chan-complete b", Duration::from_secs(3));
    sleep(Duration::from_millis(300));
    let t1 = mono_ns();
    let p = probes.stop();
    // n2's own traffic left eth0 long before deadtime could have told anyone.
    for j in [1, 3] {
        let first = p.first_on(2, j, "eth1", t0).expect("n2's probes over eth1");
        assert!(
            first - t0 < 80 * MS,
            "n2->n{j} over eth1 after {} ms",
            (first - t0) / MS
        );
    }
    all_over(&p, &[1, 2, 3], "eth1", t1 - 200 * MS, t1).unwrap_or_else(|e| panic!("{e}\n{}", p.summary(t0, t1)));
}

#[test]
fn one_way_loss_is_heard_from_the_deaf_nodes_report() {
    let mut c = Cluster::start(3, &[]);
    // n3 hears nobody on a; everybody still hears n3 there. Only n3's table knows.
    c.drop_port("deaf", &[(3, 0)], &["oif"]);
    let p = c.ev(1).expect("chan-proposed b", Duration::from_secs(3));
    assert!(field(&p, "broken").is_some_and(|b| b.contains("n3")), "{p}");
    c.ev(1).expect("chan-complete b", Duration::from_secs(3));
    c.flows_over(&[1, 2, 3], "eth1", 200);
}

#[test]
fn the_whole_lan_a_down_is_one_switch() {
    let mut c = Cluster::start(3, &[]);
    c.drop_port("lan", &[(1, 0), (2, 0), (3, 0)], &["iif"]);
    c.ev(1).expect("chan-complete b", Duration::from_secs(3));
    c.flows_over(&[1, 2, 3], "eth1", 200);
    c.ev(1).gather(Duration::from_millis(300));
    assert_eq!(c.ev(1).count("chan-ordered"), 1, "{:?}", c.ev(1).seen);
}

#[test]
fn flapping_switches_once_and_is_held_down() {
    let mut c = Cluster::start(3, &["--back", "2s"]);
    // n3's port on LAN a drops long enough to be seen, then for 100 ms of every 200
    // ms, for 3 s.
    c.drop_port("flap", &[(3, 0)], &["iif", "oif"]);
    sleep(Duration::from_millis(200));
    c.heal("flap");
    sleep(Duration::from_millis(100));
    for _ in 0..14 {
        c.drop_port("flap", &[(3, 0)], &["iif", "oif"]);
        sleep(Duration::from_millis(100));
        c.heal("flap");
        sleep(Duration::from_millis(100));
    }
    let seen = c.ev(1).gather(Duration::from_millis(300));
    let orders = c.ev(1).count("chan-ordered") + c.ev(1).count("chan-switched-back");
    assert!(
        orders <= 2,
        "{orders} switches while flapping:\n{}",
        c.ev(1).seen.join("\n")
    );
    assert!(c.ev(1).count("chan-ordered b") == 1, "{seen:?}");
    // Healthy for --back (2 s): back to a, once.
    c.ev(1).expect("chan-switched-back a", Duration::from_secs(4));
}

#[test]
fn a_decider_killed_half_way_is_replaced_and_the_next_order_completes() {
    let mut c = Cluster::start(4, &[]);
    // n4 never gets n1's orders nor anyone's reports (which would carry the order too):
    // its input drops udp whose text begins `>>>\nt=chan-switch` from n1 and
    // `>>>\nt=chan-state` from anyone (bytes 4.. of the payload).
    c.lab.net.nft(
        c.lab.ns(4),
        &format!(
            "table inet lose {{\n  chain in {{\n    type filter hook input priority 0;\n    ip saddr {{ {}, {} }} udp dport 694 @ih,32,104 0x743d6368616e2d737769746368 drop\n    udp dport 694 @ih,32,96 0x743d6368616e2d7374617465 drop\n  }}\n}}\n",
            lan_ip(1, 0),
            lan_ip(1, 1)
        ),
    );
    c.drop_port("cut", &[(3, 0)], &["iif", "oif"]);
    c.ev(1).expect("chan-ordered b", Duration::from_secs(3));
    c.ev(2).expect("chan-applied n2 ", Duration::from_secs(2));
    c.kill_node(1);
    // n2 is the decider once n1 is dead; n4 still reports the old order: a new epoch.
    let o = c.ev(2).expect("chan-ordered b", Duration::from_secs(3));
    let o = if field(&o, "by") == Some("n2") {
        o
    } else {
        c.ev(2).clear();
        c.ev(2).expect("chan-ordered b", Duration::from_secs(3))
    };
    assert_eq!((field(&o, "by"), field(&o, "epoch")), (Some("n2"), Some("2")), "{o}");
    let a = c.ev(4).expect("chan-applied n4", Duration::from_secs(3));
    assert_eq!(field(&a, "channel"), Some("b"), "{a}");
    c.ev(2).expect("chan-complete b", Duration::from_secs(3));
    c.flows_over(&[2, 3, 4], "eth1", 200);
}

#[test]
fn both_lans_down_on_one_node_is_a_node_failure_not_a_switch() {
    let mut c = Cluster::start(3, &[]);
    let probes = c.lab.probes();
    sleep(Duration::from_millis(200));
    let t0 = mono_ns();
    c.drop_port("both", &[(3, 0), (3, 1)], &["iif", "oif"]);
    // The decider may see one link go before the other (a proposal), never a switch.
    let seen = c.ev(1).gather(Duration::from_millis(800));
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("chan-ordered") || l.starts_with("chan-held-down")),
        "{seen:?}"
    );
    let st = c.status(1).unwrap();
    assert_eq!(st["nodes"]["n3"]["state"], "dead", "{st}");
    let t1 = mono_ns();
    let p = probes.stop();
    all_over(&p, &[1, 2], "eth0", t0, t1).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn to_b_and_back_by_hand_from_any_node() {
    let mut c = Cluster::start(3, &[]);
    // Typed on n3, not the decider: passed on to n1, which orders it.
    let out = c.cmd(3, &["to", "b"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let o = c.ev(1).expect("chan-ordered b", Duration::from_secs(1));
    assert_eq!(field(&o, "manual"), Some("1"), "{o}");
    c.flows_over(&[1, 2, 3], "eth1", 150);
    // A channel nobody has: refused, exit 2.
    let out = c.cmd(2, &["to", "c"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = c.cmd(1, &["back"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    c.ev(1).expect("chan-switched-back a", Duration::from_secs(1));
    c.flows_over(&[1, 2, 3], "eth0", 150);
}

#[test]
fn back_by_policy_once_a_has_carried_every_pair_long_enough() {
    let mut c = Cluster::start(3, &["--back", "600ms"]);
    c.drop_port("cut", &[(2, 0)], &["iif", "oif"]);
    c.ev(1).expect("chan-complete b", Duration::from_secs(3));
    sleep(Duration::from_millis(200));
    c.heal("cut");
    let t = std::time::Instant::now();
    c.ev(1).expect("chan-switched-back a", Duration::from_secs(3));
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "back after {:?}",
        t.elapsed()
    );
    c.ev(1).expect("chan-complete a", Duration::from_secs(2));
}

#[test]
fn bad_and_stale_orders_change_nothing() {
    let mut c = Cluster::start(3, &[]);
    c.drop_port("cut", &[(3, 0)], &["iif", "oif"]);
    c.ev(1).expect("chan-complete b", Duration::from_secs(3));
    c.ev(2).expect("chan-applied n2", Duration::from_secs(1));
    c.ev(2).clear();
    c.heal("cut");
    let fifo3 = c.path("n3.fifo");
    let write = |block: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo3)
            .unwrap()
            .write_all(block.as_bytes())
            .unwrap()
    };
    use std::io::Write;
    // Malformed; a stale epoch (1, by n3 > n1, so older); one passed on by n3 in n1's name.
    write(">>>\nt=chan-switch\nepoch=zz\nby=n3\nuse=a\n<<<\n");
    write(">>>\nt=chan-switch\nepoch=1\nby=n3\nuse=a\nmoved=\nmanual=0\n<<<\n");
    write(">>>\nt=chan-switch\nepoch=9\nby=n1\nuse=a\nmoved=\nmanual=0\n<<<\n");
    let seen = c.ev(2).gather(Duration::from_millis(400));
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("chan-ordered") || l.starts_with("chan-applied")),
        "{seen:?}"
    );
    let st = c.status(2).unwrap();
    assert_eq!((st["use"].as_str(), st["epoch"].as_u64()), (Some("b"), Some(1)), "{st}");
}

#[test]
fn configuration_errors_are_one_line_and_change_nothing() {
    let lab = ChanLab::new(1);
    let run = |args: &[&str]| {
        let mut a = vec![
            "run",
            "--node",
            "n1",
            "--channel",
            "a=bcast:eth0",
            "--channel",
            "b=bcast:eth1",
        ];
        a.extend_from_slice(args);
        lab.net.run(lab.ns(1), &bin("chan-switch"), &a)
    };
    let member = format!("n1={},{},{}", cluster_ip(1), lan_ip(1, 0), lan_ip(1, 1));
    let member3 = format!("{member},10.77.3.1");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--member", "n1=10.77.100.1,10.77.1.1"],
            "--member: n1: 1 address(es) for 2 channels",
        ),
        (&["--member", "n1=10.77.100.1,10.77.1.1,224.0.0.1"], "multicast"),
        (
            &["--member", "n2=10.77.100.2,10.77.1.2,10.77.2.2"],
            "this node, n1, is not among the members",
        ),
        (
            &["--member", &member, "--policy", "most"],
            "--policy: `most` is not a policy",
        ),
        (&["--member", &member, "--hold-down", "1ms"], "--hold-down: "),
        (
            &[
                "--member",
                &member,
                "--deadtime",
                "30ms",
                "--keepalive",
                "10ms",
                "--back",
                "50ms",
            ],
            "--back: ",
        ),
        (
            &["--member", &member3, "--channel", "c=bcast:eth7"],
            "channel c: no interface eth7",
        ),
    ];
    for (args, want) in cases {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want) && err.trim().lines().count() == 1, "{args:?}: {err}");
    }
    // Nothing was changed: no rule, no address on lo.
    let rules = Command::new("ip").args(["-n", lab.ns(1), "rule"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("lookup 6940"),
        "{}",
        String::from_utf8_lossy(&rules.stdout)
    );
    // status/to/back with no daemon: exit 1, one line.
    let dir = tempfile::tempdir().unwrap();
    let sf = dir.path().join("none.json");
    let out = Command::new(bin("chan-switch"))
        .args(["status", "--node", "n1", "--status-file", &sf.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}
