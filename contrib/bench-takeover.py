#!/usr/bin/env python3
"""Client-observed failover, hakit's pair against keepalived, in namespaces made here.

  sudo contrib/bench-takeover.py [TRIALS]
  sudo contrib/bench-takeover.py soak [SECONDS]   # no false failover under load
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
import os, random, socket, statistics, subprocess, sys, threading, time

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


def run_pair(ka, dt):
    keys = WORK + "/authkeys"
    for i, peer in ((1, 2), (2, 1)):
        args = ["env", "PATH=%s:%s" % (BIN, os.environ.get("PATH", "")), "bash", ROOT + "/contrib/pair.sh", "run",
                "--node", "n%d" % i, "--peer", "n%d" % peer, "--vip", VIP + "/24", "--dev", "eth0", "--failback",
                "--keepalive", ka, "--deadtime", dt, "--state-dir", "%s/pair%d" % (WORK, i)]
        if i == 1:
            args.append("--preferred")
        args += ["--", "--keys", keys, "--channel", "a=bcast:eth0", "--channel", "b=bcast:eth1", "-q", "--realtime"]
        spawn(i, args)


def run_keepalived():
    for i, prio in ((1, 150), (2, 100)):
        conf = "%s/ka%d.conf" % (WORK, i)
        with open(conf, "w") as f:
            f.write("global_defs {\n router_id n%d\n}\nvrrp_instance VI_1 {\n interface eth0\n state BACKUP\n"
                    " virtual_router_id 51\n priority %d\n advert_int 0.01\n version 3\n"
                    " virtual_ipaddress {\n  %s/24\n }\n}\n" % (i, prio, VIP))
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


def cleanup():
    for p in procs:
        try:
            p.terminate()
        except Exception:
            pass
    time.sleep(0.3)
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
    run_pair("10ms", "30ms")
    c = Client()
    c.start()
    t = c.first_from("n1", mono(), 15)
    if t is None:
        raise RuntimeError("the client never got an answer from n1")
    print("  the client (n3) sends to %s every 2 ms; n1 answers" % VIP, flush=True)
    time.sleep(1.5)
    print("  pulling both of n1's cables ...", flush=True)
    t0 = set_ports(["n1c0", "n1c1"], False)
    t = c.first_from("n2", t0, 5)
    if t is None:
        print("  no answer from n2 within 5 s", flush=True)
    else:
        print("  the client's first answer from n2 came %.1f ms after the cut" % ((t - t0) * 1000), flush=True)
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
