//! Roll-forward for UDP services (ipfake mirror, contrib/pair.sh --mirror), in network
//! namespaces: two pair nodes and a client (node 3) on one LAN (and a second LAN for the
//! heartbeats), a service on both nodes that counts the requests it processes
//! (tests/udp-counter.py), a client that sends one request every 5 ms to the address.
//! The master's cables are pulled; the standby takes over and its count goes on from
//! where the master's answers stopped.

mod common;
use common::pair::{log_of, start};
use common::*;
use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIP: &str = "10.77.1.100";
const CIDR: &str = "10.77.1.100/24";
const PORT: u16 = 5300;
const COUNTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/udp-counter.py");
const EVERY: Duration = Duration::from_millis(5);

fn ipfake(net: &Net, node: usize, args: &[&str]) -> Output {
    net.run(net.ns(node), &bin("ipfake"), args)
}

/// `ipfake mirror active` of VIP on eth0 with `services` and `more`.
fn active(net: &Net, node: usize, services: &str, more: &[&str]) -> Output {
    let mut args = vec!["mirror", "active", "--vip", VIP, "--service", services, "--dev", "eth0"];
    args.extend_from_slice(more);
    ipfake(net, node, &args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn status(net: &Net, node: usize) -> String {
    String::from_utf8_lossy(&ipfake(net, node, &["mirror", "status"]).stdout).into_owned()
}

/// The counting service on `node`, ready; the path of its log.
fn counter(net: &mut Net, node: usize) -> PathBuf {
    let log = net.path(&format!("count{node}.log"));
    let args = [
        COUNTER.into(),
        VIP.into(),
        PORT.to_string(),
        format!("n{node}"),
        log.display().to_string(),
    ];
    let ns = net.ns(node).to_string();
    let pid = net.spawn(&ns, Path::new("python3"), &args, Stdio::piped());
    let out = net.take_stdout(pid).unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the counting service on n{node} did not start");
    log
}

/// What a service processed, in order: (its count, the request's seq); and the send
/// errors it logged.
fn processed(log: &Path) -> (Vec<(u64, u64)>, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap();
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    for l in text.lines() {
        if l.starts_with('#') {
            errors.push(l.to_string());
        } else {
            let mut w = l.split_whitespace().map(|w| w.parse::<u64>().unwrap());
            done.push((w.next().unwrap(), w.next().unwrap()));
        }
    }
    (done, errors)
}

#[derive(Debug, Clone)]
struct Answer {
    at: Instant,
    node: String,
    count: u64,
    seq: u64,
}

/// A client in node 3: `req SEQ` to VIP:PORT every 5 ms from seq 1, every answer
/// recorded. `sent` is the last seq sent.
struct Client {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<Vec<Answer>>,
}

fn client(net: &Net) -> Client {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (st, se) = (stop.clone(), sent.clone());
    let thread = spawn_in_netns(net.ns(3), move || {
        let s = UdpSocket::bind("10.77.1.3:0").unwrap();
        s.connect((VIP, PORT)).unwrap();
        let mut answers = Vec::new();
        let mut next = Instant::now();
        let mut seq = 0;
        let mut buf = [0u8; 256];
        while !st.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= next {
                seq += 1;
                // A refusal (ICMP) before the address is anywhere is no answer.
                let _ = s.send(format!("req {seq}").as_bytes());
                se.store(seq, Ordering::SeqCst);
                next += EVERY;
                continue;
            }
            s.set_read_timeout(Some((next - now).max(Duration::from_micros(100))))
                .unwrap();
            if let Ok(n) = s.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let w: Vec<&str> = text.split_whitespace().collect();
                answers.push(Answer {
                    at: Instant::now(),
                    node: w[0].to_string(),
                    count: w[1].parse().unwrap(),
                    seq: w[2].parse().unwrap(),
                });
            }
        }
        answers
    });
    Client { stop, sent, thread }
}

fn wait_until(what: &str, within: Duration, f: impl FnMut() -> bool) {
    assert!(wait_for(f, within), "{what}: not within {within:?}");
}

fn no_table_left(net: &Net, node: usize) -> bool {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", net.ns(node), "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(out.status.success());
    !String::from_utf8_lossy(&out.stdout).contains("hakit_mirror")
}

fn lo_copy(net: &Net, node: usize) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-n", net.ns(node), "addr", "show", "dev", "lo"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/32"))
}

/// SIGTERM to a pair.sh and its exit within 5 s.
fn stop_pair(net: &mut Net, mut c: Child) {
    let pid = nix::unistd::Pid::from_raw(c.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let ok = wait_for(|| c.try_wait().unwrap().is_some(), Duration::from_secs(5));
    net.adopt(c);
    assert!(ok, "pair.sh did not stop on SIGTERM");
}

/// The counting service on both nodes, pair.sh with --mirror on both (n1 preferred, at
/// keepalive 50 ms, deadtime 300 ms), n1 active and n2 its standby: the services' logs
/// and the two pair.sh.
fn mirrored_pair(net: &mut Net) -> ([PathBuf; 2], Child, Child) {
    let logs = [counter(net, 1), counter(net, 2)];
    let chans = ["--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1"];
    let fast = ["--keepalive", "50ms", "--deadtime", "300ms", "--mirror", "udp/5300"];
    let one: Vec<&str> = fast
        .iter()
        .chain(&["--mirror-peer", "10.77.1.2", "--preferred"])
        .copied()
        .collect();
    let two: Vec<&str> = fast.iter().chain(&["--mirror-peer", "10.77.1.1"]).copied().collect();
    let p1 = start(net, 1, CIDR, &one, &chans);
    let p2 = start(net, 2, CIDR, &two, &chans);
    wait_until("n1 takes the address", Duration::from_secs(5), || net.has_addr(1, CIDR));
    wait_until("n1 mirrors, n2 is the standby", Duration::from_secs(3), || {
        status(net, 1).starts_with(&format!("{VIP} active udp/5300 dev=eth0 peers=10.77.1.2"))
            && status(net, 2).starts_with(&format!("{VIP} standby udp/5300 dev=eth0 peers=10.77.1.1 lo"))
    });
    assert!(!lo_copy(net, 1), "the holder's copy on lo went when ipfake up took it");
    (logs, p1, p2)
}

/// Each request answered at most once; the answers by node.
fn answered_once(answers: &[Answer]) -> (Vec<&Answer>, Vec<&Answer>) {
    let mut by_seq: HashMap<u64, usize> = HashMap::new();
    for a in answers {
        *by_seq.entry(a.seq).or_default() += 1;
    }
    let mut doubled: Vec<u64> = by_seq.iter().filter(|v| *v.1 > 1).map(|v| *v.0).collect();
    doubled.sort();
    assert!(
        doubled.is_empty(),
        "{} requests answered twice, from seq {:?}",
        doubled.len(),
        doubled.first()
    );
    let from = |n: &str| -> Vec<&Answer> { answers.iter().filter(|a| a.node == n).collect() };
    let (a1, a2) = (from("n1"), from("n2"));
    assert_eq!(a1.len() + a2.len(), answers.len(), "answers from elsewhere");
    (a1, a2)
}

#[test]
fn the_standby_answers_with_the_count_the_master_had_reached() {
    let mut net = Net::new(3, 2);
    let (logs, p1, p2) = mirrored_pair(&mut net);
    let c = client(&net);
    std::thread::sleep(Duration::from_millis(1500));
    // The master dies: both its cables pulled at the switch.
    let before_cut = c.sent.load(Ordering::SeqCst);
    let cut_at = Instant::now();
    net.cut(1, 0);
    net.cut(1, 1);
    let cut_done = c.sent.load(Ordering::SeqCst);
    wait_until("n2 takes over", Duration::from_secs(3), || net.has_addr(2, CIDR));
    std::thread::sleep(Duration::from_millis(1000));
    c.stop.store(true, Ordering::SeqCst);
    let answers = c.thread.join().unwrap();
    let diag = format!("{}\n{}", log_of(&net, 1), log_of(&net, 2));

    // No request answered twice, ever.
    let (a1, a2) = answered_once(&answers);
    // (a) Before the failover only the master answered: the standby's answers were
    // dropped until it took over, and it took over only after the cut.
    assert!(a1.len() > 250, "the master answered {} requests in 1.5 s", a1.len());
    assert!(
        a2.iter().all(|a| a.seq > before_cut && a.at > cut_at),
        "n2 answered a request sent while n1 was alive\n{diag}"
    );
    assert!(
        a1.iter().all(|a| a.seq <= cut_done),
        "n1 answered after its cables were pulled"
    );
    // The master answered every request up to its last answer j, so its count there is
    // j: no request was lost before the failure.
    let last1 = a1.iter().max_by_key(|a| a.seq).unwrap();
    let (j, m) = (last1.seq, last1.count);
    let seqs1: Vec<u64> = a1.iter().map(|a| a.seq).collect();
    assert_eq!(seqs1, (1..=j).collect::<Vec<_>>(), "the master missed requests");
    assert_eq!(m, j);
    // (b) The standby's first answer (to seq k, count S) counts every request the
    // master answered, plus the ones in flight when the master died — those sent after
    // j and no later than the cut's end (`cut_done`), which the master may have
    // received (and copied) without its answer getting out — plus k itself.
    let first2 = a2.first().unwrap_or_else(|| panic!("n2 never answered\n{diag}"));
    let (k, s) = (first2.seq, first2.count);
    let in_flight = cut_done - j;
    assert!(
        m < s && s <= m + 1 + in_flight,
        "n2's first answer: count {s} for seq {k}; n1's last: count {m} for seq {j}; {in_flight} in flight\n{diag}"
    );
    // The same state, not only the same number: the standby processed the master's
    // requests in the master's order; what it processed between them and k was in
    // flight; and every later answer is its log's count for that request.
    let (l1, e1) = processed(&logs[0]);
    let (l2, e2) = processed(&logs[1]);
    assert!(e1.is_empty() && e2.is_empty(), "send errors: {e1:?} {e2:?}");
    assert_eq!(l1[..m as usize], l2[..m as usize], "the standby's state diverged");
    for &(count, seq) in &l2[m as usize..(s - 1) as usize] {
        assert!(
            seq > j && seq <= cut_done,
            "n2 processed seq {seq} as {count}: not in flight"
        );
    }
    assert_eq!(l2[(s - 1) as usize], (s, k));
    let logged: HashMap<u64, u64> = l2.iter().map(|&(c, q)| (q, c)).collect();
    for a in &a2 {
        assert_eq!(logged.get(&a.seq), Some(&a.count), "n2's answer to seq {}", a.seq);
    }
    assert!(
        a2.len() > 100,
        "n2 answered only {} requests in the last second",
        a2.len()
    );
    let gap = first2.at - last1.at;
    eprintln!(
        "figures: failover gap {gap:?} (last answer of n1 → first of n2), {} requests unanswered, \
         {} in flight at the cut, standby's count {s} = master's {m} + {} + 1",
        k - j - 1,
        in_flight,
        s - m - 1
    );
    // The new holder's copy on lo went when ipfake up took the address.
    assert!(net.has_addr(2, CIDR));
    assert!(!lo_copy(&net, 2), "n2 still has the standby's copy on lo");
    assert!(
        status(&net, 2).starts_with(&format!("{VIP} active udp/5300")),
        "{}",
        status(&net, 2)
    );

    // (c) TCP is refused, in one line, exit 2, and nothing changes.
    let before = status(&net, 2);
    let o = active(&net, 2, "udp/5300,tcp/80", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--service `tcp/80`: TCP cannot be mirrored: two TCP stacks cannot share one connection"),
        "{}",
        stderr(&o)
    );
    assert_eq!(status(&net, 2), before);

    // (d) Stopped, each node leaves no table and no address on lo.
    stop_pair(&mut net, p2);
    stop_pair(&mut net, p1);
    for n in 1..=2 {
        assert!(no_table_left(&net, n), "n{n} left a table\n{}", log_of(&net, n));
        assert!(!lo_copy(&net, n), "n{n} left its copy on lo");
        let o = ipfake(&net, n, &["mirror", "status", VIP]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{VIP} off\n"));
    }
}

/// Standby by hand on the master: n2 takes over, and both nodes processed exactly the
/// same requests (those that reached n1 after it went silent were copied to n2), so
/// either can take over again with the same state.
#[test]
fn a_handover_by_hand_leaves_both_nodes_with_the_same_state() {
    let mut net = Net::new(3, 2);
    let (logs, p1, p2) = mirrored_pair(&mut net);
    let c = client(&net);
    std::thread::sleep(Duration::from_millis(700));
    let state = net.path("pair1").display().to_string();
    let st = std::process::Command::new("bash")
        .args([common::pair::SCRIPT, "standby", "--state-dir", &state])
        .status()
        .unwrap();
    assert!(st.success());
    wait_until("n2 takes over", Duration::from_secs(3), || {
        net.has_addr(2, CIDR) && !net.has_addr(1, CIDR)
    });
    std::thread::sleep(Duration::from_millis(700));
    c.stop.store(true, Ordering::SeqCst);
    let answers = c.thread.join().unwrap();
    let sent = c.sent.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    let diag = format!("{}\n{}", log_of(&net, 1), log_of(&net, 2));
    let (a1, a2) = answered_once(&answers);
    assert!(
        a1.len() > 100 && a2.len() > 100,
        "{} and {} answers\n{diag}",
        a1.len(),
        a2.len()
    );
    let (last1, first2) = (
        a1.iter().map(|a| a.seq).max().unwrap(),
        a2.iter().map(|a| a.seq).min().unwrap(),
    );
    assert!(last1 < first2, "n1 answered seq {last1} after n2 answered {first2}");
    let (l1, e1) = processed(&logs[0]);
    let (l2, e2) = processed(&logs[1]);
    assert!(e1.is_empty() && e2.is_empty(), "send errors: {e1:?} {e2:?}");
    let set = |l: &[(u64, u64)]| -> std::collections::BTreeSet<u64> { l.iter().map(|x| x.1).collect() };
    assert_eq!(set(&l1), set(&l2), "the two nodes processed different requests\n{diag}");
    assert_eq!(l1.len(), l2.len());
    // Everything sent was processed by both (one LAN, nothing lost), every answer the
    // client got carries the count its node logged for it.
    assert_eq!(set(&l1), (1..=sent).collect(), "requests lost\n{diag}");
    for (a, log) in [(&a1, &l1), (&a2, &l2)] {
        let logged: HashMap<u64, u64> = log.iter().map(|&(c, q)| (q, c)).collect();
        assert!(a.iter().all(|a| logged.get(&a.seq) == Some(&a.count)));
    }
    eprintln!(
        "figures: handover by hand: {} requests unanswered between n1's last answer and n2's first, both processed all {sent}",
        first2 - last1 - 1
    );
    stop_pair(&mut net, p2);
    stop_pair(&mut net, p1);
}

/// Both nodes active, each the other's peer (a partition that healed, before the pair
/// has settled): each request is processed once by each, not bounced between them.
#[test]
fn two_active_nodes_process_each_request_once_each() {
    let mut net = Net::new(3, 1);
    let logs = [counter(&mut net, 1), counter(&mut net, 2)];
    for (n, peer) in [(1, "10.77.1.2"), (2, "10.77.1.1")] {
        net.ip(net.ns(n), &["addr", "add", CIDR, "dev", "eth0"]);
        let o = active(&net, n, "udp/5300", &["--peer", peer]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let c = client(&net);
    wait_until("20 requests sent", Duration::from_secs(2), || {
        c.sent.load(Ordering::SeqCst) >= 20
    });
    c.stop.store(true, Ordering::SeqCst);
    c.thread.join().unwrap();
    let sent = c.sent.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    for log in &logs {
        let (p, e) = processed(log);
        assert!(e.is_empty(), "{e:?}");
        let seqs: Vec<u64> = p.iter().map(|x| x.1).collect();
        assert!(
            seqs == (1..=sent).collect::<Vec<_>>(),
            "{}: {} requests processed for {sent} sent",
            log.display(),
            seqs.len()
        );
    }
    // Off by hand, everything: the tables and nothing else.
    for n in 1..=2 {
        let o = ipfake(&net, n, &["mirror", "off"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(no_table_left(&net, n));
        assert!(net.has_addr(n, CIDR), "off removed an address it did not add");
    }
}

/// A table of our name that we did not make is refused and left; standby adds its lo
/// copy only after the tables are made, and `off` takes both away; again is nothing.
#[test]
fn a_table_not_ours_is_left_alone_and_modes_are_idempotent() {
    let net = Net::new(1, 1);
    let standby = [
        "mirror",
        "standby",
        "--vip",
        VIP,
        "--peer",
        "10.77.1.9",
        "--dev",
        "eth0",
        "--service",
        "udp/5300",
    ];
    net.nft(net.ns(1), "table ip hakit_mirror {\n  comment \"someone else's\"\n}\n");
    let o = ipfake(&net, 1, &standby);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("table ip hakit_mirror exists and was not made by ipfake mirror"));
    assert!(!lo_copy(&net, 1));
    let o = ipfake(&net, 1, &["mirror", "off"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!no_table_left(&net, 1), "a table not ours was removed");
    net.nft(net.ns(1), "delete table ip hakit_mirror\n");
    for _ in 0..2 {
        let o = ipfake(&net, 1, &standby);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(lo_copy(&net, 1));
        assert_eq!(
            status(&net, 1),
            format!("{VIP} standby udp/5300 dev=eth0 peers=10.77.1.9 lo\n")
        );
    }
    // Bad input: one line naming the flag, exit 2, nothing changed.
    for (args, want) in [
        (
            vec!["--vip", "10.77.1.300", "--dev", "eth0"],
            "--vip `10.77.1.300`: not an IP address",
        ),
        (vec!["--vip", VIP, "--dev", "eth7"], "--dev `eth7`: no such interface"),
        (
            vec!["--vip", VIP, "--dev", "eth0", "--peer", VIP],
            "--peer `10.77.1.100` is the mirrored address itself",
        ),
        (vec!["--vip", "2001:db8::1", "--dev", "eth0"], "IPv6 is not mirrored"),
    ] {
        let mut a = vec!["mirror", "standby", "--service", "udp/5300"];
        a.extend(args);
        let o = ipfake(&net, 1, &a);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains(want), "{a:?}: {}", stderr(&o));
    }
    assert_eq!(
        status(&net, 1),
        format!("{VIP} standby udp/5300 dev=eth0 peers=10.77.1.9 lo\n")
    );
    let o = ipfake(&net, 1, &["up", CIDR, "dev", "eth0", "--once", "--mirror", "tcp/80"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--mirror `tcp/80`: TCP cannot be mirrored"),
        "{}",
        stderr(&o)
    );
    assert!(!net.has_addr(1, CIDR));
    // pair.sh checks --mirror before it starts anything: exit 2, ipfake's line.
    for (opts, want) in [
        (
            &["--mirror", "tcp/80", "--mirror-peer", "10.77.1.9"][..],
            "two TCP stacks cannot share one connection",
        ),
        (
            &["--mirror", "udp/53"][..],
            "pair.sh: --mirror and --mirror-peer go together",
        ),
    ] {
        let mut c = start(&net, 1, CIDR, opts, &["--channel", "a=bcast:eth0"]);
        let code = wait_for(|| c.try_wait().unwrap().is_some(), Duration::from_secs(5));
        let code = code.then(|| c.wait().unwrap().code()).flatten();
        assert_eq!(code, Some(2), "{}", log_of(&net, 1));
        assert!(log_of(&net, 1).contains(want), "{}", log_of(&net, 1));
    }
    for _ in 0..2 {
        let o = ipfake(&net, 1, &["mirror", "off", "--vip", VIP]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(no_table_left(&net, 1));
        assert!(!lo_copy(&net, 1));
    }
}
