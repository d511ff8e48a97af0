//! arp-announce in network namespaces: its frames against iputils arping's, a client's
//! ARP cache following an announcement, aimed announcements, and the probe.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn arp_announce() -> std::path::PathBuf {
    bin("arp-announce")
}

/// The frames of a pcap file (classic format, as tcpdump -w writes it).
fn pcap_frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() >= 24, "no pcap header in {}", path.display());
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= b.len() {
        let incl = u32::from_le_bytes(b[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 16;
        out.push(b[pos..pos + incl].to_vec());
        pos += incl;
    }
    out
}

/// Capture ARP on a node's eth0 while `f` runs.
fn capture(net: &Net, node: usize, name: &str, f: impl FnOnce()) -> Vec<Vec<u8>> {
    let file = net.path(name);
    let mut tcpdump = Command::new("ip")
        .args([
            "netns",
            "exec",
            net.ns(node),
            "tcpdump",
            "-i",
            "eth0",
            "-U",
            "--immediate-mode",
            "-n",
            "-w",
        ])
        .arg(&file)
        .arg("arp")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    f();
    std::thread::sleep(Duration::from_millis(300));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tcpdump.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    tcpdump.wait().unwrap();
    pcap_frames(&file)
}

fn mac_of(net: &Net, node: usize) -> [u8; 6] {
    let v: Vec<u8> = net
        .mac(node)
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

#[test]
fn frames_match_arping_field_by_field() {
    assert!(
        std::path::Path::new("/usr/bin/arping").exists(),
        "iputils-arping is not installed: contrib/deps.sh installs it"
    );
    let net = Net::new(2, 1);
    let ns1 = net.ns(1).to_string();
    let vip = "10.77.1.100";
    // iputils arping -U/-A binds to the address it announces: it must be ours.
    net.ip(&ns1, &["addr", "add", &format!("{vip}/24"), "dev", "eth0"]);
    let run = |args: &[&str]| {
        let st = Command::new("ip")
            .args(["netns", "exec", &ns1])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}");
    };
    let ours = capture(&net, 2, "ours.pcap", || {
        run(&[arp_announce().to_str().unwrap(), "-i", "eth0", "--count", "1", vip]);
    });
    let unsolicited = capture(&net, 2, "arping-U.pcap", || {
        run(&["arping", "-U", "-I", "eth0", "-c", "1", vip])
    });
    let answer = capture(&net, 2, "arping-A.pcap", || {
        run(&["arping", "-A", "-I", "eth0", "-c", "1", vip])
    });
    // Heartbeat's own send_arp (resource-agents), as IPaddr2 calls it.
    let send_arp = "/usr/libexec/heartbeat/send_arp";
    assert!(
        std::path::Path::new(send_arp).exists(),
        "send_arp comes with resource-agents, which heartbeat pulls in"
    );
    let theirs = capture(&net, 2, "send_arp.pcap", || {
        run(&[
            send_arp, "-i", "10", "-r", "1", "eth0", vip, "auto", "not_used", "not_used",
        ])
    });
    assert_eq!(ours.len(), 2, "one pair: {ours:?}");
    assert!(!unsolicited.is_empty() && !answer.is_empty());
    let (req, rep) = (&ours[0][..42], &ours[1][..42]);
    let u = &unsolicited[0][..42];
    let a = &answer[0][..42];
    // Request vs arping -U: everything equal but the target MAC, which RFC 5227 and
    // send_arp leave zero where iputils writes ff:ff:ff:ff:ff:ff.
    assert_eq!(&req[..32], &u[..32], "ethernet header, ARP header, sender MAC and IP");
    assert_eq!(&req[32..38], &[0; 6]);
    assert_eq!(&u[32..38], &[0xff; 6]);
    assert_eq!(&req[38..42], &u[38..42], "target IP");
    // Reply vs arping -A: identical.
    assert_eq!(rep, a, "reply frames");
    // Against Heartbeat's send_arp pair: identical, request and reply.
    assert_eq!(theirs.len(), 2, "send_arp sends a pair");
    assert_eq!(&theirs[0][..42], req, "request frames vs send_arp");
    assert_eq!(&theirs[1][..42], rep, "reply frames vs send_arp");
    assert_eq!(&rep[6..12], &mac_of(&net, 1));
}

fn neigh_mac(net: &Net, node: usize, ip: &str) -> Option<String> {
    net.neigh(node, ip)
}

#[test]
fn a_client_follows_the_address_and_aimed_frames_reach_only_their_target() {
    let net = Net::new(4, 1);
    let vip = "10.77.1.100";
    // n1 holds the address; clients n3 and n4 learn its MAC.
    net.ip(net.ns(1), &["addr", "add", &format!("{vip}/24"), "dev", "eth0"]);
    for c in [3, 4] {
        let st = Command::new("ip")
            .args(["netns", "exec", net.ns(c), "ping", "-c", "1", "-W", "1", vip])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let m1 = mac_of(&net, 1);
    let m2 = mac_of(&net, 2);
    let fmt = |m: [u8; 6]| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    assert_eq!(neigh_mac(&net, 3, vip).as_deref(), Some(fmt(m1).as_str()));
    // Linux ignores a new MAC for an entry updated less than locktime (1 s) ago.
    std::thread::sleep(Duration::from_millis(1100));
    // The address moves to n2, announced to n3 only.
    net.ip(net.ns(1), &["addr", "del", &format!("{vip}/24"), "dev", "eth0"]);
    net.ip(net.ns(2), &["addr", "add", &format!("{vip}/24"), "dev", "eth0"]);
    let to3 = fmt(mac_of(&net, 3));
    let out = net.run(
        net.ns(2),
        &arp_announce(),
        &["-i", "eth0", "--count", "1", "--to", &to3, vip],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        neigh_mac(&net, 3, vip).as_deref(),
        Some(fmt(m2).as_str()),
        "the aimed client follows at once"
    );
    assert_eq!(
        neigh_mac(&net, 4, vip).as_deref(),
        Some(fmt(m1).as_str()),
        "the other client did not get the aimed frames"
    );
    // A broadcast announcement reaches n4 too.
    let out = net.run(net.ns(2), &arp_announce(), &["-i", "eth0", "--count", "1", vip]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(neigh_mac(&net, 4, vip).as_deref(), Some(fmt(m2).as_str()));
    // Handing the address back: announce n1's MAC from n2 (Fake's FOREIGN_ARP).
    std::thread::sleep(Duration::from_millis(1100));
    let out = net.run(
        net.ns(2),
        &arp_announce(),
        &["-i", "eth0", "--count", "1", "--mac", &fmt(m1), vip],
    );
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(neigh_mac(&net, 4, vip).as_deref(), Some(fmt(m1).as_str()));
}

#[test]
fn probe_finds_a_taken_address() {
    let net = Net::new(2, 1);
    let out = net.run(net.ns(1), &arp_announce(), &["probe", "-i", "eth0", "10.77.1.2"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let m2 = mac_of(&net, 2)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(text.contains(&m2), "{text}");
    let out = net.run(net.ns(1), &arp_announce(), &["probe", "-i", "eth0", "10.77.1.200"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // Bad input: a missing interface is a usage error.
    let out = net.run(net.ns(1), &arp_announce(), &["-i", "nosuch0", "10.77.1.200"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no interface `nosuch0`"));
}
