#!/usr/bin/env python3
"""udp-counter.py ADDR PORT NAME LOG: a UDP service whose state is a count of the
requests it has processed. It answers each request `... SEQ` with `NAME COUNT SEQ`
(from ADDR, which it binds even before the address is here: IP_FREEBIND) and appends
`COUNT SEQ` to LOG; a failed send is logged as `# send ERROR` and the service goes on."""
import socket
import sys

addr, port, name, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 15, 1)  # IP_FREEBIND
s.bind((addr, port))
n = 0
with open(log, "a", buffering=1) as f:
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        n += 1
        seq = data.split()[-1].decode(errors="replace") if data.split() else "-"
        f.write(f"{n} {seq}\n")
        try:
            s.sendto(f"{name} {n} {seq}".encode(), peer)
        except OSError as e:
            f.write(f"# send {e}\n")
