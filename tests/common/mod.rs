//! Test harness: network namespaces, bridges and veth pairs with unique names, the
//! built binaries run inside them, and everything torn down on drop — also when a
//! test fails (drop runs during unwinding). Only processes started here are killed,
//! by PID.
#![allow(dead_code)]

pub mod chan;
pub mod lvs;
pub mod pair;
pub mod pcmk;
pub mod vm;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn bin(name: &str) -> PathBuf {
    match name {
        "hb-send" => PathBuf::from(env!("CARGO_BIN_EXE_hb-send")),
        "hb-watch" => PathBuf::from(env!("CARGO_BIN_EXE_hb-watch")),
        "arp-announce" => PathBuf::from(env!("CARGO_BIN_EXE_arp-announce")),
        "ipfake" => PathBuf::from(env!("CARGO_BIN_EXE_ipfake")),
        "mon-check" => PathBuf::from(env!("CARGO_BIN_EXE_mon-check")),
        "lvs-ctl" => PathBuf::from(env!("CARGO_BIN_EXE_lvs-ctl")),
        "chan-switch" => PathBuf::from(env!("CARGO_BIN_EXE_chan-switch")),
        _ => panic!("no binary {name}"),
    }
}

/// A cargo example, `<binaries' dir>/examples/<name>`. Built here first, once per test
/// binary (cargo builds examples for `--all-targets`, not for `--test X`, and a stale
/// one would measure old code); cargo's build lock is free while tests run.
pub fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = Path::new(env!("CARGO_BIN_EXE_hb-send")).parent().unwrap();
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let profile = dir.file_name().unwrap().to_str().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // What cargo sets for a test run, not the user's configuration: left in, build
        // scripts that watch it (ring's CARGO_MANIFEST_DIR) see a change and the next
        // `cargo test` rebuilds them.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            let set_for_test = [
                "CARGO_PKG_",
                "CARGO_BIN_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ];
            if set_for_test.iter().any(|p| k.starts_with(p)) {
                build.env_remove(&*k);
            }
        }
        let out = build
            .args(["build", "--quiet", "--example", name, "--profile"])
            .arg(if profile == "debug" { "dev" } else { profile })
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(dir.parent().unwrap())
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "building example {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        built.push(name.to_string());
    }
    dir.join("examples").join(name)
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A set of namespaces: a switch with one bridge per channel, and nodes with one veth
/// per channel (`eth0`, `eth1`, ...) at 10.77.<channel+1>.<node>/24.
pub struct Net {
    pub prefix: String,
    pub switch: String,
    pub nodes: Vec<String>,
    pub channels: usize,
    pub dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Net {
    pub fn new(nodes: usize, channels: usize) -> Net {
        assert!(is_root(), "network namespace tests need root");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("hkt{}x{n}", std::process::id());
        let mut net = Net {
            switch: format!("{prefix}sw"),
            prefix,
            nodes: Vec::new(),
            channels,
            dir: tempfile::tempdir().unwrap(),
            children: Vec::new(),
        };
        sh(&["ip", "netns", "add", &net.switch]);
        let mut sw = vec!["link set lo up".to_string()];
        for c in 0..channels {
            sw.push(format!("link add br{c} type bridge forward_delay 0"));
            sw.push(format!("link set br{c} up"));
        }
        net.batch(&net.switch.clone(), &sw);
        for i in 1..=nodes {
            net.add_node(i);
        }
        let keys = net.dir.path().join("authkeys");
        std::fs::write(&keys, "auth 1\n1 sha256 test-secret\n").unwrap();
        set_mode(&keys, 0o600);
        net
    }

    /// Node i: its namespace, and one veth per channel into the switch's bridges. Three
    /// `ip -batch` runs, not one `ip` a step: a process is slow in the IPVS VM.
    pub fn add_node(&mut self, i: usize) {
        let ns = format!("{}n{i}", self.prefix);
        sh(&["ip", "netns", "add", &ns]);
        self.nodes.push(ns.clone());
        let mut sw = Vec::new();
        let mut node = vec!["link set lo up".to_string()];
        for c in 0..self.channels {
            let port = format!("n{i}c{c}");
            sw.push(format!("link add {port} type veth peer name eth{c} netns {ns}"));
            sw.push(format!("link set {port} master br{c} up"));
            node.push(format!("addr add 10.77.{}.{i}/24 brd + dev eth{c}", c + 1));
            node.push(format!("link set eth{c} up"));
        }
        self.batch(&self.switch.clone(), &sw);
        self.batch(&ns, &node);
    }

    /// `ip -n NS -batch -` of these commands; panics with ip's words if one fails.
    pub fn batch(&self, ns: &str, commands: &[String]) {
        let mut child = Command::new("ip")
            .args(["-n", ns, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ip");
        let mut text = commands.join("\n");
        text.push('\n');
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ip -n {ns} -batch: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn ns(&self, node: usize) -> &str {
        &self.nodes[node - 1]
    }

    pub fn ip(&self, ns: &str, args: &[&str]) {
        let mut v = vec!["ip", "-n", ns];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// Run a command inside a node's namespace and wait for it.
    pub fn run(&self, ns: &str, cmd: &Path, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(cmd)
            .args(args)
            .output()
            .expect("run in netns")
    }

    pub fn keys(&self) -> PathBuf {
        self.dir.path().join("authkeys")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Arguments every tool on node `i` shares.
    pub fn common(&self, i: usize) -> Vec<String> {
        let mut v = vec![
            "--node".into(),
            format!("n{i}"),
            "--keys".into(),
            self.keys().display().to_string(),
            "--table".into(),
            self.path(&format!("n{i}.ast")).display().to_string(),
            "-q".into(),
        ];
        for c in 0..self.channels {
            v.push("--channel".into());
            v.push(format!("{}=bcast:eth{c}", (b'a' + c as u8) as char));
        }
        v
    }

    /// Start a process in a namespace; it is killed (by PID) when the Net drops.
    pub fn spawn(&mut self, ns: &str, cmd: &Path, args: &[String], stdout: Stdio) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn in netns");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Take a child started elsewhere under the Net's care (killed on drop).
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    pub fn take_stdout(&mut self, pid: u32) -> Option<std::process::ChildStdout> {
        self.children
            .iter_mut()
            .find(|c| c.id() == pid)
            .and_then(|c| c.stdout.take())
    }

    /// hb-send on node `i` with extra arguments.
    pub fn send(&mut self, i: usize, extra: &[&str]) -> u32 {
        let mut args = self.common(i);
        args.extend([
            "--generation-file".into(),
            self.path(&format!("n{i}.gen")).display().to_string(),
        ]);
        args.extend(["--fifo".into(), self.path(&format!("n{i}.fifo")).display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let ns = self.ns(i).to_string();
        self.spawn(&ns, &bin("hb-send"), &args, Stdio::null())
    }

    /// hb-watch on node `i`; its events come through the returned Events.
    pub fn watch(&mut self, i: usize, extra: &[&str]) -> Events {
        let mut args = self.common(i);
        args.extend(extra.iter().map(|s| s.to_string()));
        let ns = self.ns(i).to_string();
        let pid = self.spawn(&ns, &bin("hb-watch"), &args, Stdio::piped());
        Events::new(self.take_stdout(pid).unwrap(), pid)
    }

    /// The events of an hb-watch started with [`Net::spawn`] and a piped stdout.
    pub fn watch_pid(&mut self, pid: u32) -> Events {
        Events::new(self.take_stdout(pid).unwrap(), pid)
    }

    pub fn kill(&mut self, pid: u32, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        if sig == nix::sys::signal::Signal::SIGKILL {
            if let Some(c) = self.children.iter_mut().find(|c| c.id() == pid) {
                let _ = c.wait();
            }
        }
    }

    /// Take node i's port on channel c down on the switch (a pulled cable).
    pub fn cut(&self, i: usize, c: usize) {
        self.ip(&self.switch, &["link", "set", &format!("n{i}c{c}"), "down"]);
    }

    pub fn mend(&self, i: usize, c: usize) {
        self.ip(&self.switch, &["link", "set", &format!("n{i}c{c}"), "up"]);
    }

    /// Load a ruleset into a namespace's nftables.
    pub fn nft(&self, ns: &str, ruleset: &str) {
        let f = self
            .dir
            .path()
            .join(format!("nft-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
        std::fs::write(&f, ruleset).unwrap();
        sh(&["ip", "netns", "exec", ns, "nft", "-f", &f.display().to_string()]);
    }
}

/// Looking at a node from outside: its MAC, its neighbour table, its addresses, and
/// whether it reaches an address.
impl Net {
    /// eth0's MAC, as `ip` prints it (aa:bb:...).
    pub fn mac(&self, node: usize) -> String {
        let out = Command::new("ip")
            .args(["-n", self.ns(node), "-br", "link", "show", "eth0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    }

    /// The MAC node's eth0 neighbour table has for `ip` (IPv4 or IPv6).
    pub fn neigh(&self, node: usize, ip: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["-n", self.ns(node), "neigh", "show", ip, "dev", "eth0"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_string)
    }

    /// Whether `cidr` (e.g. `10.77.1.100/24`) is configured on node's eth0.
    pub fn has_addr(&self, node: usize, cidr: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", self.ns(node), "addr", "show", "dev", "eth0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|w| w == cidr)
    }

    /// One ping from node to `ip` answered within a second (Debian's inetutils ping;
    /// ping6 for IPv6).
    pub fn pings(&self, node: usize, ip: &str) -> bool {
        let args: &[&str] = if ip.contains(':') {
            &["ping6", "-n", "-c", "1", "-w", "1"]
        } else {
            &["ping", "-c", "1", "-W", "1"]
        };
        Command::new("ip")
            .args(["netns", "exec", self.ns(node)])
            .args(args)
            .arg(ip)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

/// Run `f` on a thread that lives in namespace `ns` (sockets it makes are that
/// namespace's); its handle.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// Run `f` on a thread that lives in namespace `ns`, and wait for it.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in_netns(ns, f).join().unwrap()
}

/// Poll `f` until it holds or `within` passes; its last answer.
pub fn wait_for(mut f: impl FnMut() -> bool, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.nodes.iter().chain(std::iter::once(&self.switch)) {
            // Daemons that left our children (Heartbeat forks away) live on in our
            // namespaces: end them by the PIDs the namespace holds.
            for pid in netns_pids(ns) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The processes in network namespace `ns`.
pub fn netns_pids(ns: &str) -> Vec<i32> {
    let out = Command::new("ip").args(["netns", "pids", ns]).output();
    String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default())
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| !process_gone(*p))
        .collect()
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The event lines of one hb-watch.
pub struct Events {
    rx: Receiver<String>,
    pub seen: Vec<String>,
    pub pid: u32,
}

impl Events {
    pub fn new(out: std::process::ChildStdout, pid: u32) -> Events {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Events {
            rx,
            seen: Vec::new(),
            pid,
        }
    }

    /// Wait for an event line starting with `prefix` (e.g. "node-dead n2"); returns it.
    pub fn expect(&mut self, prefix: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        if let Some(l) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return l.clone();
        }
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(_) => panic!("no `{prefix}` event within {within:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Wait until `n` event lines starting with `prefix` have been seen (since the last clear).
    pub fn expect_n(&mut self, prefix: &str, n: usize, within: Duration) {
        let end = Instant::now() + within;
        while self.count(prefix) < n {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "fewer than {n} `{prefix}` events within {within:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Collect everything for a while.
    pub fn gather(&mut self, during: Duration) -> Vec<String> {
        let end = Instant::now() + during;
        let start = self.seen.len();
        while let Ok(l) = self.rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            self.seen.push(l);
        }
        self.seen[start..].to_vec()
    }

    /// Forget what was seen so far (the next expect waits for a new line).
    pub fn clear(&mut self) {
        while let Ok(l) = self.rx.try_recv() {
            self.seen.push(l);
        }
        self.seen.clear();
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.seen.iter().filter(|l| l.starts_with(prefix)).count()
    }
}

/// The value of `key=` in an event line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Whether process `pid` has ended: no `/proc/PID`, or only its zombie left.
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
    }
}

/// The pid a test's own script wrote to `file`, once it is there.
pub fn pid_in(file: &Path, within: Duration) -> i32 {
    let mut pid = None;
    wait_for(
        || {
            pid = std::fs::read_to_string(file).ok().and_then(|t| t.trim().parse().ok());
            pid.is_some()
        },
        within,
    );
    pid.unwrap_or_else(|| panic!("no pid in {}", file.display()))
}

/// End a process a test's own script started (by its pid, after checking that it
/// still runs `comm`), when the code under test failed to.
pub fn kill_leftover(pid: i32, comm: &str) {
    let now = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if now.trim() == comm {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// `+net_admin,+net_raw` from a unit's `AmbientCapabilities=` line.
pub fn unit_caps(unit: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd").join(unit);
    let text = std::fs::read_to_string(&p).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .unwrap_or_else(|| panic!("{unit} grants no capabilities"));
    line.split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `setpriv` arguments that become `nobody` with `caps` (empty: none at all).
pub fn as_nobody(caps: &str) -> Vec<String> {
    let mut a: Vec<String> = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !caps.is_empty() {
        a.extend(["--inh-caps".into(), caps.into(), "--ambient-caps".into(), caps.into()]);
    }
    a
}
