//! The chan-switch lab and its instrument: nodes on two LANs (eth0 = a, eth1 = b) with a
//! cluster address 10.77.100.<i>/32 on lo each, chan-probe (examples/chan-probe.rs)
//! sending a numbered UDP probe every interval between every pair of cluster addresses,
//! and the analysis of what arrived: which LAN carried each pair's probes and how many
//! were lost, by send time (CLOCK_MONOTONIC, one clock for every namespace, so a test's
//! own `mono_ns()` marks compare with the probes' times).

use super::{example, process_gone, sh, wait_for, Net};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

pub const PORT: u16 = 7700;
pub const INTERVAL_NS: u64 = 1_000_000;
/// How far from `around` a run of losses may be for [`Probes::gap`].
pub const NEAR_NS: u64 = 1_000_000_000;

pub fn cluster_ip(i: usize) -> String {
    format!("10.77.100.{i}")
}

/// Node i's address on LAN c (0 = eth0, 1 = eth1).
pub fn lan_ip(i: usize, c: usize) -> String {
    format!("10.77.{}.{i}", c + 1)
}

pub fn mono_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

pub struct ChanLab {
    pub net: Net,
    pub n: usize,
}

impl ChanLab {
    pub fn new(n: usize) -> ChanLab {
        let net = Net::new(n, 2);
        for i in 1..=n {
            let ns = net.ns(i).to_string();
            net.ip(&ns, &["addr", "add", &format!("{}/32", cluster_ip(i)), "dev", "lo"]);
            // Loose: after a switch, a peer's probes may come in on the LAN this node does
            // not route back over; strict reverse-path filtering would drop them.
            let mut args = vec!["ip", "netns", "exec", &ns, "sysctl", "-qw"];
            let keys: Vec<String> = ["all", "default", "eth0", "eth1"]
                .iter()
                .map(|d| format!("net.ipv4.conf.{d}.rp_filter=2"))
                .collect();
            args.extend(keys.iter().map(String::as_str));
            sh(&args);
        }
        ChanLab { net, n }
    }

    pub fn ns(&self, i: usize) -> &str {
        self.net.ns(i)
    }

    /// `ip ARGS` in node i.
    pub fn ip(&self, i: usize, args: &[&str]) {
        self.net.ip(self.net.ns(i), args);
    }

    /// chan-probe in every node, to every other node's cluster address, every 1 ms.
    pub fn probes(&mut self) -> ProbeRun {
        self.probes_every(INTERVAL_NS)
    }

    /// Returns once every pair's probes arrive (panics after 5 s): a run's losses are
    /// the network's from its start on.
    pub fn probes_every(&mut self, interval_ns: u64) -> ProbeRun {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let bin = example("chan-probe");
        // One first deadline for all, after every receiver has bound its socket (spawning
        // through `ip netns exec` takes a few ms a node).
        let start_ns = mono_ns() + 100_000_000 + 20_000_000 * self.n as u64;
        let mut pids = Vec::new();
        let mut files = Vec::new();
        for i in 1..=self.n {
            let to: Vec<String> = (1..=self.n).filter(|&j| j != i).map(cluster_ip).collect();
            let out = self.net.path(&format!("probe{run}-n{i}.txt"));
            let args = [
                "--bind".into(),
                cluster_ip(i),
                "--port".into(),
                PORT.to_string(),
                "--to".into(),
                to.join(","),
                "--interval".into(),
                format!("{interval_ns}ns"),
                "--out".into(),
                out.display().to_string(),
                "--start".into(),
                start_ns.to_string(),
            ];
            let ns = self.ns(i).to_string();
            pids.push(self.net.spawn(&ns, &bin, &args, Stdio::null()));
            files.push(out);
        }
        let run = ProbeRun {
            n: self.n,
            pids,
            files,
            start_ns,
            interval_ns,
        };
        let flowing = wait_for(
            || {
                (1..=run.n).all(|j| {
                    let text = std::fs::read_to_string(&run.files[j - 1]).unwrap_or_default();
                    (1..=run.n)
                        .filter(|&i| i != j)
                        .all(|i| text.contains(&format!(" {} ", cluster_ip(i))))
                })
            },
            Duration::from_secs(5),
        );
        assert!(flowing, "chan-probe: not every pair's probes arrive within 5 s");
        run
    }
}

/// Running chan-probes (killed with the lab's Net if never stopped).
pub struct ProbeRun {
    pub n: usize,
    pub pids: Vec<u32>,
    pub files: Vec<PathBuf>,
    /// The first send deadline, common to all nodes.
    pub start_ns: u64,
    pub interval_ns: u64,
}

impl ProbeRun {
    /// SIGTERM to each (by PID), wait for their exit (status 0), read their files.
    pub fn stop(self) -> Probes {
        for &pid in &self.pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for &pid in &self.pids {
            assert!(
                wait_for(|| process_gone(pid as i32), Duration::from_secs(5)),
                "chan-probe {pid} did not stop on SIGTERM"
            );
            // The Net still holds the child, unreaped: its zombie tells the status.
            if let Some(code) = exit_code(pid) {
                assert_eq!(code, 0, "chan-probe {pid} exited with wait status {code}");
            }
        }
        let texts: Vec<String> = self
            .files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
            .collect();
        Probes::parse(self.n, self.interval_ns, self.start_ns, &texts)
    }
}

/// A zombie's wait status (field 52 of /proc/PID/stat).
fn exit_code(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(49)?.parse().ok()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recv {
    pub recv_ns: u64,
    pub seq: u64,
    pub ifname: String,
    pub send_ns: u64,
}

/// A run of consecutive lost sequence numbers. Send times of lost probes are estimated
/// from their received neighbours (pacing is regular), or by the interval at the ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub first_seq: u64,
    pub lost: usize,
    /// Estimated send times of the first and the last lost probe.
    pub from_ns: u64,
    pub to_ns: u64,
    /// Send times of the probes received just before and just after (the outage as the
    /// network showed it is `first_after - last_before`).
    pub last_before: Option<u64>,
    pub first_after: Option<u64>,
}

/// What one chan-probe said about itself on exit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeStats {
    /// Send slots given up after a late wake-up.
    pub skipped: u64,
    pub max_late_ns: u64,
    /// Probes dropped from its own full receive queue.
    pub overflow: u64,
    /// (destination node, errno name) → sends refused.
    pub errors: BTreeMap<(usize, String), u64>,
}

pub struct Probes {
    pub n: usize,
    pub interval_ns: u64,
    pub start_ns: u64,
    /// Per node, index node - 1.
    pub stats: Vec<ProbeStats>,
    /// (src, dst) → received probes by sequence, one per sequence.
    recv: BTreeMap<(usize, usize), Vec<Recv>>,
    dups: BTreeMap<(usize, usize), usize>,
    sent: BTreeMap<(usize, usize), u64>,
}

fn node_of(ip: &str) -> usize {
    ip.strip_prefix("10.77.100.")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("probe from {ip}, not a cluster address"))
}

impl Probes {
    /// `texts[i - 1]` is node i's chan-probe file.
    pub fn parse(n: usize, interval_ns: u64, start_ns: u64, texts: &[String]) -> Probes {
        let mut p = Probes {
            n,
            interval_ns,
            start_ns,
            stats: vec![ProbeStats::default(); n],
            recv: BTreeMap::new(),
            dups: BTreeMap::new(),
            sent: BTreeMap::new(),
        };
        for (idx, text) in texts.iter().enumerate() {
            let me = idx + 1;
            for line in text.lines() {
                let w: Vec<&str> = line.split_whitespace().collect();
                let num = |k: usize| -> u64 {
                    w.get(k)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("node {me}: bad line {line:?}"))
                };
                match w.first().copied() {
                    None => {}
                    Some("sent") => {
                        p.sent.insert((me, node_of(w[1])), num(2));
                    }
                    Some("errors") => {
                        p.stats[idx].errors.insert((node_of(w[1]), w[2].to_string()), num(3));
                    }
                    Some("stats") => {
                        p.stats[idx].skipped = num(2);
                        p.stats[idx].max_late_ns = num(4);
                        p.stats[idx].overflow = num(6);
                    }
                    Some(_) => {
                        let r = Recv {
                            recv_ns: num(0),
                            seq: num(2),
                            ifname: w[3].to_string(),
                            send_ns: num(4),
                        };
                        p.recv.entry((node_of(w[1]), me)).or_default().push(r);
                    }
                }
            }
        }
        for (pair, v) in p.recv.iter_mut() {
            v.sort_by_key(|r| (r.seq, r.recv_ns));
            let before = v.len();
            v.dedup_by_key(|r| r.seq);
            if v.len() < before {
                p.dups.insert(*pair, before - v.len());
            }
        }
        p
    }

    /// Ordered pairs (src, dst) of distinct nodes.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        let n = self.n;
        (1..=n)
            .flat_map(|i| (1..=n).filter(move |&j| j != i).map(move |j| (i, j)))
            .collect()
    }

    pub fn received(&self, i: usize, j: usize) -> &[Recv] {
        self.recv.get(&(i, j)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The last sequence i sent to j (its `sent` line; without one, the last received).
    pub fn sent(&self, i: usize, j: usize) -> u64 {
        self.sent
            .get(&(i, j))
            .copied()
            .unwrap_or_else(|| self.received(i, j).last().map_or(0, |r| r.seq))
    }

    pub fn duplicates(&self, i: usize, j: usize) -> usize {
        self.dups.get(&(i, j)).copied().unwrap_or(0)
    }

    /// i → j probes sent in [from_ns, to_ns), by the interface they arrived on.
    pub fn carried(&self, i: usize, j: usize, from_ns: u64, to_ns: u64) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in self.received(i, j) {
            if (from_ns..to_ns).contains(&r.send_ns) {
                *m.entry(r.ifname.clone()).or_default() += 1;
            }
        }
        m
    }

    /// Every run of lost i → j sequences, in order (leading, between received probes,
    /// and trailing up to the sender's last sequence).
    pub fn gaps(&self, i: usize, j: usize) -> Vec<Gap> {
        let got = self.received(i, j);
        let last = self.sent(i, j);
        let iv = self.interval_ns;
        let mut out = Vec::new();
        let mut run = |first: u64, end: u64, est: &dyn Fn(u64) -> u64, before: Option<u64>, after: Option<u64>| {
            if first <= end {
                out.push(Gap {
                    first_seq: first,
                    lost: (end - first + 1) as usize,
                    from_ns: est(first),
                    to_ns: est(end),
                    last_before: before,
                    first_after: after,
                });
            }
        };
        match got.first() {
            None => run(1, last, &|k| self.start_ns + (k - 1) * iv, None, None),
            Some(f) => run(
                1,
                f.seq - 1,
                &|k| f.send_ns.saturating_sub((f.seq - k) * iv),
                None,
                Some(f.send_ns),
            ),
        }
        for w in got.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            // Linear between the neighbours: exact for regular pacing.
            let est = |k: u64| a.send_ns + (b.send_ns - a.send_ns) * (k - a.seq) / (b.seq - a.seq);
            run(a.seq + 1, b.seq - 1, &est, Some(a.send_ns), Some(b.send_ns));
        }
        if let Some(l) = got.last() {
            run(
                l.seq + 1,
                last,
                &|k| l.send_ns + (k - l.seq) * iv,
                Some(l.send_ns),
                None,
            );
        }
        out
    }

    /// i → j probes sent in [from_ns, to_ns) (estimated send time) that never arrived.
    pub fn lost(&self, i: usize, j: usize, from_ns: u64, to_ns: u64) -> usize {
        self.gaps(i, j)
            .iter()
            .filter(|g| g.to_ns >= from_ns && g.from_ns < to_ns)
            .map(|g| {
                if g.from_ns >= from_ns && g.to_ns < to_ns {
                    return g.lost;
                }
                // Partly inside: count by the run's (evenly spread) estimated times.
                (0..g.lost as u64)
                    .filter(|&k| {
                        let t = if g.lost == 1 {
                            g.from_ns
                        } else {
                            g.from_ns + (g.to_ns - g.from_ns) * k / (g.lost as u64 - 1)
                        };
                        (from_ns..to_ns).contains(&t)
                    })
                    .count()
            })
            .sum()
    }

    /// The send time of the first i → j probe sent at or after `after_ns` that arrived on
    /// `ifname`.
    pub fn first_on(&self, i: usize, j: usize, ifname: &str, after_ns: u64) -> Option<u64> {
        self.received(i, j)
            .iter()
            .find(|r| r.send_ns >= after_ns && r.ifname == ifname)
            .map(|r| r.send_ns)
    }

    /// The latest of [`Probes::first_on`] over every pair: from then on every pair has
    /// had probes over that LAN. None if a pair never had one.
    pub fn all_on(&self, ifname: &str, after_ns: u64) -> Option<u64> {
        self.pairs()
            .into_iter()
            .map(|(i, j)| self.first_on(i, j, ifname, after_ns))
            .try_fold(0, |acc, t| t.map(|t| acc.max(t)))
    }

    /// The send time from which every i → j probe received (sent at or after
    /// `after_ns`) came in on `ifname`: unlike first_on, a flap back counts.
    pub fn settled_on(&self, i: usize, j: usize, ifname: &str, after_ns: u64) -> Option<u64> {
        let got: Vec<&Recv> = self.received(i, j).iter().filter(|r| r.send_ns >= after_ns).collect();
        let tail = got.iter().rev().take_while(|r| r.ifname == ifname).count();
        (tail > 0).then(|| got[got.len() - tail].send_ns)
    }

    /// The latest of [`Probes::settled_on`] over every pair.
    pub fn all_settled_on(&self, ifname: &str, after_ns: u64) -> Option<u64> {
        self.pairs()
            .into_iter()
            .map(|(i, j)| self.settled_on(i, j, ifname, after_ns))
            .try_fold(0, |acc, t| t.map(|t| acc.max(t)))
    }

    /// The longest run of lost i → j probes within [`NEAR_NS`] of `around_ns`.
    pub fn gap(&self, i: usize, j: usize, around_ns: u64) -> Option<Gap> {
        let (lo, hi) = (around_ns.saturating_sub(NEAR_NS), around_ns + NEAR_NS);
        self.gaps(i, j)
            .into_iter()
            .filter(|g| g.to_ns >= lo && g.from_ns <= hi)
            .max_by_key(|g| g.lost)
    }

    /// One line per pair for assertion messages: carried by LAN and lost in the window.
    pub fn summary(&self, from_ns: u64, to_ns: u64) -> String {
        let mut s = String::new();
        for (i, j) in self.pairs() {
            let by: Vec<String> = self
                .carried(i, j, from_ns, to_ns)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s += &format!(
                "n{i}->n{j}: {} lost={}\n",
                by.join(" "),
                self.lost(i, j, from_ns, to_ns)
            );
        }
        s
    }
}
