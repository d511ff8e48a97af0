#!/usr/bin/env python3
"""The director cascade's figures (issue 12), in namespaces made here, with
contrib/director.sh and the release binaries.

  sudo contrib/bench-director.py failover [TRIALS] [SYNC]  # killed director -> new connections via the backup
  sudo contrib/bench-director.py survive [TRIALS]          # 50 open connections through a failover, with and without conntrackd
  sudo contrib/bench-director.py realkill [TRIALS]         # a real server killed and brought back, failed requests
  sudo contrib/bench-director.py all

Nodes: n1 the client (LAN a), n2 n3 n4 the directors (director, primary backup,
secondary backup; both LANs, which are also the heartbeat channels; conntrackd on LAN
b), n5 n6 n7 the real servers (LAN b, default route via the gateway address that the
active director holds), NAT on nftables (lvs-ctl's nft backend, rr). Heartbeats at
keepalive 10 ms, deadtime 50 ms.

failover: the client starts a new TCP connection to the VIP every 2 ms (each sends a
line and waits for the answer, with its own 1 s limit). A trial cuts both switch ports
of the holder with one rtnetlink datagram (its instant is known on CLOCK_MONOTONIC),
SIGKILLs every process in its namespace, and times the first answered connection
started after the cut. The killed director is then started again (no failback: it
stays a backup) and the next trial kills the new holder.

survive: 50 connections open, a line on each every 50 ms in a random order; the
director is killed; count the connections that broke (reset, closed, or no answer
within 2 s). With sync: conntrackd and sync: none.

realkill: the client starts a new connection every 10 ms; a real server's line server
is SIGKILLed (its port then refuses: RST), mon-check (tcp check every 500 ms) says
host-down, lvs-ctl follow removes it; later it is started again and comes back.
Counts the failed requests, those after the check interval, and the time until it
serves again.
"""
import os, random, selectors, socket, statistics, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
from nslab import mono, setns, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HAKIT_BIN", os.path.join(ROOT, "target", "release"))
PFX = "hkd%d" % os.getpid()
SW = PFX + "sw"
WORK = "/var/tmp/" + PFX
VIP, GW, PORT = "10.77.1.100", "10.77.2.100", 9000
DIRECTORS, REALS = (2, 3, 4), (5, 6, 7)
namespaces, procs = [], {}
LOG = open(os.environ.get("BENCH_LOG", "/dev/null"), "a")



def ns(i):
    return "%sn%d" % (PFX, i)


def spawn(key, node, args, **kw):
    p = subprocess.Popen(["ip", "netns", "exec", ns(node)] + args, stdin=subprocess.DEVNULL,
                         stdout=kw.get("stdout", subprocess.DEVNULL), stderr=kw.get("stderr", LOG))
    procs[key] = p
    return p


def setup():
    os.makedirs(WORK, exist_ok=True)
    namespaces.extend(nslab.topology(PFX, 7))
    # The prober opens 500 connections a second: with the whole port range a port comes
    # back after two minutes, past TIME_WAIT, as on a client that is not a benchmark.
    sh("ip", "netns", "exec", ns(1), "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535")
    sh("ip", "-n", ns(1), "addr", "flush", "dev", "eth1")
    sh("ip", "-n", ns(1), "link", "set", "eth1", "down")
    for d in DIRECTORS:
        sh("ip", "netns", "exec", ns(d), "sysctl", "-qw", "net.ipv4.ip_forward=1")
    with open(WORK + "/authkeys", "w") as f:
        f.write("auth 1\n1 sha256 bench-secret\n")
    os.chmod(WORK + "/authkeys", 0o600)
    for r in REALS:
        sh("ip", "-n", ns(r), "addr", "flush", "dev", "eth0")
        sh("ip", "-n", ns(r), "link", "set", "eth0", "down")
        sh("ip", "-n", ns(r), "route", "add", "default", "via", GW)
        start_server(r)


def start_server(r):
    spawn("srv%d" % r, r, ["/usr/bin/python3", ROOT + "/contrib/line-server.py", "n%d" % r, "10.77.2.%d" % r, str(PORT)])


def config(d, sync):
    dd = "%s/d%d" % (WORK, d)
    os.makedirs(dd, exist_ok=True)
    reals = "".join("        - { address: 10.77.2.%d:%d, host: 10.77.2.%d }\n" % (r, PORT, r) for r in REALS)
    text = ("cluster:\n  keys: %s/authkeys\n  channels:\n    - { name: a, dev: eth0, mode: bcast }\n"
            "    - { name: b, dev: eth1, mode: bcast }\n"
            "hb-send:\n  keepalive: 10ms\n  deadtime: 50ms\nhb-watch:\n  deadtime: 50ms\n  initdead: 1s\n"
            "lvs-ctl:\n  backend: nft\n  services:\n    - service: tcp %s:%d\n      scheduler: rr\n"
            "      forward: masq\n      check: rs/tcp\n      on-failure: remove\n      reals:\n%s"
            "mon-check:\n  state-dir: %s/mon\n  socket: %s/mon.sock\n  hostgroups:\n    rs: [%s]\n"
            "  watches:\n    rs:\n      tcp:\n        interval: 500ms\n        monitor: tcp -p %d -t 1\n"
            "director:\n  nodes:\n    - { name: n2, role: director }\n    - { name: n3, role: primary-backup }\n"
            "    - { name: n4, role: secondary-backup }\n  addresses:\n    - { address: %s/24, dev: eth0 }\n"
            "    - { address: %s/24, dev: eth1 }\n  sync: %s\n  sync-dev: eth1\n"
            % (WORK, VIP, PORT, reals, dd, dd, ", ".join("10.77.2.%d" % r for r in REALS), PORT, VIP, GW, sync))
    with open(dd + "/hakit.yaml", "w") as f:
        f.write(text)
    return dd


def start_director(d, sync):
    dd = config(d, sync)
    spawn("dir%d" % d, d, ["env", "PATH=%s:%s" % (BIN, os.environ.get("PATH", "")), "DIRECTOR_DEBUG=1", "bash",
                           ROOT + "/contrib/director.sh", "run", "--node", "n%d" % d, "-c", dd + "/hakit.yaml",
                           "--state-dir", dd + "/state", "--lib-dir", dd + "/lib", "--", "-q", "--realtime"],
          stderr=open(dd + "/director.log", "a"))


def holder():
    for d in DIRECTORS:
        out = sh("ip", "-n", ns(d), "-br", "addr", "show", "dev", "eth0", check=False).stdout
        if (VIP + "/24") in out and ("n%dc0" % d) not in dead:
            return d
    return None


dead = set()


def kill_node(d):
    """Both cables pulled in one datagram (the instant returned), then every process."""
    t0 = nslab.set_ports(SW, ["n%dc0" % d, "n%dc1" % d], False)
    for pid in sh("ip", "netns", "pids", ns(d), check=False).stdout.split():
        try:
            os.kill(int(pid), 9)
        except OSError:
            pass
    dead.add("n%dc0" % d)
    return t0


def revive(d, sync):
    revive_plain(d)
    start_director(d, sync)


def full_table(d):
    out = sh("ip", "netns", "exec", ns(d), BIN + "/lvs-ctl", "-L", "-n", check=False).stdout
    return out.count("Masq    1") == len(REALS)


def wait(what, f, within):
    end = mono() + within
    while mono() < end:
        v = f()
        if v:
            return v
        time.sleep(0.02)
    raise RuntimeError("%s: not within %s s (see %s/d*/director.log)" % (what, within, WORK))


class Prober(threading.Thread):
    """In n1: a new connection every `every` seconds; each sends a line and waits for the
    answer (1 s); results (start, end, name or None) kept."""

    def __init__(self, every):
        super().__init__(daemon=True)
        self.every, self.results, self.stop = every, [], False

    def run(self):
        setns(ns(1))
        sel = selectors.DefaultSelector()
        nxt = mono()
        while not self.stop:
            now = mono()
            while now >= nxt:
                nxt += self.every
                try:
                    s = socket.socket()
                except OSError:  # out of descriptors during a long outage: a failure
                    self.results.append((now, now, None))
                    continue
                s.setblocking(False)
                try:
                    s.connect((VIP, PORT))
                except BlockingIOError:
                    pass
                except OSError:
                    self.results.append((now, now, None)); s.close(); continue
                sel.register(s, selectors.EVENT_WRITE, [now, b""])
            for key, ev in sel.select(timeout=0.0005):
                s, st = key.fileobj, key.data
                try:
                    if ev & selectors.EVENT_WRITE:
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            raise OSError("refused")
                        s.send(b"x\n")
                        sel.modify(s, selectors.EVENT_READ, st)
                    else:
                        d = s.recv(64)
                        if not d:
                            raise OSError("closed")
                        st[1] += d
                        if b"\n" in st[1]:
                            self.results.append((st[0], mono(), st[1].split()[0].decode()))
                            sel.unregister(s); s.close()
                except OSError:
                    self.results.append((st[0], mono(), None))
                    sel.unregister(s); s.close()
            now = mono()
            for key in list(sel.get_map().values()):
                if now - key.data[0] > 1.0:
                    self.results.append((key.data[0], now, None))
                    sel.unregister(key.fileobj); key.fileobj.close()

    def first_ok_started_after(self, t0, within):
        end = mono() + within
        while mono() < end:
            ok = [e for s, e, n in list(self.results) if n and s >= t0]
            if ok:
                return min(ok)
            time.sleep(0.005)
        return None


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def failover(trials, sync):
    for d in DIRECTORS:
        start_director(d, sync)
    wait("n2 takes the addresses", lambda: holder() == 2, 10)
    time.sleep(2)
    pr = Prober(0.002)
    pr.start()
    lat = []
    for k in range(trials):
        h = wait("a holder", holder, 10)
        if pr.first_ok_started_after(mono(), 5) is None:
            raise RuntimeError("the client gets no answers through n%d" % h)
        time.sleep(1.0 + random.random() * 0.02)
        t0 = kill_node(h)
        t = pr.first_ok_started_after(t0, 5)
        if t is None:
            print("  trial %d: no new connection answered within 5 s" % k, flush=True)
        else:
            lat.append((t - t0) * 1000)
        new = wait("a new holder", holder, 5)
        print("  trial %d: n%d killed, n%d serves after %.1f ms" % (k, h, new, lat[-1] if t else -1), flush=True)
        revive(h, sync)
        # The revived director is heard, initdead passes, its checks pass: a full table.
        wait("n%d's table has every real server" % h, lambda: full_table(h), 15)
        time.sleep(1)
    pr.stop = True
    print("failover (sync %s), %d trials: median %.1f ms, p90 %.1f, min %.1f, max %.1f" %
          (sync, len(lat), statistics.median(lat), pct(lat, 90), min(lat), max(lat)), flush=True)
    return lat


HOLD = """
import random, socket, sys, time
vip, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
cs = []
for i in range(n):
    c = socket.create_connection((vip, port), timeout=2)
    cs.append({"f": c.makefile("rwb"), "err": None})
print("ready", flush=True)
end = time.time() + secs
while time.time() < end:
    random.shuffle(cs)
    for e in cs:
        if e["err"] is None:
            try:
                e["f"].write(b"x\\n"); e["f"].flush()
                if not e["f"].readline():
                    e["err"] = "closed"
            except OSError as x:
                e["err"] = type(x).__name__
    time.sleep(0.05)
print(sum(1 for e in cs if e["err"]), flush=True)
"""


def survive(trials):
    with open(WORK + "/hold.py", "w") as f:
        f.write(HOLD)
    out = {}
    for sync in ("conntrackd", "none"):
        for d in DIRECTORS:
            start_director(d, sync)
        broken = []
        for k in range(trials):
            h = wait("a holder", holder, 10)
            time.sleep(2)
            c = spawn("hold", 1, ["python3", WORK + "/hold.py", VIP, str(PORT), "50", "6"], stdout=subprocess.PIPE)
            assert c.stdout.readline().strip() == b"ready"
            time.sleep(1.5)
            kill_node(h)
            broken.append(int(c.stdout.readline()))
            c.wait()
            print("  %s trial %d: n%d killed, %d of 50 broke" % (sync, k, h, broken[-1]), flush=True)
            revive(h, sync)
        for d in DIRECTORS:
            kill_node(d)
            revive_plain(d)
        out[sync] = broken
        print("survive (sync %s): broken per trial %s (of 50)" % (sync, broken), flush=True)
    return out


def revive_plain(d):
    """A node that boots again, running nothing yet: its old addresses are gone with its
    memory, its cables back."""
    sh("ip", "-n", ns(d), "addr", "del", VIP + "/24", "dev", "eth0", check=False)
    sh("ip", "-n", ns(d), "addr", "del", GW + "/24", "dev", "eth1", check=False)
    nslab.set_ports(SW, ["n%dc0" % d, "n%dc1" % d], True)
    dead.discard("n%dc0" % d)


def realkill(trials):
    for d in DIRECTORS:
        start_director(d, "conntrackd")
    wait("n2 takes the addresses", lambda: holder() == 2, 10)
    time.sleep(2)
    pr = Prober(0.01)
    pr.start()
    for k in range(trials):
        r = REALS[k % len(REALS)]
        time.sleep(2)
        t0 = mono()
        procs["srv%d" % r].kill()
        procs["srv%d" % r].wait()
        time.sleep(3)
        t1 = mono()
        start_server(r)
        back = wait("n%d serves again" % r,
                    lambda: next((s for s, e, n in list(pr.results) if n == "n%d" % r and s >= t1), None), 10)
        time.sleep(1)
        res = [x for x in list(pr.results) if t0 <= x[0] < t1]
        failed = [s for s, e, n in res if n is None]
        late = [s for s in failed if s - t0 > 0.5 + 1.0]  # after the check interval and its timeout
        print("  trial %d: n%d killed: %d of %d requests failed (last %.0f ms after the kill), %d after the check "
              "interval; back %.0f ms after its restart" %
              (k, r, len(failed), len(res), (max(failed) - t0) * 1000 if failed else 0, len(late), (back - t1) * 1000),
              flush=True)
    pr.stop = True


def main():
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    try:
        setup()
        if mode in ("failover", "all"):
            failover(n, sys.argv[3] if len(sys.argv) > 3 else "conntrackd")
        if mode == "all":
            for d in DIRECTORS:
                kill_node(d)
                revive_plain(d)
        if mode in ("survive", "all"):
            survive(n if mode == "survive" else 5)
        if mode in ("realkill", "all"):
            realkill(n if mode == "realkill" else 3)
    finally:
        nslab.remove(namespaces)
        for p in procs.values():
            p.kill()


if __name__ == "__main__":
    main()
