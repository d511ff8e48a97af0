"""The namespaces the benchmark scripts build, shared by them: a switch namespace with
one bridge per channel, and nodes with one veth per channel (eth0, eth1, ...) at
10.77.<channel+1>.<node>/24. Node i is PREFIX + "n<i>", the switch PREFIX + "sw", and
node i's port on channel c in the switch is "n<i>c<c>"."""
import ctypes, os, socket, struct, subprocess, threading, time

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def sh(*args, check=True):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mono():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def setns(name):
    """Move the calling *thread* into network namespace `name`."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if _libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
    finally:
        os.close(fd)


def topology(prefix, nodes, chans=2):
    """Build the switch and `nodes` nodes; returns every namespace made, switch first."""
    sw = prefix + "sw"
    made = [sw]
    sh("ip", "netns", "add", sw)
    sh("ip", "-n", sw, "link", "set", "lo", "up")
    for c in range(chans):
        sh("ip", "-n", sw, "link", "add", "br%d" % c, "type", "bridge", "forward_delay", "0")
        sh("ip", "-n", sw, "link", "set", "br%d" % c, "up")
    for i in range(1, nodes + 1):
        ns = "%sn%d" % (prefix, i)
        sh("ip", "netns", "add", ns)
        made.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for c in range(chans):
            port = "n%dc%d" % (i, c)
            sh("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth%d" % c, "netns", ns)
            sh("ip", "-n", sw, "link", "set", port, "master", "br%d" % c, "up")
            sh("ip", "-n", ns, "addr", "add", "10.77.%d.%d/24" % (c + 1, i), "brd", "+", "dev", "eth%d" % c)
            sh("ip", "-n", ns, "link", "set", "eth%d" % c, "up")
    return made


def _set_ports(names, up):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    msgs = b""
    for seq, name in enumerate(names):
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, socket.if_nametoindex(name), 1 if up else 0, 1)  # IFF_UP
        msgs += struct.pack("=IHHII", 16 + len(body), 16, 0x1 | 0x4, seq + 1, 0) + body  # RTM_NEWLINK, REQUEST|ACK
    t = mono()
    s.sendto(msgs, (0, 0))
    for _ in names:
        s.recv(65536)
    s.close()
    return t


def set_ports(switch, names, up):
    """Set switch ports up or down with one rtnetlink datagram, from a thread inside the
    switch namespace (the caller's threads stay home); returns the CLOCK_MONOTONIC
    instant it was sent."""
    out = []
    t = threading.Thread(target=lambda: (setns(switch), out.append(_set_ports(names, up))))
    t.start()
    t.join()
    return out[0]


def terminate(procs, grace=0.3):
    """SIGTERM each process the script started (by its Popen), then give them `grace`
    seconds to go."""
    for p in procs:
        try:
            p.terminate()
        except Exception:
            pass
    time.sleep(grace)


def remove(namespaces):
    """End what still runs in our namespaces (by the PIDs they hold) and delete them."""
    for n in namespaces:
        for pid in sh("ip", "netns", "pids", n, check=False).stdout.split():
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
