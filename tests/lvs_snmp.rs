//! `lvs-ctl snmp` under Debian's snmpd (net-snmp 5.9), in a namespace of its own: an
//! nftables table made by `lvs-ctl apply` and `-A/-a`, a running `lvs-ctl follow` fed
//! mon-check's host events by the test, a small Active Stations Table written with the
//! library's TableWriter; snmpwalk, snmpbulkwalk, snmpget and snmpset (v2c) check the
//! values, a SET of a weight changes the kernel and stays through follow's drift repair
//! and the next apply, bad SETs get snmpd's errors and change nothing, and a read-only
//! community's SET is refused by snmpd itself. Plus: the MIB passes smilint and
//! snmptranslate.

mod common;
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const AGENT: &str = "127.0.0.1:16100";
const T: &str = ".1.3.6.1.4.1.32473.104.1";

const CFG: &str = "lvs-ctl:
  backend: nft
  services:
    - service: tcp 10.77.1.100:80
      scheduler: wrr
      forward: masq
      check: web/http
      on-failure: quiesce
      reals:
        - { address: 10.77.2.3:80, weight: 1, host: web3 }
        - { address: 10.77.2.4:80, weight: 2, host: web4 }
";

struct Agent {
    net: Net,
    cfg: String,
    state: String,
}

impl Agent {
    fn ns(&self) -> &str {
        self.net.ns(1)
    }

    fn lvs(&self, args: &[&str]) -> std::process::Output {
        self.net.run(self.ns(), &bin("lvs-ctl"), args)
    }

    /// The kernel's weight of a real server, from `lvs-ctl -L -n`.
    fn kernel_weight(&self, real: &str) -> Option<u32> {
        let out = self.lvs(&["--backend", "nft", "-L", "-n"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(real))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|w| w.parse().ok())
    }

    fn listing(&self) -> String {
        String::from_utf8_lossy(&self.lvs(&["--backend", "nft", "-L", "-n"]).stdout).to_string()
    }

    fn snmp(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let mut v = vec!["-v2c", "-r", "0", "-t", "5"];
        v.extend_from_slice(args);
        self.net.run(self.ns(), &Path::new("/usr/bin").join(tool), &v)
    }

    /// One object's value as snmpget prints it with -Oqv.
    fn get(&self, oid: &str) -> String {
        let out = self.snmp("snmpget", &["-c", "public", "-On", "-Oqv", AGENT, oid]);
        assert!(
            out.status.success(),
            "snmpget {oid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn wait_get(&self, oid: &str, want: &str) {
        assert!(
            wait_for(|| self.get(oid) == want, Duration::from_secs(10)),
            "{oid} stayed {} (not {want})",
            self.get(oid)
        );
    }

    /// snmpset; (success, what it printed on stderr).
    fn set(&self, community: &str, oid: &str, ty: &str, value: &str) -> (bool, String) {
        let out = self.snmp("snmpset", &["-c", community, "-On", AGENT, oid, ty, value]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    }
}

fn rs(col: u32, vs: u32, r: u32) -> String {
    format!("{T}.3.1.{col}.{vs}.{r}")
}

/// The namespace, the table, the AST, snmpd with `lvs-ctl snmp` as its pass_persist.
fn agent() -> (Agent, u32, hakit::table::TableWriter) {
    let mut net = Net::new(1, 1);
    let ns = net.ns(1).to_string();
    let cfg = net.path("hakit.yaml");
    std::fs::write(&cfg, CFG).unwrap();
    let state = net.path("lvs-follow.json");
    let (cfg, state) = (cfg.display().to_string(), state.display().to_string());
    let out = net.run(&ns, &bin("lvs-ctl"), &["apply", &cfg, "--state", &state]);
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "-A -u 10.77.1.100:53 -s rr",
        "-a -u 10.77.1.100:53 -r 10.77.2.3:53 -m -w 3",
        "-A -t [2001:db8::10]:443 -s rr",
        "-a -t [2001:db8::10]:443 -r [2001:db8::2]:443 -m",
    ] {
        let mut args = vec!["--backend", "nft"];
        args.extend(line.split(' '));
        let out = net.run(&ns, &bin("lvs-ctl"), &args);
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let conf = net.path("snmpd.conf");
    std::fs::write(
        &conf,
        format!(
            "rocommunity public 127.0.0.1\nrwcommunity private 127.0.0.1\n\
             pass_persist .1.3.6.1.4.1.32473.104 {} snmp --config {} --state {} --table {} --refresh 100ms\n",
            bin("lvs-ctl").display(),
            cfg,
            state,
            net.path("ast").display()
        ),
    )
    .unwrap();
    let table = ast(&net);
    let persistent = net.path("snmp-persistent");
    std::fs::create_dir_all(&persistent).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &ns, "/usr/sbin/snmpd", "-f", "-Lo", "-C", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(net.path("snmpd.pid"))
        .arg(format!("udp:{AGENT}"))
        .env("SNMP_PERSISTENT_DIR", &persistent)
        .env("MIBS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmpd (Debian's snmpd package)");
    let pid = child.id();
    net.adopt(child);
    let a = Agent { net, cfg, state };
    assert!(
        wait_for(
            || a.snmp("snmpget", &["-c", "public", "-On", AGENT, &format!("{T}.1.1.0")])
                .status
                .success(),
            Duration::from_secs(10)
        ),
        "snmpd did not answer"
    );
    (a, pid, table)
}

/// The Active Stations Table of a two-director cluster, as this node's hb-watch would
/// write it; the writer (and its lock) lives as long as the returned value.
fn ast(net: &Net) -> hakit::table::TableWriter {
    use hakit::table::*;
    let mut w = TableWriter::create(&net.path("ast"), 8, &["a".into(), "b".into()], "dir1").unwrap();
    let now = hakit::base::clock::mono_ns();
    let me = NodeRecord {
        name: "dir1".into(),
        state: NodeState::Up,
        flags: FLAG_LOCAL | FLAG_CONFIGURED,
        status: "active".into(),
        generation: 1_795_000_001,
        held: "10.77.1.100".into(),
        ..Default::default()
    };
    let mut peer = NodeRecord {
        name: "dir2".into(),
        state: NodeState::Up,
        flags: FLAG_CONFIGURED,
        status: "standby".into(),
        generation: 1_795_000_002,
        held: "192.0.2.99,vip-b".into(),
        ..Default::default()
    };
    peer.links[0] = LinkRecord {
        last_heard_ns: now,
        state: LinkState::Up,
        lost: 4,
        ..Default::default()
    };
    peer.links[1] = LinkRecord {
        state: LinkState::Dead,
        ..Default::default()
    };
    w.write(0, &peer).unwrap();
    w.write(1, &me).unwrap();
    w
}

#[test]
fn snmpd_serves_the_mib_and_sets_weights_that_stay() {
    let (mut a, snmpd, _table) = agent();

    // A walk of the whole MIB, and the same by GETBULK.
    let walk = a.snmp("snmpwalk", &["-c", "public", "-On", AGENT, ".1.3.6.1.4.1.32473.104"]);
    assert!(walk.status.success(), "{}", String::from_utf8_lossy(&walk.stderr));
    let walk = String::from_utf8_lossy(&walk.stdout).to_string();
    let bulk = a.snmp(
        "snmpbulkwalk",
        &["-c", "public", "-On", AGENT, ".1.3.6.1.4.1.32473.104"],
    );
    // The same objects and values but the last-heard times, which move.
    let timeless = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| match l.split_once(" = ") {
                Some((o, _)) if o.starts_with(&format!("{T}.6.1.7.")) || o.starts_with(&format!("{T}.7.1.4.")) => {
                    o.to_string()
                }
                _ => l.to_string(),
            })
            .collect()
    };
    assert_eq!(
        timeless(&String::from_utf8_lossy(&bulk.stdout)),
        timeless(&walk),
        "GETBULK walks the same"
    );
    for want in [
        format!("{T}.1.1.0 = STRING: \"nft\""),
        // tcp/80 (configured), udp/53, then the IPv6 service.
        format!("{T}.2.1.2.1 = STRING: \"tcp/10.77.1.100:80\""),
        format!("{T}.2.1.2.2 = STRING: \"udp/10.77.1.100:53\""),
        format!("{T}.2.1.2.3 = STRING: \"tcp/[2001:db8::10]:443\""),
        format!("{T}.2.1.3.2 = INTEGER: 2"),
        format!("{T}.2.1.4.3 = INTEGER: 2"),
        format!("{T}.2.1.5.1 = Hex-STRING: 0A 4D 01 64 "),
        format!("{T}.2.1.5.3 = Hex-STRING: 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 10 "),
        format!("{T}.2.1.9.1 = Gauge32: 2"),
        format!("{T}.2.1.10.1 = Gauge32: 3"),
        format!("{T}.2.1.11.2 = INTEGER: 2"),
        format!("{} = Hex-STRING: 0A 4D 02 04 ", rs(3, 1, 2)),
        format!(
            "{} = Hex-STRING: 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 02 ",
            rs(3, 3, 1)
        ),
        format!("{} = Gauge32: 53", rs(4, 2, 1)),
        format!("{} = INTEGER: 2", rs(5, 1, 1)),
        format!("{} = INTEGER: 2", rs(6, 1, 2)),
        format!("{} = INTEGER: 3", rs(6, 2, 1)),
        format!("{} = INTEGER: 2", rs(7, 1, 2)),
        format!("{} = INTEGER: -1", rs(7, 2, 1)),
        format!("{} = INTEGER: 7", rs(9, 1, 1)),
        format!("{} = INTEGER: 8", rs(9, 2, 1)),
        format!("{} = STRING: \"web4\"", rs(12, 1, 2)),
        // Hosts: 10.77.2.3 serves two virtual services.
        format!("{T}.4.1.4.1 = STRING: \"web3\""),
        format!("{T}.4.1.5.1 = Gauge32: 2"),
        format!("{T}.5.1.2.1.2 = STRING: \"udp/10.77.1.100:53\""),
        format!("{T}.5.1.3.1.2 = Gauge32: 53"),
        format!("{T}.5.1.6.1.2 = Gauge32: 2"),
        format!("{T}.4.1.4.3 = STRING: \"2001:db8::2\""),
        // The cluster.
        format!("{T}.1.3.0 = STRING: \"dir1\""),
        format!("{T}.1.4.0 = INTEGER: 1"),
        format!("{T}.6.1.2.2 = STRING: \"dir2\""),
        format!("{T}.6.1.3.1 = INTEGER: 1"),
        format!("{T}.6.1.4.2 = INTEGER: 2"),
        format!("{T}.6.1.5.2 = STRING: \"standby\""),
        format!("{T}.6.1.6.2 = Gauge32: 1795000002"),
        format!("{T}.7.1.2.2.2 = STRING: \"b\""),
        format!("{T}.7.1.3.2.1 = INTEGER: 2"),
        format!("{T}.7.1.3.2.2 = INTEGER: 4"),
        format!("{T}.7.1.4.2.2 = INTEGER: -1"),
        format!("{T}.7.1.5.2.1 = Counter64: 4"),
        format!("{T}.8.1.2.1.1 = STRING: \"10.77.1.100\""),
        format!("{T}.8.1.2.2.2 = STRING: \"vip-b\""),
    ] {
        assert!(walk.lines().any(|l| l == want), "no `{want}` in the walk:\n{walk}");
    }
    assert!(!walk.contains(&format!("{T}.7.1.2.1.")), "no links of the local node");
    let heard = walk
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{T}.7.1.4.2.1 = INTEGER: ")))
        .and_then(|v| v.parse::<i64>().ok());
    assert!(
        heard.is_some_and(|ms| (0..10_000).contains(&ms)),
        "dir2 heard on a: {heard:?} ms ago"
    );

    // A follower: health is known; web4 goes down and is quiesced.
    let mut follow = Command::new("ip")
        .args(["netns", "exec", a.ns()])
        .arg(bin("lvs-ctl"))
        .args(["follow", "-c", &a.cfg, "--state", &a.state, "--interval", "200ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut feed = follow.stdin.take().unwrap();
    a.net.adopt(follow);
    a.wait_get(&rs(9, 1, 1), "1");
    feed.write_all(b"host-down web4 service=web/http status=CRITICAL line=refused\n")
        .unwrap();
    a.wait_get(&rs(9, 1, 2), "2");
    assert_eq!(a.kernel_weight("10.77.2.4:80"), Some(0));

    // SET web3's weight: in the kernel when snmpset returns, and it stays there
    // through five of follow's drift repairs.
    let (ok, err) = a.set("private", &rs(6, 1, 1), "i", "5");
    assert!(ok, "{err}");
    assert_eq!(a.kernel_weight("10.77.2.3:80"), Some(5));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(a.kernel_weight("10.77.2.3:80"), Some(5), "follow undid the SET");
    assert_eq!(a.get(&rs(6, 1, 1)), "5");
    assert_eq!(a.get(&rs(8, 1, 1)), "5");
    assert_eq!(a.get(&rs(7, 1, 1)), "1", "the configured weight is still 1");
    let st = a.lvs(&["status", "-c", &a.cfg, "--state", &a.state]);
    assert!(
        String::from_utf8_lossy(&st.stdout).contains("(operator weight 5)"),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );

    // Bad SETs: snmpd's errors, nothing changed.
    let before = a.listing();
    let weights = std::fs::read_to_string(a.net.path("lvs-weights.json")).unwrap();
    for (community, oid, ty, value, reason) in [
        ("private", rs(6, 1, 1), "i", "-1", "wrongValue"),
        ("private", rs(6, 1, 1), "i", "65536", "wrongValue"),
        ("private", rs(6, 1, 1), "u", "5", "wrongType"),
        ("private", rs(6, 1, 1), "s", "5", "wrongType"),
        ("private", rs(9, 1, 1), "i", "1", "notWritable"),
        ("private", format!("{T}.2.1.2.1"), "s", "x", "notWritable"),
        ("private", rs(6, 1, 9), "i", "1", "notWritable"),
        // The read-only community: snmpd's own refusal, lvs-ctl never asked.
        ("public", rs(6, 1, 1), "i", "7", "noAccess"),
    ] {
        let (ok, err) = a.set(community, &oid, ty, value);
        assert!(!ok, "SET {oid} {ty} {value} by {community} was taken");
        assert!(err.contains(&format!("Reason: {reason}")), "{oid} {ty} {value}: {err}");
    }
    assert_eq!(a.listing(), before);
    assert_eq!(
        std::fs::read_to_string(a.net.path("lvs-weights.json")).unwrap(),
        weights
    );

    // A server held out takes its operator weight when it is back.
    let (ok, err) = a.set("private", &rs(6, 1, 2), "i", "9");
    assert!(ok, "{err}");
    assert_eq!(a.kernel_weight("10.77.2.4:80"), Some(0), "still down: still quiesced");
    a.wait_get(&rs(8, 1, 2), "9");
    feed.write_all(b"host-up web4 service=web/http status=OK line=ok\n")
        .unwrap();
    assert!(
        wait_for(|| a.kernel_weight("10.77.2.4:80") == Some(9), Duration::from_secs(5)),
        "web4 came back with {:?}",
        a.kernel_weight("10.77.2.4:80")
    );

    // The next apply keeps the operator weights (and removes what the file lacks).
    let out = a.lvs(&["apply", &a.cfg, "--state", &a.state]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(a.kernel_weight("10.77.2.3:80"), Some(5));
    assert_eq!(a.kernel_weight("10.77.2.4:80"), Some(9));
    assert_eq!(a.kernel_weight("10.77.2.3:53"), None);

    // The same override from a script; a reset gives the configured weight back.
    let out = a.lvs(&[
        "weight",
        "tcp/10.77.1.100:80",
        "10.77.2.3:80",
        "--reset",
        "-c",
        &a.cfg,
        "--state",
        &a.state,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(a.kernel_weight("10.77.2.3:80"), Some(1));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        a.kernel_weight("10.77.2.3:80"),
        Some(1),
        "follow put the old override back"
    );
    a.wait_get(&rs(8, 1, 1), "-1");
    for (args, msg) in [
        (
            vec!["weight", "tcp/nope", "10.77.2.3:80", "3"],
            "SERVICE: `tcp/nope' is not a service",
        ),
        (
            vec!["weight", "tcp/10.77.1.100:80", "10.77.2.3", "3"],
            "REAL: `10.77.2.3' is not ADDRESS:PORT",
        ),
        (vec!["weight", "tcp/10.77.1.100:80", "10.77.2.3:80", "65536"], "65536"),
        (
            vec!["weight", "tcp/10.77.1.100:80", "10.77.2.99:80", "3"],
            "no such real server",
        ),
    ] {
        let mut v = args.clone();
        v.extend(["-c", &a.cfg, "--state", &a.state]);
        let out = a.lvs(&v);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    assert_eq!(a.kernel_weight("10.77.2.3:80"), Some(1));

    // snmpd ends (by its pid); its pass_persist child sees the end of its stdin and goes.
    let pid_file = std::fs::read_to_string(a.net.path("snmpd.pid")).unwrap();
    assert_eq!(pid_file.trim().parse::<u32>().ok(), Some(snmpd));
    a.net.kill(snmpd, nix::sys::signal::Signal::SIGTERM);
    assert!(
        wait_for(
            || {
                let out = Command::new("ip").args(["netns", "pids", a.ns()]).output().unwrap();
                !String::from_utf8_lossy(&out.stdout).split_whitespace().any(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains("snmp\0--config"))
                })
            },
            Duration::from_secs(5)
        ),
        "lvs-ctl snmp outlived snmpd"
    );
}

#[test]
fn the_mib_passes_smilint_and_snmptranslate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/snmp");
    let path = format!("{}:{}/ietf", dir.display(), dir.display());
    let out = Command::new("smilint")
        .args(["-l", "6", "-s"])
        .arg(dir.join("HAKIT-MIB.txt"))
        .env("SMIPATH", &path)
        .output()
        .expect("smilint (Debian's smitools)");
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    // The one thing left: 32473 is defined by no MIB module (RFC 5612 names it only in
    // prose), so `{ enterprises 32473 104 }` defines that node implicitly.
    let left: Vec<&str> = text
        .lines()
        .filter(|l| !l.ends_with("[5] warning: implicit node definition"))
        .collect();
    assert!(out.status.success() && left.is_empty(), "smilint: {text}");
    assert_eq!(text.lines().count(), 1, "{text}");

    let out = Command::new("snmptranslate")
        .args(["-m", "HAKIT-MIB", "-M"])
        .arg(format!("+{path}"))
        .arg("-Tp")
        .env("MIBS", "")
        .output()
        .expect("snmptranslate (Debian's snmp)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "snmptranslate: {err}");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("+--hakitMIB(104)"), "{tree}");
    assert!(tree.contains("-RW- Integer32 hakitRsWeight(6)"), "{tree}");
    assert!(tree.contains("Index: hakitVsIndex, hakitRsIndex"), "{tree}");
    let out = Command::new("snmptranslate")
        .args(["-m", "HAKIT-MIB", "-M"])
        .arg(format!("+{path}"))
        .args(["-On", "HAKIT-MIB::hakitRsWeight"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ".1.3.6.1.4.1.32473.104.1.3.1.6"
    );
}

#[test]
fn bad_settings_are_one_line_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("hakit.yaml");
    std::fs::write(&bad, "lvs-ctl:\n  backend: nft\n  servicez: []\n").unwrap();
    let state = d.path().join("s.json").display().to_string();
    for (args, want) in [
        (
            vec!["snmp", "--oid", "1.x", "--state", &state],
            "--oid: `1.x' is not an OID".to_string(),
        ),
        (vec!["snmp", "--refresh", "soon", "--state", &state], "soon".to_string()),
        (
            vec!["snmp", "-c", bad.to_str().unwrap(), "--state", &state],
            format!("{}:3:3", bad.display()),
        ),
    ] {
        let out = Command::new(bin("lvs-ctl"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&want), "{args:?}: {err}");
        // clap's own usage errors add a hint line; ours are one line.
        assert!(args[1] == "--refresh" || err.lines().count() == 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing for snmpd to read");
    }
}
