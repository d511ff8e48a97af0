//! Interoperation with a real Heartbeat 3.0.6 (Debian's package) in a network
//! namespace: hb-watch sees it up and reports its death; Heartbeat sees an hb-send
//! node as active (`cl_status nodestatus`) — configured by flags, and configured by the
//! very ha.cf and authkeys Heartbeat runs with (`--ha-cf`).

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The ha.cf both sides read: Heartbeat as node hbpeer, hakit as n1 (written `N1`:
/// Heartbeat lowercases names). It is shared with src/config/hacf.rs's unit test; its
/// port is not the default, so a side ignoring udpport would hear nothing. Its log
/// line is added last, the others keeping their line numbers.
const HA_CF: &str = include_str!("heartbeat-interop.ha.cf");

fn ha_cf(hb: &std::path::Path) -> String {
    format!("{HA_CF}logfile {}/ha-log\n", hb.display())
}

/// A real Heartbeat 3.0.6 running as `hbpeer` in node 2's namespace, from the files in
/// `dir` (ha.cf, authkeys, haresources), its API answering.
struct Heartbeat {
    dir: PathBuf,
    ns: String,
    pid: String,
}

impl Heartbeat {
    fn start(net: &Net) -> Heartbeat {
        assert!(
            std::path::Path::new("/usr/libexec/heartbeat/heartbeat").exists(),
            "Heartbeat is not installed: contrib/deps.sh installs Debian's `heartbeat` package"
        );
        let hb = net.path("hb");
        std::fs::create_dir_all(&hb).unwrap();
        std::fs::write(hb.join("ha.cf"), ha_cf(&hb)).unwrap();
        // Heartbeat knows sha1, md5 and crc: a mixed cluster signs with sha1.
        std::fs::write(hb.join("authkeys"), "auth 1\n1 sha1 interop-secret\n").unwrap();
        set_mode(&hb.join("authkeys"), 0o600);
        std::fs::write(hb.join("haresources"), "").unwrap();
        let ns = net.ns(2).to_string();
        let st = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
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
        // settled); the hakit node starts after that, as a node joining a running cluster.
        let pidfile = hb.join("run/heartbeat.pid");
        let end = Instant::now() + Duration::from_secs(10);
        while !pidfile.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(100));
        let pid = std::fs::read_to_string(&pidfile)
            .expect("Heartbeat wrote no pid file")
            .trim()
            .to_string();
        let h = Heartbeat { dir: hb, ns, pid };
        let end = Instant::now() + Duration::from_secs(30);
        while !h.cl_status(&["hbstatus"]).0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            h.cl_status(&["hbstatus"]).0,
            "Heartbeat's API never answered: {}",
            h.cl_status(&["hbstatus"]).1
        );
        h
    }

    fn cl_status(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid, "-m", "-u", "-n", "cl_status"])
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
    }

    /// Heartbeat says `node` is active within 20 s (else the test fails with its log).
    fn sees_active(&self, node: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < end {
            last = self.cl_status(&["nodestatus", node]).1;
            if last.trim() == "active" {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let log = std::fs::read_to_string(self.dir.join("ha-log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        panic!(
            "cl_status nodestatus {node}: {}; Heartbeat's log ends:\n{}",
            last.trim(),
            tail.join("\n")
        );
    }

    /// Kill every process of the Heartbeat namespace (all of them started by this
    /// test); again when dropped, so that a failed expectation leaves none running.
    fn kill(&self) {
        let out = Command::new("ip").args(["netns", "pids", &self.ns]).output().unwrap();
        for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.parse().unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.kill();
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn heartbeat_3_0_6_and_hakit_see_each_other() {
    let mut net = Net::new(2, 1);
    let hb = Heartbeat::start(&net);
    let keys = net.path("sha1keys");
    std::fs::copy(hb.dir.join("authkeys"), &keys).unwrap();
    set_mode(&keys, 0o600);
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
        "--port",
        "695",
        "-q",
    ];
    let mut wargs: Vec<&str> = base.to_vec();
    wargs.extend(["--deadtime", "2s"]);
    let ns1 = net.ns(1).to_string();
    let pid = net.spawn(&ns1, &bin("hb-watch"), &strings(&wargs), std::process::Stdio::piped());
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
    net.spawn(&ns1, &bin("hb-send"), &strings(&sargs), std::process::Stdio::null());

    // hb-watch hears Heartbeat (it sends the netstring form, signed with sha1).
    ev.expect("node-up hbpeer", Duration::from_secs(10));
    // Heartbeat sees the hb-send node as active.
    hb.sees_active("n1");
    // Heartbeat dies: hb-watch reports it.
    hb.kill();
    ev.expect("node-dead hbpeer", Duration::from_secs(5));
}

/// hb-send and hb-watch started with nothing but `--ha-cf` (and where to keep their
/// own state) on the files Heartbeat itself runs with: its ha.cf gives the members,
/// timings, port and channel, the authkeys beside it the key; what hakit does not do
/// is named with its line.
#[test]
fn hakit_runs_from_heartbeats_own_ha_cf() {
    let mut net = Net::new(2, 1);
    let hb = Heartbeat::start(&net);
    let cf = hb.dir.join("ha.cf").display().to_string();
    let t = net.path("n1.ast").display().to_string();
    let g = net.path("n1.gen").display().to_string();
    let ns1 = net.ns(1).to_string();
    // The warnings, from one heartbeat's worth of hb-send.
    let once = net.run(
        &ns1,
        &bin("hb-send"),
        &[
            "--ha-cf",
            &cf,
            "--node",
            "n1",
            "--no-fifo",
            "--generation-file",
            &g,
            "--count",
            "1",
        ],
    );
    let err = String::from_utf8_lossy(&once.stderr);
    assert_eq!(once.status.code(), Some(0), "{err}");
    for w in [
        format!("{cf}:10:1: `logfile` skipped: hakit logs to stderr"),
        format!("{cf}:8:1: `crm` skipped: hakit does not run Pacemaker's CRM"),
        format!("{cf}:9:15: auto_failback off is the composition's"),
    ] {
        assert!(err.contains(&w), "no warning `{w}` in:\n{err}");
    }
    // This node named as in ha.cf (`N1`): taken lowercased, as Heartbeat does.
    let common = ["--ha-cf", &cf, "--node", "N1", "--table", &t, "-q"];
    let pid = net.spawn(&ns1, &bin("hb-watch"), &strings(&common), std::process::Stdio::piped());
    let mut ev = net.watch_pid(pid);
    let mut sargs = common.to_vec();
    sargs.extend(["--no-fifo", "--generation-file", &g]);
    net.spawn(&ns1, &bin("hb-send"), &strings(&sargs), std::process::Stdio::null());

    // The channel is ha.cf's `bcast eth0`, named after its device.
    let up = ev.expect("link-up hbpeer", Duration::from_secs(10));
    assert!(up.contains("channel=eth0"), "{up}");
    ev.expect("node-up hbpeer", Duration::from_secs(10));
    hb.sees_active("n1");
    // ha.cf's deadtime (2 s), not hakit's default 30 s: Heartbeat's death is seen at once.
    hb.kill();
    ev.expect("node-dead hbpeer", Duration::from_secs(5));
}
