//! The channel switch (criterion): a node's cluster traffic moved to the other LAN by
//! one policy rule, against replacing every peer's host route. Figures and how to
//! reproduce them: BENCHMARKS.md ("Channel switch: rule vs route").
//!
//! Needs root. The benchmark moves its own thread into a new network namespace
//! (unshare(CLONE_NEWNET)) with two veth pairs for the two LANs, so nothing it does
//! touches the host's routing; the namespace goes when the process ends. No packet is
//! sent: what is timed is the kernel taking the change, one datagram and its
//! acknowledgement, as chan-switch makes it.
//!
//! - rule: adding the switch rule (priority 900 → table 102 over a base rule 1000 →
//!   table 101), deleting it, and deleting one rule while adding another in one
//!   datagram;
//! - route: replacing N = 4, 16, 64 host routes in table 101 with ones through the
//!   other LAN, in one datagram.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hakit::net::route::{HostRoute, Routes, Rule};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

const PEERS: [u8; 3] = [4, 16, 64];
const DEVS: [&str; 2] = ["hkbench0", "hkbench1"];

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Enter a namespace of our own with two LANs, 10.88.1.0/24 and 10.88.2.0/24 (a
/// veth pair each, both ends here: no peer is needed, nothing is sent), and
/// 10.88.0.1/32 on lo as the cluster address. Returns the two LANs' ifindexes.
fn lans() -> [u32; 2] {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    // `ip` runs as a child of this thread, so in its namespace.
    sh(&["ip", "link", "set", "lo", "up"]);
    sh(&["ip", "addr", "add", "10.88.0.1/32", "dev", "lo"]);
    for (i, dev) in DEVS.iter().enumerate() {
        let peer = format!("{dev}p");
        sh(&["ip", "link", "add", dev, "type", "veth", "peer", "name", &peer]);
        sh(&["ip", "addr", "add", &format!("10.88.{}.1/24", i + 1), "dev", dev]);
        sh(&["ip", "link", "set", dev, "up"]);
        sh(&["ip", "link", "set", &peer, "up"]);
    }
    DEVS.map(|d| nix::net::if_::if_nametoindex(d).expect("ifindex"))
}

/// Peer `k`'s host route in `table` through LAN `lan` (0 or 1).
fn peer(k: u8, lan: usize, ifindex: u32, table: u32) -> HostRoute {
    HostRoute {
        dst: IpAddr::V4(Ipv4Addr::new(10, 88, 100, k + 1)),
        prefix: 32,
        via: IpAddr::V4(Ipv4Addr::new(10, 88, lan as u8 + 1, k + 2)),
        ifindex,
        src: Some(IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1))),
        table,
    }
}

fn to_cluster(priority: u32, table: u32) -> Rule {
    Rule {
        priority,
        dst: IpAddr::V4(Ipv4Addr::new(10, 88, 100, 0)),
        dst_len: 24,
        table,
    }
}

fn switch(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "\n\
             **********************************************************************\n\
             ** benches/switch: NOT RUN. It needs root: a network namespace of   **\n\
             ** its own, routes and rules in it. sudo cargo bench --bench switch **\n\
             **********************************************************************\n"
        );
        return;
    }
    let dev = lans();
    let mut r = Routes::open().expect("rtnetlink socket");
    let all: Vec<u8> = (0..*PEERS.iter().max().unwrap()).collect();
    let lan =
        |l: usize, table: u32, n: &[u8]| -> Vec<HostRoute> { n.iter().map(|&k| peer(k, l, dev[l], table)).collect() };
    r.replace(&lan(0, 101, &all)).expect("table 101");
    r.replace(&lan(1, 102, &all)).expect("table 102");
    let base = to_cluster(1000, 101);
    let over = to_cluster(900, 102);
    r.change_rules(&[], std::slice::from_ref(&base)).expect("base rule");

    let mut g = c.benchmark_group("switch");
    g.bench_function("rule add (1 rule, 1 datagram)", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                r.change_rules(&[], std::slice::from_ref(&over)).unwrap();
                t += start.elapsed();
                r.change_rules(std::slice::from_ref(&over), &[]).unwrap();
            }
            t
        })
    });
    g.bench_function("rule delete (1 rule, 1 datagram)", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                r.change_rules(&[], std::slice::from_ref(&over)).unwrap();
                let start = Instant::now();
                r.change_rules(std::slice::from_ref(&over), &[]).unwrap();
                t += start.elapsed();
            }
            t
        })
    });
    // The same priority to the other table: delete one and add one, one datagram.
    let moved = to_cluster(1000, 102);
    let mut now = base.clone();
    g.bench_function("rule delete + add (2 rules, 1 datagram)", |b| {
        b.iter(|| {
            let next = if now == base { moved.clone() } else { base.clone() };
            r.change_rules(std::slice::from_ref(&now), std::slice::from_ref(&next))
                .unwrap();
            now = next;
        })
    });
    if now != base {
        r.change_rules(&[now], std::slice::from_ref(&base)).unwrap();
    }
    for n in PEERS {
        let some: Vec<u8> = (0..n).collect();
        // A cluster of n peers: table 101 holds their routes and no others.
        r.remove(&lan(0, 101, &all)).unwrap();
        r.replace(&lan(0, 101, &some)).unwrap();
        let ways = [lan(1, 101, &some), lan(0, 101, &some)];
        let mut flip = 0;
        g.bench_with_input(
            BenchmarkId::new("route replace (n routes, 1 datagram)", n),
            &n,
            |b, _| {
                b.iter(|| {
                    r.replace(&ways[flip]).unwrap();
                    flip ^= 1;
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, switch);
criterion_main!(benches);
