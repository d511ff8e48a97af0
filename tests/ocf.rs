//! The OCF resource agents of contrib/ocf (provider `hakit`), run as Pacemaker runs
//! them — environment variables OCF_RESKEY_*, exit codes of ocf-returncodes — inside
//! the test's namespaces: Debian's ocf-tester over each, then what it does not try
//! (a client that reaches the address, the table that really has the service, the
//! refusals with their reasons), and the meta-data against ra-api-1.dtd and
//! `crm_resource --show-metadata`.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const VIP: &str = "10.77.1.100";
const AGENTS: &[&str] = &["ipfake", "lvs-service", "mon-check"];

// ocf-returncodes
const OCF_SUCCESS: i32 = 0;
const OCF_ERR_GENERIC: i32 = 1;
const OCF_ERR_INSTALLED: i32 = 5;
const OCF_ERR_CONFIGURED: i32 = 6;
const OCF_NOT_RUNNING: i32 = 7;

fn agent(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ocf").join(name)
}

/// Where the built binaries are: every agent's `bindir`.
fn bindir() -> String {
    bin("ipfake").parent().unwrap().display().to_string()
}

fn need(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed (contrib/deps.sh installs it)");
}

/// One resource: its agent, instance name and parameters, run in a namespace with
/// the environment Pacemaker gives an agent. HA_RSCTMP is the test's own.
struct Resource {
    rsctmp: PathBuf,
    ns: String,
    agent: &'static str,
    name: &'static str,
    params: Vec<(String, String)>,
}

impl Resource {
    fn new(net: &Net, ns: &str, agent: &'static str, name: &'static str, params: &[(&str, &str)]) -> Resource {
        let rsctmp = net.path("rsctmp");
        std::fs::create_dir_all(&rsctmp).unwrap();
        Resource {
            rsctmp,
            ns: ns.to_string(),
            agent,
            name,
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns])
            .arg(program)
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("HA_RSCTMP", &self.rsctmp)
            .env("OCF_RESOURCE_INSTANCE", self.name)
            .env("OCF_RESKEY_CRM_meta_timeout", "20000")
            .stdin(Stdio::null());
        for (k, v) in &self.params {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        c
    }

    /// One action; its exit code and stderr.
    fn run(&self, action: &str) -> (i32, String) {
        let out = self.command(&agent(self.agent)).arg(action).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code().unwrap_or(-1), err)
    }

    /// An action that must end with `code`.
    fn expect(&self, action: &str, code: i32) -> String {
        let (rc, err) = self.run(action);
        assert_eq!(
            rc, code,
            "{} {action}: exit {rc}, not {code}; stderr:\n{err}",
            self.agent
        );
        err
    }

    /// The one `ocf-exit-reason:` line of an action that must end with `code`.
    fn refused(&self, action: &str, code: i32) -> String {
        let err = self.expect(action, code);
        let reasons: Vec<_> = err.lines().filter_map(|l| l.strip_prefix("ocf-exit-reason:")).collect();
        assert_eq!(reasons.len(), 1, "one reason, not:\n{err}");
        reasons[0].to_string()
    }

    /// Debian's ocf-tester over the agent with these parameters.
    fn ocf_tester(&self) {
        need("ocf-tester");
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "ocf-tester", "-n", self.name])
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("HA_RSCTMP", &self.rsctmp)
            .stdin(Stdio::null());
        for (k, v) in &self.params {
            c.arg("-o").arg(format!("{k}={v}"));
        }
        let out: Output = c.arg(agent(self.agent)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("passed all tests"),
            "ocf-tester {}:\n{text}",
            self.agent
        );
    }
}

fn ipfake_params(net: &Net, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        ("ip".to_string(), VIP.to_string()),
        ("nic".into(), "eth0".into()),
        ("bindir".into(), bindir()),
        ("pid_dir".into(), net.path("pids").display().to_string()),
    ];
    for (k, val) in extra {
        v.retain(|(key, _)| key != k);
        v.push((k.to_string(), val.to_string()));
    }
    v
}

fn ipfake_resource(net: &Net, extra: &[(&str, &str)]) -> Resource {
    let mut r = Resource::new(net, net.ns(1), "ipfake", "vip", &[]);
    r.params = ipfake_params(net, extra);
    r
}

fn has_vip(net: &Net, node: usize) -> bool {
    net.has_addr(node, &format!("{VIP}/24"))
}

/// The pid in ipfake's pid file for the address.
fn holder_pid(net: &Net) -> i32 {
    let text = std::fs::read_to_string(net.path("pids").join(format!("ipfake.{VIP}.pid"))).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn ipfake_passes_ocf_tester() {
    let net = Net::new(1, 1);
    ipfake_resource(&net, &[]).ocf_tester();
    assert!(!has_vip(&net, 1), "ocf-tester ends with a stop");
}

#[test]
fn ipfake_start_holds_the_address_a_client_reaches_and_stop_releases_it() {
    let net = Net::new(2, 1);
    let r = ipfake_resource(&net, &[("arp_count", "2"), ("arp_interval", "50")]);
    r.expect("monitor", OCF_NOT_RUNNING);
    r.expect("validate-all", OCF_SUCCESS);
    assert!(!has_vip(&net, 1), "validate-all (ipfake up --check) changes nothing");
    r.expect("start", OCF_SUCCESS);
    // start returns once the address is up and its holder recorded.
    assert!(has_vip(&net, 1));
    r.expect("monitor", OCF_SUCCESS);
    let st = net.run(
        net.ns(1),
        &bin("ipfake"),
        &["--pid-dir", &net.path("pids").display().to_string(), "status", VIP],
    );
    assert_eq!(
        st.status.code(),
        Some(0),
        "ipfake status: {}",
        String::from_utf8_lossy(&st.stdout)
    );
    assert!(net.pings(2, VIP), "the client reaches the address");
    assert_eq!(net.neigh(2, VIP), Some(net.mac(1)), "at the holder's MAC");
    // Idempotent start: the same holder goes on.
    let pid = holder_pid(&net);
    r.expect("start", OCF_SUCCESS);
    assert_eq!(holder_pid(&net), pid);
    r.expect("stop", OCF_SUCCESS);
    assert!(!has_vip(&net, 1), "stop removes the address");
    assert!(process_gone(pid), "stop ends the holder");
    r.expect("monitor", OCF_NOT_RUNNING);
    assert!(!net.pings(2, VIP), "nothing answers for the address after the stop");
    r.expect("stop", OCF_SUCCESS);
}

#[test]
fn ipfake_start_refuses_an_address_another_host_answers_for() {
    let net = Net::new(2, 1);
    net.ip(net.ns(2), &["addr", "add", &format!("{VIP}/24"), "dev", "eth0"]);
    let r = ipfake_resource(&net, &[]);
    let why = r.refused("start", OCF_ERR_GENERIC);
    assert!(
        why.contains("in use by") && why.contains(&net.mac(2)),
        "the reason names the other host's MAC: {why}"
    );
    assert!(!has_vip(&net, 1), "nothing was added");
    r.expect("monitor", OCF_NOT_RUNNING);
    // Without the probe guard the address is taken (the operator's choice).
    let r = ipfake_resource(&net, &[("probe", "false")]);
    r.expect("start", OCF_SUCCESS);
    assert!(has_vip(&net, 1));
    r.expect("stop", OCF_SUCCESS);
    assert!(!has_vip(&net, 1));
}

#[test]
fn ipfake_holds_an_ipv6_address_and_its_probe_is_duplicate_address_detection() {
    let net = Net::new(2, 1);
    for i in 1..=2 {
        net.ip(
            net.ns(i),
            &["addr", "add", &format!("fd00:77::{i}/64"), "dev", "eth0", "nodad"],
        );
    }
    let vip6 = "fd00:77::100";
    // The prefix from the connected route (fd00:77::/64).
    let r = ipfake_resource(&net, &[("ip", vip6)]);
    r.expect("start", OCF_SUCCESS);
    assert!(net.has_addr(1, &format!("{vip6}/64")));
    assert!(net.pings(2, vip6), "the client reaches the address");
    r.expect("monitor", OCF_SUCCESS);
    r.expect("stop", OCF_SUCCESS);
    assert!(!net.has_addr(1, &format!("{vip6}/64")));
    r.expect("monitor", OCF_NOT_RUNNING);
    // Another host holds it: its neighbour advertisement answers the probe.
    net.ip(
        net.ns(2),
        &["addr", "add", &format!("{vip6}/64"), "dev", "eth0", "nodad"],
    );
    let why = r.refused("start", OCF_ERR_GENERIC);
    assert!(why.contains(&net.mac(2)), "{why}");
    assert!(!net.has_addr(1, &format!("{vip6}/64")));
}

#[test]
fn ipfake_monitor_fails_an_address_here_that_no_ipfake_holds_and_stop_removes_it() {
    let net = Net::new(1, 1);
    let r = ipfake_resource(&net, &[]);
    // Configured by hand.
    net.ip(net.ns(1), &["addr", "add", &format!("{VIP}/24"), "dev", "eth0"]);
    let why = r.refused("monitor", OCF_ERR_GENERIC);
    assert!(why.contains("no ipfake holds it"), "{why}");
    r.expect("stop", OCF_SUCCESS);
    assert!(!has_vip(&net, 1), "a stopped resource leaves nothing answering");
    r.expect("monitor", OCF_NOT_RUNNING);
    // The holder killed (SIGKILL leaves the address and the pid file behind).
    r.expect("start", OCF_SUCCESS);
    let pid = holder_pid(&net);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    assert!(wait_for(|| process_gone(pid), Duration::from_secs(2)));
    assert!(has_vip(&net, 1));
    r.refused("monitor", OCF_ERR_GENERIC);
    r.expect("stop", OCF_SUCCESS);
    assert!(!has_vip(&net, 1));
    r.expect("monitor", OCF_NOT_RUNNING);
}

#[test]
fn ipfake_refuses_bad_parameters_with_one_reason() {
    let net = Net::new(1, 1);
    // Parameters changed, the code, words of the reason.
    type Case = (&'static [(&'static str, &'static str)], i32, &'static str);
    let cases: &[Case] = &[
        (&[("nic", "")], OCF_ERR_CONFIGURED, "parameter nic is not set"),
        (&[("ip", "")], OCF_ERR_CONFIGURED, "parameter ip is not set"),
        (&[("nic", "nosuch0")], OCF_ERR_INSTALLED, "no interface `nosuch0`"),
        (&[("ip", "10.77.1.300")], OCF_ERR_CONFIGURED, "not an IP address"),
        (&[("ip", "224.0.0.5")], OCF_ERR_CONFIGURED, "multicast"),
        (&[("ip", "10.77.1.255")], OCF_ERR_CONFIGURED, "broadcast address"),
        (&[("ip", "10.77.1.0")], OCF_ERR_CONFIGURED, "network address"),
        (&[("ip", "10.99.0.1")], OCF_ERR_CONFIGURED, "no connected route on eth0"),
        (&[("cidr_netmask", "33")], OCF_ERR_CONFIGURED, "not a prefix length"),
        (
            &[("iflabel", "much-too-long")],
            OCF_ERR_CONFIGURED,
            "at most 15 characters",
        ),
        (&[("routers", "ff:ff:ff:ff:ff:ff")], OCF_ERR_CONFIGURED, "broadcast"),
        (&[("arp_count", "x")], OCF_ERR_CONFIGURED, "whole numbers"),
        (
            &[("bindir", "/nonexistent")],
            OCF_ERR_INSTALLED,
            "couldn't find command",
        ),
    ];
    for (extra, code, words) in cases {
        let r = ipfake_resource(&net, extra);
        let why = r.refused("validate-all", *code);
        assert!(why.contains(words), "{extra:?}: `{why}` does not say `{words}`");
        // start refuses the same way and changes nothing.
        r.refused("start", *code);
        assert!(!has_vip(&net, 1));
    }
    // A stop with a bad ip has nothing to stop, and touches no other address (not the
    // node's own 10.77.1.1/24, which a prefix or an empty ip would match).
    for ip in ["", "10.77.1.0/24", "10.77.1.300", "224.0.0.5"] {
        ipfake_resource(&net, &[("ip", ip)]).expect("stop", OCF_SUCCESS);
        assert!(
            net.has_addr(1, "10.77.1.1/24"),
            "stop with ip `{ip}` left the node's address"
        );
    }
    // A probe where the interface or the binary is missing: not running here.
    for extra in [&[("nic", "nosuch0")][..], &[("bindir", "/nonexistent")][..]] {
        let mut r = ipfake_resource(&net, extra);
        r.params.push(("CRM_meta_interval".into(), "0".into()));
        r.expect("monitor", OCF_NOT_RUNNING);
    }
}

// --- lvs-service -------------------------------------------------------------------

const WEB: &str = "lvs-ctl:\n  backend: nft\n  services:\n    - service: tcp 10.77.1.100:80\n      scheduler: wrr\n      forward: masq\n      reals:\n        - { address: 10.77.2.2:80, weight: 1 }\n        - { address: 10.77.2.3:80, weight: 2 }\n";

/// A director's namespace with a service of someone else's (udp 10.77.1.100:53) in the
/// nftables table: it must outlive every action of the resource.
fn lvs_lab() -> (Net, PathBuf) {
    let net = Net::new(1, 1);
    let file = net.path("web.yaml");
    std::fs::write(&file, WEB).unwrap();
    let other = net.path("other.yaml");
    std::fs::write(
        &other,
        "lvs-ctl:\n  backend: nft\n  services:\n    - service: udp 10.77.1.100:53\n      scheduler: rr\n      forward: masq\n      reals:\n        - { address: 10.77.2.2:53, weight: 1 }\n",
    )
    .unwrap();
    let o = net.run(net.ns(1), &bin("lvs-ctl"), &["apply", &other.display().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (net, file)
}

fn lvs_resource(net: &Net, file: &Path, extra: &[(&str, &str)]) -> Resource {
    let file = file.display().to_string();
    let mut params = vec![("config", file.as_str()), ("bindir", "")];
    params.extend_from_slice(extra);
    let mut r = Resource::new(net, net.ns(1), "lvs-service", "web", &params);
    for (k, v) in &mut r.params {
        if k == "bindir" && v.is_empty() {
            *v = bindir();
        }
    }
    r
}

/// `lvs-ctl -L -n` in the director's namespace.
fn listing(net: &Net) -> String {
    let o = net.run(net.ns(1), &bin("lvs-ctl"), &["-L", "-n"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The kernel's own word: nft's listing of lvs-ctl's table.
fn nft_table(net: &Net) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", net.ns(1), "nft", "list", "table", "inet", "hakit_lvs"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn lvs_service_passes_ocf_tester_and_leaves_other_services_alone() {
    let (net, file) = lvs_lab();
    lvs_resource(&net, &file, &[]).ocf_tester();
    let l = listing(&net);
    assert!(!l.contains("TCP  10.77.1.100:80"), "ocf-tester ends with a stop:\n{l}");
    assert!(l.contains("UDP  10.77.1.100:53"), "the other service stays:\n{l}");
}

#[test]
fn lvs_service_start_puts_the_service_in_the_table_and_stop_takes_only_it_out() {
    let (net, file) = lvs_lab();
    let r = lvs_resource(&net, &file, &[]);
    r.expect("monitor", OCF_NOT_RUNNING);
    r.expect("start", OCF_SUCCESS);
    let nft = nft_table(&net);
    for want in [
        "10.77.1.100 . tcp . 80",
        "10.77.1.100 . tcp . 80 . 10.77.2.2 . 80",
        "10.77.1.100 . tcp . 80 . 10.77.2.3 . 80",
        "10.77.1.100 . udp . 53",
    ] {
        assert!(nft.contains(want), "nft has `{want}`:\n{nft}");
    }
    let l = listing(&net);
    assert!(l.contains("TCP  10.77.1.100:80 wrr"), "{l}");
    assert!(l.contains("-> 10.77.2.3:80                 Masq    2"), "{l}");
    r.expect("monitor", OCF_SUCCESS);
    r.expect("start", OCF_SUCCESS);
    // Part of it gone (a real server deleted by hand): failed, not stopped, and the
    // reason says what differs; a start repairs it.
    let o = net.run(
        net.ns(1),
        &bin("lvs-ctl"),
        &["-d", "-t", "10.77.1.100:80", "-r", "10.77.2.3:80"],
    );
    assert!(o.status.success());
    let why = r.refused("monitor", OCF_ERR_GENERIC);
    assert!(why.contains("-a -t 10.77.1.100:80 -r 10.77.2.3:80 -m -w 2"), "{why}");
    r.expect("start", OCF_SUCCESS);
    r.expect("monitor", OCF_SUCCESS);
    // Settings changed by hand: failed too.
    let o = net.run(net.ns(1), &bin("lvs-ctl"), &["-E", "-t", "10.77.1.100:80", "-s", "rr"]);
    assert!(o.status.success());
    r.refused("monitor", OCF_ERR_GENERIC);
    r.expect("stop", OCF_SUCCESS);
    let nft = nft_table(&net);
    assert!(
        !nft.contains("10.77.1.100 . tcp . 80"),
        "stop removes the service:\n{nft}"
    );
    assert!(nft.contains("10.77.1.100 . udp . 53"), "and only it:\n{nft}");
    r.expect("monitor", OCF_NOT_RUNNING);
    r.expect("stop", OCF_SUCCESS);
}

#[test]
fn lvs_service_refuses_a_broken_file_naming_its_line_and_column() {
    let (net, file) = lvs_lab();
    let bad = net.path("bad.yaml");
    std::fs::write(&bad, WEB.replace("scheduler: wrr", "scheduler: nosuch")).unwrap();
    let r = lvs_resource(&net, &bad, &[]);
    let why = r.refused("validate-all", OCF_ERR_CONFIGURED);
    assert!(
        why.contains(&format!("{}:5:7: unknown scheduler", bad.display())),
        "{why}"
    );
    r.refused("start", OCF_ERR_CONFIGURED);
    let syntax = net.path("syntax.yaml");
    std::fs::write(&syntax, "lvs-ctl:\n  services: [\n").unwrap();
    let why = lvs_resource(&net, &syntax, &[]).refused("validate-all", OCF_ERR_CONFIGURED);
    assert!(why.contains(&format!("{}:", syntax.display())), "{why}");
    let missing = net.path("missing.yaml");
    let why = lvs_resource(&net, &missing, &[]).refused("validate-all", OCF_ERR_INSTALLED);
    assert!(why.contains("no file"), "{why}");
    let why = lvs_resource(&net, &file, &[("backend", "xdp")]).refused("validate-all", OCF_ERR_CONFIGURED);
    assert!(why.contains("parameter backend"), "{why}");
    let why = lvs_resource(&net, &file, &[("config", "")]).refused("validate-all", OCF_ERR_CONFIGURED);
    assert!(why.contains("parameter config is not set"), "{why}");
    // Nothing was applied by any of them.
    assert!(!listing(&net).contains("TCP"), "{}", listing(&net));
}

// --- mon-check -------------------------------------------------------------------

fn mon_lab() -> (Net, PathBuf, u32) {
    let mut net = Net::new(1, 1);
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/line-server.py");
    let ns = net.ns(1).to_string();
    let args: Vec<String> = ["n1", "10.77.1.1", "9000"].iter().map(|s| s.to_string()).collect();
    let pid = net.spawn(&ns, &server, &args, Stdio::null());
    let file = net.path("mon.yaml");
    let d = net.dir.path().display().to_string();
    std::fs::write(
        &file,
        format!("mon-check:\n  state-dir: {d}/monstate\n  socket: {d}/mon.sock\n  hostgroups:\n    local: [10.77.1.1]\n  watches:\n    local:\n      line:\n        interval: 200ms\n        monitor: tcp -p 9000 -t 1\n"),
    )
    .unwrap();
    assert!(
        wait_for(
            || Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "python3",
                    "-c",
                    "import socket; socket.create_connection(('10.77.1.1', 9000), 1)"
                ])
                .status()
                .unwrap()
                .success(),
            Duration::from_secs(5)
        ),
        "the line server listens"
    );
    (net, file, pid)
}

fn mon_resource(net: &Net, file: &Path, extra: &[(&str, &str)]) -> Resource {
    let mut r = Resource::new(net, net.ns(1), "mon-check", "mon", &[("syslog", "false")]);
    r.params.push(("config".into(), file.display().to_string()));
    r.params.push(("bindir".into(), bindir()));
    for (k, v) in extra {
        r.params.retain(|(key, _)| key != k);
        r.params.push((k.to_string(), v.to_string()));
    }
    r
}

/// The state of local/line as the scheduler says over its socket.
fn line_state(net: &Net, file: &Path) -> Option<String> {
    let o = net.run(
        net.ns(1),
        &bin("mon-check"),
        &["--json", "ctl", "-c", &file.display().to_string(), "list"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v["status"]["services"][0]["state"].as_str().map(str::to_string)
}

/// Wait (5 s at most) until the scheduler says local/line is `want`.
fn await_state(net: &Net, file: &Path, want: &str) {
    assert!(
        wait_for(
            || line_state(net, file).as_deref() == Some(want),
            Duration::from_secs(5)
        ),
        "local/line is not {want}: {:?}",
        line_state(net, file)
    );
}

/// The pid the agent recorded for the instance.
fn recorded(net: &Net, name: &str) -> i32 {
    let t = std::fs::read_to_string(net.path("rsctmp").join(format!("hakit-mon-check/{name}.pid"))).unwrap();
    t.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn mon_check_passes_ocf_tester() {
    let (net, file, _) = mon_lab();
    mon_resource(&net, &file, &[]).ocf_tester();
    assert_eq!(line_state(&net, &file), None, "ocf-tester ends with a stop");
}

#[test]
fn mon_check_start_runs_the_scheduler_which_checks_and_stop_ends_it() {
    let (mut net, file, server) = mon_lab();
    let r = mon_resource(&net, &file, &[]);
    r.expect("start", OCF_SUCCESS);
    let pid = recorded(&net, "mon");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(),
        "mon-check"
    );
    r.expect("monitor", OCF_SUCCESS);
    // It really checks: the line server answers, then it is gone.
    await_state(&net, &file, "ok");
    net.kill(server, nix::sys::signal::Signal::SIGKILL);
    await_state(&net, &file, "failing");
    r.expect("start", OCF_SUCCESS);
    assert_eq!(recorded(&net, "mon"), pid, "a second start keeps the scheduler");
    r.expect("stop", OCF_SUCCESS);
    assert!(wait_for(|| process_gone(pid), Duration::from_secs(2)), "TERM ended it");
    r.expect("monitor", OCF_NOT_RUNNING);
    r.expect("stop", OCF_SUCCESS);
    // Killed behind the agent's back: not running, and a start brings it back.
    r.expect("start", OCF_SUCCESS);
    let pid = recorded(&net, "mon");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    assert!(wait_for(|| process_gone(pid), Duration::from_secs(2)));
    r.expect("monitor", OCF_NOT_RUNNING);
    r.expect("start", OCF_SUCCESS);
    assert_ne!(recorded(&net, "mon"), pid);
    r.expect("stop", OCF_SUCCESS);
}

#[test]
fn mon_check_never_signals_a_process_it_did_not_start() {
    let (mut net, file, _) = mon_lab();
    let r = mon_resource(&net, &file, &[]);
    // A record naming another process (a sleep of the test's: its pid, a wrong start
    // time; then its right start time, but it is no mon-check).
    let ns = net.ns(1).to_string();
    let sleep = net.spawn(&ns, Path::new("/bin/sleep"), &["30".to_string()], Stdio::null());
    let dir = net.path("rsctmp").join("hakit-mon-check");
    std::fs::create_dir_all(&dir).unwrap();
    set_mode(&dir, 0o700);
    let start = std::fs::read_to_string(format!("/proc/{sleep}/stat")).unwrap();
    let start = start[start.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    for record in [format!("{sleep} 1\n"), format!("{sleep} {start}\n")] {
        std::fs::write(dir.join("mon.pid"), record).unwrap();
        r.expect("monitor", OCF_NOT_RUNNING);
        r.expect("stop", OCF_SUCCESS);
        assert!(!process_gone(sleep as i32), "the sleep was not signalled");
    }
    // A scheduler this resource did not start, at its socket: failed, not running.
    let cfg = file.display().to_string();
    let other = net.spawn(
        &ns,
        &bin("mon-check"),
        &["run".into(), "-q".into(), "-c".into(), cfg],
        Stdio::null(),
    );
    assert!(wait_for(|| line_state(&net, &file).is_some(), Duration::from_secs(5)));
    let why = r.refused("monitor", OCF_ERR_GENERIC);
    assert!(why.contains("did not start"), "{why}");
    r.expect("stop", OCF_SUCCESS);
    assert!(!process_gone(other as i32), "stop left the stranger alone");
    net.kill(other, nix::sys::signal::Signal::SIGKILL);
}

#[test]
fn mon_check_refuses_a_broken_file_naming_its_line_and_column() {
    let (net, file, _) = mon_lab();
    let bad = net.path("bad.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("interval: 200ms", "intervl: 200ms");
    std::fs::write(&bad, text).unwrap();
    let r = mon_resource(&net, &bad, &[]);
    let why = r.refused("validate-all", OCF_ERR_CONFIGURED);
    assert!(why.contains(&format!("{}:9:9: ", bad.display())), "{why}");
    r.refused("start", OCF_ERR_CONFIGURED);
    assert_eq!(line_state(&net, &bad), None, "nothing started");
    let why = mon_resource(&net, &net.path("missing.yaml"), &[]).refused("validate-all", OCF_ERR_INSTALLED);
    assert!(why.contains("no file"), "{why}");
    let why = mon_resource(&net, &file, &[("bindir", "/nonexistent")]).refused("validate-all", OCF_ERR_INSTALLED);
    assert!(why.contains("couldn't find command"), "{why}");
}

/// Run `script` (sh, `set -e`) with the agents in /usr/lib/ocf/resource.d/hakit: a
/// copy of resource.d with hakit/ added, bind-mounted over the real one in a mount
/// namespace of the script's own, so the host's /usr is never touched. TMP is `tmp`,
/// AGENTS the agents' names.
fn with_agents_installed(tmp: &Path, script: &str) -> Output {
    need("unshare");
    let setup = r#"set -e
cp -a /usr/lib/ocf/resource.d "$TMP/resource.d"
mkdir "$TMP/resource.d/hakit"
for a in $AGENTS; do cp "$SRC/$a" "$TMP/resource.d/hakit/$a"; done
mount --bind "$TMP/resource.d" /usr/lib/ocf/resource.d
"#;
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("{setup}{script}"))
        .env("TMP", tmp)
        .env("SRC", agent(""))
        .env("AGENTS", AGENTS.join(" "))
        .output()
        .unwrap()
}

/// The README's `crm configure` example, as crmsh reads it against the agents'
/// meta-data (a CIB in a file: no cluster needed); a parameter the agent does not
/// have, or a required one left out, is refused.
const CRM_EXAMPLE: &str = "\
primitive vip ocf:hakit:ipfake params ip=192.0.2.10 cidr_netmask=24 nic=eth0 \\
    op monitor interval=10s timeout=20s
primitive web-lvs ocf:hakit:lvs-service params config=/etc/hakit/lvs-web.yaml \\
    op monitor interval=10s timeout=20s
primitive checks ocf:hakit:mon-check params config=/etc/hakit/hakit.yaml \\
    op monitor interval=30s timeout=20s
group director vip web-lvs checks
";

#[test]
fn crmsh_takes_the_readme_example_and_refuses_unknown_parameters() {
    need("crm");
    need("cibadmin");
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    let empty = Command::new("cibadmin").arg("--empty").output().unwrap();
    assert!(empty.status.success());
    std::fs::write(&cib, &empty.stdout).unwrap();
    // crm_verify refuses a CIB without a fencing device unless fencing is off; the
    // example is about the resources.
    std::fs::write(
        dir.path().join("good.crm"),
        format!("{CRM_EXAMPLE}property stonith-enabled=false\ncommit\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.crm"),
        "primitive bad ocf:hakit:ipfake params ipp=192.0.2.11 nic=eth0\nproperty stonith-enabled=false\ncommit\n",
    )
    .unwrap();
    let script = r#"
export CIB_file="$TMP/cib.xml"
crm configure < "$TMP/good.crm"
crm configure show > "$TMP/shown"
if crm configure < "$TMP/bad.crm" 2> "$TMP/bad.err"; then echo "bad accepted"; exit 1; fi
"#;
    let out = with_agents_installed(dir.path(), script);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "crm:\n{text}");
    let shown = std::fs::read_to_string(dir.path().join("shown")).unwrap();
    for want in [
        "primitive vip ocf:hakit:ipfake",
        "primitive web-lvs ocf:hakit:lvs-service",
        "primitive checks ocf:hakit:mon-check",
        "group director vip web-lvs checks",
    ] {
        assert!(shown.contains(want), "{want}:\n{shown}");
    }
    let bad = std::fs::read_to_string(dir.path().join("bad.err")).unwrap();
    assert!(bad.contains("parameter \"ipp\" is not known"), "{bad}");
    assert!(bad.contains("required parameter \"ip\" not defined"), "{bad}");
    let cib = std::fs::read_to_string(&cib).unwrap();
    assert!(!cib.contains("id=\"bad\""), "nothing of the refused one was committed");
}

/// Each agent's meta-data: valid against ra-api-1.dtd, and read by Pacemaker's own
/// `crm_resource --show-metadata ocf:hakit:NAME`, the agents bind-mounted into
/// /usr/lib/ocf/resource.d/hakit in a private mount namespace (the host's /usr is
/// not touched).
#[test]
fn meta_data_is_valid_and_pacemaker_reads_it() {
    need("xmllint");
    need("crm_resource");
    let dtd = "/usr/share/resource-agents/ra-api-1.dtd";
    assert!(Path::new(dtd).is_file(), "{dtd} is missing (resource-agents)");
    let dir = tempfile::tempdir().unwrap();
    for name in AGENTS {
        let out = Command::new(agent(name))
            .arg("meta-data")
            .env("OCF_ROOT", "/usr/lib/ocf")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} meta-data: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let xml = dir.path().join(format!("{name}.xml"));
        std::fs::write(&xml, &out.stdout).unwrap();
        let lint = Command::new("xmllint")
            .args(["--noout", "--dtdvalid", dtd])
            .arg(&xml)
            .output()
            .unwrap();
        assert!(
            lint.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&lint.stderr)
        );
    }
    let script = r#"
echo "agents: $(crm_resource --list-agents ocf:hakit | tr '\n' ' ')"
for a in $AGENTS; do
    crm_resource --show-metadata "ocf:hakit:$a" > "$TMP/$a.crm.xml"
    xmllint --noout --dtdvalid /usr/share/resource-agents/ra-api-1.dtd "$TMP/$a.crm.xml"
done
"#;
    let out = with_agents_installed(dir.path(), script);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "crm_resource:\n{text}");
    for name in AGENTS {
        assert!(text.contains(name), "crm_resource lists {name}: {text}");
        let shown = std::fs::read_to_string(dir.path().join(format!("{name}.crm.xml"))).unwrap();
        assert!(shown.contains(&format!("<resource-agent name=\"{name}\"")), "{shown}");
    }
    assert!(
        !Path::new("/usr/lib/ocf/resource.d/hakit").exists(),
        "nothing was installed into the host's /usr"
    );
}
