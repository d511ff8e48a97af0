#!/usr/bin/env python3
"""chan-switch benchmark (issue 11): the cluster-wide switch to the standby channel, in
network namespaces made here (and removed on exit, also on Ctrl-C or an error).

  sudo contrib/bench-chanswitch.py silent [TRIALS=20]   # n3's port on LAN a dropped at the switch
  sudo contrib/bench-chanswitch.py carrier [TRIALS=20]  # n3's port on LAN a set down (carrier loss)
  sudo contrib/bench-chanswitch.py flap [SECONDS=10]    # n3 on LAN a: 100 ms dropped, 100 ms passed
  sudo contrib/bench-chanswitch.py loss [SECONDS=600]   # 10 % random loss on LAN a, --redundancy 2
  sudo contrib/bench-chanswitch.py all                  # silent 20, carrier 20, flap 10, loss 60
  sudo contrib/bench-chanswitch.py --quick [MODE]       # smoke run: 3 trials, flap 2 s, loss 5 s
  ... --relay                                           # hb-watch's events through this script in
                                                        # every mode (always in loss): link-dead seen

Five nodes, two channels (eth0 = LAN a, eth1 = LAN b, bridges br0 and br1 in the switch
namespace), cluster address 10.77.100.<i>/32 on lo, rp_filter loose. On every node:
hb-send (--keepalive 10ms --deadtime 30ms --realtime), hb-watch (--deadtime 30ms
--realtime) piped into `chan-switch run` (--keepalive 10ms --deadtime 30ms --realtime), and during
a trial chan-probe (examples/chan-probe.rs) to every other node's cluster address every
1 ms. The probes are the measure: which LAN carried each pair's traffic, what was lost,
by send time on CLOCK_MONOTONIC (one clock for every namespace, the clock the event
lines' mono= carry, in µs). A silent cut's instant is the first lost probe's send time
over the pairs involving n3, not this script's clock (nft takes milliseconds to start);
a carrier cut's instant is when its rtnetlink datagram was sent.

flap runs chan-switch with --back 1s, so that the count includes the switch back once the
flapping is over; loss runs no probes (the soak counts switches and hb-watch's events).

Results go to stdout as plain lines (median / p90 / max over the trials); every trial
also prints a line to stderr. HAKIT_BIN: the binaries (default target/release, built
here first with `cargo build --release --bins --examples`), copied into the work
directory first, so that a build in the tree while this runs changes nothing. It is
/tmp/hkc<pid> (BENCH_TMP=/dev/shm puts it on a tmpfs): the FIFOs, the tables, the state
and status files are there, so its file system is part of what chan-switch's loop
costs. KEEP=1 keeps it, with every tool's log and event lines and the probe files.
"""
import json, math, os, shlex, shutil, signal, statistics, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
from nslab import mono, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HAKIT_BIN", os.path.join(ROOT, "target", "release"))
PROBE = os.path.join(BIN, "examples", "chan-probe")
PFX = "hkc%d" % os.getpid()
SW = PFX + "sw"
WORK = os.path.join(os.environ.get("BENCH_TMP", "/tmp"), PFX)
N = 5
CUT = 3  # the node whose LAN a fails
KA, DT = "10ms", "30ms"
KA_MS = 10
PORT = 7700
MS = 1_000_000
QUIET = 1.5  # seconds between trials: the decider's hold-down must be quiet

procs = []
namespaces = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def ns(i):
    return "%sn%d" % (PFX, i)


def cip(i):
    return "10.77.100.%d" % i


def lan_ip(i, c):
    return "10.77.%d.%d" % (c + 1, i)


DIR = [WORK]  # the current cluster's files (a fresh directory for each)


def path(name):
    return os.path.join(DIR[0], name)


# ---- processes ----

def spawn(where, args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, logname=None, text=False):
    err = open(path(logname), "w") if logname else subprocess.DEVNULL
    p = subprocess.Popen(["ip", "netns", "exec", where] + args, stdin=stdin, stdout=stdout, stderr=err,
                         text=text, bufsize=1 if text else 0)
    if logname:
        err.close()
    procs.append(p)
    return p


def stop(p, sig=signal.SIGKILL, timeout=2):
    """End one of our processes, by its PID (`ip netns exec` execs the tool: same pid)."""
    try:
        if p.poll() is None:
            p.send_signal(sig)
        p.wait(timeout=timeout)
    except Exception:
        pass


KEEP = os.environ.get("KEEP") == "1"
clusters = []


def cleanup(*_):
    for p in procs:
        stop(p)
    procs.clear()
    if KEEP:
        # Every event line, read time first, for a look afterwards.
        for c in clusters:
            for what, evs in (("chan-switch", c.events), ("hb-watch", c.watch)):
                for i, e in evs.items():
                    with open(os.path.join(c.dir, "n%d/%s.events" % (i, what)), "w") as f:
                        f.writelines("%d %s\n" % (t, l) for t, l in e.lines)
    clusters.clear()
    nslab.remove(namespaces)
    namespaces.clear()


def parse_event(line):
    """An event line, `EVENT SUBJECT key=value ...` → (event, subject, fields)."""
    try:
        w = shlex.split(line)
    except ValueError:
        w = line.split()
    if not w:
        return "", "", {}
    f = dict(x.split("=", 1) for x in w[2:] if "=" in x)
    return w[0], (w[1] if len(w) > 1 else ""), f


def ev_mono_ns(line):
    """The event's own mono= (µs) as ns."""
    return int(parse_event(line)[2]["mono"]) * 1000


class Events:
    """Every line one process printed, with the instant it was read. With `relay` (a
    pipe's write end) the bytes are written on as they come, before anything else."""

    def __init__(self, stream, relay=None):
        self.lines = []
        self.cv = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read, args=(stream, relay), daemon=True).start()

    def _read(self, stream, relay):
        fd = stream.fileno()
        buf = b""
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            t = mono_ns()
            if relay is not None:
                try:
                    os.write(relay, data)
                except OSError:
                    os.close(relay)
                    relay = None
            buf += data
            *whole, buf = buf.split(b"\n")
            with self.cv:
                self.lines.extend((t, l.decode(errors="replace")) for l in whole)
                self.cv.notify_all()
        if relay is not None:
            os.close(relay)
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def mark(self):
        with self.cv:
            return len(self.lines)

    def wait(self, prefix, timeout, start=0):
        """The first line from index `start` that begins with `prefix`: (index, line)."""
        end = mono() + timeout
        with self.cv:
            k = start
            while True:
                while k < len(self.lines):
                    if self.lines[k][1].startswith(prefix):
                        return k, self.lines[k][1]
                    k += 1
                left = end - mono()
                if left <= 0 or self.closed:
                    raise TimeoutError("no %r within %.1f s%s" % (prefix, timeout, " (closed)" if self.closed else ""))
                self.cv.wait(left)

    def since(self, start):
        with self.cv:
            return [l for _, l in self.lines[start:]]


class Cluster:
    made = 0

    def __init__(self, redundancy=False, relay=False, extra=()):
        Cluster.made += 1
        DIR[0] = os.path.join(WORK, "c%d" % Cluster.made)
        # A directory of each node's own, as each node has its /run/hakit: five nodes'
        # files in one directory would contend for its lock, which no cluster does.
        for i in range(1, N + 1):
            os.makedirs(os.path.join(DIR[0], "n%d" % i))
        self.dir = DIR[0]
        self.events, self.watch = {}, {}
        clusters.append(self)
        namespaces.extend(nslab.topology(PFX, N, 2))
        for i in range(1, N + 1):
            sh("ip", "-n", ns(i), "addr", "add", cip(i) + "/32", "dev", "lo")
            sh("ip", "netns", "exec", ns(i), "sysctl", "-qw",
               *["net.ipv4.conf.%s.rp_filter=2" % d for d in ("all", "default", "eth0", "eth1")])
        # self.events: chan-switch's stdout, per node; self.watch: hb-watch's, when relayed
        self.pids = {}
        members = []
        for j in range(1, N + 1):
            members += ["--member", "n%d=%s,%s,%s" % (j, cip(j), lan_ip(j, 0), lan_ip(j, 1))]
        for i in range(1, N + 1):
            common = ["--node", "n%d" % i, "--keys", os.path.join(WORK, "authkeys"), "--table", path("n%d/ast" % i), "-q",
                      "--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1"]
            send = spawn(ns(i), [BIN + "/hb-send"] + common + [
                "--keepalive", KA, "--deadtime", DT, "--realtime", "--fifo", path("n%d/fifo" % i),
                "--generation-file", path("n%d/gen" % i)] + (["--redundancy", "2"] if redundancy else []),
                logname="n%d/hb-send.log" % i)
            watch = spawn(ns(i), [BIN + "/hb-watch"] + common + [
                "--deadtime", DT, "--realtime", "--floors", path("n%d/floors" % i)],
                stdout=subprocess.PIPE, logname="n%d/hb-watch.log" % i)
            if relay:
                r, w = os.pipe()
                cs_in = r
            else:
                cs_in = watch.stdout
            cs = spawn(ns(i), [BIN + "/chan-switch", "run", "--node", "n%d" % i,
                               "--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1",
                               "--keepalive", KA, "--deadtime", DT, "--realtime",
                               "--fifo", path("n%d/fifo" % i), "--table", path("n%d/ast" % i),
                               "--state", path("n%d/chan.state" % i),
                               "--status-file", path("n%d/chan.json" % i)] + members + list(extra),
                       stdin=cs_in, stdout=subprocess.PIPE, logname="n%d/chan-switch.log" % i)
            if relay:
                os.close(r)
                self.watch[i] = Events(watch.stdout, relay=w)
            else:
                watch.stdout.close()  # chan-switch holds it now
            self.events[i] = Events(cs.stdout)
            self.pids[i] = (send, watch, cs)
        self.wait_healthy(10, "start")
        if self.status(1)["decider"] != "n1":
            raise RuntimeError("the decider is %s, not n1" % self.status(1)["decider"])
        # The decider decides nothing for 2 x deadtime after its start.
        time.sleep(0.3)

    def status(self, i):
        try:
            with open(path("n%d/chan.json" % i)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def healthy(self):
        """Every node hears every other on both channels, has its report, all on one use."""
        for i in range(1, N + 1):
            s = self.status(i)
            if not s:
                return False
            for j in range(1, N + 1):
                st = s["nodes"].get("n%d" % j)
                if not st or st["state"] != "up" or not st["reported"] or st["deaf"] or st["carrier_down"]:
                    return False
        return True

    def wait_healthy(self, timeout, what):
        end = mono() + timeout
        while not self.healthy():
            if mono() > end:
                self.dump()
                raise TimeoutError("%s: the cluster is not whole after %.0f s" % (what, timeout))
            time.sleep(0.01)

    def dump(self):
        for i in range(1, N + 1):
            s = self.status(i)
            if s:
                log("  n%d's status: use %s epoch %s decider %s; %s" % (i, s["use"], s["epoch"], s["decider"], " ".join(
                    "%s:%s/%s/%s%s" % (n, v["state"], v["active"] or "?", v["epoch"],
                                       ("/deaf=" + ",".join(v["deaf"])) if v["deaf"] else "")
                    for n, v in sorted(s["nodes"].items()))))
            for p in self.pids[i]:
                if p.poll() is not None:
                    log("  n%d: %s exited %s" % (i, p.args[3], p.returncode))

    def marks(self):
        return {i: e.mark() for i, e in self.events.items()}

    def back(self):
        """`chan-switch back` on n1 (exit 0 when every node applied it), then quiet."""
        r = subprocess.run(["ip", "netns", "exec", ns(1), BIN + "/chan-switch", "back", "--node", "n1",
                            "--status-file", path("n1/chan.json")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            self.dump()
            raise RuntimeError("chan-switch back: exit %d: %s" % (r.returncode, r.stdout.strip()))

    def uses(self):
        return {i: (self.status(i) or {}).get("use") for i in range(1, N + 1)}


# ---- the instrument: chan-probe and what its files say ----

class Probes:
    """chan-probe's files parsed, as tests/common/chan.rs does: per ordered pair the
    received probes by sequence (send time, interface), and the sender's last sequence."""

    def __init__(self, texts, start_ns, interval_ns=MS):
        self.start_ns, self.iv = start_ns, interval_ns
        self.recv, self.sent, self.stats = {}, {}, {}
        by = {}
        for me, text in texts.items():
            for line in text.splitlines():
                w = line.split()
                if not w:
                    continue
                if w[0] == "sent":
                    self.sent[(me, node_of(w[1]))] = int(w[2])
                elif w[0] == "stats":
                    self.stats[me] = {"skipped": int(w[2]), "maxlate_ns": int(w[4]), "overflow": int(w[6])}
                elif w[0] == "errors":
                    self.stats.setdefault(me, {}).setdefault("errors", []).append(" ".join(w[1:]))
                else:
                    by.setdefault((node_of(w[1]), me), {}).setdefault(int(w[2]), (int(w[4]), w[3], int(w[0])))
        for pair, d in by.items():
            self.recv[pair] = [(seq,) + d[seq] for seq in sorted(d)]  # (seq, send_ns, ifname, recv_ns)

    def pairs(self):
        return [(i, j) for i in range(1, N + 1) for j in range(1, N + 1) if i != j]

    def received(self, i, j):
        return self.recv.get((i, j), [])

    def last_sent(self, i, j):
        got = self.received(i, j)
        return self.sent.get((i, j), got[-1][0] if got else 0)

    def gaps(self, i, j):
        """Runs of lost sequences: (first_seq, lost, from_ns, to_ns), send times estimated
        from the received neighbours (pacing is regular) or by the interval at the ends."""
        got, iv, out = self.received(i, j), self.iv, []
        if not got:
            last = self.last_sent(i, j)
            if last:
                out.append((1, last, self.start_ns, self.start_ns + (last - 1) * iv))
            return out
        s0, t0 = got[0][0], got[0][1]
        if s0 > 1:
            out.append((1, s0 - 1, t0 - (s0 - 1) * iv, t0 - iv))
        for a, b in zip(got, got[1:]):
            if b[0] > a[0] + 1:
                est = lambda k: a[1] + (b[1] - a[1]) * (k - a[0]) // (b[0] - a[0])
                out.append((a[0] + 1, b[0] - a[0] - 1, est(a[0] + 1), est(b[0] - 1)))
        s1, t1 = got[-1][0], got[-1][1]
        last = self.last_sent(i, j)
        if last > s1:
            out.append((s1 + 1, last - s1, t1 + iv, t1 + (last - s1) * iv))
        return out

    def lost(self, i, j, from_ns, to_ns):
        n = 0
        for first, k, a, b in self.gaps(i, j):
            if b < from_ns or a >= to_ns:
                continue
            if a >= from_ns and b < to_ns:
                n += k
            else:
                n += sum(1 for m in range(k) if from_ns <= (a if k == 1 else a + (b - a) * m // (k - 1)) < to_ns)
        return n

    def first_on(self, i, j, ifname, after_ns):
        for seq, send, ifn, _ in self.received(i, j):
            if send >= after_ns and ifn == ifname:
                return send
        return None

    def all_on(self, ifname, after_ns, pairs=None):
        t = 0
        for i, j in pairs or self.pairs():
            f = self.first_on(i, j, ifname, after_ns)
            if f is None:
                return None
            t = max(t, f)
        return t

    def carried(self, i, j, from_ns, to_ns):
        m = {}
        for seq, send, ifn, _ in self.received(i, j):
            if from_ns <= send < to_ns:
                m[ifn] = m.get(ifn, 0) + 1
        return m

    def cut_instant(self, node, after_ns, least=3):
        """The send time of the first probe lost (in a run of at least `least`) at or
        after `after_ns`, over every pair involving `node`."""
        best = None
        for i, j in self.pairs():
            if node not in (i, j):
                continue
            for first, k, a, b in self.gaps(i, j):
                if a >= after_ns and k >= least:
                    best = a if best is None else min(best, a)
                    break
        return best

    def instrument(self):
        """What the probes say about themselves: skipped send slots, receive overflow."""
        bad = ["n%d %s" % (i, s) for i, s in sorted(self.stats.items())
               if s.get("skipped") or s.get("overflow") or s.get("errors")]
        return "; ".join(bad)


def node_of(ip):
    return int(ip.rsplit(".", 1)[1])


class ProbeRun:
    runs = 0

    def __init__(self):
        ProbeRun.runs += 1
        self.start_ns = mono_ns() + 100 * MS + 20 * MS * N
        self.files, self.procs = {}, {}
        for i in range(1, N + 1):
            f = path("n%d/probe%d.txt" % (i, ProbeRun.runs))
            to = ",".join(cip(j) for j in range(1, N + 1) if j != i)
            self.procs[i] = spawn(ns(i), [PROBE, "--bind", cip(i), "--port", str(PORT), "--to", to,
                                          "--interval", "1ms", "--out", f, "--start", str(self.start_ns)],
                                  logname="n%d/probe%d.log" % (i, ProbeRun.runs))
            self.files[i] = f
        end = mono() + 5
        while not self.flowing():
            if mono() > end:
                raise TimeoutError("chan-probe: not every pair's probes arrive within 5 s")
            time.sleep(0.02)

    def flowing(self):
        for j, f in self.files.items():
            try:
                with open(f) as fh:
                    text = fh.read()
            except OSError:
                return False
            if not all(" %s " % cip(i) in text for i in range(1, N + 1) if i != j):
                return False
        return True

    def stop(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for i, p in self.procs.items():
            try:
                rc = p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stop(p)
                raise RuntimeError("chan-probe on n%d did not stop on SIGTERM" % i)
            if rc != 0:
                raise RuntimeError("chan-probe on n%d exited %d" % (i, rc))
            procs.remove(p)
        texts = {}
        for i, f in self.files.items():
            with open(f) as fh:
                texts[i] = fh.read()
            if not KEEP:
                os.unlink(f)
        return Probes(texts, self.start_ns)


# ---- faults, at the switch ----

def nft(ruleset):
    f = path("rules.nft")
    with open(f, "w") as fh:
        fh.write(ruleset)
    sh("ip", "netns", "exec", SW, "nft", "-f", f)


CUT_RULES = ("table bridge hkcut {\n chain f {\n  type filter hook forward priority 0;\n"
             "  iifname \"n%dc0\" drop\n  oifname \"n%dc0\" drop\n }\n}\n" % (CUT, CUT))


def drop_port():
    nft(CUT_RULES)


def pass_port():
    sh("ip", "netns", "exec", SW, "nft", "delete", "table", "bridge", "hkcut")


# ---- figures ----

def p90(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def fig(xs, fmt="%.1f", unit=" ms"):
    if not xs:
        return "no trials"
    return ("median " + fmt + "%s, p90 " + fmt + ", max " + fmt) % (statistics.median(xs), unit, p90(xs), max(xs))


def med(xs, fmt="%.1f"):
    return fmt % statistics.median(xs) if xs else "-"


def applied_self(c, marks):
    """Each node's own chan-applied line since the marks: node → (mono ns, line)."""
    out = {}
    for i in range(1, N + 1):
        for l in c.events[i].since(marks[i]):
            if l.startswith("chan-applied n%d " % i):
                out[i] = (ev_mono_ns(l), l)
                break
    return out


def first_line(c, i, marks, prefix):
    for l in c.events[i].since(marks[i]):
        if l.startswith(prefix):
            return l
    return None


def link_dead(c, wmarks, after_ns):
    """With the relay: every node's first link-dead (channel a) since the marks."""
    out = {}
    for i, e in c.watch.items():
        for l in e.since(wmarks[i]):
            if l.startswith("link-dead "):
                t = ev_mono_ns(l)
                if t >= after_ns:
                    out[i] = min(out.get(i, t), t)
    return out


def silent(trials, relay):
    c = Cluster(relay=relay)
    res = {k: [] for k in ("flow", "spread", "lost", "worst", "proposed", "ordered", "first", "last", "took",
                           "n3flow", "others", "dead_first", "dead_last", "order_to_applied", "complete")}
    failed = 0
    for k in range(1, trials + 1):
        run = ProbeRun()
        time.sleep(0.2)
        marks = c.marks()
        wmarks = {i: e.mark() for i, e in c.watch.items()}
        t_cmd = mono_ns()
        drop_port()
        t_nft = mono_ns()
        try:
            c.events[1].wait("chan-complete b", 3, marks[1])
            for i in range(1, N + 1):
                c.events[i].wait("chan-applied n%d " % i, 3, marks[i])
        except TimeoutError as e:
            failed += 1
            log("silent %d: FAILED: %s" % (k, e))
            c.dump()
        time.sleep(0.3)
        p = run.stop()
        t0 = p.cut_instant(CUT, t_cmd)
        ap = applied_self(c, marks)
        if t0 is None or len(ap) < N:
            failed += 1
            log("silent %d: no cut seen in the probes (nft %.1f ms) or not applied everywhere (%s)"
                % (k, (t_nft - t_cmd) / MS, sorted(ap)))
        else:
            flow = p.all_on("eth1", t0)
            pairs = p.pairs()
            lost = {pr: p.lost(pr[0], pr[1], t0 - MS, p.start_ns + 10**12) for pr in pairs}
            ms = lambda t: (t - t0) / MS
            prop = first_line(c, 1, marks, "chan-proposed b")
            orde = first_line(c, 1, marks, "chan-ordered b")
            ts = sorted(t for t, _ in ap.values())
            took = [int(parse_event(l)[2].get("took_us", 0)) for _, l in ap.values()]
            by_sender = {i: max((p.first_on(i, j, "eth1", t0) or 0) for j in range(1, N + 1) if j != i)
                         for i in range(1, N + 1)}
            if flow is None:
                failed += 1
                log("silent %d: FAILED: a pair never had a probe over eth1 after the cut" % k)
            else:
                res["flow"].append(ms(flow))
            res["spread"].append((ts[-1] - ts[0]) / MS)
            res["lost"].append(sum(lost.values()))
            res["worst"].append(max(lost.values()))
            res["first"].append(ms(ts[0]))
            res["last"].append(ms(ts[-1]))
            res["took"].extend(took)
            res["n3flow"].append(ms(by_sender[CUT]))
            res["others"].append(max(ms(by_sender[i]) for i in by_sender if i != CUT))
            if prop:
                res["proposed"].append(ms(ev_mono_ns(prop)))
            if orde:
                res["ordered"].append(ms(ev_mono_ns(orde)))
                res["order_to_applied"].append((ts[-1] - ev_mono_ns(orde)) / MS)
            comp = first_line(c, 1, marks, "chan-complete b")
            if comp:
                res["complete"].append(int(parse_event(comp)[2]["took_us"]) / 1000)
            dead = link_dead(c, wmarks, t0)
            if dead:
                res["dead_first"].append(ms(min(dead.values())))
                res["dead_last"].append(ms(max(dead.values())))
            log("silent %d: t0=%d; cut %.1f ms after nft started; proposed %s ordered %s applied %s (took_us %s); "
                "eth1 from %s; every pair over eth1 %s ms; lost %d (worst pair %d)%s%s%s"
                % (k, t0, (t0 - t_cmd) / MS, "%.1f" % ms(ev_mono_ns(prop)) if prop else "-",
                   "%.1f" % ms(ev_mono_ns(orde)) if orde else "-",
                   " ".join("n%d=%.1f" % (i, ms(ap[i][0])) for i in sorted(ap)), ",".join(map(str, took)),
                   " ".join("n%d=%.1f" % (i, ms(by_sender[i])) for i in sorted(by_sender)),
                   "%.1f" % ms(flow) if flow else "never", sum(lost.values()), max(lost.values()),
                   ("; link-dead " + " ".join("n%d=%.1f" % (i, ms(t)) for i, t in sorted(dead.items())))
                   if dead else "",
                   ("; proposed as: " + prop.split(" ", 2)[2]) if prop and k == 1 else "",
                   ("; probes: " + p.instrument()) if p.instrument() else ""))
        pass_port()
        c.wait_healthy(5, "silent %d, healed" % k)
        c.back()
        time.sleep(QUIET)
    cleanup()
    n = len(res["flow"])
    tag = "silent%s (n3's port on LAN a dropped both ways, links up; %d nodes, keepalive %s, deadtime %s)" % (
        " --relay" if relay else "", N, KA, DT)
    print("%s, %d trials%s:" % (tag, n, (", %d FAILED" % failed) if failed else ""))
    print("  every pair over eth1, from the cut: %s (target <= 50 ms)" % fig(res["flow"]))
    print("  first to last node applying the order (chan-applied mono): %s (target <= %d ms, one keepalive)"
          % (fig(res["spread"], "%.2f"), KA_MS))
    print("  probes lost per switch, all 20 pairs: %s; worst pair: %s"
          % (fig(res["lost"], "%d", ""), fig(res["worst"], "%d", "")))
    print("  the chain, median ms after the cut: %sdecider's chan-proposed %s, chan-ordered %s, first applied %s, "
          "last applied %s (order to last applied %s); n3's probes over eth1 %s, the others' %s; "
          "rule change (took_us) median %s us, max %s us; every report back at the decider (chan-complete took_us) "
          "%s ms"
          % (("hb-watch link-dead first %s last %s, " % (med(res["dead_first"]), med(res["dead_last"])))
             if res["dead_first"] else "",
             med(res["proposed"]), med(res["ordered"]), med(res["first"]), med(res["last"]),
             med(res["order_to_applied"], "%.2f"), med(res["n3flow"]), med(res["others"]),
             med(res["took"], "%d"), max(res["took"]) if res["took"] else "-", med(res["complete"], "%.2f")))


def carrier(trials, relay):
    c = Cluster(relay=relay)
    res = {k: [] for k in ("own", "others", "all", "lost", "worst", "cevent", "proposed", "ordered", "last", "took")}
    failed = 0
    for k in range(1, trials + 1):
        run = ProbeRun()
        time.sleep(0.2)
        marks = c.marks()
        t0 = int(nslab.set_ports(SW, ["n%dc0" % CUT], False) * 1e9)
        try:
            c.events[CUT].wait("chan-carrier n%d" % CUT, 2, marks[CUT])
            c.events[1].wait("chan-complete b", 3, marks[1])
            for i in range(1, N + 1):
                c.events[i].wait("chan-applied n%d " % i, 3, marks[i])
        except TimeoutError as e:
            failed += 1
            log("carrier %d: FAILED: %s" % (k, e))
            c.dump()
        time.sleep(0.3)
        p = run.stop()
        ms = lambda t: (t - t0) / MS
        own = [p.first_on(CUT, j, "eth1", t0) for j in range(1, N + 1) if j != CUT]
        oth = [p.first_on(j, CUT, "eth1", t0) for j in range(1, N + 1) if j != CUT]
        if None in own or None in oth:
            failed += 1
            log("carrier %d: FAILED: probes to or from n%d never over eth1 (own %s, others %s)" % (k, CUT, own, oth))
        else:
            lost = {pr: p.lost(pr[0], pr[1], t0, p.start_ns + 10**12) for pr in p.pairs()}
            allf = p.all_on("eth1", t0)
            res["own"].append(ms(max(own)))
            res["others"].append(ms(max(oth)))
            if allf:
                res["all"].append(ms(allf))
            res["lost"].append(sum(lost.values()))
            res["worst"].append(max(lost.values()))
            ce = first_line(c, CUT, marks, "chan-carrier n%d" % CUT)
            prop = first_line(c, 1, marks, "chan-proposed b")
            orde = first_line(c, 1, marks, "chan-ordered b")
            ap = applied_self(c, marks)
            if ce:
                res["cevent"].append(ms(ev_mono_ns(ce)))
                res["took"].append(int(parse_event(ce)[2].get("took_us", 0)))
            if prop:
                res["proposed"].append(ms(ev_mono_ns(prop)))
            if orde:
                res["ordered"].append(ms(ev_mono_ns(orde)))
            if ap:
                res["last"].append(ms(max(t for t, _ in ap.values())))
            log("carrier %d: t0=%d; n%d's chan-carrier %s (took_us %s); decider proposed %s ordered %s; applied %s; "
                "n%d's probes over eth1 %s; the others' to n%d %s; every pair %s ms; lost %d (n%d->: %d, ->n%d: %d, "
                "worst pair %d)%s"
                % (k, t0, CUT, "%.2f" % ms(ev_mono_ns(ce)) if ce else "-", parse_event(ce)[2].get("took_us") if ce else "-",
                   "%.1f" % ms(ev_mono_ns(prop)) if prop else "-", "%.1f" % ms(ev_mono_ns(orde)) if orde else "-",
                   " ".join("n%d=%.1f" % (i, ms(ap[i][0])) for i in sorted(ap)), CUT,
                   " ".join("%.1f" % ms(t) for t in own), CUT, " ".join("%.1f" % ms(t) for t in oth),
                   "%.1f" % ms(allf) if allf else "never", sum(lost.values()), CUT,
                   sum(v for (i, j), v in lost.items() if i == CUT), CUT,
                   sum(v for (i, j), v in lost.items() if j == CUT), max(lost.values()),
                   ("; probes: " + p.instrument()) if p.instrument() else ""))
        nslab.set_ports(SW, ["n%dc0" % CUT], True)
        c.wait_healthy(5, "carrier %d, port up" % k)
        c.back()
        time.sleep(QUIET)
    cleanup()
    n = len(res["own"])
    print("carrier (n3's switch port on LAN a set down: n3's eth0 loses its carrier), %d trials%s:"
          % (n, (", %d FAILED" % failed) if failed else ""))
    print("  n3's probes to every peer over eth1: %s (target <= 5 ms)" % fig(res["own"], "%.2f"))
    print("  the others' probes to n3 over eth1: %s (target <= %d ms, 5 ms + one keepalive)"
          % (fig(res["others"], "%.2f"), 5 + KA_MS))
    print("  every pair over eth1: %s" % fig(res["all"], "%.2f"))
    print("  probes lost per switch, all 20 pairs: %s; worst pair: %s"
          % (fig(res["lost"], "%d", ""), fig(res["worst"], "%d", "")))
    print("  the chain, median ms after the port went down: n3's chan-carrier %s (its rule change %s us), "
          "decider's chan-proposed %s, chan-ordered %s, last node applied %s"
          % (med(res["cevent"], "%.2f"), med(res["took"], "%d"), med(res["proposed"]), med(res["ordered"]),
             med(res["last"])))


def flap(seconds, relay):
    back = 1.0
    c = Cluster(relay=relay, extra=["--back", "%dms" % (back * 1000)])
    run = ProbeRun()
    time.sleep(0.2)
    marks = c.marks()
    t_start = mono()
    t_start_ns = mono_ns()
    k, cuts = 0, 0
    while True:
        at = t_start + k * 0.2
        if at >= t_start + seconds:
            break
        time.sleep(max(0, at - mono()))
        drop_port()
        cuts += 1
        time.sleep(max(0, at + 0.1 - mono()))
        pass_port()
        k += 1
    t_end_ns = mono_ns()
    # After the flapping: healthy for --back, then back to a by itself (one more switch).
    try:
        c.events[1].wait("chan-switched-back a", back + 3, marks[1])
    except TimeoutError as e:
        log("flap: %s" % e)
    time.sleep(0.3)
    p = run.stop()
    lines = c.events[1].since(marks[1])
    count = lambda w: sum(1 for l in lines if l.startswith(w + " "))
    during = [l for l in lines if ev_mono_ns(l) < t_end_ns]
    sw_during = sum(1 for l in during if l.startswith(("chan-ordered ", "chan-switched-back ")))
    for l in lines:
        if not l.startswith("chan-applied"):
            log("flap: n1: " + l)
    pairs = p.pairs()
    lost = {pr: p.lost(pr[0], pr[1], t_start_ns, p.start_ns + 10**12) for pr in pairs}
    t_first = None
    o = first_line(c, 1, marks, "chan-ordered")
    if o:
        t_first = ev_mono_ns(o)
        lost_after = sum(p.lost(i, j, t_first + 50 * MS, p.start_ns + 10**12) for i, j in pairs)
    cut0 = p.cut_instant(CUT, t_start_ns)
    log("flap: %d cuts in %.1f s; first cut seen %.1f ms after the first nft; first order %s ms after it; "
        "lost %d, of which %s later than 50 ms after the first order%s"
        % (cuts, seconds, (cut0 - t_start_ns) / MS if cut0 else -1,
           "%.1f" % ((t_first - cut0) / MS) if t_first and cut0 else "-", sum(lost.values()),
           lost_after if o else "-", ("; probes: " + p.instrument()) if p.instrument() else ""))
    cleanup()
    sw = count("chan-ordered") + count("chan-switched-back")
    print("flap (n3's port on LAN a: 100 ms dropped, 100 ms passed, for %g s; --back %gs), 1 run:" % (seconds, back))
    print("  switches by the decider (chan-ordered + chan-switched-back): %d while flapping, %d with the switch back "
          "after it (target <= 2); chan-held-down %d, chan-proposed %d"
          % (sw_during, sw, count("chan-held-down"), count("chan-proposed")))
    print("  probes lost, all 20 pairs: %d; worst pair %d; after the first switch: %s"
          % (sum(lost.values()), max(lost.values()), lost_after if o else "-"))


LOSS_RULES = ("table bridge hkloss {\n chain f {\n  type filter hook forward priority 0;\n"
              "  iifname { %s } numgen random mod 100 < 10 drop\n }\n}\n"
              % ", ".join("\"n%dc0\"" % i for i in range(1, N + 1)))


def loss(seconds):
    c = Cluster(redundancy=True, relay=True)
    marks = c.marks()
    wmarks = {i: e.mark() for i, e in c.watch.items()}
    nft(LOSS_RULES)
    t0 = mono()
    while mono() < t0 + seconds:
        time.sleep(min(60, max(0, t0 + seconds - mono())))
        if mono() < t0 + seconds:
            log("loss: %.0f s" % (mono() - t0))
    sh("ip", "netns", "exec", SW, "nft", "delete", "table", "bridge", "hkloss")
    lines = c.events[1].since(marks[1])
    count = lambda w: sum(1 for l in lines if l.startswith(w + " "))
    for l in lines:
        if l.startswith(("chan-ordered", "chan-switched-back", "chan-proposed", "chan-held-down")):
            log("loss: n1: " + l)
    watched = {w: 0 for w in ("link-dead", "link-late", "node-dead")}
    for i, e in c.watch.items():
        for l in e.since(wmarks[i]):
            w = l.split(" ", 1)[0]
            if w in watched:
                watched[w] += 1
                if w != "link-late":
                    log("loss: n%d's hb-watch: %s" % (i, l))
    st = subprocess.run(["ip", "netns", "exec", ns(1), BIN + "/hb-watch", "status", "n2", "--json",
                         "--table", path("n1/ast")], stdout=subprocess.PIPE, text=True).stdout
    try:
        links = {l["channel"]: l for l in json.loads(st)["links"]}
        seen = "n1's view of n2: a lost %s duplicate %s, b lost %s duplicate %s" % (
            links["a"]["lost"], links["a"]["duplicate"], links["b"]["lost"], links["b"]["duplicate"])
    except (ValueError, KeyError, TypeError):
        seen = "n1's view of n2: " + st.strip()
    cleanup()
    sw = count("chan-ordered") + count("chan-switched-back")
    print("loss (10 %% of LAN a's frames dropped at random at the switch, hb-send --redundancy 2, %g s):" % seconds)
    print("  switches: %d (target 0); chan-proposed %d, chan-held-down %d" % (sw, count("chan-proposed"),
                                                                           count("chan-held-down")))
    print("  hb-watch on all %d nodes (relayed by this script): link-dead %d, node-dead %d, link-late %d"
          % (N, watched["link-dead"], watched["node-dead"], watched["link-late"]))
    print("  " + seen)


def build():
    """Build here; returns what the binaries were built from."""
    subprocess.run(["cargo", "build", "--release", "--bins", "--examples", "--quiet"], cwd=ROOT, check=True)
    git = lambda *a: subprocess.run(["git", "-C", ROOT] + list(a), stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "examples", "Cargo.toml", "Cargo.lock")
    return "built here at %s%s" % (git("rev-parse", "--short", "HEAD"),
                                   " with uncommitted changes (%s)" % " ".join(l.split()[-1] for l in dirty.splitlines())
                                   if dirty else "")


def snapshot():
    """The binaries copied into the work directory, so that a build in the tree while
    this runs (the tree is shared) does not change them between two clusters."""
    global BIN, PROBE
    to = os.path.join(WORK, "bin")
    os.makedirs(to)
    for b in ("hb-send", "hb-watch", "chan-switch"):
        shutil.copy2(os.path.join(BIN, b), to)
    shutil.copy2(PROBE, to)
    BIN, PROBE = to, os.path.join(to, "chan-probe")


def main():
    if os.geteuid() != 0:
        sys.exit("bench-chanswitch: needs root (network namespaces)")
    args = sys.argv[1:]
    quick = "--quick" in args
    relay = "--relay" in args
    args = [a for a in args if a not in ("--quick", "--relay")]
    mode = args[0] if args else ("all" if quick else None)
    num = int(args[1]) if len(args) > 1 else None
    if mode not in ("silent", "carrier", "flap", "loss", "all"):
        sys.exit(__doc__)
    source = "HAKIT_BIN=%s" % BIN if "HAKIT_BIN" in os.environ else build()
    for b in ("hb-send", "hb-watch", "chan-switch"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit("bench-chanswitch: no %s in %s" % (b, BIN))
    if not os.access(PROBE, os.X_OK):
        sys.exit("bench-chanswitch: no %s" % PROBE)
    # Ctrl-C even when started where SIGINT is ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    signal.signal(signal.SIGHUP, lambda *a: sys.exit(1))
    started = mono()
    os.makedirs(WORK)
    try:
        keys = os.path.join(WORK, "authkeys")
        with open(keys, "w") as f:
            f.write("auth 1\n1 sha256 bench-%s\n" % os.urandom(8).hex())
        os.chmod(keys, 0o600)
        snapshot()
        print("binaries: %s" % source)
        print("load average at start: %.2f %.2f %.2f (%d CPUs)" % (os.getloadavg() + (os.cpu_count(),)), flush=True)
        plan = {
            "silent": [("silent", num or (3 if quick else 20))],
            "carrier": [("carrier", num or (3 if quick else 20))],
            "flap": [("flap", num or (2 if quick else 10))],
            "loss": [("loss", num or (5 if quick else 600))],
            "all": [("silent", 3 if quick else 20), ("carrier", 3 if quick else 20), ("flap", 2 if quick else 10),
                    ("loss", 5 if quick else 60)],
        }[mode]
        for what, n in plan:
            if what == "silent":
                silent(n, relay)
            elif what == "carrier":
                carrier(n, relay)
            elif what == "flap":
                flap(n, relay)
            else:
                loss(n)
            sys.stdout.flush()
    finally:
        cleanup()
        if KEEP:
            log("work directory kept: " + WORK)
        else:
            subprocess.run(["rm", "-rf", WORK])
    print("load average at end: %.2f %.2f %.2f; %.0f s in all" % (os.getloadavg() + (mono() - started,)))


if __name__ == "__main__":
    main()
