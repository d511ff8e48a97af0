#!/usr/bin/env python3
"""mon-check's figures, measured in a network namespace this script makes and removes.

  sudo contrib/bench-mon.py round [RUNS]    1,000 tcp checks in one scheduler round: a
                                            third answering, a third refused, a third
                                            dropped by nftables; timeout 1 s
  sudo contrib/bench-mon.py oneshot [RUNS]  one-shot `mon-check tcp` against a local
                                            port, the whole process, beside check_tcp
  sudo contrib/bench-mon.py mon             the same 100 checks run by Debian's mon
                                            (tcp.monitor) and by mon-check
  sudo contrib/bench-mon.py idle [SECS]     the scheduler's CPU between rounds

Wall times are from spawn to exit (os.wait4), CPU is the process's and its children's
user+system time from the same wait4. Every packet stays in the namespace."""
import json, os, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "mon-check")
CHECK_TCP = "/usr/lib/nagios/plugins/check_tcp"

LISTENER = r"""
import socket, sys, time
socks = []
for p in range(int(sys.argv[1]), int(sys.argv[2])):
    s = socket.socket(socket.AF_INET6 if ':' in sys.argv[3] else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[3], p))
    s.listen(4096)   # the kernel completes the handshakes; nothing needs accepting
    socks.append(s)
print("ready", flush=True)
time.sleep(10**6)
"""


def build():
    subprocess.run(["cargo", "build", "--release", "--bin", "mon-check"], cwd=ROOT, check=True)


def spawn_wait(argv, **kw):
    """Run argv; (wall seconds, cpu seconds, exit code)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, p.returncode


class Lab:
    """One namespace with its loopback up, removed on exit, and the processes started
    in it ended by PID."""

    def __init__(self):
        self.ns = "hkmon%d" % os.getpid()
        self.procs = []
        nslab.sh("ip", "netns", "add", self.ns)
        nslab.sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.dir = tempfile.mkdtemp(prefix="bench-mon.")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        nslab.remove([self.ns])
        subprocess.run(["rm", "-rf", self.dir])

    def exec(self, argv):
        return ["ip", "netns", "exec", self.ns] + argv

    def listen(self, first, end, addr="127.0.0.1"):
        p = subprocess.Popen(self.exec(["python3", "-c", LISTENER, str(first), str(end), addr]), stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout.readline().strip() == "ready"

    def nft(self, rules):
        path = os.path.join(self.dir, "rules.nft")
        with open(path, "w") as f:
            f.write(rules)
        nslab.sh("ip", "netns", "exec", self.ns, "nft", "-f", path)

    def path(self, name):
        return os.path.join(self.dir, name)


def yaml_services(ports, monitor, alert=None):
    lines = ["mon-check:", "  hostgroups:", "    local: [127.0.0.1]", "  watches:", "    local:"]
    for p in ports:
        lines += ["      p%d:" % p, "        interval: 1h", "        monitor: %s" % monitor.format(port=p)]
        if alert:
            lines += ["        periods:", "          - alert: %s" % alert]
    return "\n".join(lines) + "\n"


def round_(runs):
    with Lab() as lab:
        # 20000-20332 answer, 20333-20666 refuse, 20667-20999 vanish.
        lab.listen(20000, 20333)
        lab.nft("table inet bench {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 20667-20999 drop\n }\n}\n")
        cfg = lab.path("round.yaml")
        with open(cfg, "w") as f:
            f.write(yaml_services(range(20000, 21000), "tcp -p {port} -t 1"))
            f.write("  state-dir: %s\n" % lab.path("state"))
        walls, cpus = [], []
        for i in range(runs):
            wall, cpu, code = spawn_wait(lab.exec([BIN, "run", "--once", "-q", "-c", cfg]), stdout=subprocess.DEVNULL)
            st = json.load(open(os.path.join(lab.path("state"), "state.json")))
            lines = [s["hosts"]["127.0.0.1"]["line"] for s in st["services"].values()]
            ok = sum(1 for l in lines if l.startswith("TCP OK"))
            refused = sum(1 for l in lines if "Connection refused" in l)
            timeout = sum(1 for l in lines if "Socket timeout" in l)
            print("run %d: wall %.3f s, cpu %.3f s, exit %d; %d OK, %d refused, %d timed out" % (i + 1, wall, cpu, code, ok, refused, timeout))
            assert (ok, refused, timeout) == (333, 334, 333), (ok, refused, timeout)
            walls.append(wall)
            cpus.append(cpu)
        print("1000 checks, one round: wall median %.3f s (min %.3f, max %.3f), cpu median %.3f s (max %.3f)" % (
            statistics.median(walls), min(walls), max(walls), statistics.median(cpus), max(cpus)))


def oneshot(runs):
    with Lab() as lab:
        lab.listen(21000, 21001)
        res = {}
        for name, argv in [("mon-check", [BIN, "tcp", "-H", "127.0.0.1", "-p", "21000"]),
                           ("check_tcp", [CHECK_TCP, "-H", "127.0.0.1", "-p", "21000"])]:
            res[name] = []
        # Run inside the namespace without `ip netns exec` in the timing: move this
        # thread there, then spawn (the child inherits the namespace).
        def work():
            nslab.setns(lab.ns)
            for _ in range(runs):
                for name, argv in [("mon-check", [BIN, "tcp", "-H", "127.0.0.1", "-p", "21000"]),
                                   ("check_tcp", [CHECK_TCP, "-H", "127.0.0.1", "-p", "21000"])]:
                    wall, cpu, code = spawn_wait(argv, stdout=subprocess.DEVNULL)
                    assert code == 0, (name, code)
                    res[name].append((wall, cpu))
        t = threading.Thread(target=work)
        t.start()
        t.join()
        for name, v in res.items():
            w = sorted(x[0] * 1000 for x in v)
            c = sorted(x[1] * 1000 for x in v)
            print("%-9s  %d runs: wall median %.2f ms (p10 %.2f, p90 %.2f), cpu median %.2f ms" % (
                name, len(v), statistics.median(w), w[len(w) // 10], w[len(w) * 9 // 10], statistics.median(c)))


def mon_vs():
    with Lab() as lab:
        # 100 refused ports: every check fails, and every service's alert appends one
        # line, which is how the end of the round is seen for mon, which never exits.
        ports = range(22000, 22100)
        alertdir = lab.path("alert.d")
        os.makedirs(alertdir)
        hits = lab.path("hits")
        with open(os.path.join(alertdir, "hit.alert"), "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\necho \"$4\" >> %s\n" % hits)
        os.chmod(os.path.join(alertdir, "hit.alert"), 0o755)
        rows = []
        # Debian's mon with its tcp.monitor
        for sub in ["state", "log"]:
            os.makedirs(lab.path(sub))
        cf = ["alertdir = %s" % alertdir, "mondir = /usr/lib/mon/mon.d", "authfile = /etc/mon/auth.cf",
              "statedir = %s" % lab.path("state"), "logdir = %s" % lab.path("log"), "cfbasedir = %s" % lab.dir,
              "serverbind = 127.0.0.1", "trapbind = 127.0.0.1", "dtlogging = no",
              # timers start at int(rand(1)) = 0: every service runs at start, as
              # mon-check's do (without it mon waits one interval first)
              "randstart = 1s", "",
              "hostgroup local 127.0.0.1", "", "watch local"]
        for p in ports:
            cf += ["    service p%d" % p, "        interval 1h", "        monitor tcp.monitor -p %d" % p,
                   "        period", "            alert hit.alert"]
        with open(lab.path("mon.cf"), "w") as f:
            f.write("\n".join(cf) + "\n")
        open(hits, "w").close()
        t = time.perf_counter()
        p = subprocess.Popen(lab.exec(["/usr/sbin/mon", "-c", lab.path("mon.cf")]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while sum(1 for _ in open(hits)) < 100:
            time.sleep(0.005)
            assert time.perf_counter() - t < 120, "mon did not finish"
        wall = time.perf_counter() - t
        p.terminate()
        _, _, ru = os.wait4(p.pid, 0)
        rows.append(("mon 1.3.6 + tcp.monitor", wall, ru.ru_utime + ru.ru_stime))
        for label, monitor in [("mon-check + tcp.monitor", "tcp.monitor -p {port}"), ("mon-check built-in tcp", "tcp -p {port} -t 5")]:
            open(hits, "w").close()
            cfg = lab.path("mc.yaml")
            with open(cfg, "w") as f:
                f.write(yaml_services(ports, monitor, "hit.alert"))
                f.write("  state-dir: %s\n  alertdir: [%s]\n" % (lab.path("mcstate"), alertdir))
            subprocess.run(["rm", "-rf", lab.path("mcstate")])
            wall, cpu, code = spawn_wait(lab.exec([BIN, "run", "--once", "-q", "-c", cfg]), stdout=subprocess.DEVNULL)
            n = sum(1 for _ in open(hits))
            assert n == 100, (label, n)
            rows.append((label, wall, cpu))
        print("100 failing tcp checks, each alerting once, one round (start to last alert):")
        for label, wall, cpu in rows:
            print("  %-26s wall %7.3f s   cpu %7.3f s" % (label, wall, cpu))


def idle(secs):
    with Lab() as lab:
        lab.listen(23000, 23100)
        cfg = lab.path("idle.yaml")
        with open(cfg, "w") as f:
            f.write(yaml_services(range(23000, 23100), "tcp -p {port} -t 1"))
            f.write("  state-dir: %s\n  socket: %s\n" % (lab.path("state"), lab.path("mon.sock")))
        p = subprocess.Popen(lab.exec([BIN, "run", "-q", "-c", cfg]), stdout=subprocess.DEVNULL)
        lab.procs.append(p)
        state = os.path.join(lab.path("state"), "state.json")
        t = time.time()
        while True:
            try:
                if len(json.load(open(state))["services"]) == 100:
                    break
            except (OSError, ValueError):
                pass
            assert time.time() - t < 30
            time.sleep(0.05)
        time.sleep(2)  # let the debounced save and the round's threads finish

        def sample():
            f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
            ticks = int(f[11]) + int(f[12])
            switches = 0
            for tid in os.listdir("/proc/%d/task" % p.pid):
                for line in open("/proc/%d/task/%s/status" % (p.pid, tid)):
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
            return ticks, switches, len(os.listdir("/proc/%d/task" % p.pid))

        a = sample()
        time.sleep(secs)
        b = sample()
        hz = os.sysconf("SC_CLK_TCK")
        print("scheduler idle for %d s after a round of 100 services: %d clock ticks (1/%d s) of CPU, %d context switches, %d threads" % (
            secs, b[0] - a[0], hz, b[1] - a[1], b[2]))


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: it builds network namespaces")
    mode = sys.argv[1] if len(sys.argv) > 1 else "round"
    arg = int(sys.argv[2]) if len(sys.argv) > 2 else None
    build()
    if mode == "round":
        round_(arg or 5)
    elif mode == "oneshot":
        oneshot(arg or 300)
    elif mode == "mon":
        mon_vs()
    elif mode == "idle":
        idle(arg or 60)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
