//! net::route against the kernel, in namespaces made by tests/common: routes replaced
//! and read back, rules changed in one call (the kernel's ENOENT and EEXIST taken in
//! stride, its other refusals named), neighbours resolved by NTF_USE, and ping's
//! traffic moving to the other LAN when a rule is added. The library runs on a thread
//! that has entered the node's namespace; `ip` and `nft` check what it did.

mod common;
use common::*;
use hakit::net::route::{HostRoute, Refused, Routes, Rule};
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

/// An interface's index in the calling thread's namespace.
fn idx(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What `ip -n NS ARGS` prints.
fn show(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip").arg("-n").arg(ns).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines of `text` that start with `start`.
fn lines<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(start)).collect()
}

fn errno(e: &std::io::Error) -> Option<i32> {
    Refused::of(e).and_then(Refused::errno)
}

/// Drop CAP_NET_ADMIN from the calling thread's effective set (capabilities are per
/// thread), so that the kernel refuses changes with EPERM.
fn drop_net_admin_on_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: the header and two data structs are what capget/capset take for v3.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
        d[0].effective &= !(1 << 12); // CAP_NET_ADMIN
        assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
    }
}

#[test]
fn routes_are_replaced_in_place_listed_and_removed() {
    let net = Net::new(2, 2);
    let ns = net.ns(1).to_string();
    net.ip(&ns, &["addr", "add", "10.77.100.1/32", "dev", "lo"]);
    // Someone else's route in the same table: not ours to list or remove.
    net.ip(
        &ns,
        &[
            "route",
            "add",
            "10.77.100.9/32",
            "via",
            "10.77.1.2",
            "dev",
            "eth0",
            "table",
            "101",
        ],
    );
    let (eth1, listed) = in_netns(&ns, || {
        let (eth0, eth1) = (idx("eth0"), idx("eth1"));
        let mut r = Routes::open().unwrap();
        let routes = [
            HostRoute {
                dst: ip("10.77.100.2"),
                prefix: 32,
                via: ip("10.77.1.2"),
                ifindex: eth0,
                src: Some(ip("10.77.100.1")),
                table: 101,
            },
            HostRoute {
                dst: ip("10.77.100.3"),
                prefix: 32,
                via: ip("10.77.2.3"),
                ifindex: eth1,
                src: None,
                table: 1000,
            },
            HostRoute {
                dst: ip("2001:db8:100::2"),
                prefix: 128,
                via: ip("fe80::2"),
                ifindex: eth0,
                src: None,
                table: 101,
            },
        ];
        r.replace(&routes).unwrap();
        r.replace(&routes).unwrap();
        let listed = (r.table(101).unwrap(), r.table(1000).unwrap(), routes);
        (eth1, listed)
    });
    let (t101, t1000, routes) = listed;
    let v4 = show(&ns, &["route", "show", "table", "101"]);
    let a = lines(&v4, "10.77.100.2 ");
    assert_eq!(a.len(), 1, "replaced twice, there once:\n{v4}");
    for w in ["via 10.77.1.2", "dev eth0", "proto 104", "src 10.77.100.1"] {
        assert!(a[0].contains(w), "{w}: {v4}");
    }
    let v6 = show(&ns, &["-6", "route", "show", "table", "101"]);
    assert_eq!(
        lines(&v6, "2001:db8:100::2 via fe80::2 dev eth0 proto 104").len(),
        1,
        "{v6}"
    );
    let big = show(&ns, &["route", "show", "table", "1000"]);
    assert_eq!(
        lines(&big, "10.77.100.3 via 10.77.2.3 dev eth1 proto 104").len(),
        1,
        "{big}"
    );
    // Ours, both families, and not the other route in table 101.
    assert_eq!(t101.len(), 2, "{t101:?}");
    assert!(t101.contains(&routes[0]) && t101.contains(&routes[2]), "{t101:?}");
    assert_eq!(t1000, vec![routes[1].clone()]);

    // The switch by route: the same destination through the other LAN replaces it.
    let moved = HostRoute {
        via: ip("10.77.2.2"),
        ifindex: eth1,
        ..routes[0].clone()
    };
    let (m, errors) = {
        let moved = moved.clone();
        in_netns(&ns, move || {
            let mut r = Routes::open().unwrap();
            r.replace(std::slice::from_ref(&moved)).unwrap();
            let m = r.table(101).unwrap();
            // The kernel's refusals, named: a gateway not on the LAN, an interface that
            // is not there; the good route between them is done all the same.
            let off_lan = HostRoute {
                dst: ip("10.77.100.5"),
                via: ip("10.77.9.9"),
                ..moved.clone()
            };
            let good = HostRoute {
                dst: ip("10.77.100.6"),
                ..moved.clone()
            };
            let no_dev = HostRoute {
                dst: ip("10.77.100.7"),
                ifindex: 999,
                ..moved.clone()
            };
            let e = r.replace(&[off_lan, good, no_dev]).unwrap_err();
            (m, e)
        })
    };
    let v4 = show(&ns, &["route", "show", "table", "101"]);
    let a = lines(&v4, "10.77.100.2 ");
    assert_eq!(a.len(), 1, "{v4}");
    assert!(a[0].contains("via 10.77.2.2 dev eth1"), "{v4}");
    assert!(m.contains(&moved) && !m.contains(&routes[0]), "{m:?}");
    let text = errors.to_string();
    let refused = Refused::of(&errors).expect("a refusal");
    assert_eq!(refused.0.len(), 2, "{text}");
    assert!(text.contains("route 10.77.100.5/32 via 10.77.9.9"), "{text}");
    assert_eq!(refused.0[0].1.raw_os_error(), Some(libc::ENETUNREACH), "{text}");
    assert!(
        text.contains("route 10.77.100.7/32 via 10.77.2.2 ifindex 999"),
        "{text}"
    );
    // (IPv4 looks the gateway up through the missing device first: ENETUNREACH.)
    let no_dev = refused.0[1].1.raw_os_error();
    assert!(matches!(no_dev, Some(libc::ENODEV | libc::ENETUNREACH)), "{text}");
    assert_eq!(lines(&v4, "10.77.100.6 ").len(), 1, "{v4}");

    // Removed, by destination and table whatever the gateway; twice is no error.
    let gone = in_netns(&ns, move || {
        let mut r = Routes::open().unwrap();
        let all = [
            routes[0].clone(),
            routes[1].clone(),
            routes[2].clone(),
            HostRoute {
                dst: ip("10.77.100.6"),
                ..routes[0].clone()
            },
        ];
        r.remove(&all).unwrap();
        r.remove(&all).unwrap();
        (r.table(101).unwrap(), r.table(1000).unwrap())
    });
    assert_eq!(gone, (vec![], vec![]));
    let v4 = show(&ns, &["route", "show", "table", "101"]);
    assert_eq!(v4.lines().count(), 1, "only the other route is left:\n{v4}");
    assert!(v4.starts_with("10.77.100.9 "), "{v4}");
    assert!(show(&ns, &["-6", "route", "show", "table", "101"]).trim().is_empty());
}

#[test]
fn rules_change_in_one_call_are_found_and_refusals_are_named() {
    let net = Net::new(1, 2);
    let ns = net.ns(1).to_string();
    // Someone else's rule among ours.
    net.ip(
        &ns,
        &[
            "rule",
            "add",
            "priority",
            "1003",
            "to",
            "10.77.100.0/24",
            "lookup",
            "103",
        ],
    );
    let r1 = Rule {
        priority: 1000,
        dst: ip("10.77.100.0"),
        dst_len: 24,
        table: 101,
    };
    let r2 = Rule {
        priority: 1001,
        table: 1000,
        ..r1.clone()
    };
    let r3 = Rule {
        priority: 1002,
        dst: ip("2001:db8:100::"),
        dst_len: 64,
        table: 102,
    };
    let all = [r1.clone(), r2.clone(), r3.clone()];
    let found = {
        let all = all.clone();
        in_netns(&ns, move || {
            let mut r = Routes::open().unwrap();
            r.change_rules(&[], &all).unwrap();
            // Adding what is there (EEXIST) is no error, and adds no second copy.
            r.change_rules(&[], &all).unwrap();
            (r.rules(1000..=1099).unwrap(), r.rules(1001..=1001).unwrap())
        })
    };
    let v4 = show(&ns, &["rule", "show"]);
    let a = lines(&v4, "1000:");
    assert_eq!(a.len(), 1, "{v4}");
    assert!(a[0].contains("to 10.77.100.0/24 lookup 101 proto 104"), "{v4}");
    let b = lines(&v4, "1001:");
    assert_eq!(b.len(), 1, "{v4}");
    assert!(b[0].contains("to 10.77.100.0/24 lookup 1000 proto 104"), "{v4}");
    let v6 = show(&ns, &["-6", "rule", "show"]);
    let c = lines(&v6, "1002:");
    assert_eq!(c.len(), 1, "{v6}");
    assert!(c[0].contains("to 2001:db8:100::/64 lookup 102 proto 104"), "{v6}");
    let (mut mine, one) = found;
    mine.sort_by_key(|r| r.priority);
    assert_eq!(mine, all.to_vec(), "ours, both families, not priority 1003's");
    assert_eq!(one, vec![r2.clone()]);

    let (after_readd, after_delete, after_switch) = {
        let (all, r1) = (all.clone(), r1.clone());
        in_netns(&ns, move || {
            let mut r = Routes::open().unwrap();
            // Delete then add, in one datagram: the same rule in both is there after.
            r.change_rules(std::slice::from_ref(&r1), std::slice::from_ref(&r1))
                .unwrap();
            let readd = r.rules(1000..=1000).unwrap();
            r.change_rules(&all, &[]).unwrap();
            // Deleting what is not there (ENOENT) is no error.
            r.change_rules(&all, &[]).unwrap();
            let deleted = r.rules(0..=u32::MAX).unwrap();
            // A first request refused (the tolerated ENOENT) and the add after it done.
            r.change_rules(&all[1..2], std::slice::from_ref(&r1)).unwrap();
            (readd, deleted, r.rules(0..=u32::MAX).unwrap())
        })
    };
    assert_eq!(after_readd, vec![r1.clone()]);
    assert_eq!(after_delete, vec![]);
    assert_eq!(after_switch, vec![r1.clone()]);
    let v4 = show(&ns, &["rule", "show"]);
    assert_eq!(lines(&v4, "1000:").len(), 1, "{v4}");
    assert!(lines(&v4, "1001:").is_empty(), "{v4}");
    assert_eq!(lines(&v4, "1003:").len(), 1, "someone else's rule stays:\n{v4}");
    assert!(lines(&show(&ns, &["-6", "rule", "show"]), "1002:").is_empty());

    // Any other refusal is named, with its errno; reading needs no privilege.
    let left = vec![r1.clone()];
    let (e, still) = in_netns(&ns, move || {
        drop_net_admin_on_this_thread();
        let mut r = Routes::open().unwrap();
        let e = r.change_rules(std::slice::from_ref(&r2), std::slice::from_ref(&r1));
        (e, r.rules(0..=u32::MAX))
    });
    let e = e.unwrap_err();
    let text = e.to_string();
    assert_eq!(errno(&e), Some(libc::EPERM), "{text}");
    assert!(
        text.contains("deleting rule priority 1001 to 10.77.100.0/24 lookup 1000: Operation not permitted"),
        "{text}"
    );
    assert!(
        text.contains("adding rule priority 1000 to 10.77.100.0/24 lookup 101: Operation not permitted"),
        "{text}"
    );
    assert_eq!(still.unwrap(), left, "nothing changed");
}

#[test]
fn touching_neighbours_resolves_them_and_leaves_static_entries() {
    let net = Net::new(2, 2);
    let ns = net.ns(1).to_string();
    let peer_mac = show(net.ns(2), &["-br", "link", "show", "eth1"])
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    net.ip(
        &ns,
        &[
            "neigh",
            "add",
            "10.77.1.77",
            "lladdr",
            "02:00:00:00:00:77",
            "nud",
            "permanent",
            "dev",
            "eth0",
        ],
    );
    assert!(show(&ns, &["neigh", "show", "dev", "eth1"]).trim().is_empty());
    let (eth0, left, again, bad) = in_netns(&ns, || {
        let (eth0, eth1) = (idx("eth0"), idx("eth1"));
        let mut r = Routes::open().unwrap();
        let left = r.touch_neighbours(&[(eth1, ip("10.77.2.2")), (eth0, ip("10.77.1.77"))]);
        // An entry that is there now is touched again without complaint.
        let again = r.touch_neighbours(&[(eth1, ip("10.77.2.2"))]);
        let bad = r.touch_neighbours(&[(999, ip("10.77.2.2"))]);
        (eth0, left, again, bad)
    });
    assert_eq!(
        left.unwrap(),
        vec![(eth0, ip("10.77.1.77"))],
        "the static entry is left alone"
    );
    assert_eq!(again.unwrap(), vec![]);
    let mut last = String::new();
    let resolved = wait_for(
        || {
            last = show(&ns, &["neigh", "show", "10.77.2.2", "dev", "eth1"]);
            last.contains(&format!("lladdr {peer_mac}")) && last.contains("REACHABLE")
        },
        Duration::from_secs(3),
    );
    assert!(resolved, "no traffic sent, yet resolved: {last:?}");
    let st = show(&ns, &["neigh", "show", "10.77.1.77", "dev", "eth0"]);
    assert!(st.contains("lladdr 02:00:00:00:00:77 PERMANENT"), "{st}");
    let bad = bad.unwrap_err();
    let text = bad.to_string();
    assert!(text.contains("neighbour 10.77.2.2 ifindex 999"), "{text}");
    assert_eq!(errno(&bad), Some(libc::ENODEV), "{text}");
}

/// Packets a node's nftables counter `name` has counted.
fn counted(ns: &str, name: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "counter", "inet", "hkt", name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in {ns}: {text}"))
}

fn ping_from(ns: &str, src: &str, dst: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "2", "-I", src, dst])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn traffic_moves_to_the_other_lan_when_the_rule_is_added() {
    let net = Net::new(2, 2);
    for i in 1..=2usize {
        let ns = net.ns(i).to_string();
        net.ip(&ns, &["addr", "add", &format!("10.77.100.{i}/32"), "dev", "lo"]);
        // Loose: a reply may come back over the LAN that the request did not leave by.
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.rp_filter=2",
        ]);
        let peer = 3 - i;
        in_netns(&ns, move || {
            let me = ip(&format!("10.77.100.{i}"));
            let mut r = Routes::open().unwrap();
            let to_peer = |lan: u8, dev: &str, table: u32| HostRoute {
                dst: ip(&format!("10.77.100.{peer}")),
                prefix: 32,
                via: ip(&format!("10.77.{lan}.{peer}")),
                ifindex: idx(dev),
                src: Some(me),
                table,
            };
            r.replace(&[to_peer(1, "eth0", 101), to_peer(2, "eth1", 102)]).unwrap();
            r.change_rules(
                &[],
                &[Rule {
                    priority: 1000,
                    dst: ip("10.77.100.0"),
                    dst_len: 24,
                    table: 101,
                }],
            )
            .unwrap();
        });
    }
    let ns = net.ns(1).to_string();
    net.nft(
        &ns,
        "table inet hkt {
            counter e0 { }
            counter e1 { }
            chain out {
                type filter hook output priority 0; policy accept;
                oifname \"eth0\" ip daddr 10.77.100.2 icmp type echo-request counter name \"e0\"
                oifname \"eth1\" ip daddr 10.77.100.2 icmp type echo-request counter name \"e1\"
            }
        }",
    );
    assert!(ping_from(&ns, "10.77.100.1", "10.77.100.2"), "over eth0 by table 101");
    assert_eq!((counted(&ns, "e0"), counted(&ns, "e1")), (1, 0));

    let switch = Rule {
        priority: 900,
        dst: ip("10.77.100.0"),
        dst_len: 24,
        table: 102,
    };
    let s = switch.clone();
    in_netns(&ns, move || {
        let mut r = Routes::open().unwrap();
        // The other LAN's gateway resolved ahead of the switch.
        r.touch_neighbours(&[(idx("eth1"), ip("10.77.2.2"))]).unwrap();
        r.change_rules(&[], &[s]).unwrap();
    });
    let neigh = show(&ns, &["neigh", "show", "10.77.2.2", "dev", "eth1"]);
    assert!(neigh.contains("lladdr"), "resolved before the first packet: {neigh}");
    assert!(ping_from(&ns, "10.77.100.1", "10.77.100.2"), "over eth1 by table 102");
    assert_eq!((counted(&ns, "e0"), counted(&ns, "e1")), (1, 1));

    in_netns(&ns, move || {
        Routes::open().unwrap().change_rules(&[switch], &[]).unwrap()
    });
    assert!(ping_from(&ns, "10.77.100.1", "10.77.100.2"), "back over eth0");
    assert_eq!((counted(&ns, "e0"), counted(&ns, "e1")), (2, 1));
}
