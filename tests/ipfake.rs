//! ipfake in network namespaces: the address moves and a client follows it, the probe
//! refuses a taken address, SIGTERM releases, `down` cleans up after SIGKILL.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::process::{Command, Stdio};
use std::time::Duration;

const VIP: &str = "10.77.1.100";

fn neigh(net: &Net, node: usize) -> Option<String> {
    net.neigh(node, VIP)
}

fn mac(net: &Net, node: usize) -> String {
    net.mac(node)
}

/// `ip addr show dev eth0` in a namespace.
fn eth0_addrs(ns: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_vip(net: &Net, node: usize) -> bool {
    net.has_addr(node, &format!("{VIP}/24"))
}

#[test]
fn the_address_moves_and_a_client_follows() {
    let mut net = Net::new(3, 1);
    let piddir = |n: usize| net.path(&format!("pids{n}")).display().to_string();
    let (p1, p2) = (piddir(1), piddir(2));
    let vip = format!("{VIP}/24");
    let ns1 = net.ns(1).to_string();
    let up1: Vec<String> = [
        "--pid-dir",
        &p1,
        "up",
        &vip,
        "dev",
        "eth0",
        "--refresh",
        "200ms",
        "--label",
        "eth0:vip",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let h1 = net.spawn(&ns1, &bin("ipfake"), &up1, Stdio::null());
    assert!(
        wait_for(|| has_vip(&net, 1), Duration::from_secs(2)),
        "n1 holds the address"
    );
    let st = net.run(&ns1, &bin("ipfake"), &["--pid-dir", &p1, "status", VIP]);
    assert_eq!(st.status.code(), Some(0), "{}", String::from_utf8_lossy(&st.stdout));
    // The client talks to it.
    assert!(net.pings(3, VIP));
    assert_eq!(neigh(&net, 3), Some(mac(&net, 1)));
    // Another host probing finds it taken, and ipfake refuses it.
    let ns2 = net.ns(2).to_string();
    let out = net.run(
        &ns2,
        &bin("ipfake"),
        &["--pid-dir", &p2, "up", &vip, "dev", "eth0", "--probe", "--once"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&mac(&net, 1)));
    assert!(!has_vip(&net, 2), "nothing was added");
    // n1 dies (its cable is pulled); n2 takes over. Past the neighbour locktime (1 s)
    // the client's cache follows the announcement at once, without waiting for expiry.
    std::thread::sleep(Duration::from_millis(1100));
    net.cut(1, 0);
    let out = net.run(
        &ns2,
        &bin("ipfake"),
        &[
            "--pid-dir",
            &p2,
            "up",
            &vip,
            "dev",
            "eth0",
            "--probe",
            "--once",
            "--count",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        wait_for(|| neigh(&net, 3) == Some(mac(&net, 2)), Duration::from_millis(200)),
        "the client follows"
    );
    assert!(net.pings(3, VIP), "the client reaches the new holder");
    // SIGTERM releases: the address and the pid file go.
    net.kill(h1, Signal::SIGTERM);
    assert!(
        wait_for(|| !has_vip(&net, 1), Duration::from_secs(2)),
        "released on SIGTERM"
    );
    assert!(!std::path::Path::new(&p1).join(format!("ipfake.{VIP}.pid")).exists());
}

#[test]
fn down_cleans_up_after_sigkill_and_bad_input_is_refused() {
    let mut net = Net::new(1, 1);
    let p = net.path("pids").display().to_string();
    let vip = format!("{VIP}/24");
    let ns = net.ns(1).to_string();
    let args: Vec<String> = ["--pid-dir", &p, "up", &vip, "dev", "eth0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let h = net.spawn(&ns, &bin("ipfake"), &args, Stdio::null());
    // The pid file comes after the address and its first announcement: killed before
    // it, there would be no stale record to find.
    let pid_file = net.path("pids").join(format!("ipfake.{VIP}.pid"));
    assert!(wait_for(
        || has_vip(&net, 1) && pid_file.exists(),
        Duration::from_secs(2)
    ));
    net.kill(h, Signal::SIGKILL);
    // SIGKILL leaves the address and a stale pid file: status says so, down cleans up.
    let st = net.run(&ns, &bin("ipfake"), &["--pid-dir", &p, "status", VIP]);
    assert_eq!(st.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&st.stdout).contains("stale"),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );
    assert!(has_vip(&net, 1));
    let out = net.run(&ns, &bin("ipfake"), &["--pid-dir", &p, "down", VIP]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!has_vip(&net, 1));
    // Bad input: one line, exit 2, nothing added.
    for (args, what) in [
        (vec!["up", &vip as &str, "dev", "nosuch0"], "no interface `nosuch0`"),
        (vec!["up", "2001:db8::1/129", "dev", "eth0"], "prefix length"),
        (vec!["up", VIP, "dev", "eth0"], "no prefix length"),
        (vec!["up", "10.77.1.100/33", "dev", "eth0"], "prefix length"),
    ] {
        let mut a = vec!["--pid-dir", &p];
        a.extend(args);
        let out = net.run(&ns, &bin("ipfake"), &a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(what), "{a:?}: {err}");
    }
    assert!(!has_vip(&net, 1));
}

#[test]
fn ipv6_moves_the_same_way() {
    let net = Net::new(3, 1);
    const V6: &str = "2001:db8:77::100";
    for i in 1..=3 {
        net.ip(
            net.ns(i),
            &[
                "-6",
                "addr",
                "add",
                &format!("2001:db8:77::{i}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
    }
    let vip = format!("{V6}/64");
    let neigh6 = |net: &Net| {
        let out = Command::new("ip")
            .args(["-n", net.ns(3), "-6", "neigh", "show", V6, "dev", "eth0"])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&out.stdout).to_string();
        t.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_string)
    };
    let p = net.path("pids").display().to_string();
    let out = net.run(
        net.ns(1),
        &bin("ipfake"),
        &["--pid-dir", &p, "up", &vip, "dev", "eth0", "--once", "--count", "1"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ping = |net: &Net| net.pings(3, V6);
    assert!(ping(&net), "the client reaches n1");
    assert_eq!(neigh6(&net), Some(mac(&net, 1)));
    // DAD from n2 finds the address taken.
    let out = net.run(
        net.ns(2),
        &bin("ipfake"),
        &["--pid-dir", &p, "up", &vip, "dev", "eth0", "--probe", "--once"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // n1 goes away; n2 takes over; the unsolicited advertisement moves the client.
    net.cut(1, 0);
    let out = net.run(
        net.ns(2),
        &bin("ipfake"),
        &["--pid-dir", &p, "up", &vip, "dev", "eth0", "--once", "--count", "1"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        wait_for(|| neigh6(&net) == Some(mac(&net, 2)), Duration::from_millis(500)),
        "the client follows: {:?}",
        neigh6(&net)
    );
    assert!(ping(&net), "the client reaches n2");
}

#[test]
fn release_hands_the_address_back_to_its_owner() {
    // Fake's FOREIGN_ARP: n1 owns the address, n2 holds it for a while, then gives it
    // back and tells the LAN that it is at n1's MAC again.
    let mut net = Net::new(3, 1);
    let vip = format!("{VIP}/24");
    net.ip(net.ns(1), &["addr", "add", &vip, "dev", "eth0"]);
    let ping = |net: &Net| net.pings(3, VIP);
    assert!(ping(&net));
    assert_eq!(neigh(&net, 3), Some(mac(&net, 1)));
    std::thread::sleep(Duration::from_millis(1100));
    // n1 steps aside (its address taken down); n2 takes over.
    net.ip(net.ns(1), &["addr", "del", &vip, "dev", "eth0"]);
    let p = net.path("pids").display().to_string();
    let ns2 = net.ns(2).to_string();
    let args: Vec<String> = ["--pid-dir", &p, "up", &vip, "dev", "eth0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    net.spawn(&ns2, &bin("ipfake"), &args, Stdio::null());
    assert!(
        wait_for(|| neigh(&net, 3) == Some(mac(&net, 2)), Duration::from_secs(2)),
        "the client follows n2"
    );
    std::thread::sleep(Duration::from_millis(1100));
    // n1 is back: n2 releases and hands the address back to n1's MAC.
    net.ip(net.ns(1), &["addr", "add", &vip, "dev", "eth0"]);
    let owner = mac(&net, 1);
    let out = net.run(
        &ns2,
        &bin("ipfake"),
        &["--pid-dir", &p, "down", VIP, "--owner-mac", &owner],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!has_vip(&net, 2));
    assert!(
        wait_for(|| neigh(&net, 3) == Some(owner.clone()), Duration::from_millis(300)),
        "the client is back at n1 at once"
    );
    assert!(ping(&net));
}

#[test]
fn a_fake_setup_moves_over_unchanged() {
    let mut net = Net::new(1, 1);
    let dir = net.path("fake");
    std::fs::create_dir_all(dir.join("instance_config")).unwrap();
    std::fs::write(
        dir.join(".fakerc"),
        format!("ARP_DELAY=1\nPID_DIR={}\n", dir.join("run").display()),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("instance_config/{VIP}.cfg")),
        format!("SPOOF_IP={VIP}\nTARGET_INTERFACE=eth0:2\nSPOOF_NETMASK=255.255.255.0\nSPOOF_BROADCAST=10.77.1.255\n"),
    )
    .unwrap();
    let rc = dir.join(".fakerc").display().to_string();
    let ns = net.ns(1).to_string();
    let args: Vec<String> = ["fake", "--rc", &rc, VIP].iter().map(|s| s.to_string()).collect();
    net.spawn(&ns, &bin("ipfake"), &args, Stdio::null());
    assert!(wait_for(|| has_vip(&net, 1), Duration::from_secs(2)));
    let out = Command::new("ip")
        .args(["-n", &ns, "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("eth0:2"),
        "Fake's label is kept"
    );
    let out = net.run(&ns, &bin("ipfake"), &["fake", "--rc", &rc, "--remove", VIP]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!has_vip(&net, 1));
    // A Fake config with a variable missing: one line naming the file, exit 2.
    std::fs::write(dir.join("instance_config/10.77.1.101.cfg"), "SPOOF_IP=10.77.1.101\n").unwrap();
    let out = net.run(&ns, &bin("ipfake"), &["fake", "--rc", &rc, "10.77.1.101"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TARGET_INTERFACE is not set"));
}

#[test]
fn addresses_from_the_configuration() {
    let net = Net::new(1, 1);
    let cfg = net.path("hakit.yaml");
    let pids = net.path("pids");
    std::fs::write(
        &cfg,
        format!(
            "ipfake:\n  pid-dir: {}\n  addresses:\n    - {{addr: {VIP}/24, dev: eth0, label: 'eth0:web', count: 2, interval: 10ms}}\n    - {{addr: 10.77.1.101/24, dev: eth0}}\n",
            pids.display()
        ),
    )
    .unwrap();
    let c = cfg.display().to_string();
    let ns = net.ns(1).to_string();
    for a in [VIP, "10.77.1.101"] {
        let out = net.run(&ns, &bin("ipfake"), &["-c", &c, "up", a, "--once"]);
        assert!(out.status.success(), "{a}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = eth0_addrs(&ns);
    assert!(
        text.contains("10.77.1.100/24") && text.contains("eth0:web") && text.contains("10.77.1.101/24"),
        "{text}"
    );
    // An address without an entry and without a prefix; a bad entry: file, line, column.
    let out = net.run(&ns, &bin("ipfake"), &["-c", &c, "up", "10.77.1.102", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(
        &cfg,
        "ipfake:\n  addresses:\n    - {addr: 10.77.1.100/24, dev: eth0, burst: 3}\n",
    )
    .unwrap();
    let out = net.run(&ns, &bin("ipfake"), &["-c", &c, "up", VIP, "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{c}:3:")) && err.contains("burst"), "{err}");
}

/// Heartbeat's haresources as ipfake's addresses: an IPaddr and an IPaddr2 resource
/// of either node's line are taken over as IPaddr would (prefix, device, label), and a
/// client reaches the address; the scripts on the line are named and skipped.
#[test]
fn addresses_from_heartbeats_haresources() {
    let net = Net::new(2, 1);
    let hr = net.path("haresources");
    std::fs::write(
        &hr,
        format!("n2 IPaddr::{VIP}/24/eth0:web httpd\nn1 IPaddr2::10.77.1.101/24/eth0 \\\n  Filesystem::/dev/sda1::/data::ext4\n"),
    )
    .unwrap();
    let (h, p) = (hr.display().to_string(), net.path("pids").display().to_string());
    let empty = net.path("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let c = empty.display().to_string();
    let ns = net.ns(1).to_string();
    for a in [VIP, "10.77.1.101"] {
        let out = net.run(
            &ns,
            &bin("ipfake"),
            &[
                "-c",
                &c,
                "--haresources",
                &h,
                "--pid-dir",
                &p,
                "up",
                a,
                "--once",
                "--count",
                "1",
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{a}: {err}");
        assert!(
            err.contains(&format!("{h}:1:")) && err.contains("`httpd` skipped"),
            "{err}"
        );
        assert!(
            err.contains(&format!("{h}:3:3: `Filesystem::/dev/sda1::/data::ext4` skipped")),
            "{err}"
        );
    }
    let text = eth0_addrs(&ns);
    assert!(
        text.contains(&format!("{VIP}/24")) && text.contains("eth0:web") && text.contains("10.77.1.101/24"),
        "{text}"
    );
    assert!(net.pings(2, VIP), "node 2 reaches the address taken from haresources");
}

/// A holder whose cable is out keeps the address, and a burst that went nowhere is sent
/// once the link takes frames again: a pulled cable for a moment is not a release.
#[test]
fn a_pulled_cable_keeps_the_address_and_announces_it_when_back() {
    let mut net = Net::new(2, 1);
    let p1 = net.path("pids1").display().to_string();
    let ns1 = net.ns(1).to_string();
    // The client's entry names another MAC: only our announcement can correct it.
    let stale = "02:00:5e:00:53:99";
    net.ip(
        net.ns(2),
        &["neigh", "replace", VIP, "lladdr", stale, "dev", "eth0", "nud", "stale"],
    );
    net.cut(1, 0);
    let args: Vec<String> = [
        "--pid-dir",
        &p1,
        "up",
        &format!("{VIP}/24"),
        "dev",
        "eth0",
        "--interval",
        "50ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let h = net.spawn(&ns1, &bin("ipfake"), &args, Stdio::null());
    assert!(
        wait_for(|| has_vip(&net, 1), Duration::from_secs(2)),
        "n1 holds the address"
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!process_gone(h as i32), "ipfake is still holding with the cable out");
    assert!(has_vip(&net, 1), "the address stays while the cable is out");
    assert_eq!(neigh(&net, 2).as_deref(), Some(stale), "nothing reached the client yet");
    net.mend(1, 0);
    assert!(
        wait_for(|| neigh(&net, 2) == Some(mac(&net, 1)), Duration::from_secs(3)),
        "the owed announcements reach the client once the cable is back: {:?}",
        neigh(&net, 2)
    );
    // A burst that went out is not repeated after a later blip: a holder cut off may
    // have been replaced meanwhile. The client takes a gratuitous ARP at once, so the
    // entry staying stale says none came.
    std::thread::sleep(Duration::from_millis(500)); // the owed burst's end
    net.ip(
        net.ns(2),
        &["neigh", "replace", VIP, "lladdr", stale, "dev", "eth0", "nud", "stale"],
    );
    net.cut(1, 0);
    std::thread::sleep(Duration::from_millis(300));
    net.mend(1, 0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(neigh(&net, 2).as_deref(), Some(stale), "no burst again after a blip");
    net.kill(h, Signal::SIGTERM);
    assert!(
        wait_for(|| !has_vip(&net, 1), Duration::from_secs(2)),
        "released on SIGTERM"
    );
}
