#!/usr/bin/env python3
"""A director killed: how long until new connections are served by the backup, on a real
IPVS, hakit against keepalived in the same run. Runs inside the IPVS VM (Debian 12's
kernel under qemu, contrib/ipvs-vm.sh), in namespaces made here and removed on exit:

  sudo HAKIT_BIN=$CARGO_TARGET_DIR/release contrib/ipvs-vm.sh run --timeout 1800 \\
      /usr/bin/python3 contrib/bench-director-ipvs.py [TRIALS]       # default 20

(/usr/bin/python3: a pyenv shim in PATH costs seconds a start under TCG.) The VM passes
on only HAKIT_* variables: HAKIT_DEADTIME=300ms for another deadtime, HAKIT_ONLY=hakit or
HAKIT_ONLY=keepalived for one setup.

Nodes on three bridges: n1 the client (br0, 10.77.1.0/24), n2 the master and n3 the
backup director (all three), n4 and n5 the real servers (br1, 10.77.2.0/24), each with
an echo server on port 7000 and its default route through the gateway address
10.77.2.100. The director holds the virtual address 10.77.1.100 on eth0 and the gateway
on eth1; IPVS NAT, rr over the two real servers.

The client starts a new TCP connection to the virtual address every 5 ms (each given
300 ms: a line out, its echo back), only around a trial (the VM has one vCPU). A trial
kills the master: its three switch ports stop forwarding, set with one rtnetlink
datagram (its instant known on CLOCK_MONOTONIC; the carrier stays up, see isolate()),
and times the first connection started after that which gets its echo: it can only
have gone through the backup, which must hold both addresses and have the IPVS table.
Then the ports forward again, the master takes both addresses back, and the next trial waits for the client
to be served again and 1.2 s (the neighbour locktime).

Setups, each in fresh namespaces:
  hakit       contrib/pair.sh (hb-send, hb-watch, ipfake) at keepalive 10 ms and
              DEADTIME (default 100 ms: 30 ms flaps under TCG), the master preferred with failback; one pair
              per address (the virtual address, heartbeats on br0; the gateway, on
              br1), as pair.sh takes one address; the IPVS table from `lvs-ctl apply`
              of one configuration on both directors. (contrib/director.sh, for three
              directors, does the same takeover; pair.sh stands in for it here.)
  keepalived  Debian's keepalived 2.2.7: one VRRPv3 instance on eth0, advert_int 0.01
              (the least it accepts: 1 centisecond, VRRPv3's unit), holding both
              addresses, priorities 150/100 (preemption), and a virtual_server block
              with the same real servers (its checker process loads IPVS).

Under TCG everything is slower than on hardware: an idle ping round trip between two
namespaces is measured first and printed for scale.
"""
import os, random, select, socket, statistics, struct, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nslab  # noqa: E402
from nslab import mono, setns, sh  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HAKIT_BIN", os.path.join(ROOT, "target", "release"))
PY = "/usr/bin/python3"
DEADTIME = os.environ.get("HAKIT_DEADTIME", "100ms")
PFX = "hkd%d" % os.getpid()
SW = PFX + "sw"
WORK = "/tmp/" + PFX
VIP, GW, PORT = "10.77.1.100", "10.77.2.100", 7000
MASTER, BACKUP, REALS = 2, 3, (4, 5)
namespaces, procs = [], []

ECHO = """
import selectors, socket
sel = selectors.DefaultSelector()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", %d))
ls.listen(1024)
ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is ls:
            try:
                c, _ = ls.accept()
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
            except OSError:
                pass
            continue
        try:
            d = s.recv(4096)
            if d:
                s.send(d)
                continue
        except OSError:
            pass
        sel.unregister(s)
        s.close()
""" % PORT


def ns(i):
    return "%sn%d" % (PFX, i)


def ip(node, *args):
    return sh("ip", "-n", ns(node), *args)


def spawn(node, args, log=None):
    p = subprocess.Popen(["ip", "netns", "exec", ns(node)] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)
    procs.append(p)
    return p


def lab():
    """The namespaces, addresses and routes; the echo servers; no director software."""
    os.makedirs(WORK, exist_ok=True)
    namespaces.extend(nslab.topology(PFX, 5, 3))
    for dev in ("eth1", "eth2"):
        ip(1, "addr", "flush", "dev", dev)
        ip(1, "link", "set", dev, "down")
    for r in REALS:
        for dev in ("eth0", "eth2"):
            ip(r, "addr", "flush", "dev", dev)
            ip(r, "link", "set", dev, "down")
        ip(r, "route", "add", "default", "via", GW)
        spawn(r, [PY, "-c", ECHO])
    for d in (MASTER, BACKUP):
        sh("ip", "netns", "exec", ns(d), "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # Many short connections: no TIME_WAIT on the client (it resets), a wide port range.
    sh("ip", "netns", "exec", ns(1), "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000")


def holds(node):
    out = ip(node, "-br", "-4", "addr").stdout
    return (VIP + "/") in out and (GW + "/") in out


def lvs_apply():
    cfg = WORK + "/hakit.yaml"
    with open(cfg, "w") as f:
        f.write("lvs-ctl:\n  backend: ipvs\n  services:\n    - service: tcp %s:%d\n      scheduler: rr\n"
                "      forward: masq\n      reals:\n" % (VIP, PORT))
        for r in REALS:
            f.write("        - address: 10.77.2.%d:%d\n" % (r, PORT))
    for d in (MASTER, BACKUP):
        r = sh("ip", "netns", "exec", ns(d), BIN + "/lvs-ctl", "apply", "--state", "%s/follow%d.json" % (WORK, d),
               "-q", cfg, check=False)
        if r.returncode != 0:
            raise RuntimeError("lvs-ctl apply on n%d: status %d: %s" % (d, r.returncode, r.stderr.strip()))


def run_hakit():
    lvs_apply()
    keys = WORK + "/authkeys"
    with open(keys, "w") as f:
        f.write("auth 1\n1 sha256 bench-%d\n" % random.getrandbits(64))
    os.chmod(keys, 0o600)
    log = open(WORK + "/pair.log", "a")
    for addr, dev in ((VIP, "eth0"), (GW, "eth1")):
        for i, peer in ((MASTER, BACKUP), (BACKUP, MASTER)):
            tag = "%s%d" % (dev, i)
            args = ["env", "PATH=%s:%s" % (BIN, os.environ.get("PATH", "")), "bash", ROOT + "/contrib/pair.sh",
                    "run", "--node", "n%d" % i, "--peer", "n%d" % peer, "--vip", addr + "/24", "--dev", dev,
                    "--keepalive", "10ms", "--deadtime", DEADTIME, "--failback",
                    "--state-dir", "%s/pair-%s" % (WORK, tag), "--lib-dir", "%s/lib-%s" % (WORK, tag)]
            if i == MASTER:
                args.append("--preferred")
            args += ["--", "--keys", keys, "--channel", "a=bcast:%s" % dev, "-q", "--realtime"]
            spawn(i, args, log)


def run_keepalived():
    for i, prio in ((MASTER, 150), (BACKUP, 100)):
        conf = "%s/ka%d.conf" % (WORK, i)
        reals = "".join(" real_server 10.77.2.%d %d {\n  weight 1\n }\n" % (r, PORT) for r in REALS)
        with open(conf, "w") as f:
            f.write("global_defs {\n router_id n%d\n}\n"
                    "vrrp_instance VI_1 {\n interface eth0\n state BACKUP\n virtual_router_id 51\n"
                    " priority %d\n advert_int 0.01\n version 3\n"
                    " virtual_ipaddress {\n  %s/24 dev eth0\n  %s/24 dev eth1\n }\n}\n"
                    "virtual_server %s %d {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n%s}\n"
                    % (i, prio, VIP, GW, VIP, PORT, reals))
        spawn(i, ["keepalived", "-n", "-l", "-D", "-f", conf, "-p", "%s/ka%d.pid" % (WORK, i),
                  "-r", "%s/ka%d.vrrp.pid" % (WORK, i), "-c", "%s/ka%d.chk.pid" % (WORK, i)],
              open("%s/ka%d.log" % (WORK, i), "a"))


class Client(threading.Thread):
    """In n1: a new connection to the virtual address every 5 ms, each with 300 ms to
    connect, send a line and get its echo. Successes recorded as (start, done)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ok = []
        self.tries = 0
        self.stop = False
        self.active = False  # attempts only while a trial needs them: one vCPU

    def run(self):
        setns(ns(1))
        poller = select.epoll()
        live = {}  # fd: (socket, start, sent)
        nxt = mono()
        linger = struct.pack("ii", 1, 0)
        while not self.stop:
            now = mono()
            if not self.active:
                nxt = now
            elif now >= nxt:
                nxt = max(nxt + 0.005, now - 0.005)
                s = socket.socket()
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                s.connect_ex((VIP, PORT))
                live[s.fileno()] = [s, now, False]
                poller.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN)
                self.tries += 1
            for fd, ev in poller.poll(max(0.0, nxt - mono()) if self.active else 0.005):
                s, start, sent = live[fd]
                done = False
                if not sent and ev & select.EPOLLOUT:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        try:
                            s.send(b"x\n")
                            live[fd][2] = True
                            poller.modify(fd, select.EPOLLIN)
                        except OSError:
                            done = True
                    else:
                        done = True
                elif ev & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                    try:
                        if s.recv(16) == b"x\n":
                            self.ok.append((start, mono()))
                    except OSError:
                        pass
                    done = True
                if done:
                    poller.unregister(fd)
                    s.close()
                    del live[fd]
            now = mono()
            for fd in [fd for fd, (_, start, _) in live.items() if now - start > 0.3]:
                poller.unregister(fd)
                live[fd][0].close()
                del live[fd]

    def first_after(self, t0, timeout):
        """The first success of a connection started after t0 (waiting for it)."""
        end = mono() + timeout
        while mono() < end:
            got = [done for start, done in self.ok[-500:] if start > t0]
            if got:
                return min(got)
            time.sleep(0.002)
        return None


def _port_states(names, state):
    """Set bridge ports' STP state (0 disabled, 3 forwarding) with one rtnetlink
    datagram (RTM_SETLINK, AF_BRIDGE, IFLA_PROTINFO/IFLA_BRPORT_STATE, as `bridge link
    set dev X state N`); returns the CLOCK_MONOTONIC instant it was sent."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    msgs = b""
    for seq, name in enumerate(names):
        inner = struct.pack("=HHB3x", 5, 1, state)  # IFLA_BRPORT_STATE, u8, padded
        attr = struct.pack("=HH", 4 + len(inner), 12 | 0x8000) + inner  # IFLA_PROTINFO, nested
        body = struct.pack("=BxHiII", 7, 0, socket.if_nametoindex(name), 0, 0) + attr  # AF_BRIDGE
        msgs += struct.pack("=IHHII", 16 + len(body), 19, 0x1 | 0x4, seq + 1, 0) + body  # RTM_SETLINK
    t = mono()
    s.sendto(msgs, (0, 0))
    for _ in names:
        err = struct.unpack_from("=i", s.recv(65536), 16)[0]
        if err:
            raise OSError(-err, "setting bridge port state")
    s.close()
    return t


def isolate(names, off):
    """The master's switch ports stop forwarding (or start again), carrier kept: a
    cable pull would also fail the dead director's own sends (ENOBUFS), which is not
    what is measured here. From a thread in the switch namespace."""
    out = []
    t = threading.Thread(target=lambda: (setns(SW), out.append(_port_states(names, 0 if off else 3))))
    t.start()
    t.join()
    if not out:
        raise RuntimeError("setting the switch ports' state failed")
    return out[0]


def trials(name, n, client):
    lat = []
    ports = ["n%dc%d" % (MASTER, c) for c in range(3)]
    for k in range(n):
        # Back to the start: the master holds both addresses, the backup none, and the
        # client is served.
        end = mono() + 60
        while mono() < end and not (holds(MASTER) and not holds(BACKUP)):
            time.sleep(0.5)
        client.active = True
        if client.first_after(mono(), 30) is None:
            diagnose()
            raise RuntimeError("%s: the client is not served before trial %d (%d attempts)" % (name, k, client.tries))
        client.active = False
        time.sleep(1.2 + random.random() * 0.02)
        client.active = True
        time.sleep(0.05)
        t0 = isolate(ports, True)
        t = client.first_after(t0, 10)
        client.active = False
        isolate(ports, False)
        if t is None:
            print("  %s trial %d: no new connection served within 10 s" % (name, k), flush=True)
            continue
        lat.append((t - t0) * 1000)
        print("  %s trial %d: %.1f ms" % (name, k, lat[-1]), flush=True)
    return lat


def diagnose():
    """What the directors hold and say, when the lab does not work."""
    for d in (MASTER, BACKUP):
        print("--- n%d: %s" % (d, ip(d, "-br", "-4", "addr").stdout.strip().replace("\n", "; ")), flush=True)
        print(sh("ip", "netns", "exec", ns(d), "ipvsadm", "-L", "-n", check=False).stdout, flush=True)
    for f in sorted(os.listdir(WORK)):
        if f.endswith(".log"):
            with open(os.path.join(WORK, f)) as fh:
                print("--- %s:\n%s" % (f, "".join(fh.readlines()[-15:])), flush=True)


def report(name, lat, n):
    if not lat:
        print("%s: no trial succeeded" % name, flush=True)
        return
    s = sorted(lat)
    p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
    print("%s: director killed -> new connection served by the backup: median %.1f ms, p90 %.1f ms, "
          "max %.1f ms (%d/%d trials)" % (name, statistics.median(s), p90, s[-1], len(s), n), flush=True)


def ping_scale():
    """An idle ping round trip between two of the namespaces, for scale."""
    out = sh("ip", "netns", "exec", ns(1), "ping", "-c", "20", "-i", "0.05", "-q", "10.77.1.%d" % MASTER,
             check=False).stdout
    line = [l for l in out.splitlines() if "min/avg/max" in l]
    print("idle ping client -> director in this VM: %s" % (line[0] if line else out.strip()), flush=True)


def cleanup():
    nslab.terminate(procs, 0.5)
    nslab.remove(namespaces)
    namespaces.clear()
    procs.clear()
    subprocess.run(["rm", "-rf", WORK])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print("bench-director-ipvs: %d trials a setup, binaries from %s, %s" % (n, BIN, time.strftime("%F %T %Z")),
          flush=True)
    results = []
    for name, start in (("hakit pair.sh keepalive 10ms deadtime %s + lvs-ctl IPVS" % DEADTIME, run_hakit),
                        ("keepalived 2.2.7 VRRPv3 advert_int 0.01 + virtual_server", run_keepalived)):
        if os.environ.get("HAKIT_ONLY") and os.environ["HAKIT_ONLY"] not in name:
            continue
        try:
            lab()
            if not results:
                ping_scale()
            start()
            c = Client()
            c.start()
            lat = trials(name, n, c)
            c.stop = True
            print("  (%s: %d connection attempts in all)" % (name, c.tries), flush=True)
            results.append((name, lat))
        finally:
            if "keepalived" in name:
                for i in (MASTER, BACKUP):
                    try:
                        bad = [l for l in open("%s/ka%d.log" % (WORK, i)) if "not valid" in l or "rror" in l]
                        if bad:
                            print("  keepalived n%d said: %s" % (i, "".join(bad[:5]).strip()), flush=True)
                    except OSError:
                        pass
            cleanup()
    for name, lat in results:
        report(name, lat, n)


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
