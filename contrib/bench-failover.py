#!/usr/bin/env python3
"""Failover benchmark in network namespaces made here (and removed on exit).

  sudo contrib/bench-failover.py detect      # node-dead latency after both links are cut
  sudo contrib/bench-failover.py carrier     # carrier loss to link-dead
  sudo contrib/bench-failover.py cost        # CPU and RSS at steady state, --help time
  sudo contrib/bench-failover.py soak [SECS] # no false alarms: load + 20 % loss on one channel

Two channels, two bridges in a "switch" namespace. Cuts are made by setting the node's
switch ports down with one rtnetlink datagram from inside the switch namespace, so the
cut instant is known to within microseconds (CLOCK_MONOTONIC, the clock hb-watch's
events carry). Latency is measured to the moment the event line is read from
hb-watch's stdout. Results go to stdout as plain lines; BENCHMARKS.md keeps them.
"""
import os, queue, random, signal, statistics, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
from nslab import mono, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HAKIT_BIN", os.path.join(ROOT, "target", "release"))
PFX = "hkb%d" % os.getpid()
MODE = os.environ.get("MODE", "bcast")  # the channels' kind: bcast or mcast
SW = PFX + "sw"
WORK = "/tmp/%s" % PFX
procs = []
namespaces = []


def topology(nodes, chans=2):
    namespaces.extend(nslab.topology(PFX, nodes, chans))


def cleanup(*_):
    for p in procs:
        try:
            p.kill(); p.wait(timeout=2)
        except Exception:
            pass
    nslab.remove(namespaces)
    subprocess.run(["rm", "-rf", WORK])


def spawn(ns, args, out=False):
    p = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE if out else subprocess.DEVNULL, text=True, bufsize=1)
    procs.append(p)
    return p


class Events:
    def __init__(self, proc):
        self.q = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            self.q.put((mono(), line.strip()))

    def wait(self, prefix, timeout):
        end = mono() + timeout
        while True:
            left = end - mono()
            if left <= 0:
                raise TimeoutError("no %r within %ss" % (prefix, timeout))
            try:
                t, line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return t, line

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                return out


def common(i, port=694, chans=2):
    a = ["--node", "n%d" % i, "--keys", WORK + "/authkeys", "--table", "%s/n%d.ast" % (WORK, i), "-q",
         "--port", str(port)]
    for c in range(chans):
        if MODE == "mcast":
            a += ["--channel", "%s=mcast:eth%d:225.0.0.%d" % ("ab"[c], c, c + 1)]
        else:
            a += ["--channel", "%s=bcast:eth%d" % ("ab"[c], c)]
    return a


def hb_send(i, ka, dt, extra=(), port=694):
    return spawn("%sn%d" % (PFX, i), [BIN + "/hb-send"] + common(i, port) + [
        "--keepalive", ka, "--deadtime", dt, "--no-fifo", "--generation-file", "%s/n%d.gen" % (WORK, i)] + list(extra))


def hb_watch(i, dt, extra=(), port=694):
    return spawn("%sn%d" % (PFX, i), [BIN + "/hb-watch"] + common(i, port) + ["--deadtime", dt] + list(extra), out=True)


def set_links(names, up):
    return nslab.set_ports(SW, names, up)


def detect(ka, dt, trials):
    topology(2)
    hb_send(1, ka, dt, ["--realtime"])
    w = hb_watch(1, dt, ["--realtime"])
    ev = Events(w)
    s2 = hb_send(2, ka, dt, ["--realtime"])
    ev.wait("node-up n2", 5)
    lat, decided = [], []
    for k in range(trials):
        time.sleep(0.3 + random.random() * 0.01)
        ev.drain()
        t0 = set_links(["n2c0", "n2c1"], False)
        t, line = ev.wait("node-dead n2", 5)
        lat.append((t - t0) * 1000)
        m = [w for w in line.split() if w.startswith("mono=")]
        if m:
            decided.append((int(m[0][5:]) / 1e6 - t0) * 1000)
        set_links(["n2c0", "n2c1"], True)
        ev.wait("node-up n2", 5)
    s2.kill()
    return lat, decided


def carrier(trials):
    topology(2)
    hb_send(1, "10ms", "10s")
    w = hb_watch(1, "10s")
    ev = Events(w)
    hb_send(2, "10ms", "10s")
    ev.wait("node-up n2", 5)
    lat = []
    for k in range(trials):
        time.sleep(0.3)
        ev.wait("", 0.2) if not ev.q.empty() else None
        ev.drain()
        t0 = set_links(["n1c1"], False)  # n1's own eth1 loses its carrier
        t, line = ev.wait("link-dead n2", 2)
        assert "reason=carrier" in line, line
        lat.append((t - t0) * 1000)
        set_links(["n1c1"], True)
        ev.wait("link-up n2", 5)
    return lat


def cpu_ns(pid):
    # /proc/PID/schedstat: nanoseconds on a CPU, from the scheduler's clock. utime and
    # stime in /proc/PID/stat are sampled at the tick, and a process that wakes on a
    # timer every 10 ms can be charged whole ticks it did not use.
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0])


def child_pid(p):
    # `ip netns exec` execs the tool: same pid.
    return p.pid


def wakeups(pid):
    with open("/proc/%d/status" % pid) as f:
        return sum(int(l.split()[1]) for l in f if "ctxt_switches" in l)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


FLOOR_C = r"""
#define _GNU_SOURCE
#include <poll.h>
#include <time.h>
int main(void) { struct timespec ts = {0, 10000000}; for (;;) ppoll(0, 0, &ts, 0); }
"""


def floor_process():
    """The cheapest possible 100 Hz waker (a C loop around ppoll), run beside the
    tools: what any process woken every 10 ms costs on this machine."""
    src, exe = WORK + "/floor.c", WORK + "/floor"
    with open(src, "w") as f:
        f.write(FLOOR_C)
    if subprocess.run(["cc", "-O2", "-o", exe, src]).returncode != 0:
        return None
    p = subprocess.Popen([exe])
    procs.append(p)
    return p


def cost(seconds):
    topology(2)
    s1 = hb_send(1, "10ms", "30ms")
    w1 = hb_watch(1, "30ms")
    Events(w1)
    hb_send(2, "10ms", "30ms")
    w2 = hb_watch(2, "30ms")
    Events(w2)
    # Keep both CPUs busy with SCHED_IDLE spinners (they yield to anything else): an
    # idle virtual CPU charges the exit from its halt to whatever it wakes for, which
    # measures the hypervisor, not the tools (see BENCHMARKS.md).
    if os.environ.get("IDLE_SPIN", "1") == "1":
        for _ in range(os.cpu_count()):
            procs.append(subprocess.Popen(["chrt", "-i", "0", "sh", "-c", "while :; do :; done"]))
    time.sleep(2)
    fl = floor_process()
    time.sleep(0.5)
    a0, b0, t0 = cpu_ns(child_pid(s1)), cpu_ns(child_pid(w1)), mono()
    f0 = cpu_ns(fl.pid) if fl else 0
    wa0, wb0 = wakeups(s1.pid), wakeups(w1.pid)
    time.sleep(seconds)
    a1, b1, t1 = cpu_ns(child_pid(s1)), cpu_ns(child_pid(w1)), mono()
    f1 = cpu_ns(fl.pid) if fl else 0
    wa1, wb1 = wakeups(s1.pid), wakeups(w1.pid)
    print("wake-ups per second: hb-send %.0f, hb-watch %.0f" % ((wa1 - wa0) / (t1 - t0), (wb1 - wb0) / (t1 - t0)))
    if fl:
        print("floor: an empty C loop woken every 10 ms, measured alongside: %.3f %% of one core"
              % ((f1 - f0) / 1e9 / (t1 - t0) * 100))
    el = t1 - t0
    send_pct = (a1 - a0) / 1e9 / el * 100
    watch_pct = (b1 - b0) / 1e9 / el * 100
    return send_pct, watch_pct, rss_kb(child_pid(w1)), rss_kb(child_pid(s1))


def help_time(n=30):
    out = {}
    for tool in ("hb-send", "hb-watch"):
        ts = []
        for _ in range(n):
            t = mono()
            subprocess.run([BIN + "/" + tool, "--help"], stdout=subprocess.DEVNULL)
            ts.append((mono() - t) * 1000)
        out[tool] = statistics.median(ts), max(ts)
    return out


def steal():
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")


def soak(seconds):
    """Two pairs on the same bridges: n1/n2 without redundancy (port 694), n3/n4 with
    --redundancy 2 (port 695). Channel b drops 20 % of frames at random; two busy
    loops per core saturate the CPUs; the tools run --realtime."""
    topology(4)
    rules = ("table bridge hkloss {\n chain loss {\n  type filter hook forward priority 0;\n"
             "  iifname { \"n1c1\", \"n2c1\", \"n3c1\", \"n4c1\" } numgen random mod 100 < 20 drop\n }\n}\n")
    with open(WORK + "/loss.nft", "w") as f:
        f.write(rules)
    sh("ip", "netns", "exec", SW, "nft", "-f", WORK + "/loss.nft")
    rt = ["--realtime"]
    watches = {}
    for (i, j, port, extra) in ((1, 2, 694, []), (3, 4, 695, ["--redundancy", "2"])):
        for n in (i, j):
            hb_send(n, "10ms", "30ms", rt + extra, port)
        watches[(i, j)] = Events(hb_watch(i, "30ms", rt, port))
    # Packets cross veth pairs and bridges in NET_RX softirq; under saturation the
    # kernel defers that work to ksoftirqd, an ordinary-priority thread. With
    # KSOFTIRQD_RT=1 those threads run SCHED_FIFO for the soak (restored after), as a
    # real-time cluster node would be tuned.
    ksoft = [int(p) for p in sh("pgrep", "-x", "ksoftirqd/[0-9]+", check=False).stdout.split()]
    if os.environ.get("KSOFTIRQD_RT") == "1":
        for p in ksoft:
            sh("chrt", "-f", "-p", "40", str(p), check=False)
    burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2 * os.cpu_count())]
    procs.extend(burners)
    time.sleep(2)
    for e in watches.values():
        e.drain()
    steal0 = steal()
    time.sleep(seconds)
    steal1 = steal()
    for b in burners:
        b.kill()
    for p in ksoft:
        sh("chrt", "-o", "-p", "0", str(p), check=False)
    print("steal time during the soak: %.2f s (time the hypervisor ran something else)" % (steal1 - steal0))
    res = {}
    for k, e in watches.items():
        lines = [l for _, l in e.drain()]
        res[k] = (sum(l.startswith("node-dead") for l in lines), sum(l.startswith("link-dead") for l in lines),
                  sum(l.startswith("link-late") for l in lines))
        for l in lines:
            if l.startswith("node-dead") or (k == (3, 4) and l.startswith("link-dead")):
                print("  n%d saw: %s" % (k[0], l))
    # Loss really happened: ask n1's table.
    st = sh("ip", "netns", "exec", PFX + "n1", BIN + "/hb-watch", "status", "n2", "--json", "--table", WORK + "/n1.ast")
    return res, st.stdout.strip()


def main():
    if os.geteuid() != 0:
        sys.exit("bench-failover: needs root (network namespaces)")
    mode = sys.argv[1] if len(sys.argv) > 1 else "detect"
    os.makedirs(WORK, exist_ok=True)
    with open(WORK + "/authkeys", "w") as f:
        f.write("auth 1\n1 sha256 bench-%d\n" % random.getrandbits(64))
    os.chmod(WORK + "/authkeys", 0o600)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        if mode == "detect":
            for ka, dt, target in (("10ms", "30ms", 35), ("2ms", "8ms", 10)):
                lat, dec = detect(ka, dt, int(os.environ.get("TRIALS", "20")))
                cleanup(); namespaces.clear(); procs.clear(); os.makedirs(WORK, exist_ok=True)
                with open(WORK + "/authkeys", "w") as f:
                    f.write("auth 1\n1 sha256 bench\n")
                os.chmod(WORK + "/authkeys", 0o600)
                print("detect keepalive=%s deadtime=%s trials=%d: node-dead printed after cut: median %.2f ms, "
                      "min %.2f, max %.2f (target <= %d ms); decided (event mono): median %.2f ms"
                      % (ka, dt, len(lat), statistics.median(lat), min(lat), max(lat), target,
                         statistics.median(dec) if dec else float("nan")))
        elif mode == "carrier":
            lat = carrier(int(os.environ.get("TRIALS", "20")))
            print("carrier loss to link-dead printed: median %.2f ms, min %.2f, max %.2f over %d trials (target < 5 ms)"
                  % (statistics.median(lat), min(lat), max(lat), len(lat)))
        elif mode == "cost":
            secs = int(sys.argv[2]) if len(sys.argv) > 2 else 60
            sp, wp, wrss, srss = cost(secs)
            print("cost keepalive=10ms, 2 channels, 2 nodes, %ds: hb-send %.3f %% + hb-watch %.3f %% = %.3f %% of one core "
                  "(target <= 0.3 %%); RSS hb-watch %d kB, hb-send %d kB (target < 10 MB)" % (secs, sp, wp, sp + wp, wrss, srss))
            for tool, (med, mx) in help_time().items():
                print("%s --help: median %.2f ms, max %.2f ms over 30 runs (target < 10 ms)" % (tool, med, mx))
        elif mode == "soak":
            secs = int(sys.argv[2]) if len(sys.argv) > 2 else 600
            res, st = soak(secs)
            for (i, j), (nd, ld, late) in res.items():
                print("soak %ds, n%d watching n%d%s: node-dead %d, link-dead %d, link-late %d"
                      % (secs, i, j, " (--redundancy 2)" if i == 3 else "", nd, ld, late))
            print("n1's view of n2 at the end: " + st)
        else:
            sys.exit(__doc__)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
