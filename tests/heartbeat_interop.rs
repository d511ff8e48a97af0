//! Interoperation with a real Heartbeat 3.0.6 (Debian's package) in a network
//! namespace: hb-watch sees it up and reports its death; Heartbeat sees an hb-send
//! node as active (`cl_status nodestatus`).

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn heartbeat_3_0_6_and_hakit_see_each_other() {
    assert!(
        std::path::Path::new("/usr/libexec/heartbeat/heartbeat").exists(),
        "Heartbeat is not installed: contrib/deps.sh installs Debian's `heartbeat` package"
    );
    let mut net = Net::new(2, 1);
    // Heartbeat knows sha1, md5 and crc: a mixed cluster signs with sha1.
    let keys = net.path("sha1keys");
    std::fs::write(&keys, "auth 1\n1 sha1 interop-secret\n").unwrap();
    set_mode(&keys, 0o600);
    let hb = net.path("hb");
    std::fs::create_dir_all(&hb).unwrap();
    std::fs::write(
        hb.join("ha.cf"),
        format!(
            "logfile {}/ha-log\nkeepalive 200ms\nwarntime 1\ndeadtime 2\ninitdead 4\nudpport 694\nbcast eth0\nnode hbpeer\nnode n1\ncrm off\nauto_failback off\n",
            hb.display()
        ),
    )
    .unwrap();
    std::fs::copy(&keys, hb.join("authkeys")).unwrap();
    std::fs::write(hb.join("haresources"), "").unwrap();
    let ns2 = net.ns(2).to_string();
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns2,
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/heartbeat-peer.sh"))
        .arg(&hb)
        .arg("hbpeer")
        .status()
        .unwrap();
    assert!(st.success(), "Heartbeat did not start; see {}/ha-log", hb.display());

    // Heartbeat's API answers once its start-up is over (initdead passed, resources
    // settled); start the hakit node after that, as a node joining a running cluster.
    let pidfile = hb.join("run/heartbeat.pid");
    let end = Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(100));
    let hbpid = std::fs::read_to_string(&pidfile)
        .expect("Heartbeat wrote no pid file")
        .trim()
        .to_string();
    let cl_status = |args: &[&str]| {
        let out = Command::new("nsenter")
            .args(["-t", &hbpid, "-m", "-u", "-n", "cl_status"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !cl_status(&["hbstatus"]).0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        cl_status(&["hbstatus"]).0,
        "Heartbeat's API never answered: {}",
        cl_status(&["hbstatus"]).1
    );

    let k = keys.display().to_string();
    let t = net.path("n1.ast").display().to_string();
    let base = [
        "--node",
        "n1",
        "--keys",
        &k,
        "--table",
        &t,
        "--channel",
        "a=bcast:eth0",
        "-q",
    ];
    let mut wargs: Vec<&str> = base.to_vec();
    wargs.extend(["--deadtime", "2s"]);
    let ns1 = net.ns(1).to_string();
    let pid = net.spawn(
        &ns1,
        &bin("hb-watch"),
        &wargs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        std::process::Stdio::piped(),
    );
    let _ = pid;
    let mut ev = net.watch_pid(pid);
    let g = net.path("n1.gen").display().to_string();
    let mut sargs: Vec<&str> = base.to_vec();
    sargs.extend([
        "--keepalive",
        "200ms",
        "--deadtime",
        "2s",
        "--no-fifo",
        "--generation-file",
        &g,
    ]);
    net.spawn(
        &ns1,
        &bin("hb-send"),
        &sargs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        std::process::Stdio::null(),
    );

    // hb-watch hears Heartbeat (it sends the netstring form, signed with sha1).
    ev.expect("node-up hbpeer", Duration::from_secs(10));

    // Heartbeat sees the hb-send node as active.
    let hbpid = std::fs::read_to_string(hb.join("run/heartbeat.pid"))
        .unwrap()
        .trim()
        .to_string();
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < end {
        let out = Command::new("nsenter")
            .args(["-t", &hbpid, "-m", "-u", "-n", "cl_status", "nodestatus", "n1"])
            .output()
            .unwrap();
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if last.trim() == "active" {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = std::fs::read_to_string(hb.join("ha-log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(25).collect();
    assert_eq!(
        last.trim(),
        "active",
        "cl_status nodestatus n1; Heartbeat's log ends:\n{}",
        tail.join("\n")
    );

    // Heartbeat dies: hb-watch reports it.
    for p in String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "pids", &ns2])
            .output()
            .unwrap()
            .stdout,
    )
    .split_whitespace()
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p.parse().unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    ev.expect("node-dead hbpeer", Duration::from_secs(5));
}
