//! The IPVS VM harness itself (tests/common/vm.rs, contrib/ipvs-vm.sh): the host test
//! boots Debian's kernel once and runs the `vm_` tests below inside it, where ipvsadm
//! finds a real IPVS and network namespaces work.

mod common;
use common::{vm, Net};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn ipvs_vm() {
    let inner = vm::run_ignored_inside("vm_");
    assert_eq!(inner.passed, 3, "every vm_ test ran inside");
}

fn ipvsadm(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("ipvsadm")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ipvsadm");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ipvsadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvs_vm"]
fn vm_ipvsadm_table_and_save_restore() {
    vm::guard();
    ipvsadm(&["-C"], "");
    // The genl family IPVS autoloads ip_vs, `-s rr` ip_vs_rr: the modprobe of the chroot.
    ipvsadm(&["-A", "-t", "10.0.0.1:80", "-s", "rr"], "");
    ipvsadm(&["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:80", "-m"], "");
    assert_eq!(
        ipvsadm(&["-L", "-n"], ""),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  10.0.0.1:80 rr\n  \
         -> 10.0.0.2:80                  Masq    1      0          0         \n"
    );
    let saved = ipvsadm(&["-S", "-n"], "");
    assert_eq!(
        saved,
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n"
    );
    ipvsadm(&["-C"], "");
    assert_eq!(ipvsadm(&["-S", "-n"], ""), "");
    ipvsadm(&["-R"], &saved);
    assert_eq!(ipvsadm(&["-S", "-n"], ""), saved, "-S, -C, -R gives the table back");
    ipvsadm(&["-C"], "");
}

fn ip(args: &[&str]) {
    common::sh(&[&["ip"], args].concat());
}

/// Two namespaces joined by a veth, deleted on drop (also when the test fails).
struct Pair(&'static str, &'static str);

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [self.0, self.1] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvs_vm"]
fn vm_two_namespaces_ping_over_a_veth() {
    vm::guard();
    let pair = Pair("hkvma", "hkvmb");
    ip(&["netns", "add", pair.0]);
    ip(&["netns", "add", pair.1]);
    ip(&[
        "link", "add", "va", "netns", pair.0, "type", "veth", "peer", "name", "vb", "netns", pair.1,
    ]);
    ip(&["-n", pair.0, "addr", "add", "10.78.0.1/24", "dev", "va"]);
    ip(&["-n", pair.1, "addr", "add", "10.78.0.2/24", "dev", "vb"]);
    ip(&["-n", pair.0, "link", "set", "va", "up"]);
    ip(&["-n", pair.1, "link", "set", "vb", "up"]);
    let ping = Command::new("ip")
        .args(["netns", "exec", pair.0, "ping", "-c", "1", "-W", "5", "10.78.0.2"])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "ping across the veth: {}{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );
}

#[test]
#[ignore = "runs inside the IPVS VM, started by ipvs_vm"]
fn vm_the_namespace_harness_works_inside() {
    vm::guard();
    let net = Net::new(2, 1);
    assert!(
        common::wait_for(|| net.pings(1, "10.77.1.2"), Duration::from_secs(10)),
        "node 1 pings node 2 over the harness's bridge"
    );
}
