//! The tools' Prometheus output, checked by Debian's promtool (`promtool check
//! metrics`: the parser and its lint) and read back for its values: a three-node
//! cluster on two bridges with loss on one channel and a node killed; a director with
//! the nft backend, `mon-check run` feeding `lvs-ctl follow`, one web server killed.

mod common;
use common::lvs::{Lab, DIRECTOR, FOLLOWED};
use common::*;
use nix::sys::signal::Signal;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PROMTOOL: &str = "/usr/bin/promtool";
const S: Duration = Duration::from_secs(1);

/// `promtool check metrics` of `text`: its exit status and what it said.
fn promtool(text: &str) -> (i32, String) {
    assert!(
        Path::new(PROMTOOL).exists(),
        "these tests need {PROMTOOL} (Debian's prometheus package)"
    );
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// promtool finds nothing to say: it parses and passes the lint.
fn assert_clean(text: &str) {
    let (code, said) = promtool(text);
    assert!(
        code == 0 && said.trim().is_empty(),
        "promtool: exit {code}: {said}\n{text}"
    );
}

/// The value of the one sample `series` (`name{labels}` exactly as written).
fn value(text: &str, series: &str) -> f64 {
    let v: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert_eq!(v.len(), 1, "{series} once in:\n{text}");
    v[0]
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// promtool really checks: what the format forbids fails, so the clean runs below
/// mean something.
#[test]
fn promtool_refuses_what_the_format_forbids() {
    assert_clean("# HELP hakit_x X.\n# TYPE hakit_x gauge\nhakit_x 1\n");
    for (bad, why) in [
        (
            "# HELP hakit_x X.\n# TYPE hakit_x gauge\nhakit_x 1\n# HELP hakit_x X.\n# TYPE hakit_x gauge\nhakit_x{a=\"1\"} 1\n",
            "a family twice",
        ),
        ("# HELP hakit_x X.\n# TYPE hakit_x gauge\nhakit_x{a=\"b\nc\"} 1\n", "a raw newline in a label value"),
        ("# HELP hakit_x X.\n# TYPE hakit_x counter\nhakit_x 1\n", "a counter without _total"),
        ("# TYPE hakit_x gauge\nhakit_x 1\n", "no HELP"),
    ] {
        let (code, said) = promtool(bad);
        assert_ne!(code, 0, "promtool passed {why}: {said}");
    }
}

#[test]
fn the_cluster_state_with_loss_a_dead_node_and_a_stale_table() {
    let mut net = Net::new(3, 2);
    // Half of n2's packets on channel b are dropped on their way into n1.
    net.nft(
        net.ns(1),
        "table inet loss {\n chain input {\n  type filter hook input priority 0;\n  \
         iifname \"eth1\" ip saddr 10.77.2.2 udp dport 694 numgen random mod 2 == 0 drop\n }\n}\n",
    );
    let mut ev = net.watch(
        1,
        &["--deadtime", "1s", "--ping", "10.77.1.2", "--ping-interval", "100ms"],
    );
    let senders: Vec<u32> = (1..=3)
        .map(|i| net.send(i, &["--keepalive", "50ms", "--deadtime", "1s"]))
        .collect();
    ev.expect("node-up n2", 3 * S);
    ev.expect("node-up n3", 3 * S);
    std::fs::write(net.path("n2.fifo"), ">>>\nt=status\nheld=10.77.1.100@3.1,web\n<<<\n").unwrap();
    ev.expect("node-status n2", 3 * S);
    // A packet no node can be named for, on channel a.
    let n3 = net.ns(3).to_string();
    in_netns(&n3, || {
        let s = std::net::UdpSocket::bind("10.77.1.3:0").unwrap();
        s.send_to(b"not a message", "10.77.1.1:694").unwrap();
    });
    std::thread::sleep(S);

    let table = net.path("n1.ast").display().to_string();
    let ns1 = net.ns(1).to_string();
    let out = net.run(&ns1, &bin("hb-watch"), &["status", "--prometheus", "--table", &table]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let t = stdout(&out);
    assert_clean(&t);
    assert_eq!(value(&t, "hakit_table_writer_up"), 1.0);
    assert_eq!(value(&t, "hakit_node_state{node=\"n2\",state=\"up\"}"), 1.0);
    assert_eq!(value(&t, "hakit_node_state{node=\"n2\",state=\"dead\"}"), 0.0);
    assert_eq!(
        value(&t, "hakit_node_info{node=\"n2\",local=\"false\",status=\"active\"}"),
        1.0
    );
    let lost_b = value(&t, "hakit_link_messages_lost_total{node=\"n2\",channel=\"b\"}");
    assert!(lost_b > 0.0, "{t}");
    assert_eq!(
        value(&t, "hakit_link_messages_lost_total{node=\"n2\",channel=\"a\"}"),
        0.0
    );
    assert_eq!(
        value(&t, "hakit_link_messages_lost_total{node=\"n3\",channel=\"b\"}"),
        0.0
    );
    assert!(
        value(&t, "hakit_channel_rejected_unnamed_total{channel=\"a\"}") >= 1.0,
        "{t}"
    );
    assert_eq!(value(&t, "hakit_node_holds{node=\"n2\",address=\"10.77.1.100\"}"), 1.0);
    assert_eq!(value(&t, "hakit_node_holds{node=\"n2\",address=\"web\"}"), 1.0);
    assert!(value(&t, "hakit_node_last_heard_age_seconds{node=\"n2\"}") < 1.0, "{t}");
    assert_eq!(value(&t, "hakit_node_deadtime_seconds{node=\"n3\"}"), 1.0);
    assert_eq!(value(&t, "hakit_ping_node_state{ping=\"10.77.1.2\",state=\"up\"}"), 1.0);
    assert_eq!(value(&t, "hakit_node_ping_nodes_reachable{node=\"n1\"}"), 1.0);
    assert_eq!(value(&t, "hakit_node_ping_nodes{node=\"n1\"}"), 1.0);

    // n3 killed: dead, its links dead; written to a file the textfile collector reads.
    net.kill(senders[2], Signal::SIGKILL);
    ev.expect("node-dead n3", 5 * S);
    let file = net.path("collector/hakit-cluster.prom");
    let f = file.display().to_string();
    let out = net.run(
        &ns1,
        &bin("hb-watch"),
        &["status", "--prometheus-out", &f, "--table", &table],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let t = std::fs::read_to_string(&file).unwrap();
    assert_clean(&t);
    assert_eq!(value(&t, "hakit_node_state{node=\"n3\",state=\"dead\"}"), 1.0);
    assert_eq!(
        value(&t, "hakit_link_state{node=\"n3\",channel=\"a\",state=\"dead\"}"),
        1.0
    );
    assert_eq!(
        value(&t, "hakit_link_state{node=\"n3\",channel=\"b\",state=\"dead\"}"),
        1.0
    );
    assert!(value(&t, "hakit_link_messages_lost_total{node=\"n2\",channel=\"b\"}") >= lost_b);
    let names: Vec<_> = std::fs::read_dir(net.path("collector"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary left beside it: {names:?}");

    // Bad flags: one line naming the flag, exit 2, nothing written.
    for (args, flag) in [
        (&["--prometheus-out", "x.txt"][..], "--prometheus-out"),
        (&["--prometheus", "--json"][..], "--json"),
        (&["--prometheus", "n2"][..], "--prometheus"),
    ] {
        let mut a = vec!["status", "--table", &table];
        a.extend_from_slice(args);
        let out = net.run(&ns1, &bin("hb-watch"), &a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.lines().next().unwrap_or("").contains(flag), "{args:?}: {err}");
    }

    // A place that cannot be written: one line naming it, exit 1.
    let bad = format!("{table}/m.prom");
    let out = net.run(
        &ns1,
        &bin("hb-watch"),
        &["status", "--prometheus-out", &bad, "--table", &table],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.lines().count() == 1 && err.contains(&table), "{err}");

    // No writer: still written, said stale, exit 1.
    net.kill(ev.pid, Signal::SIGKILL);
    let out = net.run(&ns1, &bin("hb-watch"), &["status", "--prometheus", "--table", &table]);
    assert_eq!(out.status.code(), Some(1));
    let t = stdout(&out);
    assert_clean(&t);
    assert_eq!(value(&t, "hakit_table_writer_up"), 0.0);
}

/// The followed lab's configuration, with weights of 3, 4 and 5.
fn config() -> String {
    let mut c = FOLLOWED.replace("scheduler: rr", "scheduler: wrr");
    for (i, w) in [(3, 3), (4, 4), (5, 5)] {
        let r = format!("        - address: 10.77.2.{i}:80\n");
        c = c.replace(&r, &format!("{r}          weight: {w}\n"));
    }
    // The metrics unit's user reaches the socket through its group (nobody's here).
    c.replace(
        "  socket: DIR/mon.sock\n",
        "  socket: DIR/mon.sock\n  socket-group: nogroup\n",
    )
}

#[test]
fn real_servers_weights_and_checks() {
    let mut lab = Lab::nat(3);
    let cfg = lab.net.path("hakit.yaml");
    let c = cfg.display().to_string();
    std::fs::write(&cfg, config().replace("DIR", &lab.net.dir.path().display().to_string())).unwrap();
    std::fs::create_dir_all(lab.net.path("maint")).unwrap();
    let state = lab.net.path("follow.json").display().to_string();
    let out = lab.lvs(&["apply", &c]);
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    // mon-check run | lvs-ctl follow, each started by itself so that both PIDs are ours.
    let ns = lab.net.ns(DIRECTOR).to_string();
    let mut mon = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(bin("mon-check"))
        .args(["run", "-c", &c])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let events = mon.stdout.take().unwrap();
    lab.net.adopt(mon);
    let follow = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(bin("lvs-ctl"))
        .args(["follow", "-c", &c, "--state", &state, "--interval", "200ms"])
        .stdin(Stdio::from(events))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    lab.net.adopt(follow);
    lab.kill_server(3);
    let status = |lab: &Lab| {
        let o = lab.lvs(&["status", "--prometheus", "-c", &c, "--state", &state]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o)
    };
    let down = "hakit_lvs_real_health{service=\"tcp/10.77.1.100:80\",real=\"10.77.2.3:80\",state=\"down\"} 1";
    assert!(
        wait_for(|| status(&lab).contains(down), 10 * S),
        "n3 never down: {}",
        status(&lab)
    );
    let w = lab.lvs(&[
        "weight",
        "tcp/10.77.1.100:80",
        "10.77.2.4:80",
        "7",
        "-c",
        &c,
        "--state",
        &state,
    ]);
    assert!(w.status.success(), "weight: {}", String::from_utf8_lossy(&w.stderr));
    let real = |r: &str| format!("{{service=\"tcp/10.77.1.100:80\",real=\"{r}\"}}");
    assert!(
        wait_for(
            || status(&lab).contains(&format!("hakit_lvs_real_kernel_weight{} 7", real("10.77.2.4:80"))),
            5 * S
        ),
        "{}",
        status(&lab)
    );
    let t = status(&lab);
    assert_clean(&t);
    assert_eq!(value(&t, "hakit_lvs_follower_up"), 1.0);
    assert_eq!(
        value(
            &t,
            "hakit_lvs_service_info{service=\"tcp/10.77.1.100:80\",scheduler=\"wrr\",backend=\"nft\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&t, &format!("hakit_lvs_real_configured_weight{}", real("10.77.2.3:80"))),
        3.0
    );
    assert_eq!(
        value(&t, &format!("hakit_lvs_real_configured_weight{}", real("10.77.2.5:80"))),
        5.0
    );
    assert_eq!(
        value(&t, &format!("hakit_lvs_real_operator_weight{}", real("10.77.2.4:80"))),
        7.0
    );
    assert_eq!(
        value(&t, &format!("hakit_lvs_real_kernel_weight{}", real("10.77.2.3:80"))),
        0.0
    );
    assert_eq!(
        value(&t, &format!("hakit_lvs_real_kernel_weight{}", real("10.77.2.5:80"))),
        5.0
    );
    assert_eq!(
        value(
            &t,
            "hakit_lvs_real_state{service=\"tcp/10.77.1.100:80\",real=\"10.77.2.3:80\",state=\"quiesced\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &t,
            "hakit_lvs_real_state{service=\"tcp/10.77.1.100:80\",real=\"10.77.2.5:80\",state=\"in\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&t, "hakit_lvs_service_live_weight{service=\"tcp/10.77.1.100:80\"}"),
        12.0
    );
    assert!(
        !t.contains("_connections"),
        "nft counts no connections: none invented\n{t}"
    );

    // The checks, from the scheduler's socket, acknowledged or not.
    let list = |lab: &Lab, args: &[&str]| {
        let mut a = vec!["ctl", "-c", &c, "list"];
        a.extend_from_slice(args);
        let o = lab.net.run(&ns, &bin("mon-check"), &a);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o)
    };
    let t = list(&lab, &["--prometheus"]);
    assert_clean(&t);
    let svc = "group=\"web\",service=\"http\"";
    assert_eq!(value(&t, &format!("hakit_check_state{{{svc},state=\"failing\"}}")), 1.0);
    assert_eq!(value(&t, &format!("hakit_check_state{{{svc},state=\"ok\"}}")), 0.0);
    assert!(
        value(&t, &format!("hakit_check_consecutive_failures{{{svc}}}")) >= 1.0,
        "{t}"
    );
    assert_eq!(value(&t, &format!("hakit_check_acknowledged{{{svc}}}")), 0.0);
    let host = |h: &str, st: &str| format!("hakit_check_host_status{{{svc},host=\"{h}\",state=\"{st}\"}}");
    assert_eq!(value(&t, &host("10.77.2.3", "critical")), 1.0);
    assert_eq!(value(&t, &host("10.77.2.4", "ok")), 1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = value(&t, &format!("hakit_check_last_run_timestamp_seconds{{{svc}}}"));
    assert!((now - last).abs() < 5.0, "last run {last}, now {now}");
    let ack = lab.net.run(
        &ns,
        &bin("mon-check"),
        &["ctl", "-c", &c, "ack", "web", "http", "on it"],
    );
    assert!(ack.status.success(), "{}", String::from_utf8_lossy(&ack.stderr));
    let file = lab.net.path("collector/hakit-checks.prom");
    let out = list(&lab, &["--prometheus-out", &file.display().to_string()]);
    assert!(out.is_empty(), "{out}");
    let t = std::fs::read_to_string(&file).unwrap();
    assert_clean(&t);
    assert_eq!(value(&t, &format!("hakit_check_acknowledged{{{svc}}}")), 1.0);
    // Two outputs asked for: one line, mon-check's usage status, nothing written.
    std::fs::remove_file(&file).unwrap();
    let f = file.display().to_string();
    let o = lab.net.run(
        &ns,
        &bin("mon-check"),
        &["--json", "ctl", "-c", &c, "list", "--prometheus-out", &f],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!file.exists());
    let o = lab.lvs(&["status", "--prometheus-out", "lvs.txt", "-c", &c]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.lines().next().unwrap_or("").contains("--prometheus-out"), "{err}");

    // hakit-metrics.service's own commands on this director, for real.
    let _ev = lab.net.watch(DIRECTOR, &["--deadtime", "1s"]);
    let table = lab.net.path("n2.ast");
    assert!(wait_for(|| table.exists(), 3 * S), "hb-watch made no table");
    let env = format!(
        "HB_WATCH_ARGS=\"--table {}\"\nLVS_CTL_ARGS=\"-c {c} --state {state}\"\nMON_CHECK_ARGS=\"-c {c}\"\n",
        table.display()
    );
    run_the_metrics_unit(&lab, &env);
}

/// `VAR=value` and `VAR="a b"` lines, as systemd's EnvironmentFile= reads them.
fn env_file(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// hakit-metrics.service's commands, every one (the commented ones too), as systemd
/// runs them: `$VAR` split into words from `env` (an EnvironmentFile=), the unit's
/// user (nobody here, in the group of the collector's directory) with its
/// AmbientCapabilities= only, under umask 077, writing to a directory like the one
/// the unit documents. Each succeeds, and node_exporter's user can read what it made.
fn run_the_metrics_unit(lab: &Lab, env: &str) {
    let vars = env_file(env);
    let collector = lab.net.path("node-exporter");
    std::fs::create_dir_all(&collector).unwrap();
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().unwrap().gid;
    nix::unistd::chown(&collector, None, Some(nogroup)).unwrap();
    set_mode(&collector, 0o775);
    set_mode(lab.net.dir.path(), 0o755);
    let unit = std::fs::read_to_string(contrib("systemd/hakit-metrics.service")).unwrap();
    assert!(unit.contains("EnvironmentFile=-/etc/hakit/metrics.env"), "{unit}");
    let caps = unit_caps("hakit-metrics.service");
    let bins = bin("hb-watch").parent().unwrap().display().to_string();
    let mut ran = 0;
    for l in unit.lines() {
        let Some(cmd) = l.trim_start_matches('#').strip_prefix("ExecStart=") else {
            continue;
        };
        let cmd = cmd
            .strip_prefix('-')
            .unwrap_or_else(|| panic!("{cmd}: without `-`, a failure stops the others"));
        let mut argv = as_nobody(&caps);
        for w in cmd.split_whitespace() {
            let w = w
                .replace("/usr/local/bin", &bins)
                .replace("/var/lib/prometheus/node-exporter", &collector.display().to_string());
            match w.strip_prefix('$') {
                Some(v) => argv.extend(
                    vars.get(v)
                        .map(String::as_str)
                        .unwrap_or("")
                        .split_whitespace()
                        .map(String::from),
                ),
                None => argv.push(w),
            }
        }
        let out_file = argv.last().unwrap().clone();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", lab.net.ns(DIRECTOR)]).args(&argv);
        // SAFETY: umask(2) is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut c, || {
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
                Ok(())
            });
        }
        let o = c.output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{argv:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let m = std::fs::metadata(&out_file).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(m.mode() & 0o777, 0o644, "{out_file}: node_exporter's user reads it");
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
        assert_eq!(m.uid(), nobody.as_raw(), "{out_file}");
        assert_clean(&std::fs::read_to_string(&out_file).unwrap());
        ran += 1;
        // Without the unit's capability: one line naming it, and the last file stays.
        if argv.iter().any(|a| a.ends_with("/lvs-ctl")) {
            let before = std::fs::read_to_string(&out_file).unwrap();
            let bare = &argv[as_nobody(&caps).len()..];
            let mut a = as_nobody("");
            a.extend(bare.iter().cloned());
            let o = Command::new("ip")
                .args(["netns", "exec", lab.net.ns(DIRECTOR)])
                .args(&a)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{err}");
            assert!(err.lines().count() == 1 && err.contains("needs CAP_NET_ADMIN"), "{err}");
            assert_eq!(std::fs::read_to_string(&out_file).unwrap(), before);
        }
    }
    assert_eq!(ran, 3, "{unit}");
}

fn contrib(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib").join(p)
}

fn promtool_run(args: &[&str]) -> (i32, String) {
    let out = Command::new(PROMTOOL).args(args).output().expect("run promtool");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// contrib/prometheus's alerts: valid rules, and their unit tests pass; a test that
/// expects the wrong node fails, so the passing one says something.
#[test]
fn the_alert_rules_check_and_their_tests_pass() {
    let rules = contrib("prometheus/hakit-rules.yml");
    let tests = contrib("prometheus/hakit-rules.test.yml");
    let (code, said) = promtool_run(&["check", "rules", &rules.display().to_string()]);
    assert!(
        code == 0 && said.contains("SUCCESS: 12 rules found"),
        "exit {code}: {said}"
    );
    let (code, said) = promtool_run(&["test", "rules", &tests.display().to_string()]);
    assert_eq!(code, 0, "{said}");
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(&rules, d.path().join("hakit-rules.yml")).unwrap();
    let text = std::fs::read_to_string(&tests).unwrap();
    let wrong = text.replacen(
        "instance: n1, node: n3, state: dead",
        "instance: n1, node: n2, state: dead",
        1,
    );
    assert_ne!(wrong, text);
    let t = d.path().join("wrong.test.yml");
    std::fs::write(&t, wrong).unwrap();
    let (code, said) = promtool_run(&["test", "rules", &t.display().to_string()]);
    assert_ne!(code, 0, "a wrong expectation passed: {said}");
}

/// contrib/systemd's metrics units are valid units (with the built binaries in place
/// of /usr/local/bin); real_servers_weights_and_checks runs their commands.
#[test]
fn the_metrics_units_verify() {
    let bins = bin("hb-watch").parent().unwrap().display().to_string();
    let d = tempfile::tempdir().unwrap();
    for u in ["hakit-metrics.service", "hakit-metrics.timer"] {
        let text = std::fs::read_to_string(contrib(&format!("systemd/{u}"))).unwrap();
        std::fs::write(d.path().join(u), text.replace("/usr/local/bin", &bins)).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(d.path().join("hakit-metrics.service"))
        .arg(d.path().join("hakit-metrics.timer"))
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
