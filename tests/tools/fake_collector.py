#!/usr/bin/env python3
"""fake_collector.py - an HTTP server on 127.0.0.1 that answers POST /v1/results the way a
test script tells it, to drive the agent's pusher through every class of answer.

usage: fake_collector.py PORT_FILE LOG_FILE SCRIPT
  SCRIPT is a comma-separated list of answers, one per request, the last one repeated:
    ok            200 and a valid BatchAck for the request's batch_seq
    redirect      302 to another URL
    busy:N        503 with Retry-After: N
    refuse        400 "refused by the test"
    garbage-ack   200 with a body that is not a BatchAck
  e.g. "busy:2,busy:2,ok". The kernel picks the port, written to PORT_FILE. Every request
  is one JSON line in LOG_FILE: time, batch_seq, results, drops, result_seqs, status.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def encode_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def result_seq(msg):
    """field 9 of a ProbeResult (the last one wins, as in protobuf)."""
    i, seq = 0, 0
    while i < len(msg):
        key, i = varint(msg, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(msg, i)
            if field == 9:
                seq = v
        elif wire == 2:
            n, i = varint(msg, i)
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return seq


def parse_batch(body):
    """ResultBatch top level: batch_seq (3), results (5), drops (6)."""
    i, batch_seq, seqs, drops = 0, 0, [], 0
    while i < len(body):
        key, i = varint(body, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(body, i)
            if field == 3:
                batch_seq = v
        elif wire == 2:
            n, i = varint(body, i)
            if field == 5:
                seqs.append(result_seq(body[i:i + n]))
            elif field == 6:
                drops += 1
            i += n
        elif wire == 1:
            i += 8
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return batch_seq, seqs, drops


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        batch_seq, seqs, drops = parse_batch(body)
        server = self.server
        with server.lock:
            step = server.script[min(server.count, len(server.script) - 1)]
            server.count += 1
        kind, _, arg = step.partition(":")
        if kind == "ok":
            ack = b"\x08" + encode_varint(batch_seq) + b"\x10" + encode_varint(len(seqs))
            self.answer(200, ack, [("Content-Type", "application/x-protobuf")])
            status = 200
        elif kind == "redirect":
            self.answer(302, b"moved\n", [("Location", "http://127.0.0.1:1/elsewhere")])
            status = 302
        elif kind == "busy":
            self.answer(503, b"busy\n", [("Retry-After", arg)])
            status = 503
        elif kind == "refuse":
            self.answer(400, b"refused by the test\n", [("Content-Type", "text/plain")])
            status = 400
        elif kind == "garbage-ack":
            self.answer(200, b"\xff\xff", [("Content-Type", "application/x-protobuf")])
            status = 200
        else:
            raise ValueError("unknown answer " + step)
        with server.lock, open(server.log, "a") as f:
            f.write(json.dumps({"t": time.time(), "batch_seq": batch_seq, "results": len(seqs),
                                "drops": drops, "seqs": seqs, "status": status,
                                "answer": kind}) + "\n")


def main():
    port_file, log, script = sys.argv[1], sys.argv[2], sys.argv[3]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.lock = threading.Lock()
    server.script = script.split(",")
    server.count = 0
    server.log = log
    open(log, "w").close()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
