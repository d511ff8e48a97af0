//! Code-path benchmarks (criterion). Figures and how to reproduce them: BENCHMARKS.md.
//!
//! - intake: parse + verify (HMAC-SHA256) + detector + table write, per heartbeat, for
//!   a 1,000-node cluster on two channels with 10 ms keepalives;
//! - table: one consistent record copy while a writer thread updates at full rate;
//! - msg: parsing and verifying one heartbeat in each wire form.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hakit::table::{NodeRecord, NodeState, TableReader, TableWriter, RECORD_WORDS};
use hakit::tools::hb_watch::detector::{Config, Detector};
use hakit::tools::hb_watch::watch::Intake;
use hakit::wire::authkeys::AuthKeys;
use hakit::wire::msg::{Builder, Msg};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NODES: usize = 1000;
const ROUNDS: usize = 40;
const KEYS: &str = "auth 1\n1 sha256 benchmark-secret-key\n";

fn heartbeat(keys: &AuthKeys, node: usize, seq: u64) -> Vec<u8> {
    let mut b = Builder::new();
    b.add("t", "status")
        .add("st", "active")
        .add("dt", "1e")
        .add("protocol", "1");
    b.add("src", &format!("node{node}"))
        .add_binary("srcuuid", &[node as u8; 16])
        .add("seq", &format!("{seq:x}"))
        .add("hg", "6b00cc17")
        .add("ts", "6b00cc17")
        .add("ld", "0.15 0.10 0.05 1/123 4567")
        .add("ttl", "3");
    let mut out = Vec::new();
    b.finish(keys, &mut out);
    out
}

fn intake(c: &mut Criterion) {
    let keys = AuthKeys::parse(KEYS).unwrap();
    // Every round: every node's heartbeat on both channels (2,000 datagrams).
    let rounds: Vec<Vec<u8>> = (0..ROUNDS)
        .flat_map(|r| (0..NODES).map(move |n| (r, n)))
        .map(|(r, n)| heartbeat(&keys, n, r as u64 + 1))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let chans = vec!["a".to_string(), "b".to_string()];
    let cfg = Config {
        local: "local".into(),
        channels: chans.clone(),
        deadtime_ns: 30_000_000,
        warntime_ns: 15_000_000,
        initdead_ns: 60_000_000,
        nodes: Vec::new(),
        capacity: NODES + 1,
    };
    let mut tw = TableWriter::create(&dir.path().join("ast"), NODES + 1, &chans, "local").unwrap();
    let mut g = c.benchmark_group("intake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify+apply one heartbeat (1000 nodes, 2 channels, sha256)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                // A fresh detector for each pass over the rounds (sequences start again).
                let mut ik = Intake::new(AuthKeys::parse(KEYS).unwrap(), Detector::new(cfg.clone(), 0, &[]));
                let start = Instant::now();
                'pass: for (i, p) in rounds.iter().enumerate() {
                    let now = (i / NODES) as u64 * 10_000_000 + 1;
                    for ch in 0..2 {
                        let _ = ik.packet(now, ch, p);
                        done += 1;
                        if done % 16 == 0 {
                            ik.detector.take_dirty(|s, r| {
                                let _ = tw.write(s, r);
                            });
                            ik.detector.tick(now);
                            ik.detector.drain_events().for_each(drop);
                        }
                        if done >= iters {
                            break 'pass;
                        }
                    }
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn table(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ast");
    let chans = vec!["a".to_string(), "b".to_string()];
    let mut tw = TableWriter::create(&path, 64, &chans, "local").unwrap();
    let rec = |n: u64| NodeRecord {
        name: "node7".into(),
        state: NodeState::Up,
        generation: n,
        last_seq: n,
        ..Default::default()
    };
    for s in 0..64 {
        tw.write(s, &rec(1)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let started = Arc::new(AtomicBool::new(false));
    let st2 = started.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0u64;
        while !s2.load(Ordering::Relaxed) {
            n += 1;
            tw.write((n % 4) as usize, &rec(n)).unwrap();
            st2.store(true, Ordering::Relaxed);
        }
        n
    });
    // Measure only while the writer is really writing.
    while !started.load(Ordering::Relaxed) {
        std::thread::yield_now();
    }
    let reader = TableReader::open(&path).unwrap();
    let mut g = c.benchmark_group("table");
    g.bench_function("consistent copy of one record, writer at full rate", |b| {
        let mut words = [0u64; RECORD_WORDS];
        b.iter(|| {
            let _ = std::hint::black_box(reader.read_raw(0, &mut words));
            std::hint::black_box(&words);
        })
    });
    g.bench_function("decoded record, writer at full rate", |b| {
        b.iter(|| std::hint::black_box(reader.read(0)))
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 0);
}

fn msg(c: &mut Criterion) {
    let keys = AuthKeys::parse(KEYS).unwrap();
    let classic = heartbeat(&keys, 7, 42);
    let mut scratch = Vec::new();
    let mut g = c.benchmark_group("msg");
    g.bench_function("parse classic", |b| {
        b.iter(|| std::hint::black_box(Msg::parse(&classic).unwrap().fields.len()))
    });
    g.bench_function("parse+verify classic sha256", |b| {
        b.iter(|| {
            let m = Msg::parse(&classic).unwrap();
            m.verify(&keys, &mut scratch).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, intake, table, msg);
criterion_main!(benches);
