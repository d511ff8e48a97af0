//! contrib/director.sh, the LVS director cascade, in network namespaces: a client (n1)
//! on LAN a, three directors (n2 the director, n3 the primary backup, n4 the secondary
//! backup) on both LANs, three real servers (n5..n7) on LAN b behind NAT on nftables.
//! Both LANs are also the heartbeat channels; conntrackd syncs over LAN b. A killed
//! director is a dead node: every process in its namespace SIGKILLed and both its
//! cables pulled.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const VIP: &str = "10.77.1.100";
const GW: &str = "10.77.2.100";
const PORT: u16 = 9000;
const PY: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/director.sh");
const DIRECTORS: [usize; 3] = [2, 3, 4];
const REALS: [usize; 3] = [5, 6, 7];

/// Answers every line with its name (shared with the benchmark and the demo).
const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/line-server.py");

/// `hold N SECONDS`: N connections to the VIP, then a line on each every 50 ms, in a
/// new random order every round (so that a director that picks connections up without
/// their state cannot land them on the same servers by the scheduler's luck); prints
/// `ready` once all are open, then `broken B of N` at the end. `many N`: N new
/// connections one after another, the answering names.
const CLIENT: &str = r#"
import random, socket, sys, time
vip, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "many":
    out = []
    for i in range(int(sys.argv[4])):
        try:
            c = socket.create_connection((vip, port), timeout=2)
            f = c.makefile("rwb"); f.write(b"x\n"); f.flush()
            out.append(f.readline().decode().strip() or "-"); c.close()
        except OSError:
            out.append("-")
    print(" ".join(out)); sys.exit(0)
n, secs = int(sys.argv[4]), float(sys.argv[5])
cs = []
for i in range(n):
    c = socket.create_connection((vip, port), timeout=5)
    cs.append({"f": c.makefile("rwb"), "err": None})
print("ready", flush=True)
end = time.time() + secs
while time.time() < end:
    random.shuffle(cs)
    for e in cs:
        if e["err"] is None:
            try:
                e["f"].write(b"x\n"); e["f"].flush()
                if not e["f"].readline():
                    e["err"] = "closed"
            except OSError as x:
                e["err"] = str(x)
    time.sleep(0.05)
bad = [e["err"] for e in cs if e["err"]]
print("broken", len(bad), "of", n, "|", "; ".join(sorted(set(bad))), flush=True)
"#;

struct Lab {
    net: Net,
    /// Killed nodes: their namespaces still have the addresses, behind pulled cables.
    dead: std::cell::RefCell<Vec<usize>>,
}

const TIMING: &str = "hb-send:\n  keepalive: 50ms\n  deadtime: 300ms\nhb-watch:\n  deadtime: 300ms\n  initdead: 1s\n";

impl Lab {
    fn new() -> Lab {
        assert!(Path::new(PY).exists(), "these tests need {PY}");
        for tool in ["conntrackd", "nft"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success(),
                "these tests need {tool} (contrib/deps.sh installs it)"
            );
        }
        let net = Net::new(7, 2);
        let c = net.ns(1).to_string();
        net.ip(&c, &["addr", "flush", "dev", "eth1"]);
        net.ip(&c, &["link", "set", "eth1", "down"]);
        for d in DIRECTORS {
            sh(&[
                "ip",
                "netns",
                "exec",
                net.ns(d),
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]);
        }
        std::fs::write(net.path("client.py"), CLIENT).unwrap();
        let mut lab = Lab {
            net,
            dead: Default::default(),
        };
        for r in REALS {
            let ns = lab.net.ns(r).to_string();
            lab.net.ip(&ns, &["addr", "flush", "dev", "eth0"]);
            lab.net.ip(&ns, &["link", "set", "eth0", "down"]);
            lab.net.ip(&ns, &["route", "add", "default", "via", GW]);
            let script = SERVER.to_string();
            lab.net.spawn(
                &ns,
                Path::new(PY),
                &[script, format!("n{r}"), format!("10.77.2.{r}"), PORT.to_string()],
                Stdio::null(),
            );
        }
        lab
    }

    /// Each director's own file (mon-check's state and socket are per node).
    fn config(&self, d: usize, director: &str) -> String {
        let dir = self.net.path(&format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        let reals: String = REALS
            .iter()
            .map(|r| format!("        - {{ address: 10.77.2.{r}:{PORT}, host: 10.77.2.{r} }}\n"))
            .collect();
        let text = format!(
            "cluster:\n  keys: {keys}\n  channels:\n    - {{ name: a, dev: eth0, mode: bcast }}\n    - {{ name: b, dev: eth1, mode: bcast }}\n\
{hb}\
lvs-ctl:\n  backend: nft\n  services:\n    - service: tcp {VIP}:{PORT}\n      scheduler: rr\n      forward: masq\n      check: rs/tcp\n      on-failure: remove\n      reals:\n{reals}\
mon-check:\n  state-dir: {dir}/mon\n  socket: {dir}/mon.sock\n  hostgroups:\n    rs: [{hosts}]\n  watches:\n    rs:\n      tcp:\n        interval: 500ms\n        monitor: tcp -p {PORT} -t 1\n\
director:\n{director}",
            keys = self.net.keys().display(),
            hb = TIMING,
            dir = dir.display(),
            hosts = REALS.map(|r| format!("10.77.2.{r}")).join(", "),
        );
        let p = dir.join("hakit.yaml");
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn start(&mut self, d: usize, director: &str) -> Child {
        self.dead.borrow_mut().retain(|&x| x != d);
        let cfg = self.config(d, director);
        let path = format!(
            "{}:{}",
            bin("hb-send").parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let dir = self.net.path(&format!("d{d}"));
        let log = std::fs::File::create(dir.join("director.log")).unwrap();
        Command::new("ip")
            .args([
                "netns",
                "exec",
                self.net.ns(d),
                "env",
                &format!("PATH={path}"),
                "DIRECTOR_DEBUG=1",
            ])
            .args(["bash", SCRIPT, "run", "--node", &format!("n{d}"), "-c", &cfg])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--lib-dir")
            .arg(dir.join("lib"))
            .args(["--", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self, d: usize) -> String {
        std::fs::read_to_string(self.net.path(&format!("d{d}/director.log"))).unwrap_or_default()
    }

    fn logs(&self) -> String {
        DIRECTORS.map(|d| format!("--- n{d}:\n{}", self.log(d))).join("\n")
    }

    /// Which directors hold the virtual address.
    fn holders(&self) -> Vec<usize> {
        DIRECTORS
            .into_iter()
            .filter(|d| !self.dead.borrow().contains(d))
            .filter(|&d| self.net.has_addr(d, &format!("{VIP}/24")))
            .collect()
    }

    fn holds_gw(&self, d: usize) -> bool {
        let out = Command::new("ip")
            .args(["-n", self.net.ns(d), "addr", "show", "dev", "eth1"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {GW}/24 "))
    }

    fn wait_holder(&self, d: usize, within: Duration) {
        assert!(
            wait_for(|| self.holders() == vec![d], within),
            "n{d} alone should hold {VIP}; holders {:?}\n{}",
            self.holders(),
            self.logs()
        );
    }

    /// A dead node: every process in it killed, both cables pulled.
    fn kill_node(&self, d: usize) {
        let out = Command::new("ip")
            .args(["netns", "pids", self.net.ns(d)])
            .output()
            .unwrap();
        for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = p.parse::<i32>() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        self.net.cut(d, 0);
        self.net.cut(d, 1);
        self.dead.borrow_mut().push(d);
    }

    fn client(&self, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", self.net.ns(1), PY])
            .arg(self.net.path("client.py"))
            .args([VIP, &PORT.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn many(&self, n: usize) -> Vec<String> {
        let out = self.client(&["many", &n.to_string()]).wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

fn cascade(sync: &str, failback: bool) -> String {
    format!(
        "  nodes:\n    - {{ name: n2, role: director }}\n    - {{ name: n3, role: primary-backup }}\n    - {{ name: n4, role: secondary-backup }}\n  failback: {failback}\n  addresses:\n    - {{ address: {VIP}/24, dev: eth0 }}\n    - {{ address: {GW}/24, dev: eth1 }}\n  sync: {sync}\n  sync-dev: eth1\n"
    )
}

/// The director takes the addresses; the client's connections are spread over the
/// three real servers; `hold` connections are open and `ready`.
fn start_cascade(lab: &mut Lab, sync: &str, failback: bool) {
    for d in DIRECTORS {
        let c = lab.start(d, &cascade(sync, failback));
        lab.net.adopt(c);
    }
    lab.wait_holder(2, Duration::from_secs(8));
    assert!(lab.holds_gw(2), "the gateway moves with the VIP\n{}", lab.logs());
    // Every director has heard every other (initdead is 1 s) and its checks ran.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lab.holders(), vec![2], "{}", lab.logs());
    let names = lab.many(6);
    for r in REALS {
        assert!(names.contains(&format!("n{r}")), "{names:?}\n{}", lab.logs());
    }
}

/// Kill the director under 50 open connections; returns how many broke.
fn failover_under_load(lab: &mut Lab) -> (usize, String) {
    let mut c = lab.client(&["hold", "50", "6"]);
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the client could not open its connections");
    std::thread::sleep(Duration::from_millis(1500));
    lab.kill_node(2);
    lab.wait_holder(3, Duration::from_secs(3));
    line.clear();
    out.read_line(&mut line).unwrap();
    c.wait().unwrap();
    let broken: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("client said {line:?}"));
    (broken, line)
}

#[test]
fn the_cascade_takes_over_in_rank_order_and_conntrackd_keeps_connections() {
    let mut lab = Lab::new();
    start_cascade(&mut lab, "conntrackd", false);
    let (broken, line) = failover_under_load(&mut lab);
    eprintln!("with conntrackd: {line}");
    assert!(broken <= 2, "{line}\n{}", lab.logs());
    // The primary backup serves new connections on every real server.
    let names = lab.many(6);
    assert_eq!(names.iter().filter(|n| n.starts_with('n')).count(), 6, "{names:?}");
    // The secondary backup takes over only when both before it are dead.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.holders(), vec![3]);
    lab.kill_node(3);
    lab.wait_holder(4, Duration::from_secs(3));
    let names = lab.many(3);
    assert_eq!(
        names.iter().filter(|n| n.starts_with('n')).count(),
        3,
        "{names:?}\n{}",
        lab.logs()
    );
    assert!(lab.log(4).contains("taking"), "{}", lab.log(4));
}

#[test]
fn without_state_sync_the_backup_breaks_connections_and_standby_by_hand_hands_over() {
    // The control: the same failover with `sync: none` breaks connections that the
    // backup's scheduler sends to another real server (about two in three with rr).
    let mut lab = Lab::new();
    start_cascade(&mut lab, "none", false);
    let (broken, line) = failover_under_load(&mut lab);
    eprintln!("without sync: {line}");
    assert!(
        broken >= 10,
        "{line}: the failover did not move connections?\n{}",
        lab.logs()
    );
    // Standby by hand on the holder: the secondary backup takes over (the director is
    // dead); a stale pid file is not signalled.
    let state = lab.net.path("d3/state");
    let by_hand = |what: &str| {
        Command::new("bash")
            .args([SCRIPT, what, "--state-dir"])
            .arg(&state)
            .output()
            .unwrap()
    };
    assert!(by_hand("standby").status.success());
    lab.wait_holder(4, Duration::from_secs(3));
    assert!(lab.log(3).contains("standby by hand"), "{}", lab.log(3));
    std::fs::write(state.join("director.pid"), "1\n").unwrap();
    let out = by_hand("active");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not one"));
}

#[test]
fn failback_hands_the_addresses_back_and_a_dead_tool_releases_them() {
    let mut lab = Lab::new();
    start_cascade(&mut lab, "conntrackd", true);
    // conntrackd dies on the director: it must not go on holding the addresses.
    let ns = lab.net.ns(2).to_string();
    let out = Command::new("ip").args(["netns", "pids", &ns]).output().unwrap();
    let ct: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "conntrackd"))
        .collect();
    assert_eq!(ct.len(), 1, "one conntrackd in the director's namespace");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(ct[0]), nix::sys::signal::Signal::SIGKILL);
    lab.wait_holder(3, Duration::from_secs(3));
    assert!(lab.log(2).contains("conntrackd exited"), "{}", lab.log(2));
    // The director comes back: with failback, the primary backup hands over.
    let c = lab.start(2, &cascade("conntrackd", true));
    lab.net.adopt(c);
    lab.wait_holder(2, Duration::from_secs(5));
    assert!(lab.log(3).contains("failback to n2"), "{}", lab.log(3));
    assert_eq!(lab.many(3).iter().filter(|n| n.starts_with('n')).count(), 3);
}

#[test]
fn a_broken_director_section_is_one_line_with_its_place() {
    let lab = Lab::new();
    let bad = cascade("conntrackd", false).replace("role: primary-backup", "role: backup");
    let cfg = lab.config(2, &bad);
    let out = Command::new("bash")
        .args([SCRIPT, "run", "--node", "n2", "-c", &cfg, "--state-dir"])
        .arg(lab.net.path("d2/state"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin("lvs-ctl").parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{cfg}:")) && err.contains("backup"), "{err}");
    assert!(!lab.net.path("d2/state").exists(), "nothing made before the check");
}
