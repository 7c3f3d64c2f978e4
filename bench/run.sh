#!/usr/bin/env bash
# bench/run.sh [COUNT] [IN_FLIGHT] [ROUNDS] - CPU per probe of the engine vs a bare GnuTLS loop,
# side by side in one run, against a local nginx-less openssl s_server (TLS 1.3,
# ECDSA P-256 leaf + intermediate, chain verified with hostname check).
# Build first: cmake --build build --target bench-handshake bench-spool bench-rollup
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TP_BENCH_BIN:-$ROOT/build/bench/bench-handshake}
COUNT=${1:-2000}
IN_FLIGHT=${2:-32}
ROUNDS=${3:-1} # >1: the two sides alternate in ROUNDS chunks (bench-handshake --rounds)
[ -x "$BIN" ] || { echo "build bench-handshake first (cmake --build build --target bench-handshake)" >&2; exit 2; }
W=$(mktemp -d /tmp/tp-bench.XXXXXX)
trap 'kill $(cat "$W/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
utc() { date -u -d "$1" '+%Y-%m-%d %H:%M:%S UTC'; }
key() { certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$W/$1.key" 2>/dev/null; }
key root
printf 'cn = "bench root"\nca\ncert_signing_key\nactivation_date = "%s"\nexpiration_date = "%s"\n' "$(utc '-1 day')" "$(utc '+1 year')" >"$W/root.t"
certtool --generate-self-signed --load-privkey "$W/root.key" --template "$W/root.t" --outfile "$W/root.pem" --no-text 2>/dev/null
key leaf
printf 'cn = "bench.test"\ndns_name = "bench.test"\ntls_www_server\nsigning_key\nactivation_date = "%s"\nexpiration_date = "%s"\n' "$(utc '-1 day')" "$(utc '+1 year')" >"$W/leaf.t"
certtool --generate-certificate --load-privkey "$W/leaf.key" --load-ca-certificate "$W/root.pem" \
  --load-ca-privkey "$W/root.key" --template "$W/leaf.t" --outfile "$W/leaf.pem" --no-text 2>/dev/null
PORT=$((20000 + RANDOM % 20000))
openssl s_server -accept "127.0.0.1:$PORT" -cert "$W/leaf.pem" -key "$W/leaf.key" -tls1_3 -www -quiet \
  </dev/null >"$W/server.log" 2>&1 &
echo $! >"$W/pid"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
echo "bench: $COUNT handshakes each, TLS 1.3, ECDSA P-256, chain verified; server: openssl s_server on 127.0.0.1:$PORT"
"$BIN" --port "$PORT" --sni bench.test --ca "$W/root.pem" --count "$COUNT" --in-flight "$IN_FLIGHT" \
  --rounds "$ROUNDS"
# What the durable spool costs per result next to a handshake (same run, same machine).
SPOOL_BIN=${TP_BENCH_SPOOL_BIN:-$(dirname "$BIN")/bench-spool}
if [ -x "$SPOOL_BIN" ]; then "$SPOOL_BIN" 20000 800 "$W"; fi
# What storage for long windows costs: rollup throughput, ingest with and without the
# maintenance thread, reading rollups (docs/collector.md, "Rollups and retention").
ROLLUP_BIN=${TP_BENCH_ROLLUP_BIN:-$(dirname "$BIN")/bench-rollup}
if [ -x "$ROLLUP_BIN" ]; then "$ROLLUP_BIN" 300000 "$W"; fi
