#!/usr/bin/env python3
"""lvs-ctl's figures, each in a network namespace made here (its table is that
namespace's own; nothing else is touched).

  sudo contrib/bench-lvs.py nft [SERVICES]     # the nftables backend, on this kernel
  sudo contrib/ipvs-vm.sh run python3 contrib/bench-lvs.py ipvs [SERVICES]
                                               # IPVS, lvs-ctl beside ipvsadm, in the VM
  sudo contrib/bench-lvs.py takeout [TRIALS]   # web server killed -> taken out, by a client

nft: `-L -n` of an empty table as a whole process; `-R` of SERVICES (10,000) services
x 4 real servers in one transaction; `-S -n` and `-L -n` of that table; one real
server's weight to 0 among them by `-e` (a whole process) and by `follow` (from the
event line written to its stdin to its event line out, which it prints after the
kernel took the change).
ipvs: the same file restored by `ipvsadm -R` and by `lvs-ctl -R` (each after `-C`), and
16,000 services x 1 saved by `ipvsadm -S -n` and `lvs-ctl -S -n`, in the same run.
Medians of several runs; the binaries from target/release (HAKIT_BIN to change).
"""
import os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HAKIT_BIN", os.path.join(ROOT, "target", "release"))
LVS = os.path.join(BIN, "lvs-ctl")
NS = "hkb%dlvs" % os.getpid()


def sh(*args, stdin=None, check=True):
    return subprocess.run(args, input=stdin, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def inns(*args, **kw):
    return sh("ip", "netns", "exec", NS, *args, **kw)


def timed(*args, stdin=None):
    """Seconds one run of `args` takes inside the namespace, as a whole process."""
    t = time.perf_counter()
    r = subprocess.run(["ip", "netns", "exec", NS] + list(args), input=stdin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    d = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(args), r.stderr.strip()))
    return d


def process_time(*args, runs=50):
    """A whole process's own time, without `ip netns exec`: it runs in the namespace
    through a small shell that forks it `runs` times and reports each."""
    script = 'for i in $(seq %d); do s=$(date +%%s%%N); "$@" >/dev/null || exit 1; e=$(date +%%s%%N); echo $((e-s)); done' % runs
    r = inns("sh", "-c", script, "sh", *args)
    # The shell's own fork of `date` is in each figure too; measure and subtract it.
    base = inns("sh", "-c", 'for i in $(seq %d); do s=$(date +%%s%%N); true; e=$(date +%%s%%N); echo $((e-s)); done' % runs)
    ns = [int(x) for x in r.stdout.split()]
    b = statistics.median(int(x) for x in base.stdout.split())
    return (statistics.median(ns) - b) / 1e6


def rules(services, reals, sched="wrr"):
    out = []
    for i in range(services):
        vip = "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256)
        out.append("-A -t %s:80 -s %s" % (vip, sched))
        for r in range(reals):
            out.append("-a -t %s:80 -r 192.168.%d.%d:8080 -m -w %d" % (vip, r, 1 + i % 250, 1 + r))
    return "\n".join(out) + "\n"


def nft_bench(services):
    b = ["--backend", "nft"]
    print("lvs-ctl -L -n, empty table, whole process: %.2f ms (median of 50)" % process_time(LVS, *b, "-L", "-n"))
    text = rules(services, 4)
    rs = []
    for _ in range(3):
        inns(LVS, *b, "-C")
        rs.append(timed(LVS, *b, "-R", stdin=text))
    print("lvs-ctl -R, %d services x 4 real servers, one transaction: %.3f s (median of 3: %s)"
          % (services, statistics.median(rs), ", ".join("%.3f" % x for x in rs)))
    lines = inns(LVS, *b, "-S", "-n").stdout.count("\n")
    assert lines == services * 5, "the table holds what was restored (%d lines)" % lines
    print("lvs-ctl -S -n of it: %.1f ms" % (statistics.median(timed(LVS, *b, "-S", "-n") for _ in range(3)) * 1e3))
    print("lvs-ctl -L -n of it: %.1f ms" % (statistics.median(timed(LVS, *b, "-L", "-n") for _ in range(3)) * 1e3))
    es = []
    for w in (0, 1, 0, 1, 0):
        es.append(timed(LVS, *b, "-e", "-t", "10.100.0.7:80", "-r", "192.168.0.8:8080", "-m", "-w", str(w)))
    print("lvs-ctl -e (weight 0 and back) among them, whole process: %.1f ms (median of 5)" % (statistics.median(es) * 1e3))
    follow_bench(services)


def follow_bench(services):
    """`follow` with a configuration of `services` services: a host-down line in, the
    real-down event out (printed once the kernel has the change)."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        cfg = os.path.join(d, "hakit.yaml")
        with open(cfg, "w") as f:
            f.write("lvs-ctl:\n  backend: nft\n  services:\n")
            for i in range(services):
                vip = "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256)
                f.write("    - service: tcp %s:80\n      scheduler: wrr\n      forward: masq\n      check: g%d/http\n"
                        "      reals:\n" % (vip, i))
                for r in range(4):
                    f.write("        - { address: 192.168.%d.%d:8080, weight: %d, host: h%d }\n" % (r, 1 + i % 250, 1 + r, r))
        inns(LVS, "apply", cfg)
        p = subprocess.Popen(["ip", "netns", "exec", NS, LVS, "follow", "-c", cfg, "--state", os.path.join(d, "state")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        try:
            time.sleep(2)
            lat = []
            for k in range(20):
                kind = "host-down" if k % 2 == 0 else "host-up"
                t = time.perf_counter()
                p.stdin.write("%s h1 service=g7/http status=CRITICAL line=bench\n" % kind)
                p.stdin.flush()
                while True:
                    line = p.stdout.readline()
                    if not line:
                        raise SystemExit("follow ended: %s" % p.stderr.read())
                    if line.startswith("real-"):
                        break
                lat.append(time.perf_counter() - t)
            print("follow: host-down/up line in -> change in the kernel -> event out, among %d services: "
                  "median %.2f ms, max %.2f ms (20 changes)" % (services, statistics.median(lat) * 1e3, max(lat) * 1e3))
        finally:
            p.terminate()
            p.wait()


def fresh():
    """A new namespace for the next measurement: after a flush IPVS keeps the deleted
    real servers for about two minutes and looks through them on every add, so each
    side of a comparison gets a table that never held anything."""
    global NS
    old = NS
    NS = "hkb%dlvs%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
    sh("ip", "netns", "add", NS)
    inns("ip", "link", "set", "lo", "up")
    sh("ip", "netns", "del", old, check=False)


def ipvs_bench(services):
    text = rules(services, 4)
    ipvsadm = "/usr/sbin/ipvsadm"
    LV = [LVS, "--backend", "ipvs"]
    print("empty table, whole process: ipvsadm -L -n %.2f ms, lvs-ctl -L -n %.2f ms"
          % (process_time(ipvsadm, "-L", "-n", runs=20), process_time(*LV, "-L", "-n", runs=20)))
    a, b = [], []
    for _ in range(2):
        fresh()
        a.append(timed(ipvsadm, "-R", stdin=text))
        saved = inns(ipvsadm, "-S", "-n").stdout
        fresh()
        b.append(timed(*LV, "-R", stdin=text))
        assert inns(*LV, "-S", "-n").stdout == saved, "both build the same table"
    print("-R of %d services x 4: ipvsadm %.2f s, lvs-ctl %.2f s: %.1fx (each %s / %s)"
          % (services, statistics.median(a), statistics.median(b), statistics.median(a) / statistics.median(b),
             ", ".join("%.2f" % x for x in a), ", ".join("%.2f" % x for x in b)))
    fresh()
    inns(*LV, "-R", stdin=rules(16000, 1, "rr"))
    a = [timed(ipvsadm, "-S", "-n") for _ in range(3)]
    b = [timed(*LV, "-S", "-n") for _ in range(3)]
    assert inns(ipvsadm, "-S", "-n").stdout == inns(*LV, "-S", "-n").stdout
    print("-S -n of 16000 services x 1: ipvsadm %.1f ms, lvs-ctl %.1f ms: %.1fx"
          % (statistics.median(a) * 1e3, statistics.median(b) * 1e3, statistics.median(a) / statistics.median(b)))


def takeout_bench(trials):
    """`mon-check run | lvs-ctl follow` at a 1 s interval on a director (nft, NAT, rr over
    three real servers); a client opens a connection to the virtual address every 2 ms.
    Each trial kills one real server's web server and times, from the kill, the last
    connection that failed (after it, the server is out: every connection succeeds),
    then restarts it and waits for it to be back."""
    import socket, threading
    pfx = "hkb%dto" % os.getpid()
    made = nslab.topology(pfx, 5, 2)
    vip = "10.77.1.100"
    procs = []
    try:
        n = lambda i: "%sn%d" % (pfx, i)
        sh("ip", "-n", n(1), "addr", "flush", "dev", "eth1")
        sh("ip", "-n", n(2), "addr", "add", vip + "/32", "dev", "eth0")
        sh("ip", "netns", "exec", n(2), "sysctl", "-qw", "net.ipv4.ip_forward=1")
        work = tempfile.mkdtemp(dir="/var/tmp")
        servers = {}

        def serve(i):
            servers[i] = subprocess.Popen(["ip", "netns", "exec", n(i), "python3", "-c",
                "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind(('10.77.2.%d', 80)); s.listen(512)\n"
                "while True:\n c,_=s.accept(); c.recv(1024); c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nn%d\\n'); c.close()\n"
                % (i, i)])
        for i in (3, 4, 5):
            sh("ip", "-n", n(i), "addr", "flush", "dev", "eth0")
            sh("ip", "-n", n(i), "route", "add", "default", "via", "10.77.2.2")
            serve(i)
        cfg = os.path.join(work, "hakit.yaml")
        with open(cfg, "w") as f:
            f.write("lvs-ctl:\n  backend: nft\n  services:\n    - service: tcp %s:80\n      scheduler: rr\n"
                    "      forward: masq\n      check: web/http\n      reals:\n" % vip)
            for i in (3, 4, 5):
                f.write("        - address: 10.77.2.%d:80\n" % i)
            f.write("mon-check:\n  state-dir: %s/mon\n  socket: %s/mon.sock\n  hostgroups:\n"
                    "    web: [10.77.2.3, 10.77.2.4, 10.77.2.5]\n  watches:\n    web:\n      http:\n"
                    "        interval: 1s\n        monitor: http -p 80 -t 1\n" % (work, work))
        sh("ip", "netns", "exec", n(2), LVS, "apply", cfg)
        follow = subprocess.Popen(["ip", "netns", "exec", n(2), "sh", "-c",
                                   "%s run -q -c %s | exec %s follow -q -c %s --state %s/state" %
                                   (os.path.join(BIN, "mon-check"), cfg, LVS, cfg, work)],
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        procs.append(follow)
        fails = []
        stop = threading.Event()

        def client():
            nslab.setns(n(1))
            while not stop.is_set():
                t = nslab.mono()
                try:
                    c = socket.create_connection((vip, 80), timeout=0.5)
                    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    ok = c.recv(64).startswith(b"HTTP")
                    c.close()
                except OSError:
                    ok = False
                if not ok:
                    fails.append(t)
                time.sleep(0.002)
        th = threading.Thread(target=client, daemon=True)
        th.start()

        import queue
        events = queue.Queue()
        threading.Thread(target=lambda: [events.put(l) for l in follow.stdout], daemon=True).start()

        def wait_event(prefix):
            while True:
                line = events.get(timeout=10)
                if line.startswith(prefix + " 10.77.2.3:80"):
                    return line
        time.sleep(3)
        while not events.empty():
            events.get()
        out = []
        for k in range(trials):
            fails.clear()
            t0 = nslab.mono()
            servers[3].kill()
            servers[3].wait()
            wait_event("real-down")
            time.sleep(0.3)
            if not fails:
                raise SystemExit("no connection failed: the client did not reach the dead server")
            out.append(max(fails) - t0)
            serve(3)
            wait_event("real-up")
            time.sleep(0.5 + (k % 7) * 0.13)  # a kill at another phase of the check interval
        stop.set()
        out.sort()
        print("web server killed -> no connection fails any more (interval 1 s, %d trials): median %.0f ms, "
              "max %.0f ms" % (trials, statistics.median(out) * 1e3, max(out) * 1e3))
        print("  each (ms, sorted): " + " ".join("%.0f" % (x * 1e3) for x in out))
        for s in servers.values():
            s.kill()
    finally:
        for p in procs:
            p.terminate()
        nslab.remove(made)


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench-lvs: needs root (namespaces)")
    mode = sys.argv[1] if len(sys.argv) > 1 else "nft"
    services = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    sh("ip", "netns", "add", NS)
    try:
        inns("ip", "link", "set", "lo", "up")
        if mode == "nft":
            nft_bench(services)
        elif mode == "ipvs":
            ipvs_bench(services)
        elif mode == "takeout":
            takeout_bench(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
        else:
            raise SystemExit(__doc__)
    finally:
        for pid in sh("ip", "netns", "pids", NS, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", NS, check=False)


if __name__ == "__main__":
    main()
