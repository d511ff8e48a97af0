#!/usr/bin/env python3
"""How long a CPU of this machine can be held up: one SCHED_FIFO thread per CPU, pinned,
sleeping 1 ms at a time while busy loops keep every CPU saturated; every gap over 5 ms
is printed with its CPU. A gap on one CPU only is a vCPU the host (or a cgroup quota)
held; the same gap on every CPU at once is the whole machine.

  sudo contrib/cpu-stalls.py [SECONDS]
"""
import os, subprocess, sys, threading, time

secs = float(sys.argv[1]) if len(sys.argv) > 1 else 30
cpus = sorted(os.sched_getaffinity(0))
burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2 * len(cpus))]
gaps = {}


def watch(cpu):
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    last = time.clock_gettime(time.CLOCK_MONOTONIC)
    end, out = last + secs, []
    while last < end:
        time.sleep(0.001)
        t = time.clock_gettime(time.CLOCK_MONOTONIC)
        if t - last > 0.005:
            out.append((last, t - last))
        last = t
    gaps[cpu] = out


try:
    threads = [threading.Thread(target=watch, args=(c,)) for c in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
finally:
    for b in burners:
        b.kill()
t0 = min([g[0][0] for g in gaps.values() if g] or [0])
for cpu in cpus:
    print("cpu %d: %d gaps over 5 ms%s" % (cpu, len(gaps[cpu]), "".join(
        "; at %.3f s %.1f ms" % (at - t0, d * 1000) for at, d in gaps[cpu])))
