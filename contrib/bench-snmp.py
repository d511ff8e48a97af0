#!/usr/bin/env python3
"""`lvs-ctl snmp` under Debian's snmpd: how long an SNMP walk of the real server table
takes with SERVICES x REALS real servers (10 x 100 = 1,000 by default), in a network
namespace made here (its nftables table is that namespace's own; nothing else is
touched; snmpd listens on the namespace's loopback).

  sudo contrib/bench-snmp.py [SERVICES] [REALS] [RUNS]

The table is made by one `lvs-ctl --backend nft -R`; snmpd runs with
`pass_persist .1.3.6.1.4.1.32473.104 lvs-ctl snmp --backend nft` and is asked by
`snmpwalk -v2c -c public -On 127.0.0.1:16100 .1.3.6.1.4.1.32473.104.1.3` (hakitRsTable:
11 columns a row, so 11 GETNEXTs per real server, each one snmpd -> lvs-ctl snmp ->
snmpd) and of one column (hakitRsWeight, one GETNEXT per real server), by snmpwalk and
by snmpbulkwalk (GETBULK, 10 per request by default); and the table's walk spoken
straight to `lvs-ctl snmp` over its pipes, without snmpd (its own share). Medians of
RUNS (5) runs, a first one not counted. Binaries from
target/release (HAKIT_BIN to change).
"""
import os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HAKIT_BIN", os.path.join(ROOT, "target", "release"))
LVS = os.path.join(BIN, "lvs-ctl")
NS = "hkb%dsnmp" % os.getpid()
AGENT = "127.0.0.1:16100"
RS_TABLE = ".1.3.6.1.4.1.32473.104.1.3"


def sh(*args, stdin=None, check=True):
    return subprocess.run(args, input=stdin, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def inns(*args, **kw):
    return sh("ip", "netns", "exec", NS, *args, **kw)


def walk(tool, oid=RS_TABLE):
    """Seconds one walk takes, and how many objects it returned."""
    t = time.perf_counter()
    r = inns(tool, "-v2c", "-c", "public", "-On", "-t", "10", "-r", "0", AGENT, oid)
    d = time.perf_counter() - t
    return d, len(r.stdout.splitlines())


def direct(d, column=None):
    """The same walk spoken to `lvs-ctl snmp` over its pipes, without snmpd: seconds, and
    objects."""
    p = subprocess.Popen(["ip", "netns", "exec", NS, LVS, "snmp", "--backend", "nft", "--state", d + "/state.json",
                          "--table", d + "/ast"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, bufsize=1)
    start = RS_TABLE if column is None else "%s.1.%d" % (RS_TABLE, column)
    at, n = start, 0
    t = time.perf_counter()
    while True:
        p.stdin.write("PING\ngetnext\n%s\n" % at)
        p.stdin.flush()
        assert p.stdout.readline() == "PONG\n"
        oid = p.stdout.readline().strip()
        if oid == "NONE" or not oid.startswith(start + "."):
            break
        p.stdout.readline()
        p.stdout.readline()
        at, n = oid, n + 1
    dt = time.perf_counter() - t
    p.stdin.close()
    p.wait()
    return dt, n


def main():
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    reals = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    if not os.access(LVS, os.X_OK):
        raise SystemExit("%s: not built (cargo build --release)" % LVS)
    d = tempfile.mkdtemp(prefix="bench-snmp.")
    snmpd = None
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        rules = []
        for s in range(services):
            vip = "10.99.%d.%d:80" % (s // 250, s % 250 + 1)
            rules.append("-A -t %s -s wrr" % vip)
            for r in range(reals):
                rules.append("-a -t %s -r 10.%d.%d.%d:80 -m -w %d" % (vip, 100 + s, r // 250, r % 250 + 1, r % 7 + 1))
        inns(LVS, "--backend", "nft", "-R", stdin="\n".join(rules) + "\n")
        conf = os.path.join(d, "snmpd.conf")
        with open(conf, "w") as f:
            f.write("rocommunity public 127.0.0.1\n")
            f.write("pass_persist .1.3.6.1.4.1.32473.104 %s snmp --backend nft --state %s/state.json --table %s/ast\n"
                    % (LVS, d, d))
        env = dict(os.environ, SNMP_PERSISTENT_DIR=d, MIBS="")
        snmpd = subprocess.Popen(["ip", "netns", "exec", NS, "/usr/sbin/snmpd", "-f", "-Lo", "-C", "-c", conf,
                                  "-p", os.path.join(d, "snmpd.pid"), "udp:" + AGENT],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 10
        while inns("snmpget", "-v2c", "-c", "public", AGENT, ".1.3.6.1.4.1.32473.104.1.1.1.0", check=False).returncode:
            if time.time() > end:
                raise SystemExit("snmpd did not answer")
            time.sleep(0.1)
        print("%d services x %d real servers = %d rows of hakitRsTable" % (services, reals, services * reals))
        def report(what, f):
            f()
            times, n = [], 0
            for _ in range(runs):
                t, n = f()
                times.append(t)
            print("%-36s %6d objects: median %.3f s (min %.3f, max %.3f, %d runs)"
                  % (what, n, statistics.median(times), min(times), max(times), runs))

        for tool in ("snmpwalk", "snmpbulkwalk"):
            report(tool + " hakitRsTable", lambda: walk(tool))
            report(tool + " hakitRsWeight", lambda: walk(tool, RS_TABLE + ".1.6"))
        report("lvs-ctl snmp alone, hakitRsTable", lambda: direct(d))
    finally:
        if snmpd is not None:
            snmpd.terminate()
            snmpd.wait()
        sh("ip", "netns", "del", NS, check=False)
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
