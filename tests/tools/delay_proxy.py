#!/usr/bin/env python3
"""delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS [SERVER_CHUNKS] - a TCP proxy on
127.0.0.1 that forwards the client's bytes at once and the server's after DELAY_MS: a
server (or a path) that answers late, so a test can stall the prober while the answer
is on its way. SERVER_CHUNKS: forward only the server's first N reads, then swallow the
rest with the connection left open (a server that answers once, then goes silent).

Prints "listening" on stdout once it accepts. Each connection gets two threads; the
proxy runs until killed. Loopback only."""
import socket
import sys
import threading
import time


def pump(src, dst, delay_s, max_chunks=None):
    sent = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if max_chunks is not None and sent >= max_chunks:
                continue  # silent from now on, the connection kept open
            if delay_s:
                time.sleep(delay_s)
            dst.sendall(data)
            sent += 1
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, upstream_port, delay_s, max_chunks):
    try:
        up = socket.create_connection(("127.0.0.1", upstream_port), timeout=5)
    except OSError:
        conn.close()
        return
    up.settimeout(None)
    threading.Thread(target=pump, args=(conn, up, 0), daemon=True).start()
    threading.Thread(target=pump, args=(up, conn, delay_s, max_chunks), daemon=True).start()


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS [SERVER_CHUNKS]")
    listen_port, upstream_port, delay_ms = (int(a) for a in sys.argv[1:4])
    max_chunks = int(sys.argv[4]) if len(sys.argv) == 5 else None
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        serve(conn, upstream_port, delay_ms / 1000.0, max_chunks)


if __name__ == "__main__":
    main()
