//! net::nftables against the kernel's nf_tables, each test in a network namespace of its
//! own (nf_tables state is per namespace: nothing on the host is touched). Tables and
//! sets are made with the nft binary; the socket is opened by a thread that entered the
//! namespace, and stays bound to it. Needs root and nft.
//!
//! `cargo test --release --test nftables -- --ignored --nocapture measure` prints the
//! figures against nft doing the same.

use hakit::net::nftables::{Concat, Data, Elem, ElemView, Family, Nftables, Op, TxError};
use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace, deleted on drop (also when a test fails).
struct Ns(String);

impl Ns {
    fn new() -> Ns {
        assert!(nix::unistd::Uid::effective().is_root(), "these tests need root");
        let name = format!(
            "hkt{}nfnl{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run(&["ip", "netns", "add", &name], None);
        let ns = Ns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"], None);
        ns
    }

    fn exec(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut a = vec!["ip", "netns", "exec", &self.0];
        a.extend_from_slice(args);
        run(&a, stdin)
    }

    fn nft(&self, script: &str) {
        self.exec(&["nft", "-f", "-"], Some(script));
    }

    /// An nf_tables socket in this namespace.
    fn open(&self) -> Nftables {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let f = std::fs::File::open(path).expect("open the namespace");
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            Nftables::open().expect("open nf_tables netlink")
        })
        .join()
        .expect("the thread that opens the socket")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> String {
    let mut c = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let mut input = c.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = c.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const TCP: u8 = 6;

/// The scheduler map of the nft backend: VIP . proto . port . slot : real . port.
const MAP: &str = "add table inet t\nadd map inet t m { typeof ip daddr . meta l4proto . th dport . numgen inc mod 2 : ip daddr . tcp dport; }\n";

fn vip(s: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + s)
}

fn key(s: u32, slot: u32) -> Vec<u8> {
    Concat::new().ipv4(vip(s)).proto(TCP).port(80).integer(slot).bytes()
}

fn real(s: u32, slot: u32, port: u16) -> Vec<u8> {
    Concat::new()
        .ipv4(Ipv4Addr::from(0xc0a8_0000 + s * 4 + slot))
        .port(port)
        .bytes()
}

/// `services` × 4 slots.
fn elems(services: u32, port: u16) -> Vec<Elem> {
    (0..services)
        .flat_map(|s| (0..4).map(move |slot| Elem::map(key(s, slot), real(s, slot, port))))
        .collect()
}

fn add(set: &str, elems: Vec<Elem>) -> Op {
    Op::NewSetElems {
        family: Family::Inet,
        table: "t".into(),
        set: set.into(),
        elems,
    }
}

fn del(set: &str, keys: Vec<Vec<u8>>) -> Op {
    Op::DelSetElems {
        family: Family::Inet,
        table: "t".into(),
        set: set.into(),
        keys,
    }
}

fn as_map(v: &[ElemView]) -> HashMap<Vec<u8>, Option<Data>> {
    v.iter().map(|e| (e.key.clone(), e.data.clone())).collect()
}

#[test]
fn forty_thousand_elements_in_one_transaction_read_back_as_nft_lists_them() {
    let ns = Ns::new();
    ns.nft(MAP);
    let mut nf = ns.open();
    let want = elems(10_000, 8080);
    nf.transaction(&[add("m", want.clone())]).unwrap();
    let got = nf.set_elems(Family::Inet, "t", "m").unwrap();
    assert_eq!(got.len(), 40_000);
    let want: HashMap<_, _> = want.into_iter().map(|e| (e.key, e.data)).collect();
    assert_eq!(as_map(&got), want);
    // The layout is nft's: it lists what we wrote as it would have written it.
    let listed = ns.exec(&["nft", "list", "map", "inet", "t", "m"], None);
    assert!(
        listed.contains("10.0.39.15 . tcp . 80 . 3 : 192.168.156.63 . 8080"),
        "{}",
        &listed[..listed.len().min(2000)]
    );
}

#[test]
fn a_refused_op_leaves_nothing_of_the_transaction_and_is_named() {
    let ns = Ns::new();
    ns.nft(&format!("{MAP}add set inet t s {{ type ipv4_addr; }}\n"));
    let mut nf = ns.open();
    let ops = [
        add("m", elems(2, 80)),
        add("s", vec![Elem::key(vec![10, 0, 0, 1])]),
        add("missing", vec![Elem::key(vec![10, 0, 0, 2])]),
        add("s", vec![Elem::key(vec![10, 0, 0, 3])]),
    ];
    let e = nf.transaction(&ops).unwrap_err();
    assert_eq!(e.op(), Some(2), "{e}");
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
    assert!(matches!(&e, TxError::Refused(r) if r.len() == 1), "{e:?}");
    assert!(nf.set_elems(Family::Inet, "t", "m").unwrap().is_empty());
    assert!(nf.set_elems(Family::Inet, "t", "s").unwrap().is_empty());
    // A refusal in one of a large op's later messages names the op and its elements.
    let mut big = elems(3_000, 80);
    big[11_000].data = Some(Data::Value(vec![1, 2, 3])); // the map's data is 8 bytes
    let e = nf
        .transaction(&[add("s", vec![Elem::key(vec![1, 1, 1, 1])]), add("m", big)])
        .unwrap_err();
    let TxError::Refused(r) = &e else { panic!("{e:?}") };
    assert_eq!(r[0].op, Some(1), "{e}");
    assert!(r[0].elems.contains(&11_000) && r[0].elems.start > 0, "{e}");
    assert!(nf.set_elems(Family::Inet, "t", "s").unwrap().is_empty());
    // The socket is in step: the next transaction is taken.
    nf.transaction(&[add("s", vec![Elem::key(vec![10, 0, 0, 1])])]).unwrap();
    assert_eq!(nf.set_elems(Family::Inet, "t", "s").unwrap().len(), 1);
}

#[test]
fn flush_replace_and_a_missing_element_refused() {
    let ns = Ns::new();
    ns.nft(MAP);
    let mut nf = ns.open();
    nf.transaction(&[add("m", elems(100, 80))]).unwrap();
    // Another server in one slot: delete and add of the key, one transaction.
    let (k, d) = (key(7, 2), real(99, 0, 81));
    nf.transaction(&[
        del("m", vec![k.clone()]),
        add("m", vec![Elem::map(k.clone(), d.clone())]),
    ])
    .unwrap();
    let m = as_map(&nf.set_elems(Family::Inet, "t", "m").unwrap());
    assert_eq!(m.len(), 400);
    assert_eq!(m[&k], Some(Data::Value(d)));
    // Adding it with other data without the delete is refused.
    let e = nf
        .transaction(&[add("m", vec![Elem::map(k.clone(), real(1, 1, 1))])])
        .unwrap_err();
    assert_eq!(e.op(), Some(0), "{e}");
    // A key that is not there cannot be deleted.
    let e = nf.transaction(&[del("m", vec![key(5000, 0)])]).unwrap_err();
    assert_eq!((e.op(), e.errno()), (Some(0), Some(libc::ENOENT)), "{e}");
    let flush = Op::FlushSet {
        family: Family::Inet,
        table: "t".into(),
        set: "m".into(),
    };
    nf.transaction(&[flush]).unwrap();
    assert!(nf.set_elems(Family::Inet, "t", "m").unwrap().is_empty());
    nf.transaction(&[]).unwrap();
}

#[test]
fn timeouts_and_comments_of_elements() {
    let ns = Ns::new();
    ns.nft("add table inet t\nadd set inet t p { type inet_service; flags timeout; }\n");
    let mut nf = ns.open();
    let e = Elem {
        key: Concat::one(Concat::new().port(443), 2),
        timeout: Some(Duration::from_secs(60)),
        comment: Some("https".into()),
        data: None,
    };
    nf.transaction(&[add("p", vec![e])]).unwrap();
    let listed = ns.exec(&["nft", "list", "set", "inet", "t", "p"], None);
    assert!(listed.contains("443 timeout 1m expires"), "{listed}");
    assert!(listed.contains("comment \"https\""), "{listed}");
    ns.nft("add element inet t p { 80 timeout 30s comment \"http\" }");
    let got = nf.set_elems(Family::Inet, "t", "p").unwrap();
    let http = got.iter().find(|e| e.key == [0, 80]).expect("80 read back");
    assert_eq!(http.timeout, Some(Duration::from_secs(30)));
    assert!(http.expiration.is_some_and(|x| x <= Duration::from_secs(30)));
    assert_eq!(http.comment.as_deref(), Some("http"));
}

#[test]
fn rule_comments_and_chains_read_back_as_nft_wrote_them() {
    let ns = Ns::new();
    ns.nft(
        "add table inet t\n\
         add chain inet t a\n\
         add rule inet t a meta mark 0x1 comment \"lvs-service rr 0 0 0\"\n\
         add rule inet t a meta mark 0x2\n\
         add chain inet t b\n\
         add rule inet t b meta mark 0x1 comment \"x\"\n\
         add rule inet t b meta mark 0x1 comment \"with 'quotes' and spaces\"\n\
         add table inet other\n\
         add chain inet other a\n\
         add rule inet other a meta mark 0x1 comment \"not ours\"\n",
    );
    let mut nf = ns.open();
    let all = nf.rules(Family::Inet, "t", None).unwrap();
    let comments: Vec<_> = all.iter().map(|r| (r.chain.as_str(), r.comment.as_deref())).collect();
    assert_eq!(
        comments,
        [
            ("a", Some("lvs-service rr 0 0 0")),
            ("a", None),
            ("b", Some("x")),
            ("b", Some("with 'quotes' and spaces")),
        ]
    );
    assert!(all.iter().all(|r| r.table == "t" && r.handle > 0));
    let b = nf.rules(Family::Inet, "t", Some("b")).unwrap();
    assert_eq!(b.len(), 2);
    // The handles are nft's.
    let listed = ns.exec(&["nft", "-a", "list", "chain", "inet", "t", "b"], None);
    assert!(
        listed.contains(&format!("comment \"x\" # handle {}", b[0].handle)),
        "{listed}"
    );
    let mut chains = nf.chains(Family::Inet, "t").unwrap();
    chains.sort();
    assert_eq!(chains, ["a", "b"]);
    // A dump of a table that is not there is empty, not refused.
    assert!(nf.rules(Family::Inet, "nothere", None).unwrap().is_empty());
}

#[test]
fn an_elements_counter_counts_the_traffic_through_it() {
    let ns = Ns::new();
    ns.nft(
        "add table inet t\n\
         add set inet t cnt { type ipv4_addr; counter; }\n\
         add chain inet t out { type filter hook output priority 0; policy accept; }\n\
         add rule inet t out ip daddr @cnt\n",
    );
    let mut nf = ns.open();
    nf.transaction(&[add(
        "cnt",
        vec![Elem::key(vec![127, 0, 0, 2]), Elem::key(vec![127, 0, 0, 3])],
    )])
    .unwrap();
    ns.exec(&["ping", "-c", "3", "-i", "0.01", "-W", "1", "127.0.0.2"], None);
    let got = nf.set_elems(Family::Inet, "t", "cnt").unwrap();
    let c = |a: [u8; 4]| got.iter().find(|e| e.key == a).and_then(|e| e.counter);
    // Echo requests out, and the replies (also sent through output, on lo).
    let two = c([127, 0, 0, 2]).expect("a counter");
    assert!(two.packets >= 3 && two.bytes >= 3 * 84, "{two:?}");
    assert_eq!(c([127, 0, 0, 3]).map(|c| c.packets), Some(0));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// The figures, against nft doing the same in the same run: a table of 10,000 chains
/// with a record rule each (nft's cache is the ruleset) and a map of 10,000 × 4.
#[test]
#[ignore]
fn measure() {
    let ns = Ns::new();
    let mut base = format!("{MAP}add map inet t n {{ typeof ip daddr . meta l4proto . th dport . numgen inc mod 2 : ip daddr . tcp dport; }}\n");
    for s in 0..10_000 {
        base.push_str(&format!(
            "add chain inet t s{s}\nadd rule inet t s{s} meta mark 0x1 comment \"lvs-service {s} rr 0 0 0\"\n"
        ));
    }
    let t_base = timed(|| ns.nft(&base));
    println!("setup: nft -f of 10,000 chains with a rule each: {}", ms(t_base));
    let mut nf = ns.open();

    let e = elems(10_000, 8080);
    let t_tx = timed(|| nf.transaction(&[add("m", e.clone())]).unwrap());
    let mut text = String::from("add element inet t n {");
    for s in 0..10_000u32 {
        for slot in 0..4 {
            let r = Ipv4Addr::from(0xc0a8_0000 + s * 4 + slot);
            text.push_str(&format!(" {} . tcp . 80 . {slot} : {r} . 8080,", vip(s)));
        }
    }
    text.push_str(" }\n");
    let t_nft = timed(|| ns.nft(&text));
    println!(
        "40,000 elements, one transaction: netlink {}, nft -f {}",
        ms(t_tx),
        ms(t_nft)
    );

    let mut lat = Vec::new();
    for i in 0..1000u32 {
        let k = key(i * 7 % 10_000, i % 4);
        let d = real(i, 0, 1000 + (i % 2) as u16);
        let ops = [del("m", vec![k.clone()]), add("m", vec![Elem::map(k, d)])];
        lat.push(timed(|| nf.transaction(&ops).unwrap()));
    }
    let mut nft_lat = Vec::new();
    for i in 0..20u32 {
        let s = i * 7 % 10_000;
        let r = Ipv4Addr::from(0xc0a8_0000 + i);
        let text = format!(
            "delete element inet t n {{ {} . tcp . 80 . 1 }}\nadd element inet t n {{ {} . tcp . 80 . 1 : {r} . {} }}\n",
            vip(s),
            vip(s),
            1000 + i % 2
        );
        nft_lat.push(timed(|| ns.nft(&text)));
    }
    let mut sorted = lat.clone();
    sorted.sort();
    println!(
        "replace one element (delete + add, one transaction): netlink median {} (p99 {}, of 1000), nft -f median {} (of 20)",
        ms(median(lat)),
        ms(sorted[989]),
        ms(median(nft_lat))
    );

    let mut n = 0;
    let t_dump = timed(|| n = nf.set_elems(Family::Inet, "t", "m").unwrap().len());
    assert_eq!(n, 40_000);
    let t_nft_dump = timed(|| {
        ns.exec(&["nft", "-j", "list", "map", "inet", "t", "n"], None);
    });
    println!(
        "dump 40,000 elements: netlink {}, nft -j list map {}",
        ms(t_dump),
        ms(t_nft_dump)
    );

    let mut rules = Vec::new();
    let t_rules = timed(|| rules = nf.rules(Family::Inet, "t", None).unwrap());
    assert_eq!(rules.iter().filter(|r| r.comment.is_some()).count(), 10_000);
    let t_chains = timed(|| n = nf.chains(Family::Inet, "t").unwrap().len());
    assert_eq!(n, 10_000);
    let t_nft_rules = timed(|| {
        ns.exec(&["nft", "-j", "list", "table", "inet", "t"], None);
    });
    println!(
        "10,000 rules' comments: netlink {} (chains' names {}), nft -j list table {} (with the 80,000 elements)",
        ms(t_rules),
        ms(t_chains),
        ms(t_nft_rules)
    );
}
