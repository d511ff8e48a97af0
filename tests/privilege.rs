//! The tools as a non-root user with capabilities, as contrib/systemd's units run them:
//! `nobody`, granted exactly the unit's `AmbientCapabilities=` (through `setpriv`), in
//! network namespaces. Without them the tools say which capability is missing.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A directory (and keys) that belong to nobody.
fn nobodys(net: &Net, name: &str) -> PathBuf {
    let d = net.path(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
    nix::unistd::chown(&d, Some(nobody), None).unwrap();
    let keys = d.join("authkeys");
    std::fs::copy(net.keys(), &keys).unwrap();
    nix::unistd::chown(&keys, Some(nobody), None).unwrap();
    d
}

fn spawn_as(net: &mut Net, ns: &str, caps: &str, tool: &str, args: &[String]) -> u32 {
    let mut a = as_nobody(caps);
    a.push(bin(tool).display().to_string());
    a.extend(args.iter().cloned());
    net.spawn(ns, Path::new("/usr/bin/env"), &a, Stdio::piped())
}

fn run_as(ns: &str, caps: &str, tool: &str, args: &[&str]) -> std::process::Output {
    let mut a = as_nobody(caps);
    a.push(bin(tool).display().to_string());
    a.extend(args.iter().map(|s| s.to_string()));
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(&a)
        .output()
        .unwrap()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn heartbeats_as_nobody_with_the_units_capabilities() {
    assert!(
        Command::new("setpriv").arg("--version").output().is_ok(),
        "setpriv (util-linux) is needed"
    );
    let mut net = Net::new(2, 1);
    let d1 = nobodys(&net, "n1");
    let d2 = nobodys(&net, "n2");
    let (ns1, ns2) = (net.ns(1).to_string(), net.ns(2).to_string());
    let watch_caps = unit_caps("hb-watch.service");
    let send_caps = unit_caps("hb-send.service");
    let w = spawn_as(
        &mut net,
        &ns2,
        &watch_caps,
        "hb-watch",
        &strings(&[
            "--node",
            "n2",
            "--keys",
            &d2.join("authkeys").display().to_string(),
            "--channel",
            "bcast:eth0",
            "--table",
            &d2.join("ast").display().to_string(),
            "--deadtime",
            "1s",
            "--realtime",
        ]),
    );
    let mut events = net.watch_pid(w);
    spawn_as(
        &mut net,
        &ns1,
        &send_caps,
        "hb-send",
        &strings(&[
            "--node",
            "n1",
            "--keys",
            &d1.join("authkeys").display().to_string(),
            "--channel",
            "bcast:eth0",
            "--table",
            &d1.join("ast").display().to_string(),
            "--fifo",
            &d1.join("fifo").display().to_string(),
            "--generation-file",
            &d1.join("generation").display().to_string(),
            "--keepalive",
            "100ms",
            "--deadtime",
            "1s",
            "--realtime",
        ]),
    );
    events.expect("node-up n1", Duration::from_secs(3));
    // The table belongs to nobody, in nobody's directory; root reads it.
    let st = Command::new(bin("hb-watch"))
        .args(["status", "-t", &d2.join("ast").display().to_string(), "n1"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(0), "{}", String::from_utf8_lossy(&st.stderr));
    // Without the capabilities: one line naming what is missing, exit 2 or 1, no panic.
    let out = run_as(
        &ns2,
        "",
        "hb-watch",
        &[
            "--node",
            "n3",
            "--keys",
            &d2.join("authkeys").display().to_string(),
            "--channel",
            "bcast:eth0",
            "--table",
            &d2.join("ast3").display().to_string(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("CAP_NET_BIND_SERVICE"), "names the capability: {err}");
}

#[test]
fn ipfake_as_nobody_with_the_units_capabilities() {
    let net = Net::new(1, 1);
    let d = nobodys(&net, "pids");
    let pd = d.display().to_string();
    let ns = net.ns(1).to_string();
    let caps = unit_caps("ipfake@.service");
    let cidr = "10.77.1.70/24";
    let out = run_as(
        &ns,
        &caps,
        "ipfake",
        &["--pid-dir", &pd, "up", cidr, "dev", "eth0", "--once"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(net.has_addr(1, cidr));
    let out = run_as(&ns, &caps, "ipfake", &["--pid-dir", &pd, "down", "10.77.1.70"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Without them: refused before anything is touched, naming what is missing.
    let out = run_as(
        &ns,
        "",
        "ipfake",
        &["--pid-dir", &pd, "up", "10.77.1.71/24", "dev", "eth0"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("lacks CAP_NET_ADMIN and CAP_NET_RAW"), "{err}");
    assert!(!net.has_addr(1, "10.77.1.71/24"));
    // Only one of the two: the other is named.
    let out = run_as(
        &ns,
        "+net_admin",
        "ipfake",
        &["--pid-dir", &pd, "up", "10.77.1.71/24", "dev", "eth0"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lacks CAP_NET_RAW"), "{err}");
}

/// `ipfake mirror` (nf_tables by netlink, and nft, which inherits the ambient
/// capabilities) with the same unit's capabilities; without them, one line, exit 2.
#[test]
fn ipfake_mirror_as_nobody_with_the_units_capabilities() {
    let net = Net::new(1, 1);
    let ns = net.ns(1).to_string();
    let caps = unit_caps("ipfake@.service");
    let standby = [
        "mirror",
        "standby",
        "--vip",
        "10.77.1.70",
        "--dev",
        "eth0",
        "--peer",
        "10.77.1.9",
        "--service",
        "udp/53",
    ];
    let out = run_as(&ns, &caps, "ipfake", &standby);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_as(&ns, &caps, "ipfake", &["mirror", "status", "10.77.1.70"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "10.77.1.70 standby udp/53 dev=eth0 peers=10.77.1.9 lo\n"
    );
    let out = run_as(&ns, "", "ipfake", &["mirror", "off"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("lacks CAP_NET_ADMIN"), "{err}");
    let out = run_as(&ns, &caps, "ipfake", &["mirror", "off"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_as(&ns, &caps, "ipfake", &["mirror", "status", "10.77.1.70"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn chan_switch_as_nobody_with_the_units_capabilities() {
    let mut net = Net::new(2, 2);
    let d = nobodys(&net, "cs");
    let ns = net.ns(1).to_string();
    let caps = unit_caps("hakit-dual-channel.service");
    let p = |n: &str| d.join(n).display().to_string();
    let args = strings(&[
        "run",
        "--node",
        "n1",
        "--channel",
        "a=bcast:eth0",
        "--channel",
        "b=bcast:eth1",
        "--member",
        "n1=10.77.100.1,10.77.1.1,10.77.2.1",
        "--member",
        "n2=10.77.100.2,10.77.1.2,10.77.2.2",
        "--deadtime",
        "100ms",
        "--keepalive",
        "20ms",
    ]);
    let mut full = args.clone();
    for (flag, name) in [
        ("--fifo", "fifo"),
        ("--table", "ast"),
        ("--state", "state"),
        ("--status-file", "status.json"),
    ] {
        full.extend([flag.to_string(), p(name)]);
    }
    // Its stdin is a pipe nobody writes to (hb-watch that says nothing): it runs until
    // the Net ends it.
    let mut a = as_nobody(&caps);
    a.push(bin("chan-switch").display().to_string());
    a.extend(full.iter().cloned());
    let child = Command::new("ip")
        .args(["netns", "exec", &ns])
        .args(&a)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    net.adopt(child);
    let rules = || {
        let out = Command::new("ip").args(["-n", &ns, "rule"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        wait_for(|| rules().contains("lookup 6940"), Duration::from_secs(5)),
        "no rule installed as nobody: {}",
        rules()
    );
    let on_lo = |ns: &str| {
        let out = Command::new("ip")
            .args(["-n", ns, "addr", "show", "dev", "lo"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("inet 10.77.100.")
    };
    assert!(on_lo(&ns), "the cluster address on lo");
    let st = std::fs::metadata(d.join("status.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&st),
        nix::unistd::User::from_name("nobody").unwrap().unwrap().uid.as_raw()
    );
    // root's `chan-switch to b` reaches nobody's daemon (its request file is readable).
    let out = Command::new(bin("chan-switch"))
        .args(["to", "b", "--node", "n1", "--status-file", &p("status.json")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(rules().contains("lookup 6941"), "{}", rules());
    // Without it: refused before anything is touched, naming what is missing.
    let ns2 = net.ns(2).to_string();
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a[2] = "n2";
    let out = run_as(&ns2, "", "chan-switch", &a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("lacks CAP_NET_ADMIN"), "{err}");
    assert!(!on_lo(&ns2));
}
