//! A real Corosync 3 + Pacemaker 2 cluster (Debian's packages) on nodes of a [`Net`],
//! each node in its own mount and UTS namespaces (tests/pcmk-node.sh), for the tests
//! that run hakit's OCF agents under Pacemaker. The cluster is stopped in order
//! (pacemakerd, then corosync, by PID) when the test stops it or the Cluster drops.

use super::{netns_pids, process_gone, wait_for, Net};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pcmk-node.sh");

/// What the cluster needs from the host; a missing one fails the test, loudly.
pub fn require_installed() {
    for p in [
        "/usr/sbin/corosync",
        "/usr/sbin/pacemakerd",
        "/usr/sbin/crm_mon",
        "/usr/sbin/crm",
        "/usr/sbin/cibadmin",
    ] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: contrib/deps.sh installs Debian's corosync, pacemaker, \
             pacemaker-cli-utils and crmsh"
        );
    }
}

/// corosync.conf for `members` (node numbers of the Net, named `n<i>`, on 10.77.1.<i>):
/// knet over eth0, two_node quorum (each half of a split keeps quorum, which is what a
/// two-node cluster without a quorum device does), and short totem timeouts so that a
/// lost node is seen in about two seconds.
pub fn corosync_conf(members: &[usize], token_ms: u32) -> String {
    let mut nodes = String::new();
    for i in members {
        nodes.push_str(&format!(
            "  node {{\n    name: n{i}\n    nodeid: {i}\n    ring0_addr: 10.77.1.{i}\n  }}\n"
        ));
    }
    format!(
        "totem {{\n  version: 2\n  cluster_name: hakit-test\n  transport: knet\n  \
         crypto_cipher: none\n  crypto_hash: none\n  token: {token_ms}\n  join: 50\n}}\n\
         nodelist {{\n{nodes}}}\n\
         quorum {{\n  provider: corosync_votequorum\n  two_node: 1\n}}\n\
         logging {{\n  to_stderr: yes\n  to_logfile: yes\n  \
         logfile: /var/log/corosync/corosync.log\n  to_syslog: no\n  timestamp: hires\n}}\n"
    )
}

pub struct Node {
    pub name: String,
    pub net_index: usize,
    pub dir: PathBuf,
    script: Child,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    stopped: bool,
}

impl Cluster {
    /// Start corosync and pacemakerd on each of `members` with `conf` as corosync.conf
    /// and `cib` (if not empty) as the initial CIB; `agents` is added as provider `hakit`.
    pub fn start(net: &Net, members: &[usize], conf: &str, cib: &str, agents: Option<&Path>) -> Cluster {
        let mut nodes = Vec::new();
        for &i in members {
            let name = format!("n{i}");
            let dir = net.path(&format!("pcmk-{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("corosync.conf"), conf).unwrap();
            let hosts: String = members.iter().map(|j| format!("10.77.1.{j} n{j}\n")).collect();
            std::fs::write(dir.join("hosts"), hosts).unwrap();
            if !cib.is_empty() {
                std::fs::write(dir.join("cib.xml"), cib).unwrap();
            }
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", net.ns(i)])
                .args(["unshare", "--mount", "--uts", "--propagation", "private"])
                .arg(SCRIPT)
                .arg(&dir)
                .arg(&name);
            if let Some(a) = agents {
                cmd.arg(a);
            }
            let script = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("script.err")).unwrap())
                .spawn()
                .expect("start tests/pcmk-node.sh");
            nodes.push(Node {
                name,
                net_index: i,
                dir,
                script,
            });
        }
        Cluster { nodes, stopped: false }
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no cluster node {name}"))
    }

    /// Run a command in node `name`'s namespaces (network, mount, UTS): the node's own
    /// view of the cluster, as its administrator has it. Ended after a minute (exit
    /// 124): a hung crmsh fails the test instead of holding it.
    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        let n = self.node(name);
        let home = n.dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Command::new("timeout")
            .args(["--kill-after=5", "60", "nsenter"])
            .args(["-t", &n.script.id().to_string(), "-m", "-u", "-n", "--"])
            .args(args)
            // crmsh keeps its history and cache under $HOME: the test's, not root's.
            .env("HOME", &home)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// `run`, which must succeed; its stdout.
    pub fn must(&self, name: &str, args: &[&str]) -> String {
        let out = self.run(name, args);
        assert!(
            out.status.success(),
            "{args:?} on {name}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// crm_mon's XML status as node `name` sees it (empty if it cannot answer yet).
    pub fn status(&self, name: &str) -> String {
        let out = self.run(name, &["crm_mon", "-1", "--output-as=xml"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Panics with the logs if a node's starter has ended (its corosync and pacemakerd
    /// with it): a cluster that cannot start fails at once, not at a timeout.
    pub fn assert_running(&mut self) {
        for n in &mut self.nodes {
            if let Ok(Some(st)) = n.script.try_wait() {
                let name = n.name.clone();
                panic!("{name}'s pcmk-node.sh ended ({st})\n{}", self.logs());
            }
        }
    }

    /// The DC node `name` knows of.
    pub fn dc(&self, name: &str) -> Option<String> {
        let st = self.status(name);
        let dc = element(&st, "current_dc", None)?;
        (attr(&dc, "present")? == "true").then(|| attr(&dc, "name")).flatten()
    }

    /// Whether node `name` sees `node` online (and not in standby when `active`).
    pub fn online(&self, name: &str, node: &str, active: bool) -> bool {
        let st = self.status(name);
        element(&st, "node", Some(node)).is_some_and(|e| {
            attr(&e, "online").as_deref() == Some("true")
                && (!active || attr(&e, "standby").as_deref() == Some("false"))
        })
    }

    /// The nodes where node `name` sees resource `rsc` active.
    pub fn locate(&self, name: &str, rsc: &str) -> Vec<String> {
        let out = self.run(name, &["crm_resource", "--locate", "--resource", rsc, "--quiet"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Wait until the cluster, as node `name` sees it, has no action left to take
    /// (`crm_resource --wait`); panics with the logs if it has not settled `within`.
    pub fn settle(&self, name: &str, within: Duration) {
        let timeout = format!("--timeout={}s", within.as_secs());
        let out = self.run(name, &["crm_resource", "--wait", &timeout]);
        assert!(
            out.status.success(),
            "the cluster did not settle within {within:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }

    /// The lines of every node's Pacemaker log that contain `text`, each after its node.
    pub fn log_lines(&self, text: &str) -> Vec<String> {
        let mut v = Vec::new();
        for n in &self.nodes {
            let log = std::fs::read_to_string(n.dir.join("log-pacemaker/pacemaker.log")).unwrap_or_default();
            v.extend(
                log.lines()
                    .filter(|l| l.contains(text))
                    .map(|l| format!("{}: {l}", n.name)),
            );
        }
        v
    }

    /// The ends of every node's logs, for a failure's message.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            for f in [
                "script.err",
                "corosync.out",
                "pacemakerd.out",
                "log-corosync/corosync.log",
                "log-pacemaker/pacemaker.log",
            ] {
                let text = std::fs::read_to_string(n.dir.join(f)).unwrap_or_default();
                // Pacemaker's first errors come long before its last lines.
                let errors: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains("error:") || l.contains("crit:"))
                    .take(10)
                    .collect();
                if !errors.is_empty() {
                    s.push_str(&format!(
                        "--- {} {f}, its first errors:\n{}\n",
                        n.name,
                        errors.join("\n")
                    ));
                }
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                if !tail.is_empty() {
                    s.push_str(&format!("--- {} {f}:\n", n.name));
                    for l in tail.iter().rev() {
                        s.push_str(l);
                        s.push('\n');
                    }
                }
            }
        }
        s
    }

    fn pid(n: &Node, what: &str) -> Option<i32> {
        std::fs::read_to_string(n.dir.join(format!("{what}.pid")))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }

    /// Stop the cluster in order (`end`), then see that nothing is left: none of the
    /// processes the nodes' namespaces held before the stop (Pacemaker's daemons, the
    /// agents' holders), nothing in the namespaces (`ip netns pids`; the test's own
    /// helpers must have ended by now). How long the stop took, or what survived or had
    /// to be killed.
    pub fn stop(&mut self, net: &Net) -> Result<Duration, String> {
        let t = Instant::now();
        // Pacemaker's daemons, the agents' processes and everything else in the nodes'
        // namespaces, known before any of them is signalled (a killed parent's children
        // are reparented and no longer found by descent).
        let mut known: Vec<(i32, String)> = Vec::new();
        for n in &self.nodes {
            known.extend(netns_pids(net.ns(n.net_index)).into_iter().map(|p| (p, comm(p))));
        }
        let mut problems = self.end(Duration::from_secs(20));
        let stop_time = t.elapsed();
        wait_for(|| known.iter().all(|(p, _)| process_gone(*p)), Duration::from_secs(2));
        for (p, c) in known.iter().filter(|(p, _)| !process_gone(*p)) {
            problems.push(format!("{p} ({c}) survived the cluster's stop"));
        }
        // Killed only as what the namespace still holds: a pid of the list above that
        // left it has been reused.
        for n in &self.nodes {
            for p in netns_pids(net.ns(n.net_index)) {
                problems.push(format!("{p} ({}) left in {}'s namespace: killed", comm(p), n.name));
                signal(p, nix::sys::signal::Signal::SIGKILL);
            }
        }
        if problems.is_empty() {
            Ok(stop_time)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// TERM to every pacemakerd (it stops the resources, then its daemons), wait up to
    /// `grace`; then the same for corosync; KILL for what did not end, and for the
    /// starters. Each pid is signalled only while it still runs the command the starter
    /// recorded. What had to be killed.
    fn end(&mut self, grace: Duration) -> Vec<String> {
        self.stopped = true;
        let mut problems = Vec::new();
        for what in ["pacemakerd", "corosync"] {
            let pids: Vec<(String, i32)> = self
                .nodes
                .iter()
                .filter_map(|n| Self::pid(n, what).map(|p| (n.name.clone(), p)))
                .filter(|(_, p)| comm(*p) == what)
                .collect();
            for (_, p) in &pids {
                signal(*p, nix::sys::signal::Signal::SIGTERM);
            }
            for (name, p) in &pids {
                if !wait_for(|| process_gone(*p), grace) {
                    problems.push(format!("{what} {p} on {name} ignored TERM for {grace:?}: killed"));
                    if comm(*p) == what {
                        signal(*p, nix::sys::signal::Signal::SIGKILL);
                    }
                }
            }
        }
        for n in &mut self.nodes {
            if !wait_for(|| matches!(n.script.try_wait(), Ok(Some(_))), Duration::from_secs(5)) {
                problems.push(format!("{}'s pcmk-node.sh did not end: killed", n.name));
                let _ = n.script.kill();
                let _ = n.script.wait();
            }
        }
        problems
    }
}

impl Drop for Cluster {
    /// A failed test still stops the cluster in order (Net's drop, which comes after,
    /// kills whatever is left in the namespaces).
    fn drop(&mut self) {
        if !self.stopped {
            self.end(Duration::from_secs(10));
        }
    }
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The first `<tag ...>` element of `xml` (with `name="name"` if given), as its text.
fn element(xml: &str, tag: &str, name: Option<&str>) -> Option<String> {
    let open = format!("<{tag} ");
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let e = &rest[i..];
        let end = e.find('>')?;
        let e = &e[..end];
        if name.is_none_or(|n| attr(e, "name").as_deref() == Some(n)) {
            return Some(e.to_string());
        }
        rest = &rest[i + end..];
    }
    None
}

/// The value of attribute `key` in an element's text.
fn attr(element: &str, key: &str) -> Option<String> {
    let pat = format!(" {key}=\"");
    let i = element.find(&pat)? + pat.len();
    let v = &element[i..];
    Some(v[..v.find('"')?].to_string())
}
