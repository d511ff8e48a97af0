#!/usr/bin/python3
"""A real server for the director's tests, benchmark and demo: `line-server.py NAME ADDR
PORT` listens on ADDR:PORT and answers every line of every connection with NAME, so
that a client sees which real server it reached, and an open connection can be watched
through a failover (one thread a connection)."""
import socket, sys, threading

name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1024)


def serve(c):
    with c:
        f = c.makefile("rwb")
        try:
            for _ in f:
                f.write(name.encode() + b"\n")
                f.flush()
        except OSError:
            pass


while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
