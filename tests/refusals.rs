//! Hostile or mistaken input refused at once (issue 9, items 6, 7 and 9): special
//! addresses and MACs, keys files that are not ours or not files, files nested too
//! deep, and the refusals that used to be slow or say the wrong thing. Each is one
//! line naming the flag or the file:line:column, the documented exit status, nothing
//! changed. Each test here failed before its fix.

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run a command; kill it (it is ours) if it has not finished within `limit`. Its
/// output either way, and whether it finished by itself.
fn run_for(cmd: &mut Command, limit: Duration) -> (Output, bool) {
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + limit;
    let mut finished = false;
    while Instant::now() < end {
        if child.try_wait().unwrap().is_some() {
            finished = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if !finished {
        let _ = child.kill();
    }
    (child.wait_with_output().unwrap(), finished)
}

fn run_within(cmd: &mut Command, limit: Duration) -> Option<Output> {
    match run_for(cmd, limit) {
        (o, true) => Some(o),
        (_, false) => None,
    }
}

/// A tool inside a namespace (`ip netns exec` execs it: the child is the tool).
fn in_ns(ns: &str, tool: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(bin(tool)).args(args);
    c
}

fn run_ns(ns: &str, tool: &str, args: &[&str]) -> Output {
    run_within(&mut in_ns(ns, tool, args), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{tool} {args:?} did not finish within 10 s"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Frames sent on a node's eth0 so far (the namespace's own sysfs).
fn tx_packets(net: &Net, node: usize) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            net.ns(node),
            "cat",
            "/sys/class/net/eth0/statistics/tx_packets",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Every address of a node's eth0, as `ip` lists them.
fn addrs(net: &Net, node: usize) -> String {
    let out = Command::new("ip")
        .args(["-n", net.ns(node), "-o", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One node whose eth0 sends nothing on its own (no IPv6: no router solicitations,
/// no MLD reports), so that any frame counted was sent by the tool under test.
fn quiet_net() -> Net {
    let net = Net::new(1, 1);
    sh(&[
        "ip",
        "netns",
        "exec",
        net.ns(1),
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=1",
    ]);
    sh(&[
        "ip",
        "netns",
        "exec",
        net.ns(1),
        "sysctl",
        "-qw",
        "net.ipv6.conf.eth0.disable_ipv6=1",
    ]);
    net
}

/// A refusal: exit `code`, its first line contains every one of `want`, and (for the
/// tools' own errors, `one_line`) it is the only line.
fn assert_refused(what: &str, o: &Output, code: i32, want: &[&str], one_line: bool) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    let first = err.lines().next().unwrap_or("");
    for w in want {
        assert!(first.contains(w), "{what}: `{w}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{what}: {err}");
    if one_line {
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    }
}

// ---- item 6: special addresses and MACs ----

#[test]
fn ipfake_refuses_addresses_that_are_not_one_hosts() {
    let net = quiet_net();
    let ns = net.ns(1).to_string();
    let p = net.path("pids").display().to_string();
    let before = addrs(&net, 1);
    let tx = tx_packets(&net, 1);
    for (addr, why) in [
        ("0.0.0.0/0", "unspecified"),
        ("0.0.0.0/24", "unspecified"),
        ("224.0.0.1/32", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("127.0.0.5/8", "loopback"),
        ("10.77.1.100/0", "/0"),
        ("10.77.1.255/24", "broadcast address of 10.77.1.0/24"),
        ("10.77.1.0/24", "network address of 10.77.1.0/24"),
        ("::/64", "unspecified"),
        ("::1/128", "loopback"),
        ("ff02::1/128", "multicast"),
        ("ff05::2/64", "multicast"),
        ("2001:db8::5/0", "/0"),
        ("::ffff:10.77.1.100/128", "IPv4-mapped"),
    ] {
        let o = run_ns(&ns, "ipfake", &["--pid-dir", &p, "up", addr, "dev", "eth0", "--once"]);
        assert_refused(addr, &o, 2, &[addr, why], true);
    }
    // /31 and /32 have no network or broadcast address: their ends are hosts.
    let o = run_ns(
        &ns,
        "ipfake",
        &[
            "--pid-dir",
            &p,
            "up",
            "10.77.2.0/31",
            "dev",
            "eth0",
            "--once",
            "--count",
            "1",
        ],
    );
    assert!(o.status.success(), "10.77.2.0/31: {}", stderr(&o));
    net.ip(&ns, &["addr", "del", "10.77.2.0/31", "dev", "eth0"]);
    assert!(
        tx_packets(&net, 1) > tx,
        "a good address is announced (the counter works)"
    );
    let tx = tx_packets(&net, 1);
    // From the configuration: file:line:column of the entry's key.
    let cfg = net.path("hakit.yaml");
    std::fs::write(
        &cfg,
        "ipfake:\n  addresses:\n    - addr: 10.77.1.100/24\n      dev: eth0\n    - addr: 224.0.0.9/32\n      dev: eth0\n",
    )
    .unwrap();
    let c = cfg.display().to_string();
    let o = run_ns(&ns, "ipfake", &["-c", &c, "--pid-dir", &p, "up", "224.0.0.9", "--once"]);
    assert_refused(
        "224.0.0.9 from the file",
        &o,
        2,
        &[&format!("{c}:5:7:"), "multicast"],
        true,
    );
    assert_eq!(addrs(&net, 1), before, "no address added");
    assert_eq!(tx_packets(&net, 1), tx, "no frame sent");
}

#[test]
fn broadcast_multicast_and_zero_macs_are_refused_everywhere() {
    let net = quiet_net();
    let ns = net.ns(1).to_string();
    let p = net.path("pids").display().to_string();
    let before = addrs(&net, 1);
    let tx = tx_packets(&net, 1);
    for (flag, mac, why) in [
        ("--mac", "ff:ff:ff:ff:ff:ff", "broadcast"),
        ("--mac", "01:00:5e:00:00:01", "multicast"),
        ("--mac", "33:33:00:00:00:01", "multicast"),
        ("--mac", "00:00:00:00:00:00", "all-zero"),
        ("--to", "01:80:c2:00:00:00", "multicast"),
    ] {
        let o = run_ns(&ns, "arp-announce", &["-i", "eth0", flag, mac, "10.77.1.100"]);
        // clap's own error: its first line names the flag; its usual hint follows.
        assert_refused(&format!("{flag} {mac}"), &o, 2, &[flag, mac, why], false);
    }
    let o = run_ns(
        &ns,
        "ipfake",
        &[
            "--pid-dir",
            &p,
            "up",
            "10.77.1.100/24",
            "dev",
            "eth0",
            "--once",
            "--router",
            "ff:ff:ff:ff:ff:ff",
        ],
    );
    assert_refused("--router", &o, 2, &["--router", "broadcast"], false);
    let o = run_ns(
        &ns,
        "ipfake",
        &[
            "--pid-dir",
            &p,
            "down",
            "10.77.1.100",
            "--owner-mac",
            "01:00:5e:00:00:01",
        ],
    );
    assert_refused("--owner-mac", &o, 2, &["--owner-mac", "multicast"], false);
    // A router from the configuration: its file:line:column.
    let cfg = net.path("hakit.yaml");
    std::fs::write(
        &cfg,
        "ipfake:\n  addresses:\n    - addr: 10.77.1.100/24\n      dev: eth0\n      routers: [02:00:00:00:00:01, ff:ff:ff:ff:ff:ff]\n",
    )
    .unwrap();
    let c = cfg.display().to_string();
    let o = run_ns(
        &ns,
        "ipfake",
        &["-c", &c, "--pid-dir", &p, "up", "10.77.1.100", "--once"],
    );
    assert_refused("routers in the file", &o, 2, &[&format!("{c}:5:7:"), "broadcast"], true);
    // Fake's clear_routers file and FOREIGN_MACADDR.
    let dir = net.path("fake");
    std::fs::create_dir_all(dir.join("instance_config")).unwrap();
    std::fs::write(dir.join("routers"), "# routers\n02:00:00:00:00:fe\nff:ff:ff:ff:ff:ff\n").unwrap();
    std::fs::write(
        dir.join(".fakerc"),
        format!(
            "PID_DIR={}\nCLEAR_ROUTERS_FILE={}\n",
            dir.join("run").display(),
            dir.join("routers").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("instance_config/10.77.1.100.cfg"),
        "SPOOF_IP=10.77.1.100\nTARGET_INTERFACE=eth0\nSPOOF_NETMASK=255.255.255.0\n",
    )
    .unwrap();
    let rc = dir.join(".fakerc").display().to_string();
    let o = run_ns(&ns, "ipfake", &["fake", "--rc", &rc, "10.77.1.100"]);
    let routers = format!("{}:3:", dir.join("routers").display());
    assert_refused("clear_routers", &o, 2, &[&routers, "broadcast"], true);
    std::fs::write(dir.join(".fakerc"), format!("PID_DIR={}\n", dir.join("run").display())).unwrap();
    std::fs::write(
        dir.join("instance_config/10.77.1.100.cfg"),
        "SPOOF_IP=10.77.1.100\nTARGET_INTERFACE=eth0\nSPOOF_NETMASK=255.255.255.0\nFOREIGN_MACADDR=ff:ff:ff:ff:ff:ff\n",
    )
    .unwrap();
    let o = run_ns(&ns, "ipfake", &["fake", "--rc", &rc, "--remove", "10.77.1.100"]);
    assert_refused("FOREIGN_MACADDR", &o, 2, &["FOREIGN_MACADDR", "broadcast"], true);
    // Fake's SPOOF_IP goes through the same check as ipfake's own addresses.
    std::fs::write(
        dir.join("instance_config/224.0.0.9.cfg"),
        "SPOOF_IP=224.0.0.9\nTARGET_INTERFACE=eth0\nSPOOF_NETMASK=255.255.255.255\n",
    )
    .unwrap();
    let o = run_ns(&ns, "ipfake", &["fake", "--rc", &rc, "224.0.0.9"]);
    assert_refused("SPOOF_IP", &o, 2, &["224.0.0.9.cfg:1:1:", "multicast"], true);
    assert_eq!(addrs(&net, 1), before, "no address added");
    assert_eq!(tx_packets(&net, 1), tx, "no frame sent");
}

#[test]
fn arp_announce_refuses_addresses_that_are_not_one_hosts() {
    let net = quiet_net();
    let ns = net.ns(1).to_string();
    let tx = tx_packets(&net, 1);
    for (addr, why) in [
        ("0.0.0.0", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("224.0.0.1", "multicast"),
        ("239.1.2.3", "multicast"),
        ("127.0.0.1", "loopback"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("ff02::1", "multicast"),
    ] {
        let o = run_ns(&ns, "arp-announce", &["-i", "eth0", "-c", "1", "10.77.1.100", addr]);
        assert_refused(addr, &o, 2, &["ADDR", addr, why], false);
        let o = run_ns(&ns, "arp-announce", &["probe", "-i", "eth0", "-c", "1", addr]);
        assert_refused(&format!("probe {addr}"), &o, 2, &["ADDR", addr, why], false);
    }
    assert_eq!(tx_packets(&net, 1), tx, "no frame sent");
    // A good one goes out (the counter counts).
    let o = run_ns(&ns, "arp-announce", &["-i", "eth0", "-c", "1", "10.77.1.100"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tx_packets(&net, 1) > tx);
}

// ---- item 7: the keys file ----

/// hb-watch and hb-send with `keys`, inside a namespace, each given `limit`.
fn heartbeat_tools_with(net: &Net, keys: &Path, limit: Duration) -> Vec<(&'static str, Output, bool)> {
    let k = keys.display().to_string();
    let t = net.path("ast").display().to_string();
    let g = net.path("gen").display().to_string();
    let ns = net.ns(1);
    let common = ["--node", "n1", "--keys", &k, "--channel", "bcast:eth0", "--table", &t];
    let mut watch: Vec<&str> = common.to_vec();
    watch.extend(["--port", "40701"]);
    let mut send: Vec<&str> = common.to_vec();
    send.extend([
        "--port",
        "40701",
        "--no-fifo",
        "--generation-file",
        &g,
        "--count",
        "2",
        "--keepalive",
        "10ms",
        "--deadtime",
        "100ms",
    ]);
    let (w, w_done) = run_for(&mut in_ns(ns, "hb-watch", &watch), limit);
    let (s, s_done) = run_for(&mut in_ns(ns, "hb-send", &send), limit);
    vec![("hb-watch", w, w_done), ("hb-send", s, s_done)]
}

#[test]
fn keys_files_that_are_not_ours_or_not_files_are_refused() {
    assert!(is_root(), "this test needs root (to give a keys file to another user)");
    let net = Net::new(1, 1);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    // Another user's: that user can read and replace the cluster's key.
    let theirs = net.path("theirs");
    std::fs::write(&theirs, "auth 1\n1 sha256 secret\n").unwrap();
    set_mode(&theirs, 0o600);
    nix::unistd::chown(&theirs, Some(nobody.uid), Some(nobody.gid)).unwrap();
    // Two `auth` lines: which one signs?
    let twice = net.path("twice");
    std::fs::write(&twice, "auth 1\n1 sha256 one\n2 sha256 two\nauth 2\n").unwrap();
    set_mode(&twice, 0o600);
    // A FIFO: reading it would wait for a writer for ever.
    let fifo = net.path("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for (keys, want) in [
        (
            &theirs,
            vec![format!("{}:", theirs.display()), format!("uid {}", nobody.uid)],
        ),
        (
            &twice,
            vec![format!("{}:4:1:", twice.display()), "second `auth`".into()],
        ),
        (&fifo, vec![format!("{}:", fifo.display()), "not a regular file".into()]),
    ] {
        for (tool, o, finished) in heartbeat_tools_with(&net, keys, Duration::from_secs(5)) {
            assert!(finished, "{tool} with {} hung", keys.display());
            let want: Vec<&str> = want.iter().map(String::as_str).collect();
            assert_refused(&format!("{tool} {}", keys.display()), &o, 2, &want, true);
        }
    }
    assert!(!net.path("ast").exists() && !net.path("gen").exists(), "nothing made");
}

#[test]
fn crc_keys_are_warned_about_at_every_start() {
    let net = Net::new(1, 1);
    let crc = net.path("crc");
    std::fs::write(&crc, "auth 1\n1 crc\n").unwrap();
    set_mode(&crc, 0o600);
    // hb-send ends by itself (--count); hb-watch runs until the limit kills it.
    for (tool, o, finished) in heartbeat_tools_with(&net, &crc, Duration::from_millis(1500)) {
        let err = stderr(&o);
        if tool == "hb-send" {
            assert!(finished && o.status.success(), "{tool}: {err}");
        }
        let warned: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("warning:") && l.contains("crc"))
            .collect();
        assert_eq!(warned.len(), 1, "{tool}: {err}");
        assert!(
            warned[0].contains("authenticates nothing") && warned[0].contains("forge"),
            "{tool}: {err}"
        );
    }
}

// ---- item 9: slow or unclear refusals ----

#[test]
fn deep_nesting_is_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let n = 100_000;
    let files = [
        (
            "flow-seq.yaml",
            format!("cluster: {}{}\n", "[".repeat(n), "]".repeat(n)),
            1,
            10,
        ),
        (
            "flow-map.yaml",
            format!("cluster: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
            1,
            10,
        ),
        ("top.yaml", format!("{}{}\n", "[".repeat(n), "]".repeat(n)), 1, 1),
        (
            "mon.yaml",
            format!("# deep\nmon-check:\n  hostgroups: {}{}\n", "[".repeat(n), "]".repeat(n)),
            3,
            15,
        ),
    ];
    for (name, text, line, _) in &files {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        let c = p.display().to_string();
        for (tool, args, code) in [
            ("hb-watch", vec!["-c", &c as &str], 2),
            ("hb-send", vec!["-c", &c], 2),
            ("ipfake", vec!["-c", &c, "status"], 2),
            ("mon-check", vec!["run", "-c", &c], 3),
        ] {
            let start = Instant::now();
            let o = run_within(Command::new(bin(tool)).args(&args), Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{tool} {name}: not refused within 10 s"));
            let took = start.elapsed();
            assert_refused(
                &format!("{tool} {name}"),
                &o,
                code,
                &[&format!("{c}:{line}:"), "nesting deeper than 64"],
                true,
            );
            assert!(took < Duration::from_secs(1), "{tool} {name}: {took:?}");
        }
    }
    // Nesting that a configuration really has is fine: 64 levels parse.
    let p = d.path().join("ok.yaml");
    std::fs::write(&p, format!("arp-announce: {}{}\n", "[".repeat(63), "]".repeat(63))).unwrap();
    let out = Command::new(bin("ipfake"))
        .args([
            "-c",
            &p.display().to_string(),
            "--pid-dir",
            &d.path().display().to_string(),
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_table_that_is_not_a_file_says_so() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().display().to_string();
    let o = Command::new(bin("hb-watch"))
        .args(["status", "-t", &dir])
        .output()
        .unwrap();
    assert_refused(
        "status -t DIR",
        &o,
        2,
        &[&format!(
            "{dir}: not an Active Stations Table: is a directory, not a regular file"
        )],
        true,
    );
    let fifo = d.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let f = fifo.display().to_string();
    let o = run_within(
        Command::new(bin("hb-watch")).args(["status", "-t", &f]),
        Duration::from_secs(5),
    )
    .expect("no hang on a FIFO");
    assert_refused(
        "status -t FIFO",
        &o,
        2,
        &[&format!(
            "{f}: not an Active Stations Table: is a FIFO, not a regular file"
        )],
        true,
    );
    // A regular file that is not a table: already clear.
    let junk = d.path().join("junk");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let j = junk.display().to_string();
    let o = Command::new(bin("hb-watch"))
        .args(["status", "-t", &j])
        .output()
        .unwrap();
    assert_refused("status -t junk", &o, 2, &[&j, "no HAKITAST magic"], true);
    // The writer: hb-watch --table DIR (in a namespace; it stops before any socket).
    let net = Net::new(1, 1);
    let k = net.keys().display().to_string();
    let o = run_ns(
        net.ns(1),
        "hb-watch",
        &[
            "--node",
            "n1",
            "--keys",
            &k,
            "--channel",
            "bcast:eth0",
            "--table",
            &dir,
            "--port",
            "40703",
        ],
    );
    assert_refused(
        "--table DIR",
        &o,
        2,
        &[&format!(
            "{dir}: not an Active Stations Table: is a directory, not a regular file"
        )],
        true,
    );
}

#[test]
fn ipfake_labels_and_pid_dirs_are_checked_before_anything_is_done() {
    let net = quiet_net();
    let ns = net.ns(1).to_string();
    let p = net.path("pids").display().to_string();
    let before = addrs(&net, 1);
    let tx = tx_packets(&net, 1);
    let up = |extra: &[&str]| {
        let mut a = vec!["--pid-dir", &p, "up", "10.77.1.100/24", "dev", "eth0", "--once"];
        a.extend_from_slice(extra);
        run_ns(&ns, "ipfake", &a)
    };
    let o = up(&["--label", "eth0:abcdefghijklm"]);
    assert_refused(
        "--label long",
        &o,
        2,
        &["--label", "eth0:abcdefghijklm", "15 characters"],
        true,
    );
    let o = up(&["--label", "vip:1"]);
    assert_refused("--label other", &o, 2, &["--label", "vip:1", "eth0:"], true);
    // From the configuration: the entry's label key.
    let cfg = net.path("hakit.yaml");
    std::fs::write(
        &cfg,
        "ipfake:\n  addresses:\n    - addr: 10.77.1.100/24\n      dev: eth0\n      label: eth0:much-too-long\n",
    )
    .unwrap();
    let c = cfg.display().to_string();
    let o = run_ns(
        &ns,
        "ipfake",
        &["-c", &c, "--pid-dir", &p, "up", "10.77.1.100", "--once"],
    );
    assert_refused(
        "label in the file",
        &o,
        2,
        &[&format!("{c}:5:7:"), "15 characters"],
        true,
    );
    // A pid directory that is a file.
    let file = net.path("a-file");
    std::fs::write(&file, "").unwrap();
    let f = file.display().to_string();
    for cmd in [
        vec!["--pid-dir", &f as &str, "up", "10.77.1.100/24", "dev", "eth0", "--once"],
        vec!["--pid-dir", &f, "down", "10.77.1.100"],
        vec!["--pid-dir", &f, "status"],
    ] {
        let o = run_ns(&ns, "ipfake", &cmd);
        assert_refused(
            &format!("{cmd:?}"),
            &o,
            2,
            &[&format!("--pid-dir {f}: is not a directory")],
            true,
        );
    }
    std::fs::write(&cfg, format!("ipfake:\n  pid-dir: {f}\n")).unwrap();
    let o = run_ns(
        &ns,
        "ipfake",
        &["-c", &c, "up", "10.77.1.100/24", "dev", "eth0", "--once"],
    );
    assert_refused(
        "pid-dir in the file",
        &o,
        2,
        &[&format!("{c}:2:3:"), "is not a directory"],
        true,
    );
    assert_eq!(addrs(&net, 1), before, "no address added");
    assert_eq!(tx_packets(&net, 1), tx, "no frame sent");
    // A good label still works, the device's own name too.
    for l in ["eth0:vip", "eth0"] {
        let o = up(&["--label", l, "--count", "1"]);
        assert!(o.status.success(), "{l}: {}", stderr(&o));
        net.ip(&ns, &["addr", "del", "10.77.1.100/24", "dev", "eth0"]);
    }
}

// ---- issue 13: Heartbeat's own files ----

/// hb-watch and hb-send on `--ha-cf CF` (plus `more`), each within `limit`.
fn heartbeat_tools_on(net: &Net, cf: &Path, more: &[&str], limit: Duration) -> Vec<(&'static str, Output, bool)> {
    let c = cf.display().to_string();
    let t = net.path("ast").display().to_string();
    let g = net.path("gen").display().to_string();
    let ns = net.ns(1);
    let mut common = vec!["--ha-cf", &c, "--node", "n1", "--table", &t];
    common.extend(more);
    let mut send = common.clone();
    send.extend(["--no-fifo", "--generation-file", &g, "--count", "2"]);
    let (w, w_done) = run_for(&mut in_ns(ns, "hb-watch", &common), limit);
    let (s, s_done) = run_for(&mut in_ns(ns, "hb-send", &send), limit);
    vec![("hb-watch", w, w_done), ("hb-send", s, s_done)]
}

#[test]
fn bad_ha_cf_lines_are_refused_at_their_line_and_column() {
    let net = quiet_net();
    let tx = tx_packets(&net, 1);
    let dir = net.path("ha.d");
    std::fs::create_dir(&dir).unwrap();
    let cf = dir.join("ha.cf");
    let keys = dir.join("authkeys");
    std::fs::write(&keys, "auth 1\n1 sha1 secret\n").unwrap();
    set_mode(&keys, 0o600);
    let yaml = net.path("h.yaml");
    std::fs::write(&yaml, "cluster:\n  port: 700\n").unwrap();
    let c = cf.display().to_string();
    let y = yaml.display().to_string();
    let good = "keepalive 100ms\ndeadtime 1\nudpport 40702\nbcast eth0\nnode n1 n2\n";
    let cases: Vec<(String, Vec<&str>, Vec<String>)> = vec![
        (
            format!("{good}warntime soon\n"),
            vec![],
            vec![format!("{c}:6:10: `soon` is not a duration")],
        ),
        (
            format!("{good}keepaliv 2\n"),
            vec![],
            vec![format!("{c}:6:1: `keepaliv` is not a Heartbeat directive")],
        ),
        // A name is resolved (inside the test's namespace, which has no route out:
        // the lookup fails there, and the count of frames sent below stays 0).
        (
            format!("{good}ucast eth0 peer2\n"),
            vec![],
            vec![format!(
                "{c}:6:12: `peer2` is neither an IP address nor a host name that resolves"
            )],
        ),
        (
            format!("{good}mcast eth0 225.0.0.1 40702 5 0\n"),
            vec![],
            vec![format!("{c}:6:28: `5` is not a TTL Heartbeat takes (0..4)")],
        ),
        (
            "bcast eth0\nnode n2 n3\n".into(),
            vec![],
            vec![format!("{c}:2:6: this node `n1` (--node) is not among ha.cf's nodes")],
        ),
        // The YAML and ha.cf both giving the port: refused at the key, naming the line.
        (
            good.into(),
            vec!["--config", &y],
            vec![format!(
                "{y}:2:3: `port` is also given by {c}:3:9; give it in one place"
            )],
        ),
    ];
    for (text, more, want) in &cases {
        std::fs::write(&cf, text).unwrap();
        for (tool, o, finished) in heartbeat_tools_on(&net, &cf, more, Duration::from_secs(5)) {
            assert!(finished, "{tool} on {text:?} did not refuse it");
            let want: Vec<&str> = want.iter().map(String::as_str).collect();
            assert_refused(&format!("{tool} {text:?}"), &o, 2, &want, true);
        }
    }
    // The authkeys beside ha.cf gets the keys file's checks.
    std::fs::write(&cf, good).unwrap();
    set_mode(&keys, 0o644);
    for (tool, o, finished) in heartbeat_tools_on(&net, &cf, &[], Duration::from_secs(5)) {
        assert!(finished, "{tool} with a 0644 authkeys did not refuse it");
        assert_refused(tool, &o, 2, &[&format!("{}:", keys.display()), "chmod 600"], true);
    }
    assert!(!net.path("ast").exists() && !net.path("gen").exists(), "nothing made");
    assert_eq!(tx_packets(&net, 1), tx, "nothing sent");
}

#[test]
fn bad_haresources_lines_are_refused_by_ipfake() {
    let net = quiet_net();
    let ns = net.ns(1).to_string();
    let p = net.path("pids").display().to_string();
    let hr = net.path("haresources");
    let h = hr.display().to_string();
    let before = addrs(&net, 1);
    let tx = tx_packets(&net, 1);
    for (text, want) in [
        (
            "n1 IPaddr::10.9.0.300/24/eth0\n",
            format!("{h}:1:4: IPaddr::10.9.0.300/24/eth0: `10.9.0.300` is not an IP address"),
        ),
        (
            "n1 httpd \\\n  IPaddr2::10.9.0.7/40/eth0\n",
            format!("{h}:2:3: IPaddr2::10.9.0.7/40/eth0: `40` is not a prefix length"),
        ),
        (
            "n1 10.9.0.7\nn2 10.9.0.7/24/eth0\n",
            format!("{h}:2:4: 10.9.0.7 is given twice"),
        ),
    ] {
        std::fs::write(&hr, text).unwrap();
        let o = run_ns(
            &ns,
            "ipfake",
            &["--pid-dir", &p, "--haresources", &h, "up", "10.9.0.7", "--once"],
        );
        assert_refused(&format!("ipfake {text:?}"), &o, 2, &[&want], true);
    }
    assert_eq!(addrs(&net, 1), before, "no address added");
    assert_eq!(tx_packets(&net, 1), tx, "nothing sent");
}
