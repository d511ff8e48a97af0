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
const AGENTS: &[&str] = &["ipfake"];

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
struct Resource<'a> {
    net: &'a Net,
    ns: String,
    agent: &'static str,
    name: &'static str,
    params: Vec<(String, String)>,
}

impl Resource<'_> {
    fn new<'a>(
        net: &'a Net,
        ns: &str,
        agent: &'static str,
        name: &'static str,
        params: &[(&str, &str)],
    ) -> Resource<'a> {
        let rsctmp = net.path("rsctmp");
        std::fs::create_dir_all(&rsctmp).unwrap();
        Resource {
            net,
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
            .env("HA_RSCTMP", self.net.path("rsctmp"))
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
            .env("HA_RSCTMP", self.net.path("rsctmp"))
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

fn ipfake_params<'a>(net: &Net, extra: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
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

fn ipfake_resource<'a>(net: &'a Net, extra: &[(&str, &str)]) -> Resource<'a> {
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
    let cases: &[(&[(&str, &str)], i32, &str)] = &[
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
    // A probe where the interface or the binary is missing: not running here.
    for extra in [&[("nic", "nosuch0")][..], &[("bindir", "/nonexistent")][..]] {
        let mut r = ipfake_resource(&net, extra);
        r.params.push(("CRM_meta_interval".into(), "0".into()));
        r.expect("monitor", OCF_NOT_RUNNING);
    }
}

/// Each agent's meta-data: valid against ra-api-1.dtd, and read by Pacemaker's own
/// `crm_resource --show-metadata ocf:hakit:NAME`, the agents bind-mounted into
/// /usr/lib/ocf/resource.d/hakit in a private mount namespace (the host's /usr is
/// not touched).
#[test]
fn meta_data_is_valid_and_pacemaker_reads_it() {
    need("xmllint");
    need("crm_resource");
    need("unshare");
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
    // A copy of resource.d with hakit/ added, mounted over the real one only in a
    // mount namespace of the script's own.
    let script = r#"
set -e
tmp=$1; shift; src=$1; shift
cp -a /usr/lib/ocf/resource.d "$tmp/resource.d"
mkdir "$tmp/resource.d/hakit"
for a in "$@"; do cp "$src/$a" "$tmp/resource.d/hakit/$a"; done
mount --bind "$tmp/resource.d" /usr/lib/ocf/resource.d
echo "agents: $(crm_resource --list-agents ocf:hakit | tr '\n' ' ')"
for a in "$@"; do
    crm_resource --show-metadata "ocf:hakit:$a" > "$tmp/$a.crm.xml"
    xmllint --noout --dtdvalid /usr/share/resource-agents/ra-api-1.dtd "$tmp/$a.crm.xml"
done
"#;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(dir.path())
        .arg(agent(""))
        .args(AGENTS)
        .output()
        .unwrap();
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
