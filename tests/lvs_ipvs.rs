//! The IPVS backend against a real IPVS kernel: the host test boots Debian's kernel in
//! the VM (tests/common/vm.rs) and runs the `vm_` tests below inside it, where they drive
//! `hakit::tools::lvs_ctl::ipvs::Ipvs` directly and compare with Debian's ipvsadm in the
//! same kernel. If the VM cannot start, the host test fails and says so.
//!
//! `cargo test --test lvs_ipvs -- --ignored ipvs_bench --nocapture` runs the throughput
//! comparison (`bench_` tests) inside instead.

mod common;
use common::vm;
use hakit::tools::lvs_ctl::backend::{Backend, Error};
use hakit::tools::lvs_ctl::ipvs::{self, Ipvs};
use hakit::tools::lvs_ctl::model::{
    Change, Daemon, Dest, Fwd, Proto, Service, ServiceKey, Stats, Table, Timeouts, DAEMON_MASTER, F_PERSISTENT,
    F_SCHED1, F_SCHED2, F_USER,
};
use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Instant;

#[test]
fn lvs_ipvs_vm() {
    let inner = vm::run_ignored_inside("vm_");
    assert_eq!(inner.passed, 7, "every vm_ test ran inside");
}

#[test]
#[ignore = "a benchmark: boots the IPVS VM and times lvs-ctl's backend against ipvsadm"]
fn ipvs_bench() {
    let inner = vm::run_ignored_inside("bench_");
    assert_eq!(inner.passed, 3);
}

// ------------------------------------------------------------------------- helpers

fn run_ipvsadm(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new("ipvsadm")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ipvsadm");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ipvsadm(args: &[&str], stdin: &str) -> String {
    let out = run_ipvsadm(args, stdin);
    assert!(
        out.status.success(),
        "ipvsadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(proto: Proto, addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto,
        addr: ip(addr),
        port,
    }
}

fn dest(addr: &str, port: u16, fwd: Fwd, weight: u32) -> Dest {
    Dest {
        fwd,
        weight,
        ..Dest::new(ip(addr), port)
    }
}

/// An empty table in the kernel, and the backend open on it.
fn fresh() -> (Ipvs, Table) {
    ipvsadm(&["-C"], "");
    let mut b = Ipvs::open().expect("IPVS in the VM");
    let t = b.read().unwrap();
    assert!(t.services.is_empty());
    (b, t)
}

/// What a user sets, without counters and the kernel's own flags, in one order (read()
/// gives the kernel's).
fn settings(t: &Table) -> Table {
    let mut t = t.clone();
    t.services.sort_by_key(|s| s.key.sort_key());
    for s in &mut t.services {
        s.dests.sort_by_key(|d| d.sort_key());
        s.flags &= F_USER;
        s.stats = Stats::default();
        for d in &mut s.dests {
            d.active = 0;
            d.inactive = 0;
            d.persist = 0;
            d.stats = Stats::default();
        }
    }
    t
}

/// The table of every kind the tests build: tcp, udp, sctp, IPv4 and IPv6, fwmarks of
/// both families, persistence with a netmask, sh's flags, weights, thresholds, every
/// forwarding method, and an IPv6 tunnel behind an IPv4 service.
fn every_kind() -> Vec<Change> {
    let mut c = Vec::new();
    let mut add = |s: Service, ds: Vec<Dest>| {
        let k = s.key;
        c.push(Change::AddService(s));
        c.extend(ds.into_iter().map(|d| Change::AddDest(k, d)));
    };
    let s = |k: ServiceKey, sched: &str| Service {
        scheduler: sched.into(),
        ..Service::new(k)
    };
    let mut thresholds = dest("10.0.1.2", 80, Fwd::Route, 5);
    thresholds.u_thresh = 100;
    thresholds.l_thresh = 10;
    add(
        s(key(Proto::Tcp, "10.0.0.1", 80), "rr"),
        vec![
            dest("10.0.1.3", 80, Fwd::Tunnel, 0),
            dest("10.0.1.1", 80, Fwd::Masq, 1),
            thresholds,
        ],
    );
    let mut sh = s(key(Proto::Udp, "10.0.0.1", 53), "sh");
    sh.flags = F_SCHED1 | F_SCHED2;
    add(sh, vec![dest("10.0.1.4", 53, Fwd::Masq, 2)]);
    add(
        s(key(Proto::Sctp, "10.0.0.2", 5000), "wlc"),
        vec![dest("10.0.1.5", 5000, Fwd::Route, 1)],
    );
    let mut v6 = s(key(Proto::Tcp, "2001:db8::1", 443), "wrr");
    v6.flags = F_PERSISTENT;
    v6.timeout = 600;
    v6.netmask = 64;
    add(
        v6,
        vec![
            dest("2001:db8:1::4", 443, Fwd::Route, 1),
            dest("2001:db8:1::1", 443, Fwd::Masq, 3),
        ],
    );
    let mut fw = s(ServiceKey::Fwmark { mark: 1, v6: false }, "lc");
    fw.flags = F_PERSISTENT;
    fw.timeout = 300;
    fw.netmask = u32::from_ne_bytes([255, 255, 255, 0]);
    add(fw, vec![dest("10.0.1.6", 0, Fwd::Route, 1)]);
    add(
        s(ServiceKey::Fwmark { mark: 2, v6: true }, "fo"),
        vec![dest("2001:db8:1::2", 0, Fwd::Route, 4)],
    );
    add(
        s(key(Proto::Tcp, "10.0.0.3", 80), "wlc"),
        vec![dest("2001:db8:1::3", 80, Fwd::Tunnel, 1)],
    );
    c
}

/// `ipvsadm -S -n` of [`every_kind`], sorted as ipvsadm sorts (fwmark services last;
/// IPv4 before IPv6; tcp, udp, sctp).
const EVERY_KIND_SAVED: &str = "\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 5
-a -t 10.0.0.1:80 -r 10.0.1.3:80 -i -w 0 --tun-type ipip
-A -t 10.0.0.3:80 -s wlc
-a -t 10.0.0.3:80 -r [2001:db8:1::3]:80 -i -w 1 --tun-type ipip
-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port
-a -u 10.0.0.1:53 -r 10.0.1.4:53 -m -w 2
-A --sctp-service 10.0.0.2:5000 -s wlc
-a --sctp-service 10.0.0.2:5000 -r 10.0.1.5:5000 -g -w 1
-A -t [2001:db8::1]:443 -s wrr -p 600 -M 64
-a -t [2001:db8::1]:443 -r [2001:db8:1::1]:443 -m -w 3
-a -t [2001:db8::1]:443 -r [2001:db8:1::4]:443 -g -w 1
-A -f 1 -s lc -p 300 -M 255.255.255.0
-a -f 1 -r 10.0.1.6:0 -g -w 1
-A -f 2 -6 -s fo
-a -f 2 -6 -r [2001:db8:1::2]:0 -g -w 4
";

/// `ipvsadm -L -n` of [`every_kind`], with ipvsadm's printf widths.
fn every_kind_listed(version: &str, size: u32) -> String {
    let d = |a: &str, f: &str, w: u32| format!("  -> {a:<28} {f:<7} {w:<6} {:<10} {:<10}\n", 0, 0);
    let mut s = format!(
        "IP Virtual Server version {version} (size={size})\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    s += "TCP  10.0.0.1:80 rr\n";
    s += &d("10.0.1.1:80", "Masq", 1);
    s += &d("10.0.1.2:80", "Route", 5);
    s += &d("10.0.1.3:80", "Tunnel", 0);
    s += "TCP  10.0.0.3:80 wlc\n";
    s += &d("[2001:db8:1::3]:80", "Tunnel", 1);
    s += "UDP  10.0.0.1:53 sh (sh-fallback,sh-port)\n";
    s += &d("10.0.1.4:53", "Masq", 2);
    s += "SCTP 10.0.0.2:5000 wlc\n";
    s += &d("10.0.1.5:5000", "Route", 1);
    s += "TCP  [2001:db8::1]:443 wrr persistent 600 mask 64\n";
    s += &d("[2001:db8:1::1]:443", "Masq", 3);
    s += &d("[2001:db8:1::4]:443", "Route", 1);
    s += "FWM  1 lc persistent 300 mask 255.255.255.0\n";
    s += &d("10.0.1.6:0", "Route", 1);
    s += "FWM  2 IPv6 fo\n";
    s += &d("[2001:db8:1::2]:0", "Route", 4);
    s
}

fn played(base: &Table, changes: &[Change]) -> Table {
    let mut t = base.clone();
    for c in changes {
        t.apply(c).unwrap_or_else(|r| panic!("{c:?}: {r}"));
    }
    t.sort();
    t
}

// ---------------------------------------------------------------- inside the VM

#[test]
#[ignore = "runs inside the IPVS VM, started by lvs_ipvs_vm"]
fn vm_a_table_built_by_the_backend_lists_as_ipvsadm_prints_it() {
    vm::guard();
    assert!(ipvs::available());
    let (mut b, empty) = fresh();
    let changes = every_kind();
    for c in &changes {
        b.check(c).unwrap();
    }
    b.commit(&empty, &changes).unwrap();
    assert_eq!(ipvsadm(&["-S", "-n"], ""), EVERY_KIND_SAVED);
    let info = b.info();
    assert_eq!(
        ipvsadm(&["-L", "-n"], ""),
        every_kind_listed(&info.version_string(), info.size)
    );
    // And it reads back as the model it was made from.
    let got = b.read().unwrap();
    assert_eq!(settings(&got), settings(&played(&empty, &changes)));
    // One service alone, and one that is not there.
    let one = b.read_service(&key(Proto::Tcp, "2001:db8::1", 443)).unwrap().unwrap();
    assert_eq!(one.dests.len(), 2);
    assert!(b.read_service(&key(Proto::Tcp, "10.9.9.9", 1)).unwrap().is_none());
}

#[test]
#[ignore = "runs inside the IPVS VM, started by lvs_ipvs_vm"]
fn vm_a_table_built_by_ipvsadm_reads_as_the_same_model() {
    vm::guard();
    let (mut b, empty) = fresh();
    // -S drops the thresholds: give them back on their line. (ipvsadm makes a direct
    // routing or tunnel server's port the service's: the table keeps to that.)
    let restore = EVERY_KIND_SAVED.replace("-r 10.0.1.2:80 -g -w 5\n", "-r 10.0.1.2:80 -g -w 5 -x 100 -y 10\n");
    ipvsadm(&["-R"], &restore);
    let got = b.read().unwrap();
    assert_eq!(settings(&got), settings(&played(&empty, &every_kind())));
    assert_eq!(got.info, b.info());
    // Nothing to change: the diff to the same model is empty.
    assert!(got.diff(&played(&empty, &every_kind())).is_empty());
}

#[test]
#[ignore = "runs inside the IPVS VM, started by lvs_ipvs_vm"]
fn vm_a_batch_refused_part_way_leaves_the_table_as_it_was() {
    vm::guard();
    let (mut b, empty) = fresh();
    let web = key(Proto::Tcp, "10.0.0.1", 80);
    let base = vec![
        Change::AddService(Service::new(web)),
        Change::AddDest(web, dest("10.0.1.1", 80, Fwd::Masq, 1)),
        Change::AddDest(web, dest("10.0.1.2", 80, Fwd::Masq, 1)),
    ];
    b.commit(&empty, &base).unwrap();
    let current = b.read().unwrap();
    // Someone adds a service behind the model's back: the kernel refuses the 3rd change.
    ipvsadm(&["-A", "-t", "10.0.0.9:80", "-s", "rr"], "");
    let before = ipvsadm(&["-S", "-n"], "");
    let other = key(Proto::Tcp, "10.0.0.2", 80);
    let mut edited = dest("10.0.1.1", 80, Fwd::Route, 7);
    edited.u_thresh = 50;
    let batch = vec![
        Change::AddService(Service::new(other)),
        Change::EditDest(web, edited),
        Change::AddService(Service::new(key(Proto::Tcp, "10.0.0.9", 80))),
        Change::DelDest(web, ip("10.0.1.2"), 80),
        Change::AddDest(other, dest("10.0.1.3", 80, Fwd::Masq, 1)),
    ];
    let e = b.commit_indexed(&current, &batch).unwrap_err();
    assert_eq!(e.index, Some(2));
    assert!(
        matches!(&e.error, Error::Kernel(m) if m == "Service already exists"),
        "{}",
        e.error
    );
    assert_eq!(ipvsadm(&["-S", "-n"], ""), before);
    let t = b.read().unwrap();
    assert_eq!(t.service(&web).unwrap().dest(ip("10.0.1.1"), 80).unwrap().weight, 1);

    // A refusal in a later window (many changes back to back): all undone, deletions
    // and edits included.
    let mut batch = Vec::new();
    for i in 0..150u16 {
        let k = key(Proto::Udp, "10.0.2.1", 1000 + i);
        batch.push(Change::AddService(Service::new(k)));
        batch.push(Change::AddDest(k, dest("10.0.3.1", 1000 + i, Fwd::Masq, 1)));
    }
    batch.push(Change::DelService(web));
    batch.push(Change::AddDest(
        key(Proto::Tcp, "10.0.0.5", 1),
        dest("10.0.3.2", 1, Fwd::Masq, 1),
    ));
    let current = b.read().unwrap();
    let e = b.commit_indexed(&current, &batch).unwrap_err();
    assert_eq!(e.index, Some(301));
    assert!(
        matches!(&e.error, Error::Kernel(m) if m == "Service not defined"),
        "{}",
        e.error
    );
    assert_eq!(ipvsadm(&["-S", "-n"], ""), before);

    // And a whole batch that works still works after both.
    let more = vec![Change::AddDest(web, dest("10.0.1.9", 80, Fwd::Route, 2))];
    let current = b.read().unwrap();
    b.commit(&current, &more).unwrap();
    assert!(ipvsadm(&["-S", "-n"], "").contains("-a -t 10.0.0.1:80 -r 10.0.1.9:80 -g -w 2\n"));
}

#[test]
#[ignore = "runs inside the IPVS VM, started by lvs_ipvs_vm"]
fn vm_refusals_are_in_ipvsadms_words() {
    vm::guard();
    let (mut b, empty) = fresh();
    let web = key(Proto::Tcp, "10.0.0.1", 80);
    let err = |b: &mut Ipvs, c: Change| match b.commit(&empty, &[c]) {
        Err(Error::Kernel(m)) => m,
        r => panic!("{r:?}"),
    };
    assert_eq!(err(&mut b, Change::DelService(web)), "No such service");
    assert_eq!(
        err(&mut b, Change::AddDest(web, dest("10.0.1.1", 80, Fwd::Masq, 1))),
        "Service not defined"
    );
    b.commit(&empty, &[Change::AddService(Service::new(web))]).unwrap();
    assert_eq!(
        err(&mut b, Change::DelDest(web, ip("10.0.1.1"), 80)),
        "No such destination"
    );
    assert_eq!(
        err(&mut b, Change::Zero(Some(key(Proto::Udp, "10.0.0.1", 80)))),
        "No such service"
    );
    // What ipvsadm says for the same.
    let out = run_ipvsadm(&["-d", "-t", "10.0.0.1:80", "-r", "10.0.1.1:80"], "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "No such destination\n");
    // Zero and flush.
    b.commit(&empty, &[Change::Zero(Some(web)), Change::Zero(None)])
        .unwrap();
    b.commit(&empty, &[Change::Flush]).unwrap();
    assert!(b.read().unwrap().services.is_empty());
}

#[test]
#[ignore = "runs inside the IPVS VM, started by lvs_ipvs_vm"]
fn vm_timeouts_round_trip() {
    vm::guard();
    let (mut b, _) = fresh();
    let was = b.timeouts().unwrap();
    assert_eq!(
        ipvsadm(&["-L", "--timeout"], ""),
        format!("Timeout (tcp tcpfin udp): {} {} {}\n", was.tcp, was.tcp_fin, was.udp)
    );
    let t = Timeouts {
        tcp: 901,
        tcp_fin: 121,
        udp: 301,
    };
    b.set_timeouts(t).unwrap();
    assert_eq!(b.timeouts().unwrap(), t);
    assert_eq!(
        ipvsadm(&["-L", "--timeout"], ""),
        "Timeout (tcp tcpfin udp): 901 121 301\n"
    );
    // 0 leaves one as it is.
    b.set_timeouts(Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 99,
    })
    .unwrap();
    assert_eq!(b.timeouts().unwrap(), Timeouts { udp: 99, ..t });
    b.set_timeouts(was).unwrap();
    assert_eq!(b.timeouts().unwrap(), was);
}

#[test]
#[ignore = "runs inside the IPVS VM, started by lvs_ipvs_vm"]
fn vm_a_sync_daemon_starts_lists_and_stops() {
    vm::guard();
    let (mut b, _) = fresh();
    let ipr = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ipr(&["link", "add", "hkipvs0", "type", "dummy"]);
    ipr(&["link", "set", "hkipvs0", "multicast", "on", "up"]);
    assert!(b.daemons().unwrap().is_empty());
    let d = Daemon {
        state: DAEMON_MASTER,
        ifname: "hkipvs0".into(),
        syncid: 5,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    };
    b.start_daemon(&d).unwrap();
    let listed = b.daemons().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].state, listed[0].ifname.as_str(), listed[0].syncid),
        (DAEMON_MASTER, "hkipvs0", 5)
    );
    let text = ipvsadm(&["-L", "--daemon"], "");
    assert!(
        text.starts_with("master sync daemon (mcast=hkipvs0, syncid=5"),
        "{text}"
    );
    match b.start_daemon(&d) {
        Err(Error::Kernel(m)) => assert_eq!(m, "Daemon has already run"),
        r => panic!("{r:?}"),
    }
    b.stop_daemon(DAEMON_MASTER).unwrap();
    assert!(b.daemons().unwrap().is_empty());
    assert_eq!(ipvsadm(&["-L", "--daemon"], ""), "");
    match b.stop_daemon(DAEMON_MASTER) {
        Err(Error::Kernel(m)) => assert_eq!(m, "No daemon is running"),
        r => panic!("{r:?}"),
    }
    ipr(&["link", "del", "hkipvs0"]);
}

#[test]
#[ignore = "runs inside the IPVS VM, started by lvs_ipvs_vm"]
fn vm_a_large_batch_goes_in_and_reads_back() {
    vm::guard();
    let (mut b, empty) = fresh();
    let (changes, _) = many(1000, 4);
    b.commit(&empty, &changes).unwrap();
    let t = b.read().unwrap();
    assert_eq!(t.services.len(), 1000);
    assert!(t.services.iter().all(|s| s.dests.len() == 4));
    assert_eq!(settings(&t), settings(&played(&empty, &changes)));
    assert_eq!(ipvsadm(&["-S", "-n"], "").lines().count(), 5000);
}

// ----------------------------------------------------------------------- benchmarks

/// `services` × `dests`: the changes and the same as an `ipvsadm -R` file.
fn many(services: u32, dests: u32) -> (Vec<Change>, String) {
    let mut c = Vec::new();
    let mut file = String::new();
    for i in 0..services {
        let vip = format!("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256);
        let k = key(Proto::Tcp, &vip, 80);
        c.push(Change::AddService(Service::new(k)));
        writeln!(file, "-A -t {vip}:80 -s wlc").unwrap();
        for j in 0..dests {
            let rip = format!("10.200.{}.{}", j, 1 + i % 250);
            let port = 8000 + (i / 250) as u16;
            c.push(Change::AddDest(k, dest(&rip, port, Fwd::Masq, 1)));
            writeln!(file, "-a -t {vip}:80 -r {rip}:{port} -m -w 1").unwrap();
        }
    }
    (c, file)
}

/// This thread (and what it starts) in a network namespace of its own, so in a fresh
/// IPVS: a deleted real server waits in the kernel's trash for two minutes, and every
/// new one is first looked for there one by one, which would time the trash instead.
fn own_ipvs() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace");
    // IPVS refuses a real server whose address type it cannot tell: it needs the local
    // routing table, which lo's address makes.
    let out = Command::new("ip").args(["link", "set", "lo", "up"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

#[test]
#[ignore = "a benchmark inside the IPVS VM, started by ipvs_bench"]
fn bench_restore_10000_services_of_4() {
    vm::guard();
    let (changes, file) = many(10_000, 4);
    own_ipvs();
    let (mut b, empty) = fresh();
    let ((), ours) = time(|| b.commit(&empty, &changes).unwrap());
    let saved = ipvsadm(&["-S", "-n"], "");
    assert_eq!(saved.lines().count(), 50_000);
    own_ipvs();
    let (_, theirs) = time(|| ipvsadm(&["-R"], &file));
    assert_eq!(ipvsadm(&["-S", "-n"], ""), saved, "both built the same table");
    println!(
        "BENCH restore 10000x4 ({} changes): backend commit {ours:.3} s, ipvsadm -R {theirs:.3} s: {:.1}x",
        changes.len(),
        theirs / ours
    );
    ipvsadm(&["-C"], "");
}

#[test]
#[ignore = "a benchmark inside the IPVS VM, started by ipvs_bench"]
fn bench_read_16000_services_of_1() {
    vm::guard();
    let (changes, _) = many(16_000, 1);
    own_ipvs();
    let (mut b, empty) = fresh();
    b.commit(&empty, &changes).unwrap();
    let (t, ours) = time(|| b.read().unwrap());
    assert_eq!(t.services.len(), 16_000);
    let (text, theirs) = time(|| ipvsadm(&["-S", "-n"], ""));
    assert_eq!(text.lines().count(), 32_000);
    println!(
        "BENCH read 16000x1: backend read {ours:.3} s, ipvsadm -S -n {theirs:.3} s: {:.1}x",
        theirs / ours
    );
    ipvsadm(&["-C"], "");
}

#[test]
#[ignore = "a benchmark inside the IPVS VM, started by ipvs_bench"]
fn bench_where_the_time_goes() {
    vm::guard();
    let (changes, _) = many(10_000, 4);
    own_ipvs();
    let (mut b, empty) = fresh();
    // The netlink and generic netlink path alone: FLUSH of an empty table.
    let flushes = vec![Change::Flush; changes.len()];
    let ((), floor) = time(|| b.commit(&empty, &flushes).unwrap());
    let services: Vec<Change> = changes
        .iter()
        .filter(|c| matches!(c, Change::AddService(_)))
        .cloned()
        .collect();
    let dests: Vec<Change> = changes
        .iter()
        .filter(|c| matches!(c, Change::AddDest(..)))
        .cloned()
        .collect();
    let ((), svc) = time(|| b.commit(&empty, &services).unwrap());
    // One real server a service, by forwarding method, then the other three.
    let split = |fwd: Fwd, n: usize| -> Vec<Change> {
        dests
            .iter()
            .skip(n)
            .step_by(4)
            .map(|c| match c {
                Change::AddDest(k, d) => Change::AddDest(*k, Dest { fwd, ..d.clone() }),
                c => c.clone(),
            })
            .collect()
    };
    let (masq, route) = (split(Fwd::Masq, 0), split(Fwd::Route, 1));
    let ((), m) = time(|| b.commit(&empty, &masq).unwrap());
    let ((), r) = time(|| b.commit(&empty, &route).unwrap());
    let rest: Vec<Change> = [split(Fwd::Masq, 2), split(Fwd::Masq, 3)].concat();
    let ((), dst) = time(|| b.commit(&empty, &rest).unwrap());
    println!(
        "BENCH parts: 10000 masq real servers {m:.3} s, 10000 direct routing {r:.3} s, 20000 more masq {dst:.3} s"
    );
    let t = b.read().unwrap();
    let ((), del) = time(|| b.commit(&t, &[Change::Flush]).unwrap());
    println!(
        "BENCH parts: {} FLUSHes of nothing {floor:.3} s; {} services {svc:.3} s; one FLUSH of them all {del:.3} s",
        flushes.len(),
        services.len(),
    );
}
