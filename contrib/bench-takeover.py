#!/usr/bin/env python3
"""Client-observed failover, hakit's pair against keepalived, in namespaces made here.

  sudo contrib/bench-takeover.py [TRIALS]
  sudo contrib/bench-takeover.py fast [TRIALS] [DEADTIME REDUNDANCY]...  # keepalive 10 ms, shorter deadtimes
  sudo contrib/bench-takeover.py heal [TRIALS]    # a 3 s partition healed: back to one holder
  sudo contrib/bench-takeover.py soak [SECONDS]   # no false failover under load
  sudo contrib/bench-takeover.py lossy [SECONDS] [DEADTIME REDUNDANCY]  # and at 10 % loss, beside keepalived
  sudo contrib/bench-takeover.py demo             # one failover, told as it happens

Nodes n1 (primary) and n2 (standby) on two bridges (channels a and b), a client n3.
Both nodes run a UDP echo service that answers with its own name. The client sends a
datagram to the service address every 2 ms. A trial cuts both of n1's switch ports
with one rtnetlink datagram (the instant is known on CLOCK_MONOTONIC) and times the
client's first answer from n2. Then the ports are mended, the address goes back to n1
(failback, or keepalived's preemption), and the next trial starts.

Setups: contrib/pair.sh at keepalive 10 ms / deadtime 30 ms and 2 ms / 8 ms, and
keepalived (VRRPv3, advert_int 0.01, its fastest) on channel a.
"""
import os, random, socket, statistics, struct, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
from nslab import mono, setns, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HAKIT_BIN", os.path.join(ROOT, "target", "release"))
PFX = "hkt%d" % os.getpid()
SW = PFX + "sw"
WORK = "/tmp/" + PFX
VIP = "10.77.1.100"
namespaces, procs = [], []
LOG = open(os.environ.get("BENCH_LOG", "/dev/null"), "a")


def ns(i):
    return "%sn%d" % (PFX, i)


def topology():
    namespaces.extend(nslab.topology(PFX, 3))


def set_ports(names, up):
    return nslab.set_ports(SW, names, up)


def spawn(node, args, **kw):
    p = subprocess.Popen(["ip", "netns", "exec", ns(node)] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=LOG)
    procs.append(p)
    return p


ECHO = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',7007))\n"
        "n=sys.argv[1].encode()\nwhile True:\n d,a=s.recvfrom(64)\n s.sendto(n+b' '+d,a)\n")


class Client(threading.Thread):
    """In n3: a datagram to the address every 2 ms; answers recorded with their time."""

    def __init__(self):
        super().__init__(daemon=True)
        self.answers = []  # (mono, node)
        self.stop = False

    def run(self):
        setns(ns(3))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        seq = 0
        nxt = mono()
        while not self.stop:
            now = mono()
            if now >= nxt:
                seq += 1
                try:
                    s.sendto(str(seq).encode(), (VIP, 7007))
                except OSError:
                    pass
                nxt += 0.002
            try:
                while True:
                    d = s.recv(64)
                    self.answers.append((mono(), d.split()[0].decode()))
            except BlockingIOError:
                pass
            time.sleep(0.0002)

    def first_from(self, node, after, timeout):
        end = mono() + timeout
        while mono() < end:
            for t, n in list(self.answers[-2000:]):
                if n == node and t > after:
                    return t
            time.sleep(0.001)
        return None


def run_pair(ka, dt, redundancy=0, failback=True):
    keys = WORK + "/authkeys"
    for i, peer in ((1, 2), (2, 1)):
        args = ["env", "PATH=%s:%s" % (BIN, os.environ.get("PATH", "")), "bash", ROOT + "/contrib/pair.sh", "run",
                "--node", "n%d" % i, "--peer", "n%d" % peer, "--vip", VIP + "/24", "--dev", "eth0",
                "--keepalive", ka, "--deadtime", dt, "--redundancy", str(redundancy),
                "--state-dir", "%s/pair%d" % (WORK, i), "--lib-dir", "%s/lib%d" % (WORK, i)]
        if failback:
            args.append("--failback")
        if i == 1:
            args.append("--preferred")
        args += ["--", "--keys", keys, "--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1", "-q", "--realtime"]
        spawn(i, args)
        if i == 1:
            # Nodes are not started in the same millisecond: two senders in phase
            # would make every first heartbeat after a heal cross at once.
            time.sleep(random.random() * nslab_seconds(ka))


def nslab_seconds(d):
    return float(d[:-2]) / 1000 if d.endswith("ms") else float(d.rstrip("s"))


def run_keepalived(advert="0.01"):
    for i, prio in ((1, 150), (2, 100)):
        conf = "%s/ka%d.conf" % (WORK, i)
        with open(conf, "w") as f:
            f.write("global_defs {\n router_id n%d\n}\nvrrp_instance VI_1 {\n interface eth0\n state BACKUP\n"
                    " virtual_router_id 51\n priority %d\n advert_int %s\n version 3\n"
                    " virtual_ipaddress {\n  %s/24\n }\n}\n" % (i, prio, advert, VIP))
        spawn(i, ["keepalived", "-n", "-l", "-D", "-f", conf, "-p", "%s/ka%d.pid" % (WORK, i),
                  "-r", "%s/ka%d.vrrp.pid" % (WORK, i), "--vrrp"])


def trials(name, n, client):
    lat = []
    for k in range(n):
        if client.first_from("n1", mono(), 15) is None:
            raise RuntimeError("%s: the client never got answers from n1" % name)
        time.sleep(1.2 + random.random() * 0.01)  # past the neighbour locktime
        t0 = set_ports(["n1c0", "n1c1"], False)
        t = client.first_from("n2", t0, 5)
        set_ports(["n1c0", "n1c1"], True)
        if t is None:
            print("  %s trial %d: no answer from n2 within 5 s" % (name, k), flush=True)
            continue
        lat.append((t - t0) * 1000)
    return lat


class Holders(threading.Thread):
    """Who holds the address, from the kernel's own address events (RTM_NEWADDR and
    RTM_DELADDR) in n1 and n2: every change with its CLOCK_MONOTONIC time."""

    def __init__(self):
        super().__init__(daemon=True)
        self.changes = []  # (mono, node, holds)
        self.now = {}
        self.ready = threading.Event()

    def run(self):
        import select
        socks = {}
        for i in (1, 2):
            setns(ns(i))
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            s.bind((0, 0x10))  # RTMGRP_IPV4_IFADDR
            socks[s.fileno()] = (s, i)
            self.now[i] = subprocess.run(["ip", "-n", ns(i), "-br", "addr", "show", "dev", "eth0"],
                                         stdout=subprocess.PIPE, text=True).stdout.find(VIP + "/") >= 0
        self.ready.set()
        vip = socket.inet_aton(VIP)
        while True:
            r, _, _ = select.select(list(socks), [], [])
            for fd in r:
                s, i = socks[fd]
                data = s.recv(65536)
                t = mono()
                off = 0
                while off + 16 <= len(data):
                    ln, ty = struct.unpack_from("=IH", data, off)
                    if ln < 16:
                        break
                    if ty in (20, 21):
                        a = off + 16 + 8
                        while a + 4 <= off + ln:
                            alen, atype = struct.unpack_from("=HH", data, a)
                            if alen < 4:
                                break
                            if atype in (1, 2) and data[a + 4:a + 8] == vip:
                                held = ty == 20
                                if self.now.get(i) != held:
                                    self.now[i] = held
                                    self.changes.append((t, i, held))
                                break
                            a += (alen + 3) & ~3
                    off += (ln + 3) & ~3

    def count(self):
        return sum(1 for v in self.now.values() if v)

    def state_at(self, t, start):
        """Holders at time t, from `start` (the state then) and the changes since."""
        st = dict(start)
        for (ct, i, h) in self.changes:
            if ct <= t:
                st[i] = h
        return st


def partition_rules(drop_all):
    rule = "policy drop;" if drop_all else "policy accept;"
    return "table bridge hkpart {\n chain part {\n  type filter hook forward priority 0; %s\n }\n}\n" % rule


def nft_switch(text):
    f = WORK + "/nft.rules"
    with open(f, "w") as fh:
        fh.write(text)
    t = mono()
    sh("ip", "netns", "exec", SW, "nft", "-f", f)
    return t


def heal_trials(name, n, client, holders, bound_ms):
    """Partition both LANs at the switch for 3 s (frames dropped, no carrier lost),
    heal, and time: the heal (taken when nft was started, so never flattering) to the
    first answer the client gets from the one remaining holder after the last change
    of holders. Any moment with no holder after the heal, and any trial still with two
    holders after 3 s, is reported."""
    out, problems = [], 0
    for k in range(n):
        if holders.count() != 1:
            time.sleep(1)
        if holders.count() != 1:
            print("  %s trial %d: %d holders before the partition" % (name, k, holders.count()), flush=True)
        nft_switch(partition_rules(True))
        # 3 s and a random part, so that the heal falls anywhere in a keepalive (a
        # fixed trial period would keep it at one phase of the heartbeats).
        t_end = mono() + 3 + random.random() * 0.25
        while mono() < t_end and holders.count() < 2:
            time.sleep(0.005)
        if holders.count() < 2:
            print("  %s trial %d: the standby did not take over during the partition" % (name, k), flush=True)
        time.sleep(max(0, t_end - mono()))
        before = dict(holders.now)
        th = nft_switch("delete table bridge hkpart\n")
        if os.environ.get("PAIR_DEBUG"):
            print("  heal at mono %.6f, nft done %.6f" % (th, mono()), flush=True)
        end = th + 3
        while mono() < end and holders.count() != 1:
            time.sleep(0.002)
        time.sleep(0.3)  # settled: a change after this would count against the trial
        if holders.count() != 1:
            print("  %s trial %d: %d holders 3 s after the heal" % (name, k, holders.count()), flush=True)
            problems += 1
            continue
        keeper = [i for i, v in holders.now.items() if v][0]
        last = max([t for (t, _, _) in holders.changes if t >= th] or [th])
        for (t, _, _) in [c for c in holders.changes if c[0] >= th]:
            if not any(holders.state_at(t, before).values()):
                print("  %s trial %d: no holder at all %.1f ms after the heal" % (name, k, (t - th) * 1000), flush=True)
                problems += 1
        ans = client.first_from("n%d" % keeper, last, 3)
        if ans is None:
            print("  %s trial %d: the client got no answer from n%d" % (name, k, keeper), flush=True)
            problems += 1
            continue
        out.append(((last - th) * 1000, (ans - th) * 1000))
        time.sleep(1.0)
    if out:
        one = [a for a, _ in out]
        ans = [b for _, b in out]
        print("%s: heal to one holder median %.1f ms (max %.1f); to the client answered by it median %.1f ms, "
              "max %.1f ms (bound deadtime + 2 keepalives = %.0f ms); %d trials, %d problems"
              % (name, statistics.median(one), max(one), statistics.median(ans), max(ans), bound_ms, len(out), problems),
              flush=True)
    return out


def heal(n):
    for name, start, bound in (
            ("hakit keepalive 10ms deadtime 30ms", lambda: run_pair("10ms", "30ms", failback=False), 50),
            ("keepalived advert_int 0.01", lambda: run_keepalived("0.01"), 50),
            ("hakit keepalive 100ms deadtime 500ms", lambda: run_pair("100ms", "500ms", failback=False), 700),
            ("keepalived advert_int 0.1", lambda: run_keepalived("0.1"), 700)):
        if os.environ.get("ONLY") and os.environ["ONLY"] not in name:
            continue
        fresh()
        topology()
        for i in (1, 2):
            spawn(i, ["python3", "-c", ECHO, "n%d" % i])
        start()
        c = Client()
        c.start()
        if c.first_from("n1", mono(), 15) is None:
            raise RuntimeError("%s: the client never got answers from n1" % name)
        h = Holders()
        h.start()
        h.ready.wait()
        time.sleep(1)
        heal_trials(name, n, c, h, bound)
        c.stop = True
        cleanup()
        namespaces.clear()
        procs.clear()


def fresh():
    os.makedirs(WORK, exist_ok=True)
    with open(WORK + "/authkeys", "w") as f:
        f.write("auth 1\n1 sha256 bench-%d\n" % random.getrandbits(64))
    os.chmod(WORK + "/authkeys", 0o600)


def lossy(seconds, dt, red):
    """No false failover at 10 % random loss on both LANs with both CPUs saturated:
    hakit's pair (keepalive 10 ms, DEADTIME, REDUNDANCY) and keepalived (advert_int
    0.01) side by side, each in its own namespaces, under the same load and loss.
    A false failover: the address added on the standby while the primary lives."""
    global PFX, SW, WORK
    fresh()
    labs = []
    for name in ("hakit", "keepalived"):
        PFX = "hkt%d%s" % (os.getpid(), name[0])
        SW = PFX + "sw"
        topology()
        nft_switch("table bridge hkloss {\n chain f {\n  type filter hook forward priority 0;\n"
                   "  numgen random mod 100 < 10 drop\n }\n}\n")
        if name == "hakit":
            run_pair("10ms", dt, redundancy=red)
        else:
            run_keepalived("0.01")
        labs.append((name, PFX))
    time.sleep(3)
    watchers = {}
    for name, pfx in labs:
        PFX = pfx
        h = Holders()
        h.start()
        h.ready.wait()
        watchers[name] = h
    for name, h in watchers.items():
        if not h.now.get(1) or h.now.get(2):
            print("lossy: %s did not settle with n1 holding (%s)" % (name, h.now), flush=True)
    # The veth/bridge path runs in NET_RX softirq, which the kernel hands to ksoftirqd
    # (an ordinary thread) under load; with KSOFTIRQD_RT=1 those threads run
    # SCHED_FIFO for the soak, as a real-time cluster node would be tuned (restored
    # after). It helps keepalived as much as hakit.
    ksoft = [p for p in sh("pgrep", "-x", "ksoftirqd/[0-9]+", check=False).stdout.split()]
    tuned = os.environ.get("KSOFTIRQD_RT") == "1"
    if tuned:
        for p in ksoft:
            sh("chrt", "-f", "-p", "40", p, check=False)
    burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2 * os.cpu_count())]
    procs.extend(burners)
    t0 = mono()
    time.sleep(seconds)
    for b in burners:
        b.kill()
    if tuned:
        for p in ksoft:
            sh("chrt", "-o", "-p", "0", p, check=False)
    for name, h in watchers.items():
        false = [c for c in h.changes if c[0] >= t0 and c[1] == 2 and c[2]]
        lost = [c for c in h.changes if c[0] >= t0 and c[1] == 1 and not c[2]]
        label = ("hakit keepalive 10ms deadtime %s redundancy %d" % (dt, red)) if name == "hakit" \
            else "keepalived advert_int 0.01"
        print("lossy %ds, 10%% loss on both LANs, both CPUs saturated%s: %s: %d false takeovers by the standby, "
              "%d releases by the primary" % (seconds, ", ksoftirqd SCHED_FIFO" if tuned else "", label, len(false),
                                              len(lost)), flush=True)


def cleanup():
    nslab.terminate(procs)
    nslab.remove(namespaces)
    subprocess.run(["rm", "-rf", WORK])


def soak(seconds):
    """No false failover: the pair at keepalive 10 ms with both CPUs saturated by busy
    loops; any takeover by the standby, or release by the primary, is a false one."""
    global LOG
    LOG = open(WORK + "/pair.log", "a")
    topology()
    run_pair("10ms", "30ms")
    time.sleep(2)
    burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2 * os.cpu_count())]
    procs.extend(burners)
    start = os.path.getsize(WORK + "/pair.log")
    time.sleep(seconds)
    for b in burners:
        b.kill()
    with open(WORK + "/pair.log") as f:
        f.seek(start)
        lines = [l.strip() for l in f if l.startswith("pair[")]
    false = [l for l in lines if "pair[n2]: taking" in l or "pair[n1]: releasing" in l]
    print("soak %ds, keepalive 10 ms, both CPUs saturated: %d false takeovers/releases%s"
          % (seconds, len(false), "".join("\n  " + l for l in lines)), flush=True)


def demo():
    """The README demo's second act: the pair with a client, the primary's cables
    pulled, the client following to the standby."""
    topology()
    for i in (1, 2):
        spawn(i, ["python3", "-c", ECHO, "n%d" % i])
    run_pair("10ms", "20ms", redundancy=2, failback=False)
    c = Client()
    c.start()
    t = c.first_from("n1", mono(), 15)
    if t is None:
        raise RuntimeError("the client never got an answer from n1")
    h = Holders()
    h.start()
    h.ready.wait()
    print("  the client (n3) sends to %s every 2 ms; n1 answers (keepalive 10 ms, deadtime 20 ms)" % VIP,
          flush=True)
    time.sleep(1.5)
    print("  pulling both of n1's cables ...", flush=True)
    t0 = set_ports(["n1c0", "n1c1"], False)
    t = c.first_from("n2", t0, 5)
    if t is None:
        print("  no answer from n2 within 5 s", flush=True)
    else:
        print("  the client's first answer from n2 came %.1f ms after the cut" % ((t - t0) * 1000), flush=True)
    set_ports(["n1c0", "n1c1"], True)
    time.sleep(1)
    who = lambda: " and ".join("n%d" % i for i, v in sorted(h.now.items()) if v) or "nobody"
    print("  n1's cables back: %s holds it (no failback: nothing moves)" % who(), flush=True)
    print("  both LANs dropped at the switch for 1 s, links up, frames lost ...", flush=True)
    nft_switch(partition_rules(True))
    time.sleep(1)
    print("  during the partition: %s" % who(), flush=True)
    th = nft_switch("delete table bridge hkpart\n")
    while mono() < th + 3 and h.count() != 1:
        time.sleep(0.002)
    t1 = mono()
    print("  healed: %s holds it, %.1f ms after the heal (the one that took it last keeps it)"
          % (who(), (t1 - th) * 1000), flush=True)
    c.stop = True


def main():
    if os.geteuid() != 0:
        sys.exit("bench-takeover: needs root")
    if len(sys.argv) > 1 and sys.argv[1] == "demo":
        os.makedirs(WORK, exist_ok=True)
        with open(WORK + "/authkeys", "w") as f:
            f.write("auth 1\n1 sha256 demo-%d\n" % random.getrandbits(64))
        os.chmod(WORK + "/authkeys", 0o600)
        try:
            demo()
        finally:
            cleanup()
        return
    if subprocess.run(["sh", "-c", "command -v keepalived"], stdout=subprocess.DEVNULL).returncode != 0:
        # keepalived is the benchmark's rival, not a test dependency.
        subprocess.run(["apt-get", "install", "-y", "-qq", "keepalived"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
    if len(sys.argv) > 1 and sys.argv[1] == "heal":
        fresh()
        try:
            heal(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
        finally:
            cleanup()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "lossy":
        secs = int(sys.argv[2]) if len(sys.argv) > 2 else 600
        dt = sys.argv[3] if len(sys.argv) > 3 else "30ms"
        red = int(sys.argv[4]) if len(sys.argv) > 4 else 0
        try:
            lossy(secs, dt, red)
        finally:
            cleanup()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "fast":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
        combos = list(zip(sys.argv[3::2], [int(r) for r in sys.argv[4::2]])) or [("21ms", 1), ("25ms", 1)]
        fresh()
        try:
            for dt, red in combos:
                name = "hakit keepalive 10ms deadtime %s redundancy %d" % (dt, red)
                topology()
                for i in (1, 2):
                    spawn(i, ["python3", "-c", ECHO, "n%d" % i])
                run_pair("10ms", dt, redundancy=red)
                c = Client()
                c.start()
                lat = trials(name, n, c)
                c.stop = True
                cleanup(); namespaces.clear(); procs.clear(); fresh()
                if lat:
                    print("%s: client's first answer from the standby after the cut: median %.1f ms, min %.1f, "
                          "max %.1f, %d trials" % (name, statistics.median(lat), min(lat), max(lat), len(lat)),
                          flush=True)
        finally:
            cleanup()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "soak":
        os.makedirs(WORK, exist_ok=True)
        with open(WORK + "/authkeys", "w") as f:
            f.write("auth 1\n1 sha256 soak\n")
        os.chmod(WORK + "/authkeys", 0o600)
        try:
            soak(int(sys.argv[2]) if len(sys.argv) > 2 else 600)
        finally:
            cleanup()
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    os.makedirs(WORK, exist_ok=True)
    with open(WORK + "/authkeys", "w") as f:
        f.write("auth 1\n1 sha256 bench-%d\n" % random.getrandbits(64))
    os.chmod(WORK + "/authkeys", 0o600)
    results = {}
    try:
        for name in ("hakit keepalive 10ms", "keepalived advert_int 0.01", "hakit keepalive 2ms"):
            topology()
            for i in (1, 2):
                spawn(i, ["python3", "-c", ECHO, "n%d" % i])
            if name.startswith("keepalived"):
                run_keepalived()
            else:
                run_pair(*(("10ms", "30ms") if "10ms" in name else ("2ms", "8ms")))
            c = Client()
            c.start()
            results[name] = trials(name, n, c)
            c.stop = True
            cleanup(); namespaces.clear(); procs.clear(); os.makedirs(WORK, exist_ok=True)
            with open(WORK + "/authkeys", "w") as f:
                f.write("auth 1\n1 sha256 bench\n")
            os.chmod(WORK + "/authkeys", 0o600)
            lat = results[name]
            if lat:
                print("%s: client's first answer from the standby after the cut: median %.1f ms, min %.1f, max %.1f, %d trials"
                      % (name, statistics.median(lat), min(lat), max(lat), len(lat)), flush=True)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
