//! contrib/pair.sh, the two-node active/standby pair, in network namespaces with a
//! client (node 3, which is also the ping node, the "gateway"): takeover at start,
//! failover when the primary's cable is pulled, failback, standby by hand; a partition
//! that heals (frames dropped at the switch, or carrier lost), a flapping partition,
//! ping-node loss on one side, the fencing hook, and a pair whose sender or watcher
//! dies.

mod common;
use common::pair::{log_of, SCRIPT};
use common::*;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const VIP: &str = "10.77.1.100";
const CIDR: &str = "10.77.1.100/24";
const GW: &str = "10.77.1.3";

fn holds(net: &Net, node: usize) -> bool {
    net.has_addr(node, CIDR)
}

fn holders(net: &Net) -> usize {
    (1..=2).filter(|&n| holds(net, n)).count()
}

fn wait_until(what: &str, within: Duration, f: impl FnMut() -> bool) {
    assert!(wait_for(f, within), "{what}: not within {within:?}");
}

fn client_reaches(net: &Net) -> bool {
    net.pings(3, VIP)
}

fn start(net: &Net, me: usize, opts: &[&str], tools: &[&str]) -> Child {
    common::pair::start(net, me, CIDR, opts, tools)
}

/// Both pairs, node 1 preferred, on both channels, at a keepalive of 50 ms.
fn start_both(net: &mut Net, opts: &[&str]) {
    let fast = ["--keepalive", "50ms", "--deadtime", "300ms"];
    let chans = ["--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1"];
    let one: Vec<&str> = fast.iter().chain(opts).chain(&["--preferred"]).copied().collect();
    let two: Vec<&str> = fast.iter().chain(opts).copied().collect();
    let c = start(net, 1, &one, &chans);
    net.adopt(c);
    let c = start(net, 2, &two, &chans);
    net.adopt(c);
    wait_until("the preferred node takes the address", Duration::from_secs(5), || {
        holds(net, 1)
    });
    // node-up both ways: each has heard what the other holds.
    std::thread::sleep(Duration::from_millis(400));
    assert!(!holds(net, 2), "{}", log_of(net, 2));
}

/// Drop every frame the switch forwards (both LANs): no carrier lost anywhere.
fn partition(net: &Net) {
    net.nft(
        &net.switch,
        "table bridge hkpart {\n  chain part {\n    type filter hook forward priority 0; policy drop;\n  }\n}\n",
    );
}

fn heal(net: &Net) {
    net.nft(&net.switch, "delete table bridge hkpart\n");
}

/// After a heal: exactly one holder, the client answered by it; returns how long
/// it took to reach one holder.
fn settles_on_one(net: &Net, healed: Instant, who: &str) -> Duration {
    let ok = wait_for(|| holders(net) == 1, Duration::from_secs(3));
    let took = healed.elapsed();
    assert!(
        ok,
        "{who}: still {} holders 3 s after the heal\n{}\n{}",
        holders(net),
        log_of(net, 1),
        log_of(net, 2)
    );
    // And it stays so.
    for _ in 0..20 {
        assert_eq!(holders(net), 1, "{who}: a second holder came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until("the client reaches the one holder", Duration::from_secs(5), || {
        client_reaches(net)
    });
    took
}

#[test]
fn the_pair_fails_over_and_back() {
    let mut net = Net::new(3, 2);
    start_both(&mut net, &["--failback"]);
    assert!(client_reaches(&net));
    // The primary's cables are pulled: the standby takes over and the client follows.
    net.cut(1, 0);
    net.cut(1, 1);
    wait_until("the standby takes over", Duration::from_secs(3), || holds(&net, 2));
    wait_until("the client reaches the standby", Duration::from_secs(5), || {
        client_reaches(&net)
    });
    // The primary returns: with --failback the address goes back to it, once.
    net.mend(1, 0);
    net.mend(1, 1);
    wait_until("failback", Duration::from_secs(5), || !holds(&net, 2) && holds(&net, 1));
    wait_until("the client reaches the primary again", Duration::from_secs(5), || {
        client_reaches(&net)
    });
    // Standby by hand on the primary: it releases, the peer takes the address.
    let state = net.path("pair1").display().to_string();
    let st = Command::new("bash")
        .args([SCRIPT, "standby", "--state-dir", &state])
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

#[test]
fn a_silent_partition_heals_to_one_holder_the_one_that_took_it_last() {
    let mut net = Net::new(3, 2);
    start_both(&mut net, &[]);
    partition(&net);
    wait_until("both hold it during the partition", Duration::from_secs(3), || {
        holders(&net) == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let healed = Instant::now();
    heal(&net);
    let took = settles_on_one(&net, healed, "silent partition");
    // Without --failback the node that took it over last keeps it: nothing moves back.
    assert!(holds(&net, 2), "n2 took it last\n{}", log_of(&net, 1));
    eprintln!("silent partition healed to one holder in {took:?}");
}

#[test]
fn with_failback_the_preferred_node_keeps_it_after_a_heal() {
    let mut net = Net::new(3, 2);
    start_both(&mut net, &["--failback"]);
    partition(&net);
    wait_until("both hold it during the partition", Duration::from_secs(3), || {
        holders(&net) == 2
    });
    let healed = Instant::now();
    heal(&net);
    settles_on_one(&net, healed, "failback partition");
    assert!(holds(&net, 1), "the preferred node keeps it\n{}", log_of(&net, 2));
}

#[test]
fn a_partition_by_carrier_loss_heals_to_one_holder() {
    let mut net = Net::new(3, 2);
    start_both(&mut net, &[]);
    // n2's cables are pulled: it holds the address alone on its dead links, as does n1.
    net.cut(2, 0);
    net.cut(2, 1);
    wait_until("n2 takes it on its side", Duration::from_secs(3), || holds(&net, 2));
    let healed = Instant::now();
    net.mend(2, 0);
    net.mend(2, 1);
    settles_on_one(&net, healed, "carrier partition");
}

#[test]
fn a_flapping_partition_never_leaves_two_holders_once_a_heal_settles() {
    let mut net = Net::new(3, 2);
    let c = start(
        &net,
        1,
        &["--keepalive", "20ms", "--deadtime", "100ms", "--preferred"],
        &["--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1"],
    );
    net.adopt(c);
    let c = start(
        &net,
        2,
        &["--keepalive", "20ms", "--deadtime", "100ms"],
        &["--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1"],
    );
    net.adopt(c);
    wait_until("the preferred node takes the address", Duration::from_secs(5), || {
        holds(&net, 1)
    });
    std::thread::sleep(Duration::from_millis(300));
    // Settled: deadtime + 2 keepalives after the heal, and a margin for a busy host.
    let settle = Duration::from_millis(100 + 40 + 60);
    let end = Instant::now() + Duration::from_secs(10);
    let (mut heals, mut samples) = (0, 0);
    while Instant::now() < end {
        partition(&net);
        std::thread::sleep(Duration::from_millis(300));
        heal(&net);
        let healed = Instant::now();
        heals += 1;
        std::thread::sleep(settle);
        while healed.elapsed() < Duration::from_millis(300) {
            let n = holders(&net);
            samples += 1;
            assert_eq!(
                n,
                1,
                "heal {heals}: {n} holders {:?} after it\n{}\n{}",
                healed.elapsed(),
                log_of(&net, 1),
                log_of(&net, 2)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(heals >= 10 && samples >= 20, "{heals} heals, {samples} samples");
    // The partitions were long enough for takeovers: the heals had two holders to mend.
    let takes = log_of(&net, 2).matches("taking").count();
    assert!(takes >= 3, "n2 took over {takes} times\n{}", log_of(&net, 2));
}

#[test]
fn the_side_that_reaches_no_ping_node_gives_the_address_up() {
    let mut net = Net::new(3, 2);
    start_both(
        &mut net,
        &["--ping", GW, "--ping-interval", "100ms", "--ping-deadtime", "350ms"],
    );
    // n3 answers pings: both sides reach it. Then n1 loses it (its echo requests are
    // dropped on the way out; its heartbeats still pass).
    wait_until("n2 hears that n1 reaches the gateway", Duration::from_secs(3), || {
        status_of(&net, 2, "n1").contains("pings=1/1")
    });
    net.nft(
        net.ns(1),
        &format!("table inet hkping {{\n  chain out {{\n    type filter hook output priority 0;\n    ip daddr {GW} icmp type echo-request drop\n  }}\n}}\n"),
    );
    let gave = wait_for(|| holds(&net, 2) && !holds(&net, 1), Duration::from_secs(3));
    assert!(
        gave,
        "n1 gives the address up to n2\n{}\n{}\n{}",
        log_of(&net, 1),
        log_of(&net, 2),
        status_of(&net, 1, "n2")
    );
    wait_until("the client follows", Duration::from_secs(5), || client_reaches(&net));
    assert!(
        log_of(&net, 1).contains("no ping node answers here"),
        "{}",
        log_of(&net, 1)
    );
    // n2 now loses its cables: n1 is alone and takes it, ping nodes or not.
    net.cut(2, 0);
    net.cut(2, 1);
    wait_until("n1 takes it from a dead peer", Duration::from_secs(3), || {
        holds(&net, 1)
    });
}

/// `hb-watch status NODE` on node `n`, from that pair's table.
fn status_of(net: &Net, n: usize, node: &str) -> String {
    let t = net.path(&format!("pair{n}/ast")).display().to_string();
    String::from_utf8_lossy(&net.run(net.ns(n), &bin("hb-watch"), &["status", "-t", &t, node]).stdout).into_owned()
}

/// A fence program that records its arguments and then does `how`.
fn fence(net: &Net, how: &str) -> String {
    let p = net.path("fence");
    let rec = net.path("fenced");
    std::fs::write(&p, format!("#!/bin/sh\necho \"$@\" >> {}\n{how}\n", rec.display())).unwrap();
    set_mode(&p, 0o755);
    p.display().to_string()
}

fn fenced(net: &Net) -> String {
    std::fs::read_to_string(net.path("fenced")).unwrap_or_default()
}

#[test]
fn a_fence_that_succeeds_comes_before_the_takeover() {
    let mut net = Net::new(3, 2);
    let f = fence(&net, "exit 0");
    start_both(&mut net, &["--fence", &f]);
    net.cut(1, 0);
    net.cut(1, 1);
    wait_until("n2 takes over after fencing", Duration::from_secs(3), || holds(&net, 2));
    assert_eq!(fenced(&net).trim(), format!("n1 {CIDR}"));
}

#[test]
fn a_fence_that_fails_or_hangs_stops_the_takeover_unless_optional() {
    let mut net = Net::new(3, 2);
    let f = fence(&net, "exit 1");
    start_both(&mut net, &["--fence", &f]);
    net.cut(1, 0);
    net.cut(1, 1);
    wait_until("the fence ran", Duration::from_secs(3), || !fenced(&net).is_empty());
    std::thread::sleep(Duration::from_millis(800));
    assert!(!holds(&net, 2), "no takeover after a failed fence\n{}", log_of(&net, 2));
    assert!(log_of(&net, 2).contains("NOT taking"), "{}", log_of(&net, 2));
    drop(net);

    let mut net = Net::new(3, 2);
    let f = fence(&net, "exec sleep 60");
    start_both(&mut net, &["--fence", &f, "--fence-timeout", "1s"]);
    net.cut(1, 0);
    net.cut(1, 1);
    wait_until("the fence ran", Duration::from_secs(3), || !fenced(&net).is_empty());
    let t = Instant::now();
    wait_until("a hung fence is given up", Duration::from_secs(4), || {
        log_of(&net, 2).contains("NOT taking")
    });
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "the time limit was kept: {:?}",
        t.elapsed()
    );
    assert!(!holds(&net, 2));
    drop(net);

    let mut net = Net::new(3, 2);
    let f = fence(&net, "exit 3");
    start_both(&mut net, &["--fence", &f, "--fence-optional"]);
    net.cut(1, 0);
    net.cut(1, 1);
    wait_until("--fence-optional takes over anyway", Duration::from_secs(3), || {
        holds(&net, 2)
    });
}

/// Wait for a child's exit status, at most `within`.
fn exit_of(c: &mut Child, within: Duration) -> Option<i32> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_pair_whose_sender_refuses_to_start_stops_and_holds_nothing() {
    let net = Net::new(3, 1);
    // hb-send refuses a deadtime that is not above twice the keepalive; hb-watch,
    // which gets only the deadtime, would start.
    let mut c = start(
        &net,
        1,
        &["--keepalive", "200ms", "--deadtime", "300ms", "--preferred"],
        &["--channel", "a=bcast:eth0"],
    );
    let code = exit_of(&mut c, Duration::from_secs(5));
    assert_eq!(code, Some(1), "the pair stops, nonzero\n{}", log_of(&net, 1));
    assert!(!holds(&net, 1));
    assert!(log_of(&net, 1).contains("hb-send exited"), "{}", log_of(&net, 1));
}

#[test]
fn a_pair_whose_watcher_dies_releases_and_stops_and_the_peer_takes_over() {
    let mut net = Net::new(3, 2);
    let chans = ["--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1"];
    let mut one = start(
        &net,
        1,
        &["--keepalive", "50ms", "--deadtime", "300ms", "--preferred"],
        &chans,
    );
    let c = start(&net, 2, &["--keepalive", "50ms", "--deadtime", "300ms"], &chans);
    net.adopt(c);
    wait_until("n1 takes the address", Duration::from_secs(5), || holds(&net, 1));
    let table = net.path("pair1/ast");
    let pid = hakit::table::TableReader::open(&table)
        .unwrap()
        .header()
        .unwrap()
        .writer_pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let code = exit_of(&mut one, Duration::from_secs(5));
    assert_eq!(code, Some(1), "{}", log_of(&net, 1));
    assert!(!holds(&net, 1), "released");
    assert!(log_of(&net, 1).contains("hb-watch exited"), "{}", log_of(&net, 1));
    wait_until("n2 takes over", Duration::from_secs(3), || holds(&net, 2));
    wait_until("the client follows", Duration::from_secs(5), || client_reaches(&net));
}

#[test]
fn a_pair_stopped_cleanly_hands_over_without_being_fenced() {
    let mut net = Net::new(3, 2);
    let f = fence(&net, "exit 0");
    let chans = ["--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1"];
    let fast = ["--keepalive", "50ms", "--deadtime", "300ms", "--fence", &f];
    let one: Vec<&str> = fast.iter().chain(&["--preferred"]).copied().collect();
    let mut c1 = start(&net, 1, &one, &chans);
    let c2 = start(&net, 2, &fast, &chans);
    net.adopt(c2);
    wait_until("n1 takes the address", Duration::from_secs(5), || holds(&net, 1));
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c1.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(exit_of(&mut c1, Duration::from_secs(5)), Some(0), "{}", log_of(&net, 1));
    assert!(!holds(&net, 1));
    wait_until("n2 takes over", Duration::from_secs(3), || holds(&net, 2));
    // n1 said it held nothing as it went: nothing to fence.
    assert_eq!(fenced(&net), "", "{}", log_of(&net, 2));
}
