#!/usr/bin/env python3
"""collector_clients.py - the clients the collector tests need beyond curl: hand-encoded
ResultBatch bodies (protoc is not a test dependency), a keep-alive HTTPS client that
survives a SIGHUP, slow-header connections (slowloris) and a flood of garbage and
oversized requests. Loopback only; every loop and wait is bounded.

  batch OUT --agent ID [--seq N] [--results K] [--started NS] [--handshake NS]
            [--total NS] [--drop-first NS]      a ResultBatch (started default: now)
            [--instance N] [--target NAME]      spool id (default 7), target (default web;
            [--distinct-targets 1]              any bytes), or NAME-1, NAME-2... per result
  push PORT AGENT BATCHES RESULTS [--first-batch N] [--started NS] [--pause S] [--seed N]
                                                BATCHES batches of RESULTS successes (handshakes
                                                spread over ~1-10 ms) over one keep-alive HTTP
                                                connection; prints acks, non-200s, duplicates
                                                and ack latency p50/p99/max; exit 1 on a non-200
  empty-results OUT BYTES                       a body of BYTES bytes of empty results
  empty-chain OUT BYTES                         one result with BYTES of empty certificates
  keepalive PORT CAFILE TOKEN BODY PID LOG      two requests on one TLS connection with a
                                                SIGHUP (and its "reloaded" line) between
  slowloris HOST PORT SOURCE N SECONDS          N connections from SOURCE sending a header
                                                byte every 2 s for SECONDS
  flood PORT N BODY                             N concurrent garbage / oversized requests
  overlap PORT LOG AGENTS BATCHES PER THREADS [--step S] [--resend R] [--prefix P]
                                                AGENTS x BATCHES batches of PER results, batch b
                                                of an agent holding result_seq b*S+1..b*S+PER
                                                (S = PER/2: every result in two batches), each
                                                sent R times [2], all in a shuffled order by
                                                THREADS concurrent keep-alive connections;
                                                every answer is appended to LOG as it arrives
                                                ("agent instance batch first last status stored");
                                                prints status counts and the stored total
  verify DB LOG                                 every batch LOG says was acknowledged (200) is
                                                in DB whole, and what no answer acknowledged
                                                is not there at all; prints "acked=N missing=M
                                                unacked=U unacked_present=P"
"""
import asyncio
import os
import signal
import socket
import ssl
import sys
import time


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def vfield(field, v):
    return key(field, 0) + varint(v & 0xFFFFFFFFFFFFFFFF)


def lfield(field, data):
    if isinstance(data, str):
        data = data.encode()
    return key(field, 2) + varint(len(data)) + data


def result(seq, started, handshake, total, target="web"):
    # target=3 port=5 profile=7 region=2 result_seq=9 started=10 handshake=13 total=14
    # ok=16 error_class=17 (1 = OK)
    return (lfield(2, "local") + lfield(3, target) + vfield(5, 443) + lfield(7, "modern") +
            vfield(9, seq) + vfield(10, started) + vfield(13, handshake) + vfield(14, total) +
            vfield(16, 1) + vfield(17, 1))


def batch(agent, seq, results, started, handshake, total, drop_first=None, instance=7,
          target="web", distinct=False):
    body = lfield(1, agent) + vfield(2, instance) + vfield(3, seq)
    for i in range(results):
        name = "%s-%d" % (target, i + 1) if distinct else target
        body += lfield(5, result(seq * 100000 + i + 1, started, handshake, total, name))
    if drop_first is not None:
        # DropReport: drop_id=1 count=2 reason=3 first=6 last=7
        drop = (vfield(1, seq) + vfield(2, 1) + lfield(3, "spool_full") + vfield(6, drop_first) +
                vfield(7, drop_first))
        body += lfield(6, drop)
    return body


def cmd_batch(argv):
    out, opts = argv[0], dict(zip(argv[1::2], argv[2::2]))
    now = time.time_ns()
    body = batch(opts["--agent"], int(opts.get("--seq", 1)), int(opts.get("--results", 1)),
                 int(opts.get("--started", now)), int(opts.get("--handshake", 2000000)),
                 int(opts.get("--total", 3000000)),
                 int(opts["--drop-first"]) if "--drop-first" in opts else None,
                 int(opts.get("--instance", 7)), opts.get("--target", "web"),
                 opts.get("--distinct-targets") == "1")
    with open(out, "wb") as f:
        f.write(body)


def ack_duplicate(body):
    # BatchAck: batch_seq=1 stored=2 duplicate=3, all varints
    i, fields = 0, {}
    while i < len(body):
        k, i = read_varint(body, i)
        v, i = read_varint(body, i)
        fields[k >> 3] = v
    return fields.get(3, 0) == 1


def read_varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def cmd_push(argv):
    import http.client
    import random
    port, agent, batches, per = int(argv[0]), argv[1], int(argv[2]), int(argv[3])
    opts = dict(zip(argv[4::2], argv[5::2]))
    first = int(opts.get("--first-batch", 1))
    pause = float(opts.get("--pause", 0))
    rng = random.Random(int(opts.get("--seed", 1)))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat, bad, dups = [], 0, 0
    for n in range(first, first + batches):
        started = int(opts.get("--started", time.time_ns()))
        body = lfield(1, agent) + vfield(2, 7) + vfield(3, n)
        for i in range(per):
            hs = int(1e6 * rng.lognormvariate(1.0, 0.5))
            body += lfield(5, result(n * 100000 + i + 1, started + i, hs, hs + 500000))
        t = time.monotonic()
        conn.request("POST", "/v1/results", body, {"Content-Type": "application/x-protobuf"})
        resp = conn.getresponse()
        data = resp.read()
        lat.append((time.monotonic() - t) * 1000)
        if resp.status != 200:
            bad += 1
            print("push: batch %d: HTTP %d %s" % (n, resp.status, data[:200]), file=sys.stderr)
        elif ack_duplicate(data):
            dups += 1
        if pause:
            time.sleep(pause)
    lat.sort()
    rank = lambda p: lat[max(0, -(-len(lat) * p // 100) - 1)]
    print("acks=%d non200=%d duplicates=%d ack_p50_ms=%.1f ack_p99_ms=%.1f ack_max_ms=%.1f" %
          (len(lat) - bad, bad, dups, rank(50), rank(99), lat[-1]))
    sys.exit(1 if bad else 0)


def cmd_empty_results(argv):
    out, size = argv[0], int(argv[1])
    with open(out, "wb") as f:
        f.write(lfield(1, "agent-x") + b"\x2a\x00" * ((size - 9) // 2))


def cmd_empty_chain(argv):
    # one result whose chain (field 80) holds as many empty certificates as fit
    out, size = argv[0], int(argv[1])
    entries = key(80, 2) + b"\x00"
    inner = result(1, time.time_ns(), 2000000, 3000000)
    inner += entries * ((size - 64 - len(inner)) // len(entries))
    with open(out, "wb") as f:
        f.write(lfield(1, "agent-x") + vfield(2, 1) + vfield(3, 1) + lfield(5, inner))


def http_request(sock, token, body):
    head = ("POST /v1/results HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-protobuf\r\nAuthorization: Bearer %s\r\n"
            "Content-Length: %d\r\n\r\n" % (token, len(body)))
    sock.sendall(head.encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(4096)
    return int(head.split()[1])


def cmd_keepalive(argv):
    port, cafile, token, body_file, pid, log = argv[0], argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    body = open(body_file, "rb").read()
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    cert = sock.getpeercert(binary_form=True)
    first = http_request(sock, token, body)
    before = open(log).read().count('msg="reloaded"')
    os.kill(pid, signal.SIGHUP)
    deadline = time.time() + 10
    while open(log).read().count('msg="reloaded"') == before and time.time() < deadline:
        time.sleep(0.05)
    second = http_request(sock, token, body)
    same = sock.getpeercert(binary_form=True) == cert
    sock.close()
    print("first=%d second=%d same_connection_cert=%s" % (first, second, "yes" if same else "no"))


def cmd_slowloris(argv):
    host, port, source, n, seconds = argv[0], int(argv[1]), argv[2], int(argv[3]), float(argv[4])
    socks, refused = [], 0
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((source, 0))
            s.connect_ex((host, port))
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    time.sleep(0.5)
    head = b"POST /v1/results HTTP/1.1\r\nHost: x\r\nX-Slow: "
    sent = [0] * len(socks)
    closed = [False] * len(socks)
    end = time.time() + seconds
    while time.time() < end:
        for i, s in enumerate(socks):
            if closed[i]:
                continue
            try:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    closed[i] = True
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = True
                continue
            try:
                # the request line at once, then one header byte per round
                chunk = head[:len(head) - 8] if sent[i] == 0 else b"a"
                s.send(chunk)
                sent[i] += len(chunk)
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = True
        time.sleep(2)
    for s in socks:
        s.close()
    print("slowloris: opened=%d closed_by_server=%d refused=%d" % (len(socks), sum(closed), refused))


async def flood_one(port, i, body, counts):
    # mix: garbage protobuf (400), a declared body over the limit (413), a chunked
    # oversized body (413 after reading), and a truncated request that just hangs up
    kind = i % 4
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.%d" % (10 + i % 16), 0)), 15)
    except (OSError, asyncio.TimeoutError):
        counts["connect_failed"] = counts.get("connect_failed", 0) + 1
        return
    try:
        if kind == 0:
            data = b"\xff" * 4096
            writer.write(b"POST /v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(data) + data)
        elif kind == 1:
            writer.write(b"POST /v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                         b"Content-Length: 999999999\r\n\r\n" + body[:1000])
        elif kind == 2:
            writer.write(b"POST /v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"\x00" * 65536
            for _ in range(80):  # 5 MiB, over a 4 MiB cap
                writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(b"POST /v1/results HTTP/1.1\r\nHost: x\r\nContent-Len")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        status = line.split()[1].decode() if len(line.split()) > 1 else "closed"
    except (OSError, asyncio.TimeoutError, IndexError):
        status = "closed"
    counts[status] = counts.get(status, 0) + 1
    writer.close()


async def flood(port, n, body):
    counts = {}
    await asyncio.gather(*(flood_one(port, i, body, counts) for i in range(n)))
    return counts


def cmd_flood(argv):
    port, n, body = int(argv[0]), int(argv[1]), open(argv[2], "rb").read()
    counts = asyncio.run(flood(port, n, body))
    print("flood: " + " ".join("%s=%d" % kv for kv in sorted(counts.items())))


def ack_stored(body):
    i, fields = 0, {}
    while i < len(body):
        k, i = read_varint(body, i)
        v, i = read_varint(body, i)
        fields[k >> 3] = v
    return fields.get(2, 0)


def cmd_overlap(argv):
    """Concurrent pushers re-sending overlapping batches (exactly-once under group commit)."""
    import http.client
    import random
    import threading
    port, log, agents, batches, per, threads = (int(argv[0]), argv[1], int(argv[2]),
                                                int(argv[3]), int(argv[4]), int(argv[5]))
    opts = dict(zip(argv[6::2], argv[7::2]))
    step, resend = int(opts.get("--step", max(1, per // 2))), int(opts.get("--resend", 2))
    prefix, instance = opts.get("--prefix", "overlap"), int(opts.get("--instance", 11))
    now = time.time_ns()
    jobs = []
    for a in range(agents):
        agent = "%s-%d" % (prefix, a + 1)
        for b in range(batches):
            first = b * step + 1
            body = lfield(1, agent) + vfield(2, instance) + vfield(3, b + 1)
            for s in range(first, first + per):
                body += lfield(5, result(s, now - (batches * step - s) * 1000, 2000000 + s,
                                         3000000 + s, "web-%d" % (s % 7)))
            jobs += [(agent, b + 1, first, first + per - 1, body)] * resend
    random.Random(int(opts.get("--seed", 1))).shuffle(jobs)
    lock, counts, stored = threading.Lock(), {}, [0]
    out = open(log, "a", buffering=1)

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not jobs:
                    return
                agent, seq, first, last, body = jobs.pop()
            while True:
                try:
                    conn.request("POST", "/v1/results", body,
                                 {"Content-Type": "application/x-protobuf"})
                    resp = conn.getresponse()
                    data = resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    status, data = 0, b""
                n = ack_stored(data) if status == 200 else 0
                with lock:
                    counts[status] = counts.get(status, 0) + 1
                    stored[0] += n
                    out.write("%s %d %d %d %d %d %d\n" % (agent, instance, seq, first, last,
                                                         status, n))
                if status != 503 or opts.get("--retry-503") != "1":
                    break
                time.sleep(0.05)
            if status == 0:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                if opts.get("--stop-on-error") == "1":
                    return

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print("overlap: " + " ".join("status_%d=%d" % kv for kv in sorted(counts.items())) +
          " stored=%d" % stored[0])


def cmd_verify(argv):
    import sqlite3
    db, log = sqlite3.connect(argv[0]), argv[1]
    acked = missing = 0
    answers = {}
    for line in open(log):
        agent, instance, seq, first, last, status, _ = line.split()
        batch = (agent, int(instance), int(first), int(last))
        answers.setdefault(batch, set()).add(status)

    def stored(batch):
        return db.execute("SELECT count(*) FROM results WHERE agent_id = ? AND instance_id = ?"
                          " AND result_seq BETWEEN ? AND ?", batch).fetchone()[0]

    # A batch never acknowledged must have left nothing (of the ranges no other,
    # acknowledged, batch covered: the test's batches do not overlap when it asks).
    unacked = unacked_present = 0
    for batch, statuses in answers.items():
        if "200" in statuses:
            acked += 1
            missing += (batch[3] - batch[2] + 1) - stored(batch)
        else:
            unacked += 1
            unacked_present += stored(batch)
    print("acked=%d missing=%d unacked=%d unacked_present=%d" %
          (acked, missing, unacked, unacked_present))


if __name__ == "__main__":
    commands = {"batch": cmd_batch, "push": cmd_push, "empty-results": cmd_empty_results,
                "empty-chain": cmd_empty_chain, "keepalive": cmd_keepalive,
                "slowloris": cmd_slowloris, "flood": cmd_flood, "overlap": cmd_overlap,
                "verify": cmd_verify}
    commands[sys.argv[1]](sys.argv[2:])
