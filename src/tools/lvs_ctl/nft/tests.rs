use super::layout::{render, Hop, Network, Present};
use super::*;
use crate::tools::lvs_ctl::model::{Dest, Proto, Service, ServiceKey, F_PERSISTENT};
use std::net::IpAddr;

struct Fake;

impl Network for Fake {
    fn vip_device(&mut self, _vip: IpAddr) -> Result<String> {
        Ok("eth0".into())
    }
    fn next_hop(&mut self, _rip: IpAddr) -> Result<Hop> {
        Ok(Hop {
            dev: "eth0".into(),
            own_mac: "02:00:00:00:00:01".into(),
            mac: "02:00:00:00:00:02".into(),
        })
    }
}

fn key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Proto::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port,
    }
}

fn service(port: u16, sched: &str, fwd: Fwd, weights: &[u32]) -> Service {
    let mut s = Service::new(key(port));
    s.scheduler = sched.into();
    for (i, w) in weights.iter().enumerate() {
        let mut d = Dest::new(format!("10.0.1.{}", i + 2).parse().unwrap(), 8080);
        d.fwd = fwd;
        d.weight = *w;
        s.dests.push(d);
    }
    s
}

fn present() -> Present {
    Present {
        known: true,
        inet: true,
        netdev: true,
        dr_devices: ["eth0".to_string()].into(),
        ..Present::default()
    }
}

#[test]
fn a_weight_change_touches_only_that_service() {
    let cur = vec![
        service(80, "rr", Fwd::Masq, &[1, 1, 1]),
        service(81, "wrr", Fwd::Masq, &[1, 2]),
    ];
    let mut want = cur.clone();
    want[0].dests[1].weight = 0;
    let nat_only = Present {
        netdev: false,
        dr_devices: Default::default(),
        rules: ["m4_inc_3".to_string()].into(),
        uses: [("m4_inc_3".to_string(), 2)].into(),
        ..present()
    };
    let p = render(&cur, &want, want.len(), &nat_only, false, &mut Fake).unwrap();
    assert!(p.fast(), "elements only: {}", p.slow);
    assert!(
        p.prep.contains("numgen inc mod 2 map @slots4"),
        "the (inc, 2) rule first: {}",
        p.prep
    );
    assert!(!p.prep.contains("add table"), "the skeleton is there: {}", p.prep);
    let text = p.elems.text();
    assert!(
        text.lines().all(|l| l.contains("10.0.0.1 . tcp . 80 ")),
        "only that service: {text}"
    );
    assert!(
        text.contains("delete element inet hakit_lvs m4_inc_3 { 10.0.0.1 . tcp . 80 }"),
        "{text}"
    );
    assert!(
        text.contains("add element inet hakit_lvs m4_inc_2 { 10.0.0.1 . tcp . 80 }"),
        "{text}"
    );
    assert!(
        !text.contains(": 10.0.1.3 . 8080"),
        "the quiescent server has no slot: {text}"
    );
    assert!(
        text.contains("comment \"lvs-dest 10.0.1.3 8080 masq 0\""),
        "its record stays: {text}"
    );
    assert!(!text.contains("dcnt4"), "its counter stays: {text}");
    let deleted = text.lines().position(|l| l.starts_with("delete element")).unwrap();
    let added = text.lines().position(|l| l.starts_with("add element")).unwrap();
    assert!(
        deleted < added,
        "old slots go before the new come, in the same transaction"
    );
    assert!(p.unused.is_empty(), "81's wrr 1:2 still uses (inc, 3)");
    let mut alone = nat_only.clone();
    alone.uses.insert("m4_inc_3".into(), 1);
    let p1 = render(&cur[..1], &want[..1], 2, &alone, false, &mut Fake).unwrap();
    assert_eq!(p1.unused, vec!["m4_inc_3".to_string()], "80 was its only user");
    assert_eq!(p.rules_added, vec!["m4_inc_2".to_string()]);
    assert!(render(&cur, &cur, cur.len(), &nat_only, false, &mut Fake)
        .unwrap()
        .is_empty());
}

#[test]
fn slots_change_only_where_they_differ() {
    let cur = vec![service(80, "mh", Fwd::Masq, &[1, 1, 1, 1])];
    let mut want = cur.clone();
    want[0].dests[3].weight = 0;
    let mut pr = Present {
        netdev: false,
        dr_devices: Default::default(),
        ..present()
    };
    pr.rules.insert("m4_sh_1021".into());
    pr.uses.insert("m4_sh_1021".into(), 1);
    // Slots as read from the kernel: only those that differ change.
    pr.actual.insert(cur[0].key, layout::actual_of(&cur[0]));
    let p = render(&cur, &want, want.len(), &pr, false, &mut Fake).unwrap();
    assert!(p.prep.is_empty(), "mh keeps its L: {}", p.prep);
    let n = p.elems.len();
    assert!(n < 2 * 1021 / 3, "Maglev moves about a quarter: {n} changes");
    // Slots taken from the records: every one deleted and added, so that one missing
    // (drift) is refused by the kernel rather than left missing.
    pr.actual.get_mut(&cur[0].key).unwrap().known = false;
    let p = render(&cur, &want, want.len(), &pr, false, &mut Fake).unwrap();
    let dels = p.elems.dels.get("slots4").map_or(0, Vec::len);
    assert_eq!(dels, 1021, "{}", p.elems.len());
}
#[test]
fn dr_and_persistence_render() {
    let mut s = service(80, "sh", Fwd::Route, &[1, 1]);
    s.flags = F_PERSISTENT;
    s.timeout = 300;
    let b = render(&[], &[s.clone()], 1, &Present::default(), false, &mut Fake).unwrap();
    assert!(!b.fast());
    let text = b.text("");
    assert!(text.contains("add table netdev hakit_lvs"));
    assert!(text.contains("hook ingress device \"eth0\""));
    assert!(text.contains("fwd to \"eth0\""));
    assert!(text.contains("timeout 300s"));
    assert!(b.tables.netdev && b.tables.dr_devices.contains("eth0"));
    // Persistent NAT: a chain of its own, its records still elements.
    let mut pn = service(81, "rr", Fwd::Masq, &[1, 1]);
    pn.flags = F_PERSISTENT;
    pn.timeout = 60;
    let b = render(&[], &[pn], 1, &Present::default(), false, &mut Fake).unwrap();
    let text = b.text("");
    assert!(text.contains("add chain inet hakit_lvs s4t0a000001_0051"), "{text}");
    assert!(text.contains("add element inet hakit_lvs chains4"), "{text}");
    assert!(text.contains("lvs-service tcp 10.0.0.1 81 rr"), "{text}");
    assert!(!text.contains("m4_inc"), "no (kind, L) rule for it: {text}");
    let mut mixed = s;
    mixed.dests[0].fwd = Fwd::Masq;
    assert!(matches!(
        render(&[], &[mixed], 1, &Present::default(), false, &mut Fake),
        Err(Error::Usage(_))
    ));
}

#[test]
fn refusals_are_usage_errors() {
    let nft = match Nft::with_network(Box::new(Fake)) {
        Ok(n) => n,
        Err(_) => return, // no nft here: nothing to check against
    };
    let e = nft
        .check(&Change::AddService(service(80, "wlc", Fwd::Masq, &[])))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the nft backend cannot do wlc (least-connection needs per-connection state nftables does not keep); \
         use rr, wrr, sh, dh, mh or fo, or --backend ipvs"
    );
    let mut d = Dest::new("10.0.1.2".parse().unwrap(), 80);
    d.fwd = Fwd::Tunnel;
    assert!(matches!(
        nft.check(&Change::AddDest(key(80), d.clone())),
        Err(Error::Usage(_))
    ));
    d.fwd = Fwd::Masq;
    d.u_thresh = 10;
    assert!(matches!(nft.check(&Change::AddDest(key(80), d)), Err(Error::Usage(_))));
}

#[test]
fn flush_and_the_last_service_remove_the_tables() {
    let cur = vec![service(80, "rr", Fwd::Masq, &[1])];
    let b = render(&cur, &[], 0, &present(), false, &mut Fake).unwrap();
    assert!(b.slow.contains("delete table inet hakit_lvs"));
    assert!(b.slow.contains("delete table netdev hakit_lvs"));
    let b = render(&cur, &cur, cur.len(), &present(), true, &mut Fake).unwrap();
    assert!(!b.fast(), "a flush is one nft batch");
    let text = b.text("");
    assert!(text.starts_with("add table inet hakit_lvs\ndelete table inet hakit_lvs\n"));
    let made = text.find("add chain inet hakit_lvs pre").unwrap();
    let filled = text.find("add element inet hakit_lvs svcs4").unwrap();
    assert!(made < filled, "{text}");
}
