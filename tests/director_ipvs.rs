//! A director pair on a real IPVS, in the VM (tests/common/vm.rs): established TCP
//! connections through the director go on through the other one after it dies when
//! IPVS's own sync daemon (`lvs-ctl --start-daemon master|backup`) has copied them, and
//! break without it (the new director's IPVS has no entry for a mid-stream segment: it
//! schedules only a SYN, so the segment reaches its own TCP stack, which resets it).
//!
//! The lab, on the harness's three bridges: n1 the client (br0, 10.77.1.0/24), n2 and n3
//! the directors (on all three; br2 carries the sync daemon's multicast), n4..n6 the real
//! servers (br1, 10.77.2.0/24), routing back through the gateway address 10.77.2.100.
//! The director holds the virtual address 10.77.1.100 on eth0 and the gateway on eth1;
//! both have the same IPVS NAT table, from `lvs-ctl apply` of one configuration. The
//! client holds 50 connections open, each sending a line every 50 ms and reading its
//! echo. The director's three switch ports are cut; the other takes both addresses with
//! an armed `ipfake up` (which adds and announces them). A connection survives if its
//! echoes come back and keep coming, with no reset; how many came back within 2 s of
//! the takeover is counted too (see [`GRACE`] for why that is not the test).
//!
//! The real servers' echo servers are threads of this test bound in their namespaces:
//! 1000 lines a second through Python left a TCG vCPU no time for the rest.

mod common;
use common::{bin, in_netns, vm, Net};
use hakit::tools::lvs_ctl::format::parse_conns;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 100);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 100);
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
const PORT: u16 = 7000;
const CLIENT: usize = 1;
const REALS: [usize; 3] = [4, 5, 6];
const CONNS: u16 = 50;
const LINE_EVERY: Duration = Duration::from_millis(50);
/// Echoes must come back within this of the takeover for a connection to count.
const WITHIN: Duration = Duration::from_secs(2);

#[test]
fn director_ipvs_vm() {
    let inner = vm::run_ignored_inside("vm_");
    assert_eq!(inner.passed, 1, "every vm_ test ran inside");
}

fn config() -> String {
    let mut c = format!(
        "lvs-ctl:\n  backend: ipvs\n  services:\n    - service: tcp {VIP}:{PORT}\n      scheduler: rr\n      \
         forward: masq\n      reals:\n"
    );
    for r in REALS {
        c += &format!("        - address: 10.77.2.{r}:{PORT}\n");
    }
    c
}

/// Echo back what a connection sends, until `stop`.
fn echo(mut s: TcpStream, stop: Arc<AtomicBool>) {
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) if s.write_all(&buf[..n]).is_ok() => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            _ => return,
        }
    }
}

/// A line echo server on PORT in namespace `ns`, a thread a connection, until `stop`.
fn echo_server(ns: &str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let listener = in_netns(ns, || TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut conns = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let stop = stop.clone();
                    conns.push(std::thread::spawn(move || echo(s, stop)));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("accept: {e}"),
            }
        }
        for c in conns {
            c.join().unwrap();
        }
    })
}

struct Lab {
    net: Net,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.servers.drain(..) {
            let _ = s.join();
        }
    }
}

impl Lab {
    /// The lab with director `first` holding both addresses.
    fn new(first: usize) -> Lab {
        let t0 = Instant::now();
        let net = Net::new(6, 3);
        // The client on br0 only, the real servers on br1 only.
        let down = |devs: &[&str]| -> Vec<String> {
            devs.iter()
                .flat_map(|d| [format!("addr flush dev {d}"), format!("link set {d} down")])
                .collect()
        };
        net.batch(net.ns(CLIENT), &down(&["eth1", "eth2"]));
        for r in REALS {
            let mut c = down(&["eth0", "eth2"]);
            c.push(format!("route add default via {GATEWAY}"));
            net.batch(net.ns(r), &c);
        }
        for d in [2, 3] {
            common::sh(&[
                "ip",
                "netns",
                "exec",
                net.ns(d),
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]);
        }
        net.batch(
            net.ns(first),
            &[
                format!("addr add {VIP}/24 dev eth0"),
                format!("addr add {GATEWAY}/24 dev eth1"),
            ],
        );

        // The same table on both directors, as `lvs-ctl apply` of one file makes it.
        let cfg = net.path("hakit.yaml");
        std::fs::write(&cfg, config()).unwrap();
        let state = net.path("follow.json").display().to_string();
        let cfg = cfg.display().to_string();
        let mut lab = Lab {
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
            net,
        };
        for d in [2, 3] {
            lab.lvs(d, &["apply", "--state", &state, "-q", &cfg]);
        }
        let table = lab.lvs(2, &["-S", "-n"]);
        assert_eq!(table.matches(" -m -w 1\n").count(), REALS.len(), "{table}");
        assert_eq!(lab.lvs(3, &["-S", "-n"]), table, "both directors have the same table");
        for r in REALS {
            let s = echo_server(lab.net.ns(r), lab.stop.clone());
            lab.servers.push(s);
        }
        println!("DIRECTOR-IPVS lab ready in {:?}", t0.elapsed());
        lab
    }

    fn lvs(&self, node: usize, args: &[&str]) -> String {
        stdout(&self.net.run(self.net.ns(node), &bin("lvs-ctl"), args))
    }

    /// How many of these client ports `node`'s IPVS has as established connections to
    /// the virtual service, read from its /proc/net/ip_vs_conn by a thread in its
    /// namespace (polled: a process a poll would cost seconds in a busy VM).
    fn established(&self, node: usize, ports: &BTreeSet<u16>) -> usize {
        let text = in_netns(self.net.ns(node), || {
            std::fs::read_to_string("/proc/thread-self/net/ip_vs_conn").expect("IPVS's connection table")
        });
        let vs = format!("{VIP}:{PORT}");
        parse_conns(&text)
            .iter()
            .filter(|c| c.state == "ESTABLISHED" && c.virt == vs && is_ours(&c.client, ports))
            .count()
    }

    /// The same, as Debian's ipvsadm lists them (`-L -n -c`).
    fn ipvsadm_established(&self, node: usize, ports: &BTreeSet<u16>) -> usize {
        let out = Command::new("ip")
            .args(["netns", "exec", self.net.ns(node), "ipvsadm", "-L", "-n", "-c"])
            .output()
            .unwrap();
        let vs = format!("{VIP}:{PORT}");
        stdout(&out)
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() == 6 && f[2] == "ESTABLISHED" && f[4] == vs && is_ours(f[3], ports)
            })
            .count()
    }

    /// ipfake armed on `heir` for both addresses (its link open, waiting for SIGUSR1,
    /// as pair.sh keeps it): taking over then starts no process, which takes seconds in
    /// a TCG VM on a busy machine.
    fn arm(&self, heir: usize) -> Vec<Armed> {
        let pids = self.net.path(&format!("ipfake{heir}")).display().to_string();
        let mut armed: Vec<Armed> = [(VIP, "eth0"), (GATEWAY, "eth1")]
            .into_iter()
            .map(|(addr, dev)| {
                let mut child = Command::new("ip")
                    .args(["netns", "exec", self.net.ns(heir)])
                    .arg(bin("ipfake"))
                    .args(["--pid-dir", &pids, "up", &format!("{addr}/24"), "dev", dev])
                    .args(["--armed", "--once", "--count", "3", "--interval", "20ms"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let log = BufReader::new(child.stderr.take().unwrap());
                Armed { child, log }
            })
            .collect();
        for a in armed.iter_mut() {
            let mut said = String::new();
            while !said.contains("armed for") {
                let mut line = String::new();
                let n = a.log.read_line(&mut line).unwrap();
                said += &line;
                assert!(n > 0, "ipfake --armed on n{heir} ended: {said}");
            }
        }
        armed
    }

    /// Director `dead` dies: its three switch ports are cut. The armed ipfakes of its
    /// heir take both addresses and announce them. Returns (the instant the cut is
    /// done, the instant both addresses are taken).
    fn fail_over(&self, dead: usize, armed: Vec<Armed>) -> (Instant, Instant) {
        let cut: Vec<String> = (0..3).map(|c| format!("link set n{dead}c{c} down")).collect();
        self.net.batch(&self.net.switch, &cut);
        let killed = Instant::now();
        for a in &armed {
            let pid = nix::unistd::Pid::from_raw(a.child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
        }
        for mut a in armed {
            let status = a.child.wait().unwrap();
            let mut rest = String::new();
            let _ = a.log.read_to_string(&mut rest);
            assert!(status.success(), "ipfake up --armed: {status}: {rest}");
        }
        (killed, Instant::now())
    }

    /// The dead director is back, as a rebooted one: holding nothing, its ports up.
    fn revive(&self, node: usize) {
        self.net.batch(
            self.net.ns(node),
            &[
                format!("addr del {VIP}/24 dev eth0"),
                format!("addr del {GATEWAY}/24 dev eth1"),
            ],
        );
        let mend: Vec<String> = (0..3).map(|c| format!("link set n{node}c{c} up")).collect();
        self.net.batch(&self.net.switch, &mend);
    }

    /// `lvs-ctl --start-daemon STATE` on `node`, and that it lists as started.
    fn sync_daemon(&self, node: usize, state: &str) {
        self.lvs(
            node,
            &["--start-daemon", state, "--mcast-interface", "eth2", "--syncid", "7"],
        );
        let listed = self.lvs(node, &["-L", "--daemon"]);
        assert!(
            listed.starts_with(&format!("{state} sync daemon (mcast=eth2, syncid=7")),
            "{listed}"
        );
    }
}

/// Whether `addr:port` is the client's address and one of these ports.
fn is_ours(addr_port: &str, ports: &BTreeSet<u16>) -> bool {
    addr_port
        .strip_prefix(&format!("{CLIENT_ADDR}:"))
        .and_then(|p| p.parse().ok())
        .is_some_and(|p| ports.contains(&p))
}

fn stdout(out: &std::process::Output) -> String {
    ok(out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Connections from the client's address and these ports to the virtual service, made
/// from inside the client's namespace (known ports: a director's table is searched by
/// them, and a later round never reuses an earlier one's).
fn connect_all(net: &Net, ports: Vec<u16>) -> Vec<TcpStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    in_netns(net.ns(CLIENT), move || {
        ports
            .into_iter()
            .map(|port| {
                let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
                bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(CLIENT_ADDR, port))).unwrap();
                connect(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(VIP, PORT)))
                    .unwrap_or_else(|e| panic!("connecting from port {port} to {VIP}:{PORT}: {e}"));
                TcpStream::from(fd)
            })
            .collect()
    })
}

/// An ipfake waiting for SIGUSR1, and what it says.
struct Armed {
    child: std::process::Child,
    log: BufReader<std::process::ChildStderr>,
}

/// What one connection saw: when each echo came back, and how it ended, if it did.
struct Record {
    echoes: Vec<Instant>,
    error: Option<String>,
    /// When the error came.
    ended: Option<Instant>,
}

/// What a connection has done so far, for the round to see while it runs: its last
/// echo (in microseconds since the client started), and whether it failed.
#[derive(Default)]
struct Progress {
    last_echo_us: AtomicU64,
    failed: AtomicBool,
}

/// Send `cI N` every 50 ms and read the echoes back, in order, until `stop`.
fn converse(i: u16, mut s: TcpStream, stop: Arc<AtomicBool>, base: Instant, p: Arc<Progress>) -> Record {
    let mut r = Record {
        echoes: Vec::new(),
        error: None,
        ended: None,
    };
    s.set_nodelay(true).unwrap();
    let (mut sent, mut got) = (0u64, 0u64);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut next = Instant::now();
    'talk: while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            if let Err(e) = s.write_all(format!("c{i} {sent}\n").as_bytes()) {
                r.error = Some(format!("write: {e}"));
                break;
            }
            sent += 1;
            next += LINE_EVERY;
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        s.set_read_timeout(Some(wait)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => {
                r.error = Some("closed by the other end".into());
                break;
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    if line != format!("c{i} {got}\n").as_bytes() {
                        r.error = Some(format!("echo {got} garbled: {:?}", String::from_utf8_lossy(&line)));
                        break 'talk;
                    }
                    got += 1;
                    r.echoes.push(Instant::now());
                    p.last_echo_us
                        .store(base.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                r.error = Some(format!("read: {e}"));
                break;
            }
        }
    }
    if r.error.is_some() {
        r.ended = Some(Instant::now());
        p.failed.store(true, Ordering::Relaxed);
    }
    r
}

/// The client's 50 connections, each talking on its own thread.
struct Client {
    ports: BTreeSet<u16>,
    stop: Arc<AtomicBool>,
    base: Instant,
    progress: Vec<Arc<Progress>>,
    threads: Vec<JoinHandle<Record>>,
}

impl Client {
    fn start(net: &Net, first_port: u16) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let ports: BTreeSet<u16> = (first_port..first_port + CONNS).collect();
        // All connected before any talks: the VM's one vCPU is then free for the
        // handshakes.
        let streams = connect_all(net, ports.iter().copied().collect());
        let base = Instant::now();
        let progress: Vec<Arc<Progress>> = streams.iter().map(|_| Arc::default()).collect();
        let threads = streams
            .into_iter()
            .zip(&progress)
            .enumerate()
            .map(|(i, (s, p))| {
                let (stop, p) = (stop.clone(), p.clone());
                std::thread::spawn(move || converse(i as u16, s, stop, base, p))
            })
            .collect();
        Client {
            ports,
            stop,
            base,
            progress,
            threads,
        }
    }

    /// Whether every connection has failed or had an echo since `t`.
    fn decided(&self, t: Instant) -> bool {
        let t = (t - self.base).as_micros() as u64;
        self.progress
            .iter()
            .all(|p| p.failed.load(Ordering::Relaxed) || p.last_echo_us.load(Ordering::Relaxed) > t)
    }

    fn finish(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().map(|t| t.join().unwrap()).collect()
    }
}

/// What the connections did across a failover.
struct Outcome {
    survived: usize,
    /// Of those, how many had an echo back within WITHIN of the takeover.
    within: usize,
    /// The cut to the first echo after it, for each connection that survived.
    resumed: Vec<Duration>,
    /// Why the others failed, with how many each.
    failures: Vec<(String, usize)>,
}

/// How long a connection has, after the takeover, to show it lives. TCP retransmits
/// with a doubling timeout, so the first retransmission after the takeover comes about
/// as long after it as the takeover took: milliseconds when the VM runs freely, seconds
/// when the machine under it is busy and the vCPU stalls. A connection that comes back
/// later than WITHIN has still survived (no reset, the stream intact), and is counted
/// apart.
const GRACE: Duration = Duration::from_secs(15);

fn outcome(records: &[Record], killed: Instant, taken: Instant, end: Instant) -> Outcome {
    let mut o = Outcome {
        survived: 0,
        within: 0,
        resumed: Vec::new(),
        failures: Vec::new(),
    };
    for r in records {
        let first = r.echoes.iter().find(|&&t| t > killed);
        let still = r.echoes.iter().any(|&t| t > end - Duration::from_secs(1));
        let why = match (&r.error, first) {
            (Some(e), _) => e.clone(),
            (None, Some(&t)) if still => {
                o.survived += 1;
                o.within += usize::from(t <= taken + WITHIN);
                o.resumed.push(t - killed);
                continue;
            }
            (None, Some(_)) => "echoes stopped again".to_string(),
            (None, None) => format!("no echo within {GRACE:?} of the takeover"),
        };
        match o.failures.iter_mut().find(|(w, _)| *w == why) {
            Some((_, n)) => *n += 1,
            None => o.failures.push((why, 1)),
        }
    }
    o.resumed.sort();
    o
}

/// Poll `f` every 100 ms until it holds or `within` passes.
fn poll(mut f: impl FnMut() -> bool, within: Duration) -> bool {
    let end = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One round: connections open through `director` (and copied to `heir` if `synced`),
/// the director dies, `heir` takes over, and traffic goes on until every connection has
/// come back or failed (at most GRACE), and a second more.
fn round(lab: &Lab, director: usize, heir: usize, synced: bool, first_port: u16) -> Outcome {
    let t0 = Instant::now();
    let armed = lab.arm(heir);
    let client = Client::start(&lab.net, first_port);
    let started = t0.elapsed();
    // Every connection talking (and so in the director's IPVS) before anything else.
    let mut n = 0;
    let listed = poll(
        || {
            n = lab.established(director, &client.ports);
            n == usize::from(CONNS)
        },
        Duration::from_secs(20),
    );
    assert!(listed, "n{director}'s IPVS lists {n} of the {CONNS} connections");
    let expect = if synced {
        // The master's sync thread sends what it has at least every 2 s.
        poll(
            || lab.established(heir, &client.ports) == usize::from(CONNS),
            Duration::from_secs(20),
        );
        usize::from(CONNS)
    } else {
        std::thread::sleep(Duration::from_secs(1));
        0
    };
    // And Debian's ipvsadm, on the backup, as a witness.
    let listed = lab.ipvsadm_established(heir, &client.ports);
    assert_eq!(
        listed, expect,
        "the backup n{heir}'s ipvsadm -L -n -c lists {listed} of the {CONNS} connections"
    );
    let (killed, taken) = lab.fail_over(director, armed);
    poll(|| client.decided(killed), GRACE + (taken - killed));
    std::thread::sleep(Duration::from_secs(1));
    let end = Instant::now();
    let records = client.finish();
    println!(
        "DIRECTOR-IPVS round timing: ipfake armed and {CONNS} connections open after {started:?}, \
         the cut after {:?}, the end {:?} after the cut",
        killed - t0,
        end - killed
    );
    for (i, r) in records.iter().enumerate() {
        assert!(
            r.echoes.iter().any(|&t| t <= killed) && r.ended.is_none_or(|t| t > killed),
            "connection {i} failed before the director died ({} echoes, {:?}): the lab is broken",
            r.echoes.len(),
            r.error,
        );
    }
    let o = outcome(&records, killed, taken, end);
    let median = o.resumed.get(o.resumed.len() / 2).copied().unwrap_or_default();
    let max = o.resumed.last().copied().unwrap_or_default();
    println!(
        "DIRECTOR-IPVS {}: {}/{CONNS} connections survived n{director}'s death ({} with an echo within \
         {WITHIN:?} of the takeover); n{heir} had both addresses {:?} after the cut; first echo after \
         the cut: median {median:?}, max {max:?}; failures: {:?}",
        if synced {
            "with the sync daemon"
        } else {
            "without the sync daemon"
        },
        o.survived,
        o.within,
        taken - killed,
        o.failures
    );
    o
}

#[test]
#[ignore = "runs inside the IPVS VM, started by director_ipvs_vm"]
fn vm_connections_survive_a_director_failover_with_the_sync_daemon_not_without() {
    vm::guard();
    let lab = Lab::new(2);
    // No sync daemon: n2 directs, dies, n3 takes over.
    assert_eq!(lab.lvs(2, &["-L", "--daemon"]), "");
    let without = round(&lab, 2, 3, false, 40000);
    // n2 is back, rebooted, as the backup; n3 directs with the sync daemon, and dies.
    lab.revive(2);
    lab.sync_daemon(3, "master");
    lab.sync_daemon(2, "backup");
    let with = round(&lab, 3, 2, true, 41000);
    // Every synced connection should live (nothing is lost in the switch); two are
    // allowed for a TCG vCPU stalled past a retransmission.
    assert!(
        with.survived >= usize::from(CONNS) - 2,
        "only {}/{CONNS} connections survived with the sync daemon: {:?}",
        with.survived,
        with.failures
    );
    // Without it the new director resets every one: the survivors above are the sync
    // daemon's work.
    assert_eq!(
        without.survived, 0,
        "connections survived without the sync daemon: {:?}",
        without.failures
    );
}
