//! lvs-ctl beside Debian's ipvsadm on a real IPVS kernel (inside the VM, booted once for
//! this file): every table built by either lists the same with both, for `-L -n` with
//! each of its options and `-S -n`; `-R` of a bad file changes nothing where ipvsadm
//! stops half way; and real traffic goes through IPVS NAT and DR services made by
//! lvs-ctl, with rr, wrr, sh and fo, to real servers in namespaces.

mod common;
use common::lvs::{Lab, VIP};
use common::{bin, vm};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn ipvsadm_compat_vm() {
    let inner = vm::run_ignored_inside("vm_");
    assert!(inner.passed >= 4, "every vm_ test ran inside");
}

fn run(program: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ipvsadm(args: &[&str]) -> String {
    let (code, out, err) = run("ipvsadm", args, "");
    assert_eq!(code, 0, "ipvsadm {args:?}: {err}");
    out
}

fn lvs(args: &[&str], stdin: &str) -> String {
    let mut a = vec!["--backend", "ipvs"];
    a.extend_from_slice(args);
    let (code, out, err) = run(bin("lvs-ctl").to_str().unwrap(), &a, stdin);
    assert_eq!(code, 0, "lvs-ctl {args:?}: {err}");
    out
}

/// Every listing ipvsadm has for a whole table, and `-L` of one service.
const LISTINGS: &[&[&str]] = &[
    &["-L", "-n"],
    &["-l", "-n"],
    &["-L", "-n", "--stats"],
    &["-L", "-n", "--rate"],
    &["-L", "-n", "--thresholds"],
    &["-L", "-n", "--persistent-conn"],
    &["-L", "-n", "--stats", "--exact"],
    &["-L", "-n", "--rate", "--exact"],
    &["-L", "-n", "-t", "10.1.0.1:80"],
    &["-L", "-n", "--timeout"],
    &["-L", "-n", "-c"],
    &["-L", "--daemon"],
    &["-S", "-n"],
];

fn same_listings(what: &str) {
    for l in LISTINGS {
        assert_eq!(lvs(l, ""), ipvsadm(l), "{what}: {l:?}");
    }
}

/// A table of every kind of service ipvsadm can make and lvs-ctl keeps.
const RULES: &[&str] = &[
    "-A -t 10.1.0.1:80 -s rr",
    "-a -t 10.1.0.1:80 -r 10.2.0.1:8080 -m -w 3 -x 100 -y 10",
    "-a -t 10.1.0.1:80 -r 10.2.0.2:80 -g -w 0",
    "-a -t 10.1.0.1:80 -r 10.2.0.3:80 -i -w 65535",
    "-A -t 10.1.0.1:443 -s wlc -p 600 -M 255.255.255.0",
    "-a -t 10.1.0.1:443 -r 10.2.0.1:443 -m",
    "-A -u 10.1.0.1:53 -s sh -b sh-fallback,sh-port -o",
    "-a -u 10.1.0.1:53 -r 10.2.0.9:5353 -m -w 2",
    "-A --sctp-service 10.1.0.1:3868 -s wrr",
    "-A -f 7 -s mh -b mh-port -p",
    "-a -f 7 -r 10.2.0.5:0 -g",
    "-A -f 8 -6 -s fo -p 60 -M 64",
    "-a -f 8 -6 -r [2001:db8::5]:0 -g -w 4",
    "-A -t [2001:db8::1]:80 -s lc",
    "-a -t [2001:db8::1]:80 -r [2001:db8::2]:8080 -m",
    "-A -t 10.1.0.2:0 -s dh -p 30",
];

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvsadm_compat_vm"]
fn vm_tables_built_by_ipvsadm_list_the_same_with_lvs_ctl() {
    vm::guard();
    ipvsadm(&["-C"]);
    for r in RULES {
        let args: Vec<&str> = r.split_whitespace().collect();
        ipvsadm(&args);
    }
    ipvsadm(&["--set", "900", "120", "300"]);
    same_listings("built by ipvsadm");
    ipvsadm(&["-C"]);
}

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvsadm_compat_vm"]
fn vm_tables_built_by_lvs_ctl_list_the_same_with_ipvsadm() {
    vm::guard();
    ipvsadm(&["-C"]);
    for r in RULES {
        let args: Vec<&str> = r.split_whitespace().collect();
        lvs(&args, "");
    }
    same_listings("built by lvs-ctl, one command at a time");
    let saved = ipvsadm(&["-S", "-n"]);
    lvs(&["-C"], "");
    assert_eq!(ipvsadm(&["-S", "-n"]), "");
    lvs(&["-R"], &saved);
    assert_eq!(ipvsadm(&["-S", "-n"]), saved, "lvs-ctl -R of ipvsadm -S");
    same_listings("restored by lvs-ctl");
    // And as `ipvsadm` itself, the way scripts and ldirectord call it.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let link = dir.path().join("ipvsadm");
    std::os::unix::fs::symlink(bin("lvs-ctl"), &link).unwrap();
    let (code, out, _) = run(link.to_str().unwrap(), &["-L", "-n"], "");
    assert_eq!(code, 0);
    assert_eq!(out, ipvsadm(&["-L", "-n"]));
    ipvsadm(&["-C"]);
}

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvsadm_compat_vm"]
fn vm_restore_is_all_or_nothing_where_ipvsadm_stops_half_way() {
    vm::guard();
    ipvsadm(&["-C"]);
    let bad = "-A -t 10.1.0.1:80 -s rr\n-a -t 10.1.0.1:80 -r 10.2.0.1:80 -m\n-a -t 10.1.0.9:80 -r 10.2.0.2:80 -m\n";
    let (code, _, err) = run(bin("lvs-ctl").to_str().unwrap(), &["--backend", "ipvs", "-R"], bad);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stdin:3: Service not defined"), "{err}");
    assert_eq!(ipvsadm(&["-S", "-n"]), "", "nothing changed");
    // ipvsadm applies the first two lines and reports the third.
    let (_, _, err) = run("ipvsadm", &["-R"], bad);
    assert!(err.contains("Service not defined"), "{err}");
    assert_eq!(ipvsadm(&["-S", "-n"]).lines().count(), 2, "ipvsadm stopped half way");
    ipvsadm(&["-C"]);
}

/// `n` requests to the virtual address: how many each real server answered.
fn spread(lab: &Lab, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for _ in 0..n {
        *m.entry(lab.fetch().unwrap_or_else(|| "none".into())).or_insert(0) += 1;
    }
    m
}

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvsadm_compat_vm"]
fn vm_traffic_through_ipvs_nat_with_each_scheduler() {
    vm::guard();
    let lab = Lab::nat(3);
    let svc = format!("{VIP}:80");
    let l = |args: &[&str]| {
        let mut a = vec!["--backend", "ipvs"];
        a.extend_from_slice(args);
        let out = lab.lvs(&a);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    l(&["-A", "-t", &svc, "-s", "rr"]);
    for (i, w) in [(3, "1"), (4, "1"), (5, "2")] {
        l(&["-a", "-t", &svc, "-r", &format!("10.77.2.{i}:80"), "-m", "-w", w]);
    }
    let rr = spread(&lab, 9);
    assert_eq!(rr.values().copied().collect::<Vec<_>>(), [3, 3, 3], "rr: {rr:?}");
    l(&["-E", "-t", &svc, "-s", "wrr"]);
    let wrr = spread(&lab, 8);
    assert_eq!(
        (wrr.get("n3"), wrr.get("n5")),
        (Some(&2), Some(&4)),
        "wrr 1:1:2: {wrr:?}"
    );
    l(&["-E", "-t", &svc, "-s", "sh"]);
    let sh = spread(&lab, 6);
    assert_eq!(sh.len(), 1, "sh keeps one client on one server: {sh:?}");
    l(&["-E", "-t", &svc, "-s", "fo"]);
    let fo = spread(&lab, 4);
    assert_eq!(fo.get("n5"), Some(&4), "fo: the highest weight: {fo:?}");
    l(&["-e", "-t", &svc, "-r", "10.77.2.5:80", "-m", "-w", "0"]);
    let fo = spread(&lab, 4);
    assert!(
        !fo.contains_key("n5") && !fo.contains_key("none"),
        "weight 0 takes no new connections: {fo:?}"
    );
    l(&["-C"]);
}

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvsadm_compat_vm"]
fn vm_traffic_through_ipvs_direct_routing() {
    vm::guard();
    let lab = Lab::dr(2);
    let svc = format!("{VIP}:80");
    for args in [
        vec!["-A", "-t", svc.as_str(), "-s", "rr"],
        vec!["-a", "-t", svc.as_str(), "-r", "10.77.2.3", "-g"],
        vec!["-a", "-t", svc.as_str(), "-r", "10.77.2.4", "-g"],
    ] {
        let mut a = vec!["--backend", "ipvs"];
        a.extend_from_slice(&args);
        let out = lab.lvs(&a);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let m = spread(&lab, 4);
    assert_eq!(m.values().copied().collect::<Vec<_>>(), [2, 2], "rr over DR: {m:?}");
    lab.lvs(&["--backend", "ipvs", "-C"]);
}
