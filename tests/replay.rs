//! Replays and forged generations against hb-watch, and what hb-send refuses to
//! announce, on loopback (each test its own port and files). Each test here failed
//! before its fix.

mod common;
use common::*;
use hakit::wire::authkeys::AuthKeys;
use hakit::wire::msg::Builder;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

const SECRET: &str = "auth 1\n1 sha256 replay-test\n";
static PORT: AtomicU16 = AtomicU16::new(0);

fn port() -> u16 {
    // A port per test and per run, away from the other suites' (47694, 695...).
    let base = 40_000 + (std::process::id() % 500) as u16 * 10;
    base + PORT.fetch_add(1, Ordering::SeqCst)
}

fn keys(dir: &Path) -> String {
    let p = dir.join("authkeys");
    std::fs::write(&p, SECRET).unwrap();
    set_mode(&p, 0o600);
    p.display().to_string()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signed heartbeat of n2, as hb-send writes one.
fn heartbeat(gen: u64, seq: u64) -> Vec<u8> {
    let mut b = Builder::new();
    b.add("t", "status")
        .add("st", "active")
        .add("dt", "12c")
        .add("src", "n2")
        .add("seq", &format!("{seq:x}"))
        .add("hg", &format!("{gen:x}"))
        .add("ts", &format!("{:x}", now_s()));
    let mut out = Vec::new();
    b.finish(&AuthKeys::parse(SECRET).unwrap(), &mut out);
    out
}

struct Watcher {
    child: Child,
    events: Events,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// hb-watch n1 on loopback port `port`, table `table`, floors `dir/floors`.
fn watch(dir: &Path, port: u16, table: &str) -> Watcher {
    let k = keys(dir);
    let floors = dir.join("floors").display().to_string();
    let mut child = Command::new(bin("hb-watch"))
        .args([
            "--node",
            "n1",
            "--nodes",
            "n1,n2",
            "--keys",
            &k,
            "--channel",
            "a=ucast:lo:127.0.0.1",
        ])
        .args(["--port", &port.to_string(), "--table", table, "--floors", &floors])
        .args(["--deadtime", "300ms", "--initdead", "300ms", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let pid = child.id();
    // Its socket is bound once the table exists.
    assert!(
        wait_for(|| Path::new(table).exists(), Duration::from_secs(3)),
        "hb-watch started"
    );
    std::thread::sleep(Duration::from_millis(50));
    Watcher {
        child,
        events: Events::new(out, pid),
    }
}

fn send_all(port: u16, msgs: &[Vec<u8>]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for m in msgs {
        s.send_to(m, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn heartbeats_replayed_after_a_reboot_do_not_raise_a_dead_node() {
    let d = tempfile::tempdir().unwrap();
    let p = port();
    let run = d.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let table = run.join("ast").display().to_string();
    let gen = now_s();
    let captured: Vec<Vec<u8>> = (1..=20).map(|s| heartbeat(gen, s)).collect();
    let mut w = watch(d.path(), p, &table);
    send_all(p, &captured);
    w.events.expect("node-up n2", Duration::from_secs(2));
    w.events.expect("node-dead n2", Duration::from_secs(2));
    // Saved at the death (a durable write, right after the event).
    let floors = d.path().join("floors");
    let saved = wait_for(
        || std::fs::read_to_string(&floors).is_ok_and(|t| t.contains(&format!("n2 {gen} 20"))),
        Duration::from_secs(2),
    );
    assert!(saved, "{:?}", std::fs::read_to_string(&floors));
    // The receiver "reboots": killed (nothing saved on the way out), /run emptied.
    drop(w);
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::create_dir(&run).unwrap();
    let mut w = watch(d.path(), p, &table);
    send_all(p, &captured);
    let seen = w.events.gather(Duration::from_millis(500));
    assert!(
        !seen.iter().any(|l| l.starts_with("node-up n2")),
        "a replay raised the dead node: {seen:?}"
    );
    // The real node, restarted (a new generation), is welcome.
    send_all(p, &[heartbeat(gen + 1, 1)]);
    w.events.expect("node-up n2", Duration::from_secs(2));
}

#[test]
fn a_forged_generation_from_the_far_future_locks_nobody_out() {
    let d = tempfile::tempdir().unwrap();
    let p = port();
    let table = d.path().join("ast").display().to_string();
    let mut w = watch(d.path(), p, &table);
    send_all(p, &[heartbeat(u64::MAX, 1)]);
    // The events of the next 300 ms are read (seen holds only what was read).
    let seen = w.events.gather(Duration::from_millis(300));
    assert!(!seen.iter().any(|l| l.starts_with("node-up n2")), "{seen:?}");
    // Across a restart too (the floor would have been saved).
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(w.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = w.child.wait();
    drop(w);
    let mut w = watch(d.path(), p, &table);
    send_all(p, &[heartbeat(now_s(), 1), heartbeat(now_s(), 2)]);
    w.events.expect("node-up n2", Duration::from_secs(2));
}

#[test]
fn forget_clears_a_floor_set_too_high_while_hb_watch_runs() {
    let d = tempfile::tempdir().unwrap();
    let p = port();
    let table = d.path().join("ast").display().to_string();
    let floors = d.path().join("floors").display().to_string();
    let mut w = watch(d.path(), p, &table);
    // A generation an hour ahead (a clock that was wrong): accepted, and the floor.
    send_all(p, &[heartbeat(now_s() + 3600, 1)]);
    w.events.expect("node-up n2", Duration::from_secs(2));
    w.events.expect("node-dead n2", Duration::from_secs(2));
    w.events.clear();
    send_all(p, &[heartbeat(now_s(), 1)]);
    assert!(w
        .events
        .gather(Duration::from_millis(300))
        .iter()
        .all(|l| !l.starts_with("node-up")));
    let out = Command::new(bin("hb-watch"))
        .args(["forget", "n2", "-t", &table, "--floors", &floors])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("forgotten by hb-watch"),
        "{out:?}"
    );
    send_all(p, &[heartbeat(now_s(), 2)]);
    w.events.expect("node-up n2", Duration::from_secs(2));
    // A name that is no node name is a usage error.
    let out = Command::new(bin("hb-watch"))
        .args(["forget", "no such", "-t", &table, "--floors", &floors])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hb_send_refuses_to_announce_dead_as_a_status() {
    let d = tempfile::tempdir().unwrap();
    let k = keys(d.path());
    let g = d.path().join("gen").display().to_string();
    let base = [
        "--node",
        "n2",
        "--keys",
        &k,
        "--channel",
        "ucast:lo:127.0.0.1",
        "--port",
        "1",
        "--no-fifo",
        "--generation-file",
        &g,
        "--count",
        "1",
    ];
    let out = Command::new(bin("hb-send"))
        .args(base)
        .args(["--status", "dead"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--status") && err.contains("standby") && err.lines().count() == 1,
        "{err}"
    );
    let cfg = d.path().join("h.yaml");
    std::fs::write(&cfg, "hb-send:\n  status: dead\n").unwrap();
    let out = Command::new(bin("hb-send"))
        .args(base)
        .args(["--config", &cfg.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("h.yaml:2:3"), "{out:?}");
}

#[test]
fn what_a_node_holds_travels_in_its_heartbeats_and_shows_in_status() {
    // Two namespaces: hb-watch does not listen to its own host's sender on loopback.
    let mut net = Net::new(2, 1);
    let mut w = net.watch(1, &["--deadtime", "1s"]);
    net.send(2, &["--keepalive", "20ms", "--deadtime", "1s"]);
    w.expect("node-status n2", Duration::from_secs(5));
    let fifo = net.path("n2.fifo");
    std::fs::write(&fifo, ">>>\nt=status\nheld=10.0.0.5/24,web\n<<<\n").unwrap();
    fn held(w: &Events) -> Option<String> {
        w.seen
            .iter()
            .rev()
            .filter(|l| l.starts_with("node-status n2"))
            .find_map(|l| field(l, "held").map(str::to_string))
    }
    w.gather(Duration::from_millis(300));
    assert_eq!(held(&w).as_deref(), Some("10.0.0.5/24,web"), "{:?}", w.seen);
    let table = net.path("n1.ast").display().to_string();
    let out = net.run(net.ns(1), &bin("hb-watch"), &["status", "-t", &table, "n2"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("held=10.0.0.5/24,web"),
        "{out:?}"
    );
    // A held value a script could trip on (a space) is dropped, the old one kept.
    std::fs::write(&fifo, ">>>\nt=status\nheld=a b\n<<<\n").unwrap();
    w.gather(Duration::from_millis(300));
    let out = net.run(net.ns(1), &bin("hb-watch"), &["status", "-t", &table, "n2", "--json"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#""held":["10.0.0.5/24","web"]"#),
        "{out:?}"
    );
    // Letting go is news too.
    std::fs::write(&fifo, ">>>\nt=status\nheld=\n<<<\n").unwrap();
    w.gather(Duration::from_millis(300));
    assert_eq!(held(&w).as_deref(), Some("''"), "{:?}", w.seen);
}
