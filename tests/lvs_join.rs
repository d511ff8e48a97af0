//! Real servers that join the pool at run time (issue 12, seed 000), in namespaces on
//! one bridge (10.77.1.0/24):
//!
//! - directors n1 and n2: hb-watch → a FIFO that `lvs-ctl follow --events` made and
//!   reads, with the nft backend; follow's stdin is a pipe the test holds (where
//!   mon-check's events would come; the joiners' checks are follow's own);
//! - worker n3: hb-send, `lvs-ctl join`, and a TCP server on 10.77.1.3:8080 that the
//!   service's check (`tcp -p 8080`) connects to;
//! - n4, a node the directors' `join.allow` does not name; n5, one it names but which
//!   signs with another key.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SERVICE: &str = "tcp/10.77.1.100:80";
const S: Duration = Duration::from_secs(1);

const CFG: &str = "lvs-ctl:
  backend: nft
  services:
    - service: tcp 10.77.1.100:80
      scheduler: rr
      forward: masq
      check: web/tcp
      on-failure: remove
      join: {allow: [n3, n5], weight-max: 5, lease: 3s}
mon-check:
  state-dir: DIR/mon
  socket: DIR/mon.sock
  hostgroups:
    web: [127.0.0.1]
  watches:
    web:
      tcp:
        interval: 300ms
        monitor: tcp -p 8080 -t 1
";

/// A director: follow (its events and log lines through channels) fed by hb-watch.
struct Director {
    node: usize,
    events: mpsc::Receiver<String>,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
    follow: u32,
    watch: u32,
    state: PathBuf,
    /// mon-check's side of follow's input, held open (its end would end follow).
    _stdin: ChildStdin,
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn config(net: &Net) -> PathBuf {
    let c = net.path("hakit.yaml");
    if !c.exists() {
        std::fs::write(&c, CFG.replace("DIR", &net.dir.path().display().to_string())).unwrap();
    }
    c
}

fn director(net: &mut Net, i: usize) -> Director {
    let c = config(net);
    let fifo = net.path(&format!("n{i}-events.fifo"));
    let state = net.path(&format!("n{i}-follow.json"));
    let mut child = Command::new("ip")
        .args(["netns", "exec", net.ns(i)])
        .arg(bin("lvs-ctl"))
        .args(["follow", "-c"])
        .arg(&c)
        .arg("--state")
        .arg(&state)
        .args(["--interval", "200ms", "--events"])
        .arg(&fifo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let events = lines_of(child.stdout.take().unwrap());
    let log = lines_of(child.stderr.take().unwrap());
    let follow = child.id();
    net.adopt(child);
    assert!(
        wait_for(|| fifo.exists(), 5 * S),
        "follow made no FIFO {}",
        fifo.display()
    );
    // follow holds it open read-write: this open does not wait.
    let out = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let mut args = net.common(i);
    args.extend(["--deadtime".into(), "600ms".into()]);
    let ns = net.ns(i).to_string();
    let watch = net.spawn(&ns, &bin("hb-watch"), &args, Stdio::from(out));
    Director {
        node: i,
        events,
        log,
        seen: Vec::new(),
        follow,
        watch,
        state,
        _stdin: stdin,
    }
}

impl Director {
    /// The next event starting with `prefix` within `d`.
    fn expect(&mut self, prefix: &str, d: Duration) -> String {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "director n{}: no `{prefix}` within {d:?}; saw {:#?}",
            self.node, self.seen
        );
    }

    /// Every event for a while.
    fn gather(&mut self, d: Duration) -> Vec<String> {
        let end = Instant::now() + d;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    out.push(l);
                }
                Err(_) => break,
            }
        }
        out
    }

    /// follow's summary line (USR1).
    fn summary(&mut self) -> String {
        while self.log.try_recv().is_ok() {}
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.follow as i32), Signal::SIGUSR1).unwrap();
        let end = Instant::now() + 3 * S;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.log.recv_timeout(left) {
                Ok(l) if l.contains("following ") => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("director n{}: no summary after USR1", self.node);
    }
}

/// The director's kernel table as `-S -n` lines (nft backend).
fn saved(net: &Net, i: usize) -> String {
    let out = net.run(net.ns(i), &bin("lvs-ctl"), &["--backend", "nft", "-S", "-n"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn listed(net: &Net, i: usize) -> String {
    let out = net.run(net.ns(i), &bin("lvs-ctl"), &["--backend", "nft", "-L", "-n"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `lvs-ctl join` on node `i` for its address 10.77.1.I:8080.
fn join(net: &mut Net, i: usize) -> u32 {
    let args: Vec<String> = [
        "join",
        "--fifo",
        &net.path(&format!("n{i}.fifo")).display().to_string(),
        "--service",
        SERVICE,
        "--addr",
        &format!("10.77.1.{i}"),
        "--port",
        "8080",
        "--weight",
        "9",
        "--every",
        "300ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let ns = net.ns(i).to_string();
    net.spawn(&ns, &bin("lvs-ctl"), &args, Stdio::null())
}

/// A TCP server on 10.77.1.I:8080 that accepts and closes.
fn server(net: &mut Net, i: usize) -> u32 {
    let code = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('10.77.1.{i}',8080))\ns.listen(64)\nwhile True:\n    c,_=s.accept()\n    c.close()\n"
    );
    let ns = net.ns(i).to_string();
    let pid = net.spawn(&ns, Path::new("/usr/bin/python3"), &["-c".into(), code], Stdio::null());
    // Listening before the test goes on.
    assert!(
        wait_for(
            || net
                .run(
                    &ns,
                    Path::new("/usr/bin/python3"),
                    &[
                        "-c",
                        &format!("import socket; socket.create_connection(('10.77.1.{i}',8080),1)")
                    ]
                )
                .status
                .success(),
            5 * S
        ),
        "the TCP server on n{i} does not listen"
    );
    pid
}

/// Whether node `of` is up in director `i`'s table, and what it counted as rejected
/// before a node could be named.
fn heard(net: &Net, i: usize, of: &str) -> (bool, u64) {
    let out = net.run(
        net.ns(i),
        &bin("hb-watch"),
        &[
            "status",
            "--json",
            "--table",
            &net.path(&format!("n{i}.ast")).display().to_string(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let up = v["nodes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n["node"] == of && n["state"] == "up"));
    let rejected = v["rejected_unattributed"][0].as_u64().unwrap_or(0);
    (up, rejected)
}

const REAL: &str = "-a -t 10.77.1.100:80 -r 10.77.1.3:8080 -m -w 5";

#[test]
fn a_worker_joins_once_its_check_passes_and_leaves_on_term_and_on_death() {
    let mut net = Net::new(3, 1);
    let mut a = director(&mut net, 1);
    net.send(3, &["--keepalive", "100ms", "--deadtime", "600ms"]);
    let j = join(&mut net, 3);
    // Heard, its joins read, but its server is down: waiting for its check, not in.
    assert!(wait_for(|| heard(&net, 1, "n3").0, 5 * S), "n1 never heard n3");
    std::thread::sleep(S);
    let sum = a.summary();
    assert!(sum.contains(", 0 joined, 1 waiting for their check"), "{sum}");
    assert!(!saved(&net, 1).contains("10.77.1.3"), "{}", saved(&net, 1));
    assert!(!a.gather(Duration::ZERO).iter().any(|l| l.starts_with("real-joined")));

    // Its server comes up: in, with its weight cut to weight-max.
    let srv = server(&mut net, 3);
    let t = Instant::now();
    let ev = a.expect("real-joined 10.77.1.3:8080", 3 * S);
    assert!(
        ev.contains(&format!("service={SERVICE} host=10.77.1.3 node=n3 weight=5")),
        "{ev}"
    );
    assert!(t.elapsed() < 2 * S, "within a check interval or so: {:?}", t.elapsed());
    assert!(saved(&net, 1).contains(REAL), "{}", saved(&net, 1));
    assert!(listed(&net, 1).contains("-> 10.77.1.3:8080"), "{}", listed(&net, 1));
    let (c, state) = (config(&net).display().to_string(), a.state.display().to_string());
    let st = net.run(
        net.ns(1),
        &bin("lvs-ctl"),
        &["status", "--backend", "nft", "-c", &c, "--state", &state],
    );
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        text.contains("10.77.1.3:8080") && text.contains("joined by n3"),
        "{text}"
    );

    // A second director, started later, learns of it from a renewal, on its own.
    let mut b = director(&mut net, 2);
    let ev = b.expect("real-joined 10.77.1.3:8080", 5 * S);
    assert!(ev.contains("node=n3"), "{ev}");
    assert!(saved(&net, 2).contains(REAL), "{}", saved(&net, 2));

    // apply with a live follower (which it tells to reload) keeps what it holds.
    let out = net.run(net.ns(1), &bin("lvs-ctl"), &["apply", &c, "--state", &state]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        saved(&net, 1).contains(REAL),
        "apply removed the joiner: {}",
        saved(&net, 1)
    );
    assert!(
        !a.gather(Duration::from_millis(500))
            .iter()
            .any(|l| l.starts_with("real-left")),
        "the reload kept it"
    );

    // Its check fails while in: out as on-failure says (remove), and back.
    net.kill(srv, Signal::SIGKILL);
    let ev = a.expect("real-down 10.77.1.3:8080", 3 * S);
    assert!(ev.contains("action=remove"), "{ev}");
    assert!(!saved(&net, 1).contains("10.77.1.3"));
    b.expect("real-down 10.77.1.3:8080", 3 * S);
    server(&mut net, 3);
    a.expect("real-up 10.77.1.3:8080", 3 * S);
    b.expect("real-up 10.77.1.3:8080", 3 * S);
    assert!(saved(&net, 1).contains(REAL) && saved(&net, 2).contains(REAL));

    // lvs-ctl join stopped: its leave takes it out of both at once.
    net.kill(j, Signal::SIGTERM);
    let ev = a.expect("real-left 10.77.1.3:8080", 2 * S);
    assert!(ev.ends_with("node=n3 reason=leave"), "{ev}");
    b.expect("real-left 10.77.1.3:8080", 2 * S);
    assert!(!saved(&net, 1).contains("10.77.1.3") && !saved(&net, 2).contains("10.77.1.3"));
    assert!(
        wait_for(|| process_gone(j as i32), 2 * S),
        "join exited after its leave"
    );

    // Joined again; then its hb-send is killed: node-dead takes it out, no check waited for.
    let j2 = join(&mut net, 3);
    a.expect("real-joined 10.77.1.3:8080", 3 * S);
    b.expect("real-joined 10.77.1.3:8080", 3 * S);
    let send = hb_send_pid(&net, 3);
    let t = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(send), Signal::SIGKILL).unwrap();
    let ev = a.expect("real-left 10.77.1.3:8080", 3 * S);
    assert!(ev.ends_with("reason=node-dead"), "{ev}");
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "at the deadtime (600ms), not at the lease (3s): {:?}",
        t.elapsed()
    );
    b.expect("real-left 10.77.1.3:8080", 3 * S);
    assert!(!saved(&net, 1).contains("10.77.1.3") && !saved(&net, 2).contains("10.77.1.3"));
    net.kill(j2, Signal::SIGKILL);
    let _ = (a.watch, b.watch);
}

/// hb-send's pid on node `i` (started through `ip netns exec`, which execs it).
fn hb_send_pid(net: &Net, i: usize) -> i32 {
    let out = Command::new("ip").args(["netns", "pids", net.ns(i)]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "hb-send"))
        .expect("hb-send runs")
}

#[test]
fn a_node_outside_allow_is_refused_and_one_without_the_key_is_never_heard() {
    let mut net = Net::new(5, 1);
    let mut a = director(&mut net, 1);
    // n4: the key, but not in allow. A server that would pass its check.
    server(&mut net, 4);
    net.send(4, &["--keepalive", "100ms", "--deadtime", "600ms"]);
    join(&mut net, 4);
    let ev = a.expect("join-refused n4 ", 5 * S);
    assert!(
        ev.ends_with(&format!("service={SERVICE} real=10.77.1.4:8080 reason=not-allowed")),
        "{ev}"
    );
    // n5: named in allow, with its own server, but signing with another key.
    let other = net.path("other-authkeys");
    std::fs::write(&other, "auth 1\n1 sha256 not-the-cluster-key\n").unwrap();
    set_mode(&other, 0o600);
    server(&mut net, 5);
    let keys = net.keys().display().to_string();
    let mut args: Vec<String> = net
        .common(5)
        .into_iter()
        .map(|a| if a == keys { other.display().to_string() } else { a })
        .collect();
    args.extend(
        [
            "--generation-file",
            &net.path("n5.gen").display().to_string(),
            "--fifo",
            &net.path("n5.fifo").display().to_string(),
            "--keepalive",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let ns = net.ns(5).to_string();
    net.spawn(&ns, &bin("hb-send"), &args, Stdio::null());
    join(&mut net, 5);
    let (_, before) = heard(&net, 1, "n5");
    let later = a.gather(3 * S);
    assert!(
        !later
            .iter()
            .any(|l| l.contains("10.77.1.5") || l.contains(" n5 ") || l.contains("real-joined")),
        "{later:?}"
    );
    assert_eq!(
        later.iter().filter(|l| l.starts_with("join-refused n4")).count(),
        0,
        "said once"
    );
    let (up, after) = heard(&net, 1, "n5");
    assert!(!up, "n5 is never a node of n1's");
    assert!(
        after > before,
        "its messages were counted as rejected: {before} → {after}"
    );
    let sum = a.summary();
    assert!(sum.contains(", 0 joined, 0 waiting for their check"), "{sum}");
    let s = saved(&net, 1);
    assert!(!s.contains("10.77.1.4") && !s.contains("10.77.1.5"), "{s}");
}
